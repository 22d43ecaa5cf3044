/* The periodic tick: Sstc's stimecmp when the hart has it (no firmware trip
 * per tick), the SBI TIME extension otherwise (the VisionFive 2's U74 cores). */
#ifndef MICA_ARCH_TIMER_H
#define MICA_ARCH_TIMER_H

#include <stdbool.h>
#include <stdint.h>

/* Start ticking at `hz` on this hart; `dt_sstc` is what the tree claims. */
void timer_init(uint64_t timebase_hz, unsigned hz, bool dt_sstc);
void timer_interrupt(void);

#endif
