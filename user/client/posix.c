/* POSIX-style memory calls for client tasks, on top of the MM protocol, and
 * the sbrk that picolibc's malloc grows its heap with. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "mica/param.h"
#include "user/mm.h"
#include "user/posix_mm.h"

#define HEAP_BASE 0x40000000UL
#define HEAP_LIMIT 0x80000000UL
#define HEAP_CHUNK (64 * 1024UL)

static int set_errno(long r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	if (fd != -1 || off != 0 || !(flags & MAP_ANONYMOUS)) {
		errno = ENODEV; /* anonymous memory only */
		return MAP_FAILED;
	}
	unsigned mmflags = (flags & MAP_FIXED) ? MM_MAP_FIXED : 0;
	void *out;
	long r = mm_map(addr, len, (unsigned)prot, mmflags, 0, &out);
	return set_errno(r) ? MAP_FAILED : out;
}

int munmap(void *addr, size_t len)
{
	return set_errno(mm_unmap(addr, len));
}

int mprotect(void *addr, size_t len, int prot)
{
	return set_errno(mm_protect(addr, len, (unsigned)prot));
}

int mlock(const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr & ~PAGE_MASK;
	long r = mm_wire((void *)a, ((uintptr_t)addr + len - a + PAGE_MASK) & ~PAGE_MASK, 0, 0);
	return set_errno(r < 0 ? r : 0);
}

int munlock(const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr & ~PAGE_MASK;
	return set_errno(mm_unwire((void *)a, ((uintptr_t)addr + len - a + PAGE_MASK) & ~PAGE_MASK));
}

static uintptr_t heap_break = HEAP_BASE, heap_mapped = HEAP_BASE;

/* picolibc declares sbrk only outside strict C11; malloc calls it. */
void *sbrk(ptrdiff_t incr);

void *sbrk(ptrdiff_t incr)
{
	uintptr_t old = heap_break, want = heap_break + (uintptr_t)incr;
	if (incr < 0 || want > HEAP_LIMIT) {
		errno = ENOMEM;
		return (void *)-1;
	}
	if (want > heap_mapped) {
		size_t grow = (want - heap_mapped + HEAP_CHUNK - 1) & ~(HEAP_CHUNK - 1);
		void *at;
		if (mm_map((void *)heap_mapped, grow, MM_PROT_READ | MM_PROT_WRITE,
			   MM_MAP_FIXED_NOREPLACE, 0, &at) < 0) {
			errno = ENOMEM;
			return (void *)-1;
		}
		heap_mapped += grow;
	}
	heap_break = want;
	return (void *)old;
}
