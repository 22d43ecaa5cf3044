#include "arch/riscv64/timer.h"

#include "arch/riscv64/csr.h"
#include "arch/riscv64/extable.h"
#include "kern/hart.h"
#include "sbi/sbi.h"

static void timer_program(struct hart *h)
{
	if (h->sstc)
		__asm__ volatile("csrw 0x14d, %0" ::"r"(h->next_deadline));
	else
		sbi_set_timer(h->next_deadline);
}

/* => this hart, interrupts off */
void timer_init(uint64_t timebase_hz, unsigned hz, bool dt_sstc)
{
	struct hart *h = this_hart();
	/* The tree may list Sstc while M-mode left menvcfg.STCE clear (old
	 * OpenSBI): only a CSR access that does not trap proves it usable. */
	h->sstc = dt_sstc && probe_stimecmp();
	h->tick_interval = timebase_hz / hz;
	if (h->tick_interval == 0)
		h->tick_interval = 1;
	h->next_deadline = rdtime() + h->tick_interval;
	timer_program(h);
	csr_set(sie, SIE_STIE);
}

/* => interrupt context on this hart */
void timer_interrupt(void)
{
	struct hart *h = this_hart();
	h->ticks++;
	/* Deadlines advance by whole intervals so the tick does not drift; after a
	 * long stall skip the missed ones rather than firing a burst. */
	h->next_deadline += h->tick_interval;
	uint64_t now = rdtime();
	if (h->next_deadline <= now)
		h->next_deadline = now + h->tick_interval;
	timer_program(h);
}
