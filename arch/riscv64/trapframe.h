/* What trap entry saves: every general register (slot i holds x<i>; slot 0
 * is unused) and the trap CSRs. The layout is shared with trap.S. */
#ifndef MICA_ARCH_TRAPFRAME_H
#define MICA_ARCH_TRAPFRAME_H

#define TF_SEPC (32 * 8)
#define TF_SSTATUS (33 * 8)
#define TF_SCAUSE (34 * 8)
#define TF_STVAL (35 * 8)
#define TF_SIZE (36 * 8)

#ifndef __ASSEMBLY__
#include <stdint.h>

struct trapframe {
	uint64_t x[32];
	uint64_t sepc, sstatus, scause, stval;
};

_Static_assert(sizeof(struct trapframe) == TF_SIZE, "trapframe layout out of sync with trap.S");

void trap_init(void);
void trap_handler(struct trapframe *tf);
/* Print registers and a frame-pointer backtrace for a fatal kernel trap. */
void trap_report(const struct trapframe *tf, const char *why);
const char *trap_cause_name(uint64_t scause);
#endif

#endif
