/* Boot-time checks that the hardware sees what the pmap and the kernel arena
 * say: each maps something, then reads, writes and takes expected faults
 * through real translations. */
#include <stdbool.h>
#include <string.h>

#include "arch/riscv64/csr.h"
#include "arch/riscv64/extable.h"
#include "arch/riscv64/layout.h"
#include "arch/riscv64/pmap.h"
#include "kern/hart.h"
#include "kern/karena.h"
#include "kern/kmem.h"
#include "kern/kpool.h"
#include "kern/ktest.h"
#include "lib/platform.h"
#include "mica/errno.h"
#include "mica/param.h"

#define SCRATCH_VA 0x10000UL

extern char _start[], _etext[], _erodata[];

static bool faults_with(uint64_t scause, uint64_t addr)
{
	return this_hart()->fixup_scause == scause && this_hart()->fixup_stval == addr;
}

/* Map a page in a scratch user space, reach it through satp with SUM set,
 * narrow it, remove it: each step must show in what the hart does. */
const char *ktest_pmap_scratch(const struct plat_info *p)
{
	(void)p;
	struct pmap pm;
	uint64_t frame, v;
	const char *why = 0;
	if (pmap_create(&pm) || kpool_alloc_page(&frame))
		return "no memory for a scratch space";
	volatile uint64_t *user = (volatile uint64_t *)SCRATCH_VA;
	uint64_t *alias = pa_to_kva(frame);
	csr_clear(sstatus, SSTATUS_SIE);
	csr_set(sstatus, SSTATUS_SUM);
	pmap_activate(&pm);
	if (probe_load(user, &v) || !faults_with(EXC_LOAD_PAGE_FAULT, SCRATCH_VA))
		why = "an unmapped user page did not fault";
	else if (pmap_enter(&pm, SCRATCH_VA, frame, PAGE_SIZE, PTE_R | PTE_W, 0))
		why = "pmap_enter failed";
	else if (!probe_store(user, 0x1234abcd) || alias[0] != 0x1234abcd)
		why = "a store through the new mapping did not reach the frame";
	else if (pmap_protect(&pm, SCRATCH_VA, PAGE_SIZE, PTE_R))
		why = "pmap_protect failed";
	else if (probe_store(user, 1) || !faults_with(EXC_STORE_PAGE_FAULT, SCRATCH_VA))
		why = "a store to a read-only page did not fault";
	else if (!probe_load(user, &v) || v != 0x1234abcd)
		why = "a read-only page could not be read";
	else if (pmap_remove(&pm, SCRATCH_VA, PAGE_SIZE))
		why = "pmap_remove failed";
	else if (probe_load(user, &v) || !faults_with(EXC_LOAD_PAGE_FAULT, SCRATCH_VA))
		why = "a removed page still translated";
	pmap_activate(&kernel_pmap);
	csr_clear(sstatus, SSTATUS_SUM);
	csr_set(sstatus, SSTATUS_SIE);
	unsigned long tables = pm.pt.tables;
	pmap_destroy(&pm);
	kpool_free_page(frame);
	if (!why && tables != 0)
		why = "empty page tables were not freed";
	return why;
}

/* Two spaces map different frames at one address; switching between them
 * must show each its own frame, also when the ASIDs run out and a new
 * generation starts. */
const char *ktest_pmap_asid_switch(const struct plat_info *p)
{
	(void)p;
	struct pmap a, b;
	uint64_t fa, fb, v;
	const char *why = 0;
	if (pmap_create(&a) || pmap_create(&b) || kpool_alloc_page(&fa) || kpool_alloc_page(&fb))
		return "no memory for scratch spaces";
	*(uint64_t *)pa_to_kva(fa) = 0xaaaa;
	*(uint64_t *)pa_to_kva(fb) = 0xbbbb;
	pmap_enter(&a, SCRATCH_VA, fa, PAGE_SIZE, PTE_R, 0);
	pmap_enter(&b, SCRATCH_VA, fb, PAGE_SIZE, PTE_R, 0);
	volatile uint64_t *user = (volatile uint64_t *)SCRATCH_VA;
	csr_clear(sstatus, SSTATUS_SIE);
	csr_set(sstatus, SSTATUS_SUM);
	for (unsigned round = 0; round < 2 && !why; round++) {
		/* Round 1 allows a single ASID, forcing a new generation on each switch. */
		if (round == 1)
			pmap_limit_asid_bits(pmap_asid_bits() ? 1 : 0);
		uint64_t gen = pmap_asid_generation();
		for (unsigned i = 0; i < 8 && !why; i++) {
			pmap_activate(i & 1 ? &b : &a);
			if (!probe_load(user, &v) || v != (i & 1 ? 0xbbbbu : 0xaaaau))
				why = "a switch showed the other space's frame";
		}
		if (!why && round == 0 && pmap_asid_bits() && a.asid == b.asid)
			why = "two live spaces share an ASID";
		if (!why && round == 1 && pmap_asid_bits() && pmap_asid_generation() == gen)
			why = "running out of ASIDs did not start a new generation";
	}
	pmap_limit_asid_bits(64);
	pmap_activate(&kernel_pmap);
	csr_clear(sstatus, SSTATUS_SUM);
	csr_set(sstatus, SSTATUS_SIE);
	pmap_destroy(&a);
	pmap_destroy(&b);
	kpool_free_page(fa);
	kpool_free_page(fb);
	return why;
}

/* Text is not writable, rodata is not writable, data is not executable. */
const char *ktest_kernel_wx(const struct plat_info *p)
{
	(void)p;
	uint64_t prot;
	if (pmap_extract(&kernel_pmap, (uint64_t)_start, 0, &prot) || prot != (PTE_R | PTE_X))
		return "kernel text is not exactly read-execute";
	if (pmap_extract(&kernel_pmap, (uint64_t)_etext, 0, &prot) || prot != PTE_R)
		return "kernel rodata is not read-only";
	if (pmap_extract(&kernel_pmap, (uint64_t)_erodata, 0, &prot) || prot != (PTE_R | PTE_W))
		return "kernel data is not read-write";
	if (pmap_extract(&kernel_pmap, LINEAR_BASE + p->ram[0].base + p->ram[0].size - PAGE_SIZE,
			 0, &prot) ||
	    (prot & PTE_X))
		return "the linear map is executable or incomplete";
	volatile uint64_t *text = (volatile uint64_t *)_start;
	if (probe_store(text, 0) || !faults_with(EXC_STORE_PAGE_FAULT, (uint64_t)_start))
		return "a store to kernel text did not fault";
	return 0;
}

/* Small and stack allocations, the stack guard and a virtual-only range. */
const char *ktest_karena_alloc(const struct plat_info *p)
{
	(void)p;
	uint64_t v;
	char *small = km_alloc(100, KM_ZERO | KM_CANFAIL);
	if (!small || small[0] != 0 || small[4095] != 0)
		return "km_alloc(KM_ZERO) did not give zeroed memory";
	memset(small, 0x5a, PAGE_SIZE);
	char *stack = km_alloc(4 * PAGE_SIZE, KM_STACK | KM_CANFAIL);
	if (!stack)
		return "no kernel stack";
	const char *why = 0;
	if (!probe_store((volatile uint64_t *)(stack + 4 * PAGE_SIZE - 8), 7))
		why = "the top of a kernel stack is not writable";
	else if (probe_load((volatile uint64_t *)(stack - 8), &v) ||
		 !faults_with(EXC_LOAD_PAGE_FAULT, (uint64_t)(stack - 8)))
		why = "the guard page below a kernel stack is mapped";
	char *va = km_alloc(16 * PAGE_SIZE, KM_VAONLY | KM_CANFAIL);
	if (!why && (!va || probe_load((volatile uint64_t *)va, &v)))
		why = "a virtual-only reservation is mapped";
	km_free(va, 16 * PAGE_SIZE, KM_VAONLY);
	km_free(stack, 4 * PAGE_SIZE, KM_STACK);
	km_free(small, 100, 0);
	/* Freed and reallocated with KM_ZERO: stale bytes must not show through. */
	char *again = km_alloc(100, KM_ZERO | KM_CANFAIL);
	if (!why && (!again || again[0] != 0))
		why = "km_alloc(KM_ZERO) returned stale contents";
	km_free(again, 100, 0);
	return why;
}

/* Starve the pool: allocations fail cleanly with KM_CANFAIL; pages donated
 * afterwards make the same allocation succeed; everything comes back. */
const char *ktest_karena_starve_donate(const struct plat_info *p)
{
	(void)p;
	enum { DONATE_PAGES = 32, CHUNK = 16 * PAGE_SIZE, MAX_CHUNKS = 64 };
	static void *chunks[MAX_CHUNKS];
	uint64_t donation[DONATE_PAGES];
	struct kpool_stats before, after;
	struct karena_stats ks0, ks1;
	karena_drain();
	kpool_get_stats(&before);
	karena_get_stats(&ks0);
	for (unsigned i = 0; i < DONATE_PAGES; i++)
		if (kpool_alloc_page(&donation[i]))
			return "could not set pages aside to donate";
	kpool_set_starved(1);
	/* Drain what is already free so nothing but donations can back memory. */
	karena_drain();
	unsigned n = 0;
	const char *why = 0;
	while (n < MAX_CHUNKS && (chunks[n] = km_alloc(CHUNK, KM_CANFAIL)) != 0)
		n++;
	if (n == MAX_CHUNKS)
		why = "a starved pool kept allocating";
	void *after_donation = 0;
	if (!why) {
		karena_get_stats(&ks1);
		if (ks1.failures == ks0.failures)
			why = "the failure was not counted";
		/* The memory server's answer: donate frames, then retry. Pages of
		 * a donation need not be contiguous, so give them one by one. */
		for (unsigned i = 0; i < DONATE_PAGES && !why; i++)
			if (km_donate(donation[i], PAGE_SIZE))
				why = "km_donate refused RAM";
		if (!why && !(after_donation = km_alloc(CHUNK, KM_CANFAIL | KM_ZERO)))
			why = "allocation still failed after a donation";
		if (!why && km_donate(donation[0] + 1, PAGE_SIZE) != -MICA_EINVAL)
			why = "km_donate took a misaligned range";
	}
	km_free(after_donation, CHUNK, 0);
	while (n > 0)
		km_free(chunks[--n], CHUNK, 0);
	kpool_set_starved(0);
	karena_drain();
	kpool_get_stats(&after);
	if (!why && after.boot_free_pages + after.donated_free !=
			    before.boot_free_pages + before.donated_free)
		why = "pages went missing between starvation and recovery";
	return why;
}
