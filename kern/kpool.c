#include "kern/kpool.h"

#include <string.h>

#include "kern/kmem.h"
#include "kern/panic.h"
#include "kern/spinlock.h"
#include "lib/platform.h"
#include "mica/errno.h"
#include "mica/param.h"
#include "mm/frame.h"

#define KPOOL_MIN (4UL << 20)
#define KPOOL_MAX (64UL << 20)
#define KPOOL_MAX_FREE 24

static struct spinlock kpool_lock;
static struct frame_allocator kpool_fa;
static uint64_t kpool_base, kpool_size;
static size_t kpool_array_bytes;
/* Donated pages: a stack linked through the pages themselves (via the linear map). */
static uint64_t donated_head;
static size_t donated_total, donated_free;
static int kpool_starved;

static struct plat_range free_ram[KPOOL_MAX_FREE];
static unsigned nfree_ram;

/* Remove [base, base+size) from the free list (splitting a range in two). */
static void free_ram_subtract(uint64_t base, uint64_t size)
{
	uint64_t end = base + size;
	for (unsigned i = 0; i < nfree_ram; i++) {
		uint64_t rb = free_ram[i].base, re = rb + free_ram[i].size;
		if (end <= rb || base >= re)
			continue;
		if (base > rb && end < re) {
			if (nfree_ram == KPOOL_MAX_FREE)
				panic("kpool: too many holes in RAM");
			free_ram[nfree_ram].base = end;
			free_ram[nfree_ram].size = re - end;
			nfree_ram++;
			free_ram[i].size = base - rb;
		} else if (base <= rb && end >= re) {
			free_ram[i] = free_ram[--nfree_ram];
			i--;
		} else if (base <= rb) {
			free_ram[i].base = end;
			free_ram[i].size = re - end;
		} else {
			free_ram[i].size = base - rb;
		}
	}
}

/* => boot hart, before other harts run */
uint64_t kpool_init(const struct plat_info *p, uint64_t image_pa, uint64_t image_size,
		    uint64_t dtb_pa, uint64_t dtb_size)
{
	for (unsigned i = 0; i < p->nram && nfree_ram < KPOOL_MAX_FREE; i++) {
		/* Only whole pages, and only what the linear map reaches. */
		uint64_t b = (p->ram[i].base + PAGE_MASK) & ~PAGE_MASK;
		uint64_t e = (p->ram[i].base + p->ram[i].size) & ~PAGE_MASK;
		if (e > LINEAR_SIZE)
			e = LINEAR_SIZE;
		if (e > b)
			free_ram[nfree_ram++] = (struct plat_range){b, e - b};
	}
	for (unsigned i = 0; i < p->nreserved; i++) {
		uint64_t b = p->reserved[i].base & ~PAGE_MASK;
		uint64_t e = (p->reserved[i].base + p->reserved[i].size + PAGE_MASK) & ~PAGE_MASK;
		free_ram_subtract(b, e - b);
	}
	free_ram_subtract(image_pa, (image_size + PAGE_MASK) & ~PAGE_MASK);
	free_ram_subtract(dtb_pa & ~PAGE_MASK,
			  ((dtb_pa + dtb_size + PAGE_MASK) & ~PAGE_MASK) - (dtb_pa & ~PAGE_MASK));

	/* A sixteenth of RAM, clamped: enough for page tables and kernel objects
	 * of a small system, and the memory server can donate more. */
	uint64_t want = p->ram_total / 16;
	want = want < KPOOL_MIN ? KPOOL_MIN : want > KPOOL_MAX ? KPOOL_MAX : want;
	want &= ~(MEGAPAGE_SIZE - 1);
	/* Take it from the top of the largest free range, 2 MiB aligned, so the
	 * low memory that DMA-limited devices may need stays with the server. */
	unsigned best = KPOOL_MAX_FREE;
	for (unsigned i = 0; i < nfree_ram; i++)
		if (best == KPOOL_MAX_FREE || free_ram[i].size > free_ram[best].size)
			best = i;
	if (best == KPOOL_MAX_FREE)
		panic("kpool: no free RAM at all");
	uint64_t top = (free_ram[best].base + free_ram[best].size) & ~(MEGAPAGE_SIZE - 1);
	if (top < free_ram[best].base + want)
		want = (top - free_ram[best].base) & ~PAGE_MASK;
	if (want < KPOOL_MIN / 4)
		panic("kpool: largest free RAM range is too small for the kernel pool");
	kpool_base = top - want;
	kpool_size = want;
	free_ram_subtract(kpool_base, kpool_size);

	struct frame_range ram = {kpool_base, kpool_size};
	kpool_array_bytes = frame_array_bytes(&ram, 1);
	uint64_t array_pa = kpool_base;
	struct frame_range resv = {array_pa, (kpool_array_bytes + PAGE_MASK) & ~PAGE_MASK};
	int err = frame_init(&kpool_fa, &ram, 1, &resv, 1, pa_to_kva(array_pa), kpool_array_bytes);
	if (err)
		panic("kpool: frame_init failed (%d)", err);
	return kpool_size;
}

static int kpool_take(uint64_t *pa)
{
	if (!kpool_starved) {
		struct frame *f = frame_alloc(&kpool_fa, 0);
		if (f) {
			*pa = frame_to_pa(&kpool_fa, f);
			return 0;
		}
	}
	if (donated_head) {
		*pa = donated_head;
		donated_head = *(uint64_t *)pa_to_kva(donated_head);
		donated_free--;
		return 0;
	}
	return -MICA_ENOMEM;
}

/* => takes the kpool lock */
int kpool_alloc_page(uint64_t *pa)
{
	spin_lock(&kpool_lock);
	int err = kpool_take(pa);
	spin_unlock(&kpool_lock);
	if (!err)
		memset(pa_to_kva(*pa), 0, PAGE_SIZE);
	return err;
}

static void donated_push(uint64_t pa)
{
	*(uint64_t *)pa_to_kva(pa) = donated_head;
	donated_head = pa;
	donated_free++;
}

/* => takes the kpool lock */
void kpool_free_page(uint64_t pa)
{
	spin_lock(&kpool_lock);
	if (pa >= kpool_base && pa - kpool_base < kpool_size) {
		int err = frame_free(&kpool_fa, frame_from_pa(&kpool_fa, pa), 0);
		if (err)
			panic("kpool: bad free of 0x%llx (%d)", (unsigned long long)pa, err);
	} else {
		donated_push(pa);
	}
	spin_unlock(&kpool_lock);
}

/* => takes the kpool lock */
int kpool_donate(uint64_t pa, uint64_t len)
{
	if ((pa | len) & PAGE_MASK || len == 0 || pa + len < pa || pa + len > LINEAR_SIZE)
		return -MICA_EINVAL;
	spin_lock(&kpool_lock);
	for (uint64_t off = 0; off < len; off += PAGE_SIZE)
		donated_push(pa + off);
	donated_total += len >> PAGE_SHIFT;
	spin_unlock(&kpool_lock);
	return 0;
}

/* => takes the kpool lock */
void kpool_get_stats(struct kpool_stats *st)
{
	struct frame_stats fs;
	spin_lock(&kpool_lock);
	frame_get_stats(&kpool_fa, &fs);
	st->base = kpool_base;
	st->size = kpool_size;
	st->boot_free_pages = fs.free_pages;
	st->boot_pages = fs.total_pages;
	st->donated_pages = donated_total;
	st->donated_free = donated_free;
	st->array_bytes = kpool_array_bytes;
	spin_unlock(&kpool_lock);
}

unsigned kpool_free_ranges(const struct plat_range **out)
{
	*out = free_ram;
	return nfree_ram;
}

void kpool_set_starved(int starved)
{
	kpool_starved = starved;
}
