/* vm_map benchmark: tree nodes visited per operation for maps of 10 to 1 000 000 entries.
 *
 * The maps are built by fixed inserts: entries of 1-3 pages separated by gaps of 1-4
 * pages, so that no inner gap holds 8 pages and the only place a larger request fits is
 * the free space after the last entry. A first-fit list walk would visit every entry;
 * the gap-augmented tree visits O(log n) nodes. Counts are deterministic.
 *
 * With --callgrind, each measured batch is bracketed by callgrind client requests so
 * that `valgrind --tool=callgrind --instr-atstart=no` reports instructions per batch
 * (see docs/BENCHMARKS.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#include "mica/errno.h"
#include "mica/param.h"
#include "mm/vm_map.h"

#define P    PAGE_SIZE
#define BASE 0x10000000UL
#define TOP  (BASE + (1UL << 36))
#define RW   (VM_PROT_READ | VM_PROT_WRITE)

/* Entries come from one preallocated array: no allocator noise in the figures. */
struct pool {
	struct vm_map_entry *mem, *free;
	size_t used, cap;
};

static struct vm_map_entry *pool_alloc(void *ctx)
{
	struct pool *p = ctx;
	struct vm_map_entry *e = p->free;

	if (e != NULL) {
		p->free = e->next;
		return e;
	}
	return p->used < p->cap ? &p->mem[p->used++] : NULL;
}

static void pool_free(void *ctx, struct vm_map_entry *e)
{
	struct pool *p = ctx;

	e->next = p->free;
	p->free = e;
}

static int callgrind_mode;

static void batch_begin(void)
{
	if (callgrind_mode) {
		CALLGRIND_ZERO_STATS;
		CALLGRIND_START_INSTRUMENTATION;
	}
}

static void batch_end(const char *what, size_t n, size_t ops)
{
	char label[96];

	if (callgrind_mode) {
		CALLGRIND_STOP_INSTRUMENTATION;
		snprintf(label, sizeof(label), "%s n=%zu ops=%zu", what, n, ops);
		CALLGRIND_DUMP_STATS_AT(label);
	}
}

static void die(const char *what, int r)
{
	fprintf(stderr, "bench_vm_map: %s failed: %d\n", what, r);
	exit(1);
}

struct row {
	size_t n;
	double fs, fs_2m, fs_top, insert, remove, lookup;
	unsigned depth;
};

static unsigned tree_height(const struct vm_map_entry *e)
{
	unsigned l, r;

	if (e == NULL)
		return 0;
	l = tree_height(e->rb_left);
	r = tree_height(e->rb_right);
	return 1 + (l > r ? l : r);
}

static void run(size_t n, struct row *row)
{
	struct pool pool = {0};
	struct vm_map map;
	struct vm_map_ops ops = {.alloc = pool_alloc, .free = pool_free, .ctx = &pool};
	struct vm_map_attr a = {.prot = RW, .max_prot = VM_PROT_ALL};
	struct vm_map_attr solo = {.prot = RW, .max_prot = VM_PROT_ALL, .flags = VM_ENT_NOMERGE};
	struct vm_map_entry *e;
	uintptr_t *gap_at, at, end = BASE;
	size_t i, k, reps = n < 1000 ? n : 1000;
	uint64_t v;
	int r;

	pool.cap = n + reps + 16;
	pool.mem = calloc(pool.cap, sizeof(*pool.mem));
	gap_at = calloc(n, sizeof(*gap_at));
	if (pool.mem == NULL || gap_at == NULL)
		die("calloc", -MICA_ENOMEM);
	r = vm_map_init(&map, BASE, TOP, &ops);
	if (r != 0)
		die("vm_map_init", r);
	for (i = 0; i < n; i++) {
		size_t len = (1 + (i * 2654435761u >> 7) % 3) * P;
		size_t gap = (1 + (i * 40503u >> 5) % 4) * P;

		r = vm_map_insert(&map, end, len, &a);
		if (r != 0)
			die("build insert", r);
		gap_at[i] = end + len;
		end += len + gap;
	}
	row->n = n;
	row->depth = tree_height(map.root);

	/* First fit, 8 pages: only the space after the last entry holds it. */
	batch_begin();
	v = map.stats.visits;
	for (k = 0; k < reps; k++)
		if ((r = vm_map_findspace(&map, 0, 8 * P, 0, 0, &at)) != 0 || at < gap_at[n - 1])
			die("findspace", r);
	row->fs = (double)(map.stats.visits - v) / reps;
	batch_end("findspace", n, reps);

	/* The same with 2 MiB alignment: needs a gap of 2 MiB + 8 pages - 1 page. */
	batch_begin();
	v = map.stats.visits;
	for (k = 0; k < reps; k++)
		if ((r = vm_map_findspace(&map, 0, 8 * P, 2UL << 20, 0, &at)) != 0 ||
		    at % (2UL << 20) != 0 || at < gap_at[n - 1])
			die("findspace 2M", r);
	row->fs_2m = (double)(map.stats.visits - v) / reps;
	batch_end("findspace_2m", n, reps);

	/* Top-down below the first entry's end: the fit is at the very bottom. */
	batch_begin();
	v = map.stats.visits;
	for (k = 0; k < reps; k++)
		if ((r = vm_map_findspace(&map, gap_at[n - 1], 8 * P, 0, VM_PLACE_TOPDOWN, &at)) !=
		    -MICA_ENOMEM)
			die("findspace top-down", r);
	row->fs_top = (double)(map.stats.visits - v) / reps;
	batch_end("findspace_topdown", n, reps);

	/* Insert one page into scattered gaps (a new entry each time), then remove them in
	 * another order, so that the lookup hint does not help. */
	batch_begin();
	v = map.stats.visits;
	for (k = 0; k < reps; k++)
		if ((r = vm_map_insert(&map, gap_at[(k * 7919) % n], P, &solo)) != 0)
			die("insert", r);
	row->insert = (double)(map.stats.visits - v) / reps;
	batch_end("insert", n, reps);

	batch_begin();
	v = map.stats.visits;
	for (k = reps; k-- > 0;)
		if ((r = vm_map_remove(&map, gap_at[(k * 7919) % n], P, NULL, NULL)) != 0)
			die("remove", r);
	row->remove = (double)(map.stats.visits - v) / reps;
	batch_end("remove", n, reps);

	batch_begin();
	v = map.stats.visits;
	for (k = 0; k < reps; k++)
		(void)vm_map_lookup(&map, gap_at[(k * 104729) % n] - P, &e);
	row->lookup = (double)(map.stats.visits - v) / reps;
	batch_end("lookup", n, reps);

	if (map.nentries != n)
		die("entry count", -MICA_EINVAL);
	free(pool.mem);
	free(gap_at);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {10, 1000, 100000, 1000000};
	struct row rows[4];
	size_t i, lg;

	callgrind_mode = argc > 1 && strcmp(argv[1], "--callgrind") == 0;
	printf("vm_map: tree nodes visited per operation (searches, fix-ups and rotations)\n");
	printf("bytes per entry: %zu (struct vm_map_entry), map header: %zu\n",
	       sizeof(struct vm_map_entry), sizeof(struct vm_map));
	printf("%9s %5s %6s %10s %10s %10s %8s %8s %8s\n", "entries", "log2", "height",
	       "find first", "find 2MiB", "find top", "insert", "remove", "lookup");
	for (i = 0; i < 4; i++) {
		run(sizes[i], &rows[i]);
		for (lg = 0; ((size_t)1 << (lg + 1)) <= sizes[i]; lg++)
			;
		printf("%9zu %5zu %6u %10.1f %10.1f %10.1f %8.1f %8.1f %8.1f\n", rows[i].n, lg,
		       rows[i].depth, rows[i].fs, rows[i].fs_2m, rows[i].fs_top, rows[i].insert,
		       rows[i].remove, rows[i].lookup);
		fflush(stdout);
	}
	return 0;
}
