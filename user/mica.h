/*
 * The user-side view of Mica's system calls: one inline function per call,
 * returning what the kernel put in a0 (negative MICA_E* on failure). The ABI
 * itself is in <mica/syscall.h>; docs/IPC.md describes each call.
 */
#ifndef MICA_USER_MICA_H
#define MICA_USER_MICA_H

#include <stddef.h>
#include <stdint.h>

#include "mica/bootinfo.h"
#include "mica/errno.h"
#include "mica/syscall.h"

/* A message as the IPC calls see it: tag, four register words, badge. */
struct mica_msg {
	uint64_t tag;
	uint64_t mr[IPC_REG_WORDS];
	uint64_t badge;
};

#define MICA_IPCBUF ((struct mica_ipc_buffer *)mica_ipcbuf_va)
extern _Thread_local uintptr_t mica_ipcbuf_va; /* this thread's IPC buffer */

static inline long mica_syscall6(unsigned long nr, unsigned long a0, unsigned long a1,
				 unsigned long a2, unsigned long a3, unsigned long a4,
				 unsigned long a5)
{
	register unsigned long r0 __asm__("a0") = a0;
	register unsigned long r1 __asm__("a1") = a1;
	register unsigned long r2 __asm__("a2") = a2;
	register unsigned long r3 __asm__("a3") = a3;
	register unsigned long r4 __asm__("a4") = a4;
	register unsigned long r5 __asm__("a5") = a5;
	register unsigned long r7 __asm__("a7") = nr;
	__asm__ volatile("ecall"
			 : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5)
			 : "r"(r7)
			 : "memory", "a6");
	return (long)r0;
}

/* The IPC calls: all registers a0..a6 carry something back. */
static inline long mica_ipc(unsigned long nr, uint64_t slot, struct mica_msg *m)
{
	register unsigned long r0 __asm__("a0") = slot;
	register unsigned long r1 __asm__("a1") = m->tag;
	register unsigned long r2 __asm__("a2") = m->mr[0];
	register unsigned long r3 __asm__("a3") = m->mr[1];
	register unsigned long r4 __asm__("a4") = m->mr[2];
	register unsigned long r5 __asm__("a5") = m->mr[3];
	register unsigned long r6 __asm__("a6");
	register unsigned long r7 __asm__("a7") = nr;
	__asm__ volatile("ecall"
			 : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5), "=r"(r6)
			 : "r"(r7)
			 : "memory");
	if ((long)r0 == 0 && nr != SYS_SEND && nr != SYS_REPLY) {
		m->tag = r1;
		m->mr[0] = r2;
		m->mr[1] = r3;
		m->mr[2] = r4;
		m->mr[3] = r5;
		m->badge = r6;
	}
	return (long)r0;
}

static inline long mica_call(uint64_t ep, struct mica_msg *m)
{
	return mica_ipc(SYS_CALL, ep, m);
}
static inline long mica_send(uint64_t ep, struct mica_msg *m)
{
	return mica_ipc(SYS_SEND, ep, m);
}
static inline long mica_recv(uint64_t ep, struct mica_msg *m)
{
	m->tag = 0; /* nothing is sent: the registers are only outputs */
	for (unsigned i = 0; i < IPC_REG_WORDS; i++)
		m->mr[i] = 0;
	return mica_ipc(SYS_RECV, ep, m);
}
/* Reply with *m to the last caller, then wait; *m receives the next message. */
static inline long mica_reply_recv(uint64_t ep, struct mica_msg *m)
{
	return mica_ipc(SYS_REPLY_RECV, ep, m);
}

/* Reply with *m to the last caller without waiting. */
static inline long mica_reply(struct mica_msg *m)
{
	return mica_ipc(SYS_REPLY, 0, m);
}

static inline long mica_yield(void)
{
	return mica_syscall6(SYS_YIELD, 0, 0, 0, 0, 0, 0);
}
/* Let the calling thread run only on the harts in `mask` (bit i: hart index i;
 * 0 leaves it unchanged). Returns the previous mask, or -MICA_EINVAL when the
 * mask names no running hart; *hart (if not NULL) gets the index of the hart
 * the thread is on when the call returns, which is always one in the mask. */
static inline long mica_thread_affinity(uint64_t mask, unsigned *hart)
{
	register unsigned long r0 __asm__("a0") = mask;
	register unsigned long r1 __asm__("a1");
	register unsigned long r7 __asm__("a7") = SYS_THREAD_AFFINITY;
	__asm__ volatile("ecall"
			 : "+r"(r0), "=r"(r1)
			 : "r"(r7)
			 : "memory", "a2", "a3", "a4", "a5", "a6");
	if (hart && (long)r0 >= 0)
		*hart = (unsigned)r1;
	return (long)r0;
}
static inline long mica_debug_write(const void *buf, size_t len)
{
	return mica_syscall6(SYS_DEBUG_WRITE, (uintptr_t)buf, len, 0, 0, 0, 0);
}
/* A program's entry point: `arg` is what its creator passed (the boot-info
 * address for the root task); the return value is the task's exit status. */
int mica_main(uintptr_t arg);

_Noreturn void mica_task_exit(long status);
_Noreturn void mica_thread_exit(void);
/* Where a task's further threads start (USER_THREAD_FLAG in mica/bootinfo.h),
 * with the argument they were given; returning ends the thread. A weak
 * default ends them at once. */
void mica_thread_main(uintptr_t arg);

static inline long mica_cap_derive(uint64_t src, uint64_t dst, unsigned rights, uint64_t badge)
{
	return mica_syscall6(SYS_CAP_DERIVE, src, dst, rights, badge, 0, 0);
}
static inline long mica_cap_delete(uint64_t slot)
{
	return mica_syscall6(SYS_CAP_DELETE, slot, 0, 0, 0, 0, 0);
}
/* Type of the capability in `slot` (CAP_TYPE_*), with rights and badge. */
long mica_cap_identify(uint64_t slot, unsigned *rights, uint64_t *badge);
static inline long mica_kernel_info(struct mica_kernel_info *info)
{
	return mica_syscall6(SYS_KERNEL_INFO, (uintptr_t)info, 0, 0, 0, 0, 0);
}

/* Privileged calls (the memory-control capability or a task capability). */
static inline long mica_endpoint_create(uint64_t memctl, uint64_t dst)
{
	return mica_syscall6(SYS_ENDPOINT_CREATE, memctl, dst, 0, 0, 0, 0);
}
static inline long mica_space_create(uint64_t memctl, uint64_t dst, const char *name)
{
	return mica_syscall6(SYS_SPACE_CREATE, memctl, dst, (uintptr_t)name, 0, 0, 0);
}
/* As mica_space_create, and the task's end is posted to the endpoint in
 * `exit_slot` with that capability's badge (label IPC_LABEL_TASK_EXIT). */
static inline long mica_space_create_notify(uint64_t memctl, uint64_t dst, const char *name,
					    uint64_t exit_slot)
{
	return mica_syscall6(SYS_SPACE_CREATE, memctl, dst, (uintptr_t)name, exit_slot, 0, 0);
}
static inline long mica_task_kill(uint64_t task)
{
	return mica_syscall6(SYS_TASK_KILL, task, TASK_KILL_REPORT, 0, 0, 0, 0);
}
/* End a task without the kernel's console line (the caller reports why). */
static inline long mica_task_kill_quiet(uint64_t task)
{
	return mica_syscall6(SYS_TASK_KILL, task, TASK_KILL_QUIET, 0, 0, 0, 0);
}
static inline long mica_mm_enter(uint64_t task, const struct mica_mapping *m, size_t n)
{
	return mica_syscall6(SYS_MM_ENTER, task, (uintptr_t)m, n, 0, 0, 0);
}
static inline long mica_mm_remove(uint64_t task, uint64_t va, uint64_t len)
{
	return mica_syscall6(SYS_MM_REMOVE, task, va, len, 0, 0, 0);
}
static inline long mica_mm_protect(uint64_t task, uint64_t va, uint64_t len, uint64_t prot)
{
	return mica_syscall6(SYS_MM_PROTECT, task, va, len, prot, 0, 0);
}
long mica_mm_extract(uint64_t task, uint64_t va, uint64_t *pa, uint64_t *prot);
static inline long mica_thread_start(uint64_t task, uint64_t pc, uint64_t sp, uint64_t arg,
				     uint64_t ipcbuf, unsigned prio, uint64_t fault_slot)
{
	return mica_syscall6(SYS_THREAD_START, task, pc, sp, arg, ipcbuf,
			     prio | (fault_slot << 8));
}
static inline long mica_mm_donate(uint64_t memctl, uint64_t pa, uint64_t len)
{
	return mica_syscall6(SYS_MM_DONATE, memctl, pa, len, 0, 0, 0);
}
static inline long mica_cap_copy_to(uint64_t task, uint64_t src, uint64_t dst, unsigned rights,
				    uint64_t badge)
{
	return mica_syscall6(SYS_CAP_COPY_TO, task, src, dst, rights, badge, 0);
}

#endif
