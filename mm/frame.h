/* Frame allocator: one struct frame per physical page of the RAM it manages, and a
 * binary buddy system over them.
 *
 * A block of order k is 2^k pages whose first physical page number is a multiple of
 * 2^k, so a block is naturally aligned in physical memory: an order-9 block is a
 * 2 MiB superpage, an order-18 block a 1 GiB one. Free blocks sit on one free list per
 * order; a freed block merges with its buddy (the other half of the order k+1 block)
 * while that buddy is free and whole. Merging is eager, so an allocation of order k
 * succeeds exactly when some naturally aligned run of 2^k managed pages is free.
 *
 * RAM ranges need not be aligned to anything: partial pages at their ends are
 * dropped, adjacent or overlapping ranges are merged, and each range is tiled by the
 * largest aligned blocks that fit. Reserved ranges (firmware, the kernel, this page
 * array, the DTB ...) are widened to whole pages, marked FRAME_RESERVED and never
 * handed out.
 *
 * The page array's storage comes from the caller (frame_array_bytes() says how much);
 * the caller must list that storage among the reserved ranges when it lies in the
 * RAM being managed.
 *
 * Reference counts live in a block's first frame: allocation sets it to 1,
 * frame_ref()/frame_unref() share the block, and it is freed when the count drops to
 * zero. frame_split() turns an allocated block into single pages with their own
 * counts (for breaking up a superpage).
 *
 * Locking: mm/ takes no locks; every function that reads or changes the allocator
 * says so, and the caller serialises them with one lock of its own. */
#ifndef MICA_MM_FRAME_H
#define MICA_MM_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX_ORDER  18 /* 2^18 pages = 1 GiB, the largest Sv39 leaf */
#define FRAME_NORDERS    (FRAME_MAX_ORDER + 1)
#define FRAME_MAX_RANGES 16 /* RAM ranges (after merging) and reserved ranges, each */

/* frame.state: owned by the allocator */
#define FRAME_HEAD     0x1u /* first page of a block, free or allocated */
#define FRAME_FREE     0x2u /* its block is on a free list */
#define FRAME_RESERVED 0x4u /* never handed out */

struct frame_range {
	uint64_t base;
	uint64_t size;
};

struct frame {
	/* On a free list while the block is free; the owner's while it is allocated
	 * (e.g. to chain the pages of one memory object). */
	struct frame *next, *prev;
	uintptr_t owner;   /* the owner's word; cleared on allocation, never read here */
	uint32_t refcount; /* in a block's first frame; 0 while free */
	uint8_t state;     /* FRAME_* */
	uint8_t order;     /* in a block's first frame */
	uint16_t uflags;   /* the owner's flags; cleared on allocation, never read here */
};

struct frame_zone {
	uint64_t pfn_base; /* first page number */
	uint64_t npages;
	size_t first; /* index of its first frame in the page array */
};

struct frame_allocator {
	struct frame *frames;
	size_t nframes;
	struct frame_zone zones[FRAME_MAX_RANGES];
	unsigned nzones;
	struct frame *free_head[FRAME_NORDERS];
	size_t free_blocks[FRAME_NORDERS];
	uint32_t free_nonempty; /* bit k set iff free_head[k] != NULL */
	size_t free_pages;
	size_t managed_pages; /* pages that can ever be handed out */
	size_t reserved_pages;
	bool check_each_op; /* run frame_check() after every change (test builds) */
};

struct frame_stats {
	size_t total_pages; /* managed: RAM minus reserved */
	size_t free_pages;
	size_t reserved_pages;
	size_t free_blocks[FRAME_NORDERS];
	int largest_free_order;    /* -1 when nothing is free */
	size_t largest_free_pages; /* 2^largest_free_order, or 0 */
};

/* Bytes of page array needed for these RAM ranges; 0 if the ranges are unusable
 * (too many, or wrapping past 2^64). => no lock: pure function */
size_t frame_array_bytes(const struct frame_range *ram, size_t nram);
/* Build the page array in `array` (at least frame_array_bytes() bytes, aligned for
 * struct frame) and free every page outside `reserved`. Returns 0, -MICA_EINVAL
 * (bad ranges, misaligned array) or -MICA_ENOMEM (array too small).
 * => fa is not yet visible to anyone else */
int frame_init(struct frame_allocator *fa, const struct frame_range *ram, size_t nram,
               const struct frame_range *reserved, size_t nreserved, void *array,
               size_t array_bytes);

/* One naturally aligned block of 2^order pages, reference count 1, or NULL.
 * O(FRAME_MAX_ORDER). => allocator locked by caller */
struct frame *frame_alloc(struct frame_allocator *fa, unsigned order);
/* As frame_alloc(), but the block lies within physical [pa_min, pa_max) (pa_max 0:
 * no limit), e.g. for devices that only reach low memory. Scans the free blocks of
 * order >= `order`. => allocator locked by caller */
struct frame *frame_alloc_within(struct frame_allocator *fa, unsigned order, uint64_t pa_min,
                                 uint64_t pa_max);
/* Free a block allocated with this order whose count is 1. -MICA_EINVAL if `f` is not
 * the first frame of an allocated block of that order (double free included),
 * -MICA_EBUSY if it is shared; nothing changes on error. => allocator locked by caller */
int frame_free(struct frame_allocator *fa, struct frame *f, unsigned order);
/* Take another reference. -MICA_EINVAL if not an allocated block, -MICA_EOVERFLOW at
 * the count's limit. => allocator locked by caller */
int frame_ref(struct frame_allocator *fa, struct frame *f);
/* Drop a reference: 1 if that freed the block, 0 if others remain, -MICA_EINVAL if
 * not an allocated block. => allocator locked by caller */
int frame_unref(struct frame_allocator *fa, struct frame *f);
/* Make each page of an allocated block its own order-0 block with the block's
 * reference count. O(2^order). => allocator locked by caller */
int frame_split(struct frame_allocator *fa, struct frame *f);

/* => no lock needed: the array and zones never change after frame_init() */
uint64_t frame_to_pa(const struct frame_allocator *fa, const struct frame *f);
/* The frame of the page containing `pa`, or NULL if that page is not in managed RAM
 * (reserved pages inside RAM do have frames). => no lock needed, as above */
struct frame *frame_from_pa(const struct frame_allocator *fa, uint64_t pa);

/* => allocator locked by caller (or a racy snapshot is acceptable) */
void frame_get_stats(const struct frame_allocator *fa, struct frame_stats *st);
/* Full consistency check: NULL when consistent, otherwise what is wrong.
 * O(pages). => allocator locked by caller */
const char *frame_check(const struct frame_allocator *fa);

#endif
