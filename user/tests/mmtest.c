/*
 * A client of the memory server exercising the MM protocol: the operations,
 * their error cases, lazy zero-fill, splits, FIXED replacement, alignment,
 * wiring, malloc on top of sbrk, and (in separate runs) the faults that kill.
 * Prints "UTEST mm_...: PASS|FAIL" lines.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mica/param.h"
#include "user/mica.h"
#include "user/mm.h"
#include "user/posix_mm.h"
#include "user/tests/mm_shoot.h"
#include "user/tests/mm_test.h"

static int failures;

static void check(const char *name, int ok, long got)
{
	if (ok)
		printf("UTEST mm_%s: PASS\n", name);
	else
		printf("UTEST mm_%s: FAIL (got %ld)\n", name, got);
	failures += !ok;
}

#define RW (MM_PROT_READ | MM_PROT_WRITE)

static void test_lazy_and_query(void)
{
	char *p;
	long r = mm_map(0, 4 * PAGE_SIZE, RW, 0, 0, (void **)&p);
	check("map_anonymous", r == 0 && p != 0, r);
	struct mm_query_result q;
	r = mm_query(p, &q);
	check("query_fresh", r == 0 && q.start == (uintptr_t)p && q.end == (uintptr_t)p + 4 * PAGE_SIZE &&
				     q.prot == RW && q.resident == 0,
	      r);
	int zero = 1;
	for (unsigned i = 0; i < 4 * PAGE_SIZE; i += 512)
		zero &= p[i] == 0;
	check("lazy_zero_fill", zero, 0);
	memset(p, 0x5a, 4 * PAGE_SIZE);
	check("write_read_back", p[4 * PAGE_SIZE - 1] == 0x5a, p[4 * PAGE_SIZE - 1]);
	r = mm_query(p + PAGE_SIZE, &q);
	check("query_resident", r == 0 && q.resident == 4, (long)q.resident);

	/* Punch out the middle: one entry becomes two, the pages go. */
	r = mm_unmap(p + PAGE_SIZE, 2 * PAGE_SIZE);
	check("partial_unmap", r == 0, r);
	r = mm_query(p + PAGE_SIZE, &q);
	check("hole_is_unmapped", r == -MICA_ENOENT, r);
	r = mm_query(p, &q);
	check("split_left", r == 0 && q.end == (uintptr_t)p + PAGE_SIZE && q.resident == 1, r);
	r = mm_query(p + 3 * PAGE_SIZE, &q);
	check("split_right", r == 0 && q.start == (uintptr_t)p + 3 * PAGE_SIZE && p[3 * PAGE_SIZE] == 0x5a,
	      r);
	/* Protect across the hole fails and changes nothing. */
	r = mm_protect(p, 4 * PAGE_SIZE, MM_PROT_READ);
	check("protect_over_hole", r == -MICA_ENOMEM, r);
	r = mm_query(p, &q);
	check("protect_over_hole_changed_nothing", r == 0 && q.prot == RW, r);
	r = mm_protect(p, PAGE_SIZE, MM_PROT_READ);
	check("protect", r == 0 && mm_query(p, &q) == 0 && q.prot == MM_PROT_READ, r);
	/* Protecting the middle page splits an entry in three; giving it back its
	 * neighbours' protection merges the three into one again. */
	char *m3;
	mm_map(0, 4 * PAGE_SIZE, RW, 0, 0, (void **)&m3);
	r = mm_protect(m3 + PAGE_SIZE, PAGE_SIZE, MM_PROT_READ);
	check("protect_splits_in_three", r == 0 && mm_query(m3 + PAGE_SIZE, &q) == 0 &&
						 q.start == (uintptr_t)m3 + PAGE_SIZE &&
						 q.end == (uintptr_t)m3 + 2 * PAGE_SIZE,
	      r);
	r = mm_protect(m3 + PAGE_SIZE, PAGE_SIZE, RW);
	/* (It may merge further with a compatible neighbour: entries stay maximal.) */
	check("protect_back_merges", r == 0 && mm_query(m3 + PAGE_SIZE, &q) == 0 &&
					     q.start <= (uintptr_t)m3 &&
					     q.end >= (uintptr_t)m3 + 4 * PAGE_SIZE,
	      r);
	mm_unmap(m3, 4 * PAGE_SIZE);
	check("read_after_protect", p[0] == 0x5a, p[0]);
	r = mm_protect(p, PAGE_SIZE, RW | MM_PROT_EXEC);
	check("protect_w_x_refused", r == -MICA_EACCES, r);
	/* Unmapping a range with holes is fine. */
	r = mm_unmap(p, 4 * PAGE_SIZE);
	check("unmap_with_holes", r == 0 && mm_query(p, &q) == -MICA_ENOENT, r);
}

static void test_fixed_and_alignment(void)
{
	char *p, *q2;
	long r = mm_map(0, 8 * PAGE_SIZE, RW, 0, 0, (void **)&p);
	p[0] = 1;
	p[5 * PAGE_SIZE] = 2;
	r = mm_map(p + 4 * PAGE_SIZE, 2 * PAGE_SIZE, RW, MM_MAP_FIXED_NOREPLACE, 0, (void **)&q2);
	check("fixed_noreplace_refuses", r == -MICA_EEXIST, r);
	r = mm_map(p + 4 * PAGE_SIZE, 2 * PAGE_SIZE, RW, MM_MAP_FIXED, 0, (void **)&q2);
	check("fixed_replaces", r == 0 && q2 == p + 4 * PAGE_SIZE && p[5 * PAGE_SIZE] == 0 && p[0] == 1,
	      r);
	mm_unmap(p, 8 * PAGE_SIZE);
	static const size_t aligns[] = {2UL << 20, 1UL << 30};
	for (unsigned i = 0; i < 2; i++) {
		char *a;
		r = mm_map(0, PAGE_SIZE, RW, 0, aligns[i], (void **)&a);
		char name[32];
		snprintf(name, sizeof(name), "aligned_%luM", (unsigned long)(aligns[i] >> 20));
		check(name, r == 0 && ((uintptr_t)a & (aligns[i] - 1)) == 0, r);
		a[0] = 7;
		mm_unmap(a, PAGE_SIZE);
	}
}

static void test_superpage_fault(void)
{
	char *p;
	long r = mm_map(0, 4UL << 20, RW, 0, 2UL << 20, (void **)&p);
	p[12345] = 1; /* inside the first 2 MiB: a whole 2 MiB frame */
	struct mm_query_result q;
	check("superpage_fault", r == 0 && mm_query(p, &q) == 0 && q.resident == 512,
	      (long)q.resident);
	int zero = 1;
	for (unsigned off = 0; off < (2U << 20); off += 64 * 1024)
		zero &= off == 12288 || p[off] == 0;
	check("superpage_zeroed", zero && p[12345] == 1, 0);
	/* Cut one page out of the middle: the kernel splits the translation. */
	r = mm_unmap(p + 300 * PAGE_SIZE, PAGE_SIZE);
	check("superpage_partial_unmap", r == 0 && p[299 * PAGE_SIZE] == 0 && p[12345] == 1 &&
						 mm_query(p, &q) == 0 && q.resident == 300,
	      (long)q.resident);
	r = mm_protect(p, PAGE_SIZE, MM_PROT_READ);
	check("superpage_partial_protect", r == 0 && p[PAGE_SIZE] == 0, r);
	mm_unmap(p, 4UL << 20);
}

static void test_wire(void)
{
	char *p;
	uint64_t pa[8] = {0}, pa2[8] = {0};
	long r = mm_map(0, 8 * PAGE_SIZE, RW, 0, 0, (void **)&p);
	r = mm_wire(p, 8 * PAGE_SIZE, pa, 8);
	int ok = r == 8;
	for (int i = 0; i < 8; i++)
		ok &= pa[i] != 0 && (pa[i] & PAGE_MASK) == 0;
	check("wire_reports_frames", ok, r);
	memset(p, 3, 8 * PAGE_SIZE);
	r = mm_wire(p, 8 * PAGE_SIZE, pa2, 8);
	check("wire_stable_and_does_not_nest", r == 8 && memcmp(pa, pa2, sizeof(pa)) == 0, r);
	struct mm_query_result q;
	check("query_wired", mm_query(p, &q) == 0 && q.wired == 1 && q.resident == 8, 0);
	struct mm_info_result info;
	check("info_counts_wired", mm_info(&info) == 0 && info.wired >= 8, (long)info.wired);
	check("info_reports_quotas", info.quota_entries == 512 && info.quota_resident == 8192 &&
					     info.quota_wired == 64,
	      (long)info.quota_entries);
	r = mm_unwire(p, 8 * PAGE_SIZE);
	check("unwire", r == 0 && mm_query(p, &q) == 0 && q.wired == 0, r);
	r = mm_wire(p, 128 * PAGE_SIZE, 0, 0);
	check("wire_over_hole", r == -MICA_ENOMEM, r);
	char *big;
	mm_map(0, 128 * PAGE_SIZE, RW, 0, 0, (void **)&big);
	r = mm_wire(big, 128 * PAGE_SIZE, 0, 0);
	check("wire_quota", r == -MICA_EAGAIN, r);
	mm_unmap(big, 128 * PAGE_SIZE);
	mm_unmap(p, 8 * PAGE_SIZE);
}

static void test_errors(void)
{
	void *a;
	check("map_zero_length", mm_map(0, 0, RW, 0, 0, &a) == -MICA_EINVAL, 0);
	check("map_unknown_flag", mm_map(0, PAGE_SIZE, RW, 0x80, 0, &a) == -MICA_EINVAL, 0);
	check("map_bad_prot", mm_map(0, PAGE_SIZE, 0x10, 0, 0, &a) == -MICA_EINVAL, 0);
	check("map_align_not_pow2", mm_map(0, PAGE_SIZE, RW, 0, 3 * PAGE_SIZE, &a) == -MICA_EINVAL, 0);
	check("map_align_too_small", mm_map(0, PAGE_SIZE, RW, 0, 16, &a) == -MICA_EINVAL, 0);
	check("map_fixed_misaligned", mm_map((void *)0x10001, PAGE_SIZE, RW, MM_MAP_FIXED, 0, &a) ==
					      -MICA_EINVAL,
	      0);
	check("map_fixed_page_zero", mm_map((void *)0, PAGE_SIZE, RW, MM_MAP_FIXED, 0, &a) == -MICA_EFAULT,
	      0);
	check("map_fixed_kernel", mm_map((void *)0xffffffc000000000UL, PAGE_SIZE, RW, MM_MAP_FIXED, 0,
					 &a) == -MICA_EFAULT,
	      0);
	check("map_w_x", mm_map(0, PAGE_SIZE, RW | MM_PROT_EXEC, 0, 0, &a) == -MICA_EACCES, 0);
	check("map_both_fixed", mm_map((void *)0x100000, PAGE_SIZE, RW,
				       MM_MAP_FIXED | MM_MAP_FIXED_NOREPLACE, 0, &a) == -MICA_EINVAL,
	      0);
	check("map_guard_with_prot", mm_map(0, PAGE_SIZE, RW, MM_MAP_GUARD, 0, &a) == -MICA_EINVAL, 0);
	check("map_too_big", mm_map(0, USER_VA_MAX, RW, 0, 0, &a) == -MICA_ENOMEM, 0);
	check("unmap_misaligned", mm_unmap((void *)0x10001, PAGE_SIZE) == -MICA_EINVAL, 0);
	check("unmap_zero", mm_unmap((void *)0x10000, 0) == -MICA_EINVAL, 0);
	check("unmap_wraps", mm_unmap((void *)0x10000, (size_t)0 - PAGE_SIZE) == -MICA_EOVERFLOW, 0);
	check("unmap_outside", mm_unmap((void *)(USER_VA_MAX - PAGE_SIZE), 2 * PAGE_SIZE) ==
				       -MICA_EFAULT,
	      0);
	check("protect_hole", mm_protect((void *)0x3000000000UL, PAGE_SIZE, MM_PROT_READ) ==
				      -MICA_ENOMEM,
	      0);
	check("protect_bad_prot", mm_protect((void *)0x10000, PAGE_SIZE, 0x40) == -MICA_EINVAL, 0);
	struct mm_query_result q;
	check("query_unmapped", mm_query((void *)0x3000000000UL, &q) == -MICA_ENOENT, 0);
	check("query_kernel", mm_query((void *)0xffffffc000000000UL, &q) == -MICA_EFAULT, 0);
	uint64_t pa[1];
	check("wire_report_too_many", mm_wire((void *)0x10000, PAGE_SIZE, pa, MM_WIRE_REPORT + 1) ==
					      -MICA_EINVAL,
	      0);
	/* A guard entry: protecting it above its maximum is refused. */
	void *g;
	long r = mm_map(0, PAGE_SIZE, MM_PROT_NONE, MM_MAP_GUARD, 0, &g);
	check("map_guard", r == 0, r);
	check("protect_guard_above_max", mm_protect(g, PAGE_SIZE, MM_PROT_READ) == -MICA_EACCES, 0);
	mm_unmap(g, PAGE_SIZE);
	struct mica_msg m = {.tag = ipc_tag(0x1f0, 0)};
	check("unknown_op", mica_call(MM_SERVER_SLOT, &m) == 0 && (long)m.mr[0] == -MICA_ENOSYS,
	      (long)m.mr[0]);
}

static void test_malloc(void)
{
	char *big = malloc(1 << 20);
	int ok = big != 0;
	if (ok) {
		memset(big, 0x11, 1 << 20);
		ok = big[(1 << 20) - 1] == 0x11;
	}
	void *small[200];
	for (int i = 0; i < 200; i++) {
		small[i] = malloc(16 + i);
		ok &= small[i] != 0;
		if (small[i])
			memset(small[i], i, 16 + i);
	}
	for (int i = 0; i < 200; i++)
		free(small[i]);
	free(big);
	check("malloc_on_sbrk", ok, 0);
	void *p = mmap(0, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	ok = p != MAP_FAILED;
	if (ok) {
		((char *)p)[0] = 1;
		ok = mprotect(p, PAGE_SIZE, PROT_READ) == 0 && mlock(p, PAGE_SIZE) == 0 &&
		     munlock(p, PAGE_SIZE) == 0 && munmap(p, 3 * PAGE_SIZE) == 0;
	}
	check("posix_wrappers", ok, 0);
}

/* Random operations against an in-task model of which pages are mapped with
 * what protection and what content byte. */
#define MODEL_BASE 0x3100000000UL
#define MODEL_PAGES 256
static uint8_t model_prot[MODEL_PAGES]; /* 0 unmapped, else prot | 0x80 */
static uint8_t model_byte[MODEL_PAGES];
static uint8_t model_touched[MODEL_PAGES]; /* accessed since mapped: resident */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* QUERY of a random page and, now and then, INFO must agree with the model:
 * the protection of a mapped page, no entry at an unmapped one, and at least
 * as many resident pages as the model has touched. */
static int server_agrees(void)
{
	unsigned pg = next_rand() % MODEL_PAGES;
	uint64_t va = MODEL_BASE + (uint64_t)pg * PAGE_SIZE;
	struct mm_query_result q;
	long r = mm_query((void *)va, &q);
	int ok = model_prot[pg] ? r == 0 && q.start <= va && va < q.end &&
					  q.prot == (model_prot[pg] & ~0x80u)
				: r == -MICA_ENOENT;
	if (ok && next_rand() % 16 == 0) {
		struct mm_info_result info;
		uint64_t touched = 0;
		for (unsigned k = 0; k < MODEL_PAGES; k++)
			touched += model_prot[k] && model_touched[k];
		ok = mm_info(&info) == 0 && info.resident >= touched &&
		     info.resident <= info.quota_resident && info.entries <= info.quota_entries;
	}
	return ok;
}

/* `name` NULL: "random_ops_<ops>". With `checks`, server_agrees() after
 * every operation. */
static void test_random(unsigned ops, int checks, const char *name)
{
	int ok = 1;
	unsigned i;
	for (i = 0; i < ops && ok; i++) {
		unsigned first = next_rand() % MODEL_PAGES;
		unsigned n = 1 + next_rand() % 8;
		if (first + n > MODEL_PAGES)
			n = MODEL_PAGES - first;
		char *va = (char *)(MODEL_BASE + (uint64_t)first * PAGE_SIZE);
		unsigned what = next_rand() % 4;
		if (what == 0) {
			void *a;
			long r = mm_map(va, n * PAGE_SIZE, RW, MM_MAP_FIXED, 0, &a);
			ok &= r == 0;
			for (unsigned k = 0; k < n; k++) {
				model_prot[first + k] = 0x80 | RW;
				model_byte[first + k] = 0;
				model_touched[first + k] = 0;
			}
		} else if (what == 1) {
			ok &= mm_unmap(va, n * PAGE_SIZE) == 0;
			memset(&model_prot[first], 0, n);
		} else if (what == 2) {
			unsigned prot = next_rand() % 2 ? RW : MM_PROT_READ;
			bool hole = false;
			for (unsigned k = 0; k < n; k++)
				hole |= model_prot[first + k] == 0;
			long r = mm_protect(va, n * PAGE_SIZE, prot);
			ok &= hole ? r == -MICA_ENOMEM : r == 0;
			if (!hole)
				for (unsigned k = 0; k < n; k++)
					model_prot[first + k] = 0x80 | prot;
		} else {
			/* Touch: write where writable, read back everything mapped. */
			for (unsigned k = 0; k < n; k++) {
				char *pg = va + (uint64_t)k * PAGE_SIZE;
				if (!model_prot[first + k])
					continue;
				model_touched[first + k] = 1;
				if (model_prot[first + k] & MM_PROT_WRITE) {
					uint8_t b = (uint8_t)next_rand();
					pg[100] = (char)b;
					model_byte[first + k] = b;
				}
				ok &= (uint8_t)pg[100] == model_byte[first + k];
			}
		}
		if (checks && ok)
			ok = server_agrees();
	}
	char buf[48];
	if (!name) {
		snprintf(buf, sizeof(buf), "random_ops_%u", ops);
		name = buf;
	}
	check(name, ok, (long)i);
	mm_unmap((void *)MODEL_BASE, MODEL_PAGES * PAGE_SIZE);
}

/* Pinned to `hart`, as the k-th client there: random operations with checks,
 * on a random sequence of our own, and still on that hart at the end. */
static void stress(unsigned hart, unsigned k)
{
	unsigned h0 = ~0u, h1 = ~0u;
	long r = mica_thread_affinity(1UL << hart, &h0);
	rng ^= (uint64_t)(hart * 2 + k + 1) * 0x2545f4914f6cdd1dULL;
	if (!rng)
		rng = 1; /* xorshift never leaves zero */
	char name[48];
	snprintf(name, sizeof(name), "stress_hart%u_%u", hart, k);
	test_random(MMTEST_STRESS_OPS, 1, name);
	mica_thread_affinity(0, &h1);
	snprintf(name, sizeof(name), "stress_stayed_on_hart%u_%u", hart, k);
	check(name, r >= 0 && h0 == hart && h1 == hart, r < 0 ? r : (long)h1);
}

int mmtest_wait_mapped(volatile char *va)
{
	struct mm_query_result q;
	for (int spins = 0; spins < 20000; spins++) {
		if (mm_query((void *)va, &q) == 0)
			return 1;
		mica_yield();
	}
	return 0;
}

static void share_a(void)
{
	char *buf, *in_b;
	mm_map(0, 2 * PAGE_SIZE, RW, 0, 0, (void **)&buf);
	strcpy(buf, "hello from A");
	long r = mm_share(buf, 2 * PAGE_SIZE, MMTEST_TOKEN_SLOT, (void *)MMTEST_SHARE_VA, RW,
			  MM_MAP_FIXED_NOREPLACE, (void **)&in_b);
	check("share_into_b", r == 0 && in_b == (char *)MMTEST_SHARE_VA, r);
	check("share_without_token", mm_share(buf, PAGE_SIZE, 20, 0, MM_PROT_READ, 0, 0) ==
					     -MICA_EBADF,
	      0);
	check("share_above_prot", mm_protect(buf, PAGE_SIZE, MM_PROT_READ) == 0 &&
					  mm_share(buf, PAGE_SIZE, MMTEST_TOKEN_SLOT, 0, RW, 0, 0) ==
						  -MICA_EACCES,
	      0);
	mm_protect(buf, PAGE_SIZE, RW);
	check("share_hole", mm_share(buf, 4 * PAGE_SIZE, MMTEST_TOKEN_SLOT, 0, MM_PROT_READ, 0, 0) ==
				    -MICA_ENOMEM,
	      0);
	/* B answers in the second page; then we leave while B still maps it. */
	for (int spins = 0; spins < 100000 && strcmp(buf + PAGE_SIZE, "hello from B") != 0; spins++)
		mica_yield();
	check("share_visible_both_ways", strcmp(buf + PAGE_SIZE, "hello from B") == 0, 0);
	/* Leave holding wired memory too: the server must take it all back. */
	char *pinned;
	mm_map(0, 4 * PAGE_SIZE, RW, MM_MAP_WIRE, 0, (void **)&pinned);
	strcpy(buf + 100, "A is leaving");
}

static void share_b(void)
{
	volatile char *shared = (volatile char *)MMTEST_SHARE_VA;
	if (!mmtest_wait_mapped(shared)) {
		check("share_arrived", 0, 0);
		return;
	}
	check("share_seen_by_b", strcmp((const char *)shared, "hello from A") == 0, 0);
	strcpy((char *)shared + PAGE_SIZE, "hello from B");
	for (int spins = 0; spins < 100000 && strcmp((const char *)shared + 100, "A is leaving") != 0;
	     spins++)
		mica_yield();
	for (int i = 0; i < 50; i++)
		mica_yield(); /* A exits meanwhile */
	check("share_survives_owner_exit", strcmp((const char *)shared, "hello from A") == 0, 0);
	check("unmap_shared", mm_unmap((void *)shared, 2 * PAGE_SIZE) == 0, 0);
}

/* Allocate (populated) until the server says no, free it all, and again: the
 * same amount must fit the second time, and the free count must come back. */
static void oom(void)
{
	enum { MAX = 1024 };
	static void *chunks[MAX];
	struct mm_info_result before, after;
	mm_info(&before);
	/* About 256 chunks whatever the RAM size. */
	size_t chunk = (before.free_frames / 256 + 1) * PAGE_SIZE;
	unsigned got[2] = {0, 0};
	long last = 0;
	for (int round = 0; round < 2; round++) {
		unsigned n = 0;
		while (n < MAX &&
		       (last = mm_map(0, chunk, RW, MM_MAP_POPULATE, 0, &chunks[n])) == 0)
			n++;
		got[round] = n;
		for (unsigned i = 0; i < n; i++)
			mm_unmap(chunks[i], chunk);
	}
	mm_info(&after);
	check("oom_reports_enomem", last == -MICA_ENOMEM && got[0] > 0, last);
	check("oom_same_twice", got[0] == got[1], (long)got[1]);
	/* The server's own bookkeeping grew meanwhile (page tables lent to the
	 * kernel, its heap): those frames are accounted, not lost. */
	check("oom_frames_back", after.free_frames + after.server_held ==
					 before.free_frames + before.server_held,
	      (long)after.free_frames);
}

static inline uint64_t rdcycle(void)
{
	uint64_t c;
	__asm__ volatile("rdcycle %0" : "=r"(c));
	return c;
}

static void bench_report(const char *name, uint64_t total, uint64_t per)
{
	uint64_t hundredths = total * 100 / per;
	printf("BENCH %s %llu.%02llu instructions\n", name, (unsigned long long)(hundredths / 100),
	       (unsigned long long)(hundredths % 100));
}

/* MAP then UNMAP of `pages` pages, touching each page in between when asked;
 * reported per page. */
static void bench_map_cycle(const char *name, unsigned pages, unsigned flags, int touch,
			    unsigned rounds)
{
	uint64_t t0 = rdcycle();
	for (unsigned r = 0; r < rounds; r++) {
		char *p;
		mm_map(0, pages * PAGE_SIZE, RW, flags, 0, (void **)&p);
		if (touch)
			for (unsigned i = 0; i < pages; i++)
				p[i * PAGE_SIZE] = 1;
		mm_unmap(p, pages * PAGE_SIZE);
	}
	bench_report(name, rdcycle() - t0, (uint64_t)rounds * pages);
}

static void bench_mm(void)
{
	/* Warm up the server's heap and the kernel's tables. */
	bench_map_cycle("warmup", 64, 0, 1, 4);
	bench_map_cycle("mm_map_unmap_1_page_untouched", 1, 0, 0, 200);
	bench_map_cycle("mm_map_touch_unmap_1_page", 1, 0, 1, 200);
	bench_map_cycle("mm_map_touch_unmap_64_pages_per_page", 64, 0, 1, 20);
	bench_map_cycle("mm_map_populate_unmap_64_pages_per_page", 64, MM_MAP_POPULATE, 0, 20);

	char *p;
	mm_map(0, 64 * PAGE_SIZE, RW, 0, 0, (void **)&p);
	uint64_t t0 = rdcycle();
	mm_wire(p, 64 * PAGE_SIZE, 0, 0);
	bench_report("mm_wire_64_pages", rdcycle() - t0, 1);
	mm_unwire(p, 64 * PAGE_SIZE);
	t0 = rdcycle();
	for (int i = 0; i < 100; i++) {
		mm_protect(p + 17 * PAGE_SIZE, PAGE_SIZE, MM_PROT_READ); /* splits the entry */
		mm_protect(p + 17 * PAGE_SIZE, PAGE_SIZE, RW);           /* merges it back */
	}
	bench_report("mm_protect_1_page_of_64_split_and_merge", rdcycle() - t0, 200);
	mm_unmap(p, 64 * PAGE_SIZE);

	/* A map that already holds n entries: guard entries one page apart can
	 * never merge, so each is an entry of its own. */
	static const unsigned sizes[] = {10, 1000, 10000};
	unsigned have = 0;
	uint64_t base = 0x1000000000UL;
	for (unsigned s = 0; s < 3; s++) {
		for (; have < sizes[s]; have++) {
			void *g;
			mm_map((void *)(base + (uint64_t)have * 2 * PAGE_SIZE), PAGE_SIZE,
			       MM_PROT_NONE, MM_MAP_GUARD | MM_MAP_FIXED_NOREPLACE, 0, &g);
		}
		char name[64];
		snprintf(name, sizeof(name), "mm_map_unmap_with_%u_entries", sizes[s]);
		bench_map_cycle(name, 1, 0, 0, 200);
	}
	printf("BENCH mm done\n");
}

/* `pa` is a device this task was granted (0: none on this machine). */
static void test_device(uint64_t pa)
{
	volatile uint32_t *regs;
	if (pa) {
		long r = mm_map_device(pa, PAGE_SIZE, MM_PROT_READ, (void **)&regs);
		check("map_device", r == 0 && regs != 0, r);
		if (r == 0) {
			(void)regs[0]; /* a register read through the mapping must not fault */
			struct mm_query_result q;
			check("device_entry", mm_query((void *)regs, &q) == 0 &&
						      q.resident == 0 && q.prot == MM_PROT_READ,
			      0);
			check("device_protect_refused",
			      mm_protect((void *)regs, PAGE_SIZE, RW) == -MICA_EINVAL, 0);
			check("device_wire_refused", mm_wire((void *)regs, PAGE_SIZE, 0, 0) ==
							     -MICA_EINVAL,
			      0);
			check("unmap_device", mm_unmap((void *)regs, PAGE_SIZE) == 0, 0);
		}
		check("map_device_exec_refused",
		      mm_map_device(pa, PAGE_SIZE, MM_PROT_EXEC, 0) == -MICA_EINVAL, 0);
		check("map_device_misaligned", mm_map_device(pa + 8, PAGE_SIZE, MM_PROT_READ, 0) ==
						       -MICA_EINVAL,
		      0);
	}
	/* Our own RAM (a page whose frame WIRE reports) is not a device. */
	char *p;
	uint64_t frame = 0;
	mm_map(0, PAGE_SIZE, RW, MM_MAP_WIRE, 0, (void **)&p);
	mm_wire(p, PAGE_SIZE, &frame, 1);
	check("map_device_ram_refused", frame && mm_map_device(frame, PAGE_SIZE, MM_PROT_READ, 0) ==
							  -MICA_EPERM,
	      0);
	check("map_device_ungranted", mm_map_device(0x0, PAGE_SIZE, MM_PROT_READ, 0) == -MICA_EPERM,
	      0);
}

static void demo_writer(void)
{
	printf("writer: malloc(64 KiB) on top of sbrk and MAP\n");
	char *heap = malloc(64 * 1024);
	memset(heap, 0, 64 * 1024);
	char *buf;
	mm_map(0, PAGE_SIZE, RW, 0, 0, (void **)&buf);
	strcpy(buf, "hello from the writer, through shared frames");
	void *in_reader;
	long r = mm_share(buf, PAGE_SIZE, MMTEST_TOKEN_SLOT, (void *)MMTEST_SHARE_VA, MM_PROT_READ,
			  MM_MAP_FIXED_NOREPLACE, &in_reader);
	printf("writer: shared one page read-only into the reader at %p (%ld)\n", in_reader, r);
	mm_protect(buf, PAGE_SIZE, MM_PROT_READ);
	printf("writer: protected my own copy read-only\n");
	char *dma;
	uint64_t pa[4];
	mm_map(0, 4 * PAGE_SIZE, RW, 0, 0, (void **)&dma);
	r = mm_wire(dma, 4 * PAGE_SIZE, pa, 4);
	printf("writer: wired a 4-page DMA buffer at %p: frames %#llx %#llx %#llx %#llx\n",
	       (void *)dma, (unsigned long long)pa[0], (unsigned long long)pa[1],
	       (unsigned long long)pa[2], (unsigned long long)pa[3]);
	struct mm_info_result info;
	mm_info(&info);
	printf("writer: %llu pages resident, %llu wired, %llu map entries; server has %llu of %llu "
	       "frames free\n",
	       (unsigned long long)info.resident, (unsigned long long)info.wired,
	       (unsigned long long)info.entries, (unsigned long long)info.free_frames,
	       (unsigned long long)info.total_frames);
	for (int i = 0; i < 200; i++)
		mica_yield(); /* let the reader look before we go */
	free(heap);
}

static void demo_reader(void)
{
	volatile char *shared = (volatile char *)MMTEST_SHARE_VA;
	if (!mmtest_wait_mapped(shared))
		return;
	printf("reader: found \"%s\" at %p\n", (const char *)shared, (void *)shared);
	printf("reader: now writing to that read-only page on purpose...\n");
	shared[0] = 'X';
	printf("reader: still alive?! that is a bug\n");
}

/* Our second thread, for the modes that have one (started by the server). */
void mica_thread_main(uintptr_t arg)
{
	unsigned hart = (unsigned)(arg >> MMTEST_ARG_SHIFT >> 8) & 0xff;
	if ((arg & MMTEST_MODE_MASK) == MMTEST_SHOOT)
		mm_shoot_replacer(hart);
	else if ((arg & MMTEST_MODE_MASK) == MMTEST_SHOOT_SHARE)
		mm_shoot_share_replacer(hart);
}

int mica_main(uintptr_t arg)
{
	uintptr_t mode = arg & MMTEST_MODE_MASK;
	volatile char *p;
	switch (mode) {
	case MMTEST_MAIN:
		test_lazy_and_query();
		test_fixed_and_alignment();
		test_superpage_fault();
		test_wire();
		test_errors();
		test_malloc();
		return failures;
	case MMTEST_RANDOM:
		test_random(arg >> MMTEST_ARG_SHIFT ? (unsigned)(arg >> MMTEST_ARG_SHIFT)
						    : MMTEST_RANDOM_OPS,
			    0, 0);
		return failures;
	case MMTEST_WRITE_RO:
		mm_map(0, PAGE_SIZE, MM_PROT_READ, 0, 0, (void **)&p);
		p[0] = 1; /* the server kills us here */
		return 100;
	case MMTEST_EXEC_NX:
		mm_map(0, PAGE_SIZE, RW, 0, 0, (void **)&p);
		((void (*)(void))p)();
		return 100;
	case MMTEST_SHARE_A:
		share_a();
		return failures;
	case MMTEST_SHARE_B:
		share_b();
		return failures;
	case MMTEST_OOM:
		oom();
		return failures;
	case MMTEST_DEVICE:
		test_device(arg & ~MMTEST_MODE_MASK);
		return failures;
	case MMTEST_DEMO_WRITER:
		demo_writer();
		return 0;
	case MMTEST_DEMO_READER:
		demo_reader();
		return 0;
	case MMTEST_BENCH:
		bench_mm();
		return 0;
	case MMTEST_SHOOT:
		return mm_shoot_reader((unsigned)(arg >> MMTEST_ARG_SHIFT) & 0xff);
	case MMTEST_SHOOT_SHARE:
		return mm_shoot_share_reader(0, (unsigned)(arg >> MMTEST_ARG_SHIFT) & 0xff);
	case MMTEST_SHOOT_PEER:
		return mm_shoot_share_reader(1, (unsigned)(arg >> MMTEST_ARG_SHIFT) & 0xff);
	case MMTEST_STRESS:
		stress((unsigned)(arg >> MMTEST_ARG_SHIFT) & 0xff,
		       (unsigned)(arg >> MMTEST_ARG_SHIFT >> 8));
		return failures;
	case MMTEST_GUARD:
		mm_map(0, PAGE_SIZE, MM_PROT_NONE, MM_MAP_GUARD, 0, (void **)&p);
		return p[0];
	}
	return 99;
}
