/*
 * Harts beyond the boot hart: started through SBI HSM, named by a dense index
 * (the boot hart is 0, then the device tree's other usable harts in order),
 * and poked with IPIs. Masks of harts are always masks of indices; only the
 * SBI calls speak hart ids.
 */
#ifndef MICA_KERN_SMP_H
#define MICA_KERN_SMP_H

#include <stdint.h>

#include "kern/hart.h"
#include "mica/syscall.h"

struct plat_info;

extern struct hart_block hart_blocks[MICA_MAX_HARTS];
extern unsigned harts_online;
extern uint64_t harts_online_mask;

static inline struct hart *hart_at(unsigned index)
{
	return &hart_blocks[index].local.h;
}

static inline uint64_t hart_bit(const struct hart *h)
{
	return 1UL << h->index;
}

/* Start every other usable hart that HSM reports stopped; each comes up
 * with its own stack, trap vector and timer, then waits for the BKL.
 * => boot hart, BKL held, after the root task exists */
void smp_start_secondaries(const struct plat_info *p);

/* Interrupt the harts in `mask` (indices) so that they enter the kernel.
 * => any context */
void smp_send_ipi(uint64_t mask);

/* Flush [start, start + size) from the TLBs of the harts in `mask`: for one
 * ASID, or for every ASID when all_asids is set (global kernel leaves, or a
 * machine without ASIDs). Returns once every hart has flushed.
 * => BKL held, or the kernel pmap lock */
void smp_remote_fence(uint64_t mask, uint64_t start, uint64_t size, uint64_t asid, int all_asids);

#endif
