#include "kern/karena.h"

#include <string.h>

#include "arch/riscv64/layout.h"
#include "arch/riscv64/pmap.h"
#include "kern/kmem.h"
#include "kern/kpool.h"
#include "kern/panic.h"
#include "kern/spinlock.h"
#include "mica/errno.h"
#include "mica/param.h"
#include "mm/vmem.h"

#define KMEM_QCACHE_MAX (8 * PAGE_SIZE)
#define KARENA_BOOT_TAGS 128

static struct spinlock karena_lock;
static struct vmem kva_arena, kmem_arena;
static struct vmem_btag_pool karena_tags;
static struct vmem_btag boot_tags[KARENA_BOOT_TAGS];
static uint64_t karena_failures;

/* More boundary tags: one page from the pool at a time. Runs with the
 * karena lock held, from inside a vmem call. */
static int karena_tag_refill(void *arg, struct vmem_btag_pool *pool)
{
	(void)arg;
	uint64_t pa;
	if (kpool_alloc_page(&pa))
		return -MICA_ENOMEM;
	vmem_btag_pool_add(pool, pa_to_kva(pa), PAGE_SIZE);
	return 0;
}

/* Unmap and free the frames behind [va, va + len). */
static void karena_unback(uint64_t va, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += PAGE_SIZE) {
		uint64_t pa;
		if (pmap_extract(&kernel_pmap, va + off, &pa, 0) == 0) {
			pmap_remove(&kernel_pmap, va + off, PAGE_SIZE);
			kpool_free_page(pa);
		}
	}
}

/* Back [va, va + len) with pool frames; all or nothing. */
static int karena_back(uint64_t va, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += PAGE_SIZE) {
		uint64_t pa;
		int err = kpool_alloc_page(&pa);
		if (!err) {
			err = pmap_enter(&kernel_pmap, va + off, pa, PAGE_SIZE, PTE_R | PTE_W, 0);
			if (err)
				kpool_free_page(pa);
		}
		if (err) {
			karena_unback(va, off);
			return err;
		}
	}
	return 0;
}

/* kmem's import: virtual space from kva, then frames behind it. */
static int kmem_import(void *source, vmem_size_t size, vmem_addr_t *addrp, vmem_size_t *sizep)
{
	vmem_addr_t va;
	int err = vmem_alloc(source, size, VMEM_INSTANTFIT, &va);
	if (err)
		return err;
	err = karena_back(va, size);
	if (err) {
		vmem_xfree(source, va, size);
		return err;
	}
	*addrp = va;
	*sizep = size;
	return 0;
}

static void kmem_release(void *source, vmem_addr_t addr, vmem_size_t size)
{
	karena_unback(addr, size);
	vmem_xfree(source, addr, size);
}

/* => boot hart, after pmap_bootstrap() */
void karena_init(void)
{
	vmem_btag_pool_init(&karena_tags, karena_tag_refill, 0, 0);
	vmem_btag_pool_add(&karena_tags, boot_tags, sizeof(boot_tags));
	struct vmem_config va_cfg = {
		.name = "kva", .quantum = PAGE_SIZE, .pool = &karena_tags};
	struct vmem_config mem_cfg = {.name = "kmem",
				      .quantum = PAGE_SIZE,
				      .qcache_max = KMEM_QCACHE_MAX,
				      .import = kmem_import,
				      .release = kmem_release,
				      .source = &kva_arena,
				      .pool = &karena_tags};
	/* The first page of the range stays unused so that a NULL-plus-offset bug
	 * in kernel code cannot land in an allocation. */
	if (vmem_init(&kva_arena, &va_cfg) || vmem_init(&kmem_arena, &mem_cfg) ||
	    vmem_add(&kva_arena, KARENA_BASE + PAGE_SIZE, KARENA_SIZE - PAGE_SIZE))
		panic("karena: cannot set up the kernel arenas");
}

static void *km_fail(unsigned flags, size_t size)
{
	karena_failures++;
	if (!(flags & KM_CANFAIL))
		panic("km_alloc: out of kernel memory for %zu bytes", size);
	return 0;
}

/* => takes the karena lock */
void *km_alloc(size_t size, unsigned flags)
{
	if (size == 0 || size > KARENA_SIZE / 2)
		return km_fail(flags | KM_CANFAIL, size);
	uint64_t len = (size + PAGE_MASK) & ~PAGE_MASK;
	vmem_addr_t va;
	int err;
	spin_lock(&karena_lock);
	if (flags & KM_VAONLY) {
		err = vmem_alloc(&kva_arena, len, VMEM_INSTANTFIT, &va);
	} else if (flags & KM_STACK) {
		err = vmem_alloc(&kva_arena, len + PAGE_SIZE, VMEM_INSTANTFIT, &va);
		if (!err) {
			err = karena_back(va + PAGE_SIZE, len);
			if (err)
				vmem_xfree(&kva_arena, va, len + PAGE_SIZE);
			else
				va += PAGE_SIZE;
		}
	} else {
		err = vmem_alloc(&kmem_arena, len, VMEM_INSTANTFIT, &va);
	}
	spin_unlock(&karena_lock);
	if (err)
		return km_fail(flags, size);
	if ((flags & KM_ZERO) && !(flags & KM_VAONLY))
		memset((void *)va, 0, len);
	return (void *)va;
}

/* => takes the karena lock */
void km_free(void *p, size_t size, unsigned flags)
{
	if (!p)
		return;
	uint64_t va = (uint64_t)p, len = (size + PAGE_MASK) & ~PAGE_MASK;
	int err;
	spin_lock(&karena_lock);
	if (flags & KM_VAONLY) {
		err = vmem_free(&kva_arena, va, len);
	} else if (flags & KM_STACK) {
		karena_unback(va, len);
		err = vmem_free(&kva_arena, va - PAGE_SIZE, len + PAGE_SIZE);
	} else {
		err = vmem_free(&kmem_arena, va, len);
	}
	spin_unlock(&karena_lock);
	if (err)
		panic("km_free(%p, %zu): %d", p, size, err);
}

int km_donate(uint64_t pa, uint64_t len)
{
	return kpool_donate(pa, len);
}

/* => takes the karena lock */
void karena_drain(void)
{
	spin_lock(&karena_lock);
	vmem_drain(&kmem_arena);
	spin_unlock(&karena_lock);
}

/* => takes the karena lock */
void karena_get_stats(struct karena_stats *st)
{
	struct vmem_stats va, mem;
	spin_lock(&karena_lock);
	vmem_get_stats(&kva_arena, &va);
	vmem_get_stats(&kmem_arena, &mem);
	st->va_total = va.total;
	st->va_inuse = va.inuse;
	st->mem_inuse = mem.inuse;
	st->mem_cached = mem.cached;
	st->imports = mem.nimports;
	st->releases = mem.nreleases;
	st->failures = karena_failures;
	spin_unlock(&karena_lock);
}
