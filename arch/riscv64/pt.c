/*
 * Sv39 page-table operations; see pt.h for the contract.
 *
 * Internally a virtual address is handled as its 39-bit offset `off` (the
 * bits the three table indices come from), so both halves of the address
 * space are plain ranges [off, end) with end <= 2^39. Each operation runs in
 * two passes over the same recursion: a counting pass that changes nothing
 * and finds how many tables the change needs (or why it cannot be made), and
 * a doing pass that draws those tables from a reservation made in between.
 */
#include "arch/riscv64/pt.h"

#include <string.h>

#include "mica/errno.h"
#include "mica/kassert.h"
#include "mica/param.h"

#define VA_BITS 39
#define VA_SPACE (1UL << VA_BITS)
#define ROOT_LEVEL (PT_LEVELS - 1)
#define PT_INDEX(off, level) (((off) >> PT_LEVEL_SHIFT(level)) & 0x1ff)
#define LEAF_ATTR_MASK (PTE_RWX | PTE_U | PTE_G | PTE_A | PTE_D | PTE_V)

static uint64_t *pt_table(const struct pt *pt, uint64_t pa)
{
	return pt->mem->kva(pt->mem->ctx, pa);
}

static uint64_t span_end(uint64_t off, uint64_t end, unsigned level)
{
	uint64_t next = (off & ~(PT_LEVEL_SIZE(level) - 1)) + PT_LEVEL_SIZE(level);
	return next < end ? next : end;
}

static bool table_is_empty(const uint64_t *t)
{
	for (unsigned i = 0; i < 512; i++)
		if (t[i] & PTE_V)
			return false;
	return true;
}

/* Tables hanging directly off a kernel root are shared by every user root
 * (they were copied in at pt_init), so they must outlive emptiness. */
static bool table_may_be_freed(const struct pt *pt, unsigned parent_level)
{
	return !((pt->flags & PT_SPACE_KERNEL) && parent_level == ROOT_LEVEL);
}

/* ---- reservations: the tables an operation will need, taken up front ---- */

struct pt_reserve {
	const struct pt *pt;
	uint64_t head; /* free pages linked through their first word */
	unsigned long count;
};

static uint64_t reserve_take(struct pt_reserve *r)
{
	KASSERT(r->count > 0);
	uint64_t pa = r->head;
	uint64_t *page = pt_table(r->pt, pa);
	r->head = page[0];
	page[0] = 0;
	r->count--;
	return pa;
}

static void reserve_release(struct pt_reserve *r)
{
	while (r->count > 0)
		r->pt->mem->free(r->pt->mem->ctx, reserve_take(r));
}

static int reserve_fill(struct pt_reserve *r, unsigned long want)
{
	while (r->count < want) {
		uint64_t pa;
		if (r->pt->mem->alloc(r->pt->mem->ctx, &pa) != 0) {
			reserve_release(r);
			return -MICA_ENOMEM;
		}
		pt_table(r->pt, pa)[0] = r->head;
		r->head = pa;
		r->count++;
	}
	return 0;
}

/* ---- argument checks ---- */

static uint64_t leaf_bits(const struct pt *pt, uint64_t prot)
{
	uint64_t bits = PTE_V | PTE_A | (prot & PTE_RWX);
	/* U74 cores fault instead of setting A and D, so set them up front. */
	if (prot & PTE_W)
		bits |= PTE_D;
	bits |= (pt->flags & PT_SPACE_USER) ? PTE_U : PTE_G;
	return bits;
}

static bool prot_valid(uint64_t prot)
{
	if (prot & ~PTE_RWX)
		return false;
	if (!(prot & PTE_RWX))
		return false; /* an R=W=X=0 entry would be read as a table pointer */
	return !((prot & PTE_W) && !(prot & PTE_R)); /* reserved encoding */
}

/* Turn [va, va+len) into an offset range inside the space's own root slots. */
static int range_to_offsets(const struct pt *pt, uint64_t va, uint64_t len, uint64_t *off,
			    uint64_t *end)
{
	if (len == 0 || (va & PAGE_MASK) || (len & PAGE_MASK))
		return -MICA_EINVAL;
	uint64_t top = va >> (VA_BITS - 1); /* bits 63..38 must all be equal */
	if (top != 0 && top != (UINT64_MAX >> (VA_BITS - 1)))
		return -MICA_EINVAL;
	uint64_t o = va & (VA_SPACE - 1);
	if (len > VA_SPACE - o)
		return -MICA_EINVAL;
	uint64_t e = o + len;
	if ((o >> PT_LEVEL_SHIFT(ROOT_LEVEL)) < pt->slot_first ||
	    ((e - 1) >> PT_LEVEL_SHIFT(ROOT_LEVEL)) >= pt->slot_end)
		return -MICA_EINVAL;
	*off = o;
	*end = e;
	return 0;
}

static uint64_t off_to_va(uint64_t off)
{
	/* Sign-extend bit 38, as the hardware requires of a virtual address. */
	return (off & (1UL << (VA_BITS - 1))) ? off | ~(VA_SPACE - 1) : off;
}

void pt_flush_init(struct pt_flush *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->start = UINT64_MAX;
}

static void flush_note(struct pt_flush *fl, uint64_t off, uint64_t end, bool reduced, bool raised)
{
	uint64_t va = off_to_va(off), va_end = off_to_va(end - 1) + 1;
	if (va < fl->start)
		fl->start = va;
	if (va_end > fl->end)
		fl->end = va_end;
	fl->leaves++;
	fl->reduced |= reduced;
	fl->raised |= raised;
}

/* ---- enter ---- */

static bool can_be_leaf(unsigned level, uint64_t off, uint64_t next, uint64_t pa, bool super_ok)
{
	if (level == 0)
		return true;
	uint64_t mask = PT_LEVEL_SIZE(level) - 1;
	return super_ok && !(off & mask) && next - off == PT_LEVEL_SIZE(level) && !(pa & mask);
}

/* Tables enter would add below `table_pa` (0: that table does not exist yet). */
static long enter_count(const struct pt *pt, uint64_t table_pa, unsigned level, uint64_t off,
			uint64_t end, uint64_t pa, bool super_ok)
{
	const uint64_t *t = table_pa ? pt_table(pt, table_pa) : 0;
	long need = 0;
	while (off < end) {
		uint64_t next = span_end(off, end, level);
		uint64_t pte = t ? t[PT_INDEX(off, level)] : 0;
		if (can_be_leaf(level, off, next, pa, super_ok)) {
			if (pte & PTE_V)
				return -MICA_EEXIST;
		} else {
			if (pte_is_leaf(pte))
				return -MICA_EEXIST;
			uint64_t child = (pte & PTE_V) ? pte_pa(pte) : 0;
			long sub = enter_count(pt, child, level - 1, off, next, pa, super_ok);
			if (sub < 0)
				return sub;
			need += sub + (child ? 0 : 1);
		}
		pa += next - off;
		off = next;
	}
	return need;
}

static void enter_do(struct pt *pt, uint64_t table_pa, unsigned level, uint64_t off, uint64_t end,
		     uint64_t pa, uint64_t bits, bool super_ok, struct pt_reserve *res)
{
	uint64_t *t = pt_table(pt, table_pa);
	while (off < end) {
		uint64_t next = span_end(off, end, level);
		uint64_t *slot = &t[PT_INDEX(off, level)];
		if (can_be_leaf(level, off, next, pa, super_ok)) {
			*slot = pte_make(pa, bits);
			pt->leaves[level]++;
		} else {
			if (!(*slot & PTE_V)) {
				*slot = pte_make(reserve_take(res), PTE_V);
				pt->tables++;
			}
			enter_do(pt, pte_pa(*slot), level - 1, off, next, pa, bits, super_ok, res);
		}
		pa += next - off;
		off = next;
	}
}

/* => caller serialises changes to this address space (pmap lock) */
int pt_enter(struct pt *pt, uint64_t va, uint64_t pa, uint64_t len, uint64_t prot,
	     unsigned flags, struct pt_flush *fl)
{
	uint64_t off, end;
	int err = range_to_offsets(pt, va, len, &off, &end);
	if (err)
		return err;
	if (!prot_valid(prot) || (pa & PAGE_MASK) || (flags & ~PT_ENTER_NOSUPER) ||
	    pa + len < pa || ((pa + len - 1) >> 56) != 0)
		return -MICA_EINVAL;
	bool super_ok = !(flags & PT_ENTER_NOSUPER);
	long need = enter_count(pt, pt->root_pa, ROOT_LEVEL, off, end, pa, super_ok);
	if (need < 0)
		return (int)need;
	struct pt_reserve res = {.pt = pt};
	if (reserve_fill(&res, (unsigned long)need))
		return -MICA_ENOMEM;
	enter_do(pt, pt->root_pa, ROOT_LEVEL, off, end, pa, leaf_bits(pt, prot), super_ok, &res);
	KASSERT(res.count == 0);
	flush_note(fl, off, end, false, true);
	return 0;
}

/* ---- remove and protect share one walk ---- */

enum pt_change { PT_CHANGE_REMOVE, PT_CHANGE_PROTECT };

struct pt_edit {
	enum pt_change kind;
	uint64_t bits; /* new leaf attributes, for protect */
};

static bool edit_changes_leaf(const struct pt_edit *ed, uint64_t pte)
{
	return ed->kind == PT_CHANGE_REMOVE || (pte & LEAF_ATTR_MASK) != ed->bits;
}

/* Tables needed to split the superpages that the edit only partly covers.
 * `t` NULL means a table about to be made by a split, full of leaves like `pte`. */
static long edit_count(const struct pt *pt, const uint64_t *t, uint64_t split_pte, unsigned level,
		       uint64_t off, uint64_t end, const struct pt_edit *ed)
{
	long need = 0;
	while (off < end) {
		uint64_t next = span_end(off, end, level);
		uint64_t pte = t ? t[PT_INDEX(off, level)] : split_pte;
		bool whole = next - off == PT_LEVEL_SIZE(level);
		if (!(pte & PTE_V)) {
			/* a hole: nothing to do */
		} else if (pte_is_leaf(pte)) {
			if (!whole && edit_changes_leaf(ed, pte)) {
				long sub = edit_count(pt, 0, pte, level - 1, off, next, ed);
				need += sub + 1;
			}
		} else {
			need += edit_count(pt, pt_table(pt, pte_pa(pte)), 0, level - 1, off, next, ed);
		}
		off = next;
	}
	return need;
}

static void split_leaf(struct pt *pt, uint64_t *slot, unsigned level, struct pt_reserve *res)
{
	uint64_t pte = *slot, child = reserve_take(res);
	uint64_t *ct = pt_table(pt, child);
	uint64_t attrs = pte & LEAF_ATTR_MASK;
	for (unsigned i = 0; i < 512; i++)
		ct[i] = pte_make(pte_pa(pte) + ((uint64_t)i << PT_LEVEL_SHIFT(level - 1)), attrs);
	*slot = pte_make(child, PTE_V);
	pt->tables++;
	pt->leaves[level]--;
	pt->leaves[level - 1] += 512;
}

static void edit_do(struct pt *pt, uint64_t table_pa, unsigned level, uint64_t off, uint64_t end,
		    const struct pt_edit *ed, struct pt_reserve *res, struct pt_flush *fl)
{
	uint64_t *t = pt_table(pt, table_pa);
	while (off < end) {
		uint64_t next = span_end(off, end, level);
		uint64_t *slot = &t[PT_INDEX(off, level)];
		bool whole = next - off == PT_LEVEL_SIZE(level);
		if (!(*slot & PTE_V)) {
			off = next;
			continue;
		}
		if (pte_is_leaf(*slot)) {
			if (!edit_changes_leaf(ed, *slot)) {
				off = next;
				continue;
			}
			if (whole) {
				uint64_t old = *slot & PTE_RWX;
				if (ed->kind == PT_CHANGE_REMOVE) {
					*slot = 0;
					pt->leaves[level]--;
					flush_note(fl, off, next, true, false);
				} else {
					uint64_t now = ed->bits & PTE_RWX;
					*slot = pte_make(pte_pa(*slot), ed->bits);
					flush_note(fl, off, next, (old & ~now) != 0, (now & ~old) != 0);
				}
				off = next;
				continue;
			}
			split_leaf(pt, slot, level, res);
		}
		uint64_t child = pte_pa(*slot);
		edit_do(pt, child, level - 1, off, next, ed, res, fl);
		if (table_may_be_freed(pt, level) && table_is_empty(pt_table(pt, child))) {
			*slot = 0;
			pt->mem->free(pt->mem->ctx, child);
			pt->tables--;
		}
		off = next;
	}
}

static int pt_edit_range(struct pt *pt, uint64_t va, uint64_t len, const struct pt_edit *ed,
			 struct pt_flush *fl)
{
	uint64_t off, end;
	int err = range_to_offsets(pt, va, len, &off, &end);
	if (err)
		return err;
	long need = edit_count(pt, pt_table(pt, pt->root_pa), 0, ROOT_LEVEL, off, end, ed);
	struct pt_reserve res = {.pt = pt};
	if (reserve_fill(&res, (unsigned long)need))
		return -MICA_ENOMEM;
	edit_do(pt, pt->root_pa, ROOT_LEVEL, off, end, ed, &res, fl);
	KASSERT(res.count == 0);
	return 0;
}

/* => caller serialises changes to this address space (pmap lock) */
int pt_remove(struct pt *pt, uint64_t va, uint64_t len, struct pt_flush *fl)
{
	struct pt_edit ed = {.kind = PT_CHANGE_REMOVE};
	return pt_edit_range(pt, va, len, &ed, fl);
}

/* => caller serialises changes to this address space (pmap lock) */
int pt_protect(struct pt *pt, uint64_t va, uint64_t len, uint64_t prot, struct pt_flush *fl)
{
	if (!prot_valid(prot))
		return -MICA_EINVAL;
	struct pt_edit ed = {.kind = PT_CHANGE_PROTECT, .bits = leaf_bits(pt, prot)};
	return pt_edit_range(pt, va, len, &ed, fl);
}

/* => caller keeps the space from changing underneath (pmap lock or single owner) */
int pt_extract(const struct pt *pt, uint64_t va, uint64_t *pa, uint64_t *pte_out,
	       unsigned *level_out)
{
	uint64_t off, end;
	int err = range_to_offsets(pt, va & ~PAGE_MASK, PAGE_SIZE, &off, &end);
	if (err)
		return err;
	off |= va & PAGE_MASK;
	uint64_t table_pa = pt->root_pa;
	for (unsigned level = ROOT_LEVEL;; level--) {
		uint64_t pte = pt_table(pt, table_pa)[PT_INDEX(off, level)];
		if (!(pte & PTE_V))
			return -MICA_ENOENT;
		if (pte_is_leaf(pte)) {
			if (pa)
				*pa = pte_pa(pte) + (off & (PT_LEVEL_SIZE(level) - 1));
			if (pte_out)
				*pte_out = pte;
			if (level_out)
				*level_out = level;
			return 0;
		}
		if (level == 0)
			return -MICA_EFAULT; /* a pointer at level 0: the walker would fault */
		table_pa = pte_pa(pte);
	}
}

/* ---- life cycle ---- */

/* => the space is not yet visible to anyone else */
int pt_init(struct pt *pt, const struct pt_mem *mem, unsigned flags, const uint64_t *share_from)
{
	if (flags != PT_SPACE_USER && flags != PT_SPACE_KERNEL)
		return -MICA_EINVAL;
	memset(pt, 0, sizeof(*pt));
	pt->mem = mem;
	pt->flags = flags;
	pt->slot_first = flags == PT_SPACE_USER ? 0 : 256;
	pt->slot_end = flags == PT_SPACE_USER ? 256 : 512;
	if (mem->alloc(mem->ctx, &pt->root_pa) != 0)
		return -MICA_ENOMEM;
	uint64_t *root = pt_table(pt, pt->root_pa);
	memset(root, 0, PAGE_SIZE);
	if (share_from)
		memcpy(root + 256, share_from + 256, 256 * sizeof(uint64_t));
	return 0;
}

static void destroy_below(struct pt *pt, uint64_t table_pa, unsigned level)
{
	uint64_t *t = pt_table(pt, table_pa);
	for (unsigned i = 0; i < 512; i++) {
		if (!(t[i] & PTE_V))
			continue;
		if (pte_is_leaf(t[i])) {
			pt->leaves[level]--;
		} else {
			destroy_below(pt, pte_pa(t[i]), level - 1);
			pt->mem->free(pt->mem->ctx, pte_pa(t[i]));
			pt->tables--;
		}
		t[i] = 0;
	}
}

/* => nobody runs on this space any more and its TLB entries are gone */
void pt_destroy(struct pt *pt)
{
	uint64_t *root = pt_table(pt, pt->root_pa);
	for (unsigned i = pt->slot_first; i < pt->slot_end; i++) {
		if (!(root[i] & PTE_V))
			continue;
		if (pte_is_leaf(root[i])) {
			pt->leaves[ROOT_LEVEL]--;
		} else {
			destroy_below(pt, pte_pa(root[i]), ROOT_LEVEL - 1);
			pt->mem->free(pt->mem->ctx, pte_pa(root[i]));
			pt->tables--;
		}
		root[i] = 0;
	}
	pt->mem->free(pt->mem->ctx, pt->root_pa);
	pt->root_pa = 0;
}

/* ---- the checker ---- */

struct pt_census {
	unsigned long tables;
	unsigned long leaves[PT_LEVELS];
	char *why;
	size_t whylen;
};

static int census_fail(struct pt_census *c, const char *what, uint64_t off, uint64_t pte)
{
	if (c->why && c->whylen) {
		/* No snprintf in freestanding builds: spell the address in hex by hand. */
		static const char hex[] = "0123456789abcdef";
		size_t n = 0;
		for (const char *p = what; *p && n + 1 < c->whylen; p++)
			c->why[n++] = *p;
		const char *at = " at va offset 0x";
		for (const char *p = at; *p && n + 1 < c->whylen; p++)
			c->why[n++] = *p;
		for (int s = 36; s >= 0 && n + 1 < c->whylen; s -= 4)
			c->why[n++] = hex[(off >> s) & 0xf];
		c->why[n] = 0;
	}
	(void)pte;
	return -MICA_EFAULT;
}

static int census_walk(const struct pt *pt, uint64_t table_pa, unsigned level, uint64_t base,
		       unsigned first, unsigned end, struct pt_census *c)
{
	const uint64_t *t = pt_table(pt, table_pa);
	for (unsigned i = first; i < end; i++) {
		uint64_t pte = t[i];
		uint64_t off = base + ((uint64_t)i << PT_LEVEL_SHIFT(level));
		if (!(pte & PTE_V)) {
			if (pte != 0)
				return census_fail(c, "invalid PTE with stray bits", off, pte);
			continue;
		}
		if (!pte_is_leaf(pte)) {
			if (pte & (PTE_A | PTE_D | PTE_U))
				return census_fail(c, "table pointer with A, D or U set", off, pte);
			if (level == 0)
				return census_fail(c, "table pointer at level 0", off, pte);
			const uint64_t *ct = pt_table(pt, pte_pa(pte));
			if (table_may_be_freed(pt, level) && table_is_empty(ct))
				return census_fail(c, "empty table left allocated", off, pte);
			c->tables++;
			int err = census_walk(pt, pte_pa(pte), level - 1, off, 0, 512, c);
			if (err)
				return err;
			continue;
		}
		if (!(pte & PTE_A))
			return census_fail(c, "leaf without A (U74 would fault)", off, pte);
		if (!!(pte & PTE_W) != !!(pte & PTE_D))
			return census_fail(c, "leaf whose D differs from W", off, pte);
		if ((pte & PTE_W) && !(pte & PTE_R))
			return census_fail(c, "leaf with W but not R", off, pte);
		if ((pt->flags & PT_SPACE_USER) ? !(pte & PTE_U) || (pte & PTE_G)
						: (pte & PTE_U) || !(pte & PTE_G))
			return census_fail(c, "leaf with the wrong U/G for its space", off, pte);
		if (pte_pa(pte) & (PT_LEVEL_SIZE(level) - 1))
			return census_fail(c, "misaligned superpage frame", off, pte);
		c->leaves[level]++;
	}
	return 0;
}

/* => caller keeps the space from changing underneath */
int pt_check(const struct pt *pt, char *why, size_t whylen)
{
	struct pt_census c = {.why = why, .whylen = whylen};
	if (why && whylen)
		why[0] = 0;
	int err = census_walk(pt, pt->root_pa, ROOT_LEVEL, 0, pt->slot_first, pt->slot_end, &c);
	if (err)
		return err;
	if (c.tables != pt->tables)
		return census_fail(&c, "table count differs from the walk", 0, 0);
	for (unsigned l = 0; l < PT_LEVELS; l++)
		if (c.leaves[l] != pt->leaves[l])
			return census_fail(&c, "leaf count differs from the walk", 0, 0);
	return 0;
}
