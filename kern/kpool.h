/* The kernel's pool of physical pages: page-table pages, and the frames behind
 * the kernel arena. A boot-time slice of RAM (sized from the RAM total, see
 * docs/ARCHITECTURE.md) under a buddy allocator, plus pages the memory server
 * donates later. When both are empty an allocation fails with -MICA_ENOMEM and
 * the caller passes that on; nothing in the kernel waits for memory. */
#ifndef MICA_KERN_KPOOL_H
#define MICA_KERN_KPOOL_H

#include <stddef.h>
#include <stdint.h>

struct plat_info;
struct plat_range;

struct kpool_stats {
	uint64_t base, size;    /* the boot slice */
	size_t boot_free_pages; /* free in the boot slice */
	size_t boot_pages;
	size_t donated_pages;   /* ever donated */
	size_t donated_free;    /* donated and free now */
	size_t array_bytes;     /* page array overhead */
};

/* Carve the pool out of free RAM: everything the tree reserves, the image and
 * the device tree stay untouched. Returns the pool size, or panics: without a
 * pool the kernel cannot run. => boot hart, before other harts run */
uint64_t kpool_init(const struct plat_info *p, uint64_t image_pa, uint64_t image_size,
		    uint64_t dtb_pa, uint64_t dtb_size);

/* One zeroed page. => takes the kpool lock */
int kpool_alloc_page(uint64_t *pa);
/* => takes the kpool lock */
void kpool_free_page(uint64_t pa);
/* Give the kernel [pa, pa + len) of RAM for good (page aligned).
 * => takes the kpool lock */
int kpool_donate(uint64_t pa, uint64_t len);
/* => takes the kpool lock */
void kpool_get_stats(struct kpool_stats *st);

/* Free RAM left after the pool: what the memory server will own.
 * => no lock: fixed after kpool_init */
unsigned kpool_free_ranges(const struct plat_range **out);

/* Test hook: pretend the boot slice is empty (donated pages still count). */
void kpool_set_starved(int starved);

#endif
