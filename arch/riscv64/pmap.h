/*
 * The pmap: Mica's only owner of `satp` and of TLB maintenance.
 *
 * One `struct pmap` per address space wraps the page-table core (pt.h) with an
 * ASID and the fence policy. The kernel half of every root is a copy of the
 * kernel pmap's root: all kernel root slots are filled at boot (linear map,
 * arena tables, image, device window) and never change afterwards, so user
 * roots never need to be resynchronised.
 *
 * TLB policy: a change that removes or narrows a translation is fenced before
 * the call returns: `sfence.vma va, asid` per page up to PMAP_FENCE_PAGES, one
 * `sfence.vma x0, asid` for the whole ASID above that, on this hart; then
 * the other harts that may hold the ASID (`harts`) are dealt with once per
 * operation, not per page: those running the space now get one SBI RFENCE
 * (remote_sfence_vma_asid) for the range, which OpenSBI answers only when
 * every target has fenced; the rest must flush their whole TLB before they
 * load any ASID again (see pmap_shootdown()). A change that only adds or
 * widens permissions is fenced locally (a cheap way to avoid the spurious
 * fault the spec otherwise allows) and never remotely: another hart holding
 * the narrower entry takes a fault and the retry sees the new one.
 *
 * ASIDs: the width is probed at boot. Each pmap gets an ASID tagged with a
 * generation and keeps it until the ASIDs run out; then a new generation
 * starts. The spaces that other harts have in satp at that moment keep their
 * ASIDs into the new generation (they are in use and must stay unique); all
 * others get fresh ones when next activated. Each hart records the generation
 * its TLB is clean for and flushes everything once before it loads an ASID of
 * a newer one. Switching between pmaps with current ASIDs writes `satp` and
 * nothing else. A machine with no ASID bits (or fewer than two per possible
 * hart) flushes on every switch.
 */
#ifndef MICA_ARCH_PMAP_H
#define MICA_ARCH_PMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "arch/riscv64/pt.h"
#include "kern/hart.h"

#define PMAP_FENCE_PAGES 32

struct plat_info;

struct pmap {
	struct pt pt;
	uint64_t asid;
	uint64_t asid_generation; /* 0: no ASID (a hart without ASIDs never assigns one) */
	uint64_t satp;            /* the satp value for asid, valid in asid_generation */
	uint64_t harts; /* indices of the harts that may cache translations of this ASID */
};

extern struct pmap kernel_pmap;

struct pmap_boot_info {
	unsigned asid_bits;
	uint64_t linear_leaves[3]; /* linear-map leaves by level: 4 KiB, 2 MiB, 1 GiB */
};

/* Build the kernel's own tables (W^X image, linear map with the largest pages
 * that fit, arena and device-window tables) and switch to them.
 * => boot hart, before other harts run */
void pmap_bootstrap(const struct plat_info *p, struct pmap_boot_info *info);

/* Map MMIO into the device window; NULL when the window is full.
 * => boot or driver setup; takes the kernel pmap lock */
void *pmap_map_device(uint64_t pa, uint64_t size);

/* => takes the kernel pmap lock for the kernel half */
int pmap_create(struct pmap *pm);
/* => BKL held; pmap in no hart's satp */
void pmap_destroy(struct pmap *pm);

/* prot is PTE_R/W/X. => caller holds the pmap's address-space lock */
int pmap_enter(struct pmap *pm, uint64_t va, uint64_t pa, uint64_t len, uint64_t prot,
	       unsigned flags);
/* => caller holds the pmap's address-space lock */
int pmap_remove(struct pmap *pm, uint64_t va, uint64_t len);
/* => caller holds the pmap's address-space lock */
int pmap_protect(struct pmap *pm, uint64_t va, uint64_t len, uint64_t prot);
/* => caller holds the pmap's address-space lock */
int pmap_extract(struct pmap *pm, uint64_t va, uint64_t *pa, uint64_t *prot);

/* Load `pm` into satp on this hart (and remember it as the hart's active
 * pmap). => BKL held, or the boot hart before other harts run */
void pmap_activate(struct pmap *pm);

/* A secondary hart's first word with the pmap: its TLB is clean.
 * => BKL held */
void pmap_hart_init(void);

extern uint64_t pmap_current_generation;
extern uint64_t pmap_shootdowns, pmap_shootdown_harts, pmap_asids_kept, pmap_smp_rollovers;

/* The IPC fastpath's switch: one CSR write when both the space's ASID and
 * this hart's TLB belong to the current generation, else the full
 * pmap_activate(). => BKL held */
static inline void pmap_activate_fast(struct hart *h, struct pmap *pm)
{
	uint64_t gen = pmap_current_generation;
	if (pm->asid_generation == gen && h->asid_generation == gen) {
		pm->harts |= 1UL << h->index;
		h->active_pmap = pm;
		__asm__ volatile("csrw satp, %0" ::"r"(pm->satp));
		return;
	}
	pmap_activate(pm);
}

unsigned pmap_asid_bits(void);
uint64_t pmap_asid_generation(void);
/* Test hook: run the next activations as if only `bits` ASID bits existed. */
void pmap_limit_asid_bits(unsigned bits);

#endif
