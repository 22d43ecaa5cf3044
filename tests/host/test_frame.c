/* Unit and randomised tests for mm/frame (page array + buddy allocator).
 * The allocator runs frame_check() itself after every change (MICA_TEST). The
 * randomised test compares it with a per-page reference after every step; the seed
 * is printed and MICA_SEED=<n> replays it (MICA_FRAME_RANDOM_OPS sets the length). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mica/errno.h"
#include "mica/param.h"
#include "mm/frame.h"
#include "tests/host/lib/vmem_ref.h" /* vmem_ref_rand, vmem_ref_seed */

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct frame_allocator fa;
static void *array_mem;

static int setup_ranges(const struct frame_range *ram, size_t nram, const struct frame_range *res,
                        size_t nres)
{
	size_t bytes = frame_array_bytes(ram, nram);

	free(array_mem);
	array_mem = malloc(bytes ? bytes : 1);
	assert_non_null(array_mem);
	return frame_init(&fa, ram, nram, res, nres, array_mem, bytes);
}

static int teardown(void **state)
{
	(void)state;
	free(array_mem);
	array_mem = NULL;
	return 0;
}

static bool pa_reserved(uint64_t pa, const struct frame_range *res, size_t nres)
{
	for (size_t i = 0; i < nres; i++) {
		uint64_t lo = res[i].base & ~PAGE_MASK;
		uint64_t hi = (res[i].base + res[i].size + PAGE_MASK) & ~PAGE_MASK;

		if (res[i].size != 0 && pa >= lo && pa < hi)
			return true;
	}
	return false;
}

/* ---- sizing and init ---- */

static void test_array_bytes(void **state)
{
	struct frame_range one = {0x80000000, 16 * PAGE_SIZE};
	struct frame_range odd = {0x80000123, 16 * PAGE_SIZE}; /* 15 whole pages */
	struct frame_range tiny = {0x80000001, PAGE_SIZE};     /* no whole page */
	struct frame_range overlap[] = {{0x80000000, 8 * PAGE_SIZE},
	                                {0x80004000, 8 * PAGE_SIZE},
	                                {0x80008000, 4 * PAGE_SIZE}}; /* 12 pages, touching */
	struct frame_range wrap = {0xfffffffffffff000ull, 2 * PAGE_SIZE};
	struct frame_range many[FRAME_MAX_RANGES + 1];

	(void)state;
	assert_int_equal(frame_array_bytes(&one, 1), 16 * sizeof(struct frame));
	assert_int_equal(frame_array_bytes(&odd, 1), 15 * sizeof(struct frame));
	assert_int_equal(frame_array_bytes(&tiny, 1), 0);
	assert_int_equal(frame_array_bytes(overlap, 3), 12 * sizeof(struct frame));
	assert_int_equal(frame_array_bytes(&wrap, 1), 0);
	assert_int_equal(frame_array_bytes(NULL, 0), 0);
	for (unsigned i = 0; i <= FRAME_MAX_RANGES; i++)
		many[i] = (struct frame_range){0x80000000 + i * 2 * PAGE_SIZE, PAGE_SIZE};
	assert_int_equal(frame_array_bytes(many, FRAME_MAX_RANGES + 1), 0);
	assert_int_equal(frame_array_bytes(many, FRAME_MAX_RANGES),
	                 FRAME_MAX_RANGES * sizeof(struct frame));
	assert_int_equal(sizeof(struct frame), 32);
}

static void test_init_errors(void **state)
{
	struct frame_range ram = {0x80000000, 64 * PAGE_SIZE};
	struct frame_range wrap = {0xfffffffffffff000ull, 2 * PAGE_SIZE};
	static struct frame store[64 + 1];

	(void)state;
	assert_int_equal(frame_init(&fa, &ram, 1, NULL, 0, store, 63 * sizeof(struct frame)),
	                 -MICA_ENOMEM);
	assert_int_equal(
	    frame_init(&fa, &ram, 1, NULL, 0, (char *)store + 4, 64 * sizeof(struct frame)),
	    -MICA_EINVAL);
	assert_int_equal(frame_init(&fa, &ram, 1, NULL, 0, NULL, 64 * sizeof(struct frame)),
	                 -MICA_EINVAL);
	assert_int_equal(frame_init(&fa, &wrap, 1, NULL, 0, store, sizeof(store)), -MICA_EINVAL);
	assert_int_equal(frame_init(&fa, &ram, 1, NULL, 1, store, sizeof(store)), -MICA_EINVAL);
	assert_int_equal(frame_init(&fa, &ram, 1, NULL, 0, store, sizeof(store)), 0);
	assert_null(frame_check(&fa));
	/* no RAM at all is a valid, empty allocator */
	assert_int_equal(frame_init(&fa, NULL, 0, NULL, 0, NULL, 0), 0);
	assert_null(frame_alloc(&fa, 0));
	assert_null(frame_check(&fa));
}

/* ---- allocation basics ---- */

static void test_single_pages_and_pa_mapping(void **state)
{
	struct frame_range ram = {0x80000000, 1024 * PAGE_SIZE};
	struct frame_stats st;
	struct frame *f, *g;

	(void)state;
	assert_int_equal(setup_ranges(&ram, 1, NULL, 0), 0);
	frame_get_stats(&fa, &st);
	assert_int_equal(st.total_pages, 1024);
	assert_int_equal(st.free_pages, 1024);
	assert_int_equal(st.largest_free_order, 10);
	assert_int_equal(st.free_blocks[10], 1);

	f = frame_alloc(&fa, 0);
	assert_non_null(f);
	assert_int_equal(frame_to_pa(&fa, f), 0x80000000);
	assert_int_equal(f->refcount, 1);
	assert_ptr_equal(frame_from_pa(&fa, 0x80000000 + 123), f);
	g = frame_alloc(&fa, 0);
	assert_int_equal(frame_to_pa(&fa, g), 0x80001000); /* the buddy split off first */
	assert_null(frame_from_pa(&fa, 0x7ffff000));
	assert_null(frame_from_pa(&fa, 0x80000000 + 1024 * PAGE_SIZE));
	assert_ptr_equal(frame_from_pa(&fa, 0x80000000 + 1023 * PAGE_SIZE),
	                 frame_from_pa(&fa, 0x80000000) + 1023);
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, 1022);
	for (unsigned k = 1; k < 10; k++)
		assert_int_equal(st.free_blocks[k], 1); /* the split left one block per order */
	assert_int_equal(st.largest_free_order, 9);

	assert_int_equal(frame_free(&fa, f, 0), 0);
	assert_int_equal(frame_free(&fa, g, 0), 0);
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, 1024);
	assert_int_equal(st.free_blocks[10], 1); /* merged all the way back */
	assert_null(frame_alloc(&fa, FRAME_MAX_ORDER + 1));
	assert_null(frame_alloc(&fa, 11));
}

static void test_exhaustion_with_reserved_ranges(void **state)
{
	/* RAM not aligned to anything; reserved ranges at both edges, in the middle,
	 * overlapping each other, unaligned, partly outside RAM, empty, and wrapping. */
	struct frame_range ram[] = {{0x80000000 + 0x1800, 300 * PAGE_SIZE + 0x123},
	                            {0x80400000, 200 * PAGE_SIZE}};
	struct frame_range res[] = {
	    {0x80000000, 0x2800},                           /* first page of RAM and before */
	    {0x80000000 + 40 * PAGE_SIZE + 5, 10},          /* one page, unaligned */
	    {0x80000000 + 100 * PAGE_SIZE - 1, 2},          /* straddles two pages */
	    {0x80000000 + 150 * PAGE_SIZE, 20 * PAGE_SIZE}, /* middle */
	    {0x80000000 + 160 * PAGE_SIZE, 20 * PAGE_SIZE}, /* overlaps the previous */
	    {0x80400000 + 199 * PAGE_SIZE, 0x100000},       /* last page and beyond */
	    {0x80500000, 0},                                /* empty */
	    {0x90000000, 0x10000},                          /* outside RAM */
	    {0xfffffffffffff000ull, 0x2000},                /* wraps: up to the top */
	};
	size_t nres = sizeof(res) / sizeof(res[0]);
	struct frame_stats st;
	uint64_t managed = 0;
	size_t got = 0;
	struct frame *f;
	struct frame **all;

	(void)state;
	assert_int_equal(setup_ranges(ram, 2, res, nres), 0);
	for (uint64_t pa = 0x80000000; pa < 0x80600000; pa += PAGE_SIZE) {
		struct frame *p = frame_from_pa(&fa, pa);

		if (p != NULL && !pa_reserved(pa, res, nres)) {
			managed++;
			assert_false(p->state & FRAME_RESERVED);
		} else if (p != NULL) {
			assert_true(p->state & FRAME_RESERVED);
		}
	}
	frame_get_stats(&fa, &st);
	/* RAM pages: [0x80002000, 0x8012d000) = 299, [0x80400000, +200) = 200; reserved:
	 * page 2 (range 1), 40, 99, 100, 150..179, and the last page of the second. */
	assert_int_equal(managed, 299 + 200 - (1 + 1 + 2 + 30 + 1));
	assert_int_equal(st.total_pages, managed);
	assert_int_equal(st.free_pages, managed);

	all = calloc(managed, sizeof(*all));
	assert_non_null(all);
	while ((f = frame_alloc(&fa, 0)) != NULL) {
		uint64_t pa = frame_to_pa(&fa, f);

		assert_false(pa_reserved(pa, res, nres));
		assert_true(got < managed);
		all[got++] = f;
	}
	assert_int_equal(got, managed);
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, 0);
	assert_int_equal(st.largest_free_order, -1);
	assert_null(frame_alloc(&fa, 0));
	assert_null(frame_alloc_within(&fa, 0, 0, 0));
	for (size_t i = 0; i < got; i++)
		assert_int_equal(frame_free(&fa, all[i], 0), 0);
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, managed);
	free(all);
}

static void test_superpage_alignment_order9(void **state)
{
	/* 8 MiB starting 1 MiB past a 2 MiB line: exactly three aligned 2 MiB blocks. */
	struct frame_range ram = {0x80100000, 8 * MiB};
	struct frame *f[4];
	struct frame_stats st;

	(void)state;
	assert_int_equal(setup_ranges(&ram, 1, NULL, 0), 0);
	frame_get_stats(&fa, &st);
	/* tiled as 1 MiB (order 8), 2 MiB, 4 MiB (order 10, aligned), 1 MiB */
	assert_int_equal(st.largest_free_order, 10);
	assert_int_equal(st.free_blocks[10], 1);
	assert_int_equal(st.free_blocks[9], 1);
	assert_int_equal(st.free_blocks[8], 2);
	for (int i = 0; i < 3; i++) {
		f[i] = frame_alloc(&fa, 9);
		assert_non_null(f[i]);
		assert_int_equal(frame_to_pa(&fa, f[i]) % (2 * MiB), 0);
		assert_int_equal(f[i]->order, 9);
	}
	assert_null(frame_alloc(&fa, 9)); /* 2 MiB free in all, but not aligned */
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, 512);
	f[3] = frame_alloc(&fa, 8);
	assert_non_null(f[3]);
	assert_int_equal(frame_to_pa(&fa, f[3]) % MiB, 0);
	/* Freeing the middle block and a neighbour does not merge beyond order 9 unless
	 * the 4 MiB block is whole and aligned. */
	assert_int_equal(frame_free(&fa, f[1], 9), 0);
	assert_int_equal(frame_free(&fa, f[0], 9), 0);
	assert_int_equal(frame_free(&fa, f[2], 9), 0);
	assert_int_equal(frame_free(&fa, f[3], 8), 0);
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, 2048);
	assert_int_equal(st.largest_free_order, 10); /* [0x80400000, 0x80800000) */
	assert_int_equal(st.free_blocks[10], 1);
}

static void test_gigapage_order18(void **state)
{
	/* 1 GiB + 2 MiB, straddling a 1 GiB line: one order-18 block inside. */
	struct frame_range ram = {0x40000000 - MiB, GiB + 2 * MiB};
	struct frame_range res_inside = {0x40000000 + 300 * MiB, PAGE_SIZE};
	struct frame *g;
	struct frame_stats st;

	(void)state;
	assert_int_equal(setup_ranges(&ram, 1, NULL, 0), 0);
	fa.check_each_op = false; /* 262k pages: check at chosen points only */
	assert_null(frame_check(&fa));
	frame_get_stats(&fa, &st);
	assert_int_equal(st.largest_free_order, 18);
	assert_int_equal(st.free_blocks[18], 1);
	g = frame_alloc(&fa, 18);
	assert_non_null(g);
	assert_int_equal(frame_to_pa(&fa, g), 0x40000000);
	assert_null(frame_alloc(&fa, 18));
	assert_null(frame_check(&fa));
	/* The head alone carries the block: pages inside need no per-page work. */
	assert_ptr_equal(frame_from_pa(&fa, 0x40000000 + 5 * MiB), g + 1280);
	assert_int_equal(g[1280].state, 0);
	assert_int_equal(frame_free(&fa, g, 18), 0);
	assert_null(frame_check(&fa));

	/* One reserved page inside the gigabyte rules order 18 out. */
	assert_int_equal(setup_ranges(&ram, 1, &res_inside, 1), 0);
	fa.check_each_op = false;
	assert_null(frame_check(&fa));
	assert_null(frame_alloc(&fa, 18));
	g = frame_alloc(&fa, 17);
	assert_non_null(g);
	assert_int_equal(frame_to_pa(&fa, g) % (512 * MiB), 0);
	assert_null(frame_check(&fa));
}

static void test_alloc_within_limits(void **state)
{
	struct frame_range ram = {0x80000000, 64 * MiB};
	struct frame *f, *lows[256];
	unsigned n = 0;

	(void)state;
	assert_int_equal(setup_ranges(&ram, 1, NULL, 0), 0);
	/* A device that reaches only the first MiB. */
	while ((f = frame_alloc_within(&fa, 0, 0, 0x80100000)) != NULL) {
		assert_true(frame_to_pa(&fa, f) < 0x80100000);
		lows[n++] = f;
		assert_true(n <= 256);
	}
	assert_int_equal(n, 256);
	assert_non_null(frame_alloc(&fa, 0)); /* the rest of RAM is still there */
	/* window with an unaligned start: the first 2 MiB-aligned block at or above it */
	f = frame_alloc_within(&fa, 9, 0x80300001, 0x80800000);
	assert_non_null(f);
	assert_int_equal(frame_to_pa(&fa, f), 0x80400000);
	assert_null(frame_alloc_within(&fa, 9, 0x80300000, 0x80500000 - 1));
	assert_null(frame_alloc_within(&fa, 0, 0x90000000, 0x90001000)); /* outside RAM */
	assert_null(frame_alloc_within(&fa, 0, 0x80200000, 0x80200000)); /* empty window */
	assert_null(frame_alloc_within(&fa, FRAME_MAX_ORDER + 1, 0, 0));
	f = frame_alloc_within(&fa, 12, 0x80000000 + 16 * MiB, 0);
	assert_non_null(f);
	assert_true(frame_to_pa(&fa, f) >= 0x80000000 + 16 * MiB);
	assert_int_equal(frame_to_pa(&fa, f) % (16 * MiB), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(frame_free(&fa, lows[i], 0), 0);
}

static void test_free_detects_mistakes(void **state)
{
	struct frame_range ram = {0x80000000, 64 * PAGE_SIZE};
	struct frame_range res = {0x80000000 + 63 * PAGE_SIZE, PAGE_SIZE};
	struct frame *f, *g, outside;
	struct frame_stats before, after;

	(void)state;
	assert_int_equal(setup_ranges(&ram, 1, &res, 1), 0);
	f = frame_alloc(&fa, 2);
	g = frame_alloc(&fa, 0);
	memset(&before, 0, sizeof(before)); /* padding too: compared with memcmp */
	memset(&after, 0, sizeof(after));
	frame_get_stats(&fa, &before);
	assert_int_equal(frame_free(&fa, f, 1), -MICA_EINVAL);     /* wrong order */
	assert_int_equal(frame_free(&fa, f + 1, 0), -MICA_EINVAL); /* inside a block */
	assert_int_equal(frame_free(&fa, f + 4, 2), -MICA_EINVAL); /* a free page */
	assert_int_equal(frame_free(&fa, frame_from_pa(&fa, res.base), 0), -MICA_EINVAL);
	assert_int_equal(frame_free(&fa, &outside, 0), -MICA_EINVAL);
	assert_int_equal(frame_free(&fa, (struct frame *)((char *)f + 8), 2), -MICA_EINVAL);
	assert_int_equal(frame_free(&fa, NULL, 0), -MICA_EINVAL);
	assert_int_equal(frame_ref(&fa, f + 1), -MICA_EINVAL);
	assert_int_equal(frame_unref(&fa, f + 4), -MICA_EINVAL);
	assert_int_equal(frame_split(&fa, f + 4), -MICA_EINVAL);
	frame_get_stats(&fa, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(frame_free(&fa, f, 2), 0);
	assert_int_equal(frame_free(&fa, f, 2), -MICA_EINVAL); /* double free */
	assert_int_equal(frame_unref(&fa, f), -MICA_EINVAL);
	assert_int_equal(frame_free(&fa, g, 0), 0);
	assert_int_equal(frame_free(&fa, g, 0), -MICA_EINVAL);
	assert_null(frame_check(&fa));
}

static void test_refcount_sharing(void **state)
{
	struct frame_range ram = {0x80000000, 64 * PAGE_SIZE};
	struct frame_stats st;
	struct frame *f;

	(void)state;
	assert_int_equal(setup_ranges(&ram, 1, NULL, 0), 0);
	f = frame_alloc(&fa, 3);
	f->owner = 0x1234; /* the owner's fields are the owner's */
	f->uflags = 7;
	assert_int_equal(frame_ref(&fa, f), 0);
	assert_int_equal(frame_ref(&fa, f), 0);
	assert_int_equal(f->refcount, 3);
	assert_int_equal(frame_free(&fa, f, 3), -MICA_EBUSY); /* shared: not yours alone */
	assert_int_equal(frame_unref(&fa, f), 0);
	assert_int_equal(frame_unref(&fa, f), 0);
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, 56);
	assert_int_equal(frame_unref(&fa, f), 1); /* the last reference frees */
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, 64);
	assert_int_equal(frame_unref(&fa, f), -MICA_EINVAL);

	f = frame_alloc(&fa, 0);
	assert_int_equal(f->owner, 0);
	assert_int_equal(f->uflags, 0);
	f->refcount = UINT32_MAX;
	assert_int_equal(frame_ref(&fa, f), -MICA_EOVERFLOW);
	f->refcount = 1;
	assert_int_equal(frame_free(&fa, f, 0), 0);
}

static void test_split_superpage(void **state)
{
	struct frame_range ram = {0x80000000, 4 * MiB};
	struct frame_stats st;
	struct frame *f;

	(void)state;
	assert_int_equal(setup_ranges(&ram, 1, NULL, 0), 0);
	f = frame_alloc(&fa, 9);
	assert_int_equal(frame_ref(&fa, f), 0);
	assert_int_equal(frame_split(&fa, f), 0);
	for (int i = 0; i < 512; i++) {
		assert_int_equal(f[i].order, 0);
		assert_int_equal(f[i].refcount, 2);
	}
	assert_int_equal(frame_free(&fa, f + 7, 0), -MICA_EBUSY);
	/* Drop pages in a scattered order; the superpage reassembles at the end. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < 512; i++)
			assert_true(frame_unref(&fa, f + ((i * 37) % 512)) == pass);
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, 1024);
	assert_int_equal(st.free_blocks[10], 1);
	f = frame_alloc(&fa, 0);
	assert_int_equal(frame_split(&fa, f), 0); /* order 0: nothing to do */
	assert_int_equal(frame_free(&fa, f, 0), 0);
}

static void test_adjacent_ranges_merge(void **state)
{
	/* Two ranges given separately but touching: buddies pair across the seam. */
	struct frame_range ram[] = {{0x80200000, 2 * MiB}, {0x80000000, 2 * MiB}};
	struct frame_stats st;
	struct frame *f;

	(void)state;
	assert_int_equal(setup_ranges(ram, 2, NULL, 0), 0);
	frame_get_stats(&fa, &st);
	assert_int_equal(st.largest_free_order, 10);
	f = frame_alloc(&fa, 10);
	assert_int_equal(frame_to_pa(&fa, f), 0x80000000);
	assert_int_equal(frame_free(&fa, f, 10), 0);
}

static void test_check_detects_damage(void **state)
{
	struct frame_range ram = {0x80000000, 64 * PAGE_SIZE};
	struct frame *f;

	(void)state;
	assert_int_equal(setup_ranges(&ram, 1, NULL, 0), 0);
	f = frame_alloc(&fa, 2);
	assert_null(frame_check(&fa));
	f[1].state = FRAME_HEAD;
	assert_non_null(frame_check(&fa));
	f[1].state = 0;
	f->refcount = 0;
	assert_non_null(frame_check(&fa));
	f->refcount = 1;
	fa.free_pages++;
	assert_non_null(frame_check(&fa));
	fa.free_pages--;
	f[4].order = 1; /* a free block that claims another order */
	assert_non_null(frame_check(&fa));
	f[4].order = 2;
	fa.free_nonempty |= 1u << 17;
	assert_non_null(frame_check(&fa));
	fa.free_nonempty &= ~(1u << 17);
	assert_null(frame_check(&fa));
	assert_int_equal(frame_free(&fa, f, 2), 0);
}

/* ---- randomised comparison with a per-page reference ---- */

#define REF_MAX_PAGES 4096

enum { P_RESERVED = -1, P_FREE = 0 }; /* > 0: allocated, block id */

struct ref_block {
	struct frame *head;
	unsigned order;
	uint32_t refs;
};

static int ref_page[REF_MAX_PAGES];
static struct ref_block ref_blocks[REF_MAX_PAGES];
static unsigned ref_nblocks;

static size_t idx_of(const struct frame *f)
{
	return (size_t)(f - fa.frames);
}

/* Is there a free, naturally aligned run of 2^order pages inside [min_pa, max_pa)?
 * Brute force over every page of every zone. */
static bool ref_can_alloc(unsigned order, uint64_t min_pa, uint64_t max_pa)
{
	uint64_t n = 1ull << order;

	for (unsigned z = 0; z < fa.nzones; z++) {
		const struct frame_zone *zn = &fa.zones[z];

		for (uint64_t i = 0; i + n <= zn->npages; i++) {
			uint64_t pfn = zn->pfn_base + i, k;

			if (pfn % n != 0 || (pfn << PAGE_SHIFT) < min_pa ||
			    (max_pa != 0 && ((pfn + n) << PAGE_SHIFT) > max_pa))
				continue;
			for (k = 0; k < n && ref_page[zn->first + i + k] == P_FREE; k++)
				;
			if (k == n)
				return true;
		}
	}
	return false;
}

static void ref_take(struct frame *f, unsigned order, uint64_t min_pa, uint64_t max_pa)
{
	uint64_t pa = frame_to_pa(&fa, f);
	size_t i0 = idx_of(f);

	assert_int_equal(pa % (PAGE_SIZE << order), 0);
	assert_true(pa >= min_pa);
	assert_true(max_pa == 0 || pa + (PAGE_SIZE << order) <= max_pa);
	assert_int_equal(f->order, order);
	assert_int_equal(f->refcount, 1);
	for (size_t i = i0; i < i0 + (1u << order); i++) {
		assert_int_equal(ref_page[i], P_FREE);
		assert_ptr_equal(frame_from_pa(&fa, pa + ((i - i0) << PAGE_SHIFT)), fa.frames + i);
		ref_page[i] = (int)ref_nblocks + 1;
	}
	ref_blocks[ref_nblocks++] = (struct ref_block){f, order, 1};
}

static void ref_drop(unsigned b)
{
	struct ref_block gone = ref_blocks[b];
	size_t i0 = idx_of(gone.head);

	for (size_t i = i0; i < i0 + (1u << gone.order); i++)
		ref_page[i] = P_FREE;
	if (b != --ref_nblocks) {
		struct ref_block moved = ref_blocks[ref_nblocks];

		ref_blocks[b] = moved;
		i0 = idx_of(moved.head);
		for (size_t i = i0; i < i0 + (1u << moved.order); i++)
			ref_page[i] = (int)b + 1;
	}
}

/* Every page's fate as the allocator sees it must match the reference. Plain
 * comparisons in the loop (this runs after every step), cmocka only to report. */
static void ref_compare(void)
{
	struct frame_stats st;
	size_t free_pages = 0;

	for (size_t i = 0; i < fa.nframes;) {
		const struct frame *f = &fa.frames[i];
		size_t n = (size_t)1 << f->order;
		bool is_free = f->state & FRAME_FREE;

		if (f->state == FRAME_RESERVED) {
			if (ref_page[i] != P_RESERVED)
				fail_msg("page %zu reserved, reference %d", i, ref_page[i]);
			i++;
			continue;
		}
		if (!(f->state & FRAME_HEAD))
			fail_msg("page %zu is in no block", i);
		for (size_t k = i; k < i + n; k++) {
			if (is_free ? ref_page[k] != P_FREE
			            : ref_page[k] <= 0 || ref_page[k] != ref_page[i])
				fail_msg("page %zu: allocator %s, reference %d", k,
				         is_free ? "free" : "allocated", ref_page[k]);
		}
		if (is_free) {
			free_pages += n;
		} else {
			const struct ref_block *b = &ref_blocks[ref_page[i] - 1];

			if (b->head != f || b->order != f->order || b->refs != f->refcount)
				fail_msg("block at page %zu: order %u refs %u, reference %u/%u", i,
				         f->order, f->refcount, b->order, b->refs);
		}
		i += n;
	}
	frame_get_stats(&fa, &st);
	assert_int_equal(st.free_pages, free_pages);
}

static unsigned random_order(uint64_t r)
{
	unsigned d = (unsigned)(r % 100);

	if (d < 45)
		return 0;
	if (d < 75)
		return 1 + (unsigned)((r >> 8) % 3);
	if (d < 93)
		return 4 + (unsigned)((r >> 8) % 3);
	if (d < 98)
		return 9;
	return 10 + (unsigned)((r >> 8) % 9);
}

static void test_random_against_reference(void **state)
{
	/* Two banks, neither aligned to 2 MiB, and reserved pages here and there. */
	struct frame_range ram[] = {{0x80000000 + 0x1800, 700 * PAGE_SIZE + 0x321},
	                            {0x8ff00000, 1536 * PAGE_SIZE}};
	struct frame_range res[] = {{0x80000000 + 0x5010, 0x1ff0},
	                            {0x80000000 + 300 * PAGE_SIZE, 3 * PAGE_SIZE},
	                            {0x8ff00000 + 700 * PAGE_SIZE + 7, 1},
	                            {0x8ff00000 + 1535 * PAGE_SIZE, PAGE_SIZE}};
	const char *env = getenv("MICA_FRAME_RANDOM_OPS");
	uint64_t nops = env != NULL ? strtoull(env, NULL, 0) : 60000;
	uint64_t rng = vmem_ref_seed("test_frame random");
	uint64_t lo = 0x80000000, hi = 0x8ff00000 + 1536 * PAGE_SIZE;
	uint64_t ok = 0, full = 0, within = 0, splits = 0, bad = 0;

	(void)state;
	assert_int_equal(setup_ranges(ram, 2, res, 4), 0);
	assert_true(fa.nframes <= REF_MAX_PAGES);
	ref_nblocks = 0;
	for (size_t i = 0; i < fa.nframes; i++)
		ref_page[i] = fa.frames[i].state == FRAME_RESERVED ? P_RESERVED : P_FREE;
	for (size_t i = 0; i < fa.nframes; i++)
		assert_int_equal(ref_page[i] == P_RESERVED,
		                 pa_reserved(frame_to_pa(&fa, &fa.frames[i]), res, 4));
	ref_compare();

	for (uint64_t n = 0; n < nops; n++) {
		uint64_t r = vmem_ref_rand(&rng), r2 = vmem_ref_rand(&rng);
		unsigned d = (unsigned)(r % 100);
		bool busy = ref_nblocks > 40;

		if (d < (busy ? 30u : 45u)) {
			unsigned order = random_order(r2);
			bool can = ref_can_alloc(order, 0, 0);
			struct frame *f = frame_alloc(&fa, order);

			assert_int_equal(f != NULL, can); /* buddy allocation is exact */
			if (f != NULL) {
				ref_take(f, order, 0, 0);
				ok++;
			} else {
				full++;
			}
		} else if (d < 55) {
			unsigned order = random_order(r2) % 7;
			uint64_t a = lo + ((r2 >> 16) % ((hi - lo) >> PAGE_SHIFT)) * PAGE_SIZE;
			uint64_t b = a + (((r2 >> 40) % 512) + 1) * PAGE_SIZE;
			bool can;
			struct frame *f;

			if ((r >> 20) & 1)
				a += (r >> 24) % PAGE_SIZE; /* unaligned bounds round inwards */
			can = ref_can_alloc(order, (a + PAGE_MASK) & ~PAGE_MASK, b & ~PAGE_MASK);
			f = frame_alloc_within(&fa, order, a, b);
			assert_int_equal(f != NULL, can);
			if (f != NULL)
				ref_take(f, order, a, b);
			within++;
		} else if (d < 85 && ref_nblocks != 0) {
			unsigned b = (unsigned)(r2 % ref_nblocks);
			struct ref_block *blk = &ref_blocks[b];

			if ((r >> 20) % 3 == 0) {
				assert_int_equal(frame_unref(&fa, blk->head), blk->refs == 1);
				if (--blk->refs == 0)
					ref_drop(b);
			} else if (blk->refs == 1) {
				assert_int_equal(frame_free(&fa, blk->head, blk->order), 0);
				ref_drop(b);
			} else {
				assert_int_equal(frame_free(&fa, blk->head, blk->order),
				                 -MICA_EBUSY);
			}
		} else if (d < 90 && ref_nblocks != 0) {
			struct ref_block *blk = &ref_blocks[r2 % ref_nblocks];

			assert_int_equal(frame_ref(&fa, blk->head), 0);
			blk->refs++;
		} else if (d < 93 && ref_nblocks != 0) {
			unsigned b = (unsigned)(r2 % ref_nblocks);
			struct ref_block blk = ref_blocks[b];

			assert_int_equal(frame_split(&fa, blk.head), 0);
			if (blk.order != 0) {
				ref_blocks[b].order = 0;
				for (unsigned k = 1; k < (1u << blk.order); k++) {
					size_t i = idx_of(blk.head) + k;

					ref_blocks[ref_nblocks] =
					    (struct ref_block){blk.head + k, 0, blk.refs};
					ref_page[i] = (int)++ref_nblocks;
				}
				splits++;
			}
		} else {
			/* a mistaken free of an arbitrary frame with an arbitrary order */
			size_t i = (size_t)(r2 % fa.nframes);
			unsigned order = (unsigned)((r2 >> 32) % 4);
			struct frame *f = &fa.frames[i];
			int want;

			if (ref_page[i] <= 0 || ref_blocks[ref_page[i] - 1].head != f)
				want = -MICA_EINVAL;
			else if (ref_blocks[ref_page[i] - 1].order != order)
				want = -MICA_EINVAL;
			else if (ref_blocks[ref_page[i] - 1].refs != 1)
				want = -MICA_EBUSY;
			else
				want = 0;
			assert_int_equal(frame_free(&fa, f, order), want);
			if (want == 0)
				ref_drop((unsigned)ref_page[i] - 1);
			bad++;
		}
		ref_compare();
	}
	printf("# %llu ops: %llu allocations, %llu refused (exactly when the reference had no "
	       "run), %llu bounded, %llu splits, %llu mistaken frees\n",
	       (unsigned long long)nops, (unsigned long long)ok, (unsigned long long)full,
	       (unsigned long long)within, (unsigned long long)splits, (unsigned long long)bad);
	assert_true(full > 0 && ok > 0 && splits > 0);
	/* give everything back: the allocator must return to its initial tiling */
	while (ref_nblocks != 0) {
		struct ref_block *blk = &ref_blocks[ref_nblocks - 1];

		while (blk->refs > 1) {
			assert_int_equal(frame_unref(&fa, blk->head), 0);
			blk->refs--;
		}
		assert_int_equal(frame_free(&fa, blk->head, blk->order), 0);
		ref_drop(ref_nblocks - 1);
	}
	ref_compare();
	assert_int_equal(fa.free_pages, fa.managed_pages);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_array_bytes, teardown),
	    cmocka_unit_test_teardown(test_init_errors, teardown),
	    cmocka_unit_test_teardown(test_single_pages_and_pa_mapping, teardown),
	    cmocka_unit_test_teardown(test_exhaustion_with_reserved_ranges, teardown),
	    cmocka_unit_test_teardown(test_superpage_alignment_order9, teardown),
	    cmocka_unit_test_teardown(test_gigapage_order18, teardown),
	    cmocka_unit_test_teardown(test_alloc_within_limits, teardown),
	    cmocka_unit_test_teardown(test_free_detects_mistakes, teardown),
	    cmocka_unit_test_teardown(test_refcount_sharing, teardown),
	    cmocka_unit_test_teardown(test_split_superpage, teardown),
	    cmocka_unit_test_teardown(test_adjacent_ranges_merge, teardown),
	    cmocka_unit_test_teardown(test_check_detects_damage, teardown),
	    cmocka_unit_test_teardown(test_random_against_reference, teardown),
	};

	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
