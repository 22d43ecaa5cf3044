/* Frame allocator: page array plus binary buddy free lists. See frame.h.
 *
 * State of every frame, which frame_check() verifies:
 * - RESERVED: exactly FRAME_RESERVED, never part of a block;
 * - first frame of a free block: FRAME_HEAD | FRAME_FREE, order, count 0, on the list
 *   of its order;
 * - first frame of an allocated block: FRAME_HEAD, order, count >= 1;
 * - any other page of a block: state 0. Splitting and merging touch only the first
 *   frames of the halves involved, which is what keeps both O(1) per order. */
#include <string.h>

#include "mica/errno.h"
#include "mica/kassert.h"
#include "mica/param.h"
#include "mm/frame.h"

#define FREE_HEAD (FRAME_HEAD | FRAME_FREE)

struct pfn_range {
	uint64_t start, end; /* page numbers, end exclusive */
};

#if defined(MICA_TEST)
static void frame_verify(const struct frame_allocator *fa, int line)
{
	const char *why;

	if (!fa->check_each_op)
		return;
	why = frame_check(fa);
	if (why != NULL)
		kassert_fail(why, __FILE__, line);
}
#define FRAME_VERIFY(fa) frame_verify((fa), __LINE__)
#else
#define FRAME_VERIFY(fa) ((void)0)
#endif

/* Whole pages inside each RAM range, sorted, with overlapping or touching ranges
 * merged so that buddies can pair across the seam. */
static int normalize_ram(const struct frame_range *ram, size_t nram,
                         struct pfn_range out[FRAME_MAX_RANGES], unsigned *nout)
{
	unsigned n = 0;

	if (nram > FRAME_MAX_RANGES || (nram != 0 && ram == NULL))
		return -MICA_EINVAL;
	for (size_t i = 0; i < nram; i++) {
		uint64_t base = ram[i].base, end = base + ram[i].size;
		struct pfn_range r;
		unsigned j;

		if (ram[i].size == 0)
			continue;
		if (end < base)
			return -MICA_EINVAL;
		r.start = (base >> PAGE_SHIFT) + ((base & PAGE_MASK) != 0);
		r.end = end >> PAGE_SHIFT;
		if (r.start >= r.end)
			continue;
		for (j = n; j > 0 && out[j - 1].start > r.start; j--)
			out[j] = out[j - 1];
		out[j] = r;
		n++;
	}
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++) {
		if (m != 0 && out[i].start <= out[m - 1].end) {
			if (out[i].end > out[m - 1].end)
				out[m - 1].end = out[i].end;
		} else {
			out[m++] = out[i];
		}
	}
	*nout = m;
	return 0;
}

size_t frame_array_bytes(const struct frame_range *ram, size_t nram)
{
	struct pfn_range r[FRAME_MAX_RANGES];
	unsigned n;
	uint64_t pages = 0;

	if (normalize_ram(ram, nram, r, &n) != 0)
		return 0;
	for (unsigned i = 0; i < n; i++)
		pages += r[i].end - r[i].start;
	if (pages > SIZE_MAX / sizeof(struct frame))
		return 0;
	return (size_t)pages * sizeof(struct frame);
}

static bool frame_valid(const struct frame_allocator *fa, const struct frame *f)
{
	uintptr_t p = (uintptr_t)f, base = (uintptr_t)fa->frames;

	return f != NULL && p >= base && p < base + fa->nframes * sizeof(struct frame) &&
	       (p - base) % sizeof(struct frame) == 0;
}

static const struct frame_zone *zone_of(const struct frame_allocator *fa, const struct frame *f)
{
	size_t i = (size_t)(f - fa->frames);

	for (unsigned z = 0; z < fa->nzones; z++)
		if (i >= fa->zones[z].first && i - fa->zones[z].first < fa->zones[z].npages)
			return &fa->zones[z];
	return NULL;
}

static uint64_t pfn_of(const struct frame_allocator *fa, const struct frame_zone *z,
                       const struct frame *f)
{
	return z->pfn_base + (uint64_t)((size_t)(f - fa->frames) - z->first);
}

static struct frame *frame_at(const struct frame_allocator *fa, const struct frame_zone *z,
                              uint64_t pfn)
{
	return fa->frames + z->first + (size_t)(pfn - z->pfn_base);
}

/* ---- free lists ---- */

static void block_insert(struct frame_allocator *fa, struct frame *f, unsigned order)
{
	struct frame *head = fa->free_head[order];

	f->state = FREE_HEAD;
	f->order = (uint8_t)order;
	f->refcount = 0;
	f->prev = NULL;
	f->next = head;
	if (head != NULL)
		head->prev = f;
	fa->free_head[order] = f;
	fa->free_blocks[order]++;
	fa->free_pages += (size_t)1 << order;
	fa->free_nonempty |= 1u << order;
}

static void block_remove(struct frame_allocator *fa, struct frame *f)
{
	unsigned order = f->order;

	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		fa->free_head[order] = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	f->next = f->prev = NULL;
	f->state = FRAME_HEAD;
	fa->free_blocks[order]--;
	fa->free_pages -= (size_t)1 << order;
	if (fa->free_head[order] == NULL)
		fa->free_nonempty &= ~(1u << order);
}

/* Free the block at `pfn`, merging upwards while its buddy is a free block of the same
 * order inside the same zone. */
static void block_release(struct frame_allocator *fa, const struct frame_zone *z, uint64_t pfn,
                          unsigned order)
{
	uint64_t zone_end = z->pfn_base + z->npages;

	frame_at(fa, z, pfn)->state = 0;
	while (order < FRAME_MAX_ORDER) {
		uint64_t size = 1ull << order, buddy = pfn ^ size;
		struct frame *b;

		if (buddy < z->pfn_base || buddy + size > zone_end)
			break;
		b = frame_at(fa, z, buddy);
		if (b->state != FREE_HEAD || b->order != order)
			break;
		block_remove(fa, b);
		b->state = 0;
		pfn &= ~size;
		order++;
	}
	block_insert(fa, frame_at(fa, z, pfn), order);
}

/* Cut the order-2^`target_order` block at `target` out of free block `f` (order j at
 * `pfn`), returning the halves not taken to the free lists. */
static struct frame *block_extract(struct frame_allocator *fa, const struct frame_zone *z,
                                   struct frame *f, uint64_t pfn, unsigned j, uint64_t target,
                                   unsigned target_order)
{
	struct frame *head;

	block_remove(fa, f);
	while (j > target_order) {
		uint64_t half;

		j--;
		half = 1ull << j;
		if (target >= pfn + half) {
			block_insert(fa, frame_at(fa, z, pfn), j);
			pfn += half;
		} else {
			block_insert(fa, frame_at(fa, z, pfn + half), j);
		}
	}
	KASSERT(pfn == target);
	head = frame_at(fa, z, pfn);
	head->state = FRAME_HEAD;
	head->order = (uint8_t)target_order;
	head->refcount = 1;
	head->owner = 0;
	head->uflags = 0;
	head->next = head->prev = NULL;
	return head;
}

/* Lowest block of `order` inside [min_pfn, max_pfn), scanning orders upwards so that
 * the smallest sufficient free block is split. */
static struct frame *alloc_block(struct frame_allocator *fa, unsigned order, uint64_t min_pfn,
                                 uint64_t max_pfn)
{
	uint64_t size = 1ull << order;
	uint32_t orders = fa->free_nonempty & (~0u << order);

	while (orders != 0) {
		unsigned j = (unsigned)__builtin_ctz(orders);

		for (struct frame *f = fa->free_head[j]; f != NULL; f = f->next) {
			const struct frame_zone *z = zone_of(fa, f);
			uint64_t pfn = pfn_of(fa, z, f), end = pfn + (1ull << j);
			uint64_t t = pfn > min_pfn ? pfn : min_pfn;

			t = (t + size - 1) & ~(size - 1);
			if (t < pfn || t >= end || t + size > end || t + size > max_pfn)
				continue;
			return block_extract(fa, z, f, pfn, j, t, order);
		}
		orders &= orders - 1;
	}
	return NULL;
}

/* ---- public interface ---- */

int frame_init(struct frame_allocator *fa, const struct frame_range *ram, size_t nram,
               const struct frame_range *reserved, size_t nreserved, void *array,
               size_t array_bytes)
{
	struct pfn_range r[FRAME_MAX_RANGES];
	unsigned n;
	size_t need;
	int err;

	memset(fa, 0, sizeof(*fa));
	err = normalize_ram(ram, nram, r, &n);
	if (err != 0)
		return err;
	if (nreserved != 0 && reserved == NULL)
		return -MICA_EINVAL;
	need = frame_array_bytes(ram, nram);
	if (need == 0 && n != 0)
		return -MICA_EINVAL;
	if (need != 0 && (array == NULL || (uintptr_t)array % _Alignof(struct frame) != 0))
		return -MICA_EINVAL;
	if (array_bytes < need)
		return -MICA_ENOMEM;

	fa->frames = array;
	for (unsigned i = 0; i < n; i++) {
		fa->zones[i].pfn_base = r[i].start;
		fa->zones[i].npages = r[i].end - r[i].start;
		fa->zones[i].first = fa->nframes;
		fa->nframes += (size_t)fa->zones[i].npages;
	}
	fa->nzones = n;
	if (need != 0)
		memset(array, 0, need);

	for (size_t i = 0; i < nreserved; i++) {
		uint64_t base = reserved[i].base, end = base + reserved[i].size;
		uint64_t s, e;

		if (reserved[i].size == 0)
			continue;
		s = base >> PAGE_SHIFT;
		/* widened to whole pages; one that wraps reserves up to the top */
		e = end < base ? ~0ull >> PAGE_SHIFT
		               : (end >> PAGE_SHIFT) + ((end & PAGE_MASK) != 0);
		for (unsigned zi = 0; zi < n; zi++) {
			const struct frame_zone *z = &fa->zones[zi];
			uint64_t lo = s > z->pfn_base ? s : z->pfn_base;
			uint64_t hi = e < z->pfn_base + z->npages ? e : z->pfn_base + z->npages;

			for (uint64_t pfn = lo; pfn < hi; pfn++) {
				struct frame *f = frame_at(fa, z, pfn);

				if (f->state != FRAME_RESERVED) {
					f->state = FRAME_RESERVED;
					fa->reserved_pages++;
				}
			}
		}
	}

	/* Tile each run of unreserved pages with the largest aligned blocks that fit;
	 * greedy tiling never leaves two free buddies side by side. */
	for (unsigned zi = 0; zi < n; zi++) {
		const struct frame_zone *z = &fa->zones[zi];
		uint64_t pfn = z->pfn_base, end = z->pfn_base + z->npages;

		while (pfn < end) {
			unsigned order = 0;

			if (frame_at(fa, z, pfn)->state == FRAME_RESERVED) {
				pfn++;
				continue;
			}
			while (order < FRAME_MAX_ORDER && (pfn & ((2ull << order) - 1)) == 0 &&
			       pfn + (2ull << order) <= end)
				order++;
			/* shrink until no reserved page is inside */
			for (;;) {
				uint64_t i;

				for (i = 0; i < (1ull << order); i++)
					if (frame_at(fa, z, pfn + i)->state == FRAME_RESERVED)
						break;
				if (i == (1ull << order))
					break;
				order = 0;
				while ((1ull << (order + 1)) <= i)
					order++;
			}
			block_insert(fa, frame_at(fa, z, pfn), order);
			pfn += 1ull << order;
		}
	}
	fa->managed_pages = fa->nframes - fa->reserved_pages;
#if defined(MICA_TEST)
	fa->check_each_op = true;
#endif
	FRAME_VERIFY(fa);
	return 0;
}

struct frame *frame_alloc(struct frame_allocator *fa, unsigned order)
{
	struct frame *f;

	if (order > FRAME_MAX_ORDER)
		return NULL;
	f = alloc_block(fa, order, 0, ~0ull);
	FRAME_VERIFY(fa);
	return f;
}

struct frame *frame_alloc_within(struct frame_allocator *fa, unsigned order, uint64_t pa_min,
                                 uint64_t pa_max)
{
	uint64_t min_pfn = (pa_min >> PAGE_SHIFT) + ((pa_min & PAGE_MASK) != 0);
	uint64_t max_pfn = pa_max == 0 ? ~0ull : pa_max >> PAGE_SHIFT;
	struct frame *f;

	if (order > FRAME_MAX_ORDER || min_pfn >= max_pfn)
		return NULL;
	f = alloc_block(fa, order, min_pfn, max_pfn);
	FRAME_VERIFY(fa);
	return f;
}

static bool allocated_head(const struct frame_allocator *fa, const struct frame *f)
{
	return frame_valid(fa, f) && f->state == FRAME_HEAD && f->refcount != 0;
}

static void release(struct frame_allocator *fa, struct frame *f)
{
	const struct frame_zone *z = zone_of(fa, f);

	f->refcount = 0;
	block_release(fa, z, pfn_of(fa, z, f), f->order);
}

int frame_free(struct frame_allocator *fa, struct frame *f, unsigned order)
{
	if (!allocated_head(fa, f) || f->order != order)
		return -MICA_EINVAL;
	if (f->refcount != 1)
		return -MICA_EBUSY;
	release(fa, f);
	FRAME_VERIFY(fa);
	return 0;
}

int frame_ref(struct frame_allocator *fa, struct frame *f)
{
	if (!allocated_head(fa, f))
		return -MICA_EINVAL;
	if (f->refcount == UINT32_MAX)
		return -MICA_EOVERFLOW;
	f->refcount++;
	return 0;
}

int frame_unref(struct frame_allocator *fa, struct frame *f)
{
	if (!allocated_head(fa, f))
		return -MICA_EINVAL;
	if (--f->refcount != 0)
		return 0;
	release(fa, f);
	FRAME_VERIFY(fa);
	return 1;
}

int frame_split(struct frame_allocator *fa, struct frame *f)
{
	size_t n;

	if (!allocated_head(fa, f))
		return -MICA_EINVAL;
	n = (size_t)1 << f->order;
	for (size_t i = 1; i < n; i++) {
		struct frame *g = f + i;

		g->state = FRAME_HEAD;
		g->order = 0;
		g->refcount = f->refcount;
		g->owner = 0;
		g->uflags = 0;
		g->next = g->prev = NULL;
	}
	f->order = 0;
	FRAME_VERIFY(fa);
	return 0;
}

uint64_t frame_to_pa(const struct frame_allocator *fa, const struct frame *f)
{
	const struct frame_zone *z = zone_of(fa, f);

	KASSERT(frame_valid(fa, f) && z != NULL);
	return pfn_of(fa, z, f) << PAGE_SHIFT;
}

struct frame *frame_from_pa(const struct frame_allocator *fa, uint64_t pa)
{
	uint64_t pfn = pa >> PAGE_SHIFT;

	for (unsigned i = 0; i < fa->nzones; i++) {
		const struct frame_zone *z = &fa->zones[i];

		if (pfn >= z->pfn_base && pfn - z->pfn_base < z->npages)
			return frame_at(fa, z, pfn);
	}
	return NULL;
}

void frame_get_stats(const struct frame_allocator *fa, struct frame_stats *st)
{
	st->total_pages = fa->managed_pages;
	st->free_pages = fa->free_pages;
	st->reserved_pages = fa->reserved_pages;
	for (unsigned k = 0; k < FRAME_NORDERS; k++)
		st->free_blocks[k] = fa->free_blocks[k];
	if (fa->free_nonempty == 0) {
		st->largest_free_order = -1;
		st->largest_free_pages = 0;
	} else {
		st->largest_free_order = 31 - __builtin_clz(fa->free_nonempty);
		st->largest_free_pages = (size_t)1 << st->largest_free_order;
	}
}

const char *frame_check(const struct frame_allocator *fa)
{
	size_t blocks[FRAME_NORDERS] = {0};
	size_t free_pages = 0, reserved = 0, tiled = 0;

	if (fa->nzones > FRAME_MAX_RANGES)
		return "too many zones";
	for (unsigned zi = 0; zi < fa->nzones; zi++) {
		const struct frame_zone *z = &fa->zones[zi];

		if (z->first != tiled || z->npages == 0)
			return "zones do not tile the page array";
		if (zi != 0 && z->pfn_base <= fa->zones[zi - 1].pfn_base + fa->zones[zi - 1].npages)
			return "zones unsorted, overlapping or touching";
		tiled += (size_t)z->npages;
	}
	if (tiled != fa->nframes)
		return "zones do not cover the page array";

	for (unsigned zi = 0; zi < fa->nzones; zi++) {
		const struct frame_zone *z = &fa->zones[zi];
		uint64_t i = 0;

		while (i < z->npages) {
			const struct frame *f = fa->frames + z->first + i;
			uint64_t pfn = z->pfn_base + i, size;

			if (f->state & FRAME_RESERVED) {
				if (f->state != FRAME_RESERVED || f->refcount != 0)
					return "reserved page is in use";
				reserved++;
				i++;
				continue;
			}
			if (!(f->state & FRAME_HEAD))
				return "page belongs to no block";
			if (f->order > FRAME_MAX_ORDER)
				return "block order too large";
			size = 1ull << f->order;
			if ((pfn & (size - 1)) != 0)
				return "block not naturally aligned";
			if (i + size > z->npages)
				return "block runs past the end of its zone";
			for (uint64_t t = 1; t < size; t++)
				if (f[t].state != 0)
					return "inner page of a block is marked";
			if (f->state & FRAME_FREE) {
				if (f->state != FREE_HEAD || f->refcount != 0)
					return "free block has references";
				blocks[f->order]++;
				free_pages += (size_t)size;
				if (f->order < FRAME_MAX_ORDER) {
					uint64_t buddy = pfn ^ size;

					if (buddy >= z->pfn_base &&
					    buddy + size <= z->pfn_base + z->npages &&
					    frame_at(fa, z, buddy)->state == FREE_HEAD &&
					    frame_at(fa, z, buddy)->order == f->order)
						return "free buddies left unmerged";
				}
			} else if (f->state != FRAME_HEAD) {
				return "block head in an unknown state";
			} else if (f->refcount == 0) {
				return "allocated block without references";
			}
			i += size;
		}
	}

	for (unsigned k = 0; k < FRAME_NORDERS; k++) {
		const struct frame *prev = NULL;
		size_t listed = 0;

		if ((fa->free_head[k] != NULL) != ((fa->free_nonempty >> k) & 1))
			return "free-list bitmap disagrees with the lists";
		for (const struct frame *f = fa->free_head[k]; f != NULL; prev = f, f = f->next) {
			if (!frame_valid(fa, f))
				return "free list points outside the page array";
			if (++listed > blocks[k])
				return "free list longer than the free blocks of its order";
			if (f->state != FREE_HEAD || f->order != k)
				return "free list holds a block that is not free or of another "
				       "order";
			if (f->prev != prev)
				return "free list back link broken";
		}
		if (listed != blocks[k] || listed != fa->free_blocks[k])
			return "free block missing from its list or miscounted";
	}
	if ((fa->free_nonempty >> FRAME_NORDERS) != 0)
		return "free-list bitmap has bits beyond the largest order";
	if (free_pages != fa->free_pages)
		return "free page count disagrees";
	if (reserved != fa->reserved_pages || fa->managed_pages != fa->nframes - reserved)
		return "reserved or managed page count disagrees";
	return NULL;
}
