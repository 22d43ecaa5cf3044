/* Host tests of the ELF loader's parser (lib/elf.c).
 *
 * Every file is assembled byte by byte here from a small description (header fields
 * and program headers), written into a heap block of exactly the file's size, so ASan
 * catches a read past its end. One valid executable is checked field by field; then
 * each rejection path of elf_parse() is hit with the smallest change to that file and
 * must give its exact error code. Whatever elf_parse() accepts is also checked against
 * the promises it makes (the same ones tests/fuzz/fuzz_elf.c traps on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/elf.h"
#include "mica/errno.h"

/* The window the root task loads user programs into (as fuzz_elf uses). */
#define VMIN 0x1000ull
#define VMAX 0x7ff00000ull

#define PT_NULL      0
#define PT_LOAD      1
#define PT_NOTE      4
#define PT_GNU_STACK 0x6474e551u

#define EH_SIZE 64
#define PH_SIZE 56
#define MAX_PH  12

struct phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

/* An ELF64 file as a list of fields; build() lays it out. */
struct elf_desc {
	uint8_t ident[16];
	uint16_t type, machine;
	uint32_t version;
	uint64_t entry, phoff;
	uint16_t phentsize, phnum;
	struct phdr ph[MAX_PH];
	size_t size; /* of the whole file */
};

static void put(uint8_t *buf, size_t size, uint64_t off, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		/* Fields the description places outside the file are simply not there. */
		if (off + i < size)
			buf[off + i] = (uint8_t)(v >> (8 * i));
	}
}

/* The file in a heap block of exactly its size (one guard byte for an empty one, which
 * the parser must not read: ASan cannot see it, but a size-0 file is rejected first). */
static uint8_t *build(const struct elf_desc *d)
{
	uint8_t *f = calloc(1, d->size ? d->size : 1);
	assert_non_null(f);
	size_t n = d->size;
	for (unsigned i = 0; i < 16; i++)
		put(f, n, i, d->ident[i], 1);
	put(f, n, 16, d->type, 2);
	put(f, n, 18, d->machine, 2);
	put(f, n, 20, d->version, 4);
	put(f, n, 24, d->entry, 8);
	put(f, n, 32, d->phoff, 8);
	put(f, n, 40, 0, 8); /* e_shoff: no section headers */
	put(f, n, 48, 0, 4); /* e_flags */
	put(f, n, 52, EH_SIZE, 2);
	put(f, n, 54, d->phentsize, 2);
	put(f, n, 56, d->phnum, 2);
	for (unsigned i = 0; i < d->phnum && i < MAX_PH; i++) {
		const struct phdr *p = &d->ph[i];
		uint64_t at = d->phoff + (uint64_t)i * d->phentsize;
		if (at < d->phoff)
			break; /* a table that wraps is not written at all */
		put(f, n, at + 0, p->type, 4);
		put(f, n, at + 4, p->flags, 4);
		put(f, n, at + 8, p->offset, 8);
		put(f, n, at + 16, p->vaddr, 8);
		put(f, n, at + 24, p->paddr, 8);
		put(f, n, at + 32, p->filesz, 8);
		put(f, n, at + 40, p->memsz, 8);
		put(f, n, at + 48, p->align, 8);
	}
	/* Something recognisable in the text, so a copy from the wrong offset would show. */
	put(f, n, 0x100, 0x00008067, 4); /* ret */
	return f;
}

/* A minimal executable: one read-execute segment mapping the first 0x1800 bytes of the
 * file (headers included, as linkers do) at 0x10000, entry 0x10100. */
static struct elf_desc minimal(void)
{
	struct elf_desc d;
	memset(&d, 0, sizeof(d));
	memcpy(d.ident, "\177ELF", 4);
	d.ident[4] = 2;  /* ELFCLASS64 */
	d.ident[5] = 1;  /* ELFDATA2LSB */
	d.ident[6] = 1;  /* EV_CURRENT */
	d.type = 2;      /* ET_EXEC */
	d.machine = 243; /* EM_RISCV */
	d.version = 1;
	d.entry = 0x10100;
	d.phoff = EH_SIZE;
	d.phentsize = PH_SIZE;
	d.phnum = 1;
	d.ph[0] = (struct phdr){PT_LOAD, ELF_PF_R | ELF_PF_X, 0, 0x10000, 0x10000, 0x1800, 0x1800,
	                        0x1000};
	d.size = 0x1800;
	return d;
}

/* A text segment plus a data segment whose bss runs past its file contents, the usual
 * shape of a linked program. */
static struct elf_desc text_and_data(void)
{
	struct elf_desc d = minimal();
	d.phnum = 2;
	d.ph[0].filesz = d.ph[0].memsz = 0x1000;
	d.ph[1] = (struct phdr){
	    PT_LOAD, ELF_PF_R | ELF_PF_W, 0x1000, 0x21000, 0x21000, 0x800, 0x3000, 0x1000};
	return d;
}

/* What elf_parse() promises about a file it accepts. */
static void check_promises(const struct elf_image *img, size_t size)
{
	assert_true(img->nsegments >= 1 && img->nsegments <= ELF_MAX_SEGMENTS);
	assert_true(img->entry >= VMIN && img->entry < VMAX);
	for (unsigned i = 0; i < img->nsegments; i++) {
		const struct elf_segment *s = &img->seg[i];
		assert_true(s->vaddr >= VMIN && s->vaddr < VMAX);
		assert_true(s->memsz > 0 && s->memsz <= VMAX - s->vaddr);
		assert_true(s->filesz <= s->memsz);
		assert_true(s->offset <= size && s->filesz <= size - s->offset);
		assert_true((s->vaddr & 0xfff) == (s->offset & 0xfff));
		assert_false((s->flags & ELF_PF_W) && (s->flags & ELF_PF_X));
	}
}

static int parse_win(const struct elf_desc *d, uint64_t vmin, uint64_t vmax, struct elf_image *img)
{
	uint8_t *f = build(d);
	int err = elf_parse(f, d->size, vmin, vmax, img);
	free(f);
	return err;
}

static int parse(const struct elf_desc *d, struct elf_image *img)
{
	int err = parse_win(d, VMIN, VMAX, img);
	if (err == 0)
		check_promises(img, d->size);
	return err;
}

static void assert_seg(const struct elf_segment *s, uint64_t vaddr, uint64_t memsz, uint64_t offset,
                       uint64_t filesz, uint32_t flags)
{
	if (s->vaddr != vaddr || s->memsz != memsz || s->offset != offset || s->filesz != filesz ||
	    s->flags != flags)
		fail_msg("segment va 0x%llx mem 0x%llx off 0x%llx file 0x%llx flags %u, expected "
		         "va 0x%llx mem 0x%llx off 0x%llx file 0x%llx flags %u",
		         (unsigned long long)s->vaddr, (unsigned long long)s->memsz,
		         (unsigned long long)s->offset, (unsigned long long)s->filesz, s->flags,
		         (unsigned long long)vaddr, (unsigned long long)memsz,
		         (unsigned long long)offset, (unsigned long long)filesz, flags);
}

/* ---- accepted files ---- */

static void test_minimal(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	struct elf_image img;
	assert_int_equal(parse(&d, &img), 0);
	assert_true(img.entry == 0x10100);
	assert_int_equal(img.nsegments, 1);
	assert_seg(&img.seg[0], 0x10000, 0x1800, 0, 0x1800, ELF_PF_R | ELF_PF_X);
	/* The rest of the table is left clear. */
	for (unsigned i = 1; i < ELF_MAX_SEGMENTS; i++)
		assert_seg(&img.seg[i], 0, 0, 0, 0, 0);
}

static void test_text_and_data(void **state)
{
	(void)state;
	struct elf_desc d = text_and_data();
	struct elf_image img;
	assert_int_equal(parse(&d, &img), 0);
	assert_int_equal(img.nsegments, 2);
	assert_seg(&img.seg[0], 0x10000, 0x1000, 0, 0x1000, ELF_PF_R | ELF_PF_X);
	assert_seg(&img.seg[1], 0x21000, 0x3000, 0x1000, 0x800, ELF_PF_R | ELF_PF_W);
}

/* Non-load headers are skipped, as is a load segment with nothing to map; a bigger
 * phentsize (allowed by the format) is honoured as the stride. */
static void test_skipped_headers(void **state)
{
	(void)state;
	struct elf_desc d = text_and_data();
	d.ph[2] = d.ph[1];
	d.ph[1] = (struct phdr){PT_NOTE, ELF_PF_R, 0x200, 0x10200, 0x10200, 0x20, 0x20, 4};
	d.ph[3] = (struct phdr){PT_GNU_STACK, ELF_PF_R | ELF_PF_W | ELF_PF_X, 0, 0, 0, 0, 0, 16};
	/* memsz 0: skipped before any check, even with a nonsense offset and address. */
	d.ph[4] = (struct phdr){PT_LOAD, ELF_PF_W | ELF_PF_X, ~0ull, ~0ull, 0, 0, 0, 0};
	/* A processor-specific type whose low byte is PT_LOAD's: not a load segment. */
	d.ph[5] = (struct phdr){0x70000001, ELF_PF_R, 0, 0, 0, 0x10, 0x10, 4};
	d.phnum = 6;
	struct elf_image img;
	assert_int_equal(parse(&d, &img), 0);
	assert_int_equal(img.nsegments, 2);
	assert_seg(&img.seg[1], 0x21000, 0x3000, 0x1000, 0x800, ELF_PF_R | ELF_PF_W);

	d.phentsize = 64;
	assert_int_equal(parse(&d, &img), 0);
	assert_int_equal(img.nsegments, 2);
	assert_seg(&img.seg[1], 0x21000, 0x3000, 0x1000, 0x800, ELF_PF_R | ELF_PF_W);
}

/* Right up to the edges: the window's first and last bytes, a segment ending exactly at
 * vmax and at the end of the file, the last entry address, a table filling the file. */
static void test_edges(void **state)
{
	(void)state;
	struct elf_image img;
	struct elf_desc d = minimal();
	d.ph[0].vaddr = VMIN;
	d.entry = VMIN;
	assert_int_equal(parse(&d, &img), 0);

	d = minimal();
	d.ph[0].vaddr = VMAX - 0x2000;
	d.ph[0].memsz = 0x2000;
	d.entry = VMAX - 1;
	assert_int_equal(parse(&d, &img), 0);
	assert_seg(&img.seg[0], VMAX - 0x2000, 0x2000, 0, 0x1800, ELF_PF_R | ELF_PF_X);

	/* bss up to vmax; the file contents end exactly at the end of the file. */
	d = minimal();
	d.ph[0].memsz = VMAX - 0x10000;
	assert_int_equal(parse(&d, &img), 0);

	/* The program header table as the last bytes of the file. */
	d = minimal();
	d.phoff = d.size - PH_SIZE;
	assert_int_equal(parse(&d, &img), 0);

	/* Exactly ELF_MAX_SEGMENTS segments. */
	d = minimal();
	d.phnum = ELF_MAX_SEGMENTS;
	for (unsigned i = 0; i < ELF_MAX_SEGMENTS; i++) {
		d.ph[i] = d.ph[0];
		d.ph[i].vaddr = 0x10000 + 0x100000 * i;
	}
	assert_int_equal(parse(&d, &img), 0);
	assert_int_equal(img.nsegments, ELF_MAX_SEGMENTS);
	assert_true(img.seg[ELF_MAX_SEGMENTS - 1].vaddr == 0x10000 + 0x100000 * 7);
}

/* ---- rejected files ---- */

static void expect(const struct elf_desc *d, int want)
{
	struct elf_image img;
	int got = parse(d, &img);
	if (got != want)
		fail_msg("elf_parse returned %d, expected %d", got, want);
}

static void test_short_file(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	for (size_t n = 0; n < EH_SIZE; n++) {
		d.size = n;
		expect(&d, -MICA_EINVAL);
	}
	/* A NULL file of size 0 is not touched. */
	struct elf_image img;
	assert_int_equal(elf_parse(NULL, 0, VMIN, VMAX, &img), -MICA_EINVAL);
}

static void test_bad_ident(void **state)
{
	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		struct elf_desc d = minimal();
		d.ident[i] ^= 0x20;
		expect(&d, -MICA_EINVAL);
	}
	struct elf_desc d = minimal();
	d.ident[4] = 1; /* ELFCLASS32 */
	expect(&d, -MICA_EINVAL);
	d.ident[4] = 0;
	expect(&d, -MICA_EINVAL);
	d = minimal();
	d.ident[5] = 2; /* big endian */
	expect(&d, -MICA_EINVAL);
	d = minimal();
	d.ident[6] = 0; /* EI_VERSION */
	expect(&d, -MICA_EINVAL);
}

static void test_bad_machine_and_type(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	d.machine = 62; /* x86-64 */
	expect(&d, -MICA_EINVAL);
	d.machine = 243 | 0x100; /* both bytes are read */
	expect(&d, -MICA_EINVAL);
	d = minimal();
	d.type = 3; /* ET_DYN: a PIE or shared object */
	expect(&d, -MICA_EINVAL);
	d.type = 1; /* ET_REL */
	expect(&d, -MICA_EINVAL);
	d.type = 2 | 0x100;
	expect(&d, -MICA_EINVAL);
}

static void test_phdrs_outside_file(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	d.phoff = d.size + 1;
	expect(&d, -MICA_EINVAL);
	/* Starts inside, one byte short of the last entry. */
	d.phoff = d.size - PH_SIZE + 1;
	expect(&d, -MICA_EINVAL);
	/* phnum * phentsize beyond the file. */
	d = minimal();
	d.phnum = (uint16_t)((d.size - EH_SIZE) / PH_SIZE + 1);
	for (unsigned i = 1; i < d.phnum && i < MAX_PH; i++)
		d.ph[i].type = PT_NULL;
	expect(&d, -MICA_EINVAL);
	/* An offset that would wrap a 64-bit sum. */
	d = minimal();
	d.phoff = ~0ull - 8;
	expect(&d, -MICA_EINVAL);
	/* Entries smaller than an ELF64 program header. */
	d = minimal();
	d.phentsize = PH_SIZE - 1;
	expect(&d, -MICA_EINVAL);
	d.phentsize = 0;
	expect(&d, -MICA_EINVAL);
}

static void test_filesz_over_memsz(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	d.ph[0].memsz = d.ph[0].filesz - 1;
	expect(&d, -MICA_EINVAL);
}

static void test_segment_outside_file(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	d.ph[0].filesz = d.size + 1; /* one byte past the end */
	d.ph[0].memsz = 0x2000;
	expect(&d, -MICA_EINVAL);
	d = minimal();
	d.ph[0].offset = d.ph[0].vaddr = 0x2000; /* starts past the end, congruent */
	d.ph[0].filesz = 0;
	d.entry = 0x2000;
	expect(&d, -MICA_EINVAL);
	/* Far past the end. */
	d = minimal();
	d.ph[0].offset = ~0ull & ~0xfffull;
	expect(&d, -MICA_EINVAL);
	/* offset + filesz wraps around 2^64 to 0. */
	d = minimal();
	d.ph[0].offset = 0x1000;
	d.ph[0].vaddr = 0x11000;
	d.ph[0].filesz = d.ph[0].memsz = 0ull - 0x1000;
	expect(&d, -MICA_EINVAL);
}

static void test_misaligned(void **state)
{
	(void)state;
	struct elf_desc d = text_and_data();
	d.ph[1].vaddr += 8; /* offset 0x1000, vaddr 0x21008: not congruent mod the page */
	expect(&d, -MICA_EINVAL);
	d = text_and_data();
	d.ph[1].offset = 0x1800; /* vaddr 0x21000 */
	d.ph[1].filesz = 0;
	expect(&d, -MICA_EINVAL);
	/* Congruent but not page aligned is fine: only the page offset must agree. */
	d = text_and_data();
	d.ph[1].offset += 0x10;
	d.ph[1].vaddr += 0x10;
	d.ph[1].filesz -= 0x10;
	struct elf_image img;
	assert_int_equal(parse(&d, &img), 0);
}

static void test_outside_window(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	d.ph[0].vaddr = 0; /* below vmin */
	expect(&d, -MICA_EFAULT);
	d.ph[0].vaddr = VMAX; /* at vmax */
	expect(&d, -MICA_EFAULT);
	d.ph[0].vaddr = VMAX - 0x1000; /* 0x1800 bytes from here run past vmax */
	expect(&d, -MICA_EFAULT);
	d.ph[0].vaddr = 0x10000;
	d.ph[0].memsz = VMAX - 0x10000 + 1;
	expect(&d, -MICA_EFAULT);
	/* vaddr + memsz wraps around 2^64 to land back inside the window. */
	d.ph[0].memsz = 0ull - 0x8000; /* 0x10000 + memsz = 0x8000 */
	expect(&d, -MICA_EFAULT);
	d = minimal();
	d.ph[0].vaddr = ~0ull & ~0xfffull;
	d.ph[0].memsz = 0x2000;
	expect(&d, -MICA_EFAULT);
	/* The window is the caller's: the same file fails in a smaller one. */
	d = minimal();
	struct elf_image img;
	assert_int_equal(parse_win(&d, 0x10000, 0x11000, &img), -MICA_EFAULT);
	assert_int_equal(parse_win(&d, 0x11000, 0x20000, &img), -MICA_EFAULT);
}

static void test_write_and_execute(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	d.ph[0].flags = ELF_PF_R | ELF_PF_W | ELF_PF_X;
	expect(&d, -MICA_EACCES);
	d.ph[0].flags = ELF_PF_W | ELF_PF_X;
	expect(&d, -MICA_EACCES);
	d = text_and_data();
	d.ph[1].flags |= ELF_PF_X;
	expect(&d, -MICA_EACCES);
}

static void test_too_many_segments(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	d.phnum = ELF_MAX_SEGMENTS + 1;
	for (unsigned i = 0; i < d.phnum; i++) {
		d.ph[i] = d.ph[0];
		d.ph[i].vaddr = 0x10000 + 0x100000 * i;
	}
	expect(&d, -MICA_E2BIG);
	/* One of them empty: it does not count. */
	d.ph[3].memsz = 0;
	d.ph[3].filesz = 0;
	struct elf_image img;
	assert_int_equal(parse(&d, &img), 0);
	assert_int_equal(img.nsegments, ELF_MAX_SEGMENTS);
}

static void test_nothing_to_load(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	d.phnum = 0;
	expect(&d, -MICA_EINVAL);
	d = minimal();
	d.ph[0].type = PT_NOTE;
	expect(&d, -MICA_EINVAL);
	d = minimal();
	d.ph[0].filesz = d.ph[0].memsz = 0;
	expect(&d, -MICA_EINVAL);
}

static void test_entry_outside_window(void **state)
{
	(void)state;
	struct elf_desc d = minimal();
	d.entry = VMIN - 1;
	expect(&d, -MICA_EINVAL);
	d.entry = 0;
	expect(&d, -MICA_EINVAL);
	d.entry = VMAX;
	expect(&d, -MICA_EINVAL);
	d.entry = ~0ull;
	expect(&d, -MICA_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_minimal),
	    cmocka_unit_test(test_text_and_data),
	    cmocka_unit_test(test_skipped_headers),
	    cmocka_unit_test(test_edges),
	    cmocka_unit_test(test_short_file),
	    cmocka_unit_test(test_bad_ident),
	    cmocka_unit_test(test_bad_machine_and_type),
	    cmocka_unit_test(test_phdrs_outside_file),
	    cmocka_unit_test(test_filesz_over_memsz),
	    cmocka_unit_test(test_segment_outside_file),
	    cmocka_unit_test(test_misaligned),
	    cmocka_unit_test(test_outside_window),
	    cmocka_unit_test(test_write_and_execute),
	    cmocka_unit_test(test_too_many_segments),
	    cmocka_unit_test(test_nothing_to_load),
	    cmocka_unit_test(test_entry_outside_window),
	};
	return cmocka_run_group_tests_name("elf", tests, NULL, NULL);
}
