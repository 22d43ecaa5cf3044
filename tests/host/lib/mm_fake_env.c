/* A fake kernel for the memory server's logic; see mm_fake_env.h.
 *
 * The page tables are a hash table rather than a radix tree: the fake has to answer "what
 * is mapped at va" and walk ranges, not model Sv39. Range operations walk the range when
 * it is shorter than the table and the table otherwise, so that requests spanning all of
 * user space (2^26 pages) cost no more than the mappings there are. */
#include "tests/host/lib/mm_fake_env.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mica/errno.h"
#include "mica/param.h"

#define KEY_EMPTY 0
#define KEY_USED  1 /* low bit of a live key; the rest is the page address */
#define KEY_TOMB  2

/* ---- bookkeeping ------------------------------------------------------------------ */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL) {
		fprintf(stderr, "mm_fake_env: out of host memory\n");
		abort();
	}
	return p;
}

/* Records a call the server should not have made and returns err, as the kernel would. */
static int misuse(struct mmfake *f, int err, const char *fmt, ...)
{
	va_list ap;

	if (f->misuse++ == 0) {
		va_start(ap, fmt);
		vsnprintf(f->why, sizeof(f->why), fmt, ap);
		va_end(ap);
	}
	return err;
}

static int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Frame number of pa, or SIZE_MAX when pa is not a frame of the pool. */
static size_t frame_of(const struct mmfake *f, uint64_t pa)
{
	if (pa < MMFAKE_PA_BASE || (pa & PAGE_MASK) != 0)
		return SIZE_MAX;
	if ((pa - MMFAKE_PA_BASE) / PAGE_SIZE >= f->nframes)
		return SIZE_MAX;
	return (size_t)((pa - MMFAKE_PA_BASE) / PAGE_SIZE);
}

/* ---- page tables ------------------------------------------------------------------ */

static size_t pt_home(uint64_t va, size_t cap)
{
	uint64_t h = (va >> PAGE_SHIFT) * 0xff51afd7ed558ccdULL;

	return (size_t)(h >> 29) & (cap - 1);
}

static size_t pt_find(const struct mmfake *f, uint64_t va)
{
	if (f->pt_cap == 0)
		return SIZE_MAX;
	for (size_t s = pt_home(va, f->pt_cap);; s = (s + 1) & (f->pt_cap - 1)) {
		if (f->pt_key[s] == KEY_EMPTY)
			return SIZE_MAX;
		if (f->pt_key[s] == (va | KEY_USED))
			return s;
	}
}

/* Rehash into a table at most half full once the new key is in; tombstones go. */
static void pt_rehash(struct mmfake *f)
{
	size_t ncap = f->pt_cap ? f->pt_cap : 256;

	while ((f->pt_used + 1) * 2 > ncap)
		ncap *= 2;
	uint64_t *key = xcalloc(ncap, sizeof(*key)), *pa = xcalloc(ncap, sizeof(*pa));
	uint8_t *prot = xcalloc(ncap, sizeof(*prot));

	for (size_t i = 0; i < f->pt_cap; i++) {
		if (!(f->pt_key[i] & KEY_USED))
			continue;
		size_t s = pt_home(f->pt_key[i], ncap);

		while (key[s] != KEY_EMPTY)
			s = (s + 1) & (ncap - 1);
		key[s] = f->pt_key[i];
		pa[s] = f->pt_pa[i];
		prot[s] = f->pt_prot[i];
	}
	free(f->pt_key);
	free(f->pt_pa);
	free(f->pt_prot);
	f->pt_key = key;
	f->pt_pa = pa;
	f->pt_prot = prot;
	f->pt_cap = ncap;
	f->pt_tomb = 0;
}

static void pt_insert(struct mmfake *f, uint64_t va, uint64_t pa, unsigned prot)
{
	if ((f->pt_used + f->pt_tomb + 1) * 2 > f->pt_cap)
		pt_rehash(f);
	size_t s = pt_home(va, f->pt_cap);

	while (f->pt_key[s] & KEY_USED)
		s = (s + 1) & (f->pt_cap - 1);
	if (f->pt_key[s] == KEY_TOMB)
		f->pt_tomb--;
	f->pt_key[s] = va | KEY_USED;
	f->pt_pa[s] = pa;
	f->pt_prot[s] = (uint8_t)prot;
	f->pt_used++;
}

static void pt_delete(struct mmfake *f, size_t s)
{
	size_t fr = frame_of(f, f->pt_pa[s]);

	if (fr != SIZE_MAX && f->maps[fr] > 0)
		f->maps[fr]--;
	f->pt_key[s] = KEY_TOMB;
	f->pt_used--;
	f->pt_tomb++;
}

enum pt_edit { PT_REMOVE, PT_PROTECT };

static void pt_edit_slot(struct mmfake *f, size_t s, enum pt_edit what, unsigned prot)
{
	if (what == PT_REMOVE)
		pt_delete(f, s);
	else
		f->pt_prot[s] = (uint8_t)prot;
}

static void pt_edit_range(struct mmfake *f, uint64_t va, uint64_t len, enum pt_edit what,
                          unsigned prot)
{
	if (len / PAGE_SIZE <= f->pt_used) {
		for (uint64_t off = 0; off < len; off += PAGE_SIZE) {
			size_t s = pt_find(f, va + off);

			if (s != SIZE_MAX)
				pt_edit_slot(f, s, what, prot);
		}
		return;
	}
	for (size_t s = 0; s < f->pt_cap; s++) {
		uint64_t page = f->pt_key[s] & ~(uint64_t)KEY_USED;

		if ((f->pt_key[s] & KEY_USED) && page >= va && page - va < len)
			pt_edit_slot(f, s, what, prot);
	}
}

/* ---- the kernel's argument checks (kern/syscall.c, arch/riscv64/pt.c) -------------- */

static bool prot_ok(unsigned prot)
{
	return prot != 0 && (prot & ~7u) == 0 &&
	       !((prot & MM_PROT_WRITE) && !(prot & MM_PROT_READ));
}

static bool user_range_ok(uint64_t va, uint64_t len)
{
	return va >= USER_VA_MIN && va < USER_VA_MAX && len <= USER_VA_MAX - va;
}

static int check_call(struct mmfake *f, const char *call, uint64_t task, uint64_t va, uint64_t len)
{
	if (task != f->task)
		return misuse(f, -MICA_ESRCH, "%s: task %#llx is not %#llx", call,
		              (unsigned long long)task, (unsigned long long)f->task);
	if (((va | len) & PAGE_MASK) != 0 || len == 0)
		return misuse(f, -MICA_EINVAL, "%s: va %#llx len %#llx unaligned or empty", call,
		              (unsigned long long)va, (unsigned long long)len);
	if (!user_range_ok(va, len))
		return misuse(f, -MICA_EFAULT, "%s: va %#llx len %#llx outside user space", call,
		              (unsigned long long)va, (unsigned long long)len);
	return 0;
}

/* ---- struct mm_env ------------------------------------------------------------------ */

static int fake_enter(void *ctx, uint64_t task, uint64_t va, uint64_t pa, uint64_t len,
                      unsigned prot)
{
	struct mmfake *f = ctx;
	int err;

	f->enters++;
	err = check_call(f, "enter", task, va, len);
	if (err)
		return err;
	if ((pa & PAGE_MASK) != 0 || !prot_ok(prot))
		return misuse(f, -MICA_EINVAL, "enter: va %#llx pa %#llx prot %#x invalid",
		              (unsigned long long)va, (unsigned long long)pa, prot);
	/* The kernel lets the server map only RAM it owns; here, frames it allocated. */
	if (len / PAGE_SIZE > f->nframes)
		return misuse(f, -MICA_EPERM, "enter: %#llx bytes at pa %#llx not owned",
		              (unsigned long long)len, (unsigned long long)pa);
	for (uint64_t off = 0; off < len; off += PAGE_SIZE) {
		size_t fr = frame_of(f, pa + off);

		if (fr == SIZE_MAX || f->refs[fr] == 0)
			return misuse(
			    f, -MICA_EPERM, "enter: va %#llx -> pa %#llx, a frame not allocated",
			    (unsigned long long)(va + off), (unsigned long long)(pa + off));
	}
	for (uint64_t off = 0; off < len; off += PAGE_SIZE)
		if (pt_find(f, va + off) != SIZE_MAX)
			return -MICA_EEXIST;
	if (f->enter_fail_in >= 0 && f->enter_fail_in-- == 0) {
		f->enter_failures++;
		return -MICA_ENOMEM;
	}
	for (uint64_t off = 0; off < len; off += PAGE_SIZE) {
		size_t fr = frame_of(f, pa + off);

		/* Each translation of a frame is one resident page holding a reference. */
		if (f->maps[fr]++ >= f->refs[fr])
			misuse(f, 0,
			       "enter: pa %#llx mapped more often than referenced, at va %#llx",
			       (unsigned long long)(pa + off), (unsigned long long)(va + off));
		pt_insert(f, va + off, pa + off, prot);
	}
	return 0;
}

static int fake_remove(void *ctx, uint64_t task, uint64_t va, uint64_t len)
{
	struct mmfake *f = ctx;
	int err;

	f->removes++;
	err = check_call(f, "remove", task, va, len);
	if (err)
		return err;
	pt_edit_range(f, va, len, PT_REMOVE, 0);
	return 0;
}

static int fake_protect(void *ctx, uint64_t task, uint64_t va, uint64_t len, unsigned prot)
{
	struct mmfake *f = ctx;
	int err;

	f->protects++;
	err = check_call(f, "protect", task, va, len);
	if (err)
		return err;
	if (!prot_ok(prot))
		return misuse(f, -MICA_EINVAL, "protect: prot %#x invalid", prot);
	pt_edit_range(f, va, len, PT_PROTECT, prot);
	return 0;
}

static int fake_page_alloc(void *ctx, uint64_t *pa)
{
	struct mmfake *f = ctx;

	if (f->fail_in >= 0) {
		if (f->fail_in == 0) {
			if (!f->fail_all)
				f->fail_in = -1;
			f->failures++;
			return -MICA_ENOMEM;
		}
		f->fail_in--;
	}
	if (f->nfree == 0)
		return -MICA_ENOMEM;
	size_t fr = f->fifo[f->fifo_head];

	f->fifo_head = (f->fifo_head + 1) % f->nframes;
	f->nfree--;
	if (f->refs[fr] != 0)
		misuse(f, 0, "page_alloc: frame %zu on the free list twice", fr);
	f->refs[fr] = 1;
	f->allocs++;
	*pa = MMFAKE_PA_BASE + (uint64_t)fr * PAGE_SIZE;
	return 0;
}

static void fake_page_ref(void *ctx, uint64_t pa)
{
	struct mmfake *f = ctx;
	size_t fr = frame_of(f, pa);

	if (fr == SIZE_MAX || f->refs[fr] == 0) {
		misuse(f, 0, "page_ref: pa %#llx is not an allocated frame",
		       (unsigned long long)pa);
		return;
	}
	f->refs[fr]++;
	f->refs_taken++;
}

static void fake_page_free(void *ctx, uint64_t pa)
{
	struct mmfake *f = ctx;
	size_t fr = frame_of(f, pa);

	if (fr == SIZE_MAX) {
		misuse(f, 0, "page_free: pa %#llx is not a frame", (unsigned long long)pa);
		return;
	}
	if (f->refs[fr] == 0) {
		misuse(f, 0, "page_free: pa %#llx freed twice", (unsigned long long)pa);
		return;
	}
	/* A reference dropped before its translation went: the task could reach whoever
	 * gets the frame next. The reference goes all the same, so the leak checks still
	 * add up. */
	if (f->maps[fr] >= f->refs[fr])
		misuse(f, 0, "page_free: pa %#llx released while still mapped",
		       (unsigned long long)pa);
	if (--f->refs[fr] != 0)
		return;
	f->fifo[(f->fifo_head + f->nfree) % f->nframes] = fr;
	f->nfree++;
	f->frees++;
}

/* ---- setup and queries ------------------------------------------------------------ */

int mmfake_init(struct mmfake *f, uint64_t task, size_t nframes)
{
	if (nframes == 0)
		return -MICA_EINVAL;
	memset(f, 0, sizeof(*f));
	f->task = task;
	f->nframes = nframes;
	f->nfree = nframes;
	f->fifo = xcalloc(nframes, sizeof(*f->fifo));
	f->refs = xcalloc(nframes, sizeof(*f->refs));
	f->maps = xcalloc(nframes, sizeof(*f->maps));
	for (size_t i = 0; i < nframes; i++)
		f->fifo[i] = i;
	f->fail_in = -1;
	f->enter_fail_in = -1;
	f->env.enter = fake_enter;
	f->env.remove = fake_remove;
	f->env.protect = fake_protect;
	f->env.page_alloc = fake_page_alloc;
	f->env.page_ref = fake_page_ref;
	f->env.page_free = fake_page_free;
	f->env.ctx = f;
	return 0;
}

void mmfake_fini(struct mmfake *f)
{
	free(f->pt_key);
	free(f->pt_pa);
	free(f->pt_prot);
	free(f->fifo);
	free(f->refs);
	free(f->maps);
	memset(f, 0, sizeof(*f));
}

unsigned mmfake_pte_prot(unsigned prot)
{
	return (prot & MM_PROT_WRITE) ? prot | MM_PROT_READ : prot;
}

bool mmfake_lookup(const struct mmfake *f, uint64_t va, uint64_t *pa, unsigned *prot)
{
	size_t s = pt_find(f, va);

	if (s == SIZE_MAX)
		return false;
	if (pa != NULL)
		*pa = f->pt_pa[s];
	if (prot != NULL)
		*prot = f->pt_prot[s];
	return true;
}

size_t mmfake_frames_used(const struct mmfake *f)
{
	return f->nframes - f->nfree;
}

bool mmfake_frame_allocated(const struct mmfake *f, uint64_t pa)
{
	size_t fr = frame_of(f, pa);

	return fr != SIZE_MAX && f->refs[fr] != 0;
}

void mmfake_foreach(const struct mmfake *f,
                    void (*fn)(void *arg, uint64_t va, uint64_t pa, unsigned prot), void *arg)
{
	for (size_t s = 0; s < f->pt_cap; s++)
		if (f->pt_key[s] & KEY_USED)
			fn(arg, f->pt_key[s] & ~(uint64_t)KEY_USED, f->pt_pa[s], f->pt_prot[s]);
}

bool mmfake_resident(const struct mm_client *c, uint64_t va, uint64_t *pa)
{
	/* A scan, so as not to depend on the table's hash function. */
	for (size_t s = 0; s < c->pages.cap; s++) {
		if (c->pages.keys[s] == (va | 1)) {
			*pa = c->pages.vals[s];
			return true;
		}
	}
	return false;
}

void mmfake_foreach_resident(const struct mm_client *c,
                             void (*fn)(void *arg, uint64_t va, uint64_t pa), void *arg)
{
	for (size_t s = 0; s < c->pages.cap; s++)
		if (c->pages.keys[s] & 1)
			fn(arg, c->pages.keys[s] & ~(uint64_t)1, c->pages.vals[s]);
}

/* ---- consistency ------------------------------------------------------------------ */

struct collect {
	struct mmfake_pte *v;
	size_t n, cap;
};

static void collect_add(struct collect *c, uint64_t va, uint64_t pa, unsigned prot)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		if (c->v == NULL) {
			fprintf(stderr, "mm_fake_env: out of host memory\n");
			abort();
		}
	}
	c->v[c->n].va = va;
	c->v[c->n].pa = pa;
	c->v[c->n].prot = prot;
	c->n++;
}

static void collect_pte(void *arg, uint64_t va, uint64_t pa, unsigned prot)
{
	collect_add(arg, va, pa, prot);
}

static void collect_res(void *arg, uint64_t va, uint64_t pa)
{
	collect_add(arg, va, pa, 0);
}

static int by_va(const void *a, const void *b)
{
	const struct mmfake_pte *x = a, *y = b;

	return x->va < y->va ? -1 : x->va > y->va;
}

static struct collect sorted_ptes(const struct mmfake *f)
{
	struct collect c = {0};

	mmfake_foreach(f, collect_pte, &c);
	if (c.n > 1)
		qsort(c.v, c.n, sizeof(*c.v), by_va);
	return c;
}

static struct collect sorted_resident(const struct mm_client *c)
{
	struct collect r = {0};

	mmfake_foreach_resident(c, collect_res, &r);
	if (r.n > 1)
		qsort(r.v, r.n, sizeof(*r.v), by_va);
	return r;
}

/* One resident page va -> pa inside entry e; seen[] marks frames already claimed. */
static int check_page(const struct mmfake *f, const struct vm_map_entry *e, uint64_t va,
                      uint64_t pa, uint8_t *seen, char *why, size_t n)
{
	uint64_t tpa;
	unsigned tprot;
	size_t fr = frame_of(f, pa);

	if (fr == SIZE_MAX || f->refs[fr] == 0)
		return fail(why, n, "resident page %#llx on pa %#llx, not an allocated frame",
		            (unsigned long long)va, (unsigned long long)pa);
	if (seen[fr]++)
		return fail(why, n, "pa %#llx resident at two addresses (one is %#llx)",
		            (unsigned long long)pa, (unsigned long long)va);
	if (f->refs[fr] != 1)
		return fail(why, n, "pa %#llx (resident at %#llx) has %u references, not 1",
		            (unsigned long long)pa, (unsigned long long)va, f->refs[fr]);
	bool mapped = mmfake_lookup(f, va, &tpa, &tprot);

	if (e->prot == MM_PROT_NONE) {
		if (mapped)
			return fail(why, n, "page %#llx of a PROT_NONE entry is mapped",
			            (unsigned long long)va);
		return 0;
	}
	if (!mapped)
		return fail(why, n, "resident page %#llx (prot %#x) has no translation",
		            (unsigned long long)va, e->prot);
	if (tpa != pa || tprot != mmfake_pte_prot(e->prot))
		return fail(why, n,
		            "page %#llx: translation to %#llx prot %#x, resident on %#llx with "
		            "entry prot %#x",
		            (unsigned long long)va, (unsigned long long)tpa, tprot,
		            (unsigned long long)pa, e->prot);
	return 0;
}

static int check_walk(const struct mmfake *f, const struct mm_client *c, const struct collect *res,
                      char *why, size_t n)
{
	uint8_t *seen = xcalloc(f->nframes, 1);
	size_t i = 0, wired = 0, mapped = 0;
	int r = 0;

	for (const struct vm_map_entry *e = vm_map_first(&c->map); e != NULL && r == 0;
	     e = vm_map_next(&c->map, e)) {
		size_t k = 0, pages = (e->end - e->start) / PAGE_SIZE;

		if (i < res->n && res->v[i].va < e->start) {
			r = fail(why, n, "resident page %#llx outside every entry",
			         (unsigned long long)res->v[i].va);
			break;
		}
		for (; i < res->n && res->v[i].va < e->end && r == 0; i++, k++)
			r = check_page(f, e, res->v[i].va, res->v[i].pa, seen, why, n);
		if (r == 0 && (e->flags & VM_ENT_GUARD) && k != 0)
			r = fail(why, n, "guard [%#llx, %#llx) has resident pages",
			         (unsigned long long)e->start, (unsigned long long)e->end);
		if (r == 0 && e->wired && k != pages)
			r = fail(why, n, "wired entry [%#llx, %#llx) has %zu of %zu pages resident",
			         (unsigned long long)e->start, (unsigned long long)e->end, k,
			         pages);
		if (e->wired)
			wired += pages;
		if (e->prot != MM_PROT_NONE)
			mapped += k;
	}
	if (r == 0 && i < res->n)
		r = fail(why, n, "resident page %#llx outside every entry",
		         (unsigned long long)res->v[i].va);
	if (r == 0 && mapped != f->pt_used)
		r = fail(why, n, "%zu translations, %zu expected for resident accessible pages",
		         f->pt_used, mapped);
	if (r == 0 && wired != c->wired_pages)
		r = fail(why, n, "wired_pages %zu, wired entries hold %zu", c->wired_pages, wired);
	free(seen);
	return r;
}

int mmfake_check_client(const struct mmfake *f, const struct mm_client *c, char *why, size_t n)
{
	const char *vwhy = NULL;
	struct collect res;
	int r;

	if (f->misuse)
		return fail(why, n, "%u bad kernel call(s), first: %s", f->misuse, f->why);
	if (vm_map_check(&c->map, &vwhy) != 0)
		return fail(why, n, "vm_map_check: %s", vwhy);
	res = sorted_resident(c);
	if (res.n != c->pages.used)
		r = fail(why, n, "page table holds %zu pages, used says %zu", res.n, c->pages.used);
	else if (res.n != mmfake_frames_used(f))
		r = fail(why, n, "%zu frames allocated for %zu resident pages",
		         mmfake_frames_used(f), res.n);
	else if (res.n > c->quota.resident || c->wired_pages > c->quota.wired)
		r = fail(why, n, "over quota: %zu resident (max %zu), %zu wired (max %zu)", res.n,
		         c->quota.resident, c->wired_pages, c->quota.wired);
	else
		r = check_walk(f, c, &res, why, n);
	free(res.v);
	return r;
}

/* ---- snapshots -------------------------------------------------------------------- */

void mmfake_snap_take(struct mmfake_snap *s, const struct mmfake *f, const struct mm_client *c)
{
	struct collect pte = sorted_ptes(f), res = sorted_resident(c);
	size_t i = 0;

	memset(s, 0, sizeof(*s));
	s->ent = xcalloc(c->map.nentries, sizeof(*s->ent));
	for (const struct vm_map_entry *e = vm_map_first(&c->map); e != NULL && i < c->map.nentries;
	     e = vm_map_next(&c->map, e), i++) {
		s->ent[i].start = e->start;
		s->ent[i].end = e->end;
		s->ent[i].prot = e->prot;
		s->ent[i].max_prot = e->max_prot;
		s->ent[i].flags = e->flags;
		s->ent[i].wired = e->wired;
	}
	s->nent = i;
	s->pte = pte.v;
	s->npte = pte.n;
	s->res = res.v;
	s->nres = res.n;
	s->frames_used = mmfake_frames_used(f);
	s->wired_pages = c->wired_pages;
}

bool mmfake_snap_equal(const struct mmfake_snap *s, const struct mmfake *f,
                       const struct mm_client *c, char *why, size_t n)
{
	struct mmfake_snap now;
	bool eq = false;

	mmfake_snap_take(&now, f, c);
	if (now.nent != s->nent) {
		fail(why, n, "%zu entries, %zu before", now.nent, s->nent);
		goto out;
	}
	for (size_t i = 0; i < s->nent; i++) {
		const struct mmfake_ent *a = &s->ent[i], *b = &now.ent[i];

		if (a->start != b->start || a->end != b->end || a->prot != b->prot ||
		    a->max_prot != b->max_prot || a->flags != b->flags || a->wired != b->wired) {
			fail(why, n,
			     "entry %zu was [%#llx, %#llx) prot %#x/%#x flags %#x wired %u, is "
			     "[%#llx, %#llx) prot %#x/%#x flags %#x wired %u",
			     i, (unsigned long long)a->start, (unsigned long long)a->end, a->prot,
			     a->max_prot, a->flags, a->wired, (unsigned long long)b->start,
			     (unsigned long long)b->end, b->prot, b->max_prot, b->flags, b->wired);
			goto out;
		}
	}
	if (now.npte != s->npte || now.nres != s->nres || now.frames_used != s->frames_used ||
	    now.wired_pages != s->wired_pages) {
		fail(why, n,
		     "translations %zu (before %zu), resident %zu (%zu), frames %zu (%zu), wired "
		     "%zu (%zu)",
		     now.npte, s->npte, now.nres, s->nres, now.frames_used, s->frames_used,
		     now.wired_pages, s->wired_pages);
		goto out;
	}
	for (size_t i = 0; i < s->npte; i++) {
		if (now.pte[i].va != s->pte[i].va || now.pte[i].pa != s->pte[i].pa ||
		    now.pte[i].prot != s->pte[i].prot) {
			fail(why, n,
			     "translation %#llx -> %#llx prot %#x was %#llx -> %#llx prot %#x",
			     (unsigned long long)now.pte[i].va, (unsigned long long)now.pte[i].pa,
			     now.pte[i].prot, (unsigned long long)s->pte[i].va,
			     (unsigned long long)s->pte[i].pa, s->pte[i].prot);
			goto out;
		}
	}
	for (size_t i = 0; i < s->nres; i++) {
		if (now.res[i].va != s->res[i].va || now.res[i].pa != s->res[i].pa) {
			fail(why, n, "resident %#llx on %#llx was %#llx on %#llx",
			     (unsigned long long)now.res[i].va, (unsigned long long)now.res[i].pa,
			     (unsigned long long)s->res[i].va, (unsigned long long)s->res[i].pa);
			goto out;
		}
	}
	eq = true;
out:
	mmfake_snap_free(&now);
	return eq;
}

void mmfake_snap_free(struct mmfake_snap *s)
{
	free(s->ent);
	free(s->pte);
	free(s->res);
	memset(s, 0, sizeof(*s));
}
