/* Allocation-failure injection for mm/vm_map.
 *
 * Every operation is run with the entry allocator failing at its first, second, ...
 * allocation until it completes without needing the failing one. Each failed attempt
 * must return -MICA_ENOMEM and leave the map bit-for-bit as it was (entries, tree shape,
 * hint, counters), the checker happy and no entry leaked; the harness checks all that.
 * The final, successful attempt is then compared with the reference model as usual. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "mica/errno.h"
#include "mica/param.h"
#include "mm/vm_map.h"
#include "tests/host/lib/vm_map_ref.h"

#define P   PAGE_SIZE
#define MIN 0x100000UL
#define RW  (VM_PROT_READ | VM_PROT_WRITE)

/* Runs op with failures at every allocation point, then lets it through. Returns the
 * number of failed attempts. */
static unsigned sweep(struct vmref_harness *h, const struct vmref_op *op, bool fail_all)
{
	struct vmref_op o = *op;
	char buf[256];
	long k;

	h->env.fail_all = fail_all;
	for (k = 0;; k++) {
		uint64_t injected = h->injected;

		o.fail_in = k;
		if (vmref_h_step(h, &o) != 0) {
			vmref_op_format(&o, buf, sizeof(buf));
			fail_msg("%s\n  op: %s", h->msg, buf);
		}
		if (h->injected == injected)
			break;
		if (k > 8)
			fail_msg("an operation needed more than 8 entries");
	}
	h->env.fail_all = false;
	return (unsigned)k;
}

static struct vmref_op mk(enum vmref_kind kind, uintptr_t addr, size_t len)
{
	struct vmref_op op = {.kind = kind, .addr = addr, .len = len, .obj = -1, .fail_in = -1};

	return op;
}

static struct vmref_op enter(uintptr_t addr, size_t len, unsigned place, unsigned prot, int obj,
                             uint64_t off)
{
	struct vmref_op op = mk(VMREF_ENTER, addr, len);

	op.place = place;
	op.prot = prot;
	op.max_prot = VM_PROT_ALL;
	op.obj = obj;
	op.offset = off;
	return op;
}

static void apply(struct vmref_harness *h, struct vmref_op op)
{
	if (vmref_h_step(h, &op) != 0)
		fail_msg("setup step: %s", h->msg);
}

/* Hand-picked cases: the largest number of entries each operation can need. */
static void test_worst_cases(void **state)
{
	struct vmref_harness *h = calloc(1, sizeof(*h));
	struct vmref_op op;
	unsigned n;
	int all;

	assert_non_null(h);
	for (all = 0; all < 2; all++) {
		assert_int_equal(vmref_h_init(h, MIN, 256), 0);
		/* an entry with a backing object, a hole, and a second entry */
		apply(h, enter(MIN, 16 * P, VM_PLACE_NOREPLACE, RW, 1, 0));
		apply(h, enter(MIN + 20 * P, 8 * P, VM_PLACE_NOREPLACE, VM_PROT_READ, -1, 0));

		/* fresh entry somewhere: one allocation */
		n = sweep(h,
		          &(struct vmref_op){.kind = VMREF_ENTER,
		                             .len = 2 * P,
		                             .prot = VM_PROT_EXEC,
		                             .max_prot = VM_PROT_ALL,
		                             .obj = -1},
		          all);
		assert_int_equal(n, 1);
		/* FIXED into the middle of an entry: the tail and the new entry */
		n = sweep(h,
		          &(struct vmref_op){.kind = VMREF_ENTER,
		                             .addr = MIN + 4 * P,
		                             .len = 2 * P,
		                             .place = VM_PLACE_FIXED,
		                             .prot = VM_PROT_READ,
		                             .max_prot = VM_PROT_ALL,
		                             .obj = -1},
		          all);
		assert_int_equal(n, 2);
		/* protect inside one entry: two splits */
		op = mk(VMREF_PROTECT, MIN + 8 * P, 2 * P);
		op.prot = VM_PROT_READ;
		assert_int_equal(sweep(h, &op, all), 2);
		/* protect cutting into two entries */
		op = mk(VMREF_PROTECT, MIN + 11 * P, 11 * P);
		assert_int_equal(sweep(h, &op, all), 0); /* hole at [16P, 20P) */
		op = mk(VMREF_PROTECT, MIN + 21 * P, 2 * P);
		op.prot = VM_PROT_NONE;
		assert_int_equal(sweep(h, &op, all), 2);
		/* wire and unwire in the middle */
		assert_int_equal(
		    sweep(h,
		          &(struct vmref_op){
		              .kind = VMREF_WIRE, .addr = MIN + 12 * P, .len = 2 * P, .obj = -1},
		          all),
		    2);
		assert_int_equal(
		    sweep(h,
		          &(struct vmref_op){
		              .kind = VMREF_UNWIRE, .addr = MIN + 12 * P + P, .len = P, .obj = -1},
		          all),
		    1);
		/* remove in the middle: one */
		assert_int_equal(
		    sweep(h,
		          &(struct vmref_op){
		              .kind = VMREF_REMOVE, .addr = MIN + P, .len = P, .obj = -1},
		          all),
		    1);
		/* insert that merges on both sides: none */
		apply(h, enter(MIN + 40 * P, P, VM_PLACE_NOREPLACE, RW, -1, 0));
		apply(h, enter(MIN + 42 * P, P, VM_PLACE_NOREPLACE, RW, -1, 0));
		assert_int_equal(sweep(h,
		                       &(struct vmref_op){.kind = VMREF_ENTER,
		                                          .addr = MIN + 41 * P,
		                                          .len = P,
		                                          .place = VM_PLACE_NOREPLACE,
		                                          .prot = RW,
		                                          .max_prot = VM_PROT_ALL,
		                                          .obj = -1},
		                       all),
		                 0);
		vmref_h_fini(h);
	}
	free(h);
}

static uint64_t seed_for(void)
{
	const char *s = getenv("MICA_SEED");

	if (s != NULL && *s != '\0')
		return strtoull(s, NULL, 0);
	return ((uint64_t)time(NULL) << 16) ^ (uint64_t)clock();
}

/* Random maps, random operations, each swept over every failure point. */
static void test_random_sweeps(void **state)
{
	struct vmref_harness *h = calloc(1, sizeof(*h));
	uint64_t seed = seed_for(), rng = seed;
	unsigned long i, failed_attempts = 0;
	struct vmref_op op;
	int round;

	assert_non_null(h);
	printf("# failinj: seed %#llx (replay: MICA_SEED=%#llx)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	for (round = 0; round < 6; round++) {
		assert_int_equal(vmref_h_init(h, round % 2 ? MIN : (uintptr_t)0 - 257 * P, 256), 0);
		for (i = 0; i < 40000; i++) {
			vmref_op_random(&op, &rng, &h->ref);
			failed_attempts += sweep(h, &op, (i + round) % 3 == 0);
		}
		vmref_h_fini(h);
	}
	printf("# failinj: 240000 operations, %lu failed attempts checked\n", failed_attempts);
	assert_true(failed_attempts > 10000);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_worst_cases),
	    cmocka_unit_test(test_random_sweeps),
	};

	return cmocka_run_group_tests_name("vm_map_failinj", tests, NULL, NULL);
}
