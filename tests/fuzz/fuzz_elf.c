/* libFuzzer target for the ELF parser (lib/elf.c). The input is the whole file; the
 * window is the one the root task loads user programs into. libFuzzer's copy of the
 * input is exactly its size, so ASan reports any read past the file.
 *
 * When elf_parse() accepts a file, everything it promises about the result is checked
 * and a broken promise is a __builtin_trap(): the loader copies and maps segments on the
 * strength of these, so each one is a memory-safety property of the loader.
 *
 *   make build/fuzz/fuzz_elf && build/fuzz/fuzz_elf -max_total_time=600 corpus/ */
#include <stddef.h>
#include <stdint.h>

#include "lib/elf.h"
#include "mica/param.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VMIN 0x1000ull
#define VMAX 0x7ff00000ull

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct elf_image img;
	int err = elf_parse(data, size, VMIN, VMAX, &img);
	if (err) {
		CHECK(err < 0);
		return 0;
	}
	CHECK(img.nsegments >= 1 && img.nsegments <= ELF_MAX_SEGMENTS);
	CHECK(img.entry >= VMIN && img.entry < VMAX);
	for (unsigned i = 0; i < img.nsegments; i++) {
		const struct elf_segment *s = &img.seg[i];
		/* Inside [VMIN, VMAX), computed so that no sum can wrap. */
		CHECK(s->vaddr >= VMIN && s->vaddr < VMAX);
		CHECK(s->memsz != 0 && s->memsz <= VMAX - s->vaddr);
		/* The copy comes from inside the file and fits in the segment. */
		CHECK(s->filesz <= s->memsz);
		CHECK(s->offset <= size && s->filesz <= size - s->offset);
		/* Mappable page by page from the file. */
		CHECK((s->vaddr & PAGE_MASK) == (s->offset & PAGE_MASK));
		CHECK(!((s->flags & ELF_PF_W) && (s->flags & ELF_PF_X)));
	}
	return 0;
}
