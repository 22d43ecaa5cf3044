/*
 * Sv39 page tables as a data structure: enter, remove, protect and extract
 * ranges, choosing 1 GiB and 2 MiB leaves wherever the range and the frames
 * allow, splitting a superpage when only part of it changes, and freeing
 * tables that become empty.
 *
 * This layer never touches a CSR or the TLB: it reports what changed in a
 * `struct pt_flush` and the caller (the pmap) decides how to fence. It reaches
 * table memory only through `struct pt_mem`, so host tests run it against a
 * simulated physical memory and walk every table after every operation.
 *
 * Every operation is all-or-nothing: the tables it may need (new tables for
 * enter, split tables for remove and protect) are counted and allocated before
 * anything changes, so -MICA_ENOMEM leaves the tables exactly as they were.
 */
#ifndef MICA_ARCH_PT_H
#define MICA_ARCH_PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/riscv64/pte.h"

struct pt_mem {
	/* Where the table at physical address `pa` can be read and written. */
	void *(*kva)(void *ctx, uint64_t pa);
	/* A zeroed, page-aligned page; 0 or -MICA_ENOMEM. */
	int (*alloc)(void *ctx, uint64_t *pa);
	void (*free)(void *ctx, uint64_t pa);
	void *ctx;
};

/* pt_init flags */
#define PT_SPACE_USER 0x1   /* the lower half: leaves carry U, no G */
#define PT_SPACE_KERNEL 0x2 /* the upper half: leaves carry G, no U */

/* pt_enter flags */
#define PT_ENTER_NOSUPER 0x1 /* 4 KiB leaves only (e.g. pages the server may split later) */

struct pt {
	uint64_t root_pa;
	const struct pt_mem *mem;
	unsigned flags;
	unsigned slot_first, slot_end; /* root slots this space owns */
	unsigned long tables;          /* tables below the root */
	unsigned long leaves[3];       /* by level: 4 KiB, 2 MiB, 1 GiB */
};

/* What a change needs from the TLB. `reduced` means a translation that may be
 * cached was removed or lost a permission: every hart that may hold the ASID
 * must fence. `raised` alone (permissions only grew) needs no remote fence. */
struct pt_flush {
	uint64_t start, end; /* union of virtual ranges whose leaves changed */
	unsigned long leaves; /* leaf entries changed (a superpage counts once) */
	bool reduced;
	bool raised;
};

#define PT_LEVELS 3
#define PT_LEVEL_SHIFT(level) (12 + 9 * (level))
#define PT_LEVEL_SIZE(level) (1UL << PT_LEVEL_SHIFT(level))

/* Allocate an empty root. `share_from`, when not NULL, is copied in: the kernel
 * half of every user root points at the kernel's own level-1 tables. */
int pt_init(struct pt *pt, const struct pt_mem *mem, unsigned flags, const uint64_t *share_from);
/* Free every table this space owns (not shared kernel tables) and the root. */
void pt_destroy(struct pt *pt);

/* Map [va, va+len) to [pa, pa+len) with `prot` (PTE_R/W/X). Fails with
 * -MICA_EEXIST if anything in the range is mapped, -MICA_EINVAL on bad
 * alignment, a range outside the space, or a prot the hardware cannot express
 * (empty, or W without R). */
int pt_enter(struct pt *pt, uint64_t va, uint64_t pa, uint64_t len, uint64_t prot,
	     unsigned flags, struct pt_flush *fl);
/* Unmap whatever is mapped in the range; holes are fine. */
int pt_remove(struct pt *pt, uint64_t va, uint64_t len, struct pt_flush *fl);
/* Set the permissions of whatever is mapped in the range. */
int pt_protect(struct pt *pt, uint64_t va, uint64_t len, uint64_t prot, struct pt_flush *fl);
/* The translation of `va`: physical address, leaf PTE and level. -MICA_ENOENT if none. */
int pt_extract(const struct pt *pt, uint64_t va, uint64_t *pa, uint64_t *pte, unsigned *level);

/* Walk every table and check the rules the hardware and this code rely on.
 * 0 when sound; otherwise -MICA_EFAULT with a description in `why`. */
int pt_check(const struct pt *pt, char *why, size_t whylen);

void pt_flush_init(struct pt_flush *fl);

#endif
