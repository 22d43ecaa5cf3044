/* The root task's own heap (picolibc's malloc calls sbrk): frames from the
 * server's allocator, mapped into its own address space as the break grows. */
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "mica/param.h"
#include "server/server.h"
#include "user/mica.h"

#define HEAP_BASE 0x40000000UL
#define HEAP_LIMIT 0x80000000UL

static uint64_t heap_break = HEAP_BASE, heap_mapped = HEAP_BASE;

/* picolibc declares sbrk only outside strict C11; malloc calls it. */
void *sbrk(ptrdiff_t incr);

void *sbrk(ptrdiff_t incr)
{
	uint64_t old = heap_break, want = heap_break + (uint64_t)incr;
	if (incr < 0 || want > HEAP_LIMIT)
		return (void *)-1; /* the heap only grows; freed memory is reused by malloc */
	while (heap_mapped < want) {
		uint64_t pa = server_frames_alloc(0);
		struct mica_mapping m = {heap_mapped, pa, PAGE_SIZE,
					 MICA_PROT_READ | MICA_PROT_WRITE};
		if (!pa || mica_mm_enter(CAP_SLOT_SELF, &m, 1))
			return (void *)-1;
		heap_mapped += PAGE_SIZE;
	}
	heap_break = want;
	return (void *)old;
}

uint64_t server_heap_pages(void)
{
	return (heap_mapped - HEAP_BASE) / PAGE_SIZE;
}
