/* Just enough ELF64 to load Mica's user programs: validate the header and the
 * program headers of a RISC-V executable and list its loadable segments.
 * Portable and bounds-checked: shared by the kernel (root task) and user code
 * (the root task loads the other boot modules). */
#ifndef MICA_LIB_ELF_H
#define MICA_LIB_ELF_H

#include <stddef.h>
#include <stdint.h>

#define ELF_MAX_SEGMENTS 8

#define ELF_PF_X 1
#define ELF_PF_W 2
#define ELF_PF_R 4

struct elf_segment {
	uint64_t vaddr, memsz;  /* where it goes and how big (bss included) */
	uint64_t offset, filesz; /* what to copy from the file */
	uint32_t flags;          /* ELF_PF_* */
};

struct elf_image {
	uint64_t entry;
	unsigned nsegments;
	struct elf_segment seg[ELF_MAX_SEGMENTS];
};

/* 0, or -MICA_EINVAL / -MICA_ENOEXEC-style errors: -MICA_EINVAL for anything
 * malformed, -MICA_E2BIG for too many segments, -MICA_EFAULT for a segment
 * outside [vmin, vmax), -MICA_EACCES for a writable and executable segment. */
int elf_parse(const void *file, size_t size, uint64_t vmin, uint64_t vmax, struct elf_image *out);

#endif
