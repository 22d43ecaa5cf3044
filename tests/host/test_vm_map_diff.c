/* Randomised differential test: vm_map against the per-page reference model.
 *
 * Each configuration runs a random operation sequence on both and compares maps, model,
 * removal callbacks, reference counts and the invariant checker after every step.
 * Seeds are printed; MICA_SEED=<n> replays one, MICA_DIFF_SCALE=<k> multiplies the
 * operation counts (k/100). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "mica/param.h"
#include "mm/vm_map.h"
#include "tests/host/lib/vm_map_ref.h"

struct diff_config {
	const char *name;
	uintptr_t min;
	size_t npages;
	unsigned long ops;
	unsigned salt;
};

static uint64_t seed_for(unsigned salt)
{
	const char *s = getenv("MICA_SEED");

	if (s != NULL && *s != '\0')
		return strtoull(s, NULL, 0);
	return ((uint64_t)time(NULL) << 16) ^ ((uint64_t)clock() << 8) ^ salt;
}

static unsigned long scaled(unsigned long ops)
{
	const char *s = getenv("MICA_DIFF_SCALE");

	return s != NULL && *s != '\0' ? ops * strtoul(s, NULL, 0) / 100 : ops;
}

static void run_config(const struct diff_config *c)
{
	struct vmref_harness *h = calloc(1, sizeof(*h));
	struct vmref_op op;
	uint64_t seed = seed_for(c->salt), rng = seed;
	unsigned long i, n = scaled(c->ops), clears = 0;
	char buf[256];

	assert_non_null(h);
	printf("# %s: seed %#llx (replay: MICA_SEED=%#llx), %lu ops over %zu pages\n", c->name,
	       (unsigned long long)seed, (unsigned long long)seed, n, c->npages);
	assert_int_equal(vmref_h_init(h, c->min, c->npages), 0);
	/* The harness runs the checker after every step itself. */
	h->map.debug_check = false;
	for (i = 0; i < n; i++) {
		/* Now and then start over, so that both sparse and crowded maps are seen. */
		if (vmref_rand(&rng) % 20000 == 0) {
			vm_map_clear(&h->map, NULL, NULL);
			vmref_remove(&h->ref, h->ref.min, h->ref.npages * PAGE_SIZE);
			clears++;
		}
		vmref_op_random(&op, &rng, &h->ref);
		if (vmref_h_step(h, &op) != 0) {
			vmref_op_format(&op, buf, sizeof(buf));
			print_error("%s: seed %#llx step %lu: %s\n  op: %s\n", c->name,
			            (unsigned long long)seed, i, h->msg, buf);
			fail();
		}
	}
	printf("# %s: %lu ops, %llu rejected, %lu resets, %zu entries at the end\n", c->name, n,
	       (unsigned long long)h->errors, clears, h->map.nentries);
	vmref_h_fini(h);
	free(h);
}

/* Small: a crowded map where merges, splits and ENOMEM are frequent. */
static void test_diff_small(void **state)
{
	static const struct diff_config c = {"small", 0x10000, 128, 350000, 1};

	run_config(&c);
}

/* Medium: room for many entries and 2 MiB alignment. */
static void test_diff_medium(void **state)
{
	static const struct diff_config c = {"medium", 0x200000, 1024, 350000, 2};

	run_config(&c);
}

/* At the top of the address space: every addr + len overflow case is reachable. */
static void test_diff_top(void **state)
{
	static const struct diff_config c = {"top", (uintptr_t)0 - 513 * 4096, 512, 250000, 3};

	run_config(&c);
}

/* Large: a few thousand pages, fewer steps since each comparison costs more. */
static void test_diff_large(void **state)
{
	static const struct diff_config c = {"large", 0x40000000, 4096, 80000, 4};

	run_config(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_diff_small),
	    cmocka_unit_test(test_diff_medium),
	    cmocka_unit_test(test_diff_top),
	    cmocka_unit_test(test_diff_large),
	};

	return cmocka_run_group_tests_name("vm_map_diff", tests, NULL, NULL);
}
