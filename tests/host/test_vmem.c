/* Unit tests for mm/vmem: every operation, its edge cases and its error paths.
 * The arena runs vmem_check() itself after every change (MICA_TEST); the tests add
 * "nothing changed" comparisons around every failing call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mica/errno.h"
#include "mm/vmem.h"

#define Q 16u /* quantum of most test arenas */

static struct vmem_btag tag_store[4096];
static struct vmem_btag_pool pool;

static void plenty_of_tags(void)
{
	vmem_btag_pool_init(&pool, NULL, NULL, 0);
	assert_int_equal(vmem_btag_pool_add(&pool, tag_store, sizeof(tag_store)), 4096);
}

static void make_arena(struct vmem *vm, vmem_size_t quantum, vmem_size_t qcache_max)
{
	struct vmem_config cfg = {
	    .name = "test", .quantum = quantum, .qcache_max = qcache_max, .pool = &pool};

	assert_int_equal(vmem_init(vm, &cfg), 0);
}

/* ---- snapshots: "nothing changed" ---- */

struct snap {
	unsigned n;
	struct {
		enum vmem_walk_kind kind;
		vmem_addr_t start;
		vmem_size_t size;
	} seg[512];
	struct vmem_stats st;
};

static void snap_cb(void *arg, enum vmem_walk_kind kind, vmem_addr_t start, vmem_size_t size)
{
	struct snap *s = arg;

	assert_true(s->n < 512);
	s->seg[s->n].kind = kind;
	s->seg[s->n].start = start;
	s->seg[s->n].size = size;
	s->n++;
}

static void take(const struct vmem *vm, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	vmem_walk(vm, snap_cb, s);
	vmem_get_stats(vm, &s->st);
}

static void assert_unchanged(const struct vmem *vm, const struct snap *before)
{
	static struct snap snap_now; /* static: a failing assert leaks nothing */
	struct snap *now = &snap_now;

	take(vm, now);
	assert_int_equal(now->n, before->n);
	for (unsigned i = 0; i < now->n; i++) {
		assert_int_equal(now->seg[i].kind, before->seg[i].kind);
		assert_int_equal(now->seg[i].start, before->seg[i].start);
		assert_int_equal(now->seg[i].size, before->seg[i].size);
	}
	assert_int_equal(now->st.inuse, before->st.inuse);
	assert_int_equal(now->st.cached, before->st.cached);
	assert_int_equal(now->st.total, before->st.total);
	assert_null(vmem_check(vm));
}

static struct snap snap_before;

static vmem_addr_t must_alloc(struct vmem *vm, vmem_size_t size, unsigned flags)
{
	vmem_addr_t a = 0;

	assert_int_equal(vmem_alloc(vm, size, flags, &a), 0);
	return a;
}

static vmem_addr_t must_xalloc(struct vmem *vm, vmem_size_t size, vmem_size_t align,
                               vmem_size_t phase, vmem_size_t nocross, vmem_addr_t minaddr,
                               vmem_addr_t maxaddr, unsigned flags)
{
	vmem_addr_t a = 0;

	assert_int_equal(vmem_xalloc(vm, size, align, phase, nocross, minaddr, maxaddr, flags, &a),
	                 0);
	return a;
}

/* ---- init and spans ---- */

static void test_init_rejects_bad_config(void **state)
{
	struct vmem vm;
	struct vmem_btag *buckets[8];
	struct vmem_config cfg = {.quantum = Q, .pool = &pool};

	(void)state;
	plenty_of_tags();
	cfg.quantum = 0;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.quantum = 24;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.quantum = Q;
	cfg.pool = NULL;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.pool = &pool;
	cfg.qcache_max = Q + 1;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.qcache_max = (VMEM_QCACHE_SIZES + 1) * Q;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.qcache_max = 0;
	cfg.import = vmem_import_from_arena;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.import = NULL;
	cfg.release = vmem_release_to_arena;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.release = NULL;
	cfg.import_min = Q / 2;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.import_min = 0;
	cfg.hash_buckets = buckets;
	cfg.hash_nbuckets = 6;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.hash_nbuckets = 1;
	assert_int_equal(vmem_init(&vm, &cfg), -MICA_EINVAL);
	cfg.hash_nbuckets = 8;
	assert_int_equal(vmem_init(&vm, &cfg), 0);
	assert_int_equal(vmem_add(&vm, 0x1000, 64 * Q), 0);
	for (int i = 0; i < 40; i++)
		must_alloc(&vm, Q, VMEM_INSTANTFIT); /* 40 segments in 8 buckets */
	assert_null(vmem_check(&vm));
}

static void test_add_validates_and_keeps_spans_apart(void **state)
{
	struct vmem vm;
	struct vmem_stats st;
	vmem_addr_t a;

	(void)state;
	plenty_of_tags();
	make_arena(&vm, Q, 0);
	assert_int_equal(vmem_add(&vm, 0x1000, 0), -MICA_EINVAL);
	assert_int_equal(vmem_add(&vm, 0x1008, 4 * Q), -MICA_EINVAL);
	assert_int_equal(vmem_add(&vm, 0x1000, 4 * Q + 8), -MICA_EINVAL);
	assert_int_equal(vmem_add(&vm, 0 - 4 * (vmem_addr_t)Q, 4 * Q), -MICA_EINVAL); /* end 2^64 */
	assert_int_equal(vmem_add(&vm, 0 - 4 * (vmem_addr_t)Q, 8 * Q), -MICA_EINVAL); /* wraps */
	assert_int_equal(vmem_add(&vm, 0 - 5 * (vmem_addr_t)Q, 4 * Q), 0); /* ends at 2^64 - Q */

	/* Added out of order; adjacent spans are allowed but never merged. */
	assert_int_equal(vmem_add(&vm, 0x2000, 4 * Q), 0);
	assert_int_equal(vmem_add(&vm, 0x1000, 4 * Q), 0);
	assert_int_equal(vmem_add(&vm, 0x1000 + 4 * Q, 4 * Q), 0);
	take(&vm, &snap_before);
	assert_int_equal(vmem_add(&vm, 0x1000, 4 * Q), -MICA_EEXIST);
	assert_int_equal(vmem_add(&vm, 0x1000 + Q, Q), -MICA_EEXIST);
	assert_int_equal(vmem_add(&vm, 0x0800, 0x1000), -MICA_EEXIST);
	assert_int_equal(vmem_add(&vm, 0x1f00, 0x200), -MICA_EEXIST);
	assert_int_equal(vmem_add(&vm, 0x0, 0x10000), -MICA_EEXIST);
	assert_unchanged(&vm, &snap_before);

	vmem_get_stats(&vm, &st);
	assert_int_equal(st.nspans, 4);
	assert_int_equal(st.total, 16 * Q);
	assert_int_equal(st.largest_free, 4 * Q);
	/* 8 quanta exist side by side in two spans, but no segment spans both. */
	assert_int_equal(vmem_alloc(&vm, 8 * Q, VMEM_BESTFIT, &a), -MICA_ENOMEM);
	assert_int_equal(vmem_xalloc(&vm, 8 * Q, 0, 0, 0, 0, 0, VMEM_INSTANTFIT, &a), -MICA_ENOMEM);
	a = must_xalloc(&vm, 4 * Q, 0, 0, 0, 0x1000 + 4 * Q, 0x1000 + 8 * Q, VMEM_BESTFIT);
	assert_int_equal(a, 0x1000 + 4 * Q);
	a = must_xalloc(&vm, 2 * Q, 0, 0, 0, 0 - 3 * (vmem_addr_t)Q, 0, VMEM_BESTFIT);
	assert_int_equal(a, 0 - 3 * (vmem_addr_t)Q);
	assert_int_equal(vmem_free(&vm, a, 2 * Q), 0);
}

/* ---- allocation and free ---- */

static void test_alloc_rejects_bad_requests(void **state)
{
	struct vmem vm;
	vmem_addr_t a = 0xdead;

	(void)state;
	plenty_of_tags();
	make_arena(&vm, Q, 4 * Q);
	assert_int_equal(vmem_add(&vm, 0x10000, 256 * Q), 0);
	take(&vm, &snap_before);
	assert_int_equal(vmem_alloc(&vm, 0, VMEM_INSTANTFIT, &a), -MICA_EINVAL);
	assert_int_equal(vmem_alloc(&vm, Q + 1, VMEM_INSTANTFIT, &a), -MICA_EINVAL);
	assert_int_equal(vmem_alloc(&vm, Q, 0, &a), -MICA_EINVAL);
	assert_int_equal(vmem_alloc(&vm, Q, VMEM_INSTANTFIT | VMEM_BESTFIT, &a), -MICA_EINVAL);
	assert_int_equal(vmem_alloc(&vm, Q, VMEM_INSTANTFIT | 0x100, &a), -MICA_EINVAL);
	/* xalloc: each parameter on its own */
	assert_int_equal(vmem_xalloc(&vm, 0, 0, 0, 0, 0, 0, VMEM_BESTFIT, &a), -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, 3, 0, 0, 0, 0, 0, VMEM_BESTFIT, &a), -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, Q, 3 * Q, 0, 0, 0, 0, VMEM_BESTFIT, &a), -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, Q, Q / 2, 0, 0, 0, 0, VMEM_BESTFIT, &a), -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, Q, 4 * Q, 4 * Q, 0, 0, 0, VMEM_BESTFIT, &a),
	                 -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, Q, 4 * Q, 8 * Q, 0, 0, 0, VMEM_BESTFIT, &a),
	                 -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, Q, 4 * Q, 1, 0, 0, 0, VMEM_BESTFIT, &a), -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, Q, 0, Q, 0, 0, 0, VMEM_BESTFIT, &a), -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, 4 * Q, 0, 0, 2 * Q, 0, 0, VMEM_BESTFIT, &a),
	                 -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, 4 * Q, 0, 0, 6 * Q, 0, 0, VMEM_BESTFIT, &a),
	                 -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, Q, 0, 0, 0, 0x20000, 0x20000, VMEM_BESTFIT, &a),
	                 -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, Q, 0, 0, 0, 0x20000, 0x10000, VMEM_BESTFIT, &a),
	                 -MICA_EINVAL);
	assert_int_equal(vmem_xalloc(&vm, Q, 0, 0, 0, 0, 0, 0, &a), -MICA_EINVAL);
	assert_int_equal(a, 0xdead);
	assert_unchanged(&vm, &snap_before);
	/* satisfiable in form, impossible in fact: -ENOMEM, not -EINVAL */
	assert_int_equal(vmem_xalloc(&vm, 2 * Q, 4 * Q, 3 * Q, 4 * Q, 0, 0, VMEM_BESTFIT, &a),
	                 -MICA_ENOMEM);
	assert_int_equal(vmem_xalloc(&vm, Q, 0x100000, 0, 0, 0, 0, VMEM_INSTANTFIT, &a),
	                 -MICA_ENOMEM);
	assert_int_equal(vmem_xalloc(&vm, 2 * Q, 0, 0, 0, 0x10000 + 255 * Q, 0, VMEM_BESTFIT, &a),
	                 -MICA_ENOMEM);
	assert_int_equal(vmem_alloc(&vm, 257 * Q, VMEM_BESTFIT, &a), -MICA_ENOMEM);
	assert_unchanged(&vm, &snap_before);
}

static void test_alloc_fill_free_coalesce(void **state)
{
	struct vmem vm;
	struct vmem_stats st;
	vmem_addr_t a[64], b;

	(void)state;
	plenty_of_tags();
	make_arena(&vm, Q, 0);
	assert_int_equal(vmem_add(&vm, 0x10000, 64 * Q), 0);
	for (int i = 0; i < 64; i++) {
		a[i] = must_alloc(&vm, Q, i % 2 ? VMEM_BESTFIT : VMEM_INSTANTFIT);
		for (int j = 0; j < i; j++)
			assert_true(a[j] != a[i]);
	}
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.inuse, 64 * Q);
	assert_int_equal(st.free, 0);
	assert_int_equal(st.largest_free, 0);
	assert_true(vmem_starved(&vm, 10));
	assert_int_equal(vmem_alloc(&vm, Q, VMEM_INSTANTFIT, &b), -MICA_ENOMEM);

	/* Free in an order that exercises merge with the left, the right and both. */
	for (int i = 0; i < 64; i += 4)
		assert_int_equal(vmem_free(&vm, a[i], Q), 0);
	for (int i = 2; i < 64; i += 4)
		assert_int_equal(vmem_free(&vm, a[i], Q), 0);
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.nfree, 32);
	for (int i = 1; i < 64; i += 2)
		assert_int_equal(vmem_xfree(&vm, a[i], Q), 0);
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.nfree, 1);
	assert_int_equal(st.nbusy, 0);
	assert_int_equal(st.nsegments, 1);
	assert_int_equal(st.largest_free, 64 * Q);
	assert_false(vmem_starved(&vm, 100));
	assert_int_equal(vmem_destroy(&vm), 0);
	assert_int_equal(pool.nfree, pool.ntotal);
}

static void test_free_detects_mistakes(void **state)
{
	struct vmem vm;
	vmem_addr_t a, b, c;

	(void)state;
	plenty_of_tags();
	make_arena(&vm, Q, 2 * Q);
	assert_int_equal(vmem_add(&vm, 0x10000, 64 * Q), 0);
	a = must_alloc(&vm, 4 * Q, VMEM_BESTFIT);
	b = must_alloc(&vm, Q, VMEM_BESTFIT); /* through the quantum cache */
	c = must_xalloc(&vm, 2 * Q, 0, 0, 0, 0, 0, VMEM_BESTFIT);
	take(&vm, &snap_before);
	assert_int_equal(vmem_free(&vm, a + Q, 3 * Q), -MICA_ENOENT); /* inside */
	assert_int_equal(vmem_free(&vm, a, 3 * Q), -MICA_EINVAL);     /* wrong size */
	assert_int_equal(vmem_free(&vm, a, 8 * Q), -MICA_EINVAL);
	assert_int_equal(vmem_free(&vm, a, 0), -MICA_EINVAL);
	assert_int_equal(vmem_free(&vm, a, 4 * Q + 1), -MICA_EINVAL);
	assert_int_equal(vmem_free(&vm, 0x90000, Q), -MICA_ENOENT);           /* never ours */
	assert_int_equal(vmem_xfree(&vm, 0x10000 + 63 * Q, Q), -MICA_ENOENT); /* free space */
	assert_unchanged(&vm, &snap_before);

	/* double frees, through the cache and around it */
	assert_int_equal(vmem_free(&vm, b, Q), 0);
	take(&vm, &snap_before);
	assert_int_equal(vmem_free(&vm, b, Q), -MICA_ENOENT);
	assert_int_equal(vmem_xfree(&vm, b, Q), -MICA_ENOENT);
	assert_unchanged(&vm, &snap_before);
	assert_int_equal(vmem_free(&vm, c, 2 * Q), 0); /* cached too: 2 quanta */
	assert_int_equal(vmem_free(&vm, c, 2 * Q), -MICA_ENOENT);
	assert_int_equal(vmem_xfree(&vm, a, 4 * Q), 0);
	take(&vm, &snap_before);
	assert_int_equal(vmem_xfree(&vm, a, 4 * Q), -MICA_ENOENT);
	assert_unchanged(&vm, &snap_before);
	assert_int_equal(vmem_destroy(&vm), 0);
}

/* Free segments of chosen sizes at known places, separated by allocated quanta. */
static void carve_holes(struct vmem *vm, const unsigned *sizes, unsigned n, vmem_addr_t *holes)
{
	vmem_addr_t cur = 0x10000;
	vmem_addr_t a;

	for (unsigned i = 0; i < n; i++) {
		holes[i] = cur;
		cur += sizes[i] * Q;
		a = must_xalloc(vm, Q, 0, 0, 0, cur, cur + Q, VMEM_BESTFIT);
		assert_int_equal(a, cur);
		cur += Q;
	}
	/* fill whatever is left after the last separator */
	while (vmem_xalloc(vm, Q, 0, 0, 0, cur, 0, VMEM_BESTFIT, &a) == 0)
		;
}

static void test_instantfit_and_bestfit_choices(void **state)
{
	static const unsigned sizes[] = {12, 3, 9, 5, 10};
	struct vmem vm;
	vmem_addr_t holes[5], a;

	(void)state;
	plenty_of_tags();
	make_arena(&vm, Q, 0);
	assert_int_equal(vmem_add(&vm, 0x10000, 64 * Q), 0);
	/* Allocate everything, then free the holes: the arena keeps them apart. */
	carve_holes(&vm, sizes, 5, holes);
	for (unsigned i = 0; i < 5; i++) {
		vmem_addr_t h = must_xalloc(&vm, sizes[i] * Q, 0, 0, 0, holes[i],
		                            holes[i] + sizes[i] * Q, VMEM_BESTFIT);

		assert_int_equal(h, holes[i]);
	}
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(vmem_free(&vm, holes[i], sizes[i] * Q), 0);

	/* Best fit: 9 quanta go into the 9-hole, not the first of class 3 (12, 9, 10). */
	a = must_alloc(&vm, 9 * Q, VMEM_BESTFIT);
	assert_int_equal(a, holes[2]);
	assert_int_equal(vmem_free(&vm, a, 9 * Q), 0);
	a = must_alloc(&vm, 10 * Q, VMEM_BESTFIT);
	assert_int_equal(a, holes[4]);
	assert_int_equal(vmem_free(&vm, a, 10 * Q), 0);
	a = must_alloc(&vm, 3 * Q, VMEM_BESTFIT);
	assert_int_equal(a, holes[1]);
	assert_int_equal(vmem_free(&vm, a, 3 * Q), 0);

	/* Instant fit for 3 quanta looks first in class 2 (4..7 quanta, all big enough):
	 * the 5-hole, not the exact 3-hole of class 1. */
	a = must_alloc(&vm, 3 * Q, VMEM_INSTANTFIT);
	assert_int_equal(a, holes[3]);
	assert_int_equal(vmem_free(&vm, a, 3 * Q), 0);
	/* 4 quanta: a power of two, so class 2 directly. */
	a = must_alloc(&vm, 4 * Q, VMEM_INSTANTFIT);
	assert_int_equal(a, holes[3]);
	assert_int_equal(vmem_free(&vm, a, 4 * Q), 0);
	/* 11 quanta: classes >= 4 are empty; instant fit falls back to scanning class 3
	 * and finds the 12-hole rather than failing. */
	a = must_alloc(&vm, 11 * Q, VMEM_INSTANTFIT);
	assert_int_equal(a, holes[0]);
	assert_int_equal(vmem_free(&vm, a, 11 * Q), 0);
	assert_int_equal(vmem_alloc(&vm, 13 * Q, VMEM_INSTANTFIT, &a), -MICA_ENOMEM);
	assert_int_equal(vmem_alloc(&vm, 13 * Q, VMEM_BESTFIT, &a), -MICA_ENOMEM);
}

static void test_xalloc_constraints(void **state)
{
	struct vmem vm;
	vmem_addr_t a, b;

	(void)state;
	plenty_of_tags();
	make_arena(&vm, Q, 0);
	assert_int_equal(vmem_add(&vm, 0x10000 + Q, 1024 * Q), 0); /* start misaligned to 32 */

	a = must_xalloc(&vm, Q, 32 * Q, 0, 0, 0, 0, VMEM_INSTANTFIT);
	assert_int_equal(a % (32 * Q), 0);
	b = must_xalloc(&vm, 2 * Q, 8 * Q, 3 * Q, 0, 0, 0, VMEM_BESTFIT);
	assert_int_equal(b % (8 * Q), 3 * Q);
	assert_int_equal(vmem_free(&vm, b, 2 * Q), 0);
	assert_int_equal(vmem_free(&vm, a, Q), 0);

	/* nocross: 6 quanta may not straddle a 8-quantum boundary; the first candidate
	 * at the span start (1 quantum in) would. */
	a = must_xalloc(&vm, 6 * Q, 0, 0, 8 * Q, 0, 0, VMEM_INSTANTFIT);
	assert_int_equal(a / (8 * Q), (a + 6 * Q - 1) / (8 * Q));
	assert_int_equal(a, 0x10000 + Q);
	b = must_xalloc(&vm, 6 * Q, 0, 0, 8 * Q, 0, 0, VMEM_INSTANTFIT);
	assert_int_equal(b, 0x10000 + 8 * Q); /* 1 quantum left before the boundary */
	assert_int_equal(vmem_free(&vm, a, 6 * Q), 0);
	assert_int_equal(vmem_free(&vm, b, 6 * Q), 0);
	/* nocross with phase: phase + size > nocross can never fit */
	assert_int_equal(vmem_xalloc(&vm, 4 * Q, 8 * Q, 6 * Q, 8 * Q, 0, 0, VMEM_BESTFIT, &a),
	                 -MICA_ENOMEM);
	/* ... but align bigger than nocross with a small phase does */
	a = must_xalloc(&vm, 4 * Q, 64 * Q, 2 * Q, 8 * Q, 0, 0, VMEM_BESTFIT);
	assert_int_equal(a % (64 * Q), 2 * Q);
	assert_int_equal(vmem_free(&vm, a, 4 * Q), 0);

	/* min/max: exact window, window too small, window at the very end */
	a = must_xalloc(&vm, 4 * Q, 0, 0, 0, 0x10000 + 100 * Q, 0x10000 + 104 * Q, VMEM_BESTFIT);
	assert_int_equal(a, 0x10000 + 100 * Q);
	assert_int_equal(vmem_xalloc(&vm, 4 * Q, 0, 0, 0, 0x10000 + 200 * Q, 0x10000 + 203 * Q,
	                             VMEM_BESTFIT, &b),
	                 -MICA_ENOMEM);
	b = must_xalloc(&vm, 4 * Q, 0, 0, 0, 0x10000 + 1021 * Q, 0, VMEM_INSTANTFIT);
	assert_int_equal(b, 0x10000 + 1021 * Q);
	assert_int_equal(vmem_free(&vm, a, 4 * Q), 0);
	assert_int_equal(vmem_free(&vm, b, 4 * Q), 0);
	/* unaligned min/max are fine: they only bound */
	a = must_xalloc(&vm, Q, 0, 0, 0, 0x10000 + 5 * Q + 3, 0x10000 + 7 * Q + 1, VMEM_BESTFIT);
	assert_int_equal(a, 0x10000 + 6 * Q);
	assert_int_equal(vmem_free(&vm, a, Q), 0);
	/* alignment larger than the span */
	assert_int_equal(vmem_xalloc(&vm, Q, 4096 * Q, 0, 0, 0, 0, VMEM_BESTFIT, &a), -MICA_ENOMEM);
}

static void test_top_of_address_space(void **state)
{
	struct vmem vm;
	vmem_addr_t top = 0 - (vmem_addr_t)4096, a;

	(void)state;
	plenty_of_tags();
	make_arena(&vm, 4096, 0);
	assert_int_equal(vmem_add(&vm, top - 16 * 4096, 16 * 4096), 0);
	a = must_xalloc(&vm, 4096, 0x100000, 0xfe000, 0, 0, 0, VMEM_BESTFIT);
	assert_int_equal(a, top - 4096);
	assert_int_equal(vmem_xalloc(&vm, 8192, 0, 0, 0, top - 4096, 0, VMEM_BESTFIT, &a),
	                 -MICA_ENOMEM);
	assert_int_equal(vmem_xalloc(&vm, 4096, 1ull << 63, 0, 0, top - 8192, 0, VMEM_BESTFIT, &a),
	                 -MICA_ENOMEM);
	assert_int_equal(vmem_xalloc(&vm, 4096, 0, 0, 1ull << 63, 0, 0, VMEM_BESTFIT, &a), 0);
	/* from top - 2 pages, the only pair not crossing an 8 KiB line holds top - 4096 */
	assert_int_equal(
	    vmem_xalloc(&vm, 2 * 4096, 0, 0, 2 * 4096, top - 2 * 4096, 0, VMEM_BESTFIT, &a),
	    -MICA_ENOMEM);
}

/* ---- quantum caches ---- */

static void test_quantum_cache(void **state)
{
	struct vmem vm;
	struct vmem_stats st;
	vmem_addr_t a, b, big, all[64];

	(void)state;
	plenty_of_tags();
	make_arena(&vm, Q, 4 * Q);
	assert_int_equal(vmem_add(&vm, 0x10000, 64 * Q), 0);

	a = must_alloc(&vm, Q, VMEM_INSTANTFIT); /* miss: refills half a stack */
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.qcache_misses, 1);
	assert_int_equal(st.inuse, Q);
	assert_int_equal(st.cached, (VMEM_QCACHE_DEPTH / 2 - 1) * Q);
	b = must_alloc(&vm, Q, VMEM_BESTFIT); /* hit */
	assert_int_equal(vmem_free(&vm, b, Q), 0);
	assert_int_equal(must_alloc(&vm, Q, VMEM_INSTANTFIT), b); /* LIFO: warm segment */
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.qcache_hits, 2);
	assert_int_equal(vmem_free(&vm, b, Q), 0);
	assert_int_equal(vmem_free(&vm, a, Q), 0);
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.inuse, 0);
	assert_true(st.cached > 0);
	assert_false(vmem_starved(&vm, 100)); /* cached space counts as available */

	vmem_drain(&vm);
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.cached, 0);
	assert_int_equal(st.nsegments, 1);

	/* Fill the arena entirely through the cache, free everything into the cache
	 * (more than a stack holds: the overflow is flushed), then ask for all of it at
	 * once: the failing search drains the caches and succeeds. */
	for (int i = 0; i < 64; i++)
		all[i] = must_alloc(&vm, Q, VMEM_INSTANTFIT);
	for (int i = 0; i < 64; i++)
		assert_int_equal(vmem_free(&vm, all[i], Q), 0);
	vmem_get_stats(&vm, &st);
	assert_true(st.cached <= VMEM_QCACHE_DEPTH * Q);
	assert_true(st.cached > 0);
	big = must_alloc(&vm, 64 * Q, VMEM_INSTANTFIT);
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.cached, 0);
	assert_true(st.ndrains >= 1);
	assert_int_equal(vmem_free(&vm, big, 64 * Q), 0); /* above qcache_max: straight back */

	/* xfree of a cacheable size bypasses the cache */
	a = must_alloc(&vm, 2 * Q, VMEM_INSTANTFIT);
	vmem_drain(&vm);
	assert_int_equal(vmem_xfree(&vm, a, 2 * Q), 0);
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.cached, 0);
	assert_int_equal(st.nsegments, 1);
	assert_int_equal(vmem_destroy(&vm), 0);
}

/* ---- import and release ---- */

static int import_calls, release_calls;
static int (*import_hook)(vmem_size_t, vmem_addr_t *, vmem_size_t *);
static struct vmem *import_parent;

static int counting_import(void *source, vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep)
{
	import_calls++;
	if (import_hook != NULL)
		return import_hook(size, addrp, sizep);
	return vmem_import_from_arena(source, size, addrp, sizep);
}

static void counting_release(void *source, vmem_addr_t addr, vmem_size_t size)
{
	release_calls++;
	vmem_release_to_arena(source, addr, size);
}

static void make_child(struct vmem *parent, struct vmem *child, vmem_size_t import_min,
                       vmem_size_t qcache_max)
{
	struct vmem_config cfg = {.name = "child",
	                          .quantum = Q,
	                          .qcache_max = qcache_max,
	                          .import = counting_import,
	                          .release = counting_release,
	                          .source = parent,
	                          .import_min = import_min,
	                          .pool = &pool};

	make_arena(parent, Q, 0);
	assert_int_equal(vmem_add(parent, 0x100000, 256 * Q), 0);
	import_calls = release_calls = 0;
	import_hook = NULL;
	import_parent = parent;
	assert_int_equal(vmem_init(child, &cfg), 0);
}

static void test_import_and_release(void **state)
{
	struct vmem parent, child;
	struct vmem_stats ps, cs;
	vmem_addr_t a, b, c;

	(void)state;
	plenty_of_tags();
	make_child(&parent, &child, 32 * Q, 0);

	a = must_alloc(&child, 4 * Q, VMEM_INSTANTFIT);
	assert_int_equal(import_calls, 1);
	b = must_alloc(&child, 8 * Q, VMEM_BESTFIT); /* fits in the 32-quantum import */
	assert_int_equal(import_calls, 1);
	c = must_alloc(&child, 40 * Q, VMEM_BESTFIT); /* bigger than import_min */
	assert_int_equal(import_calls, 2);
	vmem_get_stats(&child, &cs);
	vmem_get_stats(&parent, &ps);
	assert_int_equal(cs.total, 72 * Q);
	assert_int_equal(cs.nimported, 2);
	assert_int_equal(ps.inuse, 72 * Q);

	/* A span goes back as soon as it is wholly free, and only then. */
	assert_int_equal(vmem_free(&child, c, 40 * Q), 0);
	assert_int_equal(release_calls, 1);
	assert_int_equal(vmem_free(&child, a, 4 * Q), 0);
	assert_int_equal(release_calls, 1);
	assert_int_equal(vmem_free(&child, b, 8 * Q), 0);
	assert_int_equal(release_calls, 2);
	vmem_get_stats(&child, &cs);
	vmem_get_stats(&parent, &ps);
	assert_int_equal(cs.total, 0);
	assert_int_equal(cs.nspans, 0);
	assert_int_equal(ps.inuse, 0);
	assert_false(vmem_starved(&child, 50)); /* empty arena: nothing to be starved of */

	/* Alignment: the import is big enough for an aligned placement. */
	a = must_xalloc(&child, 4 * Q, 64 * Q, 0, 0, 0, 0, VMEM_BESTFIT);
	assert_int_equal(a % (64 * Q), 0);
	assert_int_equal(vmem_xfree(&child, a, 4 * Q), 0);

	/* A constraint the import cannot meet: the span goes straight back. */
	import_calls = release_calls = 0;
	assert_int_equal(vmem_xalloc(&child, 4 * Q, 0, 0, 0, 0, 0x1000, VMEM_BESTFIT, &a),
	                 -MICA_ENOMEM);
	assert_int_equal(import_calls, 1);
	assert_int_equal(release_calls, 1);
	vmem_get_stats(&parent, &ps);
	assert_int_equal(ps.inuse, 0);

	/* The parent runs dry: the child's request fails cleanly. */
	assert_int_equal(vmem_alloc(&child, 300 * Q, VMEM_BESTFIT, &a), -MICA_ENOMEM);
	vmem_get_stats(&child, &cs);
	assert_int_equal(cs.total, 0);
	assert_int_equal(vmem_destroy(&child), 0);
	assert_int_equal(vmem_destroy(&parent), 0);
	assert_int_equal(pool.nfree, pool.ntotal);
}

static int failing_import(vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep)
{
	return -MICA_EAGAIN;
}

/* The hooks below break the import contract with made-up ranges; the arena must hand
 * each back through release and change nothing. */
static int short_import(vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep)
{
	*addrp = 0x500000;
	*sizep = size - Q;
	return 0;
}

static int misaligned_import(vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep)
{
	*addrp = 0x500000 + Q / 2;
	*sizep = size;
	return 0;
}

static int wrapping_import(vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep)
{
	*addrp = 0 - size;
	*sizep = size;
	return 0;
}

static int overlapping_import(vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep)
{
	*addrp = 0x300000 - Q; /* overlaps the span the arena already has */
	*sizep = size;
	return 0;
}

static void fake_release(void *source, vmem_addr_t addr, vmem_size_t size)
{
	release_calls++;
}

static void test_import_failures_leave_no_trace(void **state)
{
	static int (*const bad[])(vmem_size_t, vmem_addr_t *, vmem_size_t *) = {
	    short_import, misaligned_import, wrapping_import, overlapping_import};
	struct vmem vm;
	struct vmem_config cfg = {.name = "child",
	                          .quantum = Q,
	                          .qcache_max = 2 * Q,
	                          .import = counting_import,
	                          .release = fake_release,
	                          .import_min = 16 * Q,
	                          .pool = &pool};
	vmem_addr_t a;

	(void)state;
	plenty_of_tags();
	assert_int_equal(vmem_init(&vm, &cfg), 0);
	assert_int_equal(vmem_add(&vm, 0x300000, 4 * Q), 0);
	a = must_alloc(&vm, 2 * Q, VMEM_INSTANTFIT);
	vmem_drain(&vm); /* a failing allocation drains the caches: start without any */
	take(&vm, &snap_before);

	import_calls = release_calls = 0;
	import_hook = failing_import;
	assert_int_equal(vmem_alloc(&vm, 8 * Q, VMEM_INSTANTFIT, &a), -MICA_EAGAIN);
	assert_int_equal(release_calls, 0);
	assert_unchanged(&vm, &snap_before);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		import_hook = bad[i];
		release_calls = 0;
		assert_int_equal(vmem_alloc(&vm, 64 * Q, VMEM_INSTANTFIT, &a), -MICA_EINVAL);
		assert_int_equal(release_calls, 1);
		assert_unchanged(&vm, &snap_before);
	}
	assert_int_equal(import_calls, 5);
	import_hook = NULL;
}

/* ---- boundary tags: exhaustion, refill, self-hosting ---- */

static void test_tag_exhaustion_is_clean(void **state)
{
	static struct vmem_btag few[10], more[8];
	struct vmem vm;
	vmem_addr_t a, got[32];
	int n = 0, rc;

	(void)state;
	vmem_btag_pool_init(&pool, NULL, NULL, 1);
	assert_int_equal(vmem_btag_pool_add(&pool, few, sizeof(few)), 10);
	make_arena(&vm, Q, 0);
	assert_int_equal(vmem_add(&vm, 0x10000, 64 * Q), 0); /* 2 tags */
	/* Each allocation in the middle of free space takes one new tag (the tail). */
	for (;;) {
		take(&vm, &snap_before);
		rc = vmem_xalloc(&vm, Q, 0, 0, 0, 0, 0, VMEM_INSTANTFIT, &a);
		if (rc != 0)
			break;
		got[n++] = a;
	}
	assert_int_equal(rc, -MICA_ENOMEM);
	assert_unchanged(&vm, &snap_before);
	assert_true(n >= 6);
	assert_true(pool.nfree < 2);
	/* Other operations that need tags fail the same way; frees never need them. */
	assert_int_equal(vmem_add(&vm, 0x90000, 4 * Q), -MICA_ENOMEM);
	assert_int_equal(vmem_alloc(&vm, Q, VMEM_BESTFIT, &a), -MICA_ENOMEM);
	assert_unchanged(&vm, &snap_before);
	assert_int_equal(vmem_free(&vm, got[0], Q), 0);
	assert_int_equal(vmem_free(&vm, got[2], Q), 0);
	/* More tags: it works again. */
	assert_int_equal(vmem_btag_pool_add(&pool, more, sizeof(more)), 8);
	a = must_alloc(&vm, 2 * Q, VMEM_BESTFIT);
	assert_null(vmem_btag_pool_check(&pool));
	/* bytes that hold no whole tag, or no memory at all */
	assert_int_equal(vmem_btag_pool_add(&pool, more, sizeof(more[0]) - 1), 0);
	assert_int_equal(vmem_btag_pool_add(&pool, NULL, 4096), 0);
}

static struct vmem_btag refill_store[256];
static size_t refill_used;

static int refill_from_store(void *arg, struct vmem_btag_pool *p)
{
	size_t chunk = *(size_t *)arg;

	if (refill_used + chunk > 256)
		return -MICA_ENOMEM;
	vmem_btag_pool_add(p, &refill_store[refill_used], chunk * sizeof(struct vmem_btag));
	refill_used += chunk;
	return 0;
}

static void test_tag_refill_hook(void **state)
{
	static struct vmem_btag boot[4];
	size_t chunk = 8;
	struct vmem vm;
	vmem_addr_t a;
	int n = 0;

	(void)state;
	refill_used = 0;
	vmem_btag_pool_init(&pool, refill_from_store, &chunk, 4);
	vmem_btag_pool_add(&pool, boot, sizeof(boot));
	make_arena(&vm, Q, 0);
	assert_int_equal(vmem_add(&vm, 0x10000, 1024 * Q), 0);
	while (vmem_xalloc(&vm, Q, 2 * Q, 0, 0, 0, 0, VMEM_BESTFIT, &a) == 0)
		n++;
	/* Each aligned allocation leaves a hole before it: two tags apiece. The hook ran
	 * dry long before the 512 possible allocations. */
	assert_true(pool.refill_calls > 10);
	assert_true(n > 100 && n < 512);
	assert_int_equal(refill_used, 256);
	assert_null(vmem_check(&vm));
}

/* The self-hosting case: the arena's tags live in pages that the same arena hands
 * out, as the kernel arena does once its boot tags are gone. */
static _Alignas(4096) unsigned char page_memory[64 * 4096];

static int refill_from_own_arena(void *arg, struct vmem_btag_pool *p)
{
	struct vmem *vm = arg;
	vmem_addr_t page;
	int err = vmem_alloc(vm, 4096, VMEM_INSTANTFIT, &page);

	if (err != 0)
		return err;
	vmem_btag_pool_add(p, (void *)(uintptr_t)page, 4096);
	return 0;
}

static void test_tags_from_the_arena_itself(void **state)
{
	static struct vmem_btag boot[6];
	struct vmem vm;
	struct vmem_stats st;
	vmem_addr_t base = (vmem_addr_t)(uintptr_t)page_memory, a;
	unsigned n = 0;

	(void)state;
	vmem_btag_pool_init(&pool, refill_from_own_arena, &vm, 4);
	vmem_btag_pool_add(&pool, boot, sizeof(boot));
	make_arena(&vm, 4096, 2 * 4096);
	assert_int_equal(vmem_add(&vm, base, sizeof(page_memory)), 0);
	/* Pages that keep every tag busy: alternate 1-page holes. */
	while (vmem_xalloc(&vm, 4096, 8192, 0, 0, 0, 0, VMEM_INSTANTFIT, &a) == 0) {
		memset((void *)(uintptr_t)a, 0xa5, 4096); /* ASan: it is real, unused memory */
		n++;
	}
	vmem_get_stats(&vm, &st);
	assert_true(pool.refill_calls >= 1);
	assert_true(n > 20);
	assert_true(st.inuse >= (vmem_size_t)n * 4096);
	assert_null(vmem_check(&vm));
	assert_null(vmem_btag_pool_check(&pool));
}

/* ---- statistics, walk, destroy ---- */

static void test_stats_and_starved(void **state)
{
	struct vmem vm;
	struct vmem_stats st;
	vmem_addr_t a, b;

	(void)state;
	plenty_of_tags();
	make_arena(&vm, Q, 0);
	assert_false(vmem_starved(&vm, 10));
	assert_int_equal(vmem_add(&vm, 0x10000, 100 * Q), 0);
	a = must_alloc(&vm, 90 * Q, VMEM_BESTFIT);
	assert_false(vmem_starved(&vm, 10)); /* exactly 10% left */
	assert_true(vmem_starved(&vm, 11));
	b = must_alloc(&vm, Q, VMEM_BESTFIT);
	assert_true(vmem_starved(&vm, 10));
	assert_false(vmem_starved(&vm, 0));
	vmem_get_stats(&vm, &st);
	assert_int_equal(st.total, 100 * Q);
	assert_int_equal(st.inuse, 91 * Q);
	assert_int_equal(st.free, 9 * Q);
	assert_int_equal(st.largest_free, 9 * Q);
	assert_int_equal(st.nspans, 1);
	assert_int_equal(st.nsegments, 3);
	assert_int_equal(st.nbusy, 2);
	assert_int_equal(vmem_destroy(&vm), -MICA_EBUSY);
	assert_int_equal(vmem_free(&vm, a, 90 * Q), 0);
	assert_int_equal(vmem_destroy(&vm), -MICA_EBUSY);
	assert_int_equal(vmem_free(&vm, b, Q), 0);
	assert_int_equal(vmem_destroy(&vm), 0);
	assert_int_equal(pool.nfree, pool.ntotal);
}

static void test_walk_reports_kinds(void **state)
{
	struct vmem vm;
	struct snap *s = malloc(sizeof(*s));
	vmem_addr_t a, b;

	(void)state;
	assert_non_null(s);
	plenty_of_tags();
	make_arena(&vm, Q, Q);
	assert_int_equal(vmem_add(&vm, 0x10000, 4 * Q), 0);
	a = must_xalloc(&vm, Q, 0, 0, 0, 0x10000 + Q, 0x10000 + 2 * Q, VMEM_BESTFIT);
	b = must_xalloc(&vm, Q, 0, 0, 0, 0x10000 + 3 * Q, 0, VMEM_BESTFIT);
	assert_int_equal(vmem_free(&vm, b, Q), 0); /* parked in the cache */
	take(&vm, s);
	assert_int_equal(s->n, 5);
	assert_int_equal(s->seg[0].kind, VMEM_WALK_SPAN);
	assert_int_equal(s->seg[1].kind, VMEM_WALK_FREE);
	assert_int_equal(s->seg[2].kind, VMEM_WALK_BUSY);
	assert_int_equal(s->seg[2].start, a);
	assert_int_equal(s->seg[3].kind, VMEM_WALK_FREE);
	assert_int_equal(s->seg[4].kind, VMEM_WALK_CACHED);
	assert_int_equal(s->seg[4].start, b);
	free(s);
}

/* The checker must not be vacuous: damage, expect a complaint, repair. */
static void test_check_detects_damage(void **state)
{
	struct vmem vm;
	struct vmem_btag *seg;
	vmem_addr_t a;

	(void)state;
	plenty_of_tags();
	make_arena(&vm, Q, 2 * Q);
	assert_int_equal(vmem_add(&vm, 0x10000, 64 * Q), 0);
	assert_int_equal(vmem_add(&vm, 0x20000, 64 * Q), 0);
	a = must_xalloc(&vm, 4 * Q, 0, 0, 0, 0x10000 + 8 * Q, 0, VMEM_BESTFIT);
	must_alloc(&vm, Q, VMEM_BESTFIT);
	assert_null(vmem_check(&vm));

	seg = vm.seglist.seg_next->seg_next; /* first segment of the first span */
	seg->size += Q;
	assert_non_null(vmem_check(&vm));
	seg->size -= Q;
	vm.nfree++;
	assert_non_null(vmem_check(&vm));
	vm.nfree--;
	vm.size_busy += Q;
	assert_non_null(vmem_check(&vm));
	vm.size_busy -= Q;
	vm.freelist_nonempty ^= 1ull << 40;
	assert_non_null(vmem_check(&vm));
	vm.freelist_nonempty ^= 1ull << 40;
	seg->seg_next->seg_prev = vm.seglist.seg_next;
	assert_non_null(vmem_check(&vm));
	seg->seg_next->seg_prev = seg;
	for (seg = vm.seglist.seg_next; seg->start != a || seg->type != 5; seg = seg->seg_next)
		;
	seg->type = 4; /* the allocated segment typed free */
	assert_non_null(vmem_check(&vm));
	seg->type = 5;
	vm.qcache[0].stack[vm.qcache[0].depth - 1]->cached = false;
	assert_non_null(vmem_check(&vm));
	vm.qcache[0].stack[vm.qcache[0].depth - 1]->cached = true;
	assert_null(vmem_check(&vm));
	assert_int_equal(vmem_free(&vm, a, 4 * Q), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_rejects_bad_config),
	    cmocka_unit_test(test_add_validates_and_keeps_spans_apart),
	    cmocka_unit_test(test_alloc_rejects_bad_requests),
	    cmocka_unit_test(test_alloc_fill_free_coalesce),
	    cmocka_unit_test(test_free_detects_mistakes),
	    cmocka_unit_test(test_instantfit_and_bestfit_choices),
	    cmocka_unit_test(test_xalloc_constraints),
	    cmocka_unit_test(test_top_of_address_space),
	    cmocka_unit_test(test_quantum_cache),
	    cmocka_unit_test(test_import_and_release),
	    cmocka_unit_test(test_import_failures_leave_no_trace),
	    cmocka_unit_test(test_tag_exhaustion_is_clean),
	    cmocka_unit_test(test_tag_refill_hook),
	    cmocka_unit_test(test_tags_from_the_arena_itself),
	    cmocka_unit_test(test_stats_and_starved),
	    cmocka_unit_test(test_walk_reports_kinds),
	    cmocka_unit_test(test_check_detects_damage),
	};

	return cmocka_run_group_tests_name("vmem", tests, NULL, NULL);
}
