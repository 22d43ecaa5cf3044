/* Differential harness for mm/vmem; see vmem_ref.h.
 *
 * The reference knows nothing about boundary tags: one owner slot per quantum of the
 * modelled range, the list of live allocations, and the spans (the layout it added,
 * or what the arena reports having imported). Its answers are computed by brute
 * force, deliberately in a different way from the arena (division instead of masks,
 * scanning every quantum), so that a shared mistake is unlikely. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mica/errno.h"
#include "tests/host/lib/vmem_ref.h"

#define VMEM_REF_TAG_STORE  16384
#define VMEM_REF_MAX_SEGS   (4 * VMEM_REF_MAX_UNITS + 16)
#define VMEM_REF_LAYOUT     3
#define VMEM_REF_TAGS_SHORT (3 * VMEM_BTAGS_PER_OP)

struct vmem_ref_seg {
	enum vmem_walk_kind kind;
	vmem_addr_t start;
	vmem_size_t size;
};

struct vmem_ref_segs {
	unsigned n;
	struct vmem_ref_seg s[VMEM_REF_MAX_SEGS];
};

struct vmem_ref_alloc {
	vmem_addr_t start;
	vmem_size_t size;
};

static struct {
	struct vmem_ref_config cfg;
	struct vmem arena, parent;
	struct vmem_btag_pool pool;
	struct vmem_btag *hash[1024];
	size_t tags_left; /* what the budget still allows */
	size_t store_used;
	/* reference */
	unsigned owner[VMEM_REF_MAX_UNITS]; /* 0 free, else index + 1 into live[] */
	struct vmem_ref_alloc live[VMEM_REF_MAX_UNITS];
	unsigned nlive;
	unsigned used_units;
	bool layout_present[VMEM_REF_LAYOUT];
	unsigned freerun[VMEM_REF_MAX_UNITS];
	/* snapshots */
	struct vmem_ref_segs before, after, parent_segs;
	struct vmem_ref_counts counts;
	const struct vmem_ref_op *op;
	bool active;
} vmem_ref_h;

static struct vmem_btag vmem_ref_tag_store[VMEM_REF_TAG_STORE];

#define H vmem_ref_h

/* ---- reporting ---- */

static void vmem_ref_dump_op(FILE *out, const struct vmem_ref_op *op)
{
	static const char *const names[] = {"alloc", "xalloc",   "free",    "bad_free",
	                                    "drain", "add_span", "add_tags"};

	fprintf(out,
	        "op #%llu %s size=%#llx align=%#llx phase=%#llx nocross=%#llx min=%#llx "
	        "max=%#llx addr=%#llx flags=%u pick=%u xfree=%d\n",
	        (unsigned long long)H.counts.ops,
	        op->kind < VMEM_REF_NKINDS ? names[op->kind] : "?", (unsigned long long)op->size,
	        (unsigned long long)op->align, (unsigned long long)op->phase,
	        (unsigned long long)op->nocross, (unsigned long long)op->minaddr,
	        (unsigned long long)op->maxaddr, (unsigned long long)op->addr, op->flags, op->pick,
	        op->use_xfree);
}

static void vmem_ref_dump_walk(void *arg, enum vmem_walk_kind kind, vmem_addr_t start,
                               vmem_size_t size)
{
	static const char *const kinds[] = {"SPAN", "IMPORTED", "free", "busy", "cached"};

	fprintf(arg, "  %-8s [%#llx, %#llx)\n", kinds[kind], (unsigned long long)start,
	        (unsigned long long)(start + size));
}

__attribute__((noreturn, format(printf, 1, 2))) static void vmem_ref_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmem_ref: MISMATCH: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (H.op != NULL)
		vmem_ref_dump_op(stderr, H.op);
	fprintf(stderr, "arena:\n");
	vmem_walk(&H.arena, vmem_ref_dump_walk, stderr);
	if (H.cfg.import) {
		fprintf(stderr, "parent:\n");
		vmem_walk(&H.parent, vmem_ref_dump_walk, stderr);
	}
	fprintf(stderr, "reference: %u live allocations\n", H.nlive);
	abort();
}

#define REF_ASSERT(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond))                                                                       \
			vmem_ref_fail(__VA_ARGS__);                                                \
	} while (0)

/* ---- randomness and seeds ---- */

uint64_t vmem_ref_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t vmem_ref_seed(const char *what)
{
	const char *env = getenv("MICA_SEED");
	uint64_t seed;

	if (env != NULL && *env != '\0') {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;

		timespec_get(&ts, TIME_UTC);
		seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
	}
	fprintf(stderr, "# %s: seed %llu (replay with MICA_SEED=%llu)\n", what,
	        (unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

/* ---- tag supply ---- */

static size_t vmem_ref_feed(size_t n)
{
	size_t added;

	if (n > H.tags_left)
		n = H.tags_left;
	if (n > VMEM_REF_TAG_STORE - H.store_used)
		n = VMEM_REF_TAG_STORE - H.store_used;
	if (n == 0)
		return 0;
	added = vmem_btag_pool_add(&H.pool, &vmem_ref_tag_store[H.store_used],
	                           n * sizeof(struct vmem_btag));
	REF_ASSERT(added == n, "pool made %zu tags out of %zu", added, n);
	H.store_used += n;
	H.tags_left -= n;
	return n;
}

static int vmem_ref_refill(void *arg, struct vmem_btag_pool *pool)
{
	(void)arg;
	(void)pool;
	return vmem_ref_feed(H.cfg.refill_chunk) != 0 ? 0 : -MICA_ENOMEM;
}

static size_t vmem_ref_tags_available(void)
{
	size_t store = VMEM_REF_TAG_STORE - H.store_used;
	size_t feedable = H.cfg.refill_chunk != 0 ? (H.tags_left < store ? H.tags_left : store) : 0;

	return H.pool.nfree + feedable;
}

/* ---- the model ---- */

static vmem_size_t Q(void)
{
	return H.cfg.quantum;
}

static vmem_addr_t vmem_ref_end(void)
{
	return H.cfg.base + (vmem_addr_t)H.cfg.units * Q();
}

static bool vmem_ref_in_range(vmem_addr_t a, vmem_size_t size)
{
	return a >= H.cfg.base && a <= vmem_ref_end() && size <= vmem_ref_end() - a;
}

static unsigned vmem_ref_unit(vmem_addr_t a)
{
	return (unsigned)((a - H.cfg.base) / Q());
}

static void vmem_ref_layout(unsigned i, vmem_addr_t *start, vmem_size_t *size)
{
	unsigned u = H.cfg.units;
	unsigned from[VMEM_REF_LAYOUT] = {0, u / 2 + 8, 3 * u / 4};
	unsigned to[VMEM_REF_LAYOUT] = {u / 2, 3 * u / 4, u};

	*start = H.cfg.base + (vmem_addr_t)from[i] * Q();
	*size = (vmem_size_t)(to[i] - from[i]) * Q();
}

static void vmem_ref_collect(void *arg, enum vmem_walk_kind kind, vmem_addr_t start,
                             vmem_size_t size)
{
	struct vmem_ref_segs *segs = arg;

	REF_ASSERT(segs->n < VMEM_REF_MAX_SEGS, "more segments than the model allows");
	segs->s[segs->n++] = (struct vmem_ref_seg){kind, start, size};
}

static void vmem_ref_snapshot(struct vmem *vm, struct vmem_ref_segs *segs)
{
	segs->n = 0;
	vmem_walk(vm, vmem_ref_collect, segs);
}

static bool vmem_ref_is_pow2(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* Would the reference place this request somewhere in the spans of `segs`? Brute
 * force over every quantum. */
static bool vmem_ref_satisfiable(const struct vmem_ref_segs *segs, vmem_size_t size,
                                 vmem_size_t align, vmem_size_t phase, vmem_size_t nocross,
                                 vmem_addr_t minaddr, vmem_addr_t maxaddr)
{
	if (align == 0)
		align = Q();
	for (unsigned i = 0; i < segs->n; i++) {
		const struct vmem_ref_seg *sp = &segs->s[i];
		unsigned u0, u1;

		if (sp->kind != VMEM_WALK_SPAN && sp->kind != VMEM_WALK_IMPORTED_SPAN)
			continue;
		u0 = vmem_ref_unit(sp->start);
		u1 = u0 + (unsigned)(sp->size / Q());
		/* free run lengths inside this span */
		unsigned run = 0;

		for (unsigned u = u1; u-- > u0;) {
			run = H.owner[u] == 0 ? run + 1 : 0;
			H.freerun[u] = run;
		}
		for (unsigned u = u0; u < u1; u++) {
			vmem_addr_t a = H.cfg.base + (vmem_addr_t)u * Q();

			if (a % align != phase || a < minaddr)
				continue;
			if ((vmem_size_t)H.freerun[u] * Q() < size)
				continue;
			if (maxaddr != 0 && (a + size < a || a + size > maxaddr))
				continue;
			if (nocross != 0 && a / nocross != (a + size - 1) / nocross)
				continue;
			return true;
		}
	}
	return false;
}

static void vmem_ref_record(vmem_addr_t a, vmem_size_t size)
{
	unsigned u0 = vmem_ref_unit(a), n = (unsigned)(size / Q());

	for (unsigned u = u0; u < u0 + n; u++) {
		REF_ASSERT(H.owner[u] == 0, "arena handed out [%#llx, +%#llx) which overlaps %#llx",
		           (unsigned long long)a, (unsigned long long)size,
		           (unsigned long long)H.live[H.owner[u] - 1].start);
		H.owner[u] = H.nlive + 1;
	}
	H.live[H.nlive++] = (struct vmem_ref_alloc){a, size};
	H.used_units += n;
}

static void vmem_ref_forget(unsigned idx)
{
	struct vmem_ref_alloc gone = H.live[idx];
	unsigned u0 = vmem_ref_unit(gone.start);

	for (unsigned u = u0; u < u0 + gone.size / Q(); u++)
		H.owner[u] = 0;
	H.used_units -= (unsigned)(gone.size / Q());
	H.nlive--;
	if (idx != H.nlive) {
		struct vmem_ref_alloc moved = H.live[H.nlive];

		H.live[idx] = moved;
		u0 = vmem_ref_unit(moved.start);
		for (unsigned u = u0; u < u0 + moved.size / Q(); u++)
			H.owner[u] = idx + 1;
	}
}

/* index + 1 of the live allocation starting at a, or 0 */
static unsigned vmem_ref_live_at(vmem_addr_t a)
{
	unsigned id;

	if (!vmem_ref_in_range(a, 0) || a == vmem_ref_end() || (a - H.cfg.base) % Q() != 0)
		return 0;
	id = H.owner[vmem_ref_unit(a)];
	return id != 0 && H.live[id - 1].start == a ? id : 0;
}

/* ---- comparison after every step ---- */

static void vmem_ref_compare(void)
{
	struct vmem_ref_segs *segs = &H.after;
	struct vmem_stats st;
	vmem_size_t span_bytes = 0, busy_bytes = 0, user_bytes = 0;
	unsigned busy = 0, nspans = 0, layout_seen = 0;
	const char *why = vmem_check(&H.arena);

	REF_ASSERT(why == NULL, "vmem_check: %s", why);
	if (H.cfg.import) {
		why = vmem_check(&H.parent);
		REF_ASSERT(why == NULL, "vmem_check(parent): %s", why);
	}
	vmem_ref_snapshot(&H.arena, segs);
	for (unsigned i = 0; i < segs->n; i++) {
		const struct vmem_ref_seg *s = &segs->s[i];

		REF_ASSERT(vmem_ref_in_range(s->start, s->size), "segment outside the range");
		switch (s->kind) {
		case VMEM_WALK_SPAN:
		case VMEM_WALK_IMPORTED_SPAN: {
			bool imported = s->kind == VMEM_WALK_IMPORTED_SPAN;

			REF_ASSERT(imported == H.cfg.import, "span of the wrong kind");
			if (!imported) {
				unsigned j;

				for (j = 0; j < VMEM_REF_LAYOUT; j++) {
					vmem_addr_t ls;
					vmem_size_t lz;

					vmem_ref_layout(j, &ls, &lz);
					if (ls == s->start && lz == s->size && H.layout_present[j])
						break;
				}
				REF_ASSERT(j < VMEM_REF_LAYOUT, "span the reference never added");
				layout_seen++;
			}
			span_bytes += s->size;
			nspans++;
			break;
		}
		case VMEM_WALK_BUSY: {
			unsigned id = vmem_ref_live_at(s->start);

			REF_ASSERT(id != 0 && H.live[id - 1].size == s->size,
			           "arena allocation [%#llx, +%#llx) unknown to the reference",
			           (unsigned long long)s->start, (unsigned long long)s->size);
			busy++;
			busy_bytes += s->size;
			break;
		}
		case VMEM_WALK_CACHED:
			REF_ASSERT(s->size <= (vmem_size_t)H.cfg.qcache_quanta * Q(),
			           "cached segment larger than the caches");
			/* fall through */
		case VMEM_WALK_FREE:
			for (unsigned u = vmem_ref_unit(s->start);
			     u < vmem_ref_unit(s->start + s->size); u++)
				REF_ASSERT(
				    H.owner[u] == 0,
				    "arena has %#llx free or cached, the reference allocated",
				    (unsigned long long)(H.cfg.base + u * Q()));
			break;
		}
	}
	REF_ASSERT(busy == H.nlive, "arena holds %u allocations, the reference %u", busy, H.nlive);
	for (unsigned i = 0; i < H.nlive; i++)
		user_bytes += H.live[i].size;
	REF_ASSERT(user_bytes == busy_bytes, "allocated bytes differ");
	if (!H.cfg.import) {
		unsigned present = 0;

		for (unsigned j = 0; j < VMEM_REF_LAYOUT; j++)
			present += H.layout_present[j];
		REF_ASSERT(present == layout_seen, "a span the reference added is missing");
	}

	vmem_get_stats(&H.arena, &st);
	REF_ASSERT(st.total == span_bytes && st.inuse == user_bytes && st.nspans == nspans,
	           "statistics disagree (total %#llx/%#llx, inuse %#llx/%#llx)",
	           (unsigned long long)st.total, (unsigned long long)span_bytes,
	           (unsigned long long)st.inuse, (unsigned long long)user_bytes);
	REF_ASSERT(st.free + st.cached + st.inuse == st.total, "statistics do not add up");
	REF_ASSERT(st.nbusy == H.nlive, "statistics count allocations wrongly");
	for (unsigned pct = 0; pct <= 100; pct += 25) {
		unsigned __int128 rhs = (unsigned __int128)st.total * pct;
		/* starved iff avail < floor(total * pct / 100) */
		bool want = (st.total - user_bytes) < (vmem_size_t)(rhs / 100);

		REF_ASSERT(vmem_starved(&H.arena, pct) == want, "vmem_starved(%u) wrong", pct);
	}

	if (H.cfg.import) {
		/* The parent's allocations are exactly the child's spans. */
		unsigned k = 0;

		vmem_ref_snapshot(&H.parent, &H.parent_segs);
		for (unsigned i = 0; i < H.parent_segs.n; i++) {
			const struct vmem_ref_seg *p = &H.parent_segs.s[i];

			if (p->kind != VMEM_WALK_BUSY)
				continue;
			while (k < segs->n && segs->s[k].kind != VMEM_WALK_IMPORTED_SPAN)
				k++;
			REF_ASSERT(k < segs->n && segs->s[k].start == p->start &&
			               segs->s[k].size == p->size,
			           "parent allocation [%#llx, +%#llx) is not a child span",
			           (unsigned long long)p->start, (unsigned long long)p->size);
			k++;
		}
		while (k < segs->n && segs->s[k].kind != VMEM_WALK_IMPORTED_SPAN)
			k++;
		REF_ASSERT(k == segs->n, "child span the parent did not hand out");
	}
}

/* ---- operations ---- */

static bool vmem_ref_flags_ok(unsigned flags)
{
	return flags == VMEM_INSTANTFIT || flags == VMEM_BESTFIT;
}

static bool vmem_ref_size_ok(vmem_size_t size)
{
	return size != 0 && size % Q() == 0;
}

static void vmem_ref_do_alloc(const struct vmem_ref_op *op, bool constrained)
{
	vmem_size_t align = constrained ? op->align : 0, phase = constrained ? op->phase : 0;
	vmem_size_t nocross = constrained ? op->nocross : 0;
	vmem_addr_t minaddr = constrained ? op->minaddr : 0,
	            maxaddr = constrained ? op->maxaddr : 0;
	vmem_size_t eff_align = align == 0 ? Q() : align;
	bool valid = vmem_ref_flags_ok(op->flags) && vmem_ref_size_ok(op->size);
	bool tags_short = vmem_ref_tags_available() < VMEM_REF_TAGS_SHORT;
	bool could;
	vmem_addr_t a = ~0ull;
	int rc;

	if (constrained) {
		valid = valid && (align == 0 || (vmem_ref_is_pow2(align) && align % Q() == 0)) &&
		        phase < eff_align && phase % Q() == 0 &&
		        (nocross == 0 || (vmem_ref_is_pow2(nocross) && nocross >= op->size)) &&
		        (maxaddr == 0 || minaddr < maxaddr);
	}
	could = valid && vmem_ref_satisfiable(&H.before, op->size, eff_align, phase, nocross,
	                                      minaddr, maxaddr);
	if (constrained)
		rc = vmem_xalloc(&H.arena, op->size, align, phase, nocross, minaddr, maxaddr,
		                 op->flags, &a);
	else
		rc = vmem_alloc(&H.arena, op->size, op->flags, &a);

	if (!valid) {
		REF_ASSERT(rc == -MICA_EINVAL, "invalid request gave %d, not -EINVAL", rc);
		H.counts.alloc_einval++;
		return;
	}
	if (rc != 0) {
		REF_ASSERT(rc == -MICA_ENOMEM, "valid request failed with %d", rc);
		if (tags_short) {
			H.counts.tag_failures++;
		} else {
			REF_ASSERT(!could, "satisfiable request failed (%s)",
			           op->flags == VMEM_BESTFIT ? "bestfit" : "instantfit");
		}
		if (H.cfg.import && !constrained && !tags_short) {
			/* the source could not have supplied an import either */
			struct vmem_stats ps;
			vmem_size_t want = op->size;

			if (want < (vmem_size_t)H.cfg.import_min_units * Q())
				want = (vmem_size_t)H.cfg.import_min_units * Q();
			vmem_get_stats(&H.parent, &ps);
			REF_ASSERT(ps.largest_free < want && ps.cached == 0,
			           "failed although the source had room to import");
		}
		H.counts.alloc_nomem++;
		return;
	}
	REF_ASSERT(vmem_ref_in_range(a, op->size), "result %#llx outside the modelled range",
	           (unsigned long long)a);
	REF_ASSERT((a - H.cfg.base) % Q() == 0, "result not on a quantum");
	REF_ASSERT(a % eff_align == phase, "result %#llx breaks align/phase",
	           (unsigned long long)a);
	REF_ASSERT(nocross == 0 || a / nocross == (a + op->size - 1) / nocross,
	           "result %#llx crosses a %#llx boundary", (unsigned long long)a,
	           (unsigned long long)nocross);
	REF_ASSERT(a >= minaddr && (maxaddr == 0 || a + op->size <= maxaddr),
	           "result %#llx outside [min, max)", (unsigned long long)a);
	vmem_ref_record(a, op->size);
	H.counts.alloc_ok++;
}

static void vmem_ref_do_free(const struct vmem_ref_op *op)
{
	unsigned idx = op->pick % H.nlive;
	struct vmem_ref_alloc al = H.live[idx];
	int rc = op->use_xfree ? vmem_xfree(&H.arena, al.start, al.size)
	                       : vmem_free(&H.arena, al.start, al.size);

	REF_ASSERT(rc == 0, "freeing live [%#llx, +%#llx) gave %d", (unsigned long long)al.start,
	           (unsigned long long)al.size, rc);
	vmem_ref_forget(idx);
	H.counts.frees++;
}

static void vmem_ref_do_bad_free(const struct vmem_ref_op *op)
{
	vmem_addr_t a = op->addr;
	vmem_size_t size = op->size;
	unsigned id;
	int want, rc;

	/* Aim near live allocations half of the time: the interesting mistakes. */
	if (H.nlive != 0 && (op->pick & 1)) {
		const struct vmem_ref_alloc *al = &H.live[(op->pick >> 1) % H.nlive];

		switch ((op->pick >> 8) % 4) {
		case 0: /* inside, not at the start */
			a = al->start + (al->size > Q() ? Q() : 0);
			size = al->size;
			break;
		case 1: /* right start, wrong size */
			a = al->start;
			size = al->size > Q() ? al->size - Q() : al->size + Q();
			break;
		case 2: /* right start, size not a multiple of the quantum */
			a = al->start;
			size = al->size + (Q() > 1 ? 1 : 0);
			break;
		default: /* right start, size 0 */
			a = al->start;
			size = 0;
			break;
		}
	}
	id = vmem_ref_live_at(a);
	if (!vmem_ref_size_ok(size))
		want = -MICA_EINVAL;
	else if (id == 0)
		want = -MICA_ENOENT;
	else if (H.live[id - 1].size != size)
		want = -MICA_EINVAL;
	else
		want = 0;
	rc = op->use_xfree ? vmem_xfree(&H.arena, a, size) : vmem_free(&H.arena, a, size);
	REF_ASSERT(rc == want, "free(%#llx, %#llx) gave %d, expected %d", (unsigned long long)a,
	           (unsigned long long)size, rc, want);
	if (rc == 0)
		vmem_ref_forget(id - 1);
	H.counts.bad_frees++;
}

static void vmem_ref_do_add_span(const struct vmem_ref_op *op)
{
	unsigned which = op->pick % 6;
	vmem_addr_t a;
	vmem_size_t size;
	int want, rc;
	bool tags_short = vmem_ref_tags_available() < 2;

	if (H.cfg.import)
		return; /* the child's spans belong to the parent's bookkeeping */
	if (which < VMEM_REF_LAYOUT) {
		vmem_ref_layout(which, &a, &size);
		want = H.layout_present[which] ? -MICA_EEXIST : 0;
	} else if (which == 3) { /* straddles the gap and the start of layout span 1 */
		vmem_ref_layout(1, &a, &size);
		a -= 4 * Q();
		size = 8 * Q();
		want = H.layout_present[1] ? -MICA_EEXIST : 0;
		if (want == 0)
			return; /* would make a span the layout does not know */
	} else if (which == 4) {
		a = H.cfg.base + (Q() > 1 ? 1 : 0);
		size = Q();
		want = Q() > 1 ? -MICA_EINVAL : (H.layout_present[0] ? -MICA_EEXIST : 0);
		if (want == 0)
			return;
	} else {
		a = H.cfg.base;
		size = 0;
		want = -MICA_EINVAL;
	}
	rc = vmem_add(&H.arena, a, size);
	if (rc == -MICA_ENOMEM && tags_short && want == 0) {
		H.counts.tag_failures++;
		return;
	}
	REF_ASSERT(rc == want, "vmem_add(%#llx, %#llx) gave %d, expected %d", (unsigned long long)a,
	           (unsigned long long)size, rc, want);
	if (rc == 0) {
		H.layout_present[which] = true;
		H.counts.spans_added++;
	}
}

void vmem_ref_step(const struct vmem_ref_op *op)
{
	H.op = op;
	H.counts.ops++;
	vmem_ref_snapshot(&H.arena, &H.before);
	switch (op->kind) {
	case VMEM_REF_ALLOC:
		vmem_ref_do_alloc(op, false);
		break;
	case VMEM_REF_XALLOC:
		vmem_ref_do_alloc(op, true);
		break;
	case VMEM_REF_FREE:
		if (H.nlive != 0) {
			vmem_ref_do_free(op);
			break;
		}
		/* fall through */
	case VMEM_REF_BAD_FREE:
		vmem_ref_do_bad_free(op);
		break;
	case VMEM_REF_DRAIN:
		vmem_drain(&H.arena);
		H.counts.drains++;
		break;
	case VMEM_REF_ADD_SPAN:
		vmem_ref_do_add_span(op);
		break;
	case VMEM_REF_ADD_TAGS:
		vmem_ref_feed((size_t)(op->size % 64));
		break;
	default:
		break;
	}
	vmem_ref_compare();
	H.op = NULL;
}

/* ---- setup and teardown ---- */

void vmem_ref_setup(const struct vmem_ref_config *cfg)
{
	struct vmem_config vc;
	int rc;

	memset(&H, 0, sizeof(H));
	H.cfg = *cfg;
	H.active = true;
	if (H.cfg.units < 32)
		H.cfg.units = 32;
	if (H.cfg.units > VMEM_REF_MAX_UNITS)
		H.cfg.units = VMEM_REF_MAX_UNITS;
	if (H.cfg.qcache_quanta > VMEM_QCACHE_SIZES)
		H.cfg.qcache_quanta = VMEM_QCACHE_SIZES;
	if (H.cfg.hash_buckets > sizeof(H.hash) / sizeof(H.hash[0]))
		H.cfg.hash_buckets = sizeof(H.hash) / sizeof(H.hash[0]);
	H.tags_left = cfg->tag_budget != 0 ? cfg->tag_budget : VMEM_REF_TAG_STORE;
	vmem_btag_pool_init(&H.pool, cfg->refill_chunk != 0 ? vmem_ref_refill : NULL, NULL, 0);
	vmem_ref_feed(cfg->initial_tags != 0 ? cfg->initial_tags : VMEM_REF_TAG_STORE / 2);

	memset(&vc, 0, sizeof(vc));
	vc.quantum = H.cfg.quantum;
	vc.pool = &H.pool;
	if (H.cfg.import) {
		vc.name = "ref-parent";
		rc = vmem_init(&H.parent, &vc);
		REF_ASSERT(rc == 0, "parent init: %d", rc);
		rc = vmem_add(&H.parent, H.cfg.base, (vmem_size_t)H.cfg.units * Q());
		REF_ASSERT(rc == 0, "parent add: %d", rc);
		vc.import = vmem_import_from_arena;
		vc.release = vmem_release_to_arena;
		vc.source = &H.parent;
		vc.import_min = (vmem_size_t)H.cfg.import_min_units * Q();
	}
	vc.name = "ref";
	vc.qcache_max = (vmem_size_t)H.cfg.qcache_quanta * Q();
	if (H.cfg.hash_buckets >= 2) {
		vc.hash_buckets = H.hash;
		vc.hash_nbuckets = H.cfg.hash_buckets;
	}
	rc = vmem_init(&H.arena, &vc);
	REF_ASSERT(rc == 0, "arena init: %d", rc);
	if (!H.cfg.import) {
		for (unsigned i = 0; i < 2; i++) {
			vmem_addr_t a;
			vmem_size_t size;

			vmem_ref_layout(i, &a, &size);
			rc = vmem_add(&H.arena, a, size);
			REF_ASSERT(rc == 0, "add layout span %u: %d", i, rc);
			H.layout_present[i] = true;
		}
	}
	vmem_ref_compare();
}

void vmem_ref_teardown(void)
{
	int rc;
	const char *why;

	while (H.nlive != 0) {
		struct vmem_ref_alloc al = H.live[H.nlive - 1];

		rc = vmem_free(&H.arena, al.start, al.size);
		REF_ASSERT(rc == 0, "teardown free: %d", rc);
		vmem_ref_forget(H.nlive - 1);
	}
	vmem_ref_compare();
	rc = vmem_destroy(&H.arena);
	REF_ASSERT(rc == 0, "destroy: %d", rc);
	if (H.cfg.import) {
		struct vmem_stats ps;

		vmem_get_stats(&H.parent, &ps);
		REF_ASSERT(ps.inuse == 0 && ps.cached == 0,
		           "parent still lends memory after destroy");
		rc = vmem_destroy(&H.parent);
		REF_ASSERT(rc == 0, "parent destroy: %d", rc);
	}
	why = vmem_btag_pool_check(&H.pool);
	REF_ASSERT(why == NULL, "%s", why);
	REF_ASSERT(H.pool.nfree == H.pool.ntotal, "%zu of %zu tags leaked",
	           H.pool.ntotal - H.pool.nfree, H.pool.ntotal);
	H.active = false;
}

const struct vmem_ref_counts *vmem_ref_counts(void)
{
	return &H.counts;
}

struct vmem *vmem_ref_arena(void)
{
	return &H.arena;
}

/* ---- operation generators ---- */

/* A size in quanta: mostly small (the quantum caches), sometimes large. */
static unsigned vmem_ref_size_units(uint64_t r, unsigned units)
{
	switch (r % 8) {
	case 0:
	case 1:
	case 2:
		return 1 + (unsigned)((r >> 8) % 4);
	case 3:
	case 4:
		return 1 + (unsigned)((r >> 8) % 8);
	case 5:
	case 6:
		return 1 + (unsigned)((r >> 8) % 24);
	default:
		return 1 + (unsigned)((r >> 8) % (units / 3));
	}
}

static void vmem_ref_fill_constraints(uint64_t r, uint64_t r2, struct vmem_ref_op *op)
{
	vmem_size_t q = Q();
	unsigned units = H.cfg.units;
	unsigned shift =
	    (r >> 2) % 8 == 7 ? 5 + (unsigned)((r >> 5) % 3) : (unsigned)((r >> 5) % 5);

	op->align = (r & 3) == 0 ? 0 : q << shift;
	op->phase = (r >> 8) % 3 == 0 && op->align > q ? ((r2 % (op->align / q)) * q) : 0;
	op->nocross = 0;
	if ((r >> 10) % 4 == 0) {
		vmem_size_t nc = q;

		while (nc < op->size)
			nc <<= 1;
		op->nocross = nc << ((r >> 12) % 3);
	}
	op->minaddr = op->maxaddr = 0;
	switch ((r >> 14) % 6) {
	case 0: /* a window: usually room for the request, sometimes exactly or not */
	case 1: {
		unsigned start = (unsigned)((r2 >> 16) % units);
		unsigned len = (unsigned)(op->size / q) + (unsigned)((r2 >> 32) % (units / 2));

		op->minaddr = H.cfg.base + (vmem_addr_t)start * q;
		op->maxaddr = start + len >= units ? 0 : op->minaddr + (vmem_addr_t)len * q;
		break;
	}
	case 2:
		op->minaddr = H.cfg.base + ((r2 >> 16) % units) * q;
		break;
	case 3:
		op->maxaddr = H.cfg.base + ((r2 >> 32) % units + 1) * q;
		break;
	default:
		break;
	}
}

/* Break one parameter of an otherwise valid request. */
static void vmem_ref_spoil(uint64_t r, struct vmem_ref_op *op)
{
	vmem_size_t q = Q();

	switch (r % 9) {
	case 0:
		op->size = 0;
		break;
	case 1:
		op->size += q > 1 ? q / 2 : 0;
		if (q == 1)
			op->size = 0;
		break;
	case 2:
		op->align = 3 * q;
		break;
	case 3:
		op->align = q > 1 ? q / 2 : 3;
		break;
	case 4:
		op->align = op->align == 0 ? q : op->align;
		op->phase = op->align;
		break;
	case 5:
		op->align = 4 * q;
		op->phase = q > 1 ? q / 2 : 4 * q;
		break;
	case 6:
		op->nocross = op->size > q ? q : 3 * q;
		if (op->size <= q)
			op->nocross = 3 * q;
		break;
	case 7:
		op->minaddr = H.cfg.base + 8 * q;
		op->maxaddr = H.cfg.base + 8 * q;
		break;
	default:
		op->flags = (unsigned)(r >> 8) % 2 == 0 ? 0 : (VMEM_INSTANTFIT | VMEM_BESTFIT);
		break;
	}
}

void vmem_ref_random_op(uint64_t *rng, struct vmem_ref_op *op)
{
	uint64_t r = vmem_ref_rand(rng), r2 = vmem_ref_rand(rng);
	unsigned dice = (unsigned)(r % 1000);

	memset(op, 0, sizeof(*op));
	op->flags = (r >> 10) & 1 ? VMEM_BESTFIT : VMEM_INSTANTFIT;
	op->size = (vmem_size_t)vmem_ref_size_units(r2, H.cfg.units) * Q();
	op->pick = (unsigned)(r2 >> 40);
	op->use_xfree = (r >> 11) % 4 == 0;
	/* Hover around half occupancy: full enough for failures and fragmentation,
	 * empty enough for constrained requests to succeed. */
	unsigned capacity = H.cfg.units;

	if (!H.cfg.import) {
		capacity = 0;
		for (unsigned j = 0; j < VMEM_REF_LAYOUT; j++) {
			vmem_addr_t ls;
			vmem_size_t lz;

			vmem_ref_layout(j, &ls, &lz);
			capacity += H.layout_present[j] ? (unsigned)(lz / Q()) : 0;
		}
	}
	unsigned occupancy = H.used_units * 100 / capacity;
	unsigned alloc_share = occupancy > 50 ? 200 : 450;

	if (dice < alloc_share) {
		op->kind = VMEM_REF_ALLOC;
	} else if (dice < 600) {
		op->kind = VMEM_REF_XALLOC;
		vmem_ref_fill_constraints(r >> 16, r2, op);
	} else if (dice < 950) {
		op->kind = VMEM_REF_FREE;
	} else if (dice < 975) {
		op->kind = VMEM_REF_BAD_FREE;
		op->addr = H.cfg.base + (r2 % (H.cfg.units + 2)) * Q();
	} else if (dice < 990) {
		op->kind = (r >> 20) & 1 ? VMEM_REF_XALLOC : VMEM_REF_ALLOC;
		vmem_ref_fill_constraints(r >> 16, r2, op);
		vmem_ref_spoil(r >> 40, op);
	} else if (dice < 994) {
		op->kind = VMEM_REF_DRAIN;
	} else if (dice < 997) {
		op->kind = VMEM_REF_ADD_SPAN;
	} else {
		op->kind = VMEM_REF_ADD_TAGS;
		op->size = r2 % 16;
	}
}

static uint64_t vmem_ref_take(const uint8_t **data, size_t *len, unsigned nbytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < nbytes && *len != 0; i++) {
		v |= (uint64_t) * *data << (8 * i);
		(*data)++;
		(*len)--;
	}
	return v;
}

bool vmem_ref_decode_op(const uint8_t **data, size_t *len, struct vmem_ref_op *op)
{
	uint64_t b, r;
	vmem_size_t q = Q();

	if (*len == 0)
		return false;
	memset(op, 0, sizeof(*op));
	b = vmem_ref_take(data, len, 1);
	r = vmem_ref_take(data, len, 4);
	op->kind = (enum vmem_ref_op_kind)(b % VMEM_REF_NKINDS);
	op->flags = (b >> 3) & 1 ? VMEM_BESTFIT : VMEM_INSTANTFIT;
	op->use_xfree = (b >> 4) & 1;
	op->pick = (unsigned)r;
	op->size = (vmem_size_t)vmem_ref_size_units(r, H.cfg.units) * q;
	switch (op->kind) {
	case VMEM_REF_XALLOC: {
		uint64_t c = vmem_ref_take(data, len, 8);

		vmem_ref_fill_constraints(c, c * 0x9e3779b97f4a7c15ull, op);
		break;
	}
	case VMEM_REF_BAD_FREE:
		op->addr = H.cfg.base + (r >> 8) % (H.cfg.units + 2) * q;
		op->size = (r >> 24) % 4 * q;
		break;
	case VMEM_REF_ADD_TAGS:
		op->size = r % 16;
		break;
	default:
		break;
	}
	/* Bit 7 spoils one parameter: the error paths. */
	if ((b >> 7) & 1 && (op->kind == VMEM_REF_ALLOC || op->kind == VMEM_REF_XALLOC))
		vmem_ref_spoil(r >> 8, op);
	return true;
}

void vmem_ref_pick_config(unsigned selector, struct vmem_ref_config *cfg)
{
	static const vmem_size_t quanta[] = {1, 16, 4096, 1ull << 21};

	memset(cfg, 0, sizeof(*cfg));
	cfg->quantum = quanta[selector % 4];
	cfg->units = 64 << ((selector >> 2) % 3); /* 64, 128, 256 */
	cfg->qcache_quanta = (selector >> 4) % 2 ? 4 + (selector >> 5) % 5 : 0;
	cfg->import = (selector >> 6) % 2;
	cfg->import_min_units = cfg->import ? 4 << ((selector >> 7) % 3) : 0;
	/* Near the top of the address space for the largest quantum: overflow paths. */
	cfg->base = cfg->quantum == (1ull << 21)
	                ? 0 - (vmem_addr_t)(cfg->units + 1) * cfg->quantum
	                : 0x40000000ull + cfg->quantum * ((selector >> 9) % 3);
	if ((selector >> 11) % 4 == 0) {
		/* tight tag budget: exhaustion paths */
		cfg->initial_tags = 12;
		cfg->refill_chunk = (selector >> 13) % 2 ? 6 : 0;
		cfg->tag_budget = 40 + (selector >> 14) % 64;
	}
	cfg->hash_buckets = (selector >> 10) % 2 ? 2 : 0; /* long chains, or the built-in 32 */
}
