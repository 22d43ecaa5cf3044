/* vmem: boundary-tag arena. See vmem.h for the model; this file keeps three views of
 * the same segments consistent: the address-ordered tag list (neighbours for
 * coalescing), the size-class free lists (searching) and the hash of allocated
 * segments (O(1) lookup on free). */
#include <string.h>

#include "mica/errno.h"
#include "mica/kassert.h"
#include "mm/vmem.h"

enum vmem_btag_type {
	BT_POOL = 0, /* idle in the tag pool */
	BT_SENTINEL,
	BT_SPAN,
	BT_SPAN_IMPORTED,
	BT_FREE,
	BT_BUSY,
};

/* Requests reaching the search, already validated. maxaddr is exclusive, 0 = none. */
struct vmem_request {
	vmem_size_t size, align, phase, nocross;
	vmem_addr_t minaddr, maxaddr;
};

/* How hard an internal allocation may try before failing. */
enum { TRY_DRAIN = 0x1, TRY_IMPORT = 0x2 };

#define GOLDEN_RATIO_64 0x9e3779b97f4a7c15ull

#if defined(MICA_BENCH)
uint64_t vmem_bench_visits;
#define BENCH_VISIT() (vmem_bench_visits++)
#else
#define BENCH_VISIT() ((void)0)
#endif

#if defined(MICA_TEST)
static void vmem_verify(const struct vmem *vm, int line)
{
	const char *why = vmem_check(vm);

	if (why != NULL)
		kassert_fail(why, __FILE__, line);
}
#define VMEM_VERIFY(vm) vmem_verify((vm), __LINE__)
#else
#define VMEM_VERIFY(vm) ((void)0)
#endif

static bool is_pow2(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

static unsigned log2_floor(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x);
}

/* ---- tag pool ---- */

void vmem_btag_pool_init(struct vmem_btag_pool *pool, vmem_btag_refill_fn *refill, void *arg,
                         size_t low_water)
{
	memset(pool, 0, sizeof(*pool));
	pool->refill = refill;
	pool->refill_arg = arg;
	pool->low_water = low_water != 0 ? low_water : VMEM_BTAG_LOW_WATER;
}

size_t vmem_btag_pool_add(struct vmem_btag_pool *pool, void *mem, size_t bytes)
{
	uintptr_t p = (uintptr_t)mem;
	uintptr_t align = _Alignof(struct vmem_btag);
	uintptr_t first = (p + align - 1) & ~(align - 1);
	size_t n;

	if (mem == NULL || first < p || first - p > bytes)
		return 0;
	n = (bytes - (first - p)) / sizeof(struct vmem_btag);
	for (size_t i = 0; i < n; i++) {
		struct vmem_btag *bt = (struct vmem_btag *)first + i;

		memset(bt, 0, sizeof(*bt));
		bt->type = BT_POOL;
		bt->seg_next = pool->free;
		pool->free = bt;
	}
	pool->nfree += n;
	pool->ntotal += n;
	return n;
}

const char *vmem_btag_pool_check(const struct vmem_btag_pool *pool)
{
	size_t n = 0;

	for (const struct vmem_btag *bt = pool->free; bt != NULL; bt = bt->seg_next) {
		if (++n > pool->nfree)
			return "tag pool: more idle tags than counted";
		if (bt->type != BT_POOL)
			return "tag pool: idle tag still typed as in use";
	}
	if (n != pool->nfree)
		return "tag pool: fewer idle tags than counted";
	if (pool->nfree > pool->ntotal)
		return "tag pool: more idle tags than ever added";
	return NULL;
}

/* Make sure `n` tags can be taken without failing. The refill hook may re-enter this
 * arena, so callers hold no pointers into the arena across this call. */
static int btag_reserve(struct vmem *vm, size_t n)
{
	struct vmem_btag_pool *pool = vm->pool;

	if (pool->nfree < n + pool->low_water && pool->refill != NULL && !pool->refilling) {
		pool->refilling = true;
		pool->refill_calls++;
		(void)pool->refill(pool->refill_arg, pool);
		pool->refilling = false;
	}
	return pool->nfree >= n ? 0 : -MICA_ENOMEM;
}

static struct vmem_btag *btag_get(struct vmem *vm)
{
	struct vmem_btag_pool *pool = vm->pool;
	struct vmem_btag *bt = pool->free;

	KASSERT(bt != NULL); /* btag_reserve() promised it */
	pool->free = bt->seg_next;
	pool->nfree--;
	memset(bt, 0, sizeof(*bt));
	return bt;
}

static void btag_put(struct vmem *vm, struct vmem_btag *bt)
{
	struct vmem_btag_pool *pool = vm->pool;

	memset(bt, 0, sizeof(*bt));
	bt->type = BT_POOL;
	bt->seg_next = pool->free;
	pool->free = bt;
	pool->nfree++;
}

/* ---- the three views ---- */

static unsigned size_class(const struct vmem *vm, vmem_size_t size)
{
	return log2_floor(size >> vm->quantum_shift);
}

static void seg_insert_before(struct vmem_btag *pos, struct vmem_btag *bt)
{
	bt->seg_next = pos;
	bt->seg_prev = pos->seg_prev;
	pos->seg_prev->seg_next = bt;
	pos->seg_prev = bt;
}

static void seg_insert_after(struct vmem_btag *pos, struct vmem_btag *bt)
{
	seg_insert_before(pos->seg_next, bt);
}

static void seg_unlink(struct vmem_btag *bt)
{
	bt->seg_prev->seg_next = bt->seg_next;
	bt->seg_next->seg_prev = bt->seg_prev;
}

static void freelist_insert(struct vmem *vm, struct vmem_btag *bt)
{
	unsigned c = size_class(vm, bt->size);
	struct vmem_btag *head = vm->freelist[c];

	bt->u.list.prev = NULL;
	bt->u.list.next = head;
	if (head != NULL)
		head->u.list.prev = bt;
	vm->freelist[c] = bt;
	vm->freelist_nonempty |= 1ull << c;
}

static void freelist_remove(struct vmem *vm, struct vmem_btag *bt)
{
	unsigned c = size_class(vm, bt->size);

	if (bt->u.list.prev != NULL)
		bt->u.list.prev->u.list.next = bt->u.list.next;
	else
		vm->freelist[c] = bt->u.list.next;
	if (bt->u.list.next != NULL)
		bt->u.list.next->u.list.prev = bt->u.list.prev;
	if (vm->freelist[c] == NULL)
		vm->freelist_nonempty &= ~(1ull << c);
}

static size_t hash_index(const struct vmem *vm, vmem_addr_t addr)
{
	uint64_t h = (addr >> vm->quantum_shift) * GOLDEN_RATIO_64;

	return (size_t)(h >> (64u - vm->hash_bits));
}

static void hash_insert(struct vmem *vm, struct vmem_btag *bt)
{
	struct vmem_btag **bucket = &vm->hash[hash_index(vm, bt->start)];

	bt->u.hash_next = *bucket;
	*bucket = bt;
}

static struct vmem_btag *hash_lookup(const struct vmem *vm, vmem_addr_t addr)
{
	struct vmem_btag *bt = vm->hash[hash_index(vm, addr)];

	while (bt != NULL && bt->start != addr) {
		BENCH_VISIT();
		bt = bt->u.hash_next;
	}
	return bt;
}

static void hash_remove(struct vmem *vm, struct vmem_btag *bt)
{
	struct vmem_btag **link = &vm->hash[hash_index(vm, bt->start)];

	while (*link != bt) {
		KASSERT(*link != NULL);
		link = &(*link)->u.hash_next;
	}
	*link = bt->u.hash_next;
	bt->u.hash_next = NULL;
}

/* ---- spans ---- */

/* The first span starting at or above addr (the sentinel if none). O(spans). */
static struct vmem_btag *span_successor(const struct vmem *vm, vmem_addr_t addr)
{
	struct vmem_btag *next = vm->spanlist.u.list.next;

	while (next != &vm->spanlist && next->start < addr)
		next = next->u.list.next;
	return next;
}

static bool span_overlaps(const struct vmem *vm, const struct vmem_btag *next, vmem_addr_t addr,
                          vmem_size_t size)
{
	const struct vmem_btag *prev = next->u.list.prev;

	if (prev != &vm->spanlist && prev->start + prev->size > addr)
		return true;
	return next != &vm->spanlist && addr + size > next->start;
}

/* Insert a span and its single free segment in address order; O(spans) for the place.
 * Needs 2 reserved tags. */
static int span_insert(struct vmem *vm, vmem_addr_t addr, vmem_size_t size, bool imported,
                       struct vmem_btag **spanp)
{
	struct vmem_btag *next = span_successor(vm, addr);
	struct vmem_btag *prev = next->u.list.prev;
	struct vmem_btag *span, *seg;

	if (span_overlaps(vm, next, addr, size))
		return -MICA_EEXIST;

	span = btag_get(vm);
	span->type = imported ? BT_SPAN_IMPORTED : BT_SPAN;
	span->start = addr;
	span->size = size;
	span->u.list.next = next;
	span->u.list.prev = prev;
	prev->u.list.next = span;
	next->u.list.prev = span;

	seg = btag_get(vm);
	seg->type = BT_FREE;
	seg->start = addr;
	seg->size = size;

	/* A span's tag sits right before its segments; the next span's tag (or the list
	 * end) is where this span's segments stop. */
	struct vmem_btag *pos = next != &vm->spanlist ? next : &vm->seglist;

	seg_insert_before(pos, span);
	seg_insert_before(pos, seg);
	freelist_insert(vm, seg);
	vm->size_total += size;
	vm->nspans++;
	vm->nfree++;
	if (imported)
		vm->nimported++;
	if (spanp != NULL)
		*spanp = span;
	return 0;
}

/* Drop a span whose only segment `seg` is free; hand it back if it was imported. */
static void span_remove(struct vmem *vm, struct vmem_btag *span, struct vmem_btag *seg)
{
	vmem_addr_t addr = span->start;
	vmem_size_t size = span->size;
	bool imported = span->type == BT_SPAN_IMPORTED;

	KASSERT(seg->type == BT_FREE && seg->seg_prev == span && seg->size == span->size);
	freelist_remove(vm, seg);
	seg_unlink(seg);
	seg_unlink(span);
	span->u.list.prev->u.list.next = span->u.list.next;
	span->u.list.next->u.list.prev = span->u.list.prev;
	btag_put(vm, seg);
	btag_put(vm, span);
	vm->size_total -= size;
	vm->nspans--;
	vm->nfree--;
	if (imported) {
		vm->nimported--;
		vm->nreleases++;
		/* Last, so that a release that re-enters finds the arena consistent. */
		vm->release(vm->source, addr, size);
	}
}

/* ---- allocate and free segments ---- */

static vmem_addr_t align_phase_up(vmem_addr_t x, vmem_size_t align, vmem_size_t phase)
{
	vmem_size_t r = (x - phase) & (align - 1);

	return r != 0 ? x + (align - r) : x;
}

static bool crosses(vmem_addr_t a, vmem_size_t size, vmem_size_t nocross)
{
	return nocross != 0 && ((a ^ (a + size - 1)) & ~(nocross - 1)) != 0;
}

/* Lowest address in free segment `bt` that satisfies the request. */
static bool seg_fit(const struct vmem_btag *bt, const struct vmem_request *rq, vmem_addr_t *addrp)
{
	vmem_addr_t lo = bt->start;
	vmem_addr_t hi = bt->start + bt->size; /* spans never wrap */
	vmem_addr_t a;

	BENCH_VISIT();
	if (lo < rq->minaddr)
		lo = rq->minaddr;
	if (rq->maxaddr != 0 && hi > rq->maxaddr)
		hi = rq->maxaddr;
	if (lo >= hi || hi - lo < rq->size)
		return false;
	a = align_phase_up(lo, rq->align, rq->phase);
	if (a < lo || a > hi - rq->size)
		return false;
	if (crosses(a, rq->size, rq->nocross)) {
		/* Every window between two boundaries offers the same first candidate
		 * (phase modulo the window), so if the next window's does not fit, none
		 * will. */
		vmem_addr_t boundary = (a | (rq->nocross - 1)) + 1;

		if (boundary == 0)
			return false;
		a = align_phase_up(boundary, rq->align, rq->phase);
		if (a < boundary || a > hi - rq->size || crosses(a, rq->size, rq->nocross))
			return false;
	}
	*addrp = a;
	return true;
}

static struct vmem_btag *seg_find(const struct vmem *vm, const struct vmem_request *rq,
                                  unsigned flags, vmem_addr_t *addrp)
{
	vmem_size_t quanta = rq->size >> vm->quantum_shift;
	unsigned floor_class = log2_floor(quanta);
	unsigned ceil_class = floor_class + (is_pow2(quanta) ? 0 : 1);
	uint64_t classes;

	if (flags & VMEM_BESTFIT) {
		/* Every segment of a class is smaller than every segment of the next, so
		 * the best fit lives in the lowest class holding any fit. */
		classes = vm->freelist_nonempty & (~0ull << floor_class);
		while (classes != 0) {
			unsigned c = (unsigned)__builtin_ctzll(classes);
			struct vmem_btag *best = NULL;
			vmem_addr_t best_addr = 0, a;

			for (struct vmem_btag *bt = vm->freelist[c]; bt != NULL;
			     bt = bt->u.list.next) {
				if (!seg_fit(bt, rq, &a))
					continue;
				if (best == NULL || bt->size < best->size ||
				    (bt->size == best->size && bt->start < best->start)) {
					best = bt;
					best_addr = a;
				}
			}
			if (best != NULL) {
				*addrp = best_addr;
				return best;
			}
			classes &= classes - 1;
		}
		return NULL;
	}

	/* Instant fit: in classes >= ceil_class every segment is big enough, so without
	 * constraints the first list head answers. */
	classes = ceil_class < VMEM_NCLASSES ? vm->freelist_nonempty & (~0ull << ceil_class) : 0;
	while (classes != 0) {
		unsigned c = (unsigned)__builtin_ctzll(classes);

		for (struct vmem_btag *bt = vm->freelist[c]; bt != NULL; bt = bt->u.list.next)
			if (seg_fit(bt, rq, addrp))
				return bt;
		classes &= classes - 1;
	}
	if (ceil_class != floor_class) {
		for (struct vmem_btag *bt = vm->freelist[floor_class]; bt != NULL;
		     bt = bt->u.list.next)
			if (seg_fit(bt, rq, addrp))
				return bt;
	}
	return NULL;
}

/* Turn [addr, addr + size) of free segment `bt` into an allocated segment, splitting
 * off free remainders on either side. Needs 2 reserved tags. */
static void seg_carve(struct vmem *vm, struct vmem_btag *bt, vmem_addr_t addr, vmem_size_t size)
{
	KASSERT(bt->type == BT_FREE && addr >= bt->start && addr + size <= bt->start + bt->size);
	freelist_remove(vm, bt);
	if (addr > bt->start) {
		struct vmem_btag *lead = btag_get(vm);

		lead->type = BT_FREE;
		lead->start = bt->start;
		lead->size = addr - bt->start;
		seg_insert_before(bt, lead);
		freelist_insert(vm, lead);
		bt->start = addr;
		bt->size -= lead->size;
		vm->nfree++;
	}
	if (bt->size > size) {
		struct vmem_btag *tail = btag_get(vm);

		tail->type = BT_FREE;
		tail->start = addr + size;
		tail->size = bt->size - size;
		seg_insert_after(bt, tail);
		freelist_insert(vm, tail);
		bt->size = size;
		vm->nfree++;
	}
	bt->type = BT_BUSY;
	bt->cached = false;
	hash_insert(vm, bt);
	vm->nfree--;
	vm->nbusy++;
	vm->size_busy += size;
}

/* Return an allocated segment (already out of the hash) to the free lists, merging
 * it with free neighbours; a wholly free imported span goes back to its source. */
static void seg_release(struct vmem *vm, struct vmem_btag *bt)
{
	struct vmem_btag *prev = bt->seg_prev, *next = bt->seg_next;

	KASSERT(bt->type == BT_BUSY && !bt->cached);
	bt->type = BT_FREE;
	vm->size_busy -= bt->size;
	vm->nbusy--;
	vm->nfree++;
	if (prev->type == BT_FREE) {
		freelist_remove(vm, prev);
		seg_unlink(prev);
		bt->start = prev->start;
		bt->size += prev->size;
		btag_put(vm, prev);
		vm->nfree--;
	}
	if (next->type == BT_FREE) {
		freelist_remove(vm, next);
		seg_unlink(next);
		bt->size += next->size;
		btag_put(vm, next);
		vm->nfree--;
	}
	freelist_insert(vm, bt);
	prev = bt->seg_prev;
	if (prev->type == BT_SPAN_IMPORTED && prev->size == bt->size && !vm->defer_release)
		span_remove(vm, prev, bt);
}

/* Release the imported spans a deferred drain left wholly free. O(spans). */
static void release_idle_imports(struct vmem *vm)
{
	struct vmem_btag *span = vm->spanlist.u.list.next;

	while (span != &vm->spanlist) {
		struct vmem_btag *next = span->u.list.next;
		struct vmem_btag *seg = span->seg_next;

		if (span->type == BT_SPAN_IMPORTED && seg->type == BT_FREE &&
		    seg->size == span->size)
			span_remove(vm, span, seg);
		span = next;
	}
}

static void seg_free(struct vmem *vm, struct vmem_btag *bt)
{
	hash_remove(vm, bt);
	seg_release(vm, bt);
}

/* ---- quantum caches ---- */

static void qcache_push(struct vmem *vm, struct vmem_qcache *qc, struct vmem_btag *bt)
{
	KASSERT(qc->depth < VMEM_QCACHE_DEPTH);
	bt->cached = true;
	qc->stack[qc->depth++] = bt;
	vm->ncached++;
	vm->size_cached += bt->size;
}

static struct vmem_btag *qcache_pop(struct vmem *vm, struct vmem_qcache *qc)
{
	struct vmem_btag *bt = qc->stack[--qc->depth];

	bt->cached = false;
	vm->ncached--;
	vm->size_cached -= bt->size;
	return bt;
}

/* Return the entries above `keep` to the arena, most recently cached first. */
static void qcache_flush(struct vmem *vm, struct vmem_qcache *qc, unsigned keep)
{
	while (qc->depth > keep)
		seg_free(vm, qcache_pop(vm, qc));
}

static bool qcache_any(const struct vmem *vm)
{
	return vm->ncached != 0;
}

static void qcache_drain_all(struct vmem *vm)
{
	for (unsigned i = 0; i < VMEM_QCACHE_SIZES; i++)
		qcache_flush(vm, &vm->qcache[i], 0);
	vm->ndrains++;
}

/* ---- the allocation engine ---- */

/* Import a span big enough for `rq` (with aligned placement) and return its tag, with
 * 2 tags still reserved for the carve. */
static int arena_import(struct vmem *vm, const struct vmem_request *rq, struct vmem_btag **spanp)
{
	vmem_size_t want = rq->size, got = 0;
	vmem_addr_t addr = 0;
	int err;

	/* Room for an aligned placement; phase and nocross may still not fit, in which
	 * case the caller hands the span straight back. */
	if (rq->align > vm->quantum) {
		if (want > ~(vmem_size_t)0 - (rq->align - vm->quantum))
			return -MICA_ENOMEM;
		want += rq->align - vm->quantum;
	}
	if (want < vm->import_min)
		want = vm->import_min;
	err = vm->import(vm->source, want, &addr, &got);
	if (err != 0)
		return err < 0 ? err : -err;
	if (got < want || (got & (vm->quantum - 1)) != 0 || (addr & (vm->quantum - 1)) != 0 ||
	    addr + got <= addr) {
		/* A source that breaks its contract gets its memory back untouched. */
		vm->release(vm->source, addr, got);
		return -MICA_EINVAL;
	}
	/* A parent sharing our pool has just spent tags we had set aside. */
	err = btag_reserve(vm, VMEM_BTAGS_PER_OP);
	if (err != 0) {
		vm->release(vm->source, addr, got);
		return err;
	}
	err = span_insert(vm, addr, got, true, spanp);
	if (err != 0) {
		vm->release(vm->source, addr, got);
		return -MICA_EINVAL; /* the source handed out something we already own */
	}
	vm->nimports++;
	return 0;
}

/* Find, if allowed drain the caches and retry, if allowed import and retry; then
 * carve. On success *btp is the new allocated segment. */
static int arena_xalloc(struct vmem *vm, const struct vmem_request *rq, unsigned flags,
                        unsigned tries, struct vmem_btag **btp)
{
	struct vmem_btag *bt;
	vmem_addr_t addr = 0;
	int err;

	err = btag_reserve(vm, 2);
	if (err != 0)
		return err;
	bt = seg_find(vm, rq, flags, &addr);
	if (bt == NULL && (tries & TRY_DRAIN) && qcache_any(vm)) {
		/* Keep spans the drain empties until the retry has looked at them: the
		 * request may fit only there, and a re-import could land elsewhere. */
		vm->defer_release = true;
		qcache_drain_all(vm);
		vm->defer_release = false;
		bt = seg_find(vm, rq, flags, &addr);
		if (bt != NULL) {
			seg_carve(vm, bt, addr, rq->size);
			release_idle_imports(vm);
			*btp = bt;
			return 0;
		}
		release_idle_imports(vm);
	}
	if (bt == NULL && (tries & TRY_IMPORT) && vm->import != NULL) {
		struct vmem_btag *span;

		err = btag_reserve(vm, VMEM_BTAGS_PER_OP);
		if (err != 0)
			return err;
		/* The reserve may have re-entered the arena and freed space. */
		bt = seg_find(vm, rq, flags, &addr);
		if (bt == NULL) {
			err = arena_import(vm, rq, &span);
			if (err != 0)
				return err;
			bt = seg_find(vm, rq, flags, &addr);
			if (bt == NULL) {
				/* Phase, nocross or the address limits rule the new span
				 * out; it was imported for this request only. */
				span_remove(vm, span, span->seg_next);
				return -MICA_ENOMEM;
			}
		}
	}
	if (bt == NULL)
		return -MICA_ENOMEM;
	seg_carve(vm, bt, addr, rq->size);
	*btp = bt;
	return 0;
}

static int check_flags(unsigned flags)
{
	unsigned strategy = flags & (VMEM_INSTANTFIT | VMEM_BESTFIT);

	if ((flags & ~(VMEM_INSTANTFIT | VMEM_BESTFIT)) != 0)
		return -MICA_EINVAL;
	if (strategy != VMEM_INSTANTFIT && strategy != VMEM_BESTFIT)
		return -MICA_EINVAL;
	return 0;
}

static bool size_ok(const struct vmem *vm, vmem_size_t size)
{
	return size != 0 && (size & (vm->quantum - 1)) == 0;
}

/* ---- public interface ---- */

int vmem_init(struct vmem *vm, const struct vmem_config *cfg)
{
	vmem_size_t q = cfg->quantum;

	if (!is_pow2(q) || cfg->pool == NULL)
		return -MICA_EINVAL;
	if ((cfg->qcache_max & (q - 1)) != 0 || cfg->qcache_max / q > VMEM_QCACHE_SIZES)
		return -MICA_EINVAL;
	if ((cfg->import == NULL) != (cfg->release == NULL))
		return -MICA_EINVAL;
	if ((cfg->import_min & (q - 1)) != 0)
		return -MICA_EINVAL;
	if (cfg->hash_buckets != NULL && (!is_pow2(cfg->hash_nbuckets) || cfg->hash_nbuckets < 2))
		return -MICA_EINVAL;

	memset(vm, 0, sizeof(*vm));
	vm->name = cfg->name;
	vm->quantum = q;
	vm->quantum_shift = log2_floor(q);
	vm->seglist.type = BT_SENTINEL;
	vm->seglist.seg_next = vm->seglist.seg_prev = &vm->seglist;
	vm->spanlist.type = BT_SENTINEL;
	vm->spanlist.u.list.next = vm->spanlist.u.list.prev = &vm->spanlist;
	if (cfg->hash_buckets != NULL) {
		vm->hash = cfg->hash_buckets;
		vm->hash_mask = cfg->hash_nbuckets - 1;
		memset(vm->hash, 0, cfg->hash_nbuckets * sizeof(vm->hash[0]));
	} else {
		vm->hash = vm->hash_builtin;
		vm->hash_mask = VMEM_HASH_BUILTIN - 1;
	}
	vm->hash_bits = log2_floor(vm->hash_mask + 1);
	vm->qcache_max = cfg->qcache_max;
	vm->import = cfg->import;
	vm->release = cfg->release;
	vm->source = cfg->source;
	vm->import_min = cfg->import_min;
	vm->pool = cfg->pool;
	VMEM_VERIFY(vm);
	return 0;
}

int vmem_destroy(struct vmem *vm)
{
	if (vm->nbusy != vm->ncached)
		return -MICA_EBUSY;
	qcache_drain_all(vm);
	while (vm->spanlist.u.list.next != &vm->spanlist) {
		struct vmem_btag *span = vm->spanlist.u.list.next;

		span_remove(vm, span, span->seg_next);
	}
	KASSERT(vm->nspans == 0 && vm->nfree == 0 && vm->nbusy == 0 && vm->size_total == 0);
	VMEM_VERIFY(vm);
	return 0;
}

int vmem_add(struct vmem *vm, vmem_addr_t addr, vmem_size_t size)
{
	int err;

	if (!size_ok(vm, size) || (addr & (vm->quantum - 1)) != 0)
		return -MICA_EINVAL;
	if (addr + size < addr || addr + size == 0) /* the end must be representable */
		return -MICA_EINVAL;
	/* Overlap is the caller's mistake whatever the tag supply: say so first. */
	if (span_overlaps(vm, span_successor(vm, addr), addr, size))
		return -MICA_EEXIST;
	err = btag_reserve(vm, 2);
	if (err == 0)
		err = span_insert(vm, addr, size, false, NULL);
	VMEM_VERIFY(vm);
	return err;
}

int vmem_xalloc(struct vmem *vm, vmem_size_t size, vmem_size_t align, vmem_size_t phase,
                vmem_size_t nocross, vmem_addr_t minaddr, vmem_addr_t maxaddr, unsigned flags,
                vmem_addr_t *addrp)
{
	struct vmem_request rq;
	struct vmem_btag *bt;
	int err;

	err = check_flags(flags);
	if (err != 0)
		return err;
	if (align == 0)
		align = vm->quantum;
	if (!size_ok(vm, size) || !is_pow2(align) || align < vm->quantum || phase >= align ||
	    (phase & (vm->quantum - 1)) != 0)
		return -MICA_EINVAL;
	if (nocross != 0 && (!is_pow2(nocross) || nocross < size))
		return -MICA_EINVAL;
	if (maxaddr != 0 && minaddr >= maxaddr)
		return -MICA_EINVAL;

	rq = (struct vmem_request){size, align, phase, nocross, minaddr, maxaddr};
	err = arena_xalloc(vm, &rq, flags, TRY_DRAIN | TRY_IMPORT, &bt);
	if (err == 0)
		*addrp = bt->start;
	VMEM_VERIFY(vm);
	return err;
}

int vmem_alloc(struct vmem *vm, vmem_size_t size, unsigned flags, vmem_addr_t *addrp)
{
	struct vmem_request rq;
	struct vmem_btag *bt;
	int err;

	err = check_flags(flags);
	if (err != 0)
		return err;
	if (!size_ok(vm, size))
		return -MICA_EINVAL;
	rq = (struct vmem_request){size, vm->quantum, 0, 0, 0, 0};

	if (size <= vm->qcache_max) {
		struct vmem_qcache *qc = &vm->qcache[(size >> vm->quantum_shift) - 1];

		if (qc->depth == 0) {
			/* Refill half the stack from what the arena has now; importing or
			 * draining other caches to fill a cache would defeat its purpose. */
			vm->qcache_misses++;
			for (unsigned i = 0; i < VMEM_QCACHE_DEPTH / 2; i++) {
				if (arena_xalloc(vm, &rq, VMEM_INSTANTFIT, 0, &bt) != 0)
					break;
				if (qc->depth == VMEM_QCACHE_DEPTH) {
					/* a tag-refill hook re-entered and filled it meanwhile */
					seg_free(vm, bt);
					break;
				}
				qcache_push(vm, qc, bt);
			}
		} else {
			vm->qcache_hits++;
		}
		if (qc->depth != 0) {
			*addrp = qcache_pop(vm, qc)->start;
			VMEM_VERIFY(vm);
			return 0;
		}
	}
	err = arena_xalloc(vm, &rq, flags, TRY_DRAIN | TRY_IMPORT, &bt);
	if (err == 0)
		*addrp = bt->start;
	VMEM_VERIFY(vm);
	return err;
}

static int free_common(struct vmem *vm, vmem_addr_t addr, vmem_size_t size, bool may_cache)
{
	struct vmem_btag *bt;

	if (!size_ok(vm, size))
		return -MICA_EINVAL;
	bt = hash_lookup(vm, addr);
	if (bt == NULL || bt->cached)
		return -MICA_ENOENT;
	if (bt->size != size)
		return -MICA_EINVAL;
	if (may_cache && size <= vm->qcache_max) {
		struct vmem_qcache *qc = &vm->qcache[(size >> vm->quantum_shift) - 1];

		if (qc->depth == VMEM_QCACHE_DEPTH)
			qcache_flush(vm, qc, VMEM_QCACHE_DEPTH / 2);
		qcache_push(vm, qc, bt);
	} else {
		seg_free(vm, bt);
	}
	VMEM_VERIFY(vm);
	return 0;
}

int vmem_free(struct vmem *vm, vmem_addr_t addr, vmem_size_t size)
{
	return free_common(vm, addr, size, true);
}

int vmem_xfree(struct vmem *vm, vmem_addr_t addr, vmem_size_t size)
{
	return free_common(vm, addr, size, false);
}

void vmem_drain(struct vmem *vm)
{
	qcache_drain_all(vm);
	VMEM_VERIFY(vm);
}

/* ---- statistics and inspection ---- */

static vmem_size_t largest_free(const struct vmem *vm)
{
	vmem_size_t best = 0;

	if (vm->freelist_nonempty == 0)
		return 0;
	for (const struct vmem_btag *bt = vm->freelist[log2_floor(vm->freelist_nonempty)];
	     bt != NULL; bt = bt->u.list.next)
		if (bt->size > best)
			best = bt->size;
	return best;
}

void vmem_get_stats(const struct vmem *vm, struct vmem_stats *st)
{
	st->total = vm->size_total;
	st->inuse = vm->size_busy - vm->size_cached;
	st->cached = vm->size_cached;
	st->free = vm->size_total - vm->size_busy;
	st->largest_free = largest_free(vm);
	st->nspans = vm->nspans;
	st->nimported = vm->nimported;
	st->nsegments = vm->nfree + vm->nbusy;
	st->nfree = vm->nfree;
	st->nbusy = vm->nbusy - vm->ncached;
	st->ncached = vm->ncached;
	st->nimports = vm->nimports;
	st->nreleases = vm->nreleases;
	st->qcache_hits = vm->qcache_hits;
	st->qcache_misses = vm->qcache_misses;
	st->ndrains = vm->ndrains;
}

bool vmem_starved(const struct vmem *vm, unsigned percent)
{
	vmem_size_t total = vm->size_total;
	vmem_size_t avail = total - (vm->size_busy - vm->size_cached);
	vmem_size_t threshold;

	if (percent > 100)
		percent = 100;
	/* total * percent / 100 without overflowing near 2^64 */
	threshold = (total / 100) * percent + (total % 100) * percent / 100;
	return avail < threshold;
}

void vmem_walk(const struct vmem *vm, vmem_walk_fn *fn, void *arg)
{
	for (const struct vmem_btag *bt = vm->seglist.seg_next; bt != &vm->seglist;
	     bt = bt->seg_next) {
		enum vmem_walk_kind kind;

		switch (bt->type) {
		case BT_SPAN:
			kind = VMEM_WALK_SPAN;
			break;
		case BT_SPAN_IMPORTED:
			kind = VMEM_WALK_IMPORTED_SPAN;
			break;
		case BT_FREE:
			kind = VMEM_WALK_FREE;
			break;
		default:
			kind = bt->cached ? VMEM_WALK_CACHED : VMEM_WALK_BUSY;
			break;
		}
		fn(arg, kind, bt->start, bt->size);
	}
}

const char *vmem_check(const struct vmem *vm)
{
	const struct vmem_btag *const sentinel = &vm->seglist;
	const struct vmem_btag *prev = sentinel;
	const struct vmem_btag *expect_span = vm->spanlist.u.list.next;
	const vmem_size_t qmask = vm->quantum - 1;
	vmem_addr_t cursor = 0, span_end = 0;
	vmem_size_t total = 0, busy_bytes = 0, cached_bytes = 0;
	size_t nspans = 0, nimported = 0, nfree = 0, nbusy = 0, ncached = 0, steps = 0;
	size_t limit = 2 * (vm->nspans + vm->nfree + vm->nbusy) + 2;

	if (!is_pow2(vm->quantum) || vm->quantum != (vmem_size_t)1 << vm->quantum_shift)
		return "quantum is not a power of two";

	/* The address-ordered list: spans, each followed by segments tiling it. */
	for (const struct vmem_btag *bt = sentinel->seg_next; bt != sentinel;
	     prev = bt, bt = bt->seg_next) {
		if (++steps > limit)
			return "tag list longer than the counts allow (cycle?)";
		if (bt->seg_prev != prev)
			return "tag list back link broken";
		if (bt->size == 0 || (bt->size & qmask) != 0 || (bt->start & qmask) != 0)
			return "tag with empty or unaligned range";
		switch (bt->type) {
		case BT_SPAN:
		case BT_SPAN_IMPORTED:
			if (nspans != 0 && cursor != span_end)
				return "segments do not tile their span";
			if (nspans != 0 && bt->start < span_end)
				return "spans overlap or are out of order";
			if (bt->start + bt->size <= bt->start)
				return "span wraps around the address space";
			if (bt != expect_span)
				return "span list disagrees with the tag list";
			expect_span = expect_span->u.list.next;
			if (bt->u.list.next->u.list.prev != bt)
				return "span list back link broken";
			cursor = bt->start;
			span_end = bt->start + bt->size;
			total += bt->size;
			nspans++;
			if (bt->type == BT_SPAN_IMPORTED)
				nimported++;
			break;
		case BT_FREE:
		case BT_BUSY:
			if (nspans == 0)
				return "segment before any span";
			if (bt->start != cursor)
				return "segments of a span are not contiguous";
			if (bt->size > span_end - cursor)
				return "segment runs past the end of its span";
			cursor += bt->size;
			if (bt->type == BT_FREE) {
				if (prev->type == BT_FREE)
					return "adjacent free segments not coalesced";
				if (prev->type == BT_SPAN_IMPORTED && bt->size == prev->size)
					return "wholly free imported span not released";
				if (bt->cached)
					return "free segment marked cached";
				nfree++;
			} else {
				if (hash_lookup(vm, bt->start) != bt)
					return "allocated segment missing from the hash";
				busy_bytes += bt->size;
				nbusy++;
				if (bt->cached) {
					cached_bytes += bt->size;
					ncached++;
				}
			}
			break;
		default:
			return "tag of unknown type in the tag list";
		}
	}
	if (sentinel->seg_prev != prev)
		return "tag list tail link broken";
	if (nspans != 0 && cursor != span_end)
		return "segments do not tile the last span";
	if (expect_span != &vm->spanlist)
		return "span list holds spans the tag list lacks";
	if (nspans != vm->nspans || nimported != vm->nimported || nfree != vm->nfree ||
	    nbusy != vm->nbusy || ncached != vm->ncached)
		return "span or segment counts disagree with the list";
	if (total != vm->size_total || busy_bytes != vm->size_busy ||
	    cached_bytes != vm->size_cached)
		return "byte totals disagree with the list";

	/* Free lists: exactly the free segments, each in its class. */
	size_t listed = 0;

	for (unsigned c = 0; c < VMEM_NCLASSES; c++) {
		const struct vmem_btag *lprev = NULL;

		if ((vm->freelist[c] != NULL) != ((vm->freelist_nonempty >> c) & 1))
			return "free-list bitmap disagrees with the lists";
		for (const struct vmem_btag *bt = vm->freelist[c]; bt != NULL;
		     lprev = bt, bt = bt->u.list.next) {
			if (++listed > vm->nfree)
				return "free lists hold more than the free segments";
			if (bt->type != BT_FREE)
				return "free list holds a segment that is not free";
			if (bt->u.list.prev != lprev)
				return "free list back link broken";
			if (size_class(vm, bt->size) != c)
				return "free segment in the wrong size class";
		}
	}
	if (listed != vm->nfree)
		return "free segment missing from the free lists";

	/* Hash: only allocated segments, each in its own bucket. With the count equal to
	 * nbusy and every allocated segment found above, it holds exactly those. */
	size_t hashed = 0;

	if (vm->hash_bits == 0 || vm->hash_mask + 1 != (size_t)1 << vm->hash_bits)
		return "hash size is not a power of two";
	for (size_t i = 0; i <= vm->hash_mask; i++) {
		for (const struct vmem_btag *bt = vm->hash[i]; bt != NULL; bt = bt->u.hash_next) {
			if (++hashed > vm->nbusy)
				return "hash holds more than the allocated segments";
			if (bt->type != BT_BUSY)
				return "hash holds a segment that is not allocated";
			if (hash_index(vm, bt->start) != i)
				return "segment in the wrong hash bucket";
		}
	}
	if (hashed != vm->nbusy)
		return "hash holds fewer than the allocated segments";

	/* Quantum caches: allocated, marked, of the cache's size; none beyond qcache_max. */
	size_t stacked = 0;

	for (unsigned i = 0; i < VMEM_QCACHE_SIZES; i++) {
		const struct vmem_qcache *qc = &vm->qcache[i];

		if (qc->depth > VMEM_QCACHE_DEPTH)
			return "quantum cache deeper than its stack";
		if (qc->depth != 0 && (vmem_size_t)(i + 1) * vm->quantum > vm->qcache_max)
			return "quantum cache in use beyond qcache_max";
		for (unsigned j = 0; j < qc->depth; j++) {
			const struct vmem_btag *bt = qc->stack[j];

			if (bt->type != BT_BUSY || !bt->cached)
				return "quantum cache holds a segment not marked cached";
			if (bt->size != (vmem_size_t)(i + 1) * vm->quantum)
				return "quantum cache holds a segment of the wrong size";
			stacked++;
		}
	}
	if (stacked != vm->ncached)
		return "cached segments and quantum cache contents disagree";
	if (vm->pool == NULL || vm->pool->nfree > vm->pool->ntotal)
		return "tag pool counts impossible";
	return NULL;
}

int vmem_import_from_arena(void *source, vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep)
{
	struct vmem *parent = source;
	vmem_size_t rounded = (size + parent->quantum - 1) & ~(parent->quantum - 1);
	int err;

	if (rounded < size)
		return -MICA_ENOMEM;
	err = vmem_alloc(parent, rounded, VMEM_INSTANTFIT, addrp);
	if (err == 0)
		*sizep = rounded;
	return err;
}

void vmem_release_to_arena(void *source, vmem_addr_t addr, vmem_size_t size)
{
	int err = vmem_free(source, addr, size);

	KASSERT(err == 0);
	(void)err;
}
