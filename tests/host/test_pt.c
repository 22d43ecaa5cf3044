/*
 * Sv39 page-table core against a simulated physical memory.
 *
 * Every test walks the whole tree with pt_check() after every operation (the
 * A/D rule, U/G per space, no empty tables, counts), and the allocator under
 * the tables tracks every page so leaks and double frees fail the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/riscv64/pt.h"
#include "mica/errno.h"
#include "mica/param.h"

/* ---- simulated physical memory for tables ---- */

#define SIM_PAGES 4096
#define SIM_BASE 0x80000000UL

static uint8_t *sim_mem;
static uint8_t sim_used[SIM_PAGES];
static unsigned long sim_in_use;
static long sim_fail_after = -1; /* allocations left before one fails; -1 never */

static void *sim_kva(void *ctx, uint64_t pa)
{
	(void)ctx;
	assert_true(pa >= SIM_BASE && pa < SIM_BASE + SIM_PAGES * PAGE_SIZE);
	assert_int_equal(pa & PAGE_MASK, 0);
	assert_true(sim_used[(pa - SIM_BASE) >> PAGE_SHIFT]);
	return sim_mem + (pa - SIM_BASE);
}

static int sim_alloc(void *ctx, uint64_t *pa)
{
	(void)ctx;
	if (sim_fail_after == 0)
		return -MICA_ENOMEM;
	if (sim_fail_after > 0)
		sim_fail_after--;
	for (unsigned i = 0; i < SIM_PAGES; i++) {
		if (!sim_used[i]) {
			sim_used[i] = 1;
			sim_in_use++;
			memset(sim_mem + (uint64_t)i * PAGE_SIZE, 0, PAGE_SIZE);
			*pa = SIM_BASE + (uint64_t)i * PAGE_SIZE;
			return 0;
		}
	}
	return -MICA_ENOMEM;
}

static void sim_free(void *ctx, uint64_t pa)
{
	(void)ctx;
	unsigned i = (unsigned)((pa - SIM_BASE) >> PAGE_SHIFT);
	assert_true(sim_used[i]); /* a double free fails here */
	sim_used[i] = 0;
	sim_in_use--;
	memset(sim_mem + (uint64_t)i * PAGE_SIZE, 0xa5, PAGE_SIZE);
}

static const struct pt_mem sim = {.kva = sim_kva, .alloc = sim_alloc, .free = sim_free};

static int sim_setup(void **state)
{
	(void)state;
	sim_mem = aligned_alloc(PAGE_SIZE, SIM_PAGES * PAGE_SIZE);
	assert_non_null(sim_mem);
	memset(sim_used, 0, sizeof(sim_used));
	sim_in_use = 0;
	sim_fail_after = -1;
	return 0;
}

static int sim_teardown(void **state)
{
	(void)state;
	assert_int_equal(sim_in_use, 0); /* every table came back */
	free(sim_mem);
	return 0;
}

static void check(const struct pt *pt)
{
	char why[128];
	int err = pt_check(pt, why, sizeof(why));
	if (err)
		fail_msg("pt_check: %s", why);
}

#define RW (PTE_R | PTE_W)
#define RX (PTE_R | PTE_X)
#define MiB (1UL << 20)
#define GiB (1UL << 30)

static void expect_map(const struct pt *pt, uint64_t va, uint64_t pa, uint64_t prot,
		       unsigned level)
{
	uint64_t got_pa, pte;
	unsigned got_level;
	assert_int_equal(pt_extract(pt, va, &got_pa, &pte, &got_level), 0);
	assert_int_equal(got_pa, pa);
	assert_int_equal(pte & PTE_RWX, prot);
	assert_int_equal(got_level, level);
}

static void expect_unmapped(const struct pt *pt, uint64_t va)
{
	assert_int_equal(pt_extract(pt, va, 0, 0, 0), -MICA_ENOENT);
}

static void user_space(struct pt *pt)
{
	assert_int_equal(pt_init(pt, &sim, PT_SPACE_USER, 0), 0);
	check(pt);
}

/* ---- unit tests ---- */

static void test_enter_small_page_sets_a_and_d(void **state)
{
	(void)state;
	struct pt pt;
	struct pt_flush fl;
	user_space(&pt);
	pt_flush_init(&fl);
	assert_int_equal(pt_enter(&pt, 0x10000, 0x90000000, PAGE_SIZE, RW, 0, &fl), 0);
	pt_flush_init(&fl);
	assert_int_equal(pt_enter(&pt, 0x11000, 0x90001000, PAGE_SIZE, PTE_R, 0, &fl), 0);
	check(&pt);
	uint64_t pte;
	assert_int_equal(pt_extract(&pt, 0x10123, 0, &pte, 0), 0);
	assert_true(pte & PTE_A);
	assert_true(pte & PTE_D);
	assert_true(pte & PTE_U);
	assert_false(pte & PTE_G);
	assert_int_equal(pt_extract(&pt, 0x11000, 0, &pte, 0), 0);
	assert_true(pte & PTE_A);
	assert_false(pte & PTE_D); /* not writable: D stays clear */
	uint64_t pa;
	assert_int_equal(pt_extract(&pt, 0x10123, &pa, 0, 0), 0);
	assert_int_equal(pa, 0x90000123);
	assert_int_equal(pt.tables, 2); /* one level-1 and one level-0 table */
	assert_true(fl.raised);
	assert_false(fl.reduced);
	pt_destroy(&pt);
}

static void test_superpage_choice(void **state)
{
	(void)state;
	struct pt pt;
	struct pt_flush fl;
	user_space(&pt);
	pt_flush_init(&fl);
	/* 4 KiB before, two 2 MiB leaves, 4 KiB after: va and pa agree mod 2 MiB. */
	uint64_t va = 2 * MiB - PAGE_SIZE, pa = 0x80000000 + 2 * MiB - PAGE_SIZE;
	assert_int_equal(pt_enter(&pt, va, pa, 4 * MiB + 2 * PAGE_SIZE, RW, 0, &fl), 0);
	check(&pt);
	expect_map(&pt, va, pa, RW, 0);
	expect_map(&pt, 2 * MiB, 0x80200000, RW, 1);
	expect_map(&pt, 4 * MiB + 5 * PAGE_SIZE, 0x80400000 + 5 * PAGE_SIZE, RW, 1);
	expect_map(&pt, 6 * MiB, 0x80600000, RW, 0);
	assert_int_equal(pt.leaves[1], 2);
	assert_int_equal(pt.leaves[0], 2);
	/* Same range with a frame offset that breaks 2 MiB alignment: all 4 KiB. */
	assert_int_equal(pt_enter(&pt, 1 * GiB, 0x80001000, 2 * MiB, RW, 0, &fl), 0);
	expect_map(&pt, 1 * GiB, 0x80001000, RW, 0);
	assert_int_equal(pt.leaves[0], 2 + 512);
	/* A whole aligned gigabyte becomes one root-level leaf. */
	assert_int_equal(pt_enter(&pt, 4 * GiB, 2 * GiB, GiB, RX, 0, &fl), 0);
	expect_map(&pt, 4 * GiB + 12345 * PAGE_SIZE, 2 * GiB + 12345 * PAGE_SIZE, RX, 2);
	assert_int_equal(pt.leaves[2], 1);
	/* NOSUPER forces small pages even when everything aligns. */
	assert_int_equal(pt_enter(&pt, 8 * GiB, 2 * GiB, 2 * MiB, RX, PT_ENTER_NOSUPER, &fl), 0);
	expect_map(&pt, 8 * GiB, 2 * GiB, RX, 0);
	check(&pt);
	pt_destroy(&pt);
}

static void test_enter_over_mapping_fails_cleanly(void **state)
{
	(void)state;
	struct pt pt;
	struct pt_flush fl;
	user_space(&pt);
	pt_flush_init(&fl);
	assert_int_equal(pt_enter(&pt, 2 * MiB, 0x80200000, 2 * MiB, RW, 0, &fl), 0);
	unsigned long tables = pt.tables, in_use = sim_in_use;
	/* Overlaps the superpage by one page at its end. */
	assert_int_equal(pt_enter(&pt, 4 * MiB - PAGE_SIZE, 0x90000000, 8 * PAGE_SIZE, RW, 0, &fl),
			 -MICA_EEXIST);
	assert_int_equal(pt.tables, tables);
	assert_int_equal(sim_in_use, in_use);
	expect_unmapped(&pt, 4 * MiB);
	check(&pt);
	pt_destroy(&pt);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	struct pt pt;
	struct pt_flush fl;
	user_space(&pt);
	pt_flush_init(&fl);
	assert_int_equal(pt_enter(&pt, 0x1000, 0x80000000, 0, PTE_R, 0, &fl), -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, 0x1001, 0x80000000, PAGE_SIZE, PTE_R, 0, &fl), -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, 0x1000, 0x80000010, PAGE_SIZE, PTE_R, 0, &fl), -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, 0x1000, 0x80000000, 100, PTE_R, 0, &fl), -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, 0x1000, 0x80000000, PAGE_SIZE, PTE_W, 0, &fl), -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, 0x1000, 0x80000000, PAGE_SIZE, 0, 0, &fl), -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, 0x1000, 0x80000000, PAGE_SIZE, PTE_U | PTE_R, 0, &fl),
			 -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, 0x1000, 0x80000000, PAGE_SIZE, PTE_R, 0x80, &fl),
			 -MICA_EINVAL);
	/* The kernel half and non-canonical addresses are not this space's. */
	assert_int_equal(pt_enter(&pt, USER_VA_MAX, 0x80000000, PAGE_SIZE, PTE_R, 0, &fl),
			 -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, USER_VA_MAX - PAGE_SIZE, 0x80000000, 2 * PAGE_SIZE, PTE_R, 0,
				  &fl),
			 -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, 0xffffffc000000000UL, 0x80000000, PAGE_SIZE, PTE_R, 0, &fl),
			 -MICA_EINVAL);
	assert_int_equal(pt_enter(&pt, 0x0000010000000000UL, 0x80000000, PAGE_SIZE, PTE_R, 0, &fl),
			 -MICA_EINVAL);
	/* len that wraps the address space */
	assert_int_equal(pt_remove(&pt, 0x1000, (uint64_t)0 - PAGE_SIZE, &fl), -MICA_EINVAL);
	assert_int_equal(pt_protect(&pt, 0x1000, PAGE_SIZE, PTE_W | PTE_X, &fl), -MICA_EINVAL);
	assert_int_equal(pt.tables, 0);
	assert_int_equal(sim_in_use, 1);
	check(&pt);
	pt_destroy(&pt);
}

static void test_remove_splits_and_frees_tables(void **state)
{
	(void)state;
	struct pt pt;
	struct pt_flush fl;
	user_space(&pt);
	pt_flush_init(&fl);
	assert_int_equal(pt_enter(&pt, 2 * GiB, 4 * GiB, GiB, RW, 0, &fl), 0);
	assert_int_equal(pt.tables, 0);
	/* Punch one 4 KiB page out of the middle of the gigapage. */
	uint64_t hole = 2 * GiB + 300 * MiB + 5 * PAGE_SIZE;
	pt_flush_init(&fl);
	assert_int_equal(pt_remove(&pt, hole, PAGE_SIZE, &fl), 0);
	check(&pt);
	assert_true(fl.reduced);
	assert_int_equal(fl.start, hole);
	assert_int_equal(fl.end, hole + PAGE_SIZE);
	expect_unmapped(&pt, hole);
	expect_map(&pt, hole - PAGE_SIZE, 4 * GiB + 300 * MiB + 4 * PAGE_SIZE, RW, 0);
	expect_map(&pt, hole + PAGE_SIZE, 4 * GiB + 300 * MiB + 6 * PAGE_SIZE, RW, 0);
	expect_map(&pt, 2 * GiB, 4 * GiB, RW, 1);
	assert_int_equal(pt.leaves[1], 511);
	assert_int_equal(pt.leaves[0], 511);
	assert_int_equal(pt.tables, 2);
	/* Removing a range with holes in it is fine, and empties every table. */
	pt_flush_init(&fl);
	assert_int_equal(pt_remove(&pt, 2 * GiB - 4 * MiB, GiB + 8 * MiB, &fl), 0);
	check(&pt);
	assert_int_equal(pt.tables, 0);
	assert_int_equal(pt.leaves[0] + pt.leaves[1] + pt.leaves[2], 0);
	assert_int_equal(sim_in_use, 1);
	/* Removing nothing at all is not an error. */
	assert_int_equal(pt_remove(&pt, 0x1000, PAGE_SIZE, &fl), 0);
	pt_destroy(&pt);
}

static void test_protect_splits_only_when_needed(void **state)
{
	(void)state;
	struct pt pt;
	struct pt_flush fl;
	user_space(&pt);
	pt_flush_init(&fl);
	assert_int_equal(pt_enter(&pt, 2 * MiB, 0x80200000, 4 * MiB, RW, 0, &fl), 0);
	unsigned long tables = pt.tables;
	/* Same permissions on part of a superpage: nothing to split. */
	pt_flush_init(&fl);
	assert_int_equal(pt_protect(&pt, 3 * MiB, PAGE_SIZE, RW, &fl), 0);
	assert_int_equal(pt.tables, tables);
	assert_int_equal(fl.leaves, 0);
	/* Read-only on one page: split one superpage, reduce. */
	pt_flush_init(&fl);
	assert_int_equal(pt_protect(&pt, 3 * MiB, PAGE_SIZE, PTE_R, &fl), 0);
	check(&pt);
	assert_int_equal(pt.tables, tables + 1);
	assert_true(fl.reduced);
	assert_false(fl.raised);
	expect_map(&pt, 3 * MiB, 0x80300000, PTE_R, 0);
	expect_map(&pt, 3 * MiB + PAGE_SIZE, 0x80301000, RW, 0);
	expect_map(&pt, 4 * MiB, 0x80400000, RW, 1);
	uint64_t pte;
	assert_int_equal(pt_extract(&pt, 3 * MiB, 0, &pte, 0), 0);
	assert_false(pte & PTE_D);
	/* Back to read-write: only a raise, no remote fence needed. */
	pt_flush_init(&fl);
	assert_int_equal(pt_protect(&pt, 3 * MiB, PAGE_SIZE, RW, &fl), 0);
	assert_true(fl.raised);
	assert_false(fl.reduced);
	assert_int_equal(pt_extract(&pt, 3 * MiB, 0, &pte, 0), 0);
	assert_true(pte & PTE_D);
	/* R -> X swaps permissions: both. */
	pt_flush_init(&fl);
	assert_int_equal(pt_protect(&pt, 2 * MiB, 4 * MiB, PTE_X, &fl), 0);
	assert_true(fl.raised && fl.reduced);
	check(&pt);
	pt_destroy(&pt);
}

static void test_kernel_space_shares_top_tables(void **state)
{
	(void)state;
	struct pt k, u;
	struct pt_flush fl;
	assert_int_equal(pt_init(&k, &sim, PT_SPACE_KERNEL, 0), 0);
	pt_flush_init(&fl);
	uint64_t kva = 0xffffffe000000000UL;
	assert_int_equal(pt_enter(&k, kva, 0x80000000, PAGE_SIZE, RW, 0, &fl), 0);
	uint64_t pte;
	assert_int_equal(pt_extract(&k, kva, 0, &pte, 0), 0);
	assert_true(pte & PTE_G);
	assert_false(pte & PTE_U);
	assert_int_equal(pt_enter(&k, 0x1000, 0x80000000, PAGE_SIZE, RW, 0, &fl), -MICA_EINVAL);
	/* A user root copies the kernel half... */
	const uint64_t *kroot = sim_kva(0, k.root_pa);
	assert_int_equal(pt_init(&u, &sim, PT_SPACE_USER, kroot), 0);
	const uint64_t *uroot = sim_kva(0, u.root_pa);
	assert_memory_equal(uroot + 256, kroot + 256, 256 * sizeof(uint64_t));
	/* ...and the kernel keeps its level-1 table when the last page goes, so the
	 * copy stays valid. */
	pt_flush_init(&fl);
	assert_int_equal(pt_remove(&k, kva, PAGE_SIZE, &fl), 0);
	check(&k);
	assert_int_equal(k.tables, 1);
	assert_true(kroot[(kva >> 30) & 0x1ff] & PTE_V);
	pt_destroy(&u); /* must not free the kernel's tables */
	check(&k);
	pt_destroy(&k);
}

static void test_checker_catches_broken_tables(void **state)
{
	(void)state;
	struct pt pt;
	struct pt_flush fl;
	char why[128];
	user_space(&pt);
	pt_flush_init(&fl);
	assert_int_equal(pt_enter(&pt, 0x10000, 0x90000000, PAGE_SIZE, RW, 0, &fl), 0);
	uint64_t *root = sim_kva(0, pt.root_pa);
	uint64_t *l1 = sim_kva(0, pte_pa(root[0]));
	uint64_t *l0 = sim_kva(0, pte_pa(l1[0]));
	uint64_t saved = l0[0x10];
	l0[0x10] &= ~PTE_A;
	assert_int_equal(pt_check(&pt, why, sizeof(why)), -MICA_EFAULT);
	assert_non_null(strstr(why, "without A"));
	l0[0x10] = saved & ~PTE_D;
	assert_int_equal(pt_check(&pt, why, sizeof(why)), -MICA_EFAULT);
	l0[0x10] = saved;
	root[0] |= PTE_A;
	assert_int_equal(pt_check(&pt, why, sizeof(why)), -MICA_EFAULT);
	assert_non_null(strstr(why, "table pointer"));
	root[0] &= ~PTE_A;
	check(&pt);
	pt_destroy(&pt);
}

/* ---- allocation failure at every point leaves the tables as they were ---- */

struct snapshot {
	unsigned long tables, leaves[3], in_use;
	uint64_t probe[64];
};

static const uint64_t probe_va[64] = {
	0x1000,         0x200000,       0x3ff000,       0x400000,   0x40000000, 0x40200000,
	0x40201000,     0x7ffff000,     0x80000000,     0xc0000000, 0xc0200000, 0xc03ff000,
	0x100000000,    0x13ffff000,    0x140000000,    0x2000,     0x201000,   0x5ff000,
	0x600000,       0x40400000,     0x40401000,     0xbffff000, 0xc0001000,
};

static void take_snapshot(const struct pt *pt, struct snapshot *s)
{
	s->tables = pt->tables;
	memcpy(s->leaves, pt->leaves, sizeof(s->leaves));
	s->in_use = sim_in_use;
	for (unsigned i = 0; i < 64; i++) {
		uint64_t pa = 0, pte = 0;
		if (pt_extract(pt, probe_va[i], &pa, &pte, 0) == 0)
			s->probe[i] = pa | (pte & 0xff);
		else
			s->probe[i] = 0;
	}
}

static void populate(struct pt *pt)
{
	struct pt_flush fl;
	pt_flush_init(&fl);
	assert_int_equal(pt_enter(pt, 1 * GiB, 2 * GiB, GiB, RW, 0, &fl), 0);
	assert_int_equal(pt_enter(pt, 3 * GiB, 0x80000000, 4 * MiB, RX, 0, &fl), 0);
	assert_int_equal(pt_enter(pt, 0x1000, 0x90000000, 6 * MiB, RW, 0, &fl), 0);
}

typedef int (*pt_op)(struct pt *pt, struct pt_flush *fl);

static int op_enter_big(struct pt *pt, struct pt_flush *fl)
{
	return pt_enter(pt, 4 * GiB + PAGE_SIZE, 0x91000000, 5 * MiB, RW, 0, fl);
}

static int op_remove_middle(struct pt *pt, struct pt_flush *fl)
{
	return pt_remove(pt, 1 * GiB + 2 * MiB + PAGE_SIZE, GiB - 4 * MiB, fl);
}

static int op_remove_two_edges(struct pt *pt, struct pt_flush *fl)
{
	return pt_remove(pt, 1 * GiB + 12 * PAGE_SIZE, 2 * GiB + 1 * MiB, fl);
}

static int op_protect_edges(struct pt *pt, struct pt_flush *fl)
{
	return pt_protect(pt, 1 * GiB + 3 * PAGE_SIZE, GiB + 1 * MiB, PTE_R, fl);
}

static void test_enomem_at_every_point(void **state)
{
	(void)state;
	const pt_op ops[] = {op_enter_big, op_remove_middle, op_remove_two_edges, op_protect_edges};
	for (unsigned o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
		for (long fail_at = 0;; fail_at++) {
			struct pt pt;
			struct pt_flush fl;
			user_space(&pt);
			populate(&pt);
			struct snapshot before, after;
			take_snapshot(&pt, &before);
			sim_fail_after = fail_at;
			pt_flush_init(&fl);
			int err = ops[o](&pt, &fl);
			sim_fail_after = -1;
			check(&pt);
			if (err == 0) {
				pt_destroy(&pt);
				assert_true(fail_at > 0); /* every op here needs a table */
				break;
			}
			assert_int_equal(err, -MICA_ENOMEM);
			take_snapshot(&pt, &after);
			assert_memory_equal(&before, &after, sizeof(before));
			assert_int_equal(fl.leaves, 0);
			pt_destroy(&pt);
		}
	}
}

/* ---- randomised differential test against a per-page model ---- */

/* The model covers 3 GiB + 4 MiB of user space starting 2 MiB below 1 GiB,
 * so ranges cross level-1 and level-2 boundaries. */
#define MODEL_BASE (GiB - 2 * MiB)
#define MODEL_PAGES ((3 * GiB + 4 * MiB) / PAGE_SIZE)

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t pick_len(void)
{
	switch (rng() % 4) {
	case 0:
		return (1 + rng() % 8) * PAGE_SIZE;
	case 1:
		return (1 + rng() % 3) * 2 * MiB;
	case 2:
		return (1 + rng() % 1024) * PAGE_SIZE;
	default:
		return rng() % 5 == 0 ? GiB : (1 + rng() % 600) * 2 * MiB / 3 / PAGE_SIZE * PAGE_SIZE;
	}
}

static uint64_t pick_va(uint64_t len)
{
	uint64_t span = MODEL_PAGES * PAGE_SIZE - len;
	uint64_t va = MODEL_BASE + (rng() % (span / PAGE_SIZE + 1)) * PAGE_SIZE;
	if (rng() % 2) /* favour aligned starts so superpages happen */
		va = (va + 2 * MiB - 1) & ~(2 * MiB - 1);
	if (rng() % 8 == 0)
		va = (va + GiB - 1) & ~(GiB - 1);
	return va + len <= MODEL_BASE + MODEL_PAGES * PAGE_SIZE ? va : MODEL_BASE;
}

static void compare_page(const struct pt *pt, const uint64_t *model, uint64_t page)
{
	uint64_t va = MODEL_BASE + page * PAGE_SIZE, pa, pte;
	int err = pt_extract(pt, va, &pa, &pte, 0);
	if (model[page] == 0) {
		if (err != -MICA_ENOENT)
			fail_msg("va 0x%lx: mapped in pt, not in the model", (unsigned long)va);
	} else {
		if (err != 0)
			fail_msg("va 0x%lx: missing from pt", (unsigned long)va);
		if ((pa | (pte & PTE_RWX)) != model[page])
			fail_msg("va 0x%lx: pt says 0x%lx, model 0x%lx", (unsigned long)va,
				 (unsigned long)(pa | (pte & PTE_RWX)), (unsigned long)model[page]);
	}
}

static void test_random_against_model(void **state)
{
	(void)state;
	const char *seed_env = getenv("MICA_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, 0, 0) : 0x5eed0001;
	printf("# test_random_against_model seed 0x%lx (replay: MICA_SEED=0x%lx)\n",
	       (unsigned long)seed, (unsigned long)seed);
	rng_state = seed | 1;
	uint64_t *model = calloc(MODEL_PAGES, sizeof(uint64_t));
	assert_non_null(model);
	struct pt pt;
	user_space(&pt);
	static const uint64_t prots[] = {PTE_R, RW, RX, PTE_X, PTE_R | PTE_W | PTE_X};
	const unsigned steps = 4000;
	unsigned long entered = 0, clashes = 0, max_super = 0, splits_seen = 0;
	for (unsigned step = 0; step < steps; step++) {
		uint64_t len = pick_len(), va = pick_va(len);
		uint64_t first = (va - MODEL_BASE) / PAGE_SIZE, n = len / PAGE_SIZE;
		struct pt_flush fl;
		pt_flush_init(&fl);
		unsigned what = rng() % 10;
		if (what < 4) {
			uint64_t pa = (2 * GiB + (rng() % 4096) * 2 * MiB) +
				      (rng() % 3 == 0 ? (rng() % 512) * PAGE_SIZE : 0);
			uint64_t prot = prots[rng() % 5];
			bool clash = false;
			for (uint64_t i = 0; i < n && !clash; i++)
				clash = model[first + i] != 0;
			int err = pt_enter(&pt, va, pa, len, prot, rng() % 4 == 0 ? PT_ENTER_NOSUPER : 0,
					   &fl);
			assert_int_equal(err, clash ? -MICA_EEXIST : 0);
			entered += !clash;
			clashes += clash;
			if (!clash)
				for (uint64_t i = 0; i < n; i++)
					model[first + i] = (pa + i * PAGE_SIZE) | prot;
		} else if (what < 7) {
			assert_int_equal(pt_remove(&pt, va, len, &fl), 0);
			bool any = false;
			for (uint64_t i = 0; i < n; i++) {
				any |= model[first + i] != 0;
				model[first + i] = 0;
			}
			assert_int_equal(fl.reduced, any);
		} else {
			uint64_t prot = prots[rng() % 5];
			assert_int_equal(pt_protect(&pt, va, len, prot, &fl), 0);
			for (uint64_t i = 0; i < n; i++)
				if (model[first + i])
					model[first + i] = (model[first + i] & ~PTE_RWX) | prot;
		}
		check(&pt);
		if (pt.leaves[1] + pt.leaves[2] > max_super)
			max_super = pt.leaves[1] + pt.leaves[2];
		splits_seen += what >= 4 && fl.leaves > 0 && pt.leaves[0] > 0;
		/* The edges of the changed range and a few random pages every step... */
		compare_page(&pt, model, first);
		compare_page(&pt, model, first + n - 1);
		if (first > 0)
			compare_page(&pt, model, first - 1);
		if (first + n < MODEL_PAGES)
			compare_page(&pt, model, first + n);
		for (int i = 0; i < 16; i++)
			compare_page(&pt, model, rng() % MODEL_PAGES);
		/* ...and everything now and then. */
		if (step % 500 == 499)
			for (uint64_t p = 0; p < MODEL_PAGES; p++)
				compare_page(&pt, model, p);
	}
	printf("# %lu enters, %lu refused overlaps, up to %lu superpages, %lu edits with 4 KiB leaves\n",
	       entered, clashes, max_super, splits_seen);
	/* A run that never made a superpage or never clashed tested too little. */
	assert_true(entered > 500 && clashes > 100 && max_super > 10);
	struct pt_flush fl;
	pt_flush_init(&fl);
	assert_int_equal(pt_remove(&pt, MODEL_BASE, MODEL_PAGES * PAGE_SIZE, &fl), 0);
	check(&pt);
	assert_int_equal(pt.tables, 0);
	pt_destroy(&pt);
	free(model);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enter_small_page_sets_a_and_d, sim_setup,
						sim_teardown),
		cmocka_unit_test_setup_teardown(test_superpage_choice, sim_setup, sim_teardown),
		cmocka_unit_test_setup_teardown(test_enter_over_mapping_fails_cleanly, sim_setup,
						sim_teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, sim_setup, sim_teardown),
		cmocka_unit_test_setup_teardown(test_remove_splits_and_frees_tables, sim_setup,
						sim_teardown),
		cmocka_unit_test_setup_teardown(test_protect_splits_only_when_needed, sim_setup,
						sim_teardown),
		cmocka_unit_test_setup_teardown(test_kernel_space_shares_top_tables, sim_setup,
						sim_teardown),
		cmocka_unit_test_setup_teardown(test_checker_catches_broken_tables, sim_setup,
						sim_teardown),
		cmocka_unit_test_setup_teardown(test_enomem_at_every_point, sim_setup, sim_teardown),
		cmocka_unit_test_setup_teardown(test_random_against_model, sim_setup, sim_teardown),
	};
	return cmocka_run_group_tests_name("pt", tests, NULL, NULL);
}
