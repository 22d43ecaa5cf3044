/* Per-hart kernel data, reached through `tp`.
 *
 * picolibc keeps a few variables (errno among them) in thread-local storage,
 * addressed as tp + offset. So tp points at each hart's TLS block and the
 * kernel's own per-hart structure sits just below it, at tp - HART_LOCAL_SIZE. */
#ifndef MICA_KERN_HART_H
#define MICA_KERN_HART_H

#define HART_LOCAL_SIZE 256
#define HART_TLS_SIZE 256

/* Offsets into struct hart used by trap.S (checked below). */
#define HART_CUR_CTX 0
#define HART_KSTACK_TOP 8
#define HART_SCRATCH 16

#ifndef __ASSEMBLY__
#include <stdbool.h>
#include <stdint.h>

struct trapframe;
struct pmap;

struct thread;

struct hart {
	struct trapframe *cur_ctx; /* the user context trap.S saves into */
	uint64_t kstack_top;       /* the kernel stack a user trap runs on */
	uint64_t scratch;          /* trap.S spills t0 here */
	struct thread *cur;        /* the thread this hart runs, or NULL */
	struct pmap *active_pmap;  /* what satp holds; changed only under the BKL */
	uint64_t hartid;
	unsigned index;            /* 0 for the boot hart, then device-tree order */
	uint64_t asid_generation;  /* the ASID generation this hart's TLB is clean for */
	uint64_t kstack_bottom;    /* for the backtrace's bounds check */
	bool ipi_seen;             /* an IPI was taken in kernel mode: reschedule */
	uint64_t ticks;          /* timer interrupts taken */
	uint64_t next_deadline;  /* absolute time of the next tick */
	uint64_t tick_interval;  /* timebase ticks per scheduler tick */
	bool sstc;               /* stimecmp usable on this hart */
	/* Set by the trap handler when an extable fixup caught an exception. */
	uint64_t fixup_scause;
	uint64_t fixup_stval;
};

struct hart_block {
	union {
		struct hart h;
		char pad[HART_LOCAL_SIZE];
	} local;
	char tls[HART_TLS_SIZE] __attribute__((aligned(16)));
};

_Static_assert(sizeof(struct hart) <= HART_LOCAL_SIZE, "struct hart outgrew its slot");
_Static_assert(__builtin_offsetof(struct hart, cur_ctx) == HART_CUR_CTX, "trap.S offsets");
_Static_assert(__builtin_offsetof(struct hart, kstack_top) == HART_KSTACK_TOP, "trap.S offsets");
_Static_assert(__builtin_offsetof(struct hart, scratch) == HART_SCRATCH, "trap.S offsets");

static inline struct hart *this_hart(void)
{
	uintptr_t tp;
	__asm__("mv %0, tp" : "=r"(tp));
	return (struct hart *)(tp - HART_LOCAL_SIZE);
}

void hart_block_init(struct hart_block *b, uint64_t hartid, unsigned index);
#endif

#endif
