/* Differential test of mm/vmem against a reference bitmap (tests/host/lib/vmem_ref.c).
 *
 * At least a million random operations per run, spread over four families of
 * arenas; every step is checked by vmem_check() and compared with the reference: same
 * allocations, results that honour align/phase/nocross/min/max, -EINVAL exactly for
 * invalid requests, -ENOMEM only when the reference finds no room (for both INSTANTFIT
 * and BESTFIT) or the tag supply ran out, and every tag back in the pool at the end.
 *
 * The seed is printed; MICA_SEED=<n> replays a run. MICA_VMEM_DIFF_OPS overrides the
 * total number of operations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/host/lib/vmem_ref.h"

#define DEFAULT_TOTAL_OPS 1000000ull
#define OPS_PER_ARENA     25000ull

enum family { PLAIN, IMPORTING, TIGHT_TAGS, HUGE_QUANTUM, NFAMILIES };

static uint64_t run_seed;
static uint64_t ops_per_family;
static uint64_t grand_total;

static void configure(enum family fam, uint64_t *rng, struct vmem_ref_config *cfg)
{
	unsigned sel = (unsigned)vmem_ref_rand(rng);

	vmem_ref_pick_config(sel, cfg);
	switch (fam) {
	case PLAIN:
		cfg->import = false;
		cfg->initial_tags = cfg->refill_chunk = cfg->tag_budget = 0;
		if (cfg->quantum == (1ull << 21))
			cfg->quantum = 4096;
		cfg->base = 0x40000000ull;
		break;
	case IMPORTING:
		cfg->import = true;
		cfg->import_min_units = 4 << (sel % 3);
		cfg->initial_tags = cfg->refill_chunk = cfg->tag_budget = 0;
		if (cfg->quantum == (1ull << 21))
			cfg->quantum = 16;
		cfg->base = 0x40000000ull;
		break;
	case TIGHT_TAGS:
		cfg->initial_tags = 12;
		cfg->refill_chunk = sel & 1 ? 6 : 0;
		cfg->tag_budget = 40 + (sel >> 1) % 64;
		break;
	default:
		cfg->quantum = 1ull << 21;
		cfg->base = 0 - (uint64_t)(cfg->units + 1) * cfg->quantum;
		cfg->initial_tags = cfg->refill_chunk = cfg->tag_budget = 0;
		break;
	}
}

static void run_family(enum family fam)
{
	uint64_t rng = run_seed ^ (0x1000193ull * (fam + 1));
	uint64_t done = 0;
	struct vmem_ref_counts sum = {0};

	while (done < ops_per_family) {
		struct vmem_ref_config cfg;
		uint64_t n =
		    ops_per_family - done < OPS_PER_ARENA ? ops_per_family - done : OPS_PER_ARENA;
		const struct vmem_ref_counts *c;

		configure(fam, &rng, &cfg);
		vmem_ref_setup(&cfg);
		for (uint64_t i = 0; i < n; i++) {
			struct vmem_ref_op op;

			vmem_ref_random_op(&rng, &op);
			vmem_ref_step(&op);
		}
		c = vmem_ref_counts();
		sum.ops += c->ops;
		sum.alloc_ok += c->alloc_ok;
		sum.alloc_nomem += c->alloc_nomem;
		sum.alloc_einval += c->alloc_einval;
		sum.frees += c->frees;
		sum.bad_frees += c->bad_frees;
		sum.tag_failures += c->tag_failures;
		sum.spans_added += c->spans_added;
		vmem_ref_teardown();
		done += n;
	}
	grand_total += sum.ops;
	printf("# family %d: %llu ops, %llu allocs, %llu -ENOMEM (%llu for tags), %llu -EINVAL, "
	       "%llu frees, %llu bad frees, %llu spans added\n",
	       fam, (unsigned long long)sum.ops, (unsigned long long)sum.alloc_ok,
	       (unsigned long long)sum.alloc_nomem, (unsigned long long)sum.tag_failures,
	       (unsigned long long)sum.alloc_einval, (unsigned long long)sum.frees,
	       (unsigned long long)sum.bad_frees, (unsigned long long)sum.spans_added);
	/* The mix must reach the interesting outcomes, or the test proves little. */
	assert_true(sum.alloc_ok > sum.ops / 10);
	assert_true(sum.alloc_nomem > 0);
	assert_true(sum.alloc_einval > 0);
	assert_true(sum.bad_frees > 0);
	if (fam == TIGHT_TAGS)
		assert_true(sum.tag_failures > 0);
}

static void test_plain(void **state)
{
	(void)state;
	run_family(PLAIN);
}

static void test_importing(void **state)
{
	(void)state;
	run_family(IMPORTING);
}

static void test_tight_tags(void **state)
{
	(void)state;
	run_family(TIGHT_TAGS);
}

static void test_huge_quantum_top_of_space(void **state)
{
	(void)state;
	run_family(HUGE_QUANTUM);
}

static void test_total(void **state)
{
	(void)state;
	printf("# %llu operations in all\n", (unsigned long long)grand_total);
	assert_true(grand_total >= ops_per_family * NFAMILIES);
}

int main(void)
{
	const char *env = getenv("MICA_VMEM_DIFF_OPS");
	uint64_t total = env != NULL ? strtoull(env, NULL, 0) : DEFAULT_TOTAL_OPS;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),      cmocka_unit_test(test_importing),
	    cmocka_unit_test(test_tight_tags), cmocka_unit_test(test_huge_quantum_top_of_space),
	    cmocka_unit_test(test_total),
	};

	run_seed = vmem_ref_seed("test_vmem_diff");
	ops_per_family = (total + NFAMILIES - 1) / NFAMILIES;
	return cmocka_run_group_tests_name("vmem_diff", tests, NULL, NULL);
}
