#include "kern/smp.h"

#include "arch/riscv64/csr.h"
#include "arch/riscv64/pmap.h"
#include "arch/riscv64/timer.h"
#include "arch/riscv64/trapframe.h"
#include "kern/bkl.h"
#include "kern/console.h"
#include "kern/karena.h"
#include "kern/kmem.h"
#include "kern/panic.h"
#include "kern/sched.h"
#include "lib/platform.h"
#include "mica/param.h"
#include "sbi/sbi.h"

struct hart_block hart_blocks[MICA_MAX_HARTS];
unsigned harts_online = 1;
uint64_t harts_online_mask = 1;
struct ticket_lock bkl;

/* Spins before a waiter sleeps: a few microseconds on the U74, longer than
 * the kernel's usual hold time (a system call is a few hundred instructions). */
#define BKL_SPINS 2000

/* => interrupts off; this hart drew `ticket` */
void bkl_wait(uint32_t ticket)
{
	struct hart *h = this_hart();
	for (;;) {
		for (unsigned i = 0; i < BKL_SPINS; i++)
			if (__atomic_load_n(&bkl.owner, __ATOMIC_ACQUIRE) == ticket)
				return;
		__atomic_fetch_or(&bkl.sleepers, hart_bit(h), __ATOMIC_SEQ_CST);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&bkl.owner, __ATOMIC_ACQUIRE) != ticket)
			wfi(); /* sstatus.SIE clear: a pending IPI or tick ends it at once */
		__atomic_fetch_and(&bkl.sleepers, ~hart_bit(h), __ATOMIC_SEQ_CST);
		/* Take what woke us: a tick (its handler re-arms the timer) or an
		 * IPI (its handler notes it for user_trap). */
		csr_set(sstatus, SSTATUS_SIE);
		csr_clear(sstatus, SSTATUS_SIE);
	}
}

/* => any context: hart ids never change once the harts run */
void bkl_wake_sleepers(void)
{
	uint64_t m = __atomic_load_n(&bkl.sleepers, __ATOMIC_RELAXED);
	if (m)
		smp_send_ipi(m);
}

/* What secondary_entry (boot/head.S) reads, by physical address, before it
 * has a stack or the MMU: the order is fixed by the assembly. */
struct secondary_args {
	uint64_t satp, sp, tp, entry;
};
static struct secondary_args secondary_args[MICA_MAX_HARTS];

/* Each secondary's own setup, not yet seen by the boot hart. */
struct secondary_setup {
	uint64_t timebase_hz;
	bool sstc;
	volatile int state; /* 0 waiting, 1 reported in, -1 abandoned by the boot hart */
};
static struct secondary_setup secondary_setup[MICA_MAX_HARTS];

extern char secondary_entry[], secondary_high[];

/* Generous: under emulation a hart's first steps can wait for the host's
 * processors far longer than they take on silicon. */
#define SECONDARY_WAIT_MS 4000

_Noreturn void secondary_main(void);

/* Calls `fn` once per 64-hart window of hart ids that `mask` (indices) touches,
 * with the window's base and the ids' bits inside it. */
static long for_each_hartid_window(uint64_t mask,
                                   long (*fn)(uint64_t bits, uint64_t base, const void *ctx),
                                   const void *ctx)
{
	while (mask) {
		uint64_t base = hart_at((unsigned)__builtin_ctzl(mask))->hartid & ~63UL;
		uint64_t bits = 0, rest = 0;
		for (uint64_t m = mask; m; m &= m - 1) {
			unsigned i = (unsigned)__builtin_ctzl(m);
			uint64_t id = hart_at(i)->hartid;
			if ((id & ~63UL) == base)
				bits |= 1UL << (id & 63);
			else
				rest |= 1UL << i;
		}
		long err = fn(bits, base, ctx);
		if (err)
			return err;
		mask = rest;
	}
	return 0;
}

static long ipi_window(uint64_t bits, uint64_t base, const void *ctx)
{
	(void)ctx;
	return sbi_send_ipi(bits, base);
}

/* => any context: hart ids never change once the harts run */
void smp_send_ipi(uint64_t mask)
{
	long err = for_each_hartid_window(mask, ipi_window, 0);
	if (err)
		panic("smp: IPI to hart mask 0x%llx failed (SBI error %ld)",
		      (unsigned long long)mask, err);
}

struct fence_req {
	uint64_t start, size, asid;
	int all_asids;
};

static long fence_window(uint64_t bits, uint64_t base, const void *ctx)
{
	const struct fence_req *r = ctx;
	if (r->all_asids)
		return sbi_remote_sfence_vma(bits, base, r->start, r->size);
	return sbi_remote_sfence_vma_asid(bits, base, r->start, r->size, r->asid);
}

/* => BKL held, or the kernel pmap lock */
void smp_remote_fence(uint64_t mask, uint64_t start, uint64_t size, uint64_t asid, int all_asids)
{
	struct fence_req r = {start, size, asid, all_asids};
	long err = for_each_hartid_window(mask, fence_window, &r);
	/* Going on would leave stale translations to memory that may be reused. */
	if (err)
		panic("smp: remote fence to hart mask 0x%llx failed (SBI error %ld)",
		      (unsigned long long)mask, err);
}

static uint64_t ms_to_ticks(const struct plat_info *p, uint64_t ms)
{
	return p->timebase_hz / 1000 * ms;
}

enum start_result { START_OK, START_REFUSED, START_LOST };

static enum start_result start_one(const struct plat_info *p, const struct plat_hart *ph,
				   unsigned index)
{
	struct hart_block *b = &hart_blocks[index];
	hart_block_init(b, ph->hartid, index);
	struct hart *h = &b->local.h;
	char *stack = km_alloc(KSTACK_SIZE, KM_STACK | KM_CANFAIL);
	if (!stack) {
		kprintf("smp:       no memory for hart %u's stack; not started\n", ph->hartid);
		return START_REFUSED;
	}
	h->kstack_bottom = (uint64_t)stack;
	h->kstack_top = (uint64_t)stack + KSTACK_SIZE;
	h->active_pmap = &kernel_pmap;
	secondary_setup[index].timebase_hz = p->timebase_hz;
	secondary_setup[index].sstc = ph->sstc;
	secondary_setup[index].state = 0;
	struct secondary_args *a = &secondary_args[index];
	a->satp = kernel_pmap.satp;
	a->sp = h->kstack_top;
	a->tp = (uint64_t)b->tls;
	a->entry = (uint64_t)secondary_high;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	long err = sbi_hart_start(ph->hartid, kva_to_pa(secondary_entry), kva_to_pa(a));
	if (err != SBI_SUCCESS) {
		kprintf("smp:       HSM refused to start hart %u (SBI error %ld)\n", ph->hartid,
		        err);
		km_free(stack, KSTACK_SIZE, KM_STACK);
		return START_REFUSED;
	}
	uint64_t deadline = rdtime() + ms_to_ticks(p, SECONDARY_WAIT_MS);
	while (__atomic_load_n(&secondary_setup[index].state, __ATOMIC_ACQUIRE) == 0) {
		if (rdtime() <= deadline) {
			/* Sleep rather than spin: the new hart's IPI or the next tick
			 * wakes us (and an emulator gets to run the new hart). */
			wfi();
			csr_set(sstatus, SSTATUS_SIE);
			csr_clear(sstatus, SSTATUS_SIE);
			continue;
		}
		/* Whichever side moves the state first wins: a hart that arrives
		 * after this parks for good (its stack stays allocated for it). */
		int expected = 0;
		if (__atomic_compare_exchange_n(&secondary_setup[index].state, &expected, -1, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			kprintf("smp:       hart %u did not report in within %u ms; not used\n",
				ph->hartid, SECONDARY_WAIT_MS);
			return START_LOST;
		}
	}
	return START_OK;
}

static void start_all(const struct plat_info *p)
{
	if (p->nusable <= 1)
		return;
	if (!sbi.hsm) {
		kprintf("smp:       the firmware has no SBI HSM extension: other harts stay off\n");
		return;
	}
	if (!sbi.ipi || !sbi.rfence) {
		kprintf("smp:       the firmware lacks SBI %s: other harts stay off\n",
		        !sbi.ipi ? "IPI" : "RFENCE");
		return;
	}
	for (unsigned i = 0; i < p->nharts; i++) {
		const struct plat_hart *ph = &p->harts[i];
		if (!ph->usable || ph->hartid == this_hart()->hartid)
			continue;
		if (harts_online == MICA_MAX_HARTS) {
			kprintf("smp:       more than %u usable harts; hart %u not started\n",
			        MICA_MAX_HARTS, ph->hartid);
			continue;
		}
		long st = sbi_hart_status(ph->hartid);
		if (st != SBI_HSM_STOPPED) {
			kprintf(
			    "smp:       hart %u is in HSM state %ld, not stopped; not started\n",
			    ph->hartid, st);
			continue;
		}
		unsigned index = harts_online;
		enum start_result r = start_one(p, ph, index);
		if (r == START_LOST) {
			/* It may still come up on that slot's stack and args: no other
			 * hart may have them, and indices must stay dense. */
			kprintf("smp:       no further harts started\n");
			return;
		}
		if (r == START_REFUSED)
			continue;
		harts_online++;
		harts_online_mask |= 1UL << index;
	}
}

/* => boot hart, BKL held, after the root task exists */
void smp_start_secondaries(const struct plat_info *p)
{
	start_all(p);
	kprintf("smp:       %u hart%s running tasks (hart ids by index:", harts_online,
	        harts_online == 1 ? "" : "s");
	for (unsigned i = 0; i < harts_online; i++)
		kprintf(" %llu", (unsigned long long)hart_at(i)->hartid);
	kprintf(")\n");
}

/* A secondary hart's first C code: on its own stack, with the kernel's tables
 * and its tp, interrupts off. => secondary hart */
_Noreturn void secondary_main(void)
{
	struct hart *h = this_hart();
	struct secondary_setup *s = &secondary_setup[h->index];
	sfence_vma_all();
	csr_clear(sstatus, SSTATUS_FS);
	trap_init();
	int expected = 0;
	if (!__atomic_compare_exchange_n(&s->state, &expected, 1, false, __ATOMIC_ACQ_REL,
	                                 __ATOMIC_ACQUIRE)) {
		/* The boot hart gave up on us: say so, so that a slow start can be
		 * told from one that never happens. */
		kprintf("smp:       hart %llu came up after the boot hart gave up; parked\n",
		        (unsigned long long)h->hartid);
		csr_write(sie, 0);
		for (;;)
			wfi();
	}
	smp_send_ipi(1); /* the boot hart sleeps until we report in */
	timer_init(s->timebase_hz, MICA_HZ, s->sstc);
	csr_write(scounteren, 7);
	csr_set(sie, SIE_SSIE);
	bkl_lock();
	pmap_hart_init();
	sched_start();
}
