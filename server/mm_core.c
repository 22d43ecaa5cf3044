#include "server/mm_core.h"

#include <stdlib.h>
#include <string.h>

#include "mica/errno.h"
#include "mica/param.h"
#include "mica/syscall.h"
#include "server/mm_pagetab.h"

#define MM_ALIGN_MAX (1UL << 30) /* the largest Sv39 leaf */

/* ---- decoding: every check that needs no state ---- */

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static int check_range(uint64_t addr, uint64_t len)
{
	if ((addr & PAGE_MASK) || len == 0)
		return -MICA_EINVAL;
	if (addr + len < addr)
		return -MICA_EOVERFLOW;
	if (addr < USER_VA_MIN || addr + len > USER_VA_MAX)
		return -MICA_EFAULT;
	return 0;
}

/* => pure function */
int mm_decode(uint64_t tag, const uint64_t mr[4], struct mm_request *req)
{
	uint64_t label = ipc_tag_label(tag);
	memset(req, 0, sizeof(*req));
	/* The label has 48 bits: cut to 32 a wider one would pass for an operation
	 * (0x1_0000_0101 for MAP). It names none, and 0 is no operation either. */
	req->op = label == (unsigned)label ? (unsigned)label : 0;
	/* Only SHARE carries a capability (the target's token), and it must. */
	if (!!(tag & IPC_TAG_CAP) != (req->op == MM_OP_SHARE))
		return req->op == MM_OP_SHARE ? -MICA_EPERM : -MICA_EINVAL;
	switch (req->op) {
	case MM_OP_SHARE: {
		req->addr = mr[0];
		req->len = mr[1];
		req->prot = mr[2] & 0xff;
		req->flags = (unsigned)(mr[2] >> 8);
		req->hint2 = mr[3];
		if (req->prot & ~(unsigned)(MM_PROT_READ | MM_PROT_WRITE | MM_PROT_EXEC) ||
		    req->prot == MM_PROT_NONE)
			return -MICA_EINVAL;
		if (req->flags & ~(unsigned)(MM_MAP_FIXED | MM_MAP_FIXED_NOREPLACE) ||
		    req->flags == (MM_MAP_FIXED | MM_MAP_FIXED_NOREPLACE))
			return -MICA_EINVAL;
		int err = check_range(req->addr, req->len);
		if (err)
			return err;
		if (req->flags)
			return check_range(req->hint2, req->len);
		return (req->hint2 & PAGE_MASK) ? -MICA_EINVAL : 0;
	}
	case MM_OP_MAP:
		req->addr = mr[0];
		req->len = mr[1];
		req->prot = mr[2] & 0xff;
		req->flags = (unsigned)(mr[2] >> 8);
		req->align = mr[3];
		if (req->prot & ~MM_PROT_EXEC & ~(MM_PROT_READ | MM_PROT_WRITE))
			return -MICA_EINVAL;
		if ((mr[2] >> 8) & ~(uint64_t)MM_MAP_FLAGS_ALL)
			return -MICA_EINVAL;
		if ((req->flags & MM_MAP_FIXED) && (req->flags & MM_MAP_FIXED_NOREPLACE))
			return -MICA_EINVAL;
		if ((req->flags & MM_MAP_GUARD) &&
		    (req->prot || (req->flags & (MM_MAP_POPULATE | MM_MAP_WIRE))))
			return -MICA_EINVAL;
		if (req->align && (!pow2(req->align) || req->align < PAGE_SIZE ||
				   req->align > MM_ALIGN_MAX))
			return -MICA_EINVAL;
		if (req->len == 0)
			return -MICA_EINVAL;
		if (req->len > USER_VA_MAX)
			return -MICA_ENOMEM;
		req->len = (req->len + PAGE_MASK) & ~PAGE_MASK;
		if (req->flags & (MM_MAP_FIXED | MM_MAP_FIXED_NOREPLACE)) {
			int err = check_range(req->addr, req->len);
			if (err)
				return err;
			if (req->align && (req->addr & (req->align - 1)))
				return -MICA_EINVAL;
		} else if (req->addr & PAGE_MASK) {
			return -MICA_EINVAL;
		}
		return 0;
	case MM_OP_UNMAP:
	case MM_OP_UNWIRE:
		req->addr = mr[0];
		req->len = mr[1];
		return check_range(req->addr, req->len);
	case MM_OP_PROTECT:
		req->addr = mr[0];
		req->len = mr[1];
		req->prot = (unsigned)mr[2];
		if (mr[2] & ~(uint64_t)(MM_PROT_READ | MM_PROT_WRITE | MM_PROT_EXEC))
			return -MICA_EINVAL;
		return check_range(req->addr, req->len);
	case MM_OP_WIRE:
		req->addr = mr[0];
		req->len = mr[1];
		if (mr[2] > MM_WIRE_REPORT)
			return -MICA_EINVAL;
		req->report = (unsigned)mr[2];
		return check_range(req->addr, req->len);
	case MM_OP_QUERY:
		req->addr = mr[0];
		if (req->addr < USER_VA_MIN || req->addr >= USER_VA_MAX)
			return -MICA_EFAULT;
		return 0;
	case MM_OP_INFO:
		return 0;
	default:
		return -MICA_ENOSYS;
	}
}

/* ---- clients ---- */

static struct vm_map_entry *entry_alloc(void *ctx)
{
	(void)ctx;
	return malloc(sizeof(struct vm_map_entry));
}

static void entry_free(void *ctx, struct vm_map_entry *e)
{
	(void)ctx;
	free(e);
}

static const struct vm_map_ops entry_ops = {.alloc = entry_alloc, .free = entry_free};

/* => client owned by the server */
int mm_client_init(struct mm_client *c, uint64_t badge, uint64_t task, const struct mm_quota *q)
{
	memset(c, 0, sizeof(*c));
	c->badge = badge;
	c->task = task;
	c->quota = *q;
	c->forbid_wx = true;
	return vm_map_init(&c->map, USER_VA_MIN, USER_VA_MAX, &entry_ops);
}

size_t mm_resident_pages(const struct mm_client *c)
{
	return c->pages.used;
}

struct release_ctx {
	struct mm_client *c;
	const struct mm_env *env;
};

static void release_page(void *arg, uint64_t va, uint64_t pa)
{
	struct release_ctx *r = arg;
	(void)va;
	r->env->page_free(r->env->ctx, pa);
}

/* A piece left the map: its translations go, then its pages. */
static void release_piece(void *arg, const struct vm_map_entry *piece)
{
	struct release_ctx *r = arg;
	uint64_t len = piece->end - piece->start;
	r->env->remove(r->env->ctx, r->c->task, piece->start, len);
	mm_pagetab_remove_range(&r->c->pages, piece->start, len, release_page, r);
	if (piece->wired)
		r->c->wired_pages -= len / PAGE_SIZE;
}

/* => client owned by the server */
void mm_client_destroy(struct mm_client *c, const struct mm_env *env)
{
	struct release_ctx r = {c, env};
	vm_map_clear(&c->map, release_piece, &r);
	mm_pagetab_free(&c->pages);
}

/* The protection a page-table entry can hold for `prot`. RISC-V reserves
 * write-without-read and the kernel refuses it (-EINVAL), which made every
 * write-only mapping fail on first touch; such pages are entered read-write, as
 * on other POSIX systems. The entry keeps the protection asked for, and faults
 * are judged by that. */
static unsigned pte_prot(unsigned prot)
{
	return (prot & MM_PROT_WRITE) ? prot | MM_PROT_READ : prot;
}

/* Frames for the pages a request will populate, allocated before anything
 * changes: RAM running out part way must not leave the request half done (the
 * old pages of a FIXED mapping, for one, cannot come back once replaced).
 * va[i] records where pa[i] went, so that WIRE can take its pages back. */
struct frames {
	uint64_t *pa, *va;
	size_t n, used;
};

/* Frees the frames not used, and the record. */
static void frames_put(struct frames *f, const struct mm_env *env)
{
	for (size_t i = f->used; i < f->n; i++)
		env->page_free(env->ctx, f->pa[i]);
	free(f->pa);
	memset(f, 0, sizeof(*f));
}

/* All n frames or none; the page table gets room for n more so that no
 * insertion can fail later either. */
static int frames_get(struct frames *f, struct mm_client *c, const struct mm_env *env, size_t n)
{
	memset(f, 0, sizeof(*f));
	if (n == 0)
		return 0;
	if (mm_pagetab_reserve(&c->pages, n))
		return -MICA_ENOMEM;
	f->pa = malloc(2 * n * sizeof(uint64_t));
	if (!f->pa)
		return -MICA_ENOMEM;
	f->va = f->pa + n;
	for (; f->n < n; f->n++) {
		int err = env->page_alloc(env->ctx, &f->pa[f->n]);
		if (err) {
			frames_put(f, env);
			return err;
		}
	}
	return 0;
}

/* Make one page resident and mapped with the entry's protection, on a frame
 * from `fr` if given. A fault on a resident page re-enters its translation
 * (`remap`): it may have been removed by PROT_NONE, and -EEXIST just means the
 * fault was spurious. */
static int populate_page(struct mm_client *c, const struct mm_env *env, uint64_t va,
			 unsigned prot, bool remap, struct frames *fr)
{
	uint64_t pa;
	if (mm_pagetab_get(&c->pages, va, &pa)) {
		if (!remap || prot == MM_PROT_NONE)
			return 0;
		int err = env->enter(env->ctx, c->task, va, pa, PAGE_SIZE, pte_prot(prot));
		return err == -MICA_EEXIST ? 0 : err;
	}
	if (c->pages.used >= c->quota.resident)
		return -MICA_ENOMEM;
	if (mm_pagetab_reserve(&c->pages, 1))
		return -MICA_ENOMEM;
	int err = 0;
	if (!fr)
		err = env->page_alloc(env->ctx, &pa);
	else if (fr->used < fr->n)
		pa = fr->pa[fr->used];
	else
		err = -MICA_ENOMEM; /* the caller counted wrong */
	if (err)
		return err;
	if (prot != MM_PROT_NONE) {
		err = env->enter(env->ctx, c->task, va, pa, PAGE_SIZE, pte_prot(prot));
		if (err) {
			if (!fr)
				env->page_free(env->ctx, pa);
			return err;
		}
	}
	if (fr)
		fr->va[fr->used++] = va;
	mm_pagetab_put(&c->pages, va, pa);
	return 0;
}

struct populate_ctx {
	struct mm_client *c;
	const struct mm_env *env;
	uint64_t lo, hi;
	int err;
	struct frames *fr;
};

static int populate_entry(void *arg, const struct vm_map_entry *e)
{
	struct populate_ctx *p = arg;
	uint64_t from = e->start > p->lo ? e->start : p->lo;
	uint64_t to = e->end < p->hi ? e->end : p->hi;
	for (uint64_t va = from; va < to; va += PAGE_SIZE) {
		p->err = populate_page(p->c, p->env, va, e->prot, false, p->fr);
		if (p->err)
			return 1;
	}
	return 0;
}

static int populate_range_from(struct mm_client *c, const struct mm_env *env, uint64_t addr,
			       uint64_t len, struct frames *fr)
{
	struct populate_ctx p = {c, env, addr, addr + len, 0, fr};
	vm_map_foreach(&c->map, addr, len, populate_entry, &p);
	return p.err;
}

static int populate_range(struct mm_client *c, const struct mm_env *env, uint64_t addr,
			  uint64_t len)
{
	return populate_range_from(c, env, addr, len, NULL);
}

struct wired_ctx {
	uint64_t lo, hi, pages;
	bool want_wired;
};

static int count_wired(void *arg, const struct vm_map_entry *e)
{
	struct wired_ctx *w = arg;
	uint64_t from = e->start > w->lo ? e->start : w->lo;
	uint64_t to = e->end < w->hi ? e->end : w->hi;
	if ((e->wired != 0) == w->want_wired)
		w->pages += (to - from) / PAGE_SIZE;
	return 0;
}

static uint64_t pages_with_wiring(struct mm_client *c, uint64_t addr, uint64_t len, bool wired)
{
	struct wired_ctx w = {addr, addr + len, 0, wired};
	vm_map_foreach(&c->map, addr, len, count_wired, &w);
	return w.pages;
}

static long op_map(struct mm_client *c, const struct mm_env *env, const struct mm_request *req)
{
	if (c->forbid_wx && (req->prot & MM_PROT_WRITE) && (req->prot & MM_PROT_EXEC))
		return -MICA_EACCES;
	if (c->map.nentries >= c->quota.entries)
		return -MICA_ENOMEM;
	uint64_t pages = req->len / PAGE_SIZE;
	bool populate = req->flags & (MM_MAP_POPULATE | MM_MAP_WIRE);
	if (populate && pages > c->quota.resident - c->pages.used)
		return -MICA_ENOMEM;
	if ((req->flags & MM_MAP_WIRE) && pages > c->quota.wired - c->wired_pages)
		return -MICA_EAGAIN;
	struct vm_map_attr attr = {
		.prot = req->prot,
		.max_prot = (req->flags & MM_MAP_GUARD) ? VM_PROT_NONE : VM_PROT_ALL,
		.flags = (req->flags & MM_MAP_GUARD) ? VM_ENT_GUARD : 0,
	};
	unsigned place = (req->flags & MM_MAP_FIXED)		? VM_PLACE_FIXED
			 : (req->flags & MM_MAP_FIXED_NOREPLACE) ? VM_PLACE_NOREPLACE
								 : 0;
	uint64_t hint = req->addr ? req->addr : USER_VA_MIN;
	struct release_ctx r = {c, env};
	uintptr_t addr;
	struct frames fr;
	int err = 0;
	/* Where it goes is settled before frames are taken, so that a mapping that cannot
	 * go in fails as it would without POPULATE (-EEXIST, no room), not for want of RAM. */
	if (populate)
		err = vm_map_findspace(&c->map, hint, req->len, req->align, place, &addr);
	if (!err)
		err = frames_get(&fr, c, env, populate ? pages : 0);
	if (err)
		return err;
	err = vm_map_enter(&c->map, hint, req->len, req->align, place, &attr, release_piece, &r,
			   &addr);
	if (err) {
		frames_put(&fr, env);
		return err;
	}
	if (populate) {
		err = populate_range_from(c, env, addr, req->len, &fr);
		if (!err && (req->flags & MM_MAP_WIRE)) {
			err = vm_map_wire(&c->map, addr, req->len);
			if (!err)
				c->wired_pages += pages;
		}
		frames_put(&fr, env);
		if (err) {
			/* Only the kernel refusing a translation or the heap running out
			 * gets here; what a FIXED mapping replaced is gone by now. */
			vm_map_remove(&c->map, addr, req->len, release_piece, &r);
			return err;
		}
	}
	return (long)addr;
}

/* Entries a range operation adds by splitting: one for each end of the range
 * that falls strictly inside an entry (a protect or wire there makes the piece
 * its own entry), but an unmap only adds one when both ends cut the same entry.
 * A request that would take the map past its entries quota is refused up front
 * (as Linux refuses an munmap past its map count), so the quota holds. */
static bool split_would_exceed(struct mm_client *c, uint64_t addr, uint64_t len, bool unmap)
{
	struct vm_map_entry *lo = 0, *hi = 0;
	bool cut_lo = vm_map_lookup(&c->map, addr, &lo) && lo->start < addr;
	bool cut_hi = vm_map_lookup(&c->map, addr + len - 1, &hi) && hi->end > addr + len;
	size_t extra = unmap ? (cut_lo && cut_hi && lo == hi) : (size_t)cut_lo + cut_hi;
	return c->map.nentries + extra > c->quota.entries;
}

static long op_unmap(struct mm_client *c, const struct mm_env *env, const struct mm_request *req)
{
	if (split_would_exceed(c, req->addr, req->len, true))
		return -MICA_ENOMEM;
	struct release_ctx r = {c, env};
	return vm_map_remove(&c->map, req->addr, req->len, release_piece, &r);
}

static long op_protect(struct mm_client *c, const struct mm_env *env,
		       const struct mm_request *req)
{
	if (c->forbid_wx && (req->prot & MM_PROT_WRITE) && (req->prot & MM_PROT_EXEC))
		return -MICA_EACCES;
	if (split_would_exceed(c, req->addr, req->len, false))
		return -MICA_ENOMEM;
	int err = vm_map_protect(&c->map, req->addr, req->len, req->prot);
	if (err)
		return err;
	/* Resident pages follow at once. PROT_NONE has no PTE form: the translations
	 * go, the pages stay, and a later access faults against the entry. Pages are
	 * mapped 4 KiB at a time, so narrowing never needs a table split and cannot
	 * fail for want of memory. */
	if (req->prot == MM_PROT_NONE)
		return env->remove(env->ctx, c->task, req->addr, req->len);
	err = env->protect(env->ctx, c->task, req->addr, req->len, pte_prot(req->prot));
	if (err)
		return err;
	/* Pages that lost their translation to an earlier PROT_NONE come back. The
	 * range may span all of user space (2^26 pages, seconds of a server that
	 * serves no one meanwhile), so walk it or the resident pages, whichever is
	 * shorter, as mm_pagetab's range functions do (key layout: mm_core.h). */
	const struct mm_pagetab *t = &c->pages;
	unsigned prot = pte_prot(req->prot);
	uint64_t pa;
	if (req->len / PAGE_SIZE <= t->used) {
		for (uint64_t va = req->addr; va < req->addr + req->len; va += PAGE_SIZE)
			if (mm_pagetab_get(t, va, &pa))
				env->enter(env->ctx, c->task, va, pa, PAGE_SIZE, prot);
		return 0;
	}
	for (size_t s = 0; s < t->cap; s++) {
		uint64_t va = t->keys[s] & ~(uint64_t)1;
		if ((t->keys[s] & 1) && va >= req->addr && va - req->addr < req->len)
			env->enter(env->ctx, c->task, va, t->vals[s], PAGE_SIZE, prot);
	}
	return 0;
}

struct cover_ctx {
	uint64_t next; /* the first address not yet covered */
	int err;
};

/* What vm_map_wire insists on: entries end to end over the range, no guard. */
static int cover_entry(void *arg, const struct vm_map_entry *e)
{
	struct cover_ctx *cv = arg;
	if (e->start > cv->next || (e->flags & VM_ENT_GUARD)) {
		cv->err = -MICA_ENOMEM;
		return 1;
	}
	cv->next = e->end;
	return 0;
}

static long op_wire(struct mm_client *c, const struct mm_env *env, const struct mm_request *req,
		    uint64_t *out, unsigned *nout)
{
	uint64_t newly = pages_with_wiring(c, req->addr, req->len, false);
	if (newly > c->quota.wired - c->wired_pages)
		return -MICA_EAGAIN;
	if (split_would_exceed(c, req->addr, req->len, false))
		return -MICA_ENOMEM;
	/* Everything that can refuse the request is checked, and every frame it needs
	 * allocated, before a page is made resident; the pages come before the wiring.
	 * A failure then only has to take back the pages this call made: unwiring the
	 * range instead would also unwire what was wired before, and leave the pages. */
	struct cover_ctx cv = {req->addr, 0};
	int err = vm_map_foreach(&c->map, req->addr, req->len, cover_entry, &cv);
	if (err < 0)
		return err;
	if (!cv.err && cv.next < req->addr + req->len)
		cv.err = -MICA_ENOMEM; /* a hole at the end */
	if (cv.err)
		return cv.err;
	uint64_t missing =
	    req->len / PAGE_SIZE - mm_pagetab_count_range(&c->pages, req->addr, req->len);
	if (missing > c->quota.resident - c->pages.used)
		return -MICA_ENOMEM;
	struct frames fr;
	err = frames_get(&fr, c, env, missing);
	if (err)
		return err;
	err = populate_range_from(c, env, req->addr, req->len, &fr);
	if (!err)
		err = vm_map_wire(&c->map, req->addr, req->len);
	if (err) {
		for (size_t i = 0; i < fr.used; i++) {
			uint64_t pa;
			env->remove(env->ctx, c->task, fr.va[i], PAGE_SIZE);
			mm_pagetab_del(&c->pages, fr.va[i], &pa);
		}
		fr.used = 0; /* every frame goes back */
		frames_put(&fr, env);
		return err;
	}
	frames_put(&fr, env);
	c->wired_pages += newly;
	unsigned n = 0;
	for (uint64_t va = req->addr; va < req->addr + req->len && n < req->report;
	     va += PAGE_SIZE) {
		uint64_t pa = 0;
		mm_pagetab_get(&c->pages, va, &pa);
		out[IPC_REG_WORDS + n++] = pa;
	}
	*nout = n ? IPC_REG_WORDS + n : 1;
	return (long)(req->len / PAGE_SIZE);
}

static long op_unwire(struct mm_client *c, const struct mm_request *req)
{
	if (split_would_exceed(c, req->addr, req->len, false))
		return -MICA_ENOMEM;
	uint64_t was = pages_with_wiring(c, req->addr, req->len, true);
	int err = vm_map_unwire(&c->map, req->addr, req->len);
	if (!err)
		c->wired_pages -= was;
	return err;
}

static long op_query(struct mm_client *c, const struct mm_request *req, uint64_t *out,
		     unsigned *nout)
{
	struct vm_map_entry *e;
	if (!vm_map_lookup(&c->map, req->addr, &e))
		return -MICA_ENOENT;
	out[1] = e->start;
	out[2] = e->end;
	out[3] = (uint64_t)e->prot | (uint64_t)e->max_prot << 8 |
		 (uint64_t)((e->flags & VM_ENT_GUARD) ? MM_MAP_GUARD : 0) << 16 |
		 (uint64_t)(e->wired ? 1 : 0) << 32;
	out[4] = mm_pagetab_count_range(&c->pages, e->start, e->end - e->start);
	*nout = 5;
	return 0;
}

/* => client owned by the server */
long mm_handle(struct mm_client *c, const struct mm_env *env, const struct mm_request *req,
	       uint64_t *out, unsigned *nout)
{
	*nout = 1;
	switch (req->op) {
	case MM_OP_MAP:
		return op_map(c, env, req);
	case MM_OP_UNMAP:
		return op_unmap(c, env, req);
	case MM_OP_PROTECT:
		return op_protect(c, env, req);
	case MM_OP_WIRE:
		return op_wire(c, env, req, out, nout);
	case MM_OP_UNWIRE:
		return op_unwire(c, req);
	case MM_OP_QUERY:
		return op_query(c, req, out, nout);
	default:
		return -MICA_ENOSYS; /* INFO needs the server's totals: see server/server.c */
	}
}

struct share_check {
	uint64_t next; /* the first address not yet covered */
	unsigned prot;
	int err;
};

/* The source range must be one run of entries with no hole, no guard, and a
 * protection that includes what is asked for the target. */
static int share_check_entry(void *arg, const struct vm_map_entry *e)
{
	struct share_check *sc = arg;
	if (e->start > sc->next || (e->flags & VM_ENT_GUARD)) {
		sc->err = -MICA_ENOMEM;
		return 1;
	}
	if ((sc->prot & e->prot) != sc->prot) {
		sc->err = -MICA_EACCES;
		return 1;
	}
	sc->next = e->end;
	return 0;
}

/* => both clients owned by the server */
long mm_core_share(struct mm_client *src, struct mm_client *dst, const struct mm_env *env,
	      const struct mm_request *req)
{
	uint64_t pages = req->len / PAGE_SIZE;
	if (dst->forbid_wx && (req->prot & MM_PROT_WRITE) && (req->prot & MM_PROT_EXEC))
		return -MICA_EACCES;
	struct share_check sc = {req->addr, req->prot, 0};
	vm_map_foreach(&src->map, req->addr, req->len, share_check_entry, &sc);
	if (!sc.err && sc.next < req->addr + req->len)
		sc.err = -MICA_ENOMEM; /* a hole at the end */
	if (sc.err)
		return sc.err;
	if (dst->map.nentries >= dst->quota.entries || pages > dst->quota.resident - dst->pages.used)
		return -MICA_ENOMEM;
	/* Every source page becomes resident first: the target gets real frames. */
	int err = populate_range(src, env, req->addr, req->len);
	if (err)
		return err;
	if (mm_pagetab_reserve(&dst->pages, pages))
		return -MICA_ENOMEM;
	struct vm_map_attr attr = {.prot = req->prot, .max_prot = req->prot, .flags = VM_ENT_SHARED};
	unsigned place = (req->flags & MM_MAP_FIXED)		? VM_PLACE_FIXED
			 : (req->flags & MM_MAP_FIXED_NOREPLACE) ? VM_PLACE_NOREPLACE
								 : 0;
	struct release_ctx r = {dst, env};
	uintptr_t at;
	err = vm_map_enter(&dst->map, req->hint2 ? req->hint2 : USER_VA_MIN, req->len, 0, place,
			   &attr, release_piece, &r, &at);
	if (err)
		return err;
	for (uint64_t off = 0; off < req->len; off += PAGE_SIZE) {
		uint64_t pa;
		mm_pagetab_get(&src->pages, req->addr + off, &pa);
		err = env->enter(env->ctx, dst->task, at + off, pa, PAGE_SIZE, pte_prot(req->prot));
		if (err) {
			/* The pages entered so far are in the table: removal undoes them. */
			vm_map_remove(&dst->map, at, req->len, release_piece, &r);
			return err;
		}
		env->page_ref(env->ctx, pa);
		mm_pagetab_put(&dst->pages, at + off, pa);
	}
	return (long)at;
}

#define SUPERPAGE_SIZE (2UL << 20)
#define SUPERPAGE_PAGES (SUPERPAGE_SIZE / PAGE_SIZE)

/* A first touch inside a whole, untouched, aligned 2 MiB stretch of one plain
 * anonymous entry gets a 2 MiB frame and one 2 MiB translation: one fault and
 * one TLB entry instead of 512. Anything else (no block free, over quota, a
 * page of the stretch already resident) falls back to a single page. The pages
 * stay individually counted, so a later partial unmap or protect simply makes
 * the kernel split the translation. */
static bool fault_superpage(struct mm_client *c, const struct mm_env *env,
			    const struct vm_map_entry *e, uint64_t va)
{
	uint64_t big = va & ~(SUPERPAGE_SIZE - 1), pa;
	if (!env->page_alloc_2m || e->flags || big < e->start || e->end - big < SUPERPAGE_SIZE)
		return false;
	if (c->quota.resident - c->pages.used < SUPERPAGE_PAGES ||
	    mm_pagetab_count_range(&c->pages, big, SUPERPAGE_SIZE) != 0 ||
	    mm_pagetab_reserve(&c->pages, SUPERPAGE_PAGES))
		return false;
	if (env->page_alloc_2m(env->ctx, &pa))
		return false;
	if (env->enter(env->ctx, c->task, big, pa, SUPERPAGE_SIZE, pte_prot(e->prot))) {
		for (uint64_t i = 0; i < SUPERPAGE_PAGES; i++)
			env->page_free(env->ctx, pa + i * PAGE_SIZE);
		return false;
	}
	for (uint64_t i = 0; i < SUPERPAGE_PAGES; i++)
		mm_pagetab_put(&c->pages, big + i * PAGE_SIZE, pa + i * PAGE_SIZE);
	return true;
}

/* => client owned by the server */
int mm_fault(struct mm_client *c, const struct mm_env *env, uint64_t addr, unsigned access,
	     const char **why)
{
	struct vm_map_entry *e;
	uint64_t va = addr & ~PAGE_MASK;
	if (addr < USER_VA_MIN || addr >= USER_VA_MAX || !vm_map_lookup(&c->map, va, &e)) {
		*why = "no mapping at the address";
		return -MICA_EFAULT;
	}
	if (e->flags & VM_ENT_GUARD) {
		*why = "access to a guard range";
		return -MICA_EFAULT;
	}
	unsigned need = access == FAULT_ACCESS_WRITE  ? MM_PROT_WRITE
			: access == FAULT_ACCESS_EXEC ? MM_PROT_EXEC
						      : MM_PROT_READ;
	if (!(e->prot & need)) {
		*why = need == MM_PROT_WRITE  ? "write to a page without write permission"
		       : need == MM_PROT_EXEC ? "execute from a page without execute permission"
					      : "read from a page without read permission";
		return -MICA_EACCES;
	}
	if (fault_superpage(c, env, e, va))
		return 0;
	int err = populate_page(c, env, va, e->prot, true, NULL);
	if (err) {
		*why = err == -MICA_ENOMEM ? "out of memory or over the resident quota"
					   : "the kernel refused the mapping";
		return err;
	}
	return 0;
}
