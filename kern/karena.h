/*
 * The kernel arena: the kernel's own memory (thread control blocks, endpoints,
 * kernel stacks, capability tables) as page-granular allocations in the
 * kernel-arena virtual range, backed by frames from the kernel pool.
 *
 * Two vmem arenas are stacked, after the UVM kernel map: `kva` hands out bare
 * virtual ranges; `kmem` imports from it, backing each imported span with
 * frames and mapping it, and keeps quantum caches for allocations of 1 to 8
 * pages so the common case neither searches nor maps.
 *
 * Lock order: karena lock, then the kernel pmap lock, then the kpool lock.
 */
#ifndef MICA_KERN_KARENA_H
#define MICA_KERN_KARENA_H

#include <stddef.h>
#include <stdint.h>

#define KM_ZERO 0x1    /* zero the memory */
#define KM_CANFAIL 0x2 /* return NULL when memory is short instead of panicking */
#define KM_VAONLY 0x4  /* reserve virtual space only, nothing mapped */
#define KM_STACK 0x8   /* a kernel stack: an unmapped guard page sits below it */

struct karena_stats {
	uint64_t va_total, va_inuse; /* the whole virtual range */
	uint64_t mem_inuse, mem_cached;
	uint64_t imports, releases, failures;
};

/* => boot hart, after pmap_bootstrap() */
void karena_init(void);
/* => takes the karena lock */
void *km_alloc(size_t size, unsigned flags);
/* `size` and `flags` as given to km_alloc. => takes the karena lock */
void km_free(void *p, size_t size, unsigned flags);
/* Hand RAM to the kernel pool (the memory server's answer to -MICA_ENOMEM). */
int km_donate(uint64_t pa, uint64_t len);
/* => takes the karena lock */
void karena_get_stats(struct karena_stats *st);
/* Return cached memory to the pool. => takes the karena lock */
void karena_drain(void);

#endif
