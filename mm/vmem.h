/* vmem: a boundary-tag arena for ranges of integers (kernel virtual addresses,
 * physical ranges, identifiers).
 *
 * An arena owns spans, added by vmem_add() or imported from a source (typically a
 * parent arena), and cuts them into segments that are either free or allocated.
 * Every span and segment is described by a boundary tag. mm/ never calls malloc, so
 * tags come from a struct vmem_btag_pool that the caller feeds: a static array at
 * boot, pages later, or pages that the pool's refill hook allocates (possibly from an
 * arena that itself draws on this pool). An operation reserves the tags it may need
 * before it changes anything, so running out of tags is reported as -MICA_ENOMEM with
 * the arena untouched.
 *
 * Quantum caches keep a small stack of ready segments for each size of 1 ..
 * qcache_max / quantum quanta, so that the common small allocation neither searches
 * nor splits, and so that many small allocations do not fragment the arena. Cached
 * segments are allocated as far as the arena is concerned, reported apart in the
 * statistics and counted as available by vmem_starved(); a failing allocation drains
 * every cache and retries before it imports or gives up.
 *
 * Allocation strategies (exactly one flag per call):
 * - VMEM_INSTANTFIT takes the first segment of the smallest power-of-two size class
 *   whose every member is large enough, so a plain request costs O(1). When that class
 *   and all larger ones have nothing usable it falls back to a first-fit scan of the
 *   lower class, so it fails only when no free segment can hold the request.
 * - VMEM_BESTFIT takes the smallest free segment that satisfies the request (lowest
 *   address among equals), scanning classes from the request's own upwards.
 * Both strategies therefore fail only when, after the quantum caches are drained and
 * (if the arena has a source) an import was tried, no free segment of any span can
 * satisfy the request.
 *
 * Segments never cross span boundaries, also when two spans are adjacent: an
 * imported span must go back to its source whole.
 *
 * Locking: mm/ takes no locks. Every function below that reads or changes an arena
 * says which lock the caller must hold; an arena, its tag pool and any arena sharing
 * that pool are protected by one lock the caller owns.
 *
 * The structures are public only so that callers can allocate them statically; their
 * fields are private to vmem.c. */
#ifndef MICA_MM_VMEM_H
#define MICA_MM_VMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t vmem_addr_t;
typedef uint64_t vmem_size_t;

/* Allocation flags. */
#define VMEM_INSTANTFIT 0x1u
#define VMEM_BESTFIT    0x2u

#define VMEM_NCLASSES       64 /* free-list size classes: 2^k quanta, k = 0..63 */
#define VMEM_QCACHE_SIZES   8  /* quantum caches exist for at most 1..8 quanta */
#define VMEM_QCACHE_DEPTH   16 /* segments a quantum cache holds at most */
#define VMEM_HASH_BUILTIN   32 /* hash buckets used when the caller provides none */
#define VMEM_BTAGS_PER_OP   4  /* worst case an allocation consumes (split + import) */
#define VMEM_BTAG_LOW_WATER 16 /* default pool level below which refill is called */

struct vmem_btag {
	struct vmem_btag *seg_next, *seg_prev; /* all spans and segments in address order */
	union {
		struct {
			struct vmem_btag *next, *prev;
		} list;                      /* free segment: its size class; span: the span list */
		struct vmem_btag *hash_next; /* allocated segment: its hash bucket */
	} u;
	vmem_addr_t start;
	vmem_size_t size;
	uint8_t type;
	bool cached; /* allocated segment parked in a quantum cache */
};

struct vmem_btag_pool;

/* Called when the pool drops below its low-water mark; it adds memory with
 * vmem_btag_pool_add() and returns 0, or returns a negative error. It may allocate
 * from any arena, including one that draws its tags from this pool: while it runs the
 * pool does not call it again, and the low-water mark is what that allocation uses. */
typedef int vmem_btag_refill_fn(void *arg, struct vmem_btag_pool *pool);

struct vmem_btag_pool {
	struct vmem_btag *free; /* singly linked through seg_next */
	size_t nfree;
	size_t ntotal;
	size_t low_water;
	vmem_btag_refill_fn *refill;
	void *refill_arg;
	bool refilling;
	uint64_t refill_calls;
};

/* Import `size` bytes (a multiple of the arena's quantum) from the source: on success
 * store the start and the real size (>= size, a multiple of the quantum) and return 0;
 * otherwise return a negative error. */
typedef int vmem_import_fn(void *source, vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep);
/* Give back a whole span obtained from the import function. */
typedef void vmem_release_fn(void *source, vmem_addr_t addr, vmem_size_t size);

struct vmem_config {
	const char *name;
	vmem_size_t quantum;    /* power of two; every address and size is a multiple */
	vmem_size_t qcache_max; /* 0, or a multiple of quantum up to VMEM_QCACHE_SIZES quanta */
	vmem_import_fn *import; /* both or neither */
	vmem_release_fn *release;
	void *source;           /* passed to import and release */
	vmem_size_t import_min; /* smallest span to import (a multiple of quantum), or 0 */
	struct vmem_btag_pool *pool;
	struct vmem_btag **hash_buckets; /* NULL: VMEM_HASH_BUILTIN buckets inside the arena */
	size_t hash_nbuckets;            /* power of two >= 2 when hash_buckets is given */
};

struct vmem_qcache {
	struct vmem_btag *stack[VMEM_QCACHE_DEPTH];
	unsigned depth;
};

struct vmem {
	const char *name;
	vmem_size_t quantum;
	unsigned quantum_shift;
	struct vmem_btag seglist;  /* sentinel of the address-ordered tag list */
	struct vmem_btag spanlist; /* sentinel of the address-ordered span list */
	struct vmem_btag *freelist[VMEM_NCLASSES];
	uint64_t freelist_nonempty; /* bit k set iff freelist[k] is not empty */
	struct vmem_btag **hash;
	size_t hash_mask;
	unsigned hash_bits;
	struct vmem_btag *hash_builtin[VMEM_HASH_BUILTIN];
	struct vmem_qcache qcache[VMEM_QCACHE_SIZES];
	vmem_size_t qcache_max;
	vmem_import_fn *import;
	vmem_release_fn *release;
	void *source;
	vmem_size_t import_min;
	struct vmem_btag_pool *pool;
	bool defer_release; /* a drain is keeping emptied imported spans for a retry */
	/* bookkeeping that vmem_check() recomputes */
	vmem_size_t size_total;  /* sum of the spans */
	vmem_size_t size_busy;   /* allocated segments, cached ones included */
	vmem_size_t size_cached; /* allocated segments parked in quantum caches */
	size_t nspans, nimported, nfree, nbusy, ncached;
	/* event counters, for INFO and benchmarks */
	uint64_t nimports, nreleases, qcache_hits, qcache_misses, ndrains;
};

struct vmem_stats {
	vmem_size_t total;        /* sum of all spans */
	vmem_size_t inuse;        /* handed out to callers */
	vmem_size_t cached;       /* held by the quantum caches (allocatable) */
	vmem_size_t free;         /* in free segments */
	vmem_size_t largest_free; /* largest free segment (caches not counted) */
	size_t nspans, nimported, nsegments, nfree, nbusy, ncached;
	uint64_t nimports, nreleases, qcache_hits, qcache_misses, ndrains;
};

enum vmem_walk_kind {
	VMEM_WALK_SPAN,
	VMEM_WALK_IMPORTED_SPAN,
	VMEM_WALK_FREE,
	VMEM_WALK_BUSY,   /* allocated and handed out */
	VMEM_WALK_CACHED, /* allocated, parked in a quantum cache */
};

typedef void vmem_walk_fn(void *arg, enum vmem_walk_kind kind, vmem_addr_t start, vmem_size_t size);

/* ---- tag pool ---- */

/* => pool not yet shared; refill may be NULL; low_water 0 means VMEM_BTAG_LOW_WATER */
void vmem_btag_pool_init(struct vmem_btag_pool *pool, vmem_btag_refill_fn *refill, void *arg,
                         size_t low_water);
/* Carve tags out of `bytes` of caller memory, which then belongs to the pool for good;
 * returns how many tags it made. => pool locked by caller */
size_t vmem_btag_pool_add(struct vmem_btag_pool *pool, void *mem, size_t bytes);
/* => pool locked by caller */
const char *vmem_btag_pool_check(const struct vmem_btag_pool *pool);

/* ---- arenas ---- */

/* Set up an empty arena; add spans with vmem_add(). Returns 0 or -MICA_EINVAL.
 * => vm is not yet visible to anyone else; cfg->pool locked by caller */
int vmem_init(struct vmem *vm, const struct vmem_config *cfg);
/* Tear down an arena with nothing allocated: caches are drained, imported spans go
 * back to the source, tags back to the pool. -MICA_EBUSY (nothing changed) if callers
 * still hold allocations. => arena locked by caller */
int vmem_destroy(struct vmem *vm);
/* Add [addr, addr + size) as a span that is never released. -MICA_EINVAL on a bad
 * range, -MICA_EEXIST if it overlaps a span, -MICA_ENOMEM without tags.
 * => arena locked by caller */
int vmem_add(struct vmem *vm, vmem_addr_t addr, vmem_size_t size);

/* Allocate `size` bytes (a multiple of the quantum) anywhere; uses the quantum caches.
 * -MICA_EINVAL on a bad size or flags, -MICA_ENOMEM when neither the arena nor an
 * import has room or the tags ran out, or the import function's own error.
 * => arena locked by caller; may call the pool's refill and the import function */
int vmem_alloc(struct vmem *vm, vmem_size_t size, unsigned flags, vmem_addr_t *addrp);
/* Constrained allocation; bypasses the quantum caches. The result `a` satisfies
 * a % align == phase, [a, a + size) does not cross a multiple of nocross, a >= minaddr
 * and a + size <= maxaddr. align 0 means the quantum; nocross 0 means no boundary;
 * maxaddr 0 means no upper limit. -MICA_EINVAL on a malformed request; otherwise
 * as vmem_alloc().
 * => arena locked by caller; may call the pool's refill and the import function */
int vmem_xalloc(struct vmem *vm, vmem_size_t size, vmem_size_t align, vmem_size_t phase,
                vmem_size_t nocross, vmem_addr_t minaddr, vmem_addr_t maxaddr, unsigned flags,
                vmem_addr_t *addrp);
/* Free an allocation of either kind; small ones may be kept in a quantum cache.
 * -MICA_ENOENT if nothing is allocated at addr (double free), -MICA_EINVAL if size is
 * not the allocated size; nothing changes on error.
 * => arena locked by caller; may call the release function */
int vmem_free(struct vmem *vm, vmem_addr_t addr, vmem_size_t size);
/* As vmem_free() but always returns the segment to the arena at once.
 * => arena locked by caller; may call the release function */
int vmem_xfree(struct vmem *vm, vmem_addr_t addr, vmem_size_t size);
/* Return every cached segment to the arena (and wholly free imported spans to the
 * source). => arena locked by caller; may call the release function */
void vmem_drain(struct vmem *vm);

/* => arena locked by caller (or a racy snapshot is acceptable) */
void vmem_get_stats(const struct vmem *vm, struct vmem_stats *st);
/* Allocatable space (free + cached) below `percent`% of the total: the caller should
 * stop caching and give memory back. An arena with no spans is not starved.
 * => arena locked by caller (or a racy answer is acceptable) */
bool vmem_starved(const struct vmem *vm, unsigned percent);
/* Spans in address order, each followed by its segments. => arena locked by caller */
void vmem_walk(const struct vmem *vm, vmem_walk_fn *fn, void *arg);
/* Full consistency check: NULL when consistent, otherwise what is wrong. Test builds
 * (MICA_TEST) run it after every operation that changes the arena.
 * => arena locked by caller */
const char *vmem_check(const struct vmem *vm);

#if defined(MICA_BENCH)
/* Free segments examined by searches plus hash-chain links followed: the cost model
 * the benchmark reports. */
extern uint64_t vmem_bench_visits;
#endif

/* Import/release pair for stacking arenas: `source` is the parent struct vmem.
 * => parent protected by the lock the child's caller holds */
int vmem_import_from_arena(void *source, vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep);
void vmem_release_to_arena(void *source, vmem_addr_t addr, vmem_size_t size);

#endif
