#include "arch/riscv64/pmap.h"

#include <string.h>

#include "arch/riscv64/csr.h"
#include "arch/riscv64/layout.h"
#include "kern/hart.h"
#include "kern/kmem.h"
#include "kern/kpool.h"
#include "kern/panic.h"
#include "kern/smp.h"
#include "kern/spinlock.h"
#include "mica/kassert.h"
#include "lib/platform.h"
#include "sbi/sbi.h"
#include "mica/errno.h"
#include "mica/param.h"

struct pmap kernel_pmap;
static struct spinlock kernel_pmap_lock;
static unsigned asid_bits, asid_bits_limit;
static uint64_t asid_next = 1;
uint64_t pmap_current_generation = 1;
/* ASIDs handed out in the current generation (bit 0: the kernel's). */
static uint64_t asid_used[(1UL << 16) / 64];
uint64_t pmap_shootdowns, pmap_shootdown_harts; /* RFENCE calls, and harts they reached */
uint64_t pmap_asids_kept;    /* ASIDs carried into a new generation for other harts */
uint64_t pmap_smp_rollovers; /* new generations while several harts ran tasks */
static unsigned devwin_next;

extern char _start[], _etext[], _erodata[], _end[];

static void *pmap_kva(void *ctx, uint64_t pa)
{
	(void)ctx;
	return pa_to_kva(pa);
}

static int pmap_alloc_table(void *ctx, uint64_t *pa)
{
	(void)ctx;
	return kpool_alloc_page(pa);
}

static void pmap_free_table(void *ctx, uint64_t pa)
{
	(void)ctx;
	kpool_free_page(pa);
}

static const struct pt_mem pmap_mem = {
	.kva = pmap_kva, .alloc = pmap_alloc_table, .free = pmap_free_table};

static inline void sfence_vma_asid(uint64_t asid)
{
	__asm__ volatile("sfence.vma zero, %0" ::"r"(asid) : "memory");
}

static inline void sfence_vma_page(uint64_t va, uint64_t asid)
{
	__asm__ volatile("sfence.vma %0, %1" ::"r"(va), "r"(asid) : "memory");
}

static inline void sfence_vma_page_all_asids(uint64_t va)
{
	__asm__ volatile("sfence.vma %0, zero" ::"r"(va) : "memory");
}

static void pmap_shootdown(struct pmap *pm, const struct pt_flush *fl);

/* Apply the fence policy (see pmap.h) to what one operation changed.
 * Every hart in pm->harts may hold entries tagged with pm->asid, whatever the
 * generations say, so the fence never depends on them. */
static void pmap_fence(struct pmap *pm, const struct pt_flush *fl)
{
	if (!fl->reduced && !fl->raised)
		return;
	bool kernel = pm == &kernel_pmap;
	uint64_t pages = (fl->end - fl->start) >> PAGE_SHIFT;
	if (pages > PMAP_FENCE_PAGES || asid_bits == 0) {
		if (kernel || asid_bits == 0)
			sfence_vma_all();
		else
			sfence_vma_asid(pm->asid);
	} else {
		for (uint64_t va = fl->start; va < fl->end; va += PAGE_SIZE) {
			if (kernel)
				sfence_vma_page_all_asids(va); /* global leaves match every ASID */
			else
				sfence_vma_page(va, pm->asid);
		}
	}
	pmap_shootdown(pm, fl);
}

/* The other harts that may cache the translations must not use them once
 * the change counts as done. Only a reduction needs this. Kernel leaves are
 * global and every hart may use them at any moment: all get one RFENCE.
 *
 * For a user space, only the harts that have it in satp right now get the
 * RFENCE (one SBI call for the whole range). Every other hart in pm->harts
 * can reach pm's ASID again only through pmap_activate*() under the BKL,
 * which this hart holds; so instead of an IPI it is marked stale (its
 * asid_generation zeroed) and flushes its whole TLB before it loads any
 * ASID. That keeps idle harts asleep and makes the common case, a space
 * running on one hart, free of IPIs. */
static void pmap_shootdown(struct pmap *pm, const struct pt_flush *fl)
{
	struct hart *self = this_hart();
	if (!fl->reduced)
		return;
	uint64_t others;
	if (pm == &kernel_pmap) {
		others = harts_online_mask & ~hart_bit(self);
	} else {
		others = 0;
		for (uint64_t m = pm->harts & ~hart_bit(self); m; m &= m - 1) {
			struct hart *h = hart_at((unsigned)__builtin_ctzl(m));
			if (h->active_pmap == pm) {
				others |= hart_bit(h);
			} else {
				h->asid_generation = 0;
				pm->harts &= ~hart_bit(h);
			}
		}
	}
	if (!others)
		return;
	uint64_t start = fl->start, size = fl->end - fl->start;
	if ((size >> PAGE_SHIFT) > PMAP_FENCE_PAGES) {
		start = 0;
		size = (uint64_t)-1; /* the whole ASID (the SBI spec's "flush all") */
	}
	smp_remote_fence(others, start, size, pm->asid, pm == &kernel_pmap || asid_bits == 0);
	pmap_shootdowns++;
	pmap_shootdown_harts += (uint64_t)__builtin_popcountl(others);
}

static unsigned probe_asid_bits(void)
{
	uint64_t old = csr_read(satp);
	csr_write(satp, old | (0xffffUL << SATP_ASID_SHIFT));
	uint64_t got = (csr_read(satp) >> SATP_ASID_SHIFT) & 0xffff;
	csr_write(satp, old);
	sfence_vma_all();
	unsigned bits = 0;
	while (got & 1) {
		bits++;
		got >>= 1;
	}
	return bits;
}

static void kmap_or_panic(uint64_t va, uint64_t pa, uint64_t len, uint64_t prot, const char *what)
{
	struct pt_flush fl;
	pt_flush_init(&fl);
	int err = pt_enter(&kernel_pmap.pt, va, pa, len, prot, 0, &fl);
	if (err)
		panic("pmap: cannot map %s (%d)", what, err);
}

/* => boot hart, before other harts run */
void pmap_bootstrap(const struct plat_info *p, struct pmap_boot_info *info)
{
	if (pt_init(&kernel_pmap.pt, &pmap_mem, PT_SPACE_KERNEL, 0))
		panic("pmap: no page for the kernel root");

	/* The linear map: every RAM bank, the largest leaves that fit, no execute. */
	for (unsigned i = 0; i < p->nram; i++) {
		uint64_t b = p->ram[i].base & ~PAGE_MASK;
		uint64_t e = (p->ram[i].base + p->ram[i].size) & ~PAGE_MASK;
		if (e > LINEAR_SIZE)
			e = LINEAR_SIZE;
		if (e > b)
			kmap_or_panic(LINEAR_BASE + b, b, e - b, PTE_R | PTE_W, "the linear map");
	}
	memcpy(info->linear_leaves, kernel_pmap.pt.leaves, sizeof(info->linear_leaves));

	/* The image, W^X: text RX, rodata R, data and bss RW. */
	uint64_t img = (uint64_t)_start;
	uint64_t text = (uint64_t)_etext - img, ro = (uint64_t)_erodata - (uint64_t)_etext;
	uint64_t rw = (uint64_t)_end - (uint64_t)_erodata;
	kmap_or_panic(img, boot_load_pa, text, PTE_R | PTE_X, "kernel text");
	kmap_or_panic(img + text, boot_load_pa + text, ro, PTE_R, "kernel rodata");
	kmap_or_panic(img + text + ro, boot_load_pa + text + ro, rw, PTE_R | PTE_W, "kernel data");

	/* Fill every other kernel root slot with a table now, so that user roots,
	 * which copy the kernel half once, never go stale. */
	uint64_t *root = pa_to_kva(kernel_pmap.pt.root_pa);
	for (unsigned slot = 256; slot < 512; slot++) {
		if (root[slot] & PTE_V)
			continue;
		uint64_t va = (uint64_t)slot << 30 | 0xffffff8000000000UL;
		bool wanted = (va >= KARENA_BASE && va < KARENA_BASE + KARENA_SIZE) ||
			      va == DEVWIN_BASE;
		if (!wanted)
			continue;
		uint64_t pa;
		if (kpool_alloc_page(&pa))
			panic("pmap: no page for kernel slot %u", slot);
		root[slot] = pte_make(pa, PTE_V);
		kernel_pmap.pt.tables++;
	}

	asid_bits = probe_asid_bits();
	/* A new generation must find a free ASID even when every other hart
	 * keeps its own: fewer than that, and switching flushes instead. */
	if (asid_bits && (1UL << asid_bits) - 1 < 2 * MICA_MAX_HARTS)
		asid_bits = 0;
	asid_bits_limit = asid_bits;
	asid_used[0] = 1;
	this_hart()->asid_generation = pmap_current_generation;
	this_hart()->active_pmap = &kernel_pmap;

	info->asid_bits = asid_bits;

	/* ASID 0 belongs to the kernel-only space; user pmaps start at 1. */
	kernel_pmap.asid = 0;
	kernel_pmap.asid_generation = pmap_current_generation;
	kernel_pmap.satp = SATP_MODE_SV39 | (kernel_pmap.pt.root_pa >> PAGE_SHIFT);
	sfence_vma_all();
	csr_write(satp, SATP_MODE_SV39 | (kernel_pmap.pt.root_pa >> PAGE_SHIFT));
	sfence_vma_all();

	char why[96];
	if (pt_check(&kernel_pmap.pt, why, sizeof(why)))
		panic("pmap: kernel tables unsound: %s", why);
}

/* => takes the kernel pmap lock */
void *pmap_map_device(uint64_t pa, uint64_t size)
{
	uint64_t first = pa & ~PAGE_MASK;
	uint64_t pages = (pa + size - first + PAGE_MASK) >> PAGE_SHIFT;
	spin_lock(&kernel_pmap_lock);
	/* The last page of the window stays unmapped: the trap self test uses it. */
	if (size == 0 || pages > (DEVWIN_SIZE >> PAGE_SHIFT) - 1 - devwin_next) {
		spin_unlock(&kernel_pmap_lock);
		return 0;
	}
	uint64_t va = DEVWIN_BASE + ((uint64_t)devwin_next << PAGE_SHIFT);
	struct pt_flush fl;
	pt_flush_init(&fl);
	int err = pt_enter(&kernel_pmap.pt, va, first, pages << PAGE_SHIFT, PTE_R | PTE_W,
			   PT_ENTER_NOSUPER, &fl);
	if (!err) {
		devwin_next += (unsigned)pages;
		pmap_fence(&kernel_pmap, &fl);
	}
	spin_unlock(&kernel_pmap_lock);
	return err ? 0 : (void *)(va + (pa - first));
}

/* => takes the kernel pmap lock for the kernel half */
int pmap_create(struct pmap *pm)
{
	memset(pm, 0, sizeof(*pm));
	spin_lock(&kernel_pmap_lock);
	int err = pt_init(&pm->pt, &pmap_mem, PT_SPACE_USER, pa_to_kva(kernel_pmap.pt.root_pa));
	spin_unlock(&kernel_pmap_lock);
	return err;
}

/* No fence: an ASID is never handed out twice in one generation, and every
 * hart flushes its whole TLB before it loads an ASID of a newer one, so the
 * stale entries of this one can never be used.
 * => BKL held; pmap in no hart's satp */
void pmap_destroy(struct pmap *pm)
{
	for (unsigned i = 0; i < harts_online; i++)
		KASSERT(hart_at(i)->active_pmap != pm);
	pt_destroy(&pm->pt);
}

/* => caller holds the pmap's address-space lock */
int pmap_enter(struct pmap *pm, uint64_t va, uint64_t pa, uint64_t len, uint64_t prot,
	       unsigned flags)
{
	struct pt_flush fl;
	pt_flush_init(&fl);
	int err = pt_enter(&pm->pt, va, pa, len, prot, flags, &fl);
	if (!err)
		pmap_fence(pm, &fl);
	return err;
}

/* => caller holds the pmap's address-space lock */
int pmap_remove(struct pmap *pm, uint64_t va, uint64_t len)
{
	struct pt_flush fl;
	pt_flush_init(&fl);
	int err = pt_remove(&pm->pt, va, len, &fl);
	if (!err)
		pmap_fence(pm, &fl);
	return err;
}

/* => caller holds the pmap's address-space lock */
int pmap_protect(struct pmap *pm, uint64_t va, uint64_t len, uint64_t prot)
{
	struct pt_flush fl;
	pt_flush_init(&fl);
	int err = pt_protect(&pm->pt, va, len, prot, &fl);
	if (!err)
		pmap_fence(pm, &fl);
	return err;
}

/* => caller holds the pmap's address-space lock */
int pmap_extract(struct pmap *pm, uint64_t va, uint64_t *pa, uint64_t *prot)
{
	uint64_t pte;
	int err = pt_extract(&pm->pt, va, pa, &pte, 0);
	if (!err && prot)
		*prot = pte & PTE_RWX;
	return err;
}

/* The ASIDs ran out: start a generation. The spaces other harts have in satp
 * keep their ASIDs (those harts go on using them until they switch); this hart
 * is about to switch and flush, so its space need not. => BKL held */
static void pmap_new_generation(void)
{
	uint64_t words = ((1UL << asid_bits_limit) + 63) / 64;
	pmap_current_generation++;
	memset(asid_used, 0, words * sizeof(asid_used[0]));
	asid_used[0] = 1;
	unsigned kept = 0;
	for (unsigned i = 0; i < harts_online; i++) {
		struct pmap *pm = hart_at(i)->active_pmap;
		if (hart_at(i) == this_hart() || !pm || pm == &kernel_pmap)
			continue;
		if (!(asid_used[pm->asid / 64] & (1UL << (pm->asid % 64))))
			kept++; /* two harts may run one space: count it once */
		pm->asid_generation = pmap_current_generation;
		asid_used[pm->asid / 64] |= 1UL << (pm->asid % 64);
	}
	asid_next = 1;
	pmap_asids_kept += kept;
	if (harts_online > 1)
		pmap_smp_rollovers++;
}

/* => BKL held */
static void pmap_assign_asid(struct pmap *pm)
{
	uint64_t max = (1UL << asid_bits_limit) - 1;
	for (bool turned = false;; turned = true) {
		while (asid_next <= max && (asid_used[asid_next / 64] >> (asid_next % 64) & 1))
			asid_next++;
		if (asid_next <= max)
			break;
		if (turned)
			panic("pmap: no free ASID even in a new generation");
		pmap_new_generation();
	}
	asid_used[asid_next / 64] |= 1UL << (asid_next % 64);
	pm->asid = asid_next++;
	pm->asid_generation = pmap_current_generation;
	/* A fresh ASID: no hart holds translations tagged with it for this space
	 * (entries under its old ASID can never be used again, see above). */
	pm->harts = 0;
	pm->satp = SATP_MODE_SV39 | (pm->asid << SATP_ASID_SHIFT) | (pm->pt.root_pa >> PAGE_SHIFT);
}

/* => BKL held, or the boot hart before other harts run */
void pmap_activate(struct pmap *pm)
{
	struct hart *h = this_hart();
	h->active_pmap = pm;
	if (asid_bits_limit == 0 || asid_bits == 0) {
		/* No ASIDs: asid_generation stays 0, so the fast switch never applies. */
		pm->asid_generation = 0;
		pm->harts |= hart_bit(h);
		csr_write(satp, SATP_MODE_SV39 | (pm->pt.root_pa >> PAGE_SHIFT));
		sfence_vma_all();
		return;
	}
	/* An ASID from an older generation, or one beyond a (test-)narrowed
	 * width, may be in use by another space: take a fresh one. */
	if (pm != &kernel_pmap && (pm->asid_generation != pmap_current_generation ||
				   pm->asid >= (1UL << asid_bits_limit)))
		pmap_assign_asid(pm);
	if (h->asid_generation != pmap_current_generation) {
		csr_write(satp, kernel_pmap.satp);
		sfence_vma_all();
		h->asid_generation = pmap_current_generation;
	}
	pm->harts |= hart_bit(h);
	csr_write(satp, pm->satp);
}

/* => BKL held */
void pmap_hart_init(void)
{
	struct hart *h = this_hart();
	sfence_vma_all();
	h->asid_generation = pmap_current_generation;
	h->active_pmap = &kernel_pmap;
	csr_write(satp, kernel_pmap.satp);
}

unsigned pmap_asid_bits(void)
{
	return asid_bits;
}

uint64_t pmap_asid_generation(void)
{
	return pmap_current_generation;
}

void pmap_limit_asid_bits(unsigned bits)
{
	asid_bits_limit = bits < asid_bits ? bits : asid_bits;
}
