/* Platform discovery on the VisionFive 2 tree and every variant tools/dump-dtbs.sh
 * makes of it, checked on every field of struct plat_info.
 *
 * test_platform.c pins the stock tree's result to constants and spot-checks some
 * fields of some variants. This file closes the gaps from two other directions, so
 * that it does not restate those constants:
 *
 *  - oracle_*: each tree is read a second time with libfdt, by an independent and
 *    much simpler reading of the discovery rules (docs/ARCHITECTURE.md) that only
 *    handles what these trees contain, and must agree with plat_discover() on every
 *    field. A tree feature the oracle does not handle fails loudly instead of being
 *    guessed at.
 *  - delta_*: each variant must give exactly the stock tree's result with only the
 *    fields its edit should change, changed to the values written here. A variant
 *    that also disturbed, say, the hart list or the reserved ranges fails.
 *
 * Every field is compared, including the unused table entries (plat_discover()
 * clears them). A missing blob is a failure: run `make dtbs` (or tools/dump-dtbs.sh)
 * and point MICA_DTB_DIR at the directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libfdt.h>

#include "lib/dt.h"
#include "lib/platform.h"
#include "tests/host/lib/dt_blobs.h"

#define STOCK "visionfive2.dtb"
#define GiB   (1ull << 30)

/* ---- loading and comparing ---- */

static uint8_t *load_or_fail(const char *name, size_t *len)
{
	uint8_t *b = dtt_load(name, len);
	if (!b)
		fail_msg("blob %s missing from %s: run `make dtbs`", name, dtt_dir());
	return b;
}

/* Discover from the tree cut to its totalsize, so a read past it trips ASan. */
static void discover_or_fail(const char *name, struct plat_info *p)
{
	size_t len;
	uint8_t *file = load_or_fail(name, &len);
	assert_true(len >= 8 && dtt_totalsize(file) <= len);
	uint32_t total = dtt_totalsize(file);
	uint8_t *exact = dtt_copy(file, total);
	int err = plat_discover(exact, total, p);
	if (err)
		fail_msg("%s: plat_discover: %s", name, dt_strerror(err));
	free(exact);
	free(file);
}

static void eq_u64(const char *tree, const char *field, int idx, uint64_t got, uint64_t want)
{
	if (got == want)
		return;
	if (idx >= 0)
		fail_msg("%s: %s[%d] = 0x%llx, expected 0x%llx", tree, field, idx,
		         (unsigned long long)got, (unsigned long long)want);
	fail_msg("%s: %s = 0x%llx, expected 0x%llx", tree, field, (unsigned long long)got,
	         (unsigned long long)want);
}

static void eq_str(const char *tree, const char *field, int idx, const char *got, const char *want)
{
	if (strcmp(got, want) == 0)
		return;
	if (idx >= 0)
		fail_msg("%s: %s[%d] = \"%s\", expected \"%s\"", tree, field, idx, got, want);
	fail_msg("%s: %s = \"%s\", expected \"%s\"", tree, field, got, want);
}

static void eq_ranges(const char *tree, const char *field, const struct plat_range *got,
                      const struct plat_range *want, unsigned cap)
{
	char f[32];
	for (unsigned i = 0; i < cap; i++) {
		snprintf(f, sizeof(f), "%s.base", field);
		eq_u64(tree, f, (int)i, got[i].base, want[i].base);
		snprintf(f, sizeof(f), "%s.size", field);
		eq_u64(tree, f, (int)i, got[i].size, want[i].size);
	}
}

/* Every field; the tables in full, so stale entries past the counts show up too. */
static void assert_plat_equal(const char *tree, const struct plat_info *got,
                              const struct plat_info *want)
{
	eq_str(tree, "model", -1, got->model, want->model);
	eq_u64(tree, "nram", -1, got->nram, want->nram);
	eq_ranges(tree, "ram", got->ram, want->ram, PLAT_MAX_RAM);
	eq_u64(tree, "ram_total", -1, got->ram_total, want->ram_total);
	eq_u64(tree, "nreserved", -1, got->nreserved, want->nreserved);
	eq_ranges(tree, "reserved", got->reserved, want->reserved, PLAT_MAX_RESERVED);

	const struct plat_console *gc = &got->console, *wc = &want->console;
	eq_u64(tree, "console.kind", -1, gc->kind, wc->kind);
	eq_u64(tree, "console.base", -1, gc->base, wc->base);
	eq_u64(tree, "console.size", -1, gc->size, wc->size);
	eq_u64(tree, "console.reg_shift", -1, gc->reg_shift, wc->reg_shift);
	eq_u64(tree, "console.reg_io_width", -1, gc->reg_io_width, wc->reg_io_width);
	eq_u64(tree, "console.clock_hz", -1, gc->clock_hz, wc->clock_hz);
	eq_u64(tree, "console.baud", -1, gc->baud, wc->baud);
	eq_str(tree, "console.path", -1, gc->path, wc->path);
	eq_str(tree, "console.compatible", -1, gc->compatible, wc->compatible);

	eq_u64(tree, "timebase_hz", -1, got->timebase_hz, want->timebase_hz);
	eq_u64(tree, "nharts", -1, got->nharts, want->nharts);
	for (int i = 0; i < PLAT_MAX_HARTS; i++) {
		eq_u64(tree, "harts.hartid", i, got->harts[i].hartid, want->harts[i].hartid);
		eq_u64(tree, "harts.usable", i, got->harts[i].usable, want->harts[i].usable);
		eq_u64(tree, "harts.sstc", i, got->harts[i].sstc, want->harts[i].sstc);
		eq_str(tree, "harts.mmu", i, got->harts[i].mmu, want->harts[i].mmu);
	}
	eq_u64(tree, "nusable", -1, got->nusable, want->nusable);
	eq_u64(tree, "truncated", -1, got->truncated, want->truncated);
}

/* ---- the libfdt oracle ---- */

static uint64_t be_cells(const fdt32_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 32) | fdt32_to_cpu(p[i]);
	return v;
}

static bool prop_is(const void *fdt, int node, const char *name, const char *want)
{
	const char *v = fdt_getprop(fdt, node, name, NULL);
	return v && strcmp(v, want) == 0;
}

static bool enabled(const void *fdt, int node)
{
	const char *s = fdt_getprop(fdt, node, "status", NULL);
	return !s || strcmp(s, "okay") == 0 || strcmp(s, "ok") == 0;
}

/* A u32 property, or `dflt` when absent. */
static uint32_t u32_or(const void *fdt, int node, const char *name, uint32_t dflt)
{
	int len;
	const fdt32_t *v = fdt_getprop(fdt, node, name, &len);
	if (!v)
		return dflt;
	assert_int_equal(len, 4);
	return fdt32_to_cpu(*v);
}

static void set_str(char *dst, size_t cap, const char *src, size_t n)
{
	assert_true(n < cap); /* these trees fit; cutting is test_platform.c's business */
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Every (address, size) of `node`'s reg, with its parent's cell counts, empty ones
 * dropped. These trees never wrap past 2^64 nor overflow a table: asserted. */
static void oracle_reg(const void *fdt, int node, struct plat_range *arr, unsigned *n, unsigned cap)
{
	int parent = fdt_parent_offset(fdt, node);
	assert_true(parent >= 0);
	int ac = fdt_address_cells(fdt, parent), sc = fdt_size_cells(fdt, parent);
	assert_true(ac >= 1 && ac <= 2 && sc >= 0 && sc <= 2);
	int len;
	const fdt32_t *reg = fdt_getprop(fdt, node, "reg", &len);
	if (!reg)
		return;
	assert_int_equal(len % (4 * (ac + sc)), 0);
	for (int i = 0; i < len / 4; i += ac + sc) {
		uint64_t base = be_cells(reg + i, ac), size = be_cells(reg + i + ac, sc);
		if (size == 0)
			continue;
		assert_true(base + size - 1 >= base);
		assert_true(*n < cap);
		arr[*n].base = base;
		arr[*n].size = size;
		(*n)++;
	}
}

static bool isa_piece_is_sstc(const char *p, size_t n)
{
	static const char want[] = "sstc";
	if (n != sizeof(want) - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
		if (c != want[i])
			return false;
	}
	return true;
}

/* riscv,isa: the pieces after the first '_' are multi-letter extensions. */
static bool oracle_sstc(const void *fdt, int cpu)
{
	const char *isa = fdt_getprop(fdt, cpu, "riscv,isa", NULL);
	for (const char *p = isa ? strchr(isa, '_') : NULL; p;) {
		p++;
		size_t n = strcspn(p, "_");
		if (isa_piece_is_sstc(p, n))
			return true;
		p = p[n] ? p + n : NULL;
	}
	int len;
	const char *ext = fdt_getprop(fdt, cpu, "riscv,isa-extensions", &len);
	return ext && fdt_stringlist_contains(ext, len, "sstc");
}

static uint32_t oracle_clock(const void *fdt, int node, const char *name, int hops);

/* The rate of a clock provider: an oscillator that states it, or a controller's "osc"
 * input (the JH7110 clock generators feed the UART core clock from it). */
static uint32_t oracle_provider_hz(const void *fdt, int prov, int hops)
{
	if (u32_or(fdt, prov, "#clock-cells", 1) == 0 &&
	    fdt_getprop(fdt, prov, "clock-frequency", NULL))
		return u32_or(fdt, prov, "clock-frequency", 0);
	if (fdt_stringlist_search(fdt, prov, "clock-names", "osc") >= 0)
		return oracle_clock(fdt, prov, "osc", hops - 1);
	return 0;
}

/* The clock `node` takes under `name` (else its first), walking "clocks" specifiers. */
static uint32_t oracle_clock(const void *fdt, int node, const char *name, int hops)
{
	if (hops <= 0)
		return 0;
	int want = fdt_stringlist_search(fdt, node, "clock-names", name);
	int len;
	const fdt32_t *c = fdt_getprop(fdt, node, "clocks", &len);
	if (!c)
		return 0;
	for (int i = 0, k = 0; i < len / 4; k++) {
		int prov = fdt_node_offset_by_phandle(fdt, fdt32_to_cpu(c[i]));
		if (prov < 0)
			return 0;
		if (k == (want < 0 ? 0 : want))
			return oracle_provider_hz(fdt, prov, hops);
		i += 1 + (int)u32_or(fdt, prov, "#clock-cells", 0);
	}
	return 0;
}

static void oracle_console(const void *fdt, struct plat_console *c)
{
	int chosen = fdt_path_offset(fdt, "/chosen");
	const char *spec = NULL;
	if (chosen >= 0) {
		spec = fdt_getprop(fdt, chosen, "stdout-path", NULL);
		if (!spec)
			spec = fdt_getprop(fdt, chosen, "linux,stdout-path", NULL);
	}
	if (!spec && fdt_get_alias(fdt, "serial0"))
		spec = "serial0";
	if (!spec)
		return;
	size_t plen = strcspn(spec, ":");
	set_str(c->path, sizeof(c->path), spec, plen);
	if (spec[plen] == ':')
		c->baud = (uint32_t)strtoul(spec + plen + 1, NULL, 10);

	/* libfdt resolves a leading alias itself. */
	int node = fdt_path_offset_namelen(fdt, spec, (int)plen);
	if (node < 0)
		return;
	const char *compat = fdt_getprop(fdt, node, "compatible", NULL);
	if (compat)
		set_str(c->compatible, sizeof(c->compatible), compat, strlen(compat));
	enum plat_console_kind kind = PLAT_CONSOLE_SBI;
	if (fdt_node_check_compatible(fdt, node, "ns16550a") == 0 ||
	    fdt_node_check_compatible(fdt, node, "ns16550") == 0)
		kind = PLAT_CONSOLE_NS16550A;
	else if (fdt_node_check_compatible(fdt, node, "snps,dw-apb-uart") == 0)
		kind = PLAT_CONSOLE_DW_APB_UART;
	if (kind == PLAT_CONSOLE_SBI || !enabled(fdt, node))
		return;

	struct plat_range r[1];
	unsigned n = 0;
	oracle_reg(fdt, node, r, &n, 1);
	assert_int_equal(n, 1);
	/* Every bus above the UART must map its children one to one ("ranges;"). */
	for (int bus = fdt_parent_offset(fdt, node); bus > 0; bus = fdt_parent_offset(fdt, bus)) {
		int len = -1;
		assert_non_null(fdt_getprop(fdt, bus, "ranges", &len));
		assert_int_equal(len, 0);
	}
	uint32_t shift = u32_or(fdt, node, "reg-shift", 0);
	uint32_t width = u32_or(fdt, node, "reg-io-width", 1);
	if ((width != 1 && width != 4) || (width == 4 && shift < 2) || shift > 4 ||
	    r[0].size < (8u << shift))
		return;
	c->kind = kind;
	c->base = r[0].base;
	c->size = r[0].size;
	c->reg_shift = shift;
	c->reg_io_width = width;
	c->clock_hz = u32_or(fdt, node, "clock-frequency", 0);
	if (!c->clock_hz)
		c->clock_hz = oracle_clock(fdt, node, "baudclk", 4);
}

static void oracle(const void *fdt, struct plat_info *w)
{
	memset(w, 0, sizeof(*w));
	const char *model = fdt_getprop(fdt, 0, "model", NULL);
	assert_non_null(model);
	set_str(w->model, sizeof(w->model), model, strlen(model));

	for (int n = fdt_next_node(fdt, -1, NULL); n >= 0; n = fdt_next_node(fdt, n, NULL)) {
		if (prop_is(fdt, n, "device_type", "memory") && enabled(fdt, n))
			oracle_reg(fdt, n, w->ram, &w->nram, PLAT_MAX_RAM);
	}
	for (unsigned i = 0; i < w->nram; i++)
		w->ram_total += w->ram[i].size;

	for (int i = 0; i < fdt_num_mem_rsv(fdt); i++) {
		uint64_t base, size;
		assert_int_equal(fdt_get_mem_rsv(fdt, i, &base, &size), 0);
		if (size == 0)
			continue;
		assert_true(w->nreserved < PLAT_MAX_RESERVED);
		w->reserved[w->nreserved].base = base;
		w->reserved[w->nreserved++].size = size;
	}
	int rm = fdt_path_offset(fdt, "/reserved-memory");
	int child;
	if (rm >= 0) {
		fdt_for_each_subnode(child, fdt, rm)
		    oracle_reg(fdt, child, w->reserved, &w->nreserved, PLAT_MAX_RESERVED);
	}

	oracle_console(fdt, &w->console);

	int cpus = fdt_path_offset(fdt, "/cpus");
	assert_true(cpus >= 0);
	/* The trees state it on /cpus, as 4 bytes; other places are test_platform.c's. */
	w->timebase_hz = u32_or(fdt, cpus, "timebase-frequency", 0);
	assert_int_equal(fdt_address_cells(fdt, cpus), 1);
	fdt_for_each_subnode(child, fdt, cpus)
	{
		if (!prop_is(fdt, child, "device_type", "cpu"))
			continue;
		assert_true(w->nharts < PLAT_MAX_HARTS);
		struct plat_hart *h = &w->harts[w->nharts++];
		h->hartid = u32_or(fdt, child, "reg", UINT32_MAX);
		const char *mmu = fdt_getprop(fdt, child, "mmu-type", NULL);
		if (mmu)
			set_str(h->mmu, sizeof(h->mmu), mmu, strlen(mmu));
		h->usable = enabled(fdt, child) && mmu &&
		            (!strcmp(mmu, "riscv,sv39") || !strcmp(mmu, "riscv,sv48") ||
		             !strcmp(mmu, "riscv,sv57"));
		h->sstc = oracle_sstc(fdt, child);
		w->nusable += h->usable;
	}
}

static void test_oracle(void **state)
{
	const char *name = *state;
	size_t len;
	uint8_t *file = load_or_fail(name, &len);
	assert_int_equal(fdt_check_header(file), 0);
	struct plat_info got, want;
	discover_or_fail(name, &got);
	oracle(file, &want);
	assert_plat_equal(name, &got, &want);
	free(file);
}

/* ---- the stock tree, as stored ---- */

/* What the oracle and the deltas below take for granted about tests/data's tree. If
 * the blob is ever replaced, these say which expectation moved. */
static void test_stock_tree_facts(void **state)
{
	(void)state;
	size_t len;
	uint8_t *fdt = load_or_fail(STOCK, &len);
	/* Nothing reserved: no memreserve entry, no /reserved-memory. */
	assert_int_equal(fdt_num_mem_rsv(fdt), 0);
	assert_int_equal(fdt_path_offset(fdt, "/reserved-memory"), -FDT_ERR_NOTFOUND);
	/* The console is the serial0 alias, at 115200 baud. */
	assert_string_equal(fdt_getprop(fdt, fdt_path_offset(fdt, "/chosen"), "stdout-path", NULL),
	                    "serial0:115200n8");
	assert_string_equal(fdt_get_alias(fdt, "serial0"), "/soc/serial@10000000");
	/* 4 MHz timebase, on /cpus only. */
	int cpus = fdt_path_offset(fdt, "/cpus");
	assert_int_equal(u32_or(fdt, cpus, "timebase-frequency", 0), 4000000);
	/* No hart lists sstc: the U74 predates it. The raw strings are checked here, not
	 * through the oracle's parser, so a bug shared with lib/platform.c cannot hide. */
	for (int i = 0; i < 5; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/cpus/cpu@%d", i);
		int cpu = fdt_path_offset(fdt, path);
		assert_true(cpu >= 0);
		const char *isa = fdt_getprop(fdt, cpu, "riscv,isa", NULL);
		assert_non_null(isa);
		assert_null(strstr(isa, "sstc"));
		assert_null(strstr(isa, "SSTC"));
		int n = fdt_stringlist_count(fdt, cpu, "riscv,isa-extensions");
		assert_true(n > 0);
		assert_true(fdt_stringlist_search(fdt, cpu, "riscv,isa-extensions", "sstc") < 0);
		/* cpu@0 is the S7: disabled, no MMU; the U74s have Sv39 and no status (okay). */
		const char *status = fdt_getprop(fdt, cpu, "status", NULL);
		const char *mmu = fdt_getprop(fdt, cpu, "mmu-type", NULL);
		if (i == 0) {
			assert_non_null(status);
			assert_string_equal(status, "disabled");
			assert_null(mmu);
		} else {
			assert_null(status);
			assert_non_null(mmu);
			assert_string_equal(mmu, "riscv,sv39");
		}
	}
	free(fdt);
}

/* ---- each variant against the stock result ---- */

struct variant {
	const char *name;
	void (*edit)(struct plat_info *w); /* from the stock result to this tree's */
};

/* U-Boot's EEPROM fixup: one bank, twice as big. */
static void edit_8G(struct plat_info *w)
{
	w->ram[0].size = 8 * GiB;
	w->ram_total = 8 * GiB;
}

/* Two banks in one reg, in reg order, with the hole between them left out. */
static void edit_2banks(struct plat_info *w)
{
	w->nram = 2;
	w->ram[0].base = 0x40000000;
	w->ram[0].size = 4 * GiB;
	w->ram[1].base = 0x240000000ull;
	w->ram[1].size = 4 * GiB;
	w->ram_total = 8 * GiB;
}

/* The S7 now claims Sv39, which is recorded, but it stays disabled: still unusable. */
static void edit_s7_sv39(struct plat_info *w)
{
	strcpy(w->harts[0].mmu, "riscv,sv39");
}

/* A UART without a driver: SBI console, no MMIO details, the node still named and the
 * baud rate still parsed from the options. */
static void edit_acme_uart(struct plat_info *w)
{
	memset(&w->console, 0, sizeof(w->console));
	w->console.kind = PLAT_CONSOLE_SBI;
	strcpy(w->console.path, "/soc/serial@12340000");
	strcpy(w->console.compatible, "acme,uart7");
	w->console.baud = 9600;
}

/* No stdout-path: the serial0 alias, the same UART the stock tree's "serial0:115200n8"
 * names, so only the baud rate goes (no options to read it from). */
static void edit_no_stdout(struct plat_info *w)
{
	w->console.baud = 0;
}

static void test_delta(void **state)
{
	const struct variant *v = *state;
	struct plat_info stock, got, want;
	discover_or_fail(STOCK, &stock);
	discover_or_fail(v->name, &got);
	want = stock;
	v->edit(&want);
	assert_plat_equal(v->name, &got, &want);
}

/* The second bank is new to the tree set: its whole result is written out here. */
static void test_2banks_exact(void **state)
{
	(void)state;
	struct plat_info p;
	discover_or_fail("visionfive2-2banks.dtb", &p);
	assert_int_equal(p.nram, 2);
	assert_true(p.ram[0].base == 0x40000000 && p.ram[0].size == 4 * GiB);
	assert_true(p.ram[1].base == 0x240000000ull && p.ram[1].size == 4 * GiB);
	assert_true(p.ram_total == 8 * GiB);
	assert_int_equal(p.nreserved, 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_DW_APB_UART);
	assert_true(p.console.base == 0x10000000 && p.console.size == 0x10000);
	assert_int_equal(p.console.reg_shift, 2);
	assert_int_equal(p.console.reg_io_width, 4);
	assert_int_equal(p.console.clock_hz, 24000000);
	assert_int_equal(p.console.baud, 115200);
	assert_string_equal(p.console.path, "serial0");
	assert_string_equal(p.console.compatible, "starfive,jh7110-uart");
	assert_true(p.timebase_hz == 4000000);
	assert_int_equal(p.nharts, 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(p.harts[i].hartid, i);
		assert_int_equal(p.harts[i].usable, i != 0);
		assert_false(p.harts[i].sstc);
		assert_string_equal(p.harts[i].mmu, i ? "riscv,sv39" : "");
	}
	assert_int_equal(p.nusable, 4);
	assert_false(p.truncated);
}

/* Named per tree, so the TAP output says which tree failed. */
#define ORACLE(file)                                                                               \
	{                                                                                          \
		"oracle_" file, test_oracle, NULL, NULL, (void *)(file)                            \
	}
#define DELTA(file, edit)                                                                          \
	{                                                                                          \
		"delta_" file, test_delta, NULL, NULL, &(struct variant)                           \
		{                                                                                  \
			file, edit                                                                 \
		}                                                                                  \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stock_tree_facts),
	    cmocka_unit_test(test_2banks_exact),
	    ORACLE(STOCK),
	    ORACLE("visionfive2-8G.dtb"),
	    ORACLE("visionfive2-2banks.dtb"),
	    ORACLE("visionfive2-s7-sv39.dtb"),
	    ORACLE("visionfive2-acme-uart.dtb"),
	    ORACLE("visionfive2-no-stdout.dtb"),
	    DELTA("visionfive2-8G.dtb", edit_8G),
	    DELTA("visionfive2-2banks.dtb", edit_2banks),
	    DELTA("visionfive2-s7-sv39.dtb", edit_s7_sv39),
	    DELTA("visionfive2-acme-uart.dtb", edit_acme_uart),
	    DELTA("visionfive2-no-stdout.dtb", edit_no_stdout),
	};
	return cmocka_run_group_tests_name("vf2_variants", tests, NULL, NULL);
}
