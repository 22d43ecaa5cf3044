#include "lib/elf.h"

#include <string.h>

#include "mica/errno.h"
#include "mica/param.h"

#define EM_RISCV 243
#define ET_EXEC 2
#define PT_LOAD 1

static uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int elf_parse(const void *file, size_t size, uint64_t vmin, uint64_t vmax, struct elf_image *out)
{
	const uint8_t *f = file;
	memset(out, 0, sizeof(*out));
	/* ELFCLASS64, little endian, version 1 */
	if (size < 64 || memcmp(f, "\177ELF", 4) || f[4] != 2 || f[5] != 1 || f[6] != 1)
		return -MICA_EINVAL;
	if (rd(f + 16, 2) != ET_EXEC || rd(f + 18, 2) != EM_RISCV)
		return -MICA_EINVAL;
	uint64_t phoff = rd(f + 32, 8), phentsize = rd(f + 54, 2), phnum = rd(f + 56, 2);
	if (phentsize < 56 || phoff > size || phnum > (size - phoff) / phentsize)
		return -MICA_EINVAL;
	out->entry = rd(f + 24, 8);
	for (uint64_t i = 0; i < phnum; i++) {
		const uint8_t *ph = f + phoff + i * phentsize;
		if (rd(ph, 4) != PT_LOAD)
			continue;
		struct elf_segment s = {
			.flags = (uint32_t)rd(ph + 4, 4),
			.offset = rd(ph + 8, 8),
			.vaddr = rd(ph + 16, 8),
			.filesz = rd(ph + 32, 8),
			.memsz = rd(ph + 40, 8),
		};
		if (s.memsz == 0)
			continue;
		if (s.filesz > s.memsz || s.offset > size || s.filesz > size - s.offset)
			return -MICA_EINVAL;
		if ((s.vaddr & PAGE_MASK) != (s.offset & PAGE_MASK))
			return -MICA_EINVAL;
		if (s.vaddr < vmin || s.vaddr >= vmax || s.memsz > vmax - s.vaddr)
			return -MICA_EFAULT;
		if ((s.flags & ELF_PF_W) && (s.flags & ELF_PF_X))
			return -MICA_EACCES;
		if (out->nsegments == ELF_MAX_SEGMENTS)
			return -MICA_E2BIG;
		out->seg[out->nsegments++] = s;
	}
	if (out->nsegments == 0 || out->entry < vmin || out->entry >= vmax)
		return -MICA_EINVAL;
	return 0;
}
