/* Reference model and differential harness for mm/vm_map; see vm_map_ref.h.
 *
 * The model is deliberately naive: one record per page, linear scans for everything. It
 * shares no code with mm/vm_map.c, so a bug has to be made twice, in two different
 * shapes, to slip through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mica/errno.h"
#include "mica/param.h"
#include "tests/host/lib/vm_map_ref.h"

/* ---- model ------------------------------------------------------------------------ */

int vmref_init(struct vmref *r, uintptr_t min, size_t npages)
{
	r->min = min;
	r->max = min + npages * PAGE_SIZE;
	r->npages = npages;
	r->pg = calloc(npages, sizeof(*r->pg));
	return r->pg == NULL ? -MICA_ENOMEM : 0;
}

void vmref_fini(struct vmref *r)
{
	free(r->pg);
	r->pg = NULL;
}

static size_t pidx(const struct vmref *r, uintptr_t addr)
{
	return (addr - r->min) / PAGE_SIZE;
}

static bool model_mapped(const struct vmref *r, uintptr_t addr)
{
	return addr >= r->min && addr < r->max && r->pg[pidx(r, addr)].mapped;
}

/* Are pages i - 1 and i parts of one entry in a canonical map? */
static bool same_entry(const struct vmref *r, size_t i)
{
	const struct vmref_page *a = &r->pg[i - 1], *b = &r->pg[i];

	if (!a->mapped || !b->mapped || a->prot != b->prot || a->max_prot != b->max_prot ||
	    a->flags != b->flags || a->wired != b->wired || a->backing != b->backing)
		return false;
	if (b->flags & VM_ENT_NOMERGE)
		return !b->cut;
	return b->backing == NULL || b->offset == a->offset + PAGE_SIZE;
}

bool vmref_next_run(const struct vmref *r, size_t from, struct vmref_run *run)
{
	size_t i = from, j;

	while (i < r->npages && !r->pg[i].mapped)
		i++;
	if (i >= r->npages)
		return false;
	for (j = i + 1; j < r->npages && same_entry(r, j); j++)
		;
	run->first = i;
	run->npages = j - i;
	return true;
}

static int model_range(const struct vmref *r, uintptr_t addr, size_t len)
{
	if (len == 0 || addr % PAGE_SIZE != 0 || len % PAGE_SIZE != 0)
		return -MICA_EINVAL;
	if (addr > UINTPTR_MAX - len || addr + len == 0)
		return -MICA_EOVERFLOW;
	if (addr < r->min || addr + len > r->max)
		return -MICA_EFAULT;
	return 0;
}

static int model_place(unsigned place, size_t *align)
{
	bool fixed = place & VM_PLACE_FIXED, norep = place & VM_PLACE_NOREPLACE;
	bool top = place & VM_PLACE_TOPDOWN;

	if (place > VM_PLACE_ALL || (fixed && (norep || top)) || (norep && top))
		return -MICA_EINVAL;
	if (*align == 0)
		*align = PAGE_SIZE;
	if (*align < PAGE_SIZE || (*align & (*align - 1)) != 0)
		return -MICA_EINVAL;
	return 0;
}

/* The free run of pages holding page i, as addresses [gs, ge). */
static bool free_run_at(const struct vmref *r, size_t i, uintptr_t *gs, uintptr_t *ge)
{
	size_t a = i, b = i;

	if (i >= r->npages || r->pg[i].mapped)
		return false;
	while (a > 0 && !r->pg[a - 1].mapped)
		a--;
	while (b < r->npages && !r->pg[b].mapped)
		b++;
	*gs = r->min + a * PAGE_SIZE;
	*ge = r->min + b * PAGE_SIZE;
	return true;
}

static bool model_roundup(uintptr_t x, size_t a, uintptr_t *out)
{
	uintptr_t rem = x % a;

	if (rem == 0) {
		*out = x;
		return true;
	}
	if (x - rem > UINTPTR_MAX - a)
		return false;
	*out = x - rem + a;
	return true;
}

int vmref_findspace(const struct vmref *r, uintptr_t hint, size_t len, size_t align, unsigned place,
                    uintptr_t *addr)
{
	uintptr_t gs, ge, c, best = 0;
	size_t need, i, j;
	bool have = false;
	int e = model_place(place, &align);

	if (e != 0)
		return e;
	if (len == 0 || len % PAGE_SIZE != 0)
		return -MICA_EINVAL;
	if (place & (VM_PLACE_FIXED | VM_PLACE_NOREPLACE)) {
		if (hint % align != 0)
			return -MICA_EINVAL;
		if (hint > UINTPTR_MAX - len)
			return -MICA_EOVERFLOW;
		if (hint < r->min || hint + len > r->max)
			return -MICA_EFAULT;
		if (place & VM_PLACE_NOREPLACE)
			for (i = 0; i < len / PAGE_SIZE; i++)
				if (r->pg[pidx(r, hint) + i].mapped)
					return -MICA_EEXIST;
		*addr = hint;
		return 0;
	}
	if (len > r->max - r->min)
		return -MICA_ENOMEM;
	need = len + align - PAGE_SIZE < len ? SIZE_MAX : len + align - PAGE_SIZE;

	if (!(place & VM_PLACE_TOPDOWN)) {
		uintptr_t lo;

		if (hint >= r->max)
			return -MICA_ENOMEM;
		lo = hint < r->min ? r->min : (hint + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE;
		/* First the free run holding the hint, exactly... */
		if (lo < r->max && free_run_at(r, pidx(r, lo), &gs, &ge) &&
		    model_roundup(lo, align, &c) && c <= ge && ge - c >= len) {
			*addr = c;
			return 0;
		}
		/* ...then the lowest run at or above it that is big enough for any start. */
		for (i = 0; i < r->npages; i = j) {
			for (j = i; j < r->npages && !r->pg[j].mapped; j++)
				;
			if (j == i) {
				j++;
				continue;
			}
			gs = r->min + i * PAGE_SIZE;
			ge = r->min + j * PAGE_SIZE;
			if (gs >= lo && ge - gs >= need) {
				model_roundup(gs, align, addr);
				return 0;
			}
		}
		return -MICA_ENOMEM;
	} else {
		uintptr_t hi = hint == 0 || hint > r->max ? r->max : hint / PAGE_SIZE * PAGE_SIZE;

		if (hi <= r->min)
			return -MICA_ENOMEM;
		if (free_run_at(r, pidx(r, hi - 1), &gs, &ge)) {
			uintptr_t top = ge < hi ? ge : hi;

			if (top - gs >= len && (top - len) / align * align >= gs) {
				*addr = (top - len) / align * align;
				return 0;
			}
		}
		for (i = 0; i < r->npages; i = j) {
			for (j = i; j < r->npages && !r->pg[j].mapped; j++)
				;
			if (j == i) {
				j++;
				continue;
			}
			gs = r->min + i * PAGE_SIZE;
			ge = r->min + j * PAGE_SIZE;
			if (ge <= hi && ge - gs >= need) {
				best = (ge - len) / align * align;
				have = true;
			}
		}
		if (!have)
			return -MICA_ENOMEM;
		*addr = best;
		return 0;
	}
}

static int model_attr(const struct vm_map_attr *a)
{
	if (a->prot > 7 || a->max_prot > 7 || a->flags > VM_ENT_ALL || a->offset % PAGE_SIZE != 0)
		return -MICA_EINVAL;
	if ((a->flags & VM_ENT_GUARD) && a->max_prot != 0)
		return -MICA_EINVAL;
	if ((a->prot | a->max_prot) != a->max_prot)
		return -MICA_EACCES;
	return 0;
}

int vmref_enter(struct vmref *r, uintptr_t hint, size_t len, size_t align, unsigned place,
                const struct vm_map_attr *attr, uintptr_t *addr)
{
	uintptr_t a;
	size_t i, first, n;
	int e = model_place(place, &align);

	if (e == 0)
		e = model_attr(attr);
	if (e != 0)
		return e;
	if (len == 0 || len % PAGE_SIZE != 0)
		return -MICA_EINVAL;
	if (attr->offset > UINT64_MAX - len)
		return -MICA_EOVERFLOW;
	e = vmref_findspace(r, hint, len, align, place, &a);
	if (e != 0)
		return e;
	first = pidx(r, a);
	n = len / PAGE_SIZE;
	for (i = 0; i < n; i++) {
		struct vmref_page *p = &r->pg[first + i];

		p->mapped = 1;
		p->prot = (uint8_t)attr->prot;
		p->max_prot = (uint8_t)attr->max_prot;
		p->flags = (uint8_t)attr->flags;
		p->wired = 0;
		p->backing = attr->backing;
		p->offset = attr->offset + i * PAGE_SIZE;
		p->cut = 0;
	}
	if (attr->flags & VM_ENT_NOMERGE) {
		r->pg[first].cut = 1;
		if (first + n < r->npages)
			r->pg[first + n].cut = 1;
	}
	*addr = a;
	return 0;
}

int vmref_remove(struct vmref *r, uintptr_t addr, size_t len)
{
	size_t i;
	int e = model_range(r, addr, len);

	if (e != 0)
		return e;
	for (i = pidx(r, addr); i < pidx(r, addr) + len / PAGE_SIZE; i++)
		r->pg[i].mapped = 0;
	return 0;
}

enum model_change { MC_PROT, MC_WIRE, MC_UNWIRE };

static bool model_differs(const struct vmref_page *p, enum model_change c, unsigned prot)
{
	return c == MC_PROT ? p->prot != prot : c == MC_WIRE ? !p->wired : p->wired;
}

static int model_change(struct vmref *r, uintptr_t addr, size_t len, enum model_change c,
                        unsigned prot)
{
	size_t i, a, b;
	bool first_changes, last_changes;
	int e = model_range(r, addr, len);

	if (e != 0)
		return e;
	a = pidx(r, addr);
	b = a + len / PAGE_SIZE;
	for (i = a; i < b; i++) {
		const struct vmref_page *p = &r->pg[i];

		if (!p->mapped)
			return -MICA_ENOMEM;
		if (c == MC_PROT && (prot & ~(unsigned)p->max_prot))
			return -MICA_EACCES;
		if (c != MC_PROT && (p->flags & VM_ENT_GUARD))
			return -MICA_ENOMEM;
	}
	first_changes = model_differs(&r->pg[a], c, prot);
	last_changes = model_differs(&r->pg[b - 1], c, prot);
	for (i = a; i < b; i++) {
		if (c == MC_PROT)
			r->pg[i].prot = (uint8_t)prot;
		else
			r->pg[i].wired = c == MC_WIRE;
	}
	/* The map splits an entry at the range edge only when that entry changes; for
	 * entries that never merge, the boundary outlives the difference. */
	if (first_changes)
		r->pg[a].cut = 1;
	if (last_changes && b < r->npages)
		r->pg[b].cut = 1;
	return 0;
}

int vmref_protect(struct vmref *r, uintptr_t addr, size_t len, unsigned prot)
{
	if (prot > 7)
		return -MICA_EINVAL;
	return model_change(r, addr, len, MC_PROT, prot);
}

int vmref_wire(struct vmref *r, uintptr_t addr, size_t len)
{
	return model_change(r, addr, len, MC_WIRE, 0);
}

int vmref_unwire(struct vmref *r, uintptr_t addr, size_t len)
{
	return model_change(r, addr, len, MC_UNWIRE, 0);
}

/* ---- allocator -------------------------------------------------------------------- */

static struct vm_map_entry *env_alloc(void *ctx)
{
	struct vmref_env *env = ctx;
	struct vm_map_entry *e;

	if (env->fail_in == 0) {
		env->failures++;
		if (!env->fail_all)
			env->fail_in = -1;
		return NULL;
	}
	if (env->fail_in > 0)
		env->fail_in--;
	e = malloc(sizeof(*e));
	if (e == NULL)
		abort();
	memset(e, 0xa5, sizeof(*e)); /* the map must not rely on fresh entries being zero */
	env->live++;
	env->allocs++;
	return e;
}

static void env_free(void *ctx, struct vm_map_entry *e)
{
	struct vmref_env *env = ctx;

	if (env->live == 0)
		abort();
	env->live--;
	memset(e, 0x5a, sizeof(*e));
	free(e);
}

int vmref_env_obj(const struct vmref_env *env, const void *backing)
{
	const char *p = backing;

	if (p >= env->objs && p < env->objs + VMREF_NOBJ)
		return (int)(p - env->objs);
	return -1;
}

static void env_ref(void *ctx, void *backing)
{
	struct vmref_env *env = ctx;
	int i = vmref_env_obj(env, backing);

	if (i < 0)
		abort();
	env->refs[i]++;
}

static void env_unref(void *ctx, void *backing)
{
	struct vmref_env *env = ctx;
	int i = vmref_env_obj(env, backing);

	if (i < 0 || env->refs[i] <= 0)
		abort();
	env->refs[i]--;
}

void vmref_env_init(struct vmref_env *env)
{
	memset(env, 0, sizeof(*env));
	env->fail_in = -1;
}

struct vm_map_ops vmref_env_ops(struct vmref_env *env)
{
	struct vm_map_ops ops = {
	    .alloc = env_alloc,
	    .free = env_free,
	    .ref = env_ref,
	    .unref = env_unref,
	    .ctx = env,
	};
	return ops;
}

/* ---- dumps ------------------------------------------------------------------------ */

void vmref_dump_take(struct vmref_dump *d, const struct vm_map *map)
{
	const struct vm_map_entry *e;
	size_t i = 0;

	if (d->cap < map->nentries + 1) {
		d->cap = 2 * (map->nentries + 1);
		d->ptr = realloc(d->ptr, d->cap * sizeof(*d->ptr));
		d->ent = realloc(d->ent, d->cap * sizeof(*d->ent));
		if (d->ptr == NULL || d->ent == NULL)
			abort();
	}
	d->map = *map;
	d->n = map->nentries;
	for (e = map->header.next; e != &map->header && i < d->n; e = e->next, i++) {
		d->ptr[i] = e;
		d->ent[i] = *e;
	}
}

bool vmref_dump_equal(const struct vmref_dump *d, const struct vm_map *map)
{
	const struct vm_map_entry *e;
	size_t i = 0;

	if (map->root != d->map.root || map->hint != d->map.hint || map->min != d->map.min ||
	    map->max != d->map.max || map->nentries != d->map.nentries ||
	    map->size != d->map.size || map->wired_size != d->map.wired_size ||
	    memcmp(&map->header, &d->map.header, sizeof(map->header)) != 0)
		return false;
	for (e = map->header.next; e != &map->header; e = e->next, i++)
		if (i >= d->n || d->ptr[i] != e || memcmp(&d->ent[i], e, sizeof(*e)) != 0)
			return false;
	return i == d->n;
}

void vmref_dump_free(struct vmref_dump *d)
{
	free(d->ptr);
	free(d->ent);
	d->ptr = NULL;
	d->ent = NULL;
	d->n = d->cap = 0;
}

/* ---- harness ---------------------------------------------------------------------- */

int vmref_h_init(struct vmref_harness *h, uintptr_t min, size_t npages)
{
	struct vm_map_ops ops;

	memset(h, 0, sizeof(*h));
	vmref_env_init(&h->env);
	ops = vmref_env_ops(&h->env);
	if (vmref_init(&h->ref, min, npages) != 0 || vmref_init(&h->ref_before, min, npages) != 0)
		return -MICA_ENOMEM;
	return vm_map_init(&h->map, min, min + npages * PAGE_SIZE, &ops);
}

void vmref_h_fini(struct vmref_harness *h)
{
	vm_map_clear(&h->map, NULL, NULL);
	vmref_fini(&h->ref);
	vmref_fini(&h->ref_before);
	vmref_dump_free(&h->dump);
	free(h->pieces);
	h->pieces = NULL;
}

static void piece_cb(void *arg, const struct vm_map_entry *piece)
{
	struct vmref_harness *h = arg;

	if (h->npieces == h->cap_pieces) {
		h->cap_pieces = h->cap_pieces ? 2 * h->cap_pieces : 16;
		h->pieces = realloc(h->pieces, h->cap_pieces * sizeof(*h->pieces));
		if (h->pieces == NULL)
			abort();
	}
	h->pieces[h->npieces++] = *piece;
}

static int fail(struct vmref_harness *h, const char *what)
{
	snprintf(h->msg, sizeof(h->msg), "%s", what);
	return -1;
}

static bool entry_matches_page(const struct vm_map_entry *e, const struct vmref_page *p,
                               uint64_t page_in_entry)
{
	return e->prot == p->prot && e->max_prot == p->max_prot && e->flags == p->flags &&
	       (e->wired != 0) == (p->wired != 0) && e->backing == p->backing &&
	       (p->backing == NULL || e->offset + page_in_entry * PAGE_SIZE == p->offset);
}

int vmref_h_compare(struct vmref_harness *h)
{
	const struct vm_map_entry *e;
	const char *why = NULL;
	struct vmref_run run;
	size_t from = 0, n = 0, size = 0, wired = 0;
	long refs[VMREF_NOBJ] = {0};
	int i;

	if (vm_map_check(&h->map, &why) != 0) {
		snprintf(h->msg, sizeof(h->msg), "vm_map_check: %s", why);
		return -1;
	}
	for (e = vm_map_first(&h->map); e != NULL; e = vm_map_next(&h->map, e)) {
		if (!vmref_next_run(&h->ref, from, &run)) {
			snprintf(h->msg, sizeof(h->msg), "map has extra entry [%#lx, %#lx)",
			         (unsigned long)e->start, (unsigned long)e->end);
			return -1;
		}
		if (e->start != h->ref.min + run.first * PAGE_SIZE ||
		    e->end != h->ref.min + (run.first + run.npages) * PAGE_SIZE ||
		    !entry_matches_page(e, &h->ref.pg[run.first], 0) ||
		    !entry_matches_page(e, &h->ref.pg[run.first + run.npages - 1],
		                        run.npages - 1)) {
			snprintf(
			    h->msg, sizeof(h->msg),
			    "entry [%#lx, %#lx) p%u/%u f%#x w%u b%d o%#lx differs from model run "
			    "[%#lx, %#lx) p%u/%u f%#x w%u b%d o%#lx",
			    (unsigned long)e->start, (unsigned long)e->end, e->prot, e->max_prot,
			    e->flags, e->wired, vmref_env_obj(&h->env, e->backing),
			    (unsigned long)e->offset,
			    (unsigned long)(h->ref.min + run.first * PAGE_SIZE),
			    (unsigned long)(h->ref.min + (run.first + run.npages) * PAGE_SIZE),
			    h->ref.pg[run.first].prot, h->ref.pg[run.first].max_prot,
			    h->ref.pg[run.first].flags, h->ref.pg[run.first].wired,
			    vmref_env_obj(&h->env, h->ref.pg[run.first].backing),
			    (unsigned long)h->ref.pg[run.first].offset);
			return -1;
		}
		from = run.first + run.npages;
		n++;
		size += e->end - e->start;
		if (e->wired)
			wired += e->end - e->start;
		i = vmref_env_obj(&h->env, e->backing);
		if (e->backing != NULL && i < 0)
			return fail(h, "entry with a backing that is not a test object");
		if (i >= 0)
			refs[i]++;
	}
	if (vmref_next_run(&h->ref, from, &run)) {
		snprintf(h->msg, sizeof(h->msg), "model run [%#lx, +%zu pages) missing from map",
		         (unsigned long)(h->ref.min + run.first * PAGE_SIZE), run.npages);
		return -1;
	}
	if (n != h->map.nentries || size != h->map.size || wired != h->map.wired_size)
		return fail(h, "map counters differ from its entries");
	if (h->env.live != h->map.nentries)
		return fail(h, "allocator live entries != map entries (leak or double free)");
	for (i = 0; i < VMREF_NOBJ; i++)
		if (refs[i] != h->env.refs[i])
			return fail(h, "backing reference count != entries naming it");
	return 0;
}

/* The pieces the removal callback reported must be exactly the mapped parts of
 * [addr, addr + len) as the model saw them before the step. */
static int check_pieces(struct vmref_harness *h, uintptr_t addr, size_t len)
{
	const struct vmref *b = &h->ref_before;
	size_t lo = pidx(b, addr), hi = lo + len / PAGE_SIZE, from = 0, k = 0;
	struct vmref_run run;

	while (vmref_next_run(b, from, &run)) {
		size_t s = run.first, e = run.first + run.npages;

		from = e;
		if (e <= lo)
			continue;
		if (s >= hi)
			break;
		if (s < lo)
			s = lo;
		if (e > hi)
			e = hi;
		if (k >= h->npieces)
			return fail(h, "removal callback missed a piece");
		if (h->pieces[k].start != b->min + s * PAGE_SIZE ||
		    h->pieces[k].end != b->min + e * PAGE_SIZE ||
		    !entry_matches_page(&h->pieces[k], &b->pg[s], 0)) {
			snprintf(h->msg, sizeof(h->msg),
			         "removal piece %zu [%#lx, %#lx) differs from model [%#lx, %#lx)",
			         k, (unsigned long)h->pieces[k].start,
			         (unsigned long)h->pieces[k].end,
			         (unsigned long)(b->min + s * PAGE_SIZE),
			         (unsigned long)(b->min + e * PAGE_SIZE));
			return -1;
		}
		k++;
	}
	if (k != h->npieces)
		return fail(h, "removal callback reported extra pieces");
	return 0;
}

static void save_model(struct vmref_harness *h)
{
	memcpy(h->ref_before.pg, h->ref.pg, h->ref.npages * sizeof(*h->ref.pg));
}

static void restore_model(struct vmref_harness *h)
{
	memcpy(h->ref.pg, h->ref_before.pg, h->ref.npages * sizeof(*h->ref.pg));
}

static int check_lookup(struct vmref_harness *h, uintptr_t addr)
{
	struct vm_map_entry *e;
	struct vmref_run run, last = {0, 0};
	bool found = vm_map_lookup(&h->map, addr, &e), have = false;
	size_t from = 0;

	if (found != model_mapped(&h->ref, addr))
		return fail(h, "lookup: found differs from model");
	/* The model's answer: the run holding addr, or the last run wholly below it. */
	while (vmref_next_run(&h->ref, from, &run) && h->ref.min + run.first * PAGE_SIZE <= addr) {
		last = run;
		have = true;
		from = run.first + run.npages;
	}
	if (!have)
		return e == NULL ? 0 : fail(h, "lookup: expected no entry");
	if (e == NULL || e->start != h->ref.min + last.first * PAGE_SIZE ||
	    e->end != h->ref.min + (last.first + last.npages) * PAGE_SIZE)
		return fail(h, "lookup: wrong entry");
	return 0;
}

int vmref_h_step(struct vmref_harness *h, const struct vmref_op *op)
{
	struct vm_map_attr attr = {
	    .prot = op->prot,
	    .max_prot = op->max_prot,
	    .flags = op->flags,
	    .backing = op->obj >= 0 ? &h->env.objs[op->obj % VMREF_NOBJ] : NULL,
	    .offset = op->offset,
	};
	int obj = op->obj >= 0 ? op->obj % VMREF_NOBJ : -1;
	uintptr_t got_addr = 0, want_addr = 0;
	unsigned failures = h->env.failures;
	bool inject = op->fail_in >= 0, removes;
	const char *why = NULL;
	int want, got;

	h->steps++;
	h->npieces = 0;
	removes =
	    op->kind == VMREF_REMOVE || (op->kind == VMREF_ENTER && (op->place & VM_PLACE_FIXED));
	if (inject || removes)
		save_model(h);
	if (op->kind != VMREF_LOOKUP && op->kind != VMREF_FINDSPACE)
		vmref_dump_take(&h->dump, &h->map);

	switch (op->kind) {
	case VMREF_ENTER:
		want = vmref_enter(&h->ref, op->addr, op->len, op->align, op->place, &attr,
		                   &want_addr);
		if (obj >= 0)
			h->env.refs[obj]++; /* the reference handed to the map */
		h->env.fail_in = op->fail_in;
		got = vm_map_enter(&h->map, op->addr, op->len, op->align, op->place, &attr,
		                   piece_cb, h, &got_addr);
		h->env.fail_in = -1;
		if (got != 0 && obj >= 0)
			h->env.refs[obj]--; /* not taken: the caller drops it */
		break;
	case VMREF_REMOVE:
		want = vmref_remove(&h->ref, op->addr, op->len);
		h->env.fail_in = op->fail_in;
		got = vm_map_remove(&h->map, op->addr, op->len, piece_cb, h);
		h->env.fail_in = -1;
		break;
	case VMREF_PROTECT:
		want = vmref_protect(&h->ref, op->addr, op->len, op->prot);
		h->env.fail_in = op->fail_in;
		got = vm_map_protect(&h->map, op->addr, op->len, op->prot);
		h->env.fail_in = -1;
		break;
	case VMREF_WIRE:
		want = vmref_wire(&h->ref, op->addr, op->len);
		h->env.fail_in = op->fail_in;
		got = vm_map_wire(&h->map, op->addr, op->len);
		h->env.fail_in = -1;
		break;
	case VMREF_UNWIRE:
		want = vmref_unwire(&h->ref, op->addr, op->len);
		h->env.fail_in = op->fail_in;
		got = vm_map_unwire(&h->map, op->addr, op->len);
		h->env.fail_in = -1;
		break;
	case VMREF_LOOKUP:
		/* Only the hint moves: the checker covers it. */
		if (check_lookup(h, op->addr) != 0)
			return -1;
		if (vm_map_check(&h->map, &why) != 0) {
			snprintf(h->msg, sizeof(h->msg), "vm_map_check: %s", why);
			return -1;
		}
		return 0;
	case VMREF_FINDSPACE:
	default:
		want =
		    vmref_findspace(&h->ref, op->addr, op->len, op->align, op->place, &want_addr);
		got = vm_map_findspace(&h->map, op->addr, op->len, op->align, op->place, &got_addr);
		break;
	}

	if (h->env.failures != failures) {
		/* The injected failure must have stopped the operation cold. */
		h->injected++;
		if (got != -MICA_ENOMEM) {
			snprintf(h->msg, sizeof(h->msg), "allocation failed but op returned %d",
			         got);
			return -1;
		}
		if (!vmref_dump_equal(&h->dump, &h->map))
			return fail(h, "allocation failure changed the map");
		if (h->npieces != 0)
			return fail(h, "allocation failure reported removed pieces");
		if (want != 0)
			return fail(h, "allocation attempted although the model refuses the op");
		restore_model(h);
		return vmref_h_compare(h);
	}
	if (got != want) {
		snprintf(h->msg, sizeof(h->msg), "result %d, model says %d", got, want);
		return -1;
	}
	if (got != 0) {
		h->errors++;
		if (op->kind != VMREF_FINDSPACE && !vmref_dump_equal(&h->dump, &h->map))
			return fail(h, "failed op changed the map");
		if (h->npieces != 0)
			return fail(h, "failed op reported removed pieces");
		/* Bit-identical to the state compared after the previous step. */
		return 0;
	} else if (got_addr != want_addr &&
	           (op->kind == VMREF_ENTER || op->kind == VMREF_FINDSPACE)) {
		snprintf(h->msg, sizeof(h->msg), "address %#lx, model says %#lx",
		         (unsigned long)got_addr, (unsigned long)want_addr);
		return -1;
	} else if (removes &&
	           check_pieces(h, op->kind == VMREF_ENTER ? got_addr : op->addr, op->len) != 0) {
		return -1;
	}
	if (op->kind == VMREF_FINDSPACE)
		return 0; /* nothing changed; the previous step compared already */
	return vmref_h_compare(h);
}

/* ---- operation generators --------------------------------------------------------- */

uint64_t vmref_rand(uint64_t *s)
{
	/* splitmix64: tiny, and every 64-bit seed gives a full-quality stream */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uintptr_t pick_addr(uint64_t *rng, const struct vmref *r, unsigned sel)
{
	uint64_t x = vmref_rand(rng);

	switch (sel % 48) {
	case 0:
		return r->min;
	case 1:
		return r->max - PAGE_SIZE * (1 + x % 4);
	case 2:
		return r->min - PAGE_SIZE * (1 + x % 4);
	case 3:
		return r->max + PAGE_SIZE * (x % 3);
	case 4:
		return (uintptr_t)(x & ~(uint64_t)PAGE_MASK);
	case 5:
		return r->min + x % (r->npages * PAGE_SIZE); /* usually unaligned */
	default:
		return r->min + PAGE_SIZE * (x % r->npages);
	}
}

static size_t pick_len(uint64_t *rng, const struct vmref *r, unsigned sel)
{
	uint64_t x = vmref_rand(rng);

	switch (sel % 64) {
	case 0:
		return 0;
	case 1:
		return 1 + x % (4 * PAGE_SIZE); /* mostly unaligned */
	case 2:
		return (SIZE_MAX & ~(size_t)PAGE_MASK) - PAGE_SIZE * (x % 4); /* wraps */
	case 3:
		return r->npages * PAGE_SIZE;
	case 4:
	case 5:
		return PAGE_SIZE * (1 + x % 64);
	default:
		return PAGE_SIZE * (1 + x % 8);
	}
}

static size_t pick_align(unsigned sel, uint64_t x)
{
	switch (sel % 40) {
	case 0:
		return 3 * PAGE_SIZE; /* not a power of two */
	case 1:
		return 256; /* below a page */
	case 2:
		return (size_t)1 << 40; /* bigger than any test map */
	case 3:
	case 4:
	case 5:
	case 6:
		return PAGE_SIZE << (1 + x % 6);
	case 7:
		return PAGE_SIZE;
	default:
		return 0;
	}
}

/* A range inside mapped (or, with want == 0, free) memory, so that operations which
 * refuse holes, or overlaps, mostly get to run. False if there is no such page. */
static bool pick_within(uint64_t *rng, const struct vmref *r, unsigned want, uintptr_t *addr,
                        size_t *len)
{
	uint64_t x = vmref_rand(rng);
	size_t p = x % r->npages, n, a, b, lo, hi;

	for (n = 0; n < r->npages && r->pg[p].mapped != want; n++)
		p = (p + 1) % r->npages;
	if (n == r->npages)
		return false;
	for (a = p; a > 0 && r->pg[a - 1].mapped == want; a--)
		;
	for (b = p + 1; b < r->npages && r->pg[b].mapped == want; b++)
		;
	lo = a + (x >> 20) % (b - a);
	hi = lo + 1 + (x >> 40) % (b - lo);
	*addr = r->min + lo * PAGE_SIZE;
	*len = (hi - lo) * PAGE_SIZE;
	return true;
}

void vmref_op_random(struct vmref_op *op, uint64_t *rng, const struct vmref *r)
{
	uint64_t x = vmref_rand(rng), y = vmref_rand(rng);
	unsigned k = (unsigned)(x % 100);

	memset(op, 0, sizeof(*op));
	op->obj = -1;
	op->fail_in = -1;
	op->kind = k < 30   ? VMREF_ENTER
	           : k < 48 ? VMREF_REMOVE
	           : k < 64 ? VMREF_PROTECT
	           : k < 72 ? VMREF_WIRE
	           : k < 80 ? VMREF_UNWIRE
	           : k < 90 ? VMREF_LOOKUP
	                    : VMREF_FINDSPACE;
	op->addr = pick_addr(rng, r, (unsigned)(y >> 8));
	op->len = pick_len(rng, r, (unsigned)(y >> 16));

	if (op->kind == VMREF_ENTER || op->kind == VMREF_FINDSPACE) {
		unsigned p = (unsigned)((y >> 24) % 100);

		op->place = p < 35   ? 0
		            : p < 55 ? VM_PLACE_TOPDOWN
		            : p < 78 ? VM_PLACE_FIXED
		            : p < 98 ? VM_PLACE_NOREPLACE
		                     : (unsigned)(y >> 40) % 16; /* sometimes nonsense */
		if (!(op->place & (VM_PLACE_FIXED | VM_PLACE_NOREPLACE)) && (y >> 32) % 3 == 0)
			op->addr = 0;
		op->align = pick_align((unsigned)(y >> 48), x >> 20);
		if ((op->place & VM_PLACE_NOREPLACE) && (y >> 60) % 2)
			pick_within(rng, r, 0, &op->addr, &op->len);
		/* A fixed address must honour the alignment; usually make it. */
		if ((op->place & (VM_PLACE_FIXED | VM_PLACE_NOREPLACE)) && (y >> 62) != 0 &&
		    op->align >= PAGE_SIZE && (op->align & (op->align - 1)) == 0)
			op->addr &= ~(uintptr_t)(op->align - 1);
	}
	if (op->kind == VMREF_ENTER) {
		uint64_t z = vmref_rand(rng);
		unsigned f = (unsigned)(z % 100);

		op->max_prot = (z >> 8) % 10 < 7 ? VM_PROT_ALL : (unsigned)(z >> 12) % 8;
		switch ((z >> 16) % 4) {
		case 0:
		case 1:
			op->prot = VM_PROT_READ | VM_PROT_WRITE;
			break;
		case 2:
			op->prot = VM_PROT_READ;
			break;
		default:
			op->prot = (unsigned)(z >> 20) % 8;
			break;
		}
		if ((z >> 24) % 10 != 0)
			op->prot &= op->max_prot; /* else sometimes above max */
		op->flags = f < 80   ? 0
		            : f < 92 ? VM_ENT_NOMERGE
		            : f < 96 ? VM_ENT_GUARD
		            : f < 98 ? VM_ENT_DEVICE | VM_ENT_SHARED
		                     : (unsigned)(z >> 28) % 32;
		if (op->flags & VM_ENT_GUARD && (z >> 33) % 8 != 0)
			op->prot = op->max_prot = 0;
		if ((z >> 36) % 10 < 4) {
			op->obj = (int)((z >> 40) % VMREF_NOBJ);
			/* Offsets that follow the address make neighbours mergeable. */
			if ((z >> 44) % 2 && op->place & (VM_PLACE_FIXED | VM_PLACE_NOREPLACE))
				op->offset = op->addr - r->min;
			else
				op->offset = PAGE_SIZE * ((z >> 48) % 32);
			if ((z >> 54) % 64 == 0)
				op->offset =
				    (z >> 56) % 2 ? 100 : UINT64_MAX & ~(uint64_t)PAGE_MASK;
		} else {
			op->offset = PAGE_SIZE * ((z >> 48) % 4);
		}
	}
	if (op->kind >= VMREF_REMOVE && op->kind <= VMREF_UNWIRE && (x >> 60) % 4 != 0)
		pick_within(rng, r, 1, &op->addr, &op->len);
	if (op->kind == VMREF_PROTECT) {
		op->prot =
		    (x >> 40) % 50 == 0 ? 8 + (unsigned)(x >> 48) % 8 : (unsigned)(x >> 48) % 8;
		/* Mostly stay within what the usual max protection allows. */
		if ((x >> 56) % 4 != 0)
			op->prot &= VM_PROT_READ | VM_PROT_WRITE;
	}
}

/* Fuzzer bytes: one opcode byte, then fields read as needed; missing bytes read as 0. */
static unsigned take(const uint8_t **data, size_t *size)
{
	unsigned b = 0;

	if (*size > 0) {
		b = **data;
		(*data)++;
		(*size)--;
	}
	return b;
}

bool vmref_op_decode(struct vmref_op *op, const uint8_t **data, size_t *size, const struct vmref *r)
{
	unsigned b, sel, f;
	uint64_t seed;

	if (*size == 0)
		return false;
	memset(op, 0, sizeof(*op));
	b = take(data, size);
	op->kind = (enum vmref_kind)(b % VMREF_NKINDS);
	op->obj = -1;
	op->fail_in = (b & 0x80) ? (long)(take(data, size) % 3) : -1;
	sel = take(data, size);
	seed = take(data, size) | (uint64_t)take(data, size) << 8;
	op->addr = sel < 8 ? pick_addr(&seed, r, sel)
	                   : r->min + PAGE_SIZE * ((seed + sel * 65536u) % (r->npages + 1));
	sel = take(data, size);
	op->len = sel < 8 ? pick_len(&seed, r, sel) : PAGE_SIZE * (1 + (sel - 8) % 40);
	if (op->kind == VMREF_ENTER || op->kind == VMREF_FINDSPACE) {
		f = take(data, size);
		op->place = f & 0x0f;
		if ((op->place & ~(unsigned)VM_PLACE_ALL) == 0 && (f & 0x10))
			op->addr = 0;
		op->align = pick_align(take(data, size), seed);
	}
	if (op->kind == VMREF_ENTER) {
		f = take(data, size);
		op->max_prot = f & 7;
		op->prot = (f >> 3) & 7;
		f = take(data, size);
		op->flags = f & 0x1f;
		if ((f & 0x20) == 0)
			op->flags &= VM_ENT_NOMERGE | VM_ENT_DEVICE; /* keep most inputs valid */
		if (f & 0x40) {
			op->obj = (int)((f >> 7) | (take(data, size) % 2) << 1);
			f = take(data, size);
			op->offset = f < 128 ? (uint64_t)(op->addr - r->min) : PAGE_SIZE * (f % 16);
			if (f == 255)
				op->offset = UINT64_MAX & ~(uint64_t)PAGE_MASK;
		}
	}
	if (op->kind == VMREF_PROTECT)
		op->prot = take(data, size) % 9;
	return true;
}

void vmref_op_format(const struct vmref_op *op, char *buf, size_t n)
{
	static const char *const names[] = {"enter",  "remove", "protect",  "wire",
	                                    "unwire", "lookup", "findspace"};

	snprintf(buf, n,
	         "%s addr=%#lx len=%#zx align=%#zx place=%#x prot=%u max=%u flags=%#x obj=%d "
	         "off=%#llx fail_in=%ld",
	         names[op->kind], (unsigned long)op->addr, op->len, op->align, op->place, op->prot,
	         op->max_prot, op->flags, op->obj, (unsigned long long)op->offset, op->fail_in);
}
