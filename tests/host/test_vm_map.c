/* Unit tests for mm/vm_map: every operation, its edge cases and its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mica/errno.h"
#include "mica/param.h"
#include "mm/vm_map.h"
#include "tests/host/lib/vm_map_ref.h"

#define P     PAGE_SIZE
#define MIN   0x100000UL
#define NPG   256UL
#define MAX   (MIN + NPG * P)
#define RW    (VM_PROT_READ | VM_PROT_WRITE)
#define MB    (1UL << 20)
#define MAXPC 64

struct fx {
	struct vmref_env env;
	struct vm_map map;
	struct vmref_dump dump;
	size_t npieces;
	struct vm_map_entry pieces[MAXPC];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vm_map_ops ops;

	if (f == NULL)
		return -1;
	vmref_env_init(&f->env);
	ops = vmref_env_ops(&f->env);
	if (vm_map_init(&f->map, MIN, MAX, &ops) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int i;

	vm_map_clear(&f->map, NULL, NULL);
	assert_int_equal(f->env.live, 0);
	for (i = 0; i < VMREF_NOBJ; i++)
		assert_int_equal(f->env.refs[i], 0);
	vmref_dump_free(&f->dump);
	free(f);
	return 0;
}

static void record(void *arg, const struct vm_map_entry *piece)
{
	struct fx *f = arg;

	assert_true(f->npieces < MAXPC);
	f->pieces[f->npieces++] = *piece;
}

static struct vm_map_attr attr(unsigned prot)
{
	struct vm_map_attr a = {.prot = prot, .max_prot = VM_PROT_ALL};

	return a;
}

/* The map must hold exactly these [start, end) ranges, in order. */
static void expect_entries(struct fx *f, size_t n, const uintptr_t *ranges)
{
	const struct vm_map_entry *e = vm_map_first(&f->map);
	const char *why = NULL;
	size_t i;

	for (i = 0; i < n; i++, e = vm_map_next(&f->map, e)) {
		assert_non_null(e);
		assert_int_equal(e->start, ranges[2 * i]);
		assert_int_equal(e->end, ranges[2 * i + 1]);
	}
	assert_null(e);
	assert_int_equal(f->map.nentries, n);
	assert_int_equal(f->env.live, n);
	assert_int_equal(vm_map_check(&f->map, &why), 0);
}

static void map_at(struct fx *f, uintptr_t addr, size_t len, unsigned prot)
{
	struct vm_map_attr a = attr(prot);

	assert_int_equal(vm_map_insert(&f->map, addr, len, &a), 0);
}

static void snap(struct fx *f)
{
	vmref_dump_take(&f->dump, &f->map);
}

static void unchanged(struct fx *f)
{
	const char *why = NULL;

	assert_true(vmref_dump_equal(&f->dump, &f->map));
	assert_int_equal(vm_map_check(&f->map, &why), 0);
}

static void test_init_rejects_bad_bounds(void **state)
{
	struct fx *f = *state;
	struct vm_map m;
	struct vm_map_ops ops = vmref_env_ops(&f->env), bad = ops;

	assert_int_equal(vm_map_init(&m, MAX, MIN, &ops), -MICA_EINVAL);
	assert_int_equal(vm_map_init(&m, MIN, MIN, &ops), -MICA_EINVAL);
	assert_int_equal(vm_map_init(&m, MIN + 1, MAX, &ops), -MICA_EINVAL);
	assert_int_equal(vm_map_init(&m, MIN, MAX - 1, &ops), -MICA_EINVAL);
	assert_int_equal(vm_map_init(&m, MIN, MAX, NULL), -MICA_EINVAL);
	bad.alloc = NULL;
	assert_int_equal(vm_map_init(&m, MIN, MAX, &bad), -MICA_EINVAL);
	/* The largest map there can be: page 0 to the last page boundary. */
	assert_int_equal(vm_map_init(&m, 0, UINTPTR_MAX & ~(uintptr_t)PAGE_MASK, &ops), 0);
	assert_int_equal(vm_map_check(&m, NULL), 0);
}

static void test_empty_map_findspace(void **state)
{
	struct fx *f = *state;
	uintptr_t a;

	assert_int_equal(vm_map_findspace(&f->map, 0, P, 0, 0, &a), 0);
	assert_int_equal(a, MIN);
	assert_int_equal(vm_map_findspace(&f->map, 0, P, 0, VM_PLACE_TOPDOWN, &a), 0);
	assert_int_equal(a, MAX - P);
	assert_int_equal(vm_map_findspace(&f->map, 0, NPG * P, 0, 0, &a), 0);
	assert_int_equal(a, MIN);
	assert_int_equal(vm_map_findspace(&f->map, 0, NPG * P, 0, VM_PLACE_TOPDOWN, &a), 0);
	assert_int_equal(a, MIN);
	assert_int_equal(vm_map_findspace(&f->map, 0, (NPG + 1) * P, 0, 0, &a), -MICA_ENOMEM);
	assert_int_equal(vm_map_findspace(&f->map, 0, (NPG + 1) * P, 0, VM_PLACE_TOPDOWN, &a),
	                 -MICA_ENOMEM);
}

static void test_first_and_last_page(void **state)
{
	struct fx *f = *state;
	struct vm_map_entry *e;
	uintptr_t a;
	const uintptr_t want[] = {MIN, MIN + P, MAX - P, MAX};

	map_at(f, MIN, P, RW);
	map_at(f, MAX - P, P, RW);
	expect_entries(f, 2, want);
	assert_true(vm_map_lookup(&f->map, MIN, &e));
	assert_int_equal(e->start, MIN);
	assert_true(vm_map_lookup(&f->map, MAX - 1, &e));
	assert_int_equal(e->start, MAX - P);
	assert_false(vm_map_lookup(&f->map, MIN - 1, &e));
	assert_null(e);
	assert_false(vm_map_lookup(&f->map, MAX, &e));
	assert_int_equal(e->start, MAX - P);
	/* Everything between is still one gap, found from either side. */
	assert_int_equal(vm_map_findspace(&f->map, 0, (NPG - 2) * P, 0, 0, &a), 0);
	assert_int_equal(a, MIN + P);
	assert_int_equal(vm_map_findspace(&f->map, 0, (NPG - 2) * P, 0, VM_PLACE_TOPDOWN, &a), 0);
	assert_int_equal(a, MIN + P);
	assert_int_equal(vm_map_findspace(&f->map, 0, (NPG - 1) * P, 0, 0, &a), -MICA_ENOMEM);
	assert_int_equal(vm_map_remove(&f->map, MIN, NPG * P, NULL, NULL), 0);
	expect_entries(f, 0, NULL);
}

static void test_argument_validation(void **state)
{
	struct fx *f = *state;
	struct vm_map_attr a = attr(RW);
	const uintptr_t top = UINTPTR_MAX & ~(uintptr_t)PAGE_MASK;
	uintptr_t out = 0x1234;

	map_at(f, MIN + 4 * P, 4 * P, RW);
	snap(f);
	/* zero length */
	assert_int_equal(vm_map_enter(&f->map, 0, 0, 0, 0, &a, NULL, NULL, &out), -MICA_EINVAL);
	assert_int_equal(vm_map_remove(&f->map, MIN, 0, NULL, NULL), -MICA_EINVAL);
	assert_int_equal(vm_map_protect(&f->map, MIN, 0, RW), -MICA_EINVAL);
	assert_int_equal(vm_map_wire(&f->map, MIN, 0), -MICA_EINVAL);
	assert_int_equal(vm_map_unwire(&f->map, MIN, 0), -MICA_EINVAL);
	assert_int_equal(vm_map_findspace(&f->map, 0, 0, 0, 0, &out), -MICA_EINVAL);
	/* unaligned address or length */
	assert_int_equal(vm_map_insert(&f->map, MIN + 1, P, &a), -MICA_EINVAL);
	assert_int_equal(vm_map_insert(&f->map, MIN, P + 1, &a), -MICA_EINVAL);
	assert_int_equal(vm_map_remove(&f->map, MIN + 4 * P + 8, P, NULL, NULL), -MICA_EINVAL);
	assert_int_equal(vm_map_protect(&f->map, MIN + 4 * P, 100, RW), -MICA_EINVAL);
	assert_int_equal(vm_map_wire(&f->map, MIN + 4 * P + 1, P), -MICA_EINVAL);
	/* addr + len wraps */
	assert_int_equal(vm_map_insert(&f->map, top, P, &a), -MICA_EOVERFLOW);
	assert_int_equal(vm_map_remove(&f->map, MIN, top, NULL, NULL), -MICA_EOVERFLOW);
	assert_int_equal(vm_map_protect(&f->map, top - P, 2 * P, RW), -MICA_EOVERFLOW);
	assert_int_equal(vm_map_wire(&f->map, MIN + 4 * P, top), -MICA_EOVERFLOW);
	assert_int_equal(vm_map_unwire(&f->map, MIN + 4 * P, top), -MICA_EOVERFLOW);
	assert_int_equal(vm_map_findspace(&f->map, top, P, 0, VM_PLACE_FIXED, &out),
	                 -MICA_EOVERFLOW);
	/* outside the map */
	assert_int_equal(vm_map_insert(&f->map, MIN - P, P, &a), -MICA_EFAULT);
	assert_int_equal(vm_map_insert(&f->map, MAX - P, 2 * P, &a), -MICA_EFAULT);
	assert_int_equal(vm_map_remove(&f->map, MAX, P, NULL, NULL), -MICA_EFAULT);
	assert_int_equal(vm_map_protect(&f->map, MIN - P, 6 * P, RW), -MICA_EFAULT);
	assert_int_equal(vm_map_wire(&f->map, 0, P), -MICA_EFAULT);
	/* unknown or contradictory bits */
	assert_int_equal(vm_map_enter(&f->map, 0, P, 0, 0x8, &a, NULL, NULL, &out), -MICA_EINVAL);
	assert_int_equal(vm_map_enter(&f->map, MIN, P, 0, VM_PLACE_FIXED | VM_PLACE_NOREPLACE, &a,
	                              NULL, NULL, &out),
	                 -MICA_EINVAL);
	assert_int_equal(vm_map_enter(&f->map, MIN, P, 0, VM_PLACE_FIXED | VM_PLACE_TOPDOWN, &a,
	                              NULL, NULL, &out),
	                 -MICA_EINVAL);
	assert_int_equal(vm_map_protect(&f->map, MIN + 4 * P, P, 8), -MICA_EINVAL);
	a.flags = 0x100;
	assert_int_equal(vm_map_insert(&f->map, MIN, P, &a), -MICA_EINVAL);
	a = attr(RW);
	a.max_prot = 9;
	assert_int_equal(vm_map_insert(&f->map, MIN, P, &a), -MICA_EINVAL);
	a = attr(VM_PROT_NONE);
	a.flags = VM_ENT_GUARD; /* a guard needs max_prot NONE */
	assert_int_equal(vm_map_insert(&f->map, MIN, P, &a), -MICA_EINVAL);
	a = attr(RW);
	a.backing = &f->env.objs[0];
	a.offset = 100;
	assert_int_equal(vm_map_insert(&f->map, MIN, P, &a), -MICA_EINVAL);
	a.offset = UINT64_MAX & ~(uint64_t)PAGE_MASK;
	assert_int_equal(vm_map_insert(&f->map, MIN, 2 * P, &a), -MICA_EOVERFLOW);
	/* prot above max */
	a = attr(VM_PROT_WRITE);
	a.max_prot = VM_PROT_READ;
	assert_int_equal(vm_map_insert(&f->map, MIN, P, &a), -MICA_EACCES);
	assert_int_equal(out, 0x1234);
	unchanged(f);
}

static void test_alignment(void **state)
{
	struct fx *f = *state;
	uintptr_t a;
	const uintptr_t base = MIN; /* 1 MiB aligned */

	assert_int_equal(vm_map_findspace(&f->map, 0, P, 3 * P, 0, &a), -MICA_EINVAL);
	assert_int_equal(vm_map_findspace(&f->map, 0, P, P / 2, 0, &a), -MICA_EINVAL);
	assert_int_equal(vm_map_findspace(&f->map, 0, P, (size_t)1 << 40, 0, &a), -MICA_ENOMEM);
	assert_int_equal(vm_map_findspace(&f->map, 0, P, 0, 0, &a), 0);
	assert_int_equal(a, base);
	/* Gaps: two pages at base+1p, sixteen at base+8p, and the rest from base+25p. */
	map_at(f, base, P, RW);
	map_at(f, base + 3 * P, 5 * P, VM_PROT_READ);
	map_at(f, base + 24 * P, P, RW);
	/* 4-page alignment, 2 pages: the first gap starts at 1p, cannot fit; the gap of 16
	 * pages >= 2 + 4 - 1 does, at the first 4-page boundary inside it. */
	assert_int_equal(vm_map_findspace(&f->map, 0, 2 * P, 4 * P, 0, &a), 0);
	assert_int_equal(a, base + 8 * P);
	/* Top-down: the highest aligned spot below the hint. */
	assert_int_equal(
	    vm_map_findspace(&f->map, base + 24 * P, 2 * P, 4 * P, VM_PLACE_TOPDOWN, &a), 0);
	assert_int_equal(a, base + 20 * P);
	/* A gap smaller than len + align - page is still used when it holds the hint and
	 * the aligned block fits there: 8 pages 16-aligned in the 16-page gap. */
	assert_int_equal(vm_map_findspace(&f->map, base + 9 * P, 8 * P, 16 * P, 0, &a), 0);
	assert_int_equal(a, base + 16 * P);
	/* Beyond the hint gap, only gaps of at least len + align - page are taken: gap
	 * [base+25p, max) is used although [base+8p, base+24p) would fit 16-page-aligned
	 * 8 pages at base+16p (documented trade-off for O(log n)). */
	assert_int_equal(vm_map_findspace(&f->map, 0, 8 * P, 16 * P, 0, &a), 0);
	assert_int_equal(a, base + 32 * P);
	/* 1 MiB alignment, larger than the gaps: lands at the next MiB in the tail gap. */
	assert_int_equal(vm_map_findspace(&f->map, 0, P, MB, 0, &a), -MICA_ENOMEM);
	assert_int_equal(vm_map_findspace(&f->map, 0, P, MB / 4, 0, &a), 0);
	assert_int_equal(a, base + MB / 4);
	assert_int_equal(vm_map_findspace(&f->map, 0, P, MB / 4, VM_PLACE_TOPDOWN, &a), 0);
	assert_int_equal(a, base + 3 * MB / 4);
	/* Fixed placement must honour the alignment. */
	assert_int_equal(vm_map_findspace(&f->map, base + 40 * P, P, 16 * P, VM_PLACE_FIXED, &a),
	                 -MICA_EINVAL);
	assert_int_equal(vm_map_findspace(&f->map, base + 48 * P, P, 16 * P, VM_PLACE_FIXED, &a),
	                 0);
}

static void test_exact_fit_gaps(void **state)
{
	struct fx *f = *state;
	uintptr_t a;

	map_at(f, MIN, P, RW);
	map_at(f, MIN + 2 * P, P, VM_PROT_READ); /* gap of 1 page at MIN+P */
	map_at(f, MIN + 6 * P, P, RW);           /* gap of 3 pages at MIN+3P */
	map_at(f, MAX - P, P, VM_PROT_READ);
	assert_int_equal(vm_map_findspace(&f->map, 0, P, 0, 0, &a), 0);
	assert_int_equal(a, MIN + P);
	assert_int_equal(vm_map_findspace(&f->map, 0, 3 * P, 0, 0, &a), 0);
	assert_int_equal(a, MIN + 3 * P);
	assert_int_equal(vm_map_findspace(&f->map, 0, 4 * P, 0, 0, &a), 0);
	assert_int_equal(a, MIN + 7 * P);
	/* Top-down below the second entry: the 1-page gap is the exact fit. */
	assert_int_equal(vm_map_findspace(&f->map, MIN + 2 * P, P, 0, VM_PLACE_TOPDOWN, &a), 0);
	assert_int_equal(a, MIN + P);
	assert_int_equal(vm_map_findspace(&f->map, MIN + 6 * P, 3 * P, 0, VM_PLACE_TOPDOWN, &a), 0);
	assert_int_equal(a, MIN + 3 * P);
	assert_int_equal(vm_map_findspace(&f->map, MIN + 6 * P, 4 * P, 0, VM_PLACE_TOPDOWN, &a),
	                 -MICA_ENOMEM);
	/* Filling the exact gap with a compatible mapping merges three entries into one. */
	map_at(f, MIN + P, P, RW);
	assert_int_equal(f->map.nentries, 4);
	assert_int_equal(vm_map_protect(&f->map, MIN + 2 * P, P, RW), 0);
	assert_int_equal(f->map.nentries, 3);
	assert_int_equal(vm_map_first(&f->map)->end, MIN + 3 * P);
}

static void test_hint(void **state)
{
	struct fx *f = *state;
	uintptr_t a;

	map_at(f, MIN + 10 * P, 10 * P, RW);
	assert_int_equal(vm_map_findspace(&f->map, MIN + 4 * P, 2 * P, 0, 0, &a), 0);
	assert_int_equal(a, MIN + 4 * P);
	/* Does not fit between hint and the entry: the next gap above it. */
	assert_int_equal(vm_map_findspace(&f->map, MIN + 9 * P, 2 * P, 0, 0, &a), 0);
	assert_int_equal(a, MIN + 20 * P);
	/* Inside an entry: the gap after it. */
	assert_int_equal(vm_map_findspace(&f->map, MIN + 12 * P, P, 0, 0, &a), 0);
	assert_int_equal(a, MIN + 20 * P);
	/* An unaligned hint is rounded up, a hint below the map clamped. */
	assert_int_equal(vm_map_findspace(&f->map, MIN + 4 * P + 1, P, 0, 0, &a), 0);
	assert_int_equal(a, MIN + 5 * P);
	assert_int_equal(vm_map_findspace(&f->map, 1, P, 0, 0, &a), 0);
	assert_int_equal(a, MIN);
	/* No room at or above the hint: no fallback to lower addresses. */
	assert_int_equal(vm_map_findspace(&f->map, MAX - P, 2 * P, 0, 0, &a), -MICA_ENOMEM);
	assert_int_equal(vm_map_findspace(&f->map, MAX, P, 0, 0, &a), -MICA_ENOMEM);
	/* Top-down: the hint bounds the end. */
	assert_int_equal(vm_map_findspace(&f->map, MIN + 15 * P, 2 * P, 0, VM_PLACE_TOPDOWN, &a),
	                 0);
	assert_int_equal(a, MIN + 8 * P);
	assert_int_equal(vm_map_findspace(&f->map, MIN + 8 * P, 2 * P, 0, VM_PLACE_TOPDOWN, &a), 0);
	assert_int_equal(a, MIN + 6 * P);
	assert_int_equal(vm_map_findspace(&f->map, MIN + P, 2 * P, 0, VM_PLACE_TOPDOWN, &a),
	                 -MICA_ENOMEM);
	assert_int_equal(vm_map_findspace(&f->map, MIN, P, 0, VM_PLACE_TOPDOWN, &a), -MICA_ENOMEM);
}

static void test_topdown_allocations_stack_down(void **state)
{
	struct fx *f = *state;
	struct vm_map_attr a = attr(RW);
	uintptr_t at, prev = MAX;
	int i;

	for (i = 0; i < 8; i++) {
		assert_int_equal(
		    vm_map_enter(&f->map, 0, 2 * P, 0, VM_PLACE_TOPDOWN, &a, NULL, NULL, &at), 0);
		assert_int_equal(at, prev - 2 * P);
		prev = at;
	}
	assert_int_equal(f->map.nentries, 1); /* each merged with the one above */
	assert_int_equal(f->map.size, 16 * P);
}

static void test_fixed_replace(void **state)
{
	struct fx *f = *state;
	struct vm_map_attr a = attr(VM_PROT_READ);
	uintptr_t at;
	const uintptr_t want[] = {MIN,          MIN + 2 * P,  MIN + 2 * P,  MIN + 12 * P,
	                          MIN + 12 * P, MIN + 14 * P, MIN + 20 * P, MIN + 22 * P};

	map_at(f, MIN, 4 * P, RW);
	map_at(f, MIN + 6 * P, 2 * P, VM_PROT_READ | VM_PROT_EXEC);
	map_at(f, MIN + 10 * P, 4 * P, RW);
	map_at(f, MIN + 20 * P, 2 * P, VM_PROT_READ | VM_PROT_EXEC);
	f->npieces = 0;
	assert_int_equal(
	    vm_map_enter(&f->map, MIN + 2 * P, 10 * P, 0, VM_PLACE_FIXED, &a, record, f, &at), 0);
	assert_int_equal(at, MIN + 2 * P);
	expect_entries(f, 4, want);
	/* The replaced pieces, clipped to the range, in address order. */
	assert_int_equal(f->npieces, 3);
	assert_int_equal(f->pieces[0].start, MIN + 2 * P);
	assert_int_equal(f->pieces[0].end, MIN + 4 * P);
	assert_int_equal(f->pieces[1].start, MIN + 6 * P);
	assert_int_equal(f->pieces[1].end, MIN + 8 * P);
	assert_int_equal(f->pieces[1].prot, VM_PROT_READ | VM_PROT_EXEC);
	assert_int_equal(f->pieces[2].start, MIN + 10 * P);
	assert_int_equal(f->pieces[2].end, MIN + 12 * P);
	assert_int_equal(f->map.size, 16 * P);

	/* Replacing the middle of an entry with identical attributes leaves one entry. */
	f->npieces = 0;
	assert_int_equal(
	    vm_map_enter(&f->map, MIN + 4 * P, 2 * P, 0, VM_PLACE_FIXED, &a, record, f, &at), 0);
	assert_int_equal(f->npieces, 1);
	assert_int_equal(f->map.nentries, 4);
}

static void test_noreplace(void **state)
{
	struct fx *f = *state;
	struct vm_map_attr a = attr(RW);
	uintptr_t at;

	map_at(f, MIN + 4 * P, 4 * P, VM_PROT_READ);
	snap(f);
	assert_int_equal(
	    vm_map_enter(&f->map, MIN + 2 * P, 3 * P, 0, VM_PLACE_NOREPLACE, &a, NULL, NULL, &at),
	    -MICA_EEXIST);
	assert_int_equal(vm_map_insert(&f->map, MIN + 7 * P, P, &a), -MICA_EEXIST);
	assert_int_equal(vm_map_findspace(&f->map, MIN + 4 * P, P, 0, VM_PLACE_NOREPLACE, &at),
	                 -MICA_EEXIST);
	unchanged(f);
	assert_int_equal(
	    vm_map_enter(&f->map, MIN + 2 * P, 2 * P, 0, VM_PLACE_NOREPLACE, &a, NULL, NULL, &at),
	    0);
	assert_int_equal(at, MIN + 2 * P);
	assert_int_equal(f->map.nentries, 2);
}

static void test_merge_both_sides(void **state)
{
	struct fx *f = *state;
	const uintptr_t one[] = {MIN, MIN + 9 * P};

	map_at(f, MIN, 3 * P, RW);
	map_at(f, MIN + 6 * P, 3 * P, RW);
	assert_int_equal(f->map.nentries, 2);
	map_at(f, MIN + 3 * P, 3 * P, RW);
	expect_entries(f, 1, one);
	assert_int_equal(f->map.size, 9 * P);
}

static void test_merge_blocked(void **state)
{
	struct fx *f = *state;
	struct vm_map_attr a = attr(RW), nm = attr(RW);

	nm.flags = VM_ENT_NOMERGE;
	map_at(f, MIN, P, RW);
	assert_int_equal(vm_map_insert(&f->map, MIN + P, P, &nm), 0);     /* no-merge */
	assert_int_equal(vm_map_insert(&f->map, MIN + 2 * P, P, &nm), 0); /* both no-merge */
	map_at(f, MIN + 3 * P, P, VM_PROT_READ);                          /* other prot */
	a.max_prot = RW;
	assert_int_equal(vm_map_insert(&f->map, MIN + 4 * P, P, &a), 0); /* other max */
	a = attr(RW);
	a.backing = &f->env.objs[1];
	f->env.refs[1]++;
	assert_int_equal(vm_map_insert(&f->map, MIN + 5 * P, P, &a), 0); /* other backing */
	a.offset = 7 * P;
	f->env.refs[1]++;
	assert_int_equal(vm_map_insert(&f->map, MIN + 6 * P, P, &a), 0); /* offset jumps */
	map_at(f, MIN + 8 * P, P, RW);
	assert_int_equal(vm_map_wire(&f->map, MIN + 8 * P, P), 0);
	map_at(f, MIN + 7 * P, P, RW); /* wired neighbour on the right */
	assert_int_equal(f->map.nentries, 9);
	assert_int_equal(f->env.refs[1], 2);
}

static void enter_obj(struct fx *f, uintptr_t addr, size_t len, int obj, uint64_t off)
{
	struct vm_map_attr a = attr(RW);

	a.backing = &f->env.objs[obj];
	a.offset = off;
	f->env.refs[obj]++; /* the reference the caller hands over */
	assert_int_equal(vm_map_insert(&f->map, addr, len, &a), 0);
}

static void test_merge_backing_offsets(void **state)
{
	struct fx *f = *state;
	const uintptr_t one[] = {MIN, MIN + 10 * P};
	const uintptr_t split[] = {MIN,          MIN + 2 * P,  MIN + 3 * P,
	                           MIN + 10 * P, MIN + 10 * P, MIN + 11 * P};
	struct vm_map_entry *e;

	enter_obj(f, MIN + 2 * P, 2 * P, 2, 10 * P);
	enter_obj(f, MIN + 4 * P, 2 * P, 2, 12 * P); /* back merge */
	enter_obj(f, MIN, 2 * P, 2, 8 * P);          /* forward merge */
	enter_obj(f, MIN + 8 * P, 2 * P, 2, 16 * P);
	assert_int_equal(f->map.nentries, 2);
	enter_obj(f, MIN + 6 * P, 2 * P, 2, 14 * P); /* closes the hole: both sides */
	expect_entries(f, 1, one);
	assert_int_equal(vm_map_first(&f->map)->offset, 8 * P);
	assert_int_equal(f->env.refs[2], 1);
	enter_obj(f, MIN + 10 * P, P, 2, 99 * P); /* offset does not continue */
	assert_int_equal(f->env.refs[2], 2);

	/* A hole punched in the middle needs one new entry and one more reference. */
	f->npieces = 0;
	assert_int_equal(vm_map_remove(&f->map, MIN + 2 * P, P, record, f), 0);
	expect_entries(f, 3, split);
	assert_int_equal(f->env.refs[2], 3);
	assert_int_equal(f->npieces, 1);
	assert_int_equal(f->pieces[0].offset, 10 * P);
	assert_true(vm_map_lookup(&f->map, MIN + 3 * P, &e));
	assert_int_equal(e->offset, 11 * P);
}

static void test_remove_split_middle_allocates_once(void **state)
{
	struct fx *f = *state;
	size_t before;
	const uintptr_t want[] = {MIN, MIN + 3 * P, MIN + 5 * P, MIN + 8 * P};

	map_at(f, MIN, 8 * P, RW);
	assert_int_equal(vm_map_wire(&f->map, MIN, 8 * P), 0);
	before = f->env.allocs;
	f->npieces = 0;
	assert_int_equal(vm_map_remove(&f->map, MIN + 3 * P, 2 * P, record, f), 0);
	assert_int_equal(f->env.allocs - before, 1);
	expect_entries(f, 2, want);
	assert_int_equal(f->npieces, 1);
	assert_int_equal(f->pieces[0].wired, 1); /* the server unpins what it is told about */
	assert_int_equal(f->map.wired_size, 6 * P);
	assert_int_equal(f->map.size, 6 * P);
	/* Allocation failure: nothing happens. */
	snap(f);
	f->env.fail_in = 0;
	assert_int_equal(vm_map_remove(&f->map, MIN + P, P, NULL, NULL), -MICA_ENOMEM);
	f->env.fail_in = -1;
	unchanged(f);
}

static void test_remove_across_holes(void **state)
{
	struct fx *f = *state;
	const uintptr_t want[] = {MIN, MIN + P, MIN + 13 * P, MIN + 14 * P};

	map_at(f, MIN, 3 * P, RW);
	map_at(f, MIN + 4 * P, 2 * P, VM_PROT_READ);
	map_at(f, MIN + 7 * P, P, RW);
	map_at(f, MIN + 10 * P, 4 * P, VM_PROT_READ);
	f->npieces = 0;
	assert_int_equal(vm_map_remove(&f->map, MIN + P, 12 * P, record, f), 0);
	expect_entries(f, 2, want);
	assert_int_equal(f->npieces, 4);
	assert_int_equal(f->pieces[0].start, MIN + P);
	assert_int_equal(f->pieces[0].end, MIN + 3 * P);
	assert_int_equal(f->pieces[1].start, MIN + 4 * P);
	assert_int_equal(f->pieces[2].start, MIN + 7 * P);
	assert_int_equal(f->pieces[3].start, MIN + 10 * P);
	assert_int_equal(f->pieces[3].end, MIN + 13 * P);
	/* An empty range is not an error. */
	f->npieces = 0;
	assert_int_equal(vm_map_remove(&f->map, MIN + 2 * P, 4 * P, record, f), 0);
	assert_int_equal(f->npieces, 0);
	assert_int_equal(vm_map_remove(&f->map, MIN, NPG * P, NULL, NULL), 0);
	expect_entries(f, 0, NULL);
	assert_int_equal(f->map.size, 0);
}

static void test_protect(void **state)
{
	struct fx *f = *state;
	struct vm_map_attr ro = attr(VM_PROT_READ);
	size_t before;
	const uintptr_t three[] = {MIN,         MIN + 2 * P, MIN + 2 * P,
	                           MIN + 4 * P, MIN + 4 * P, MIN + 8 * P};
	const uintptr_t one[] = {MIN, MIN + 8 * P};

	map_at(f, MIN, 8 * P, RW);
	/* The middle of one entry: two new entries, allocated up front. */
	before = f->env.allocs;
	assert_int_equal(vm_map_protect(&f->map, MIN + 2 * P, 2 * P, VM_PROT_READ), 0);
	assert_int_equal(f->env.allocs - before, 2);
	expect_entries(f, 3, three);
	/* Protecting back restores a single entry. */
	assert_int_equal(vm_map_protect(&f->map, MIN + 2 * P, 2 * P, RW), 0);
	expect_entries(f, 1, one);
	/* Across several entries, cutting into the first and the last. */
	ro.max_prot = VM_PROT_READ;
	assert_int_equal(vm_map_insert(&f->map, MIN + 8 * P, 2 * P, &ro), 0);
	map_at(f, MIN + 10 * P, 4 * P, RW);
	assert_int_equal(vm_map_protect(&f->map, MIN + 6 * P, 6 * P, VM_PROT_READ), 0);
	assert_int_equal(f->map.nentries, 5); /* max_prot keeps [8P, 10P) apart */
	assert_int_equal(vm_map_protect(&f->map, MIN, 14 * P, VM_PROT_NONE), 0);
	assert_int_equal(f->map.nentries, 3); /* max_prot still tells them apart */
	/* Above max protection anywhere in the range: nothing changes. */
	snap(f);
	assert_int_equal(vm_map_protect(&f->map, MIN + 2 * P, 10 * P, RW), -MICA_EACCES);
	unchanged(f);
	/* A hole, at the start, in the middle or at the end: nothing changes. */
	assert_int_equal(vm_map_remove(&f->map, MIN + 12 * P, P, NULL, NULL), 0);
	snap(f);
	assert_int_equal(vm_map_protect(&f->map, MIN + 11 * P, 3 * P, VM_PROT_READ), -MICA_ENOMEM);
	assert_int_equal(vm_map_protect(&f->map, MIN + 12 * P, 2 * P, VM_PROT_READ), -MICA_ENOMEM);
	assert_int_equal(vm_map_protect(&f->map, MIN + 13 * P, 2 * P, VM_PROT_READ), -MICA_ENOMEM);
	assert_int_equal(vm_map_protect(&f->map, MAX - P, P, VM_PROT_READ), -MICA_ENOMEM);
	/* The first problem in address order decides the error. */
	assert_int_equal(vm_map_protect(&f->map, MIN + 9 * P, 5 * P, RW), -MICA_EACCES);
	assert_int_equal(vm_map_protect(&f->map, MIN + 11 * P, 3 * P, VM_PROT_EXEC | 8),
	                 -MICA_EINVAL);
	unchanged(f);
	/* Allocation failure for either of two splits: nothing changes. */
	f->env.fail_in = 1;
	assert_int_equal(vm_map_protect(&f->map, MIN + P, P, VM_PROT_READ), -MICA_ENOMEM);
	f->env.fail_in = -1;
	unchanged(f);
}

static void test_wire(void **state)
{
	struct fx *f = *state;
	struct vm_map_attr g = attr(VM_PROT_NONE);
	const uintptr_t three[] = {MIN,         MIN + 2 * P, MIN + 2 * P,
	                           MIN + 6 * P, MIN + 6 * P, MIN + 8 * P};

	map_at(f, MIN, 8 * P, RW);
	map_at(f, MIN + 10 * P, 2 * P, RW);
	assert_int_equal(vm_map_wire(&f->map, MIN + 2 * P, 4 * P), 0);
	expect_entries(f, 4,
	               (const uintptr_t[]){MIN, MIN + 2 * P, MIN + 2 * P, MIN + 6 * P, MIN + 6 * P,
	                                   MIN + 8 * P, MIN + 10 * P, MIN + 12 * P});
	assert_int_equal(f->map.wired_size, 4 * P);
	/* Wiring again does not nest: one unwire undoes it. */
	assert_int_equal(vm_map_wire(&f->map, MIN + 2 * P, 4 * P), 0);
	assert_int_equal(vm_map_wire(&f->map, MIN + 3 * P, P), 0);
	assert_int_equal(f->map.wired_size, 4 * P);
	assert_int_equal(vm_map_unwire(&f->map, MIN, 8 * P), 0);
	assert_int_equal(f->map.wired_size, 0);
	assert_int_equal(f->map.nentries, 2);
	/* A hole anywhere: all or nothing. */
	snap(f);
	assert_int_equal(vm_map_wire(&f->map, MIN + 6 * P, 6 * P), -MICA_ENOMEM);
	assert_int_equal(vm_map_unwire(&f->map, MIN + 6 * P, 6 * P), -MICA_ENOMEM);
	assert_int_equal(vm_map_wire(&f->map, MIN + 8 * P, P), -MICA_ENOMEM);
	unchanged(f);
	/* Unwiring what is not wired is fine. */
	assert_int_equal(vm_map_unwire(&f->map, MIN, 8 * P), 0);
	unchanged(f);
	/* A guard entry counts as a hole. */
	g.max_prot = VM_PROT_NONE;
	g.flags = VM_ENT_GUARD;
	assert_int_equal(vm_map_insert(&f->map, MIN + 8 * P, 2 * P, &g), 0);
	snap(f);
	assert_int_equal(vm_map_wire(&f->map, MIN + 6 * P, 6 * P), -MICA_ENOMEM);
	assert_int_equal(vm_map_protect(&f->map, MIN + 8 * P, P, VM_PROT_READ), -MICA_EACCES);
	unchanged(f);
	assert_int_equal(vm_map_wire(&f->map, MIN + 2 * P, 4 * P), 0);
	assert_int_equal(vm_map_remove(&f->map, MIN + 8 * P, 4 * P, NULL, NULL), 0);
	expect_entries(f, 3, three);
}

static int count_cb(void *arg, const struct vm_map_entry *e)
{
	int *n = arg;

	(*n)++;
	return *n >= 100 ? 42 : 0;
}

static void test_foreach(void **state)
{
	struct fx *f = *state;
	int n = 0;

	map_at(f, MIN, P, RW);
	map_at(f, MIN + 2 * P, P, RW);
	map_at(f, MIN + 4 * P, P, RW);
	map_at(f, MIN + 6 * P, P, RW);
	assert_int_equal(vm_map_foreach(&f->map, MIN + P, 4 * P, count_cb, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(vm_map_foreach(&f->map, MIN, NPG * P, count_cb, &n), 0);
	assert_int_equal(n, 4);
	n = 99;
	assert_int_equal(vm_map_foreach(&f->map, MIN, NPG * P, count_cb, &n), 42);
	assert_int_equal(vm_map_foreach(&f->map, MIN, 0, count_cb, &n), -MICA_EINVAL);
}

static void test_lookup_uses_hint(void **state)
{
	struct fx *f = *state;
	struct vm_map_entry *e;
	uint64_t v;
	int i;

	for (i = 0; i < 32; i++)
		map_at(f, MIN + 4 * i * P, 2 * P, i % 2 ? RW : VM_PROT_READ);
	assert_true(vm_map_lookup(&f->map, MIN + 40 * P + 5, &e));
	assert_int_equal(e->start, MIN + 40 * P);
	/* Same entry again, and the gap after it: answered from the hint alone. */
	v = f->map.stats.visits;
	assert_true(vm_map_lookup(&f->map, MIN + 41 * P, &e));
	assert_false(vm_map_lookup(&f->map, MIN + 43 * P, &e));
	assert_int_equal(e->start, MIN + 40 * P);
	assert_int_equal(f->map.stats.visits, v);
	/* Below every entry there is no predecessor. */
	assert_int_equal(vm_map_remove(&f->map, MIN, 2 * P, NULL, NULL), 0);
	assert_false(vm_map_lookup(&f->map, MIN + P, &e));
	assert_null(e);
	assert_false(vm_map_lookup(&f->map, MIN + 3 * P, &e));
	assert_null(e);
	assert_true(vm_map_lookup(&f->map, MIN + 4 * P, &e));
	assert_int_equal(vm_map_check(&f->map, NULL), 0);
}

static void count_piece(void *arg, const struct vm_map_entry *piece)
{
	(*(int *)arg)++;
}

static void test_clear(void **state)
{
	struct fx *f = *state;
	uintptr_t a;
	int i, n = 0;

	for (i = 0; i < 10; i++)
		enter_obj(f, MIN + 3 * i * P, 2 * P, i % VMREF_NOBJ, 0);
	assert_int_equal(vm_map_wire(&f->map, MIN, 2 * P), 0);
	vm_map_clear(&f->map, count_piece, &n);
	assert_int_equal(n, 10);
	assert_int_equal(f->env.live, 0);
	for (i = 0; i < VMREF_NOBJ; i++)
		assert_int_equal(f->env.refs[i], 0);
	assert_int_equal(f->map.size + f->map.wired_size + f->map.nentries, 0);
	/* Usable again. */
	assert_int_equal(vm_map_findspace(&f->map, 0, NPG * P, 0, 0, &a), 0);
	map_at(f, MIN, P, RW);
}

/* The checker must notice each kind of damage; each case breaks one thing and puts it
 * back. */
static void expect_broken(struct fx *f, const char *needle)
{
	const char *why = NULL;

	assert_int_not_equal(vm_map_check(&f->map, &why), 0);
	assert_non_null(why);
	if (needle != NULL && strstr(why, needle) == NULL)
		fail_msg("checker said \"%s\", expected \"%s\"", why, needle);
}

static void test_checker_detects_damage(void **state)
{
	struct fx *f = *state;
	struct vm_map *m = &f->map;
	struct vm_map_entry *e, *r, fake;
	uintptr_t saved;
	int i;

	m->debug_check = false; /* the damage is deliberate */
	for (i = 0; i < 40; i++)
		map_at(f, MIN + 3 * i * P, (i % 3 + 1) * P, i % 2 ? RW : VM_PROT_READ);
	assert_int_equal(vm_map_check(m, NULL), 0);
	r = m->root;
	assert_true(vm_map_lookup(m, MIN + 30 * P, &e));

	e->gap += P;
	expect_broken(f, "gap");
	e->gap -= P;
	r->max_gap += P;
	expect_broken(f, "max_gap");
	r->max_gap -= P;
	r->rb_parent_colour &= ~(uintptr_t)1;
	expect_broken(f, "root red");
	r->rb_parent_colour |= 1;
	saved = r->rb_left->rb_parent_colour;
	r->rb_left->rb_parent_colour ^= 1; /* recolour one subtree root */
	expect_broken(f, NULL);
	r->rb_left->rb_parent_colour = saved;
	saved = e->rb_parent_colour;
	e->rb_parent_colour = (uintptr_t)&fake | (saved & 1);
	expect_broken(f, "parent");
	e->rb_parent_colour = saved;
	{
		struct vm_map_entry *t = r->rb_left;

		r->rb_left = r->rb_right;
		r->rb_right = t;
		expect_broken(f, NULL);
		r->rb_right = r->rb_left;
		r->rb_left = t;
	}
	m->nentries++;
	expect_broken(f, "nentries");
	m->nentries--;
	m->size += P;
	expect_broken(f, "byte count");
	m->size -= P;
	m->hint = &fake;
	expect_broken(f, "hint");
	m->hint = &m->header;
	e->offset += 8;
	expect_broken(f, "aligned");
	e->offset -= 8;
	e->start += 8;
	expect_broken(f, NULL);
	e->start -= 8;
	e->wired = 2;
	expect_broken(f, "nested");
	e->wired = 0;
	e->prot = VM_PROT_EXEC;
	e->max_prot = VM_PROT_READ;
	expect_broken(f, "protection");
	e->max_prot = VM_PROT_ALL;
	/* Equal attributes three pages apart are fine... */
	e->prot = e->next->prot;
	assert_int_equal(vm_map_check(m, NULL), 0);
	/* ...but equal and touching is a merge that did not happen. */
	saved = e->end;
	e->end = e->next->start;
	e->gap = 0;
	expect_broken(f, "merged");
	e->end = saved;
	e->gap = e->next->start - e->end;
	e->prot = e->next->prot == RW ? VM_PROT_READ : RW;
	assert_int_equal(vm_map_check(m, NULL), 0);
	m->debug_check = true;
}

static uint64_t log2u(uint64_t n)
{
	uint64_t l = 0;

	while (n >>= 1)
		l++;
	return l;
}

/* Find-space, insert and remove touch O(log n) nodes, not O(n): with 100 000 entries and
 * the only big gap at the far end, a list walk would visit them all. */
static void test_logarithmic_visits(void **state)
{
	struct fx *f = *state;
	struct vm_map_ops ops = vmref_env_ops(&f->env);
	struct vm_map *m = malloc(sizeof(*m));
	struct vm_map_attr a = attr(RW);
	const size_t n = 100000;
	const uintptr_t base = 0x40000000UL;
	uint64_t v, bound = 4 * log2u(n) + 8;
	uintptr_t at, end = base;
	size_t i;

	assert_non_null(m);
	assert_int_equal(vm_map_init(m, base, base + (1UL << 34), &ops), 0);
	m->debug_check = false;
	for (i = 0; i < n; i++) {
		/* 1-3 page entries, 1-4 page gaps: nothing of 8 pages fits until the end. */
		assert_int_equal(vm_map_insert(m, end, (1 + i % 3) * P, &a), 0);
		end += (1 + i % 3) * P + (1 + (i * 7) % 4) * P;
	}
	assert_int_equal(m->nentries, n);
	assert_int_equal(vm_map_check(m, NULL), 0);

	v = m->stats.visits;
	assert_int_equal(vm_map_findspace(m, 0, 8 * P, 0, 0, &at), 0);
	assert_int_equal(at, end - (1 + ((n - 1) * 7) % 4) * P);
	assert_true(m->stats.visits - v <= bound);
	v = m->stats.visits;
	assert_int_equal(vm_map_findspace(m, 0, 8 * P, 2 * MB, 0, &at), 0);
	assert_int_equal(at % (2 * MB), 0);
	assert_true(at >= end - 4 * P);
	assert_true(m->stats.visits - v <= bound);
	v = m->stats.visits;
	assert_int_equal(vm_map_findspace(m, end, 8 * P, 2 * MB, VM_PLACE_TOPDOWN, &at),
	                 -MICA_ENOMEM);
	assert_true(m->stats.visits - v <= bound);
	v = m->stats.visits;
	assert_int_equal(vm_map_enter(m, 0, 8 * P, 0, 0, &a, NULL, NULL, &at), 0);
	assert_true(m->stats.visits - v <= 3 * bound);
	v = m->stats.visits;
	assert_int_equal(vm_map_remove(m, at, 8 * P, NULL, NULL), 0);
	assert_true(m->stats.visits - v <= 3 * bound);
	assert_int_equal(vm_map_check(m, NULL), 0);
	vm_map_clear(m, NULL, NULL);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_init_rejects_bad_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_map_findspace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_first_and_last_page, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_argument_validation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alignment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exact_fit_gaps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_topdown_allocations_stack_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fixed_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_noreplace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_merge_both_sides, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_merge_blocked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_merge_backing_offsets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_split_middle_allocates_once, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_remove_across_holes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wire, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreach, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lookup_uses_hint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checker_detects_damage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logarithmic_visits, setup, teardown),
	};

	return cmocka_run_group_tests_name("vm_map", tests, NULL, NULL);
}
