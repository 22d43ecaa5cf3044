/* Host benchmark for mm/vmem: deterministic counts, not timings.
 *
 * For arenas holding 10, 1 000, 100 000 and 1 000 000 live segments (half of them
 * freed again, so the free lists are as fragmented as they get), it reports the
 * average number of free segments examined and hash links followed
 * (vmem_bench_visits, compiled in with -DMICA_BENCH) per operation:
 * instant-fit and best-fit allocation, a 2 MiB-aligned xalloc, free, and a
 * quantum-cached allocation. Fixed seed: the same build prints the same figures.
 *
 *   make bench-host        (or build/bench/bench_vmem after make build/bench/bench_vmem) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mm/vmem.h"

#define PAGE      4096ull
#define SAMPLES   200
#define MAX_PAGES 16

static uint64_t bench_rng = 0x5eed;

static uint64_t next_rand(void)
{
	bench_rng ^= bench_rng << 13;
	bench_rng ^= bench_rng >> 7;
	bench_rng ^= bench_rng << 17;
	return bench_rng;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_vmem: %s failed: %d\n", what, err);
	exit(1);
}

struct bench_arena {
	struct vmem vm;
	struct vmem_btag_pool pool;
	struct vmem_btag *tags;
	struct vmem_btag **buckets;
	vmem_addr_t *live;
};

static size_t pow2_at_least(size_t n)
{
	size_t p = 2;

	while (p < n)
		p <<= 1;
	return p;
}

/* n segments of 1..16 pages, then every other one freed again. */
static void build(struct bench_arena *b, size_t n, vmem_size_t qcache_max)
{
	size_t ntags = 2 * n + 64;
	struct vmem_config cfg = {.name = "bench", .quantum = PAGE, .qcache_max = qcache_max};
	vmem_size_t span = (vmem_size_t)n * MAX_PAGES * PAGE * 2 + (1ull << 30);
	int err;

	memset(b, 0, sizeof(*b));
	b->tags = calloc(ntags, sizeof(*b->tags));
	b->buckets = calloc(pow2_at_least(n), sizeof(*b->buckets));
	b->live = calloc(n, sizeof(*b->live));
	if (b->tags == NULL || b->buckets == NULL || b->live == NULL)
		die("calloc", 0);
	vmem_btag_pool_init(&b->pool, NULL, NULL, 0);
	vmem_btag_pool_add(&b->pool, b->tags, ntags * sizeof(*b->tags));
	cfg.pool = &b->pool;
	cfg.hash_buckets = b->buckets;
	cfg.hash_nbuckets = pow2_at_least(n);
	err = vmem_init(&b->vm, &cfg);
	if (err != 0)
		die("vmem_init", err);
	err = vmem_add(&b->vm, 1ull << 32, span);
	if (err != 0)
		die("vmem_add", err);
	vmem_size_t *sizes = calloc(n, sizeof(*sizes));

	if (sizes == NULL)
		die("calloc", 0);
	for (size_t i = 0; i < n; i++) {
		sizes[i] = (1 + next_rand() % MAX_PAGES) * PAGE;
		err = vmem_alloc(&b->vm, sizes[i], VMEM_INSTANTFIT, &b->live[i]);
		if (err != 0)
			die("populate", err);
	}
	for (size_t i = 0; i < n; i += 2) {
		err = vmem_xfree(&b->vm, b->live[i], sizes[i]);
		if (err != 0)
			die("populate free", err);
	}
	free(sizes);
}

static void destroy(struct bench_arena *b)
{
	free(b->tags);
	free(b->buckets);
	free(b->live);
}

/* Average visits of `size`/`flags` allocations, each freed right away (the free is
 * counted separately). */
static void measure_alloc(struct bench_arena *b, vmem_size_t align, unsigned flags,
                          bool cached_size, double *alloc_cost, double *free_cost)
{
	uint64_t alloc_visits = 0, free_visits = 0;

	for (int i = 0; i < SAMPLES; i++) {
		vmem_size_t size = cached_size ? PAGE : (1 + next_rand() % MAX_PAGES) * PAGE;
		vmem_addr_t a;
		uint64_t v0 = vmem_bench_visits;
		int err = align != 0 ? vmem_xalloc(&b->vm, size, align, 0, 0, 0, 0, flags, &a)
		                     : vmem_alloc(&b->vm, size, flags, &a);

		if (err != 0)
			die("measured alloc", err);
		alloc_visits += vmem_bench_visits - v0;
		v0 = vmem_bench_visits;
		err = align != 0 ? vmem_xfree(&b->vm, a, size) : vmem_free(&b->vm, a, size);
		if (err != 0)
			die("measured free", err);
		free_visits += vmem_bench_visits - v0;
	}
	*alloc_cost = (double)alloc_visits / SAMPLES;
	*free_cost = (double)free_visits / SAMPLES;
}

int main(void)
{
	static const size_t sizes[] = {10, 1000, 100000, 1000000};

	printf("vmem: visits per operation (free segments examined + hash links followed)\n");
	printf("sizeof(struct vmem_btag) = %zu bytes (one per span and per segment), "
	       "sizeof(struct vmem) = %zu bytes\n\n",
	       sizeof(struct vmem_btag), sizeof(struct vmem));
	printf("%10s %10s %12s %10s %12s %10s %10s\n", "segments", "free segs", "instantfit",
	       "bestfit", "xalloc 2MiB", "free", "qcache");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct bench_arena b;
		struct vmem_stats st;
		double inst, best, aligned, fr, fr2, fr3, qc, qfr;

		build(&b, sizes[i], 0);
		vmem_get_stats(&b.vm, &st);
		measure_alloc(&b, 0, VMEM_INSTANTFIT, false, &inst, &fr);
		measure_alloc(&b, 0, VMEM_BESTFIT, false, &best, &fr2);
		measure_alloc(&b, 512 * PAGE, VMEM_INSTANTFIT, false, &aligned, &fr3);
		destroy(&b);
		build(&b, sizes[i], 8 * PAGE);
		measure_alloc(&b, 0, VMEM_INSTANTFIT, true, &qc, &qfr);
		destroy(&b);
		printf("%10zu %10zu %12.2f %10.2f %12.2f %10.2f %10.2f\n", st.nsegments, st.nfree,
		       inst, best, aligned, (fr + fr2 + fr3) / 3, qc + qfr);
	}
	printf("\ninstantfit and free stay flat (O(1)); bestfit scans one size class, so it grows "
	       "with the number of free segments of the request's class.\n");
	return 0;
}
