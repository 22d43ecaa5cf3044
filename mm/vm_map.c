/* vm_map: address-ordered map entries in a gap-augmented red-black tree.
 *
 * Every entry records the free gap after it and the largest gap in its subtree; the map
 * header records the gap below the first entry. Searches for free space descend the tree
 * using those maxima, so they visit O(log n) nodes whatever the placement mode.
 *
 * Mutating operations run in two phases: a read-only phase validates the arguments,
 * walks the range and counts the entries that splits will need, and allocates them; the
 * second phase cannot fail. Entries are kept maximal: two neighbours that could be one
 * entry always are, so the entry count is a function of the mapped state alone. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mica/errno.h"
#include "mica/kassert.h"
#include "mica/param.h"
#include "mm/vm_map.h"

#define RB_BLACK ((uintptr_t)1)

#ifdef MICA_TEST
static void debug_verify(const struct vm_map *map, int line)
{
	const char *why = NULL;

	if (map->debug_check && vm_map_check(map, &why) != 0)
		kassert_fail(why, __FILE__, line);
}
#define VERIFY(map) debug_verify((map), __LINE__)
#else
#define VERIFY(map) ((void)0)
#endif

/* ---- small helpers ---------------------------------------------------------------- */

static inline struct vm_map_entry *hdr(const struct vm_map *map)
{
	return (struct vm_map_entry *)&map->header;
}

static inline size_t entry_len(const struct vm_map_entry *e)
{
	return e->end - e->start;
}

static inline bool is_pow2(size_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* Rounds x up to a multiple of a; false if that passes the top of the address space. */
static bool align_up(uintptr_t x, size_t a, uintptr_t *out)
{
	uintptr_t r = x & ~(uintptr_t)(a - 1);

	if (r != x) {
		r += a;
		if (r < x)
			return false;
	}
	*out = r;
	return true;
}

static inline uintptr_t align_down(uintptr_t x, size_t a)
{
	return x & ~(uintptr_t)(a - 1);
}

static int check_range(const struct vm_map *map, uintptr_t addr, size_t len)
{
	if (len == 0 || ((addr | len) & PAGE_MASK) != 0)
		return -MICA_EINVAL;
	if (addr + len < addr)
		return -MICA_EOVERFLOW;
	if (addr < map->min || addr + len > map->max)
		return -MICA_EFAULT;
	return 0;
}

/* The test a neighbour pair must fail for the map to be in its canonical form. */
static bool mergeable(const struct vm_map_entry *a, const struct vm_map_entry *b)
{
	if (a->end != b->start || a->prot != b->prot || a->max_prot != b->max_prot ||
	    a->flags != b->flags || (a->flags & VM_ENT_NOMERGE) != 0 || a->wired != b->wired ||
	    a->backing != b->backing)
		return false;
	/* Without a backing object the offset carries no meaning, so it cannot block a merge. */
	return a->backing == NULL || a->offset + entry_len(a) == b->offset;
}

/* ---- red-black tree with max-gap augmentation ------------------------------------ */

static inline struct vm_map_entry *rb_parent(const struct vm_map_entry *e)
{
	return (struct vm_map_entry *)(e->rb_parent_colour & ~RB_BLACK);
}

static inline bool rb_red(const struct vm_map_entry *e)
{
	return e != NULL && (e->rb_parent_colour & RB_BLACK) == 0;
}

static inline void rb_set_parent(struct vm_map_entry *e, struct vm_map_entry *p)
{
	e->rb_parent_colour = (uintptr_t)p | (e->rb_parent_colour & RB_BLACK);
}

static inline void rb_set_black(struct vm_map_entry *e)
{
	e->rb_parent_colour |= RB_BLACK;
}

static inline void rb_set_red(struct vm_map_entry *e)
{
	e->rb_parent_colour &= ~RB_BLACK;
}

static inline void rb_replace_child(struct vm_map *map, struct vm_map_entry *parent,
                                    struct vm_map_entry *old, struct vm_map_entry *new)
{
	if (parent == NULL)
		map->root = new;
	else if (parent->rb_left == old)
		parent->rb_left = new;
	else
		parent->rb_right = new;
}

static inline size_t subtree_max(const struct vm_map_entry *e)
{
	size_t m = e->gap;

	if (e->rb_left != NULL && e->rb_left->max_gap > m)
		m = e->rb_left->max_gap;
	if (e->rb_right != NULL && e->rb_right->max_gap > m)
		m = e->rb_right->max_gap;
	return m;
}

/* Recomputes max_gap from e towards the root. Stopping at the first unchanged node is
 * only sound when e's subtree holds the one change made since the tree was last
 * consistent; every caller keeps to that. */
static void propagate(struct vm_map *map, struct vm_map_entry *e)
{
	while (e != NULL) {
		size_t m = subtree_max(e);

		map->stats.visits++;
		if (m == e->max_gap)
			break;
		e->max_gap = m;
		e = rb_parent(e);
	}
}

/* After a structural change the old values below may coincide with the new ones while
 * ancestors still count a node that left, so this walk never stops early. */
static void propagate_all(struct vm_map *map, struct vm_map_entry *e)
{
	for (; e != NULL; e = rb_parent(e)) {
		map->stats.visits++;
		e->max_gap = subtree_max(e);
	}
}

/* Rotations keep max_gap exact: the node moving up covers the same set of entries the
 * old subtree root did, and only the node moving down needs recomputing. */
static void rotate_left(struct vm_map *map, struct vm_map_entry *x)
{
	struct vm_map_entry *y = x->rb_right;
	struct vm_map_entry *p = rb_parent(x);

	x->rb_right = y->rb_left;
	if (y->rb_left != NULL)
		rb_set_parent(y->rb_left, x);
	y->rb_left = x;
	rb_set_parent(y, p);
	rb_replace_child(map, p, x, y);
	rb_set_parent(x, y);
	y->max_gap = x->max_gap;
	x->max_gap = subtree_max(x);
	map->stats.visits++;
}

static void rotate_right(struct vm_map *map, struct vm_map_entry *x)
{
	struct vm_map_entry *y = x->rb_left;
	struct vm_map_entry *p = rb_parent(x);

	x->rb_left = y->rb_right;
	if (y->rb_right != NULL)
		rb_set_parent(y->rb_right, x);
	y->rb_right = x;
	rb_set_parent(y, p);
	rb_replace_child(map, p, x, y);
	rb_set_parent(x, y);
	y->max_gap = x->max_gap;
	x->max_gap = subtree_max(x);
	map->stats.visits++;
}

static void insert_fixup(struct vm_map *map, struct vm_map_entry *n)
{
	struct vm_map_entry *p, *g, *u;

	while ((p = rb_parent(n)) != NULL && rb_red(p)) {
		map->stats.visits++;
		g = rb_parent(p); /* a red node is never the root */
		if (p == g->rb_left) {
			u = g->rb_right;
			if (rb_red(u)) {
				rb_set_black(p);
				rb_set_black(u);
				rb_set_red(g);
				n = g;
				continue;
			}
			if (n == p->rb_right) {
				rotate_left(map, p);
				n = p;
				p = rb_parent(n);
			}
			rb_set_black(p);
			rb_set_red(g);
			rotate_right(map, g);
		} else {
			u = g->rb_left;
			if (rb_red(u)) {
				rb_set_black(p);
				rb_set_black(u);
				rb_set_red(g);
				n = g;
				continue;
			}
			if (n == p->rb_left) {
				rotate_right(map, p);
				n = p;
				p = rb_parent(n);
			}
			rb_set_black(p);
			rb_set_red(g);
			rotate_left(map, g);
		}
	}
	rb_set_black(map->root);
}

/* Hangs e into the tree as the in-order successor of prev (NULL: as the first node). The
 * list already knows where e belongs, so no key comparison is needed. */
static void tree_insert_after(struct vm_map *map, struct vm_map_entry *prev, struct vm_map_entry *e)
{
	struct vm_map_entry *p;

	e->rb_left = e->rb_right = NULL;
	if (map->root == NULL) {
		e->rb_parent_colour = 0;
		map->root = e;
		return;
	}
	if (prev == NULL) {
		for (p = map->root; p->rb_left != NULL; p = p->rb_left)
			map->stats.visits++;
		p->rb_left = e;
	} else if (prev->rb_right == NULL) {
		p = prev;
		p->rb_right = e;
	} else {
		for (p = prev->rb_right; p->rb_left != NULL; p = p->rb_left)
			map->stats.visits++;
		p->rb_left = e;
	}
	e->rb_parent_colour = (uintptr_t)p; /* red */
	propagate(map, p);
}

static void erase_fixup(struct vm_map *map, struct vm_map_entry *x, struct vm_map_entry *xp)
{
	struct vm_map_entry *w;

	/* x may be NULL; xp is its parent. A NULL x is the left child exactly when xp's left
	 * is NULL, because the sibling of a black-height deficit cannot be empty. */
	while (x != map->root && !rb_red(x)) {
		map->stats.visits++;
		if (x == xp->rb_left) {
			w = xp->rb_right;
			if (rb_red(w)) {
				rb_set_black(w);
				rb_set_red(xp);
				rotate_left(map, xp);
				w = xp->rb_right;
			}
			if (!rb_red(w->rb_left) && !rb_red(w->rb_right)) {
				rb_set_red(w);
				x = xp;
				xp = rb_parent(x);
				continue;
			}
			if (!rb_red(w->rb_right)) {
				rb_set_black(w->rb_left);
				rb_set_red(w);
				rotate_right(map, w);
				w = xp->rb_right;
			}
			w->rb_parent_colour =
			    (w->rb_parent_colour & ~RB_BLACK) | (xp->rb_parent_colour & RB_BLACK);
			rb_set_black(xp);
			rb_set_black(w->rb_right);
			rotate_left(map, xp);
		} else {
			w = xp->rb_left;
			if (rb_red(w)) {
				rb_set_black(w);
				rb_set_red(xp);
				rotate_right(map, xp);
				w = xp->rb_left;
			}
			if (!rb_red(w->rb_left) && !rb_red(w->rb_right)) {
				rb_set_red(w);
				x = xp;
				xp = rb_parent(x);
				continue;
			}
			if (!rb_red(w->rb_left)) {
				rb_set_black(w->rb_right);
				rb_set_red(w);
				rotate_left(map, w);
				w = xp->rb_left;
			}
			w->rb_parent_colour =
			    (w->rb_parent_colour & ~RB_BLACK) | (xp->rb_parent_colour & RB_BLACK);
			rb_set_black(xp);
			rb_set_black(w->rb_left);
			rotate_right(map, xp);
		}
		x = map->root;
		break;
	}
	if (x != NULL)
		rb_set_black(x);
}

static void tree_erase(struct vm_map *map, struct vm_map_entry *z)
{
	struct vm_map_entry *y, *x, *xp;
	bool was_black;

	/* y is the node that physically leaves its position: z itself, or z's successor
	 * when z has two children (the successor then takes over z's place and colour). */
	if (z->rb_left == NULL || z->rb_right == NULL) {
		y = z;
	} else {
		for (y = z->rb_right; y->rb_left != NULL; y = y->rb_left)
			map->stats.visits++;
	}
	x = y->rb_left != NULL ? y->rb_left : y->rb_right;
	xp = rb_parent(y);
	was_black = !rb_red(y);
	if (x != NULL)
		rb_set_parent(x, xp);
	rb_replace_child(map, xp, y, x);
	if (y != z) {
		if (xp == z)
			xp = y;
		y->rb_left = z->rb_left;
		y->rb_right = z->rb_right;
		y->rb_parent_colour = z->rb_parent_colour;
		rb_replace_child(map, rb_parent(z), z, y);
		if (y->rb_left != NULL)
			rb_set_parent(y->rb_left, y);
		if (y->rb_right != NULL)
			rb_set_parent(y->rb_right, y);
	}
	/* Every node whose subtree lost z, including y in its new place, lies on the path
	 * from xp to the root. */
	propagate_all(map, xp);
	if (was_black)
		erase_fixup(map, x, xp);
}

/* ---- entries: list + tree together ------------------------------------------------ */

static void set_gap(struct vm_map *map, struct vm_map_entry *e)
{
	size_t g = e->next->start - e->end;

	if (g == e->gap)
		return;
	e->gap = g;
	if (e != hdr(map))
		propagate(map, e);
}

/* Links e (start and end set, inside prev's gap) after prev, which may be the header. */
static void entry_link_after(struct vm_map *map, struct vm_map_entry *prev, struct vm_map_entry *e)
{
	e->prev = prev;
	e->next = prev->next;
	prev->next->prev = e;
	prev->next = e;
	e->gap = e->next->start - e->end;
	e->max_gap = e->gap;
	tree_insert_after(map, prev == hdr(map) ? NULL : prev, e);
	set_gap(map, prev);
	insert_fixup(map, e);
	map->nentries++;
}

static void entry_unlink(struct vm_map *map, struct vm_map_entry *e)
{
	struct vm_map_entry *prev = e->prev;

	tree_erase(map, e);
	prev->next = e->next;
	e->next->prev = prev;
	set_gap(map, prev);
	if (map->hint == e)
		map->hint = prev;
	map->nentries--;
}

static void entry_free(struct vm_map *map, struct vm_map_entry *e)
{
	if (e->backing != NULL && map->ops.unref != NULL)
		map->ops.unref(map->ops.ctx, e->backing);
	map->ops.free(map->ops.ctx, e);
}

/* Entries a whole operation needs, allocated before it changes anything. */
struct reserve {
	struct vm_map_entry *list;
};

static int reserve_get(struct vm_map *map, struct reserve *rs, unsigned n)
{
	rs->list = NULL;
	while (n-- > 0) {
		struct vm_map_entry *e = map->ops.alloc(map->ops.ctx);

		if (e == NULL) {
			while (rs->list != NULL) {
				e = rs->list;
				rs->list = e->next;
				map->ops.free(map->ops.ctx, e);
			}
			return -MICA_ENOMEM;
		}
		e->next = rs->list;
		rs->list = e;
	}
	return 0;
}

static struct vm_map_entry *reserve_take(struct reserve *rs)
{
	struct vm_map_entry *e = rs->list;

	KASSERT(e != NULL);
	rs->list = e->next;
	memset(e, 0, sizeof(*e));
	return e;
}

static void reserve_put(struct vm_map *map, struct reserve *rs)
{
	while (rs->list != NULL) {
		struct vm_map_entry *e = rs->list;

		rs->list = e->next;
		map->ops.free(map->ops.ctx, e);
	}
}

/* Splits e at addr using a reserved entry: e keeps the front, the new entry (returned)
 * takes the back and a reference on the backing. */
static struct vm_map_entry *split(struct vm_map *map, struct vm_map_entry *e, uintptr_t addr,
                                  struct reserve *rs)
{
	struct vm_map_entry *t = reserve_take(rs);

	KASSERT(e->start < addr && addr < e->end);
	t->start = addr;
	t->end = e->end;
	t->backing = e->backing;
	t->offset = e->offset + (addr - e->start);
	t->prot = e->prot;
	t->max_prot = e->max_prot;
	t->flags = e->flags;
	t->wired = e->wired;
	e->end = addr;
	entry_link_after(map, e, t);
	if (t->backing != NULL && map->ops.ref != NULL)
		map->ops.ref(map->ops.ctx, t->backing);
	map->stats.splits++;
	return t;
}

/* Folds b into its predecessor a; the caller has checked mergeable(a, b). */
static void merge(struct vm_map *map, struct vm_map_entry *a, struct vm_map_entry *b)
{
	uintptr_t end = b->end;

	entry_unlink(map, b);
	a->end = end;
	set_gap(map, a);
	entry_free(map, b);
	map->stats.merges++;
}

/* Restores the canonical form around [start, end) after attributes changed there. */
static void coalesce(struct vm_map *map, struct vm_map_entry *e, uintptr_t end)
{
	if (e->prev != hdr(map) && mergeable(e->prev, e))
		e = e->prev;
	while (e->next != hdr(map) && e->next->start <= end) {
		if (mergeable(e, e->next))
			merge(map, e, e->next);
		else
			e = e->next;
	}
}

/* ---- lookup ----------------------------------------------------------------------- */

/* The hint-first lookup without moving the hint, so a failing operation leaves even the
 * hint as it was. *out is the entry holding addr, or the owner of the gap holding it (the
 * header for the gap below the first entry). */
static bool find_entry(struct vm_map *map, uintptr_t addr, struct vm_map_entry **out)
{
	struct vm_map_entry *h = map->hint, *e, *best = hdr(map);

	/* The header's end is min, so its gap test covers the space below the first entry. */
	if (h != hdr(map) && h->start <= addr && addr < h->end) {
		*out = h;
		return true;
	}
	if (h->end <= addr && addr < h->next->start) {
		*out = h;
		return false;
	}
	for (e = map->root; e != NULL;) {
		map->stats.visits++;
		if (addr < e->start) {
			e = e->rb_left;
		} else if (addr < e->end) {
			*out = e;
			return true;
		} else {
			best = e;
			e = e->rb_right;
		}
	}
	*out = best;
	return false;
}

bool vm_map_lookup(struct vm_map *map, uintptr_t addr, struct vm_map_entry **out)
{
	struct vm_map_entry *e;
	bool found = find_entry(map, addr, &e);

	map->hint = e;
	*out = e == hdr(map) ? NULL : e;
	return found;
}

struct vm_map_entry *vm_map_first(const struct vm_map *map)
{
	return map->header.next == hdr(map) ? NULL : map->header.next;
}

struct vm_map_entry *vm_map_next(const struct vm_map *map, const struct vm_map_entry *e)
{
	return e->next == hdr(map) ? NULL : e->next;
}

int vm_map_foreach(struct vm_map *map, uintptr_t addr, size_t len, vm_map_iter_cb cb, void *arg)
{
	struct vm_map_entry *e;
	int r = check_range(map, addr, len);

	if (r != 0)
		return r;
	if (!find_entry(map, addr, &e))
		e = e->next;
	for (; e != hdr(map) && e->start < addr + len; e = e->next) {
		r = cb(arg, e);
		if (r != 0)
			return r;
	}
	return 0;
}

/* ---- find-space ------------------------------------------------------------------- */

/* Lowest entry with end >= lo and gap >= need. The entries with end >= lo are a suffix
 * of the in-order sequence; along the search path for lo, each node that is in that
 * suffix contributes itself and its right subtree, and deeper such nodes come first in
 * address order. So the deepest one whose self-or-right-subtree has a big enough gap
 * holds the answer, found by one more descent: O(log n). */
static struct vm_map_entry *lowest_fit(struct vm_map *map, uintptr_t lo, size_t need)
{
	struct vm_map_entry *e = map->root, *cand = NULL;

	if (e == NULL || e->max_gap < need)
		return NULL;
	while (e != NULL) {
		struct vm_map_entry *r = e->rb_right;

		map->stats.visits++;
		if (e->end >= lo) {
			if (e->gap >= need || (r != NULL && r->max_gap >= need))
				cand = e;
			e = e->rb_left;
		} else {
			e = r;
		}
		if (e != NULL && e->max_gap < need)
			break;
	}
	if (cand == NULL || cand->gap >= need)
		return cand;
	for (e = cand->rb_right;;) {
		map->stats.visits++;
		if (e->rb_left != NULL && e->rb_left->max_gap >= need)
			e = e->rb_left;
		else if (e->gap >= need)
			return e;
		else
			e = e->rb_right;
	}
}

/* Highest entry whose gap ends at or below hi and is >= need: the mirror image, keyed by
 * gap end (end + gap), which grows with address just as start does. */
static struct vm_map_entry *highest_fit(struct vm_map *map, uintptr_t hi, size_t need)
{
	struct vm_map_entry *e = map->root, *cand = NULL;

	if (e == NULL || e->max_gap < need)
		return NULL;
	while (e != NULL) {
		struct vm_map_entry *l = e->rb_left;

		map->stats.visits++;
		if (e->end + e->gap <= hi) {
			if (e->gap >= need || (l != NULL && l->max_gap >= need))
				cand = e;
			e = e->rb_right;
		} else {
			e = l;
		}
		if (e != NULL && e->max_gap < need)
			break;
	}
	if (cand == NULL || cand->gap >= need)
		return cand;
	for (e = cand->rb_left;;) {
		map->stats.visits++;
		if (e->rb_right != NULL && e->rb_right->max_gap >= need)
			e = e->rb_right;
		else if (e->gap >= need)
			return e;
		else
			e = e->rb_left;
	}
}

/* Validates the placement request and finds the address. For every mode except FIXED,
 * *prevp receives the owner of the gap the mapping goes into. */
static int find_space(struct vm_map *map, uintptr_t hint, size_t len, size_t align, unsigned place,
                      uintptr_t *addrp, struct vm_map_entry **prevp)
{
	struct vm_map_entry *p;
	uintptr_t c = 0;
	size_t need;

	if (place & (VM_PLACE_FIXED | VM_PLACE_NOREPLACE)) {
		if ((hint & (align - 1)) != 0)
			return -MICA_EINVAL;
		if (hint + len < hint)
			return -MICA_EOVERFLOW;
		if (hint < map->min || hint + len > map->max)
			return -MICA_EFAULT;
		*prevp = NULL;
		if (place & VM_PLACE_NOREPLACE) {
			if (find_entry(map, hint, &p) || p->next->start - hint < len)
				return -MICA_EEXIST;
			*prevp = p;
		}
		*addrp = hint;
		return 0;
	}

	/* A gap of len + align - PAGE_SIZE holds an aligned block of len wherever the gap
	 * starts, because gap edges are page aligned. When that sum does not fit in a size_t
	 * no gap can reach it, but the exact test on the hint's gap below still may. */
	if (len > map->max - map->min)
		return -MICA_ENOMEM;
	need = align - PAGE_SIZE > SIZE_MAX - len ? SIZE_MAX : len + (align - PAGE_SIZE);

	if ((place & VM_PLACE_TOPDOWN) == 0) {
		uintptr_t lo;

		if (hint >= map->max)
			return -MICA_ENOMEM;
		lo = hint < map->min ? map->min : align_down(hint + PAGE_MASK, PAGE_SIZE);
		/* The gap holding the hint is tried exactly; beyond it the tree is asked
		 * for the lowest gap that fits whatever its alignment. */
		if (!find_entry(map, lo, &p) && align_up(lo, align, &c) && c <= p->next->start &&
		    p->next->start - c >= len)
			goto found;
		if (map->min >= lo && map->header.gap >= need)
			p = hdr(map);
		else
			p = lowest_fit(map, lo, need);
		if (p == NULL)
			return -MICA_ENOMEM;
		align_up(p->end, align, &c);
		goto found;
	} else {
		uintptr_t hi =
		    hint == 0 || hint > map->max ? map->max : align_down(hint, PAGE_SIZE);

		if (hi <= map->min)
			return -MICA_ENOMEM;
		if (!find_entry(map, hi - 1, &p)) {
			uintptr_t top = p->next->start < hi ? p->next->start : hi;

			if (top - p->end >= len) {
				c = align_down(top - len, align);
				if (c >= p->end)
					goto found;
			}
		}
		p = highest_fit(map, hi, need);
		if (p == NULL && map->header.next->start <= hi && map->header.gap >= need)
			p = hdr(map);
		if (p == NULL)
			return -MICA_ENOMEM;
		c = align_down(p->next->start - len, align);
		goto found;
	}
found:
	KASSERT(c >= p->end && c + len <= p->next->start);
	*addrp = c;
	*prevp = p;
	return 0;
}

static int check_place(unsigned place, size_t *align)
{
	if ((place & ~VM_PLACE_ALL) != 0)
		return -MICA_EINVAL;
	if ((place & VM_PLACE_FIXED) && (place & (VM_PLACE_NOREPLACE | VM_PLACE_TOPDOWN)))
		return -MICA_EINVAL;
	if ((place & VM_PLACE_NOREPLACE) && (place & VM_PLACE_TOPDOWN))
		return -MICA_EINVAL;
	if (*align == 0)
		*align = PAGE_SIZE;
	if (!is_pow2(*align) || *align < PAGE_SIZE)
		return -MICA_EINVAL;
	return 0;
}

int vm_map_findspace(struct vm_map *map, uintptr_t hint, size_t len, size_t align, unsigned place,
                     uintptr_t *addr)
{
	struct vm_map_entry *prev;
	int r = check_place(place, &align);

	if (r != 0)
		return r;
	if (len == 0 || (len & PAGE_MASK) != 0)
		return -MICA_EINVAL;
	return find_space(map, hint, len, align, place, addr, &prev);
}

/* ---- enter / insert --------------------------------------------------------------- */

static int check_attr(const struct vm_map_attr *a)
{
	if (a == NULL || ((a->prot | a->max_prot) & ~VM_PROT_ALL) != 0 ||
	    (a->flags & ~VM_ENT_ALL) != 0 || (a->offset & PAGE_MASK) != 0)
		return -MICA_EINVAL;
	if ((a->flags & VM_ENT_GUARD) && a->max_prot != VM_PROT_NONE)
		return -MICA_EINVAL;
	if ((a->prot & ~a->max_prot) != 0)
		return -MICA_EACCES;
	return 0;
}

/* Would a fresh, unwired entry with attributes a at [start, end) merge with e? */
static bool attr_matches(const struct vm_map_entry *e, const struct vm_map_attr *a)
{
	return e->prot == a->prot && e->max_prot == a->max_prot && e->flags == a->flags &&
	       (a->flags & VM_ENT_NOMERGE) == 0 && e->wired == 0 && e->backing == a->backing;
}

/* Puts [addr, addr + len) into prev's gap, extending a neighbour when it can. Cannot fail
 * when rs holds an entry. */
static int insert_at(struct vm_map *map, struct vm_map_entry *prev, uintptr_t addr, size_t len,
                     const struct vm_map_attr *a, struct reserve *rs)
{
	struct vm_map_entry *next = prev->next, *e;
	bool back, fwd;

	back = prev != hdr(map) && prev->end == addr && attr_matches(prev, a) &&
	       (a->backing == NULL || prev->offset + entry_len(prev) == a->offset);
	fwd = next != hdr(map) && next->start == addr + len && attr_matches(next, a) &&
	      (a->backing == NULL || a->offset + len == next->offset);

	if (!back && !fwd) {
		if (rs != NULL) {
			e = reserve_take(rs);
		} else {
			e = map->ops.alloc(map->ops.ctx);
			if (e == NULL)
				return -MICA_ENOMEM;
			memset(e, 0, sizeof(*e));
		}
		e->start = addr;
		e->end = addr + len;
		e->backing = a->backing;
		e->offset = a->offset;
		e->prot = (uint8_t)a->prot;
		e->max_prot = (uint8_t)a->max_prot;
		e->flags = (uint16_t)a->flags;
		e->wired = 0;
		entry_link_after(map, prev, e);
	} else {
		/* The caller's reference now lives in a neighbour that already holds one. */
		if (a->backing != NULL && map->ops.unref != NULL)
			map->ops.unref(map->ops.ctx, a->backing);
		if (back && fwd) {
			uintptr_t end = next->end;

			entry_unlink(map, next);
			entry_free(map, next);
			prev->end = end;
			set_gap(map, prev);
			e = prev;
			map->stats.merges += 2;
		} else if (back) {
			prev->end = addr + len;
			set_gap(map, prev);
			e = prev;
			map->stats.merges++;
		} else {
			next->start = addr;
			next->offset = a->offset;
			set_gap(map, prev);
			e = next;
			map->stats.merges++;
		}
	}
	map->size += len;
	map->hint = e;
	return 0;
}

/* What a removal took out, handed to the callback once the map is whole again. Partly
 * removed entries are described by copies, since the entry itself stays mapped. */
struct removal {
	struct vm_map_entry head, tail;
	bool has_head, has_tail;
	struct vm_map_entry *chain, **chain_end;
};

static void account_out(struct vm_map *map, const struct vm_map_entry *piece)
{
	map->size -= entry_len(piece);
	if (piece->wired)
		map->wired_size -= entry_len(piece);
}

/* Removes [start, end) (validated; rs holds an entry if the range is strictly inside
 * one). Returns the owner of the gap that now starts at or before start. */
static struct vm_map_entry *remove_range(struct vm_map *map, uintptr_t start, uintptr_t end,
                                         struct reserve *rs, struct removal *rm)
{
	struct vm_map_entry *e, *prev;
	bool found;

	rm->has_head = rm->has_tail = false;
	rm->chain = NULL;
	rm->chain_end = &rm->chain;

	found = find_entry(map, start, &e);
	if (found && e->start < start) {
		if (e->end > end)
			split(map, e, end, rs);
		rm->head = *e;
		rm->head.offset += start - e->start;
		rm->head.start = start;
		rm->has_head = true;
		account_out(map, &rm->head);
		e->end = start;
		set_gap(map, e);
		prev = e;
		e = e->next;
	} else if (found) {
		prev = e->prev;
	} else {
		prev = e;
		e = e->next;
	}
	while (e != hdr(map) && e->start < end) {
		struct vm_map_entry *nx = e->next;

		if (e->end > end) {
			rm->tail = *e;
			rm->tail.end = end;
			rm->has_tail = true;
			account_out(map, &rm->tail);
			e->offset += end - e->start;
			e->start = end;
			set_gap(map, e->prev);
			break;
		}
		account_out(map, e);
		entry_unlink(map, e);
		e->next = NULL;
		*rm->chain_end = e;
		rm->chain_end = &e->next;
		e = nx;
	}
	return prev;
}

static void removal_finish(struct vm_map *map, struct removal *rm, vm_map_remove_cb cb, void *arg)
{
	struct vm_map_entry *e, *nx;

	if (rm->has_head && cb != NULL)
		cb(arg, &rm->head);
	for (e = rm->chain; e != NULL; e = nx) {
		nx = e->next;
		if (cb != NULL)
			cb(arg, e);
		entry_free(map, e);
	}
	if (rm->has_tail && cb != NULL)
		cb(arg, &rm->tail);
}

/* One entry more is needed only when the range lies strictly inside a single entry. */
static unsigned removal_need(struct vm_map *map, uintptr_t start, uintptr_t end)
{
	struct vm_map_entry *e;

	return find_entry(map, start, &e) && e->start < start && e->end > end ? 1 : 0;
}

int vm_map_enter(struct vm_map *map, uintptr_t hint, size_t len, size_t align, unsigned place,
                 const struct vm_map_attr *attr, vm_map_remove_cb cb, void *arg, uintptr_t *addr)
{
	struct vm_map_entry *prev;
	struct reserve rs;
	struct removal rm;
	uintptr_t a;
	int r;

	r = check_place(place, &align);
	if (r == 0)
		r = check_attr(attr);
	if (r != 0)
		return r;
	if (len == 0 || (len & PAGE_MASK) != 0)
		return -MICA_EINVAL;
	if (attr->offset + len < attr->offset)
		return -MICA_EOVERFLOW;
	r = find_space(map, hint, len, align, place, &a, &prev);
	if (r != 0)
		return r;

	if ((place & VM_PLACE_FIXED) == 0) {
		r = insert_at(map, prev, a, len, attr, NULL);
	} else {
		r = reserve_get(map, &rs, removal_need(map, a, a + len) + 1);
		if (r != 0)
			return r;
		prev = remove_range(map, a, a + len, &rs, &rm);
		insert_at(map, prev, a, len, attr, &rs);
		removal_finish(map, &rm, cb, arg);
		reserve_put(map, &rs);
	}
	if (r == 0)
		*addr = a;
	VERIFY(map);
	return r;
}

int vm_map_insert(struct vm_map *map, uintptr_t addr, size_t len, const struct vm_map_attr *attr)
{
	uintptr_t a;

	return vm_map_enter(map, addr, len, PAGE_SIZE, VM_PLACE_NOREPLACE, attr, NULL, NULL, &a);
}

int vm_map_remove(struct vm_map *map, uintptr_t addr, size_t len, vm_map_remove_cb cb, void *arg)
{
	struct reserve rs;
	struct removal rm;
	int r = check_range(map, addr, len);

	if (r == 0)
		r = reserve_get(map, &rs, removal_need(map, addr, addr + len));
	if (r != 0)
		return r;
	map->hint = remove_range(map, addr, addr + len, &rs, &rm);
	removal_finish(map, &rm, cb, arg);
	reserve_put(map, &rs);
	VERIFY(map);
	return 0;
}

void vm_map_clear(struct vm_map *map, vm_map_remove_cb cb, void *arg)
{
	struct vm_map_entry *e = map->header.next, *nx;

	/* Detach everything first so the callbacks see an empty, consistent map. */
	map->header.next = map->header.prev = hdr(map);
	map->header.gap = map->max - map->min;
	map->root = NULL;
	map->hint = hdr(map);
	map->nentries = 0;
	map->size = 0;
	map->wired_size = 0;
	for (; e != hdr(map); e = nx) {
		nx = e->next;
		if (cb != NULL)
			cb(arg, e);
		entry_free(map, e);
	}
	VERIFY(map);
}

/* ---- protect / wire / unwire ------------------------------------------------------ */

enum change { CHANGE_PROT, CHANGE_WIRE, CHANGE_UNWIRE };

static int change_allowed(const struct vm_map_entry *e, enum change op, unsigned prot)
{
	if (op == CHANGE_PROT)
		return (prot & ~(unsigned)e->max_prot) != 0 ? -MICA_EACCES : 0;
	/* A guard entry has nothing to make resident: to wiring it is a hole. */
	return (e->flags & VM_ENT_GUARD) != 0 ? -MICA_ENOMEM : 0;
}

static bool change_differs(const struct vm_map_entry *e, enum change op, unsigned prot)
{
	switch (op) {
	case CHANGE_PROT:
		return e->prot != prot;
	case CHANGE_WIRE:
		return e->wired == 0;
	default:
		return e->wired != 0;
	}
}

static void change_apply(struct vm_map *map, struct vm_map_entry *e, enum change op, unsigned prot)
{
	switch (op) {
	case CHANGE_PROT:
		e->prot = (uint8_t)prot;
		break;
	case CHANGE_WIRE:
		e->wired = 1;
		map->wired_size += entry_len(e);
		break;
	default:
		e->wired = 0;
		map->wired_size -= entry_len(e);
		break;
	}
}

static int change_range(struct vm_map *map, uintptr_t addr, size_t len, enum change op,
                        unsigned prot)
{
	struct vm_map_entry *first, *last, *e;
	struct reserve rs;
	uintptr_t end = addr + len;
	unsigned need = 0;
	int r = check_range(map, addr, len);

	if (r != 0)
		return r;

	/* Phase 1: the whole range must be mapped and allowed; errors in address order. */
	if (!find_entry(map, addr, &first))
		return -MICA_ENOMEM;
	for (e = first;; e = e->next) {
		r = change_allowed(e, op, prot);
		if (r != 0)
			return r;
		if (e->end >= end)
			break;
		if (e->next == hdr(map) || e->next->start != e->end)
			return -MICA_ENOMEM;
	}
	last = e;
	if (first->start < addr && change_differs(first, op, prot))
		need++;
	if (last->end > end && change_differs(last, op, prot))
		need++;
	r = reserve_get(map, &rs, need);
	if (r != 0)
		return r;

	/* Phase 2: cannot fail. Only entries that actually change are split. */
	for (e = first;; e = e->next) {
		if (change_differs(e, op, prot)) {
			if (e->start < addr)
				e = split(map, e, addr, &rs);
			if (e->end > end)
				split(map, e, end, &rs);
			change_apply(map, e, op, prot);
		}
		if (e->end >= end)
			break;
	}
	reserve_put(map, &rs);
	find_entry(map, addr, &e);
	coalesce(map, e, end);
	VERIFY(map);
	return 0;
}

int vm_map_protect(struct vm_map *map, uintptr_t addr, size_t len, unsigned prot)
{
	if ((prot & ~VM_PROT_ALL) != 0)
		return -MICA_EINVAL;
	return change_range(map, addr, len, CHANGE_PROT, prot);
}

int vm_map_wire(struct vm_map *map, uintptr_t addr, size_t len)
{
	return change_range(map, addr, len, CHANGE_WIRE, 0);
}

int vm_map_unwire(struct vm_map *map, uintptr_t addr, size_t len)
{
	return change_range(map, addr, len, CHANGE_UNWIRE, 0);
}

/* ---- setup ------------------------------------------------------------------------ */

int vm_map_init(struct vm_map *map, uintptr_t min, uintptr_t max, const struct vm_map_ops *ops)
{
	if (ops == NULL || ops->alloc == NULL || ops->free == NULL || min >= max ||
	    ((min | max) & PAGE_MASK) != 0)
		return -MICA_EINVAL;
	memset(map, 0, sizeof(*map));
	map->min = min;
	map->max = max;
	map->ops = *ops;
	map->header.start = max;
	map->header.end = min;
	map->header.gap = max - min;
	map->header.rb_parent_colour = RB_BLACK;
	map->header.next = map->header.prev = hdr(map);
	map->hint = hdr(map);
#ifdef MICA_TEST
	map->debug_check = true;
#endif
	VERIFY(map);
	return 0;
}

/* ---- invariant checker ------------------------------------------------------------ */

struct check_walk {
	const struct vm_map_entry *cursor; /* next entry expected in list order */
	const struct vm_map_entry *header;
	size_t count;
};

#define CHECK_MAX_DEPTH 128 /* 2 * log2(n + 1) for any n that fits in memory */

/* In-order walk that must meet the list entries one by one; returns the black height or a
 * negative value with *why set. */
static int check_subtree(const struct vm_map_entry *e, const struct vm_map_entry *parent, int depth,
                         struct check_walk *w, const char **why)
{
	int lh, rh;

	if (e == NULL)
		return 1;
	if (depth > CHECK_MAX_DEPTH) {
		*why = "tree deeper than a red-black tree can be (cycle?)";
		return -1;
	}
	if (rb_parent(e) != parent) {
		*why = "tree parent pointer wrong";
		return -1;
	}
	if (rb_red(e) && (rb_red(e->rb_left) || rb_red(e->rb_right))) {
		*why = "red node with a red child";
		return -1;
	}
	lh = check_subtree(e->rb_left, e, depth + 1, w, why);
	if (lh < 0)
		return -1;
	if (e != w->cursor || w->cursor == w->header) {
		*why = "tree in-order sequence differs from the entry list";
		return -1;
	}
	w->cursor = w->cursor->next;
	w->count++;
	if (e->max_gap != subtree_max(e)) {
		*why = "max_gap is not the maximum gap of the subtree";
		return -1;
	}
	rh = check_subtree(e->rb_right, e, depth + 1, w, why);
	if (rh < 0)
		return -1;
	if (lh != rh) {
		*why = "black heights differ";
		return -1;
	}
	return lh + (rb_red(e) ? 0 : 1);
}

static int check_fail(const char **why, const char *msg)
{
	if (why != NULL)
		*why = msg;
	return -MICA_EINVAL;
}

int vm_map_check(const struct vm_map *map, const char **why)
{
	const struct vm_map_entry *h = &map->header, *e, *prev;
	struct check_walk w;
	size_t n = 0, size = 0, wired = 0;
	bool hint_ok = map->hint == h;
	const char *msg = NULL;

	if (map->min >= map->max || ((map->min | map->max) & PAGE_MASK) != 0)
		return check_fail(why, "map bounds invalid");
	if (h->start != map->max || h->end != map->min)
		return check_fail(why, "header does not describe the map bounds");
	if (h->gap != h->next->start - map->min)
		return check_fail(why, "gap below the first entry wrong");

	for (prev = h, e = h->next; e != h; prev = e, e = e->next) {
		if (++n > map->nentries)
			return check_fail(why, "list longer than nentries (or cyclic)");
		if (e->prev != prev)
			return check_fail(why, "list prev pointer wrong");
		if (e == map->hint)
			hint_ok = true;
		if (e->start >= e->end || ((e->start | e->end) & PAGE_MASK) != 0)
			return check_fail(why, "entry empty or not page aligned");
		if (e->start < prev->end)
			return check_fail(why, "entries overlap or are out of order");
		if (e->end > map->max)
			return check_fail(why, "entry beyond the map's max");
		if (e->gap != e->next->start - e->end)
			return check_fail(why, "gap is not the distance to the next entry");
		if (((e->prot | e->max_prot) & ~VM_PROT_ALL) != 0 || (e->prot & ~e->max_prot) != 0)
			return check_fail(why, "protection invalid or above max protection");
		if ((e->flags & ~VM_ENT_ALL) != 0 ||
		    ((e->flags & VM_ENT_GUARD) && e->max_prot != VM_PROT_NONE))
			return check_fail(why, "entry flags invalid");
		if (e->wired > 1)
			return check_fail(why, "user wiring nested");
		if ((e->offset & PAGE_MASK) != 0)
			return check_fail(why, "backing offset not page aligned");
		if (prev != h && mergeable(prev, e))
			return check_fail(why, "two neighbours that should have been merged");
		size += entry_len(e);
		if (e->wired)
			wired += entry_len(e);
	}
	if (h->prev != prev)
		return check_fail(why, "header prev is not the last entry");
	if (n != map->nentries)
		return check_fail(why, "nentries differs from the list");
	if (size != map->size || wired != map->wired_size)
		return check_fail(why, "mapped or wired byte count wrong");
	if (!hint_ok)
		return check_fail(why, "hint is neither the header nor a live entry");

	if (map->root != NULL && (rb_red(map->root) || rb_parent(map->root) != NULL))
		return check_fail(why, "root red or with a parent");
	w.cursor = h->next;
	w.header = h;
	w.count = 0;
	if (check_subtree(map->root, NULL, 0, &w, &msg) < 0)
		return check_fail(why, msg);
	if (w.cursor != h || w.count != map->nentries)
		return check_fail(why, "tree holds fewer nodes than the list");
	return 0;
}
