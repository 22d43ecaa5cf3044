/* The memory server's logic (server/mm_core.c) over a fake kernel (tests/host/lib/
 * mm_fake_env.c): the request decoder, every operation and the pager, failure injection
 * at every page allocation, and a randomised differential test against a per-page model.
 *
 * After every request the fake is cross-checked with the client (mmfake_check_client):
 * translations exactly for the resident pages of accessible entries, frames in use equal
 * to resident pages, no call the kernel would refuse. A request that fails must leave
 * entries, translations, resident pages and the frame count exactly as they were.
 *
 * The differential test prints its seed; MICA_SEED=<n> replays it and MICA_DIFF_SCALE=<k>
 * multiplies its operation count by k/100. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mica/errno.h"
#include "mica/mm_proto.h"
#include "mica/param.h"
#include "mica/syscall.h"
#include "mm/vm_map.h"
#include "server/mm_core.h"
#include "tests/host/lib/mm_fake_env.h"
#include "tests/host/lib/vm_map_ref.h"

#define P       PAGE_SIZE
#define R       MM_PROT_READ
#define W       MM_PROT_WRITE
#define X       MM_PROT_EXEC
#define RW      (R | W)
#define TASK    0x2a
#define NFRAMES 2048
#define BASE    0x10000000UL /* where the hand-written tests put things */
#define GIB     (1UL << 30)

#define RQ_FAULT 0x1000 /* not a protocol op: mr[0] address, mr[1] access */

/* Every operation mm_decode knows. */
static const unsigned all_ops[] = {MM_OP_MAP,    MM_OP_UNMAP, MM_OP_PROTECT, MM_OP_WIRE,
                                   MM_OP_UNWIRE, MM_OP_QUERY, MM_OP_INFO,    MM_OP_SHARE};
#define NOPS (sizeof(all_ops) / sizeof(all_ops[0]))

static const struct mm_quota test_quota = {.entries = 64, .resident = 512, .wired = 32};

struct fx {
	struct mmfake f;
	struct mm_client c;
	uint64_t out[64];
	unsigned nout;
	const char *why; /* mm_fault's reason */
	char msg[512];
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	if (x == NULL || mmfake_init(&x->f, TASK, NFRAMES) != 0 ||
	    mm_client_init(&x->c, 1, TASK, &test_quota) != 0)
		return -1;
	*state = x;
	return 0;
}

/* Tearing down is itself a test: every frame comes back, no translation is left. */
static int teardown(void **state)
{
	struct fx *x = *state;
	int r = 0;

	mm_client_destroy(&x->c, &x->f.env);
	if (mmfake_frames_used(&x->f) != 0 || x->f.pt_used != 0 || x->f.misuse != 0) {
		print_error("after destroy: %zu frames, %zu translations, %u misuse (%s)\n",
		            mmfake_frames_used(&x->f), x->f.pt_used, x->f.misuse, x->f.why);
		r = -1;
	}
	mmfake_fini(&x->f);
	free(x);
	return r;
}

static void consistent(struct fx *x)
{
	if (mmfake_check_client(&x->f, &x->c, x->msg, sizeof(x->msg)) != 0)
		fail_msg("inconsistent: %s", x->msg);
}

static long run(struct fx *x, unsigned op, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	uint64_t mr[4] = {a, b, c, d};
	struct mm_request req;
	long r;

	if (op == RQ_FAULT) {
		x->why = NULL;
		r = mm_fault(&x->c, &x->f.env, a, (unsigned)b, &x->why);
		if (r != 0 && x->why == NULL)
			fail_msg("mm_fault failed with %ld and gave no reason", r);
		consistent(x);
		return r;
	}
	r = mm_decode(ipc_tag(op, 4), mr, &req);
	if (r != 0)
		return r;
	memset(x->out, 0xa5, sizeof(x->out));
	r = mm_handle(&x->c, &x->f.env, &req, x->out, &x->nout);
	consistent(x);
	return r;
}

static long map(struct fx *x, uint64_t hint, uint64_t len, unsigned prot, unsigned flags,
                uint64_t align)
{
	return run(x, MM_OP_MAP, hint, len, prot | (uint64_t)flags << 8, align);
}

static long unmap(struct fx *x, uint64_t a, uint64_t len)
{
	return run(x, MM_OP_UNMAP, a, len, 0, 0);
}

static long protect(struct fx *x, uint64_t a, uint64_t len, unsigned prot)
{
	return run(x, MM_OP_PROTECT, a, len, prot, 0);
}

static long wire(struct fx *x, uint64_t a, uint64_t len, unsigned report)
{
	return run(x, MM_OP_WIRE, a, len, report, 0);
}

static long unwire(struct fx *x, uint64_t a, uint64_t len)
{
	return run(x, MM_OP_UNWIRE, a, len, 0, 0);
}

static long query(struct fx *x, uint64_t a)
{
	return run(x, MM_OP_QUERY, a, 0, 0, 0);
}

static long fault(struct fx *x, uint64_t a, unsigned access)
{
	return run(x, RQ_FAULT, a, access, 0, 0);
}

/* The physical page behind va, which must be mapped with prot. */
static uint64_t pte(struct fx *x, uint64_t va, unsigned prot)
{
	uint64_t pa;
	unsigned p;

	if (!mmfake_lookup(&x->f, va, &pa, &p))
		fail_msg("no translation at %#llx", (unsigned long long)va);
	if (p != prot)
		fail_msg("translation at %#llx has prot %#x, not %#x", (unsigned long long)va, p,
		         prot);
	return pa;
}

static bool mapped(struct fx *x, uint64_t va)
{
	return mmfake_lookup(&x->f, va, NULL, NULL);
}

/* Runs a request that must fail with `expected` and change nothing at all. */
static void expect_unchanged(struct fx *x, long expected, unsigned op, uint64_t a, uint64_t b,
                             uint64_t c, uint64_t d)
{
	struct mmfake_snap s;
	long r;

	mmfake_snap_take(&s, &x->f, &x->c);
	r = run(x, op, a, b, c, d);
	if (r != expected) {
		mmfake_snap_free(&s);
		fail_msg("op %#x(%#llx, %#llx, %#llx, %#llx) returned %ld, expected %ld", op,
		         (unsigned long long)a, (unsigned long long)b, (unsigned long long)c,
		         (unsigned long long)d, r, expected);
	}
	if (!mmfake_snap_equal(&s, &x->f, &x->c, x->msg, sizeof(x->msg))) {
		mmfake_snap_free(&s);
		fail_msg("op %#x failed with %ld but changed state: %s", op, r, x->msg);
	}
	mmfake_snap_free(&s);
}

/* Runs a request with page_alloc failing at its first, second, ... call until it gets
 * through without meeting the failure. Each failed attempt must return -ENOMEM and leave
 * everything as it was. Returns the result of the final attempt; *points receives the
 * number of allocations it made. */
static long sweep(struct fx *x, bool fail_all, unsigned op, uint64_t a, uint64_t b, uint64_t c,
                  uint64_t d, unsigned *points)
{
	for (long k = 0;; k++) {
		struct mmfake_snap s;
		uint64_t failures = x->f.failures;
		long r;

		mmfake_snap_take(&s, &x->f, &x->c);
		x->f.fail_in = k;
		x->f.fail_all = fail_all;
		r = run(x, op, a, b, c, d);
		x->f.fail_in = -1;
		x->f.fail_all = false;
		if (x->f.failures == failures) {
			mmfake_snap_free(&s);
			*points = (unsigned)k;
			return r;
		}
		if (r != -MICA_ENOMEM) {
			mmfake_snap_free(&s);
			fail_msg("op %#x with allocation %ld failing returned %ld", op, k, r);
		}
		if (!mmfake_snap_equal(&s, &x->f, &x->c, x->msg, sizeof(x->msg))) {
			mmfake_snap_free(&s);
			fail_msg("op %#x with allocation %ld failing changed state: %s", op, k,
			         x->msg);
		}
		mmfake_snap_free(&s);
	}
}

/* ---- mm_decode -------------------------------------------------------------------- */

static int dec(unsigned op, uint64_t a, uint64_t b, uint64_t c, uint64_t d, struct mm_request *r)
{
	uint64_t mr[4] = {a, b, c, d};

	return mm_decode(ipc_tag(op, 4), mr, r);
}

static void test_decode_ops(void **state)
{
	struct mm_request r;

	(void)state;
	assert_int_equal(
	    dec(MM_OP_MAP, BASE, 3 * P, RW | (uint64_t)MM_MAP_POPULATE << 8, 2 * P, &r), 0);
	assert_int_equal(r.op, MM_OP_MAP);
	assert_int_equal(r.addr, BASE);
	assert_int_equal(r.len, 3 * P);
	assert_int_equal(r.prot, RW);
	assert_int_equal(r.flags, MM_MAP_POPULATE);
	assert_int_equal(r.align, 2 * P);

	assert_int_equal(dec(MM_OP_UNMAP, BASE, P, 0, 0, &r), 0);
	assert_int_equal(r.op, MM_OP_UNMAP);
	assert_int_equal(r.addr, BASE);
	assert_int_equal(r.len, P);

	assert_int_equal(dec(MM_OP_PROTECT, BASE, 2 * P, R | X, 0, &r), 0);
	assert_int_equal(r.op, MM_OP_PROTECT);
	assert_int_equal(r.prot, R | X);
	assert_int_equal(r.len, 2 * P);

	assert_int_equal(dec(MM_OP_WIRE, BASE, 4 * P, MM_WIRE_REPORT, 0, &r), 0);
	assert_int_equal(r.op, MM_OP_WIRE);
	assert_int_equal(r.report, MM_WIRE_REPORT);
	assert_int_equal(dec(MM_OP_WIRE, BASE, 4 * P, 0, 0, &r), 0);
	assert_int_equal(r.report, 0);

	assert_int_equal(dec(MM_OP_UNWIRE, BASE, 4 * P, 0, 0, &r), 0);
	assert_int_equal(r.op, MM_OP_UNWIRE);
	assert_int_equal(r.len, 4 * P);

	/* QUERY takes any address inside user space, aligned or not. */
	assert_int_equal(dec(MM_OP_QUERY, BASE + 123, 0, 0, 0, &r), 0);
	assert_int_equal(r.op, MM_OP_QUERY);
	assert_int_equal(r.addr, BASE + 123);
	assert_int_equal(dec(MM_OP_QUERY, USER_VA_MIN, 0, 0, 0, &r), 0);
	assert_int_equal(dec(MM_OP_QUERY, USER_VA_MAX - 1, 0, 0, 0, &r), 0);

	assert_int_equal(dec(MM_OP_INFO, 0, 0, 0, 0, &r), 0);
	assert_int_equal(r.op, MM_OP_INFO);

	/* The tag's word count does not matter; only the label and the capability bit. */
	uint64_t mr[4] = {BASE, P, 0, 0};
	assert_int_equal(mm_decode(ipc_tag(MM_OP_UNMAP, 0), mr, &r), 0);
	assert_int_equal(mm_decode(ipc_tag(MM_OP_UNMAP, 64), mr, &r), 0);
}

static void test_decode_map_rounds_length(void **state)
{
	struct mm_request r;
	static const uint64_t cases[][2] = {
	    {1, P},         {P - 1, P},         {P, P},
	    {P + 1, 2 * P}, {5 * P - 7, 5 * P}, {USER_VA_MAX - P + 1, USER_VA_MAX},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(dec(MM_OP_MAP, 0, cases[i][0], RW, 0, &r), 0);
		assert_int_equal(r.len, cases[i][1]);
	}
	/* The rounded length is what the fixed range checks see. */
	assert_int_equal(dec(MM_OP_MAP, USER_VA_MAX - P, 1, R | (uint64_t)MM_MAP_FIXED << 8, 0, &r),
	                 0);
	assert_int_equal(r.len, P);
	assert_int_equal(
	    dec(MM_OP_MAP, USER_VA_MAX - P, P + 1, R | (uint64_t)MM_MAP_FIXED << 8, 0, &r),
	    -MICA_EFAULT);
}

/* The range checks every range operation shares, MAP with a fixed flag included. */
static void test_decode_range_errors(void **state)
{
	static const uint64_t fixed[] = {MM_MAP_FIXED, MM_MAP_FIXED_NOREPLACE};
	struct mm_request r;
	struct {
		uint64_t addr, len;
		int err;
	} cases[] = {
	    {BASE + 1, P, -MICA_EINVAL},
	    {BASE + P / 2, P, -MICA_EINVAL},
	    {BASE, 0, -MICA_EINVAL},
	    {BASE + 1, 0, -MICA_EINVAL},
	    /* Wrapping is found before the range is compared with user space. */
	    {~(uint64_t)PAGE_MASK, P, -MICA_EOVERFLOW},
	    {~(uint64_t)PAGE_MASK, 2 * P, -MICA_EOVERFLOW},
	    {USER_VA_MIN, ~(uint64_t)0, -MICA_EOVERFLOW},
	    /* Outside user space. */
	    {0, P, -MICA_EFAULT},
	    {USER_VA_MIN - P, 2 * P, -MICA_EFAULT},
	    {USER_VA_MAX, P, -MICA_EFAULT},
	    {USER_VA_MAX - P, 2 * P, -MICA_EFAULT},
	    {~(uint64_t)PAGE_MASK - P, P, -MICA_EFAULT},
	    /* The edges themselves are fine. */
	    {USER_VA_MIN, P, 0},
	    {USER_VA_MAX - P, P, 0},
	    {USER_VA_MIN, USER_VA_MAX - USER_VA_MIN, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t a = cases[i].addr, l = cases[i].len;
		int e = cases[i].err;

		assert_int_equal(dec(MM_OP_UNMAP, a, l, 0, 0, &r), e);
		assert_int_equal(dec(MM_OP_UNWIRE, a, l, 0, 0, &r), e);
		assert_int_equal(dec(MM_OP_PROTECT, a, l, R, 0, &r), e);
		assert_int_equal(dec(MM_OP_WIRE, a, l, 1, 0, &r), e);
		for (size_t k = 0; k < 2; k++) {
			int me = e;

			/* MAP refuses a zero length as such and more than user space as
			 * -ENOMEM, before it looks at the address. */
			if (l == 0)
				me = -MICA_EINVAL;
			else if (l > USER_VA_MAX)
				me = -MICA_ENOMEM;
			assert_int_equal(dec(MM_OP_MAP, a, l, R | fixed[k] << 8, 0, &r), me);
		}
	}
	/* Without a fixed flag the hint only has to be page aligned. */
	assert_int_equal(dec(MM_OP_MAP, BASE + 1, P, R, 0, &r), -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_MAP, 0, P, R, 0, &r), 0);
	assert_int_equal(dec(MM_OP_MAP, USER_VA_MAX, P, R, 0, &r), 0);
	assert_int_equal(dec(MM_OP_MAP, ~(uint64_t)PAGE_MASK, P, R, 0, &r), 0);
}

static void test_decode_map_errors(void **state)
{
	struct mm_request r;
	const uint64_t fx = (uint64_t)MM_MAP_FIXED << 8;

	(void)state;
	/* Protection and flag bits. */
	assert_int_equal(dec(MM_OP_MAP, 0, P, 0x8, 0, &r), -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_MAP, 0, P, 0x80, 0, &r), -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_MAP, 0, P, RW | 0x10, 0, &r), -MICA_EINVAL);
	for (unsigned bit = 5; bit < 56; bit++)
		assert_int_equal(dec(MM_OP_MAP, 0, P, R | (uint64_t)1 << (8 + bit), 0, &r),
		                 -MICA_EINVAL);
	for (unsigned prot = 0; prot < 8; prot++)
		assert_int_equal(dec(MM_OP_MAP, 0, P, prot, 0, &r), 0);
	assert_int_equal(dec(MM_OP_MAP, 0, P, R | (uint64_t)MM_MAP_FLAGS_ALL << 8, 0, &r),
	                 -MICA_EINVAL); /* includes both fixed flags and GUARD */
	assert_int_equal(dec(MM_OP_MAP, BASE, P,
	                     R | (uint64_t)(MM_MAP_FIXED | MM_MAP_FIXED_NOREPLACE) << 8, 0, &r),
	                 -MICA_EINVAL);
	/* GUARD: no protection, nothing to populate or wire. */
	for (unsigned prot = 1; prot < 8; prot++)
		assert_int_equal(dec(MM_OP_MAP, 0, P, prot | (uint64_t)MM_MAP_GUARD << 8, 0, &r),
		                 -MICA_EINVAL);
	assert_int_equal(
	    dec(MM_OP_MAP, 0, P, (uint64_t)(MM_MAP_GUARD | MM_MAP_POPULATE) << 8, 0, &r),
	    -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_MAP, 0, P, (uint64_t)(MM_MAP_GUARD | MM_MAP_WIRE) << 8, 0, &r),
	                 -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_MAP, 0, P, (uint64_t)MM_MAP_GUARD << 8, 0, &r), 0);
	assert_int_equal(r.flags, MM_MAP_GUARD);
	assert_int_equal(
	    dec(MM_OP_MAP, 0, P, RW | (uint64_t)(MM_MAP_POPULATE | MM_MAP_WIRE) << 8, 0, &r), 0);

	/* Alignment: 0 or a power of two from the page size to 1 GiB. */
	static const uint64_t bad_align[] = {1,         2,       P / 2,   P - 1,     P + 1,
	                                     3 * P,     GIB - P, 2 * GIB, 1UL << 40, ~(uint64_t)0,
	                                     1UL << 63, P * 5};
	for (size_t i = 0; i < sizeof(bad_align) / sizeof(bad_align[0]); i++)
		assert_int_equal(dec(MM_OP_MAP, 0, P, R, bad_align[i], &r), -MICA_EINVAL);
	for (uint64_t a = P; a <= GIB; a <<= 1) {
		assert_int_equal(dec(MM_OP_MAP, 0, P, R, a, &r), 0);
		assert_int_equal(r.align, a);
		/* A fixed address must be aligned to it. */
		assert_int_equal(dec(MM_OP_MAP, GIB, P, R | fx, a, &r), 0);
		if (a > P)
			assert_int_equal(dec(MM_OP_MAP, GIB + a / 2, P, R | fx, a, &r),
			                 -MICA_EINVAL);
	}
	assert_int_equal(dec(MM_OP_MAP, 0, P, R, 0, &r), 0);
	assert_int_equal(r.align, 0);

	/* Length. */
	assert_int_equal(dec(MM_OP_MAP, 0, 0, R, 0, &r), -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_MAP, 0, USER_VA_MAX + 1, R, 0, &r), -MICA_ENOMEM);
	assert_int_equal(dec(MM_OP_MAP, 0, ~(uint64_t)0, R, 0, &r), -MICA_ENOMEM);
	assert_int_equal(dec(MM_OP_MAP, 0, ~(uint64_t)PAGE_MASK, R, 0, &r), -MICA_ENOMEM);
	assert_int_equal(dec(MM_OP_MAP, 0, USER_VA_MAX, R, 0, &r), 0);
	assert_int_equal(dec(MM_OP_MAP, USER_VA_MIN, USER_VA_MAX, R | fx, 0, &r), -MICA_EFAULT);
}

static void test_decode_other_errors(void **state)
{
	struct mm_request r;
	uint64_t mr[4] = {BASE, P, R, 0};
	static const uint64_t bad_ops[] = {
	    0, 1, 0x100, 0x10a, 0x1ff /* MM_REPLY */, 0xfff, 0xffff, 0x7fffffff, 0xffffffff};

	(void)state;
	for (size_t i = 0; i < sizeof(bad_ops) / sizeof(bad_ops[0]); i++)
		assert_int_equal(mm_decode(ipc_tag(bad_ops[i], 4), mr, &r), -MICA_ENOSYS);
	/* A label wider than 32 bits names no operation, even if its low bits do. */
	for (size_t i = 0; i < NOPS; i++) {
		assert_int_equal(mm_decode(ipc_tag((uint64_t)1 << 32 | all_ops[i], 4), mr, &r),
		                 -MICA_ENOSYS);
		assert_int_equal(mm_decode(ipc_tag((uint64_t)1 << 47 | all_ops[i], 4), mr, &r),
		                 -MICA_ENOSYS);
	}
	/* A capability travelling with a request other than SHARE is refused. */
	for (size_t i = 0; i < NOPS - 1; i++)
		assert_int_equal(mm_decode(ipc_tag(all_ops[i], 4) | IPC_TAG_CAP, mr, &r),
		                 -MICA_EINVAL);
	assert_int_equal(mm_decode(ipc_tag(0x999, 4) | IPC_TAG_CAP, mr, &r), -MICA_EINVAL);
	assert_int_equal(
	    mm_decode(ipc_tag((uint64_t)1 << 32 | MM_OP_SHARE, 4) | IPC_TAG_CAP, mr, &r),
	    -MICA_EINVAL);

	/* WIRE reports at most MM_WIRE_REPORT frames. */
	assert_int_equal(dec(MM_OP_WIRE, BASE, P, MM_WIRE_REPORT + 1, 0, &r), -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_WIRE, BASE, P, ~(uint64_t)0, 0, &r), -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_WIRE, BASE, P, (uint64_t)1 << 32, 0, &r), -MICA_EINVAL);

	/* PROTECT: the three bits only. */
	assert_int_equal(dec(MM_OP_PROTECT, BASE, P, 0x8, 0, &r), -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_PROTECT, BASE, P, (uint64_t)1 << 32 | R, 0, &r), -MICA_EINVAL);
	assert_int_equal(dec(MM_OP_PROTECT, BASE, P, (uint64_t)MM_MAP_GUARD << 8, 0, &r),
	                 -MICA_EINVAL);
	for (unsigned prot = 0; prot < 8; prot++)
		assert_int_equal(dec(MM_OP_PROTECT, BASE, P, prot, 0, &r), 0);

	/* QUERY: inside user space. */
	assert_int_equal(dec(MM_OP_QUERY, 0, 0, 0, 0, &r), -MICA_EFAULT);
	assert_int_equal(dec(MM_OP_QUERY, USER_VA_MIN - 1, 0, 0, 0, &r), -MICA_EFAULT);
	assert_int_equal(dec(MM_OP_QUERY, USER_VA_MAX, 0, 0, 0, &r), -MICA_EFAULT);
	assert_int_equal(dec(MM_OP_QUERY, ~(uint64_t)0, 0, 0, 0, &r), -MICA_EFAULT);
}

/* SHARE must carry the target's token; its source range and, when fixed, its target range
 * take the usual range checks. */
static void test_decode_share(void **state)
{
	struct mm_request r;
	const uint64_t cap = IPC_TAG_CAP, fx = (uint64_t)MM_MAP_FIXED << 8;
	uint64_t mr[4] = {BASE, 2 * P, RW, 0};

	(void)state;
	assert_int_equal(mm_decode(ipc_tag(MM_OP_SHARE, 4) | cap, mr, &r), 0);
	assert_int_equal(r.op, MM_OP_SHARE);
	assert_int_equal(r.addr, BASE);
	assert_int_equal(r.len, 2 * P);
	assert_int_equal(r.prot, RW);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.hint2, 0);
	/* No token: not allowed to share into anyone. */
	assert_int_equal(mm_decode(ipc_tag(MM_OP_SHARE, 4), mr, &r), -MICA_EPERM);

	struct {
		uint64_t mr[4];
		int err;
	} cases[] = {
	    {{BASE, P, R, GIB}, 0},
	    {{BASE, P, R | fx, GIB}, 0},
	    {{BASE, P, R | (uint64_t)MM_MAP_FIXED_NOREPLACE << 8, GIB}, 0},
	    {{BASE, P, 0, 0}, -MICA_EINVAL},   /* nothing to share */
	    {{BASE, P, 0x8, 0}, -MICA_EINVAL}, /* unknown prot bit */
	    {{BASE, P, R | (uint64_t)MM_MAP_POPULATE << 8, 0}, -MICA_EINVAL},
	    {{BASE, P, R | (uint64_t)MM_MAP_GUARD << 8, 0}, -MICA_EINVAL},
	    {{BASE, P, R | (uint64_t)(MM_MAP_FIXED | MM_MAP_FIXED_NOREPLACE) << 8, GIB},
	     -MICA_EINVAL},
	    {{BASE + 1, P, R, 0}, -MICA_EINVAL},
	    {{BASE, 0, R, 0}, -MICA_EINVAL},
	    {{~(uint64_t)PAGE_MASK, P, R, 0}, -MICA_EOVERFLOW},
	    {{0, P, R, 0}, -MICA_EFAULT},
	    {{USER_VA_MAX, P, R, 0}, -MICA_EFAULT},
	    {{BASE, P, R, GIB + 1}, -MICA_EINVAL}, /* an unaligned hint */
	    {{BASE, P, R | fx, GIB + 1}, -MICA_EINVAL},
	    {{BASE, P, R | fx, 0}, -MICA_EFAULT},
	    {{BASE, 2 * P, R | fx, USER_VA_MAX - P}, -MICA_EFAULT},
	    {{BASE, P, R | fx, ~(uint64_t)PAGE_MASK}, -MICA_EOVERFLOW},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (mm_decode(ipc_tag(MM_OP_SHARE, 4) | cap, cases[i].mr, &r) != cases[i].err)
			fail_msg("SHARE case %zu: %d, expected %d", i,
			         mm_decode(ipc_tag(MM_OP_SHARE, 4) | cap, cases[i].mr, &r),
			         cases[i].err);
}

/* ---- faults ----------------------------------------------------------------------- */

static void test_fault_lazy(void **state)
{
	struct fx *x = *state;
	uint64_t a, pa;

	a = (uint64_t)map(x, BASE, 4 * P, RW, 0, 0);
	assert_int_equal(a, BASE);
	assert_int_equal(mmfake_frames_used(&x->f), 0);
	assert_int_equal(x->f.pt_used, 0);

	/* One page, on first touch, with the entry's protection. */
	assert_int_equal(fault(x, a + P + 123, FAULT_ACCESS_WRITE), 0);
	assert_int_equal(mmfake_frames_used(&x->f), 1);
	assert_int_equal(x->f.pt_used, 1);
	pa = pte(x, a + P, RW);
	assert_true(mmfake_resident(&x->c, a + P, &pa));
	assert_false(mapped(x, a));
	assert_false(mapped(x, a + 2 * P));

	/* A second fault on the page (another hart raced us) changes nothing. */
	assert_int_equal(fault(x, a + P, FAULT_ACCESS_READ), 0);
	assert_int_equal(mmfake_frames_used(&x->f), 1);
	assert_int_equal(pte(x, a + P, RW), pa);

	/* Read-only and execute-only entries. */
	uint64_t ro = (uint64_t)map(x, 0, P, R, 0, 0), xo = (uint64_t)map(x, 0, P, X, 0, 0);
	assert_int_equal(fault(x, ro, FAULT_ACCESS_READ), 0);
	pte(x, ro, R);
	assert_int_equal(fault(x, xo + 8, FAULT_ACCESS_EXEC), 0);
	pte(x, xo, X);
	assert_int_equal(query(x, a), 0);
	assert_int_equal(x->out[4], 1);
}

static void test_fault_violations(void **state)
{
	struct fx *x = *state;
	uint64_t a = (uint64_t)map(x, BASE, 2 * P, R, 0, 0);
	uint64_t g = (uint64_t)map(x, BASE + 4 * P, 2 * P, 0, MM_MAP_GUARD, 0);
	uint64_t n = (uint64_t)map(x, BASE + 8 * P, P, 0, 0, 0);
	uint64_t rw = (uint64_t)map(x, BASE + 12 * P, P, RW, 0, 0);
	uint64_t wo = (uint64_t)map(x, BASE + 16 * P, P, W, 0, 0);

	assert_int_equal(g, BASE + 4 * P);
	expect_unchanged(x, -MICA_EFAULT, RQ_FAULT, a + 2 * P, FAULT_ACCESS_READ, 0, 0);
	assert_non_null(strstr(x->why, "no mapping"));
	expect_unchanged(x, -MICA_EFAULT, RQ_FAULT, 0, FAULT_ACCESS_READ, 0, 0);
	expect_unchanged(x, -MICA_EFAULT, RQ_FAULT, USER_VA_MIN - 1, FAULT_ACCESS_READ, 0, 0);
	expect_unchanged(x, -MICA_EFAULT, RQ_FAULT, USER_VA_MAX, FAULT_ACCESS_READ, 0, 0);
	expect_unchanged(x, -MICA_EFAULT, RQ_FAULT, ~(uint64_t)0, FAULT_ACCESS_WRITE, 0, 0);
	expect_unchanged(x, -MICA_EFAULT, RQ_FAULT, g + 5, FAULT_ACCESS_READ, 0, 0);
	assert_non_null(strstr(x->why, "guard"));
	expect_unchanged(x, -MICA_EACCES, RQ_FAULT, a, FAULT_ACCESS_WRITE, 0, 0);
	assert_non_null(strstr(x->why, "write"));
	expect_unchanged(x, -MICA_EACCES, RQ_FAULT, a, FAULT_ACCESS_EXEC, 0, 0);
	assert_non_null(strstr(x->why, "execute"));
	expect_unchanged(x, -MICA_EACCES, RQ_FAULT, n, FAULT_ACCESS_READ, 0, 0);
	assert_non_null(strstr(x->why, "read"));
	expect_unchanged(x, -MICA_EACCES, RQ_FAULT, rw, FAULT_ACCESS_EXEC, 0, 0);
	expect_unchanged(x, -MICA_EACCES, RQ_FAULT, wo, FAULT_ACCESS_READ, 0, 0);
	assert_int_equal(mmfake_frames_used(&x->f), 0);
	assert_int_equal(x->f.allocs, 0);
}

/* RISC-V page tables cannot say write-without-read. A write-only mapping must still work:
 * its pages are mapped read-write, as on other POSIX systems. */
static void test_write_only(void **state)
{
	struct fx *x = *state;
	uint64_t a = (uint64_t)map(x, BASE, 2 * P, W, 0, 0);

	assert_int_equal(fault(x, a, FAULT_ACCESS_WRITE), 0);
	pte(x, a, RW);
	assert_int_equal(protect(x, a, 2 * P, R), 0);
	pte(x, a, R);
	assert_int_equal(protect(x, a, 2 * P, W), 0);
	pte(x, a, RW);
	assert_int_equal(query(x, a), 0);
	assert_int_equal(MM_QUERY_PROT(x->out[3]), W);
	assert_int_equal(map(x, BASE + 4 * P, P, W, MM_MAP_POPULATE, 0), BASE + 4 * P);
	pte(x, BASE + 4 * P, RW);
}

/* ---- unmap ------------------------------------------------------------------------ */

static void test_unmap_partial(void **state)
{
	struct fx *x = *state;
	uint64_t a = (uint64_t)map(x, BASE, 8 * P, RW, MM_MAP_POPULATE, 0), pa[8];

	assert_int_equal(a, BASE);
	assert_int_equal(mmfake_frames_used(&x->f), 8);
	for (int i = 0; i < 8; i++)
		pa[i] = pte(x, a + i * P, RW);
	assert_int_equal(x->c.map.nentries, 1);

	assert_int_equal(unmap(x, a + 2 * P, 3 * P), 0);
	assert_int_equal(x->c.map.nentries, 2);
	assert_int_equal(mmfake_frames_used(&x->f), 5);
	for (int i = 0; i < 8; i++) {
		bool gone = i >= 2 && i < 5;

		assert_int_equal(mapped(x, a + i * P), !gone);
		assert_int_equal(mmfake_frame_allocated(&x->f, pa[i]), !gone);
		if (!gone)
			assert_int_equal(pte(x, a + i * P, RW), pa[i]);
	}
	assert_int_equal(query(x, a), 0);
	assert_int_equal(x->out[1], a);
	assert_int_equal(x->out[2], a + 2 * P);
	assert_int_equal(x->out[4], 2);
	assert_int_equal(query(x, a + 5 * P), 0);
	assert_int_equal(x->out[1], a + 5 * P);
	assert_int_equal(x->out[2], a + 8 * P);
	assert_int_equal(query(x, a + 3 * P), -MICA_ENOENT);

	/* Holes are fine: a range spanning the hole and both pieces' inner ends. */
	assert_int_equal(unmap(x, a + P, 6 * P), 0);
	assert_int_equal(mmfake_frames_used(&x->f), 2);
	assert_true(mapped(x, a));
	assert_true(mapped(x, a + 7 * P));
	/* Nothing there at all. */
	assert_int_equal(unmap(x, a + 100 * P, 50 * P), 0);
	/* All of user space. */
	assert_int_equal(unmap(x, USER_VA_MIN, USER_VA_MAX - USER_VA_MIN), 0);
	assert_int_equal(x->c.map.nentries, 0);
	assert_int_equal(mmfake_frames_used(&x->f), 0);
	/* An unaligned length is refused (by the map) with nothing changed. */
	map(x, BASE, 4 * P, RW, MM_MAP_POPULATE, 0);
	expect_unchanged(x, -MICA_EINVAL, MM_OP_UNMAP, BASE, P + 1, 0, 0);
}

/* ---- protect ---------------------------------------------------------------------- */

static void test_protect_hole(void **state)
{
	struct fx *x = *state;

	assert_int_equal(map(x, BASE, 2 * P, RW, MM_MAP_POPULATE, 0), BASE);
	assert_int_equal(map(x, BASE + 3 * P, 2 * P, RW, MM_MAP_POPULATE, 0), BASE + 3 * P);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_PROTECT, BASE, 5 * P, R, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_PROTECT, BASE + P, 3 * P, 0, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_PROTECT, BASE - P, 2 * P, R, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_PROTECT, BASE + 4 * P, 2 * P, R, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_PROTECT, BASE + 2 * P, P, R, 0);
	assert_int_equal(protect(x, BASE + P, P, R), 0);
	pte(x, BASE + P, R);
	pte(x, BASE, RW);
}

static void test_protect_guard_and_wx(void **state)
{
	struct fx *x = *state;

	assert_int_equal(map(x, BASE, 2 * P, RW, MM_MAP_POPULATE, 0), BASE);
	assert_int_equal(map(x, BASE + 2 * P, 2 * P, 0, MM_MAP_GUARD, 0), BASE + 2 * P);
	/* Above the guard's maximum protection (none). */
	for (unsigned prot = 1; prot < 8; prot++) {
		expect_unchanged(x, -MICA_EACCES, MM_OP_PROTECT, BASE + 2 * P, 2 * P, prot, 0);
		expect_unchanged(x, -MICA_EACCES, MM_OP_PROTECT, BASE, 4 * P, prot, 0);
	}
	/* To none is within it. */
	assert_int_equal(protect(x, BASE + 2 * P, P, 0), 0);
	assert_int_equal(x->c.map.nentries, 2);

	/* Write and execute together, in MAP and PROTECT. */
	expect_unchanged(x, -MICA_EACCES, MM_OP_MAP, 0, P, W | X, 0);
	expect_unchanged(x, -MICA_EACCES, MM_OP_MAP, 0, P, R | W | X, 0);
	expect_unchanged(x, -MICA_EACCES, MM_OP_MAP, BASE, P,
	                 R | W | X | (uint64_t)MM_MAP_FIXED << 8, 0);
	expect_unchanged(x, -MICA_EACCES, MM_OP_PROTECT, BASE, P, W | X, 0);
	expect_unchanged(x, -MICA_EACCES, MM_OP_PROTECT, BASE, P, R | W | X, 0);
	/* A client allowed W+X gets it. */
	x->c.forbid_wx = false;
	assert_int_equal(protect(x, BASE, P, R | W | X), 0);
	pte(x, BASE, R | W | X);
}

static void test_protect_none_and_back(void **state)
{
	struct fx *x = *state;
	uint64_t a = (uint64_t)map(x, BASE, 4 * P, RW, MM_MAP_POPULATE, 0), pa[4];

	for (int i = 0; i < 4; i++)
		pa[i] = pte(x, a + i * P, RW);
	assert_int_equal(protect(x, a, 4 * P, 0), 0);
	assert_int_equal(x->f.pt_used, 0);
	assert_int_equal(mmfake_frames_used(&x->f), 4);
	assert_int_equal(query(x, a), 0);
	assert_int_equal(x->out[4], 4);
	expect_unchanged(x, -MICA_EACCES, RQ_FAULT, a, FAULT_ACCESS_READ, 0, 0);

	/* The same pages come back. */
	assert_int_equal(protect(x, a, 4 * P, RW), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pte(x, a + i * P, RW), pa[i]);
	assert_int_equal(protect(x, a, 4 * P, R), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pte(x, a + i * P, R), pa[i]);

	/* Part of the range only, then part of that part back. */
	assert_int_equal(protect(x, a + P, 2 * P, 0), 0);
	assert_int_equal(x->c.map.nentries, 3);
	assert_false(mapped(x, a + P));
	assert_false(mapped(x, a + 2 * P));
	assert_int_equal(protect(x, a + 2 * P, P, X), 0);
	assert_int_equal(pte(x, a + 2 * P, X), pa[2]);
	assert_false(mapped(x, a + P));
	assert_int_equal(x->c.map.nentries, 4);
	assert_int_equal(protect(x, a, 4 * P, R), 0);
	assert_int_equal(x->c.map.nentries, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pte(x, a + i * P, R), pa[i]);
	assert_int_equal(fault(x, a + P, FAULT_ACCESS_READ), 0);
	assert_int_equal(mmfake_frames_used(&x->f), 4);

	/* A lazy PROT_NONE entry populated, then opened. */
	uint64_t b = (uint64_t)map(x, BASE + 16 * P, 2 * P, 0, MM_MAP_POPULATE, 0);
	assert_int_equal(mmfake_frames_used(&x->f), 6);
	assert_false(mapped(x, b));
	assert_int_equal(protect(x, b, 2 * P, RW), 0);
	pte(x, b, RW);
	pte(x, b + P, RW);

	/* A range far longer than the resident set: the pages that come back are found by
	 * walking the resident pages, not the 2^24 pages of the range. */
	uint64_t h = (uint64_t)map(x, GIB, 64 * GIB, RW, 0, 0), hp[3];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fault(x, h + (uint64_t)i * 21 * GIB, FAULT_ACCESS_WRITE), 0);
		hp[i] = pte(x, h + (uint64_t)i * 21 * GIB, RW);
	}
	assert_int_equal(protect(x, h, 64 * GIB, 0), 0);
	assert_int_equal(x->f.pt_used, 6);
	assert_int_equal(protect(x, h, 64 * GIB, R), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pte(x, h + (uint64_t)i * 21 * GIB, R), hp[i]);
	assert_int_equal(x->f.pt_used, 9);
}

/* ---- MAP placement ---------------------------------------------------------------- */

static void test_fixed_replaces(void **state)
{
	struct fx *x = *state;
	uint64_t a = (uint64_t)map(x, BASE, 4 * P, RW, MM_MAP_POPULATE, 0), pa[4];

	for (int i = 0; i < 4; i++)
		pa[i] = pte(x, a + i * P, RW);
	assert_int_equal(map(x, a + P, 2 * P, R, MM_MAP_FIXED, 0), a + P);
	assert_int_equal(x->c.map.nentries, 3);
	assert_int_equal(mmfake_frames_used(&x->f), 2);
	assert_false(mmfake_frame_allocated(&x->f, pa[1]));
	assert_false(mmfake_frame_allocated(&x->f, pa[2]));
	assert_false(mapped(x, a + P));
	assert_false(mapped(x, a + 2 * P));
	assert_int_equal(pte(x, a, RW), pa[0]);
	assert_int_equal(pte(x, a + 3 * P, RW), pa[3]);
	assert_int_equal(query(x, a + P), 0);
	assert_int_equal(MM_QUERY_PROT(x->out[3]), R);
	assert_int_equal(x->out[4], 0);
	assert_int_equal(fault(x, a + P, FAULT_ACCESS_READ), 0);
	pte(x, a + P, R);

	/* FIXED over a wired range: the wiring goes with the pages. */
	assert_int_equal(wire(x, a, P, 1), 1);
	assert_int_equal(x->c.wired_pages, 1);
	assert_int_equal(map(x, a, 4 * P, RW, MM_MAP_FIXED | MM_MAP_POPULATE, 0), a);
	assert_int_equal(x->c.wired_pages, 0);
	assert_int_equal(x->c.map.nentries, 1);
	assert_int_equal(mmfake_frames_used(&x->f), 4);

	/* FIXED over a guard. */
	assert_int_equal(map(x, a + 8 * P, 4 * P, 0, MM_MAP_GUARD, 0), a + 8 * P);
	assert_int_equal(map(x, a + 9 * P, P, RW, MM_MAP_FIXED, 0), a + 9 * P);
	assert_int_equal(x->c.map.nentries, 4);
}

static void test_fixed_noreplace(void **state)
{
	struct fx *x = *state;

	assert_int_equal(map(x, BASE, 4 * P, RW, MM_MAP_POPULATE, 0), BASE);
	expect_unchanged(x, -MICA_EEXIST, MM_OP_MAP, BASE, P,
	                 R | (uint64_t)MM_MAP_FIXED_NOREPLACE << 8, 0);
	expect_unchanged(x, -MICA_EEXIST, MM_OP_MAP, BASE + 3 * P, 2 * P,
	                 R | (uint64_t)MM_MAP_FIXED_NOREPLACE << 8, 0);
	expect_unchanged(x, -MICA_EEXIST, MM_OP_MAP, BASE - P, 2 * P,
	                 R | (uint64_t)(MM_MAP_FIXED_NOREPLACE | MM_MAP_POPULATE) << 8, 0);
	assert_int_equal(map(x, BASE + 4 * P, P, R, MM_MAP_FIXED_NOREPLACE, 0), BASE + 4 * P);
	assert_int_equal(map(x, BASE - P, P, R, MM_MAP_FIXED_NOREPLACE | MM_MAP_POPULATE, 0),
	                 BASE - P);
	pte(x, BASE - P, R);
	/* A hint without a fixed flag is where the search starts, not a demand. */
	assert_int_equal(map(x, BASE, P, R, 0, 0), BASE + 5 * P);
	assert_int_equal(map(x, 0, P, R, 0, 0), USER_VA_MIN);
}

static void test_alignment(void **state)
{
	struct fx *x = *state;

	/* Something at the bottom so that no search starts aligned by accident. */
	assert_int_equal(map(x, 0, 3 * P, R, 0, 0), USER_VA_MIN);
	for (uint64_t a = P; a <= GIB; a <<= 1) {
		long r = map(x, 0, 5 * P, RW, 0, a);
		long h = map(x, BASE + P, P, RW, MM_MAP_POPULATE, a);

		assert_true(r > 0 && h > 0);
		assert_int_equal((uint64_t)r % a, 0);
		assert_int_equal((uint64_t)h % a, 0);
		assert_true((uint64_t)h >= BASE + P);
		pte(x, (uint64_t)h, RW);
		/* Aligned to no more than asked: the lowest aligned gap is used. */
		if (a >= 4 * P)
			assert_int_equal((uint64_t)r, a);
		/* The next aligned slot when the first is taken. */
		long r2 = map(x, (uint64_t)r, P, R, 0, a);
		assert_int_equal((uint64_t)r2 % a, 0);
		assert_true(r2 > r);
		assert_int_equal(unmap(x, (uint64_t)r, 5 * P), 0);
		assert_int_equal(unmap(x, (uint64_t)r2, P), 0);
		assert_int_equal(unmap(x, (uint64_t)h, P), 0);
	}
	/* Fixed and aligned. */
	assert_int_equal(map(x, GIB, P, R, MM_MAP_FIXED, GIB), GIB);
	assert_int_equal(map(x, 2 * GIB, P, R, MM_MAP_FIXED_NOREPLACE, GIB), 2 * GIB);
	/* No aligned room left above the hint. */
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, USER_VA_MAX - GIB + P, 2 * P, R, GIB);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, USER_VA_MAX, P, R, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, 0, USER_VA_MAX, R, 0);
}

static void test_populate(void **state)
{
	struct fx *x = *state;
	uint64_t a = (uint64_t)map(x, 0, 16 * P, R | X, MM_MAP_POPULATE, 0);

	assert_int_equal(mmfake_frames_used(&x->f), 16);
	for (int i = 0; i < 16; i++)
		pte(x, a + i * P, R | X);
	assert_int_equal(query(x, a), 0);
	assert_int_equal(x->out[4], 16);
	/* Length rounded up to pages, populated too. */
	uint64_t b = (uint64_t)map(x, 0, 2 * P + 1, RW, MM_MAP_POPULATE, 0);
	assert_int_equal(query(x, b), 0);
	assert_int_equal(x->out[2] - x->out[1], 3 * P);
	pte(x, b + 2 * P, RW);
	/* Populating next to a mergeable neighbour touches only the new pages. */
	uint64_t c = (uint64_t)map(x, BASE, 2 * P, RW, 0, 0);
	assert_int_equal(map(x, c + 2 * P, 2 * P, RW, MM_MAP_POPULATE, 0), c + 2 * P);
	assert_false(mapped(x, c));
	pte(x, c + 2 * P, RW);
	assert_int_equal(query(x, c), 0);
	assert_int_equal(x->out[2] - x->out[1], 4 * P);
	assert_int_equal(x->out[4], 2);
}

/* ---- wire ------------------------------------------------------------------------- */

static void test_wire(void **state)
{
	struct fx *x = *state;
	uint64_t a = (uint64_t)map(x, BASE, 8 * P, RW, 0, 0), pa[8];

	assert_int_equal(fault(x, a + 2 * P, FAULT_ACCESS_WRITE), 0);
	pa[2] = pte(x, a + 2 * P, RW);
	assert_int_equal(wire(x, a, 8 * P, 8), 8);
	assert_int_equal(x->nout, 4 + 8);
	assert_int_equal(x->c.wired_pages, 8);
	assert_int_equal(mmfake_frames_used(&x->f), 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pte(x, a + i * P, RW), x->out[4 + i]);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(x->out[4 + i], x->out[4 + j]);
		pa[i] = x->out[4 + i];
	}
	assert_int_equal(query(x, a), 0);
	assert_int_equal(MM_QUERY_WIRED(x->out[3]), 1);
	assert_int_equal(x->out[4], 8);

	/* Again: accepted, nothing nests, the same addresses. */
	assert_int_equal(wire(x, a + P, 4 * P, 2), 4);
	assert_int_equal(x->nout, 4 + 2);
	assert_int_equal(x->out[4], pa[1]);
	assert_int_equal(x->out[5], pa[2]);
	assert_int_equal(x->c.wired_pages, 8);
	assert_int_equal(wire(x, a, 8 * P, 0), 8);
	assert_int_equal(x->nout, 1);
	/* Stable across protection changes and faults. */
	assert_int_equal(protect(x, a, 8 * P, 0), 0);
	assert_int_equal(protect(x, a, 8 * P, R), 0);
	assert_int_equal(fault(x, a + 5 * P, FAULT_ACCESS_READ), 0);
	assert_int_equal(wire(x, a, 8 * P, 8), 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(x->out[4 + i], pa[i]);

	/* UNWIRE part: the entry splits, the pages stay. */
	assert_int_equal(unwire(x, a + 2 * P, 2 * P), 0);
	assert_int_equal(x->c.wired_pages, 6);
	assert_int_equal(x->c.map.nentries, 3);
	assert_int_equal(mmfake_frames_used(&x->f), 8);
	assert_int_equal(unwire(x, a, 8 * P), 0);
	assert_int_equal(unwire(x, a, 8 * P), 0);
	assert_int_equal(x->c.wired_pages, 0);
	assert_int_equal(x->c.map.nentries, 1);
	assert_int_equal(query(x, a), 0);
	assert_int_equal(MM_QUERY_WIRED(x->out[3]), 0);

	/* Holes and guards: -ENOMEM, nothing changed. */
	assert_int_equal(map(x, a + 9 * P, P, 0, MM_MAP_GUARD, 0), a + 9 * P);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_WIRE, a, 9 * P, 0, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_WIRE, a + 9 * P, P, 0, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_WIRE, a + 20 * P, P, 0, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_UNWIRE, a, 9 * P, 0, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_UNWIRE, a + 9 * P, P, 0, 0);

	/* MAP with WIRE: populated and pinned at once. */
	uint64_t b = (uint64_t)map(x, 0, 3 * P, R, MM_MAP_WIRE, 0);
	assert_int_equal(x->c.wired_pages, 3);
	pte(x, b + 2 * P, R);
	assert_int_equal(query(x, b), 0);
	assert_int_equal(MM_QUERY_WIRED(x->out[3]), 1);
	/* Unmapping a wired range unwires it. */
	assert_int_equal(unmap(x, b + P, P), 0);
	assert_int_equal(x->c.wired_pages, 2);
	/* A wired PROT_NONE page stays resident with no translation. */
	assert_int_equal(protect(x, b, P, 0), 0);
	assert_false(mapped(x, b));
	assert_int_equal(mmfake_frames_used(&x->f), 10);
}

/* ---- quotas ----------------------------------------------------------------------- */

static void test_quota_entries(void **state)
{
	struct fx *x = *state;

	x->c.quota.entries = 4;
	for (int i = 0; i < 4; i++)
		assert_int_equal(map(x, BASE + 2 * i * P, P, R, 0, 0), BASE + 2 * i * P);
	assert_int_equal(x->c.map.nentries, 4);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, 0, P, R, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, BASE + 20 * P, P,
	                 R | (uint64_t)MM_MAP_FIXED_NOREPLACE << 8, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, BASE + 20 * P, P,
	                 R | (uint64_t)MM_MAP_POPULATE << 8, 0);
	/* Removing one makes room. */
	assert_int_equal(unmap(x, BASE, P), 0);
	assert_int_equal(map(x, 0, P, R, 0, 0), USER_VA_MIN);
}

static void test_quota_resident(void **state)
{
	struct fx *x = *state;

	x->c.quota.resident = 8;
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, 0, 9 * P, RW | (uint64_t)MM_MAP_POPULATE << 8,
	                 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, 0, 9 * P, RW | (uint64_t)MM_MAP_WIRE << 8, 0);
	uint64_t a = (uint64_t)map(x, BASE, 6 * P, RW, MM_MAP_POPULATE, 0);
	uint64_t b = (uint64_t)map(x, BASE + 8 * P, 4 * P, RW, 0, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, 0, 3 * P, RW | (uint64_t)MM_MAP_POPULATE << 8,
	                 0);
	/* WIRE needing more than is left: nothing at all is populated. */
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_WIRE, b, 3 * P, 0, 0);
	assert_int_equal(fault(x, b, FAULT_ACCESS_WRITE), 0);
	assert_int_equal(fault(x, b + P, FAULT_ACCESS_WRITE), 0);
	expect_unchanged(x, -MICA_ENOMEM, RQ_FAULT, b + 2 * P, FAULT_ACCESS_WRITE, 0, 0);
	assert_non_null(strstr(x->why, "quota"));
	/* Resident pages do not count twice. */
	assert_int_equal(wire(x, a, 6 * P, 0), 6);
	assert_int_equal(fault(x, a, FAULT_ACCESS_READ), 0);
	/* Freeing makes room. */
	assert_int_equal(unmap(x, a, P), 0);
	assert_int_equal(fault(x, b + 2 * P, FAULT_ACCESS_READ), 0);
}

static void test_quota_wired(void **state)
{
	struct fx *x = *state;

	x->c.quota.wired = 4;
	uint64_t a = (uint64_t)map(x, BASE, 8 * P, RW, 0, 0);
	expect_unchanged(x, -MICA_EAGAIN, MM_OP_WIRE, a, 5 * P, 0, 0);
	expect_unchanged(x, -MICA_EAGAIN, MM_OP_MAP, 0, 5 * P, RW | (uint64_t)MM_MAP_WIRE << 8, 0);
	assert_int_equal(wire(x, a, 4 * P, 0), 4);
	assert_int_equal(wire(x, a, 4 * P, 0), 4); /* already wired: nothing new */
	assert_int_equal(wire(x, a + P, 2 * P, 0), 2);
	expect_unchanged(x, -MICA_EAGAIN, MM_OP_WIRE, a + 2 * P, 3 * P, 0, 0);
	expect_unchanged(x, -MICA_EAGAIN, MM_OP_MAP, 0, P, RW | (uint64_t)MM_MAP_WIRE << 8, 0);
	assert_int_equal(unwire(x, a + 3 * P, P), 0);
	assert_int_equal(x->c.wired_pages, 3);
	assert_int_equal(map(x, 0, P, RW, MM_MAP_WIRE, 0), USER_VA_MIN);
	assert_int_equal(x->c.wired_pages, 4);
}

/* ---- query ------------------------------------------------------------------------ */

static void test_query(void **state)
{
	struct fx *x = *state;
	uint64_t a = (uint64_t)map(x, BASE, 4 * P, R | X, 0, 0);
	uint64_t g = (uint64_t)map(x, BASE + 4 * P, 2 * P, 0, MM_MAP_GUARD, 0);
	uint64_t w = (uint64_t)map(x, BASE + 8 * P, 3 * P, RW, MM_MAP_WIRE, 0);

	assert_int_equal(fault(x, a + P, FAULT_ACCESS_EXEC), 0);
	assert_int_equal(query(x, a + 3 * P + 77), 0);
	assert_int_equal(x->nout, 5);
	assert_int_equal(x->out[0], 0xa5a5a5a5a5a5a5a5ULL); /* MR0 is the result, not out[0] */
	assert_int_equal(x->out[1], a);
	assert_int_equal(x->out[2], a + 4 * P);
	assert_int_equal(MM_QUERY_PROT(x->out[3]), R | X);
	assert_int_equal(MM_QUERY_MAXPROT(x->out[3]), R | W | X);
	assert_int_equal(MM_QUERY_FLAGS(x->out[3]), 0);
	assert_int_equal(MM_QUERY_WIRED(x->out[3]), 0);
	assert_int_equal(x->out[3] >> 33, 0);
	assert_int_equal(x->out[4], 1);

	assert_int_equal(query(x, g + P), 0);
	assert_int_equal(x->out[1], g);
	assert_int_equal(x->out[2], g + 2 * P);
	assert_int_equal(MM_QUERY_PROT(x->out[3]), 0);
	assert_int_equal(MM_QUERY_MAXPROT(x->out[3]), 0);
	assert_int_equal(MM_QUERY_FLAGS(x->out[3]), MM_MAP_GUARD);
	assert_int_equal(x->out[4], 0);

	assert_int_equal(query(x, w), 0);
	assert_int_equal(x->out[1], w);
	assert_int_equal(x->out[2], w + 3 * P);
	assert_int_equal(MM_QUERY_PROT(x->out[3]), RW);
	assert_int_equal(MM_QUERY_WIRED(x->out[3]), 1);
	assert_int_equal(x->out[4], 3);

	assert_int_equal(query(x, BASE + 6 * P), -MICA_ENOENT);
	assert_int_equal(query(x, BASE - 1), -MICA_ENOENT);
	assert_int_equal(query(x, USER_VA_MIN), -MICA_ENOENT);
	assert_int_equal(query(x, USER_VA_MAX - 1), -MICA_ENOENT);

	/* A huge lazy entry with a page resident: counted without a walk of the range. */
	uint64_t h = (uint64_t)map(x, GIB, 64 * GIB, R, 0, 0);
	assert_int_equal(fault(x, h + 7 * GIB, FAULT_ACCESS_READ), 0);
	assert_int_equal(query(x, h), 0);
	assert_int_equal(x->out[2] - x->out[1], 64 * GIB);
	assert_int_equal(x->out[4], 1);
	/* INFO belongs to the server loop (it needs the server's totals), not to mm_handle. */
	assert_int_equal(run(x, MM_OP_INFO, 0, 0, 0, 0), -MICA_ENOSYS);
}

/* ---- allocation failures ---------------------------------------------------------- */

static void test_failinj_map(void **state)
{
	struct fx *x = *state;
	unsigned n;
	long r;

	for (int all = 0; all < 2; all++) {
		/* Fresh range. */
		r = sweep(x, all, MM_OP_MAP, 0, 6 * P, RW | (uint64_t)MM_MAP_POPULATE << 8, 0, &n);
		assert_true(r > 0);
		assert_int_equal(n, 6);
		/* Next to mergeable neighbours on both sides. */
		uint64_t b = BASE + (uint64_t)all * 64 * P;
		assert_int_equal(map(x, b, 2 * P, RW, MM_MAP_POPULATE, 0), b);
		assert_int_equal(map(x, b + 5 * P, 2 * P, RW, 0, 0), b + 5 * P);
		size_t before = x->c.map.nentries;
		r = sweep(x, all, MM_OP_MAP, b + 2 * P, 3 * P,
		          RW | (uint64_t)(MM_MAP_FIXED_NOREPLACE | MM_MAP_POPULATE) << 8, 0, &n);
		assert_int_equal(r, b + 2 * P);
		assert_int_equal(n, 3);
		assert_int_equal(x->c.map.nentries, before - 1); /* one entry now */
		/* FIXED over resident, wired and PROT_NONE pages of several entries. */
		assert_int_equal(wire(x, b, P, 0), 1);
		assert_int_equal(protect(x, b + 3 * P, P, 0), 0);
		r = sweep(x, all, MM_OP_MAP, b + P, 5 * P,
		          R | (uint64_t)(MM_MAP_FIXED | MM_MAP_POPULATE) << 8, 0, &n);
		assert_int_equal(r, b + P);
		assert_int_equal(n, 5);
		/* MAP WIRE. */
		r = sweep(x, all, MM_OP_MAP, 0, 4 * P, R | (uint64_t)MM_MAP_WIRE << 8, 0, &n);
		assert_true(r > 0);
		assert_int_equal(n, 4);
		/* FIXED WIRE over a wired range. */
		r = sweep(x, all, MM_OP_MAP, (uint64_t)r, 4 * P,
		          RW | (uint64_t)(MM_MAP_FIXED | MM_MAP_WIRE) << 8, 0, &n);
		assert_true(r > 0);
		assert_int_equal(n, 4);
	}
}

static void test_failinj_wire(void **state)
{
	struct fx *x = *state;
	uint64_t a = BASE;
	unsigned n;

	for (int all = 0; all < 2; all++) {
		/* Some pages resident, some already wired, one PROT_NONE: the failing WIRE
		 * must neither unwire what was wired before it nor keep what it populated. */
		assert_int_equal(map(x, a, 12 * P, RW, MM_MAP_FIXED, 0), a);
		assert_int_equal(fault(x, a + P, FAULT_ACCESS_WRITE), 0);
		assert_int_equal(wire(x, a + 4 * P, 2 * P, 0), 2);
		assert_int_equal(protect(x, a + 8 * P, P, 0), 0);
		assert_int_equal(sweep(x, all, MM_OP_WIRE, a, 12 * P, 12, 0, &n), 12);
		assert_int_equal(n, 12 - 3);
		assert_int_equal(x->c.wired_pages, 12);
		for (int i = 0; i < 12; i++) {
			uint64_t pa = 0;

			assert_true(mmfake_resident(&x->c, a + i * P, &pa));
			assert_int_equal(x->out[4 + i], pa);
			if (i == 8)
				assert_false(mapped(x, a + i * P));
			else
				assert_int_equal(pte(x, a + i * P, RW), pa);
		}
	}
	/* The same with the resident quota, not RAM, running out part way. */
	assert_int_equal(map(x, a, 12 * P, RW, MM_MAP_FIXED, 0), a);
	assert_int_equal(wire(x, a + 4 * P, 2 * P, 0), 2);
	x->c.quota.resident = 6;
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_WIRE, a, 12 * P, 0, 0);
	assert_int_equal(x->c.wired_pages, 2);
}

static void test_failinj_fault(void **state)
{
	struct fx *x = *state;
	uint64_t a = (uint64_t)map(x, BASE, 2 * P, RW, 0, 0);
	unsigned n;

	assert_int_equal(sweep(x, false, RQ_FAULT, a, FAULT_ACCESS_WRITE, 0, 0, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sweep(x, false, RQ_FAULT, a, FAULT_ACCESS_WRITE, 0, 0, &n), 0);
	assert_int_equal(n, 0);

	/* The kernel refusing the translation (out of table pages): the frame comes back. */
	struct mmfake_snap s;
	mmfake_snap_take(&s, &x->f, &x->c);
	x->f.enter_fail_in = 0;
	assert_int_equal(fault(x, a + P, FAULT_ACCESS_WRITE), -MICA_ENOMEM);
	assert_int_equal(x->f.enter_failures, 1);
	bool same = mmfake_snap_equal(&s, &x->f, &x->c, x->msg, sizeof(x->msg));
	mmfake_snap_free(&s);
	if (!same)
		fail_msg("%s", x->msg);
	assert_int_equal(fault(x, a + P, FAULT_ACCESS_WRITE), 0);
}

/* RAM itself running out, rather than an injected failure or a quota. */
static void test_ram_exhausted(void **state)
{
	struct fx *x = *state;

	x->c.quota = (struct mm_quota){.entries = 64, .resident = 2 * NFRAMES, .wired = NFRAMES};
	assert_int_equal(map(x, BASE, (NFRAMES - 3) * P, RW, MM_MAP_POPULATE, 0), BASE);
	uint64_t a = (uint64_t)map(x, 0, 8 * P, RW, 0, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, 0, 4 * P, RW | (uint64_t)MM_MAP_POPULATE << 8,
	                 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_MAP, 0, 4 * P, RW | (uint64_t)MM_MAP_WIRE << 8, 0);
	expect_unchanged(x, -MICA_ENOMEM, MM_OP_WIRE, a, 4 * P, 0, 0);
	assert_int_equal(wire(x, a, 3 * P, 0), 3);
	assert_int_equal(mmfake_frames_used(&x->f), NFRAMES);
	expect_unchanged(x, -MICA_ENOMEM, RQ_FAULT, a + 3 * P, FAULT_ACCESS_WRITE, 0, 0);
	assert_non_null(strstr(x->why, "out of memory"));
	assert_int_equal(unmap(x, BASE, P), 0);
	assert_int_equal(fault(x, a + 3 * P, FAULT_ACCESS_WRITE), 0);
}

/* ---- randomised: differential test against a per-page model ------------------------ */

#define DW_PAGES 3072
#define DW_BASE  USER_VA_MIN
#define DW_END   (DW_BASE + DW_PAGES * P)

struct mpage {
	uint8_t mapped, prot, guard, wired, resident;
	uint64_t pa; /* 0 until the first comparison after the page became resident */
};

struct diff {
	struct mmfake f;
	struct mm_client c;
	struct mm_quota q;
	struct mpage pg[DW_PAGES];
	uint64_t rng;
	uint64_t out[64];
	unsigned nout;
	unsigned long ops[8], fails[8], injected;
	unsigned long by_err[8][4]; /* refusals: -ENOMEM, -EACCES, -EEXIST/-EFAULT, other */
	char msg[512];
};

enum { D_MAP, D_UNMAP, D_PROTECT, D_WIRE, D_UNWIRE, D_FAULT, D_QUERY, D_NKINDS };
static const char *const d_names[] = {"map",    "unmap", "protect", "wire",
                                      "unwire", "fault", "query"};

static uint64_t rnd(struct diff *d, uint64_t n)
{
	return vmref_rand(&d->rng) % n;
}

static size_t pidx(uint64_t va)
{
	return (size_t)((va - DW_BASE) / P);
}

static bool m_mapped(const struct diff *d, uint64_t va)
{
	return va >= DW_END || d->pg[pidx(va)].mapped; /* the window ends at a guard */
}

/* The client's map is closed off above the window by one entry to the top of user space,
 * so every placement the search makes falls inside the model. It is read-write-execute,
 * which the model never maps (W+X is refused), so nothing merges with it. */
static void diff_start(struct diff *d)
{
	uint64_t mr[4] = {DW_END, USER_VA_MAX - DW_END, R | W | X | (uint64_t)MM_MAP_FIXED << 8, 0};
	struct mm_request req;

	assert_int_equal(mm_client_init(&d->c, 7, TASK, &d->q), 0);
	/* The harness checks the whole map after each step itself. */
	d->c.map.debug_check = false;
	assert_int_equal(mm_decode(ipc_tag(MM_OP_MAP, 4), mr, &req), 0);
	d->c.forbid_wx = false;
	assert_int_equal(mm_handle(&d->c, &d->f.env, &req, d->out, &d->nout), (long)DW_END);
	d->c.forbid_wx = true;
	memset(d->pg, 0, sizeof(d->pg));
}

static void diff_end(struct diff *d)
{
	mm_client_destroy(&d->c, &d->f.env);
	if (mmfake_frames_used(&d->f) != 0 || d->f.pt_used != 0 || d->f.misuse != 0)
		fail_msg("after destroy: %zu frames, %zu translations, misuse: %s",
		         mmfake_frames_used(&d->f), d->f.pt_used, d->f.misuse ? d->f.why : "none");
}

static bool same_run(const struct mpage *a, const struct mpage *b)
{
	return a->mapped && b->mapped && a->prot == b->prot && a->guard == b->guard &&
	       a->wired == b->wired;
}

/* Number of pages the request would have to allocate. */
static uint64_t m_missing(const struct diff *d, uint64_t a, uint64_t len)
{
	uint64_t n = 0;

	for (uint64_t va = a; va < a + len; va += P)
		n += !d->pg[pidx(va)].resident;
	return n;
}

static void m_clear(struct diff *d, uint64_t a, uint64_t len)
{
	for (uint64_t va = a; va < a + len; va += P)
		memset(&d->pg[pidx(va)], 0, sizeof(d->pg[0]));
}

/* The placement vm_map makes: the gap holding the hint if the block fits there, else the
 * lowest gap starting at or above the hint that holds len + align - PAGE_SIZE. */
static long m_place(const struct diff *d, uint64_t hint, uint64_t len, uint64_t align)
{
	uint64_t lo = hint ? hint : USER_VA_MIN, va, gs, ge;

	if (lo >= DW_END)
		return -MICA_ENOMEM;
	if (!m_mapped(d, lo)) {
		uint64_t c = (lo + align - 1) & ~(align - 1);

		for (ge = lo; !m_mapped(d, ge); ge += P)
			;
		if (c <= ge && ge - c >= len)
			return (long)c;
	}
	va = lo;
	if (va > DW_BASE && !m_mapped(d, va) && !m_mapped(d, va - P))
		while (!m_mapped(d, va))
			va += P; /* the gap holding the hint starts below it */
	while (va < DW_END) {
		if (m_mapped(d, va)) {
			va += P;
			continue;
		}
		for (gs = va, ge = va; !m_mapped(d, ge); ge += P)
			;
		if (ge - gs >= len + align - P)
			return (long)((gs + align - 1) & ~(align - 1));
		va = ge;
	}
	return -MICA_ENOMEM;
}

/* A random page-aligned range inside the window: short mostly, now and then long. With
 * `mapped`, it starts on a mapped page when a few tries find one, so that operations on
 * entries are not mostly refused for a hole. */
static void rnd_range(struct diff *d, bool mapped, uint64_t *a, uint64_t *len)
{
	size_t first = (size_t)rnd(d, DW_PAGES), max, n;

	for (int k = 0; mapped && k < 8 && !d->pg[first].mapped; k++)
		first = (size_t)rnd(d, DW_PAGES);
	max = DW_PAGES - first;
	n = rnd(d, 40) == 0 ? 1 + rnd(d, max) : 1 + rnd(d, max < 24 ? max : 24);
	*a = DW_BASE + first * P;
	*len = n * P;
}

static unsigned rnd_prot(struct diff *d)
{
	static const unsigned prots[] = {0, R, W, RW, X, R | X, R, RW, RW, R | X, RW, R};

	if (rnd(d, 32) == 0)
		return rnd(d, 2) ? W | X : R | W | X; /* refused: W+X */
	return prots[rnd(d, sizeof(prots) / sizeof(prots[0]))];
}

struct dop {
	unsigned kind;
	uint64_t mr[4];
	long fail_in;
	bool fail_all;
};

static void rnd_op(struct diff *d, struct dop *op)
{
	uint64_t r = rnd(d, 100), a, len;

	memset(op, 0, sizeof(*op));
	op->fail_in = rnd(d, 10) == 0 ? (long)rnd(d, 6) : -1;
	op->fail_all = rnd(d, 2);
	/* MAP and UNMAP anywhere; the rest mostly where something is mapped. */
	rnd_range(d, r >= 46 && rnd(d, 4) != 0, &a, &len);
	op->mr[0] = a;
	op->mr[1] = len;
	if (r < 34) {
		unsigned flags = 0, prot = rnd_prot(d);
		uint64_t align = 0, place = rnd(d, 8);

		op->kind = D_MAP;
		if (rnd(d, 4) == 0) {
			align = P << rnd(d, 10); /* up to 2 MiB: a few slots in the window */
			a &= ~(align - 1);
			if (a < DW_BASE)
				a += align;
			if (a >= DW_END)
				a = align; /* the lowest aligned address inside the window */
			if (a + len > DW_END)
				len = DW_END - a;
		}
		if (place < 2)
			flags |= MM_MAP_FIXED;
		else if (place < 3)
			flags |= MM_MAP_FIXED_NOREPLACE;
		else if (place < 5)
			a = 0;
		if (rnd(d, 10) == 0) {
			flags |= MM_MAP_GUARD;
			prot = 0;
		} else if (rnd(d, 5) == 0) {
			flags |= MM_MAP_POPULATE;
		} else if (rnd(d, 14) == 0) {
			flags |= MM_MAP_WIRE;
		}
		if ((flags & (MM_MAP_POPULATE | MM_MAP_WIRE)) && len > 32 * P)
			len = (1 + rnd(d, 32)) * P;
		op->mr[0] = a;
		/* Lengths that are not whole pages are rounded up. */
		op->mr[1] = rnd(d, 4) == 0 ? len - rnd(d, P) : len;
		op->mr[2] = prot | (uint64_t)flags << 8;
		op->mr[3] = align;
	} else if (r < 48) {
		op->kind = D_UNMAP;
	} else if (r < 60) {
		op->kind = D_PROTECT;
		op->mr[2] = rnd_prot(d);
	} else if (r < 67) {
		op->kind = D_WIRE;
		if (len > 16 * P)
			op->mr[1] = (1 + rnd(d, 16)) * P;
		op->mr[2] = rnd(d, MM_WIRE_REPORT + 1);
	} else if (r < 73) {
		op->kind = D_UNWIRE;
	} else if (r < 95) {
		static const unsigned acc[] = {FAULT_ACCESS_READ, FAULT_ACCESS_WRITE,
		                               FAULT_ACCESS_EXEC};

		op->kind = D_FAULT;
		op->mr[0] = a + rnd(d, P);
		op->mr[1] = acc[rnd(d, 3)];
		/* Mostly an access the page allows, so that most faults map something. */
		unsigned prot = d->pg[pidx(a)].prot;
		if (prot != 0 && rnd(d, 3) != 0)
			while (!(prot & op->mr[1]))
				op->mr[1] = acc[rnd(d, 3)];
	} else {
		op->kind = D_QUERY;
		op->mr[0] = a + rnd(d, P);
	}
}

/* Expected result of op on the model (before it is applied); *allocs receives the number
 * of frames it needs once every check has passed. */
/* The server refuses, before anything else that depends on the map, a range
 * operation whose splits would take the map past its entries quota: one new
 * entry per end of the range that cuts an entry, or for an unmap one only when
 * both ends cut the same entry. The model counts on the real map's entries. */
static bool model_split_exceeds(const struct diff *d, uint64_t a, uint64_t len, bool unmap)
{
	struct vm_map_entry *lo = NULL, *hi = NULL;
	struct vm_map *map = (struct vm_map *)&d->c.map; /* lookup moves only the hint */
	bool cut_lo = vm_map_lookup(map, a, &lo) && lo->start < a;
	bool cut_hi = vm_map_lookup(map, a + len - 1, &hi) && hi->end > a + len;
	size_t extra = unmap ? (cut_lo && cut_hi && lo == hi) : (size_t)cut_lo + cut_hi;
	return d->c.map.nentries + extra > d->q.entries;
}

static long m_predict(const struct diff *d, const struct dop *op, const struct mm_request *rq,
                      uint64_t *allocs)
{
	uint64_t a = rq->addr, len = rq->len, end = a + len;
	size_t resident = d->c.pages.used, wired = d->c.wired_pages;

	*allocs = 0;
	switch (op->kind) {
	case D_MAP: {
		bool populate = rq->flags & (MM_MAP_POPULATE | MM_MAP_WIRE);
		long at;

		if ((rq->prot & W) && (rq->prot & X))
			return -MICA_EACCES;
		if (d->c.map.nentries >= d->q.entries)
			return -MICA_ENOMEM;
		if (populate && len / P > d->q.resident - resident)
			return -MICA_ENOMEM;
		if ((rq->flags & MM_MAP_WIRE) && len / P > d->q.wired - wired)
			return -MICA_EAGAIN;
		if (rq->flags & MM_MAP_FIXED) {
			at = (long)a;
		} else if (rq->flags & MM_MAP_FIXED_NOREPLACE) {
			for (uint64_t va = a; va < end; va += P)
				if (m_mapped(d, va))
					return -MICA_EEXIST;
			at = (long)a;
		} else {
			at = m_place(d, a, len, rq->align ? rq->align : P);
			if (at < 0)
				return at;
		}
		*allocs = populate ? len / P : 0;
		return at;
	}
	case D_UNMAP:
		return model_split_exceeds(d, a, len, true) ? -MICA_ENOMEM : 0;
	case D_PROTECT:
		if ((rq->prot & W) && (rq->prot & X))
			return -MICA_EACCES;
		if (model_split_exceeds(d, a, len, false))
			return -MICA_ENOMEM;
		for (uint64_t va = a; va < end; va += P) {
			const struct mpage *p = &d->pg[pidx(va)];

			if (!p->mapped)
				return -MICA_ENOMEM;
			if (p->guard && rq->prot != 0)
				return -MICA_EACCES;
		}
		return 0;
	case D_WIRE: {
		uint64_t newly = 0;

		for (uint64_t va = a; va < end; va += P)
			newly += d->pg[pidx(va)].mapped && !d->pg[pidx(va)].wired;
		if (newly > d->q.wired - wired)
			return -MICA_EAGAIN;
		if (model_split_exceeds(d, a, len, false))
			return -MICA_ENOMEM;
		for (uint64_t va = a; va < end; va += P)
			if (!d->pg[pidx(va)].mapped || d->pg[pidx(va)].guard)
				return -MICA_ENOMEM;
		*allocs = m_missing(d, a, len);
		if (*allocs > d->q.resident - resident)
			return -MICA_ENOMEM;
		return (long)(len / P);
	}
	case D_UNWIRE:
		if (model_split_exceeds(d, a, len, false))
			return -MICA_ENOMEM;
		if (model_split_exceeds(d, a, len, false))
			return -MICA_ENOMEM;
		for (uint64_t va = a; va < end; va += P)
			if (!d->pg[pidx(va)].mapped || d->pg[pidx(va)].guard)
				return -MICA_ENOMEM;
		return 0;
	case D_FAULT: {
		const struct mpage *p = &d->pg[pidx(op->mr[0] & ~PAGE_MASK)];
		unsigned need = op->mr[1] == FAULT_ACCESS_WRITE  ? W
		                : op->mr[1] == FAULT_ACCESS_EXEC ? X
		                                                 : R;

		if (!p->mapped || p->guard)
			return -MICA_EFAULT;
		if (!(p->prot & need))
			return -MICA_EACCES;
		if (p->resident)
			return 0;
		*allocs = 1;
		return resident >= d->q.resident ? -MICA_ENOMEM : 0;
	}
	default: /* QUERY: the fields are checked against the model separately */
		return d->pg[pidx(op->mr[0])].mapped ? 0 : -MICA_ENOENT;
	}
}

static void m_apply(struct diff *d, const struct dop *op, const struct mm_request *rq, long res)
{
	uint64_t a = op->kind == D_MAP ? (uint64_t)res : rq->addr, end = a + rq->len;

	switch (op->kind) {
	case D_MAP:
		m_clear(d, a, rq->len);
		for (uint64_t va = a; va < end; va += P) {
			struct mpage *p = &d->pg[pidx(va)];

			p->mapped = 1;
			p->prot = (uint8_t)rq->prot;
			p->guard = (rq->flags & MM_MAP_GUARD) != 0;
			p->wired = (rq->flags & MM_MAP_WIRE) != 0;
			p->resident = (rq->flags & (MM_MAP_POPULATE | MM_MAP_WIRE)) != 0;
		}
		break;
	case D_UNMAP:
		m_clear(d, a, rq->len);
		break;
	case D_PROTECT:
		for (uint64_t va = a; va < end; va += P)
			d->pg[pidx(va)].prot = (uint8_t)rq->prot;
		break;
	case D_WIRE:
		for (uint64_t va = a; va < end; va += P)
			d->pg[pidx(va)].wired = d->pg[pidx(va)].resident = 1;
		break;
	case D_UNWIRE:
		for (uint64_t va = a; va < end; va += P)
			d->pg[pidx(va)].wired = 0;
		break;
	case D_FAULT:
		d->pg[pidx(op->mr[0] & ~PAGE_MASK)].resident = 1;
		break;
	default:
		break;
	}
}

struct res_walk {
	struct diff *d;
	const char *err;
	uint64_t bad;
	size_t n;
};

static void cmp_resident(void *arg, uint64_t va, uint64_t pa)
{
	struct res_walk *w = arg;
	struct mpage *p;

	w->n++;
	if (w->err != NULL)
		return;
	if (va < DW_BASE || va >= DW_END || !(p = &w->d->pg[pidx(va)])->resident) {
		w->err = "resident page the model does not have";
		w->bad = va;
		return;
	}
	if (p->pa == 0)
		p->pa = pa; /* new since the last step: remember where it went */
	else if (p->pa != pa) {
		w->err = "resident page moved to another frame";
		w->bad = va;
	}
}

static void cmp_pte(void *arg, uint64_t va, uint64_t pa, unsigned prot)
{
	struct res_walk *w = arg;
	const struct mpage *p;

	w->n++;
	if (w->err != NULL)
		return;
	if (va < DW_BASE || va >= DW_END || !(p = &w->d->pg[pidx(va)])->resident || p->prot == 0)
		w->err = "translation for a page that should have none";
	else if (pa != p->pa || prot != mmfake_pte_prot(p->prot))
		w->err = "translation with the wrong frame or protection";
	if (w->err != NULL)
		w->bad = va;
}

/* 0 when the server and the model agree; otherwise d->msg says how they differ. */
static int diff_compare(struct diff *d)
{
	const struct vm_map_entry *e = vm_map_first(&d->c.map);
	const char *why = NULL;
	struct res_walk w = {d, NULL, 0, 0};
	size_t resident = 0, translated = 0, wired = 0, i = 0;

	if (vm_map_check(&d->c.map, &why) != 0)
		return snprintf(d->msg, sizeof(d->msg), "vm_map_check: %s", why), -1;
	if (d->f.misuse)
		return snprintf(d->msg, sizeof(d->msg), "bad kernel call: %s", d->f.why), -1;
	/* Entries against the model's maximal runs. */
	for (;; e = vm_map_next(&d->c.map, e)) {
		while (i < DW_PAGES && !d->pg[i].mapped)
			i++;
		if (i == DW_PAGES)
			break;
		size_t j = i + 1;
		const struct mpage *p = &d->pg[i];

		while (j < DW_PAGES && same_run(&d->pg[i], &d->pg[j]))
			j++;
		if (e == NULL || e->start != DW_BASE + i * P || e->end != DW_BASE + j * P ||
		    e->prot != p->prot || e->max_prot != (p->guard ? 0 : VM_PROT_ALL) ||
		    e->flags != (p->guard ? VM_ENT_GUARD : 0) || e->wired != p->wired)
			return snprintf(
			           d->msg, sizeof(d->msg),
			           "model run [%#llx, %#llx) prot %#x guard %u wired %u, entry "
			           "[%#llx, %#llx) prot %#x flags %#x wired %u",
			           (unsigned long long)(DW_BASE + i * P),
			           (unsigned long long)(DW_BASE + j * P), p->prot, p->guard,
			           p->wired, (unsigned long long)(e ? e->start : 0),
			           (unsigned long long)(e ? e->end : 0), e ? e->prot : 0,
			           e ? e->flags : 0, e ? e->wired : 0),
			       -1;
		i = j;
	}
	if (e == NULL || e->start != DW_END || e->prot != (R | W | X) ||
	    vm_map_next(&d->c.map, e) != NULL)
		return snprintf(d->msg, sizeof(d->msg), "entries beyond the model's runs"), -1;
	for (i = 0; i < DW_PAGES; i++) {
		resident += d->pg[i].resident;
		translated += d->pg[i].resident && d->pg[i].prot;
		wired += d->pg[i].wired;
	}
	mmfake_foreach_resident(&d->c, cmp_resident, &w);
	if (w.err == NULL && w.n != resident)
		w.err = "resident page count differs";
	if (w.err == NULL) {
		w.n = 0;
		mmfake_foreach(&d->f, cmp_pte, &w);
		if (w.err == NULL && w.n != translated)
			w.err = "translation count differs";
	}
	if (w.err != NULL)
		return snprintf(d->msg, sizeof(d->msg),
		                "%s at %#llx (model: %zu resident, %zu "
		                "translated)",
		                w.err, (unsigned long long)w.bad, resident, translated),
		       -1;
	if (mmfake_frames_used(&d->f) != resident || d->c.pages.used != resident ||
	    d->c.wired_pages != wired)
		return snprintf(
		           d->msg, sizeof(d->msg),
		           "frames %zu, resident %zu, wired %zu; model %zu resident, %zu wired",
		           mmfake_frames_used(&d->f), d->c.pages.used, d->c.wired_pages, resident,
		           wired),
		       -1;
	return 0;
}

/* QUERY against the model: the run holding the address. */
static int diff_query(struct diff *d, uint64_t addr, long res)
{
	size_t k = pidx(addr), i = k, j = k + 1, resident = 0;
	const struct mpage *p = &d->pg[k];

	if (!p->mapped)
		return res == -MICA_ENOENT ? 0 : -1;
	while (i > 0 && same_run(&d->pg[i - 1], p))
		i--;
	while (j < DW_PAGES && same_run(&d->pg[j], p))
		j++;
	for (size_t n = i; n < j; n++)
		resident += d->pg[n].resident;
	if (res != 0 || d->nout != 5 || d->out[1] != DW_BASE + i * P ||
	    d->out[2] != DW_BASE + j * P || MM_QUERY_PROT(d->out[3]) != p->prot ||
	    MM_QUERY_MAXPROT(d->out[3]) != (p->guard ? 0u : VM_PROT_ALL) ||
	    MM_QUERY_FLAGS(d->out[3]) != (p->guard ? MM_MAP_GUARD : 0u) ||
	    MM_QUERY_WIRED(d->out[3]) != p->wired || d->out[4] != resident)
		return -1;
	return 0;
}

static void format_op(const struct dop *op, char *buf, size_t n)
{
	snprintf(buf, n, "%s(%#llx, %#llx, %#llx, %#llx) fail_in %ld%s", d_names[op->kind],
	         (unsigned long long)op->mr[0], (unsigned long long)op->mr[1],
	         (unsigned long long)op->mr[2], (unsigned long long)op->mr[3], op->fail_in,
	         op->fail_all ? " (all)" : "");
}

static const unsigned d_labels[] = {MM_OP_MAP,    MM_OP_UNMAP, MM_OP_PROTECT, MM_OP_WIRE,
                                    MM_OP_UNWIRE, 0,           MM_OP_QUERY};

/* One step: decode, predict, run, compare. 0 or -1 (d->msg). */
static int diff_step(struct diff *d, const struct dop *op)
{
	struct mm_request rq = {0};
	uint64_t allocs, failures = d->f.failures;
	long expect, res;
	int err;

	if (op->kind != D_FAULT) {
		err = mm_decode(ipc_tag(d_labels[op->kind], 4), op->mr, &rq);
		if (err != 0)
			return snprintf(d->msg, sizeof(d->msg), "decode refused it: %d", err), -1;
	}
	expect = m_predict(d, op, &rq, &allocs);
	/* An injected failure wins only if the operation gets as far as allocating. */
	if (expect >= 0 && op->fail_in >= 0 && (uint64_t)op->fail_in < allocs)
		expect = -MICA_ENOMEM;
	d->f.fail_in = op->fail_in;
	d->f.fail_all = op->fail_all;
	memset(d->out, 0, sizeof(d->out));
	if (op->kind == D_FAULT) {
		const char *why = NULL;

		res = mm_fault(&d->c, &d->f.env, op->mr[0], (unsigned)op->mr[1], &why);
		if (res != 0 && why == NULL)
			return snprintf(d->msg, sizeof(d->msg), "fault refused with no reason"), -1;
	} else {
		res = mm_handle(&d->c, &d->f.env, &rq, d->out, &d->nout);
	}
	d->f.fail_in = -1;
	d->f.fail_all = false;
	d->ops[op->kind]++;
	d->injected += d->f.failures != failures;
	if (res != expect)
		return snprintf(d->msg, sizeof(d->msg), "returned %ld, model expected %ld", res,
		                expect),
		       -1;
	if (res < 0) {
		d->fails[op->kind]++;
		d->by_err[op->kind][res == -MICA_ENOMEM                          ? 0
		                    : res == -MICA_EACCES                        ? 1
		                    : res == -MICA_EEXIST || res == -MICA_EFAULT ? 2
		                                                                 : 3]++;
	} else
		m_apply(d, op, &rq, res);
	if (diff_compare(d) != 0)
		return -1;
	if (op->kind == D_QUERY && diff_query(d, op->mr[0], res) != 0)
		return snprintf(d->msg, sizeof(d->msg), "QUERY result differs from the model"), -1;
	if (op->kind == D_WIRE && res >= 0) {
		unsigned n = rq.report < res ? rq.report : (unsigned)res;

		if (d->nout != (n ? 4 + n : 1))
			return snprintf(d->msg, sizeof(d->msg), "WIRE gave %u words", d->nout), -1;
		for (unsigned k = 0; k < n; k++)
			if (d->out[4 + k] != d->pg[pidx(rq.addr) + k].pa)
				return snprintf(d->msg, sizeof(d->msg),
				                "WIRE reported %#llx for page %u, not its frame",
				                (unsigned long long)d->out[4 + k], k),
				       -1;
	}
	return 0;
}

static uint64_t seed_for(unsigned salt)
{
	const char *s = getenv("MICA_SEED");

	if (s != NULL && *s != '\0')
		return strtoull(s, NULL, 0);
	return ((uint64_t)time(NULL) << 16) ^ ((uint64_t)clock() << 8) ^ salt;
}

static void test_differential(void **state)
{
	struct diff *d = calloc(1, sizeof(*d));
	const char *scale = getenv("MICA_DIFF_SCALE");
	unsigned long n = 100000, restarts = 0;
	uint64_t seed = seed_for(0x5e);
	struct dop op;
	char buf[256];

	(void)state;
	assert_non_null(d);
	if (scale != NULL && *scale != '\0')
		n = n * strtoul(scale, NULL, 0) / 100;
	d->rng = seed;
	d->q = (struct mm_quota){.entries = 400, .resident = 1024, .wired = 128};
	assert_int_equal(mmfake_init(&d->f, TASK, 1536), 0);
	printf("# differential: seed %#llx (replay: MICA_SEED=%#llx), %lu ops over %d pages\n",
	       (unsigned long long)seed, (unsigned long long)seed, n, DW_PAGES);
	diff_start(d);
	for (unsigned long i = 0; i < n; i++) {
		/* Now and then the task exits: everything must come back. */
		if (rnd(d, 10000) == 0) {
			diff_end(d);
			diff_start(d);
			restarts++;
		}
		rnd_op(d, &op);
		if (diff_step(d, &op) != 0) {
			format_op(&op, buf, sizeof(buf));
			fail_msg("seed %#llx step %lu: %s\n  op: %s", (unsigned long long)seed, i,
			         d->msg, buf);
		}
		if (i % 64 == 0 && mmfake_check_client(&d->f, &d->c, d->msg, sizeof(d->msg)) != 0)
			fail_msg("seed %#llx step %lu: %s", (unsigned long long)seed, i, d->msg);
	}
	for (unsigned k = 0; k < D_NKINDS; k++)
		printf("# %-8s %6lu ops, %6lu refused (ENOMEM %lu, EACCES %lu, EEXIST/EFAULT %lu, "
		       "other %lu)\n",
		       d_names[k], d->ops[k], d->fails[k], d->by_err[k][0], d->by_err[k][1],
		       d->by_err[k][2], d->by_err[k][3]);
	printf("# %lu allocation failures injected, %lu restarts, %zu entries and %zu resident "
	       "pages at the end\n",
	       d->injected, restarts, d->c.map.nentries, d->c.pages.used);
	diff_end(d);
	mmfake_fini(&d->f);
	free(d);
}

/* ---- random raw requests, then exit --------------------------------------------- */

/* Arbitrary requests, valid or not, then mm_client_destroy: every frame comes back. */
static void test_random_then_destroy(void **state)
{
	struct fx *x = *state;
	uint64_t seed = seed_for(0xd3), rng = seed;
	static const uint64_t lens[] = {P, 2 * P, 7 * P, 64 * P, 3, 0, GIB, USER_VA_MAX};

	printf("# random requests: seed %#llx\n", (unsigned long long)seed);
	x->c.quota = (struct mm_quota){.entries = 48, .resident = 256, .wired = 24};
	for (int i = 0; i < 20000; i++) {
		uint64_t v = vmref_rand(&rng), a = BASE + (v % 256) * P, len = lens[(v >> 8) % 8];
		/* The operations a client can ask for alone (SHARE needs a second client). */
		unsigned op = all_ops[(v >> 12) % (NOPS - 1)];
		uint64_t w2 = (v >> 44) % 8, w3 = 0;

		if ((v >> 16) % 16 == 0)
			a = vmref_rand(&rng);
		if ((v >> 20) % 8 == 0)
			x->f.fail_in = (long)((v >> 24) % 4);
		if (op == MM_OP_MAP) {
			w2 |= ((v >> 48) % 32) << 8;
			w3 = (v >> 54) % 4 == 0 ? P << ((v >> 56) % 12) : 0;
		} else if (op == MM_OP_WIRE) {
			w2 = (v >> 44) % 64;
		}
		if (op == MM_OP_INFO) /* nothing for mm_handle to do: a fault instead */
			run(x, RQ_FAULT, a + (v >> 30) % P, 1u << ((v >> 40) % 3), 0, 0);
		else
			run(x, op, a, len, w2, w3);
		x->f.fail_in = -1;
	}
	assert_true(x->f.allocs > 0);
	/* teardown destroys the client and insists the pool is whole again */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_ops),
	    cmocka_unit_test(test_decode_map_rounds_length),
	    cmocka_unit_test(test_decode_range_errors),
	    cmocka_unit_test(test_decode_map_errors),
	    cmocka_unit_test(test_decode_other_errors),
	    cmocka_unit_test(test_decode_share),
	    cmocka_unit_test_setup_teardown(test_fault_lazy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fault_violations, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unmap_partial, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protect_hole, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protect_guard_and_wx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protect_none_and_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fixed_replaces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fixed_noreplace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alignment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_populate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wire, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quota_entries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quota_resident, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quota_wired, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_query, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failinj_map, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failinj_wire, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failinj_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ram_exhausted, setup, teardown),
	    cmocka_unit_test(test_differential),
	    cmocka_unit_test_setup_teardown(test_random_then_destroy, setup, teardown),
	};

	return cmocka_run_group_tests_name("mm_server", tests, NULL, NULL);
}
