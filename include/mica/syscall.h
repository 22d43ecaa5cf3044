/*
 * The Mica system-call ABI, shared by kernel and user code; docs/IPC.md is the
 * prose reference. A system call is `ecall` with the number in a7. Arguments
 * go in a0..a6; the result comes back in a0 (>= 0 success, negative MICA_E*
 * error), with IPC results in a1..a6 as described below.
 */
#ifndef MICA_SYSCALL_H
#define MICA_SYSCALL_H

#include <stdint.h>

/* ---- numbers (a7) ---- */
#define SYS_CALL 1         /* a0 ep slot, a1 tag, a2..a5 MR0..3 -> a0 err, a1 tag, a2..a5, a6 badge */
#define SYS_REPLY_RECV 2   /* a0 ep slot, a1 reply tag, a2..a5 reply MRs -> as SYS_RECV */
#define SYS_RECV 3         /* a0 ep slot -> a0 err, a1 tag, a2..a5 MR0..3, a6 badge */
#define SYS_SEND 4         /* a0 ep slot, a1 tag, a2..a5 MR0..3 -> a0 err */
#define SYS_YIELD 5        /* -> 0 */
#define SYS_THREAD_EXIT 6  /* does not return */
#define SYS_TASK_EXIT 7    /* a0 status; does not return */
#define SYS_DEBUG_WRITE 8  /* a0 buffer, a1 length -> bytes written or error */
#define SYS_CAP_DERIVE 9   /* a0 src slot, a1 dest slot, a2 rights mask, a3 badge -> 0 */
#define SYS_CAP_DELETE 10  /* a0 slot -> 0 */
#define SYS_CAP_IDENTIFY 11 /* a0 slot -> a0 type, a1 rights, a2 badge */
#define SYS_KERNEL_INFO 12 /* a0 user pointer to struct mica_kernel_info -> 0 */
#define SYS_REPLY 13       /* a1 reply tag, a2..a5 reply MRs -> 0 (also with no caller) */
#define SYS_THREAD_AFFINITY 14 /* a0 hart mask (0: unchanged) -> a0 previous mask, a1 hart index */

/* Privileged: a0 names the memory-control capability, except where a task
 * capability (with CAP_RIGHT_CONTROL) is the subject. */
#define SYS_ENDPOINT_CREATE 16 /* a0 memctl, a1 dest slot -> 0 */
#define SYS_SPACE_CREATE 17    /* a0 memctl, a1 dest slot, a2 name, a3 exit endpoint slot (0: none)
				  -> task id */
#define SYS_TASK_KILL 18       /* a0 task slot, a1 TASK_KILL_* -> 0 */
#define SYS_MM_ENTER 19        /* a0 task, a1 user pointer to struct mica_mapping[], a2 count -> 0 */
#define SYS_MM_REMOVE 20       /* a0 task, a1 va, a2 length -> 0 */
#define SYS_MM_PROTECT 21      /* a0 task, a1 va, a2 length, a3 prot -> 0 */
#define SYS_MM_EXTRACT 22      /* a0 task, a1 va -> a0 0, a1 pa, a2 prot */
#define SYS_THREAD_START 23    /* a0 task, a1 pc, a2 sp, a3 arg, a4 IPC buffer va,
				  a5 priority | fault ep slot << 8 -> thread id */
#define SYS_MM_DONATE 24       /* a0 memctl, a1 pa, a2 length -> 0 */
#define SYS_CAP_COPY_TO 25     /* a0 task, a1 src slot, a2 dest slot in task, a3 rights mask,
				  a4 badge -> 0 */
#define SYS_MAX 25

/* SYS_TASK_KILL: the kernel prints a line for each kill unless asked not to
 * (the caller reports the reason itself, e.g. the memory server). */
#define TASK_KILL_REPORT 0
#define TASK_KILL_QUIET 1

/* ---- message tag (a1) ---- */
#define IPC_TAG_LEN_MASK 0x7fUL /* message words: 0..IPC_MAX_WORDS */
#define IPC_TAG_CAP 0x80UL      /* one capability travels (see struct mica_ipc_buffer) */
#define IPC_TAG_LABEL_SHIFT 16
#define IPC_MAX_WORDS 64
#define IPC_REG_WORDS 4 /* MR0..MR3 travel in a2..a5; the rest in the IPC buffer */

static inline uint64_t ipc_tag(uint64_t label, unsigned words)
{
	return (label << IPC_TAG_LABEL_SHIFT) | (words & IPC_TAG_LEN_MASK);
}
static inline uint64_t ipc_tag_label(uint64_t tag)
{
	return tag >> IPC_TAG_LABEL_SHIFT;
}
static inline unsigned ipc_tag_words(uint64_t tag)
{
	return (unsigned)(tag & IPC_TAG_LEN_MASK);
}

/* The per-thread IPC buffer page (its address is given at SYS_THREAD_START).
 * Message word i >= 4 is mr[i]; mr[0..3] are unused (they travel in registers). */
struct mica_ipc_buffer {
	uint64_t mr[IPC_MAX_WORDS];
	uint64_t cap_send;     /* slot of the capability to send (tag has IPC_TAG_CAP) */
	uint64_t cap_recv;     /* slot where an incoming capability lands (0: refuse) */
	uint64_t cap_received; /* set by the kernel: 1 if a capability arrived */
};

/* ---- faults ---- */
/* A user exception arrives at the fault endpoint as a call from the faulting
 * thread: label IPC_LABEL_FAULT, MR0 address (stval), MR1 access
 * (FAULT_ACCESS_*), MR2 pc, MR3 scause; the badge is the fault cap's. */
#define IPC_LABEL_FAULT 0xfa17UL
#define FAULT_ACCESS_READ 1
#define FAULT_ACCESS_WRITE 2
#define FAULT_ACCESS_EXEC 4
/* When a task created with an exit endpoint ends, a receiver on that endpoint
 * gets, as if sent with the exit capability's badge: label IPC_LABEL_TASK_EXIT,
 * MR0 the task id, MR1 its exit status (-1 when it was killed). No reply. */
#define IPC_LABEL_TASK_EXIT 0xe417UL

/* Reply labels to a fault message. */
#define FAULT_REPLY_RESUME 0 /* retry the instruction */
#define FAULT_REPLY_KILL 1   /* terminate the task */

/* ---- capabilities ---- */
#define CAP_TYPE_NULL 0
#define CAP_TYPE_ENDPOINT 1
#define CAP_TYPE_TASK 2
#define CAP_TYPE_MEMCTL 3

#define CAP_RIGHT_SEND 0x1
#define CAP_RIGHT_RECV 0x2
#define CAP_RIGHT_GRANT 0x4   /* may send capabilities through this endpoint */
#define CAP_RIGHT_CONTROL 0x8 /* task: map, start threads, kill, copy caps in */
#define CAP_RIGHTS_ALL 0xf

#define CAP_SLOTS 64
/* Slots every task starts with. */
#define CAP_SLOT_NULL 0
#define CAP_SLOT_MEMCTL 1 /* root task only */
#define CAP_SLOT_SELF 2   /* root task: its own task capability */

/* ---- privileged memory calls ---- */
#define MICA_PROT_READ 0x2 /* same bits as the PTE: R, W, X */
#define MICA_PROT_WRITE 0x4
#define MICA_PROT_EXEC 0x8

/* In mica_mapping.prot: the range is MMIO. It must lie inside one device of
 * the boot info's device list and outside RAM; leaves are never superpages. */
#define MICA_MAP_DEVICE 0x100

struct mica_mapping {
	uint64_t va, pa, len, prot;
};
#define MICA_MM_ENTER_MAX 64 /* mappings per SYS_MM_ENTER */

struct mica_kernel_info {
	uint64_t karena_inuse;    /* bytes of kernel arena handed out */
	uint64_t kpool_free;      /* free pages in the kernel pool (boot + donated) */
	uint64_t tasks, threads, endpoints;
	uint64_t ticks;           /* timer interrupts taken on the calling hart */
	uint64_t harts;           /* harts running tasks: indices 0 .. harts - 1 */
	uint64_t hart_index;      /* the hart this call ran on */
	uint64_t shootdowns;      /* remote TLB fences (SBI RFENCE calls) so far */
	uint64_t shootdown_harts; /* harts those fences reached, summed */
};

/* Hart indices: the boot hart is 0, then the other usable harts in device-tree
 * order. A thread's affinity is a mask of indices; a new thread inherits the
 * affinity of the thread that started it. */
#define MICA_MAX_HARTS 8

#endif
