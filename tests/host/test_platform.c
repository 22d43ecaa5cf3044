/* Host tests of platform discovery (lib/platform.c).
 *
 * The real trees (QEMU's dumps, the VisionFive 2 blob and their fdtput/dtc variants
 * from tools/dump-dtbs.sh) are checked field by field against what they contain;
 * small trees built with libfdt cover the rules no real board exercises. */
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

/* Discover from a named blob, passing the whole file as QEMU does (1 MiB buffers). */
static void discover_blob(const char *name, struct plat_info *p)
{
	size_t len;
	uint8_t *b = dtt_load(name, &len);
	if (!b)
		fail_msg("blob %s missing from %s: run `make dtbs`", name, dtt_dir());
	int err = plat_discover(b, len, p);
	if (err)
		fail_msg("%s: plat_discover: %s", name, dt_strerror(err));
	/* The result must not depend on slack after the tree. */
	uint32_t total = dtt_totalsize(b);
	uint8_t *exact = dtt_copy(b, total);
	struct plat_info q;
	assert_int_equal(plat_discover(exact, total, &q), 0);
	assert_memory_equal(p, &q, sizeof(q));
	free(exact);
	free(b);
}

static void assert_range(const struct plat_range *r, uint64_t base, uint64_t size)
{
	if (r->base != base || r->size != size)
		fail_msg("range 0x%llx+0x%llx, expected 0x%llx+0x%llx", (unsigned long long)r->base,
		         (unsigned long long)r->size, (unsigned long long)base,
		         (unsigned long long)size);
}

static void assert_hart(const struct plat_info *p, unsigned i, uint32_t id, bool usable, bool sstc,
                        const char *mmu)
{
	assert_true(i < p->nharts);
	assert_int_equal(p->harts[i].hartid, id);
	assert_int_equal(p->harts[i].usable, usable);
	assert_int_equal(p->harts[i].sstc, sstc);
	assert_string_equal(p->harts[i].mmu, mmu);
	assert_int_equal(plat_hart_usable(p, id), usable);
}

static void assert_console(const struct plat_console *c, enum plat_console_kind kind, uint64_t base,
                           uint64_t size, const char *path, const char *compat)
{
	assert_int_equal(c->kind, kind);
	assert_true(c->base == base);
	assert_true(c->size == size);
	assert_string_equal(c->path, path);
	assert_string_equal(c->compatible, compat);
}

/* ---- QEMU virt ---- */

static void assert_virt_console(const struct plat_console *c)
{
	assert_console(c, PLAT_CONSOLE_NS16550A, 0x10000000, 0x100, "/soc/serial@10000000",
	               "ns16550a");
	assert_int_equal(c->reg_shift, 0);
	assert_int_equal(c->reg_io_width, 1);
	assert_int_equal(c->clock_hz, 3686400); /* QEMU's clock-frequency, 0x384000 */
	assert_int_equal(c->baud, 0);           /* stdout-path carries no options */
}

static void test_virt_128M(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("virt-smp1-128M.dtb", &p);
	assert_string_equal(p.model, "riscv-virtio,qemu");
	assert_int_equal(p.nram, 1);
	assert_range(&p.ram[0], 0x80000000, 0x8000000);
	assert_true(p.ram_total == 0x8000000);
	/* The dumped tree has no reservations: OpenSBI adds its node only when it runs
	 * (see virt-opensbi.dtb), and QEMU writes no memreserve entries. */
	assert_int_equal(p.nreserved, 0);
	assert_virt_console(&p.console);
	assert_true(p.timebase_hz == 10000000);
	assert_int_equal(p.nharts, 1);
	assert_int_equal(p.nusable, 1);
	/* QEMU 7.2 lists _sstc in riscv,isa and calls the MMU sv48. */
	assert_hart(&p, 0, 0, true, true, "riscv,sv48");
	assert_false(p.truncated);
}

static void test_virt_4G(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("virt-smp4-4G.dtb", &p);
	assert_int_equal(p.nram, 1);
	assert_range(&p.ram[0], 0x80000000, 0x100000000ull);
	assert_true(p.ram_total == 0x100000000ull);
	assert_int_equal(p.nreserved, 0);
	assert_virt_console(&p.console);
	assert_true(p.timebase_hz == 10000000);
	assert_int_equal(p.nharts, 4);
	assert_int_equal(p.nusable, 4);
	for (unsigned i = 0; i < 4; i++)
		assert_hart(&p, i, i, true, true, "riscv,sv48");
	assert_false(plat_hart_usable(&p, 4));
	assert_false(p.truncated);
}

static void test_virt_nosstc(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("virt-nosstc.dtb", &p);
	assert_int_equal(p.nram, 1);
	assert_range(&p.ram[0], 0x80000000, 0x10000000);
	assert_int_equal(p.nharts, 1);
	assert_hart(&p, 0, 0, true, false, "riscv,sv48");
}

static void test_virt_opensbi(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("virt-opensbi.dtb", &p);
	assert_int_equal(p.nreserved, 1);
	assert_range(&p.reserved[0], 0x80000000, 0x80000);
	assert_int_equal(p.nram, 1);
	assert_range(&p.ram[0], 0x80000000, 0x8000000);
}

static void test_virt_reserved(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("virt-reserved.dtb", &p);
	/* memreserve entries first, then /reserved-memory children in tree order, decoded
	 * with that node's 1-cell counts; "pool" has no reg and reserves nothing yet. */
	assert_int_equal(p.nreserved, 5);
	assert_range(&p.reserved[0], 0x87f00000, 0x100000);
	assert_range(&p.reserved[1], 0x80000000, 0x20000);
	assert_range(&p.reserved[2], 0x80020000, 0x20000);
	assert_range(&p.reserved[3], 0x84000000, 0x1000);
	assert_range(&p.reserved[4], 0x84010000, 0x2000);
	assert_false(p.truncated);
}

static void test_virt_missing_uart(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("virt-missing-uart.dtb", &p);
	assert_console(&p.console, PLAT_CONSOLE_SBI, 0, 0, "/soc/serial@20000000", "");
	assert_int_equal(p.console.baud, 38400);
}

/* ---- QEMU sifive_u ---- */

static void test_sifive_u(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("sifive_u-smp5.dtb", &p);
	assert_string_equal(p.model, "SiFive HiFive Unleashed A00");
	assert_int_equal(p.nram, 1);
	assert_range(&p.ram[0], 0x80000000, 0x40000000);
	assert_int_equal(p.nreserved, 0);
	assert_true(p.timebase_hz == 1000000);
	/* Hart 0 is the E51: status okay, but no mmu-type. */
	assert_int_equal(p.nharts, 5);
	assert_int_equal(p.nusable, 4);
	assert_hart(&p, 0, 0, false, false, "");
	for (unsigned i = 1; i < 5; i++)
		assert_hart(&p, i, i, true, false, "riscv,sv48");
	/* No driver for sifive,uart0: SBI console, with the device still named. */
	assert_console(&p.console, PLAT_CONSOLE_SBI, 0, 0, "/soc/serial@10010000", "sifive,uart0");
	assert_int_equal(p.console.baud, 0);
}

/* ---- VisionFive 2 ---- */

static void assert_vf2_harts(const struct plat_info *p, const char *s7_mmu)
{
	assert_true(p->timebase_hz == 4000000);
	assert_int_equal(p->nharts, 5);
	assert_int_equal(p->nusable, 4);
	/* cpu@0 is the S7 monitor core, status "disabled". */
	assert_hart(p, 0, 0, false, false, s7_mmu);
	for (unsigned i = 1; i < 5; i++)
		assert_hart(p, i, i, true, false, "riscv,sv39");
}

static void assert_vf2_uart(const struct plat_console *c, const char *path, uint32_t baud)
{
	assert_console(c, PLAT_CONSOLE_DW_APB_UART, 0x10000000, 0x10000, path,
	               "starfive,jh7110-uart");
	assert_int_equal(c->reg_shift, 2);
	assert_int_equal(c->reg_io_width, 4);
	/* No clock-frequency in the node: the rate comes from the clock generator's
	 * "osc" input, the 24 MHz fixed oscillator. */
	assert_int_equal(c->clock_hz, 24000000);
	assert_int_equal(c->baud, baud);
}

static void test_visionfive2(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("visionfive2.dtb", &p);
	assert_string_equal(p.model, "StarFive VisionFive 2 v1.3B");
	assert_int_equal(p.nram, 1);
	assert_range(&p.ram[0], 0x40000000, 0x100000000ull);
	assert_true(p.ram_total == 0x100000000ull);
	assert_int_equal(p.nreserved, 0);
	assert_vf2_uart(&p.console, "serial0", 115200);
	assert_vf2_harts(&p, "");
	assert_false(p.truncated);
}

static void test_visionfive2_8G(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("visionfive2-8G.dtb", &p);
	assert_int_equal(p.nram, 1);
	assert_range(&p.ram[0], 0x40000000, 0x200000000ull);
	assert_true(p.ram_total == 0x200000000ull);
	assert_vf2_uart(&p.console, "serial0", 115200);
	assert_vf2_harts(&p, "");
}

static void test_visionfive2_s7_sv39(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("visionfive2-s7-sv39.dtb", &p);
	assert_vf2_harts(&p, "riscv,sv39");
}

static void test_visionfive2_acme_uart(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("visionfive2-acme-uart.dtb", &p);
	assert_console(&p.console, PLAT_CONSOLE_SBI, 0, 0, "/soc/serial@12340000", "acme,uart7");
	assert_int_equal(p.console.baud, 9600);
	assert_int_equal(p.console.clock_hz, 0);
}

static void test_visionfive2_no_stdout(void **state)
{
	(void)state;
	struct plat_info p;
	discover_blob("visionfive2-no-stdout.dtb", &p);
	assert_vf2_uart(&p.console, "serial0", 0);
}

/* ---- synthetic trees ---- */

static void *tree_new(void)
{
	void *fdt = calloc(1, 65536);
	assert_int_equal(fdt_create_empty_tree(fdt, 65536), 0);
	return fdt;
}

static int node_at(void *fdt, const char *path)
{
	int node = fdt_path_offset(fdt, path);
	if (node >= 0)
		return node;
	const char *slash = strrchr(path, '/');
	char parent[256];
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	int up = slash == path ? 0 : node_at(fdt, parent);
	node = fdt_add_subnode(fdt, up, slash + 1);
	assert_true(node >= 0);
	return node;
}

static void set_cells(void *fdt, const char *path, const char *prop, int n, ...)
{
	fdt32_t be[32];
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		be[i] = cpu_to_fdt32(va_arg(ap, uint32_t));
	va_end(ap);
	assert_int_equal(fdt_setprop(fdt, node_at(fdt, path), prop, be, n * 4), 0);
}

static void set_str(void *fdt, const char *path, const char *prop, const char *val)
{
	assert_int_equal(fdt_setprop_string(fdt, node_at(fdt, path), prop, val), 0);
}

static void del_prop(void *fdt, const char *path, const char *prop)
{
	assert_int_equal(fdt_delprop(fdt, node_at(fdt, path), prop), 0);
}

static void add_cpu(void *fdt, unsigned id, const char *mmu, const char *status, const char *isa)
{
	char path[64];
	snprintf(path, sizeof(path), "/cpus/cpu@%x", id);
	set_str(fdt, path, "device_type", "cpu");
	set_cells(fdt, path, "reg", 1, id);
	if (mmu)
		set_str(fdt, path, "mmu-type", mmu);
	if (status)
		set_str(fdt, path, "status", status);
	if (isa)
		set_str(fdt, path, "riscv,isa", isa);
}

/* A tree with everything discovery needs; tests then break or extend it. */
static void *tree_base(void)
{
	void *fdt = tree_new();
	set_cells(fdt, "/", "#address-cells", 1, 2);
	set_cells(fdt, "/", "#size-cells", 1, 2);
	set_str(fdt, "/", "compatible", "acme,board");
	set_str(fdt, "/memory@80000000", "device_type", "memory");
	set_cells(fdt, "/memory@80000000", "reg", 4, 0, 0x80000000, 0, 0x10000000);
	set_cells(fdt, "/cpus", "#address-cells", 1, 1);
	set_cells(fdt, "/cpus", "#size-cells", 1, 0);
	set_cells(fdt, "/cpus", "timebase-frequency", 1, 1000000);
	add_cpu(fdt, 0, "riscv,sv39", "okay", "rv64imac");
	set_cells(fdt, "/soc", "#address-cells", 1, 2);
	set_cells(fdt, "/soc", "#size-cells", 1, 2);
	assert_int_equal(fdt_setprop(fdt, node_at(fdt, "/soc"), "ranges", NULL, 0), 0);
	set_str(fdt, "/soc/uart@10000000", "compatible", "ns16550a");
	set_cells(fdt, "/soc/uart@10000000", "reg", 4, 0, 0x10000000, 0, 0x100);
	set_str(fdt, "/chosen", "stdout-path", "/soc/uart@10000000:115200n8");
	return fdt;
}

/* Discover from a packed copy in an exactly-sized buffer; `fdt` stays editable. */
static int discover(const void *fdt, struct plat_info *p)
{
	static uint8_t packed[65536];
	assert_int_equal(fdt_open_into(fdt, packed, sizeof(packed)), 0);
	assert_int_equal(fdt_pack(packed), 0);
	uint32_t size = fdt_totalsize(packed);
	uint8_t *exact = dtt_copy(packed, size);
	int err = plat_discover(exact, size, p);
	free(exact);
	return err;
}

static void test_base_tree(void **state)
{
	(void)state;
	void *fdt = tree_base();
	struct plat_info p;
	assert_int_equal(discover(fdt, &p), 0);
	assert_string_equal(p.model, "acme,board"); /* no /model: first root compatible */
	assert_int_equal(p.nram, 1);
	assert_range(&p.ram[0], 0x80000000, 0x10000000);
	assert_console(&p.console, PLAT_CONSOLE_NS16550A, 0x10000000, 0x100, "/soc/uart@10000000",
	               "ns16550a");
	assert_int_equal(p.console.baud, 115200);
	assert_int_equal(p.console.clock_hz, 0);
	assert_hart(&p, 0, 0, true, false, "riscv,sv39");
	free(fdt);
}

static void test_missing_essentials(void **state)
{
	(void)state;
	struct plat_info p;
	void *fdt = tree_base();
	del_prop(fdt, "/memory@80000000", "device_type");
	assert_int_equal(discover(fdt, &p), DT_ERR_NOTFOUND);
	free(fdt);

	fdt = tree_base();
	set_cells(fdt, "/memory@80000000", "reg", 4, 0, 0x80000000, 0, 0);
	assert_int_equal(discover(fdt, &p), DT_ERR_NOTFOUND); /* only an empty bank */
	free(fdt);

	fdt = tree_base();
	set_cells(fdt, "/memory@80000000", "reg", 3, 0, 0x80000000, 0);
	assert_int_equal(discover(fdt, &p), DT_ERR_BADVALUE);
	free(fdt);

	fdt = tree_base();
	assert_int_equal(fdt_del_node(fdt, node_at(fdt, "/cpus")), 0);
	assert_int_equal(discover(fdt, &p), DT_ERR_NOTFOUND);
	free(fdt);

	fdt = tree_base();
	assert_int_equal(fdt_del_node(fdt, node_at(fdt, "/cpus/cpu@0")), 0);
	assert_int_equal(discover(fdt, &p), DT_ERR_NOTFOUND); /* /cpus without a cpu */
	free(fdt);

	fdt = tree_base();
	del_prop(fdt, "/cpus", "timebase-frequency");
	assert_int_equal(discover(fdt, &p), DT_ERR_NOTFOUND);
	free(fdt);

	fdt = tree_base();
	set_cells(fdt, "/cpus", "timebase-frequency", 1, 0);
	assert_int_equal(discover(fdt, &p), DT_ERR_BADVALUE);
	free(fdt);

	fdt = tree_base();
	set_cells(fdt, "/cpus", "timebase-frequency", 3, 0, 1, 2);
	assert_int_equal(discover(fdt, &p), DT_ERR_BADVALUE);
	free(fdt);

	uint8_t junk[64] = {0};
	assert_int_equal(plat_discover(junk, sizeof(junk), &p), DT_ERR_BADMAGIC);
	assert_int_equal(p.nram, 0);
	fdt = tree_base();
	assert_int_equal(fdt_pack(fdt), 0);
	assert_int_equal(plat_discover(fdt, fdt_totalsize(fdt) - 1, &p), DT_ERR_TRUNCATED);
	free(fdt);
}

static void test_timebase_sources(void **state)
{
	(void)state;
	struct plat_info p;
	void *fdt = tree_base();
	del_prop(fdt, "/cpus", "timebase-frequency");
	add_cpu(fdt, 1, "riscv,sv39", NULL, NULL);
	set_cells(fdt, "/cpus/cpu@1", "timebase-frequency", 2, 0, 24000000);
	assert_int_equal(discover(fdt, &p), 0);
	assert_true(p.timebase_hz == 24000000); /* 8-byte form on a cpu node */
	free(fdt);

	fdt = tree_base();
	set_cells(fdt, "/cpus/cpu@0", "timebase-frequency", 1, 5); /* /cpus wins */
	assert_int_equal(discover(fdt, &p), 0);
	assert_true(p.timebase_hz == 1000000);
	free(fdt);
}

static void test_ram_banks(void **state)
{
	(void)state;
	struct plat_info p;
	void *fdt = tree_base();
	set_cells(fdt, "/memory@80000000", "reg", 8, 0, 0x80000000, 0, 0x10000000, 0x1, 0x0, 0x0,
	          0x40000000);
	set_str(fdt, "/memory@200000000", "device_type", "memory");
	set_cells(fdt, "/memory@200000000", "reg", 4, 0x2, 0, 0x1, 0);
	set_str(fdt, "/memory@300000000", "device_type", "memory");
	set_cells(fdt, "/memory@300000000", "reg", 4, 0x3, 0, 0x1, 0);
	set_str(fdt, "/memory@300000000", "status", "disabled");
	set_str(fdt, "/memory@0", "device_type", "memory");
	set_cells(fdt, "/memory@0", "reg", 4, 0, 0, 0, 0); /* empty: dropped */
	assert_int_equal(discover(fdt, &p), 0);
	/* fdt_add_subnode puts new nodes first, so document order is reversed. */
	assert_int_equal(p.nram, 3);
	assert_range(&p.ram[0], 0x200000000ull, 0x100000000ull);
	assert_range(&p.ram[1], 0x80000000, 0x10000000);
	assert_range(&p.ram[2], 0x100000000ull, 0x40000000);
	assert_true(p.ram_total == 0x150000000ull);
	assert_false(p.truncated);
	free(fdt);

	/* One-cell addresses and sizes at the root. */
	fdt = tree_base();
	set_cells(fdt, "/", "#address-cells", 1, 1);
	set_cells(fdt, "/", "#size-cells", 1, 1);
	set_cells(fdt, "/memory@80000000", "reg", 2, 0x80000000, 0x4000000);
	assert_int_equal(discover(fdt, &p), 0);
	assert_range(&p.ram[0], 0x80000000, 0x4000000);
	free(fdt);

	/* A bank that would wrap past 2^64 is clamped to end there. */
	fdt = tree_base();
	set_cells(fdt, "/memory@80000000", "reg", 4, 0xffffffff, 0, 0xffffffff, 0);
	assert_int_equal(discover(fdt, &p), 0);
	assert_range(&p.ram[0], 0xffffffff00000000ull, 0x100000000ull);
	free(fdt);

	/* More banks than the table holds. */
	fdt = tree_base();
	fdt32_t reg[4 * (PLAT_MAX_RAM + 2)];
	for (unsigned i = 0; i < PLAT_MAX_RAM + 2; i++) {
		reg[4 * i] = cpu_to_fdt32(i + 1);
		reg[4 * i + 1] = 0;
		reg[4 * i + 2] = 0;
		reg[4 * i + 3] = cpu_to_fdt32(0x1000);
	}
	assert_int_equal(
	    fdt_setprop(fdt, node_at(fdt, "/memory@80000000"), "reg", reg, sizeof(reg)), 0);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.nram, PLAT_MAX_RAM);
	assert_true(p.truncated);
	assert_range(&p.ram[PLAT_MAX_RAM - 1], (uint64_t)PLAT_MAX_RAM << 32, 0x1000);
	free(fdt);
}

static void test_reserved(void **state)
{
	(void)state;
	struct plat_info p;
	void *fdt = tree_base();
	assert_int_equal(fdt_add_mem_rsv(fdt, 0x80000000, 0x200000), 0);
	set_cells(fdt, "/reserved-memory", "#address-cells", 1, 2);
	set_cells(fdt, "/reserved-memory", "#size-cells", 1, 1);
	set_cells(fdt, "/reserved-memory/a@0", "reg", 3, 0, 0x90000000, 0x1000);
	set_str(fdt, "/reserved-memory/a@0", "status", "disabled"); /* still reserved */
	set_cells(fdt, "/reserved-memory/b", "size", 1, 0x1000);    /* no reg: skipped */
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.nreserved, 2);
	assert_range(&p.reserved[0], 0x80000000, 0x200000);
	assert_range(&p.reserved[1], 0x90000000, 0x1000);
	free(fdt);

	fdt = tree_base();
	set_cells(fdt, "/reserved-memory", "#address-cells", 1, 2);
	set_cells(fdt, "/reserved-memory", "#size-cells", 1, 1);
	set_cells(fdt, "/reserved-memory/bad", "reg", 2, 0, 0x90000000);
	assert_int_equal(discover(fdt, &p), DT_ERR_BADVALUE);
	free(fdt);

	fdt = tree_base();
	for (unsigned i = 0; i < PLAT_MAX_RESERVED + 1; i++)
		assert_int_equal(fdt_add_mem_rsv(fdt, 0x80000000 + 0x1000 * i, 0x1000), 0);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.nreserved, PLAT_MAX_RESERVED);
	assert_true(p.truncated);
	free(fdt);
}

static void test_harts(void **state)
{
	(void)state;
	struct plat_info p;
	void *fdt = tree_base();
	add_cpu(fdt, 1, "riscv,sv48", NULL, "rv64imafdc_zicsr_sstc_zba");
	add_cpu(fdt, 2, "riscv,sv57", "okay", "rv64imafdc_SSTC");
	add_cpu(fdt, 3, "riscv,none", "okay", "rv64imafdc_sstcx");
	add_cpu(fdt, 4, "riscv,sv39", "fail", "rv64imafdcsstc");
	add_cpu(fdt, 5, "riscv,sv32", "okay", "rv64imafdc");
	add_cpu(fdt, 6, "riscv,sv39", "ok", NULL);
	assert_int_equal(fdt_setprop(fdt, node_at(fdt, "/cpus/cpu@6"), "riscv,isa-extensions",
	                             "i\0m\0sstc\0", 10),
	                 0);
	/* Not harts: a cpu without reg, and cpu-map (no device_type). */
	set_str(fdt, "/cpus/cpu@7", "device_type", "cpu");
	set_str(fdt, "/cpus/cpu@7", "mmu-type", "riscv,sv39");
	set_cells(fdt, "/cpus/cpu-map/cluster0/core0", "cpu", 1, 1);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.nharts, 7);
	assert_int_equal(p.nusable, 4);
	/* Document order is reversed by fdt_add_subnode: find each by id. */
	struct {
		uint32_t id;
		bool usable, sstc;
	} want[] = {{0, true, false},  {1, true, true},   {2, true, true}, {3, false, false},
	            {4, false, false}, {5, false, false}, {6, true, true}};
	for (unsigned w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		unsigned i = 0;
		while (i < p.nharts && p.harts[i].hartid != want[w].id)
			i++;
		assert_true(i < p.nharts);
		assert_int_equal(p.harts[i].usable, want[w].usable);
		assert_int_equal(p.harts[i].sstc, want[w].sstc);
	}
	assert_false(plat_hart_usable(&p, 7));
	assert_false(plat_hart_usable(&p, 99));
	free(fdt);

	/* Two-cell hart ids; one that does not fit in 32 bits is left out. */
	fdt = tree_base();
	set_cells(fdt, "/cpus", "#address-cells", 1, 2);
	set_cells(fdt, "/cpus/cpu@0", "reg", 2, 0, 0x10);
	add_cpu(fdt, 1, "riscv,sv39", NULL, NULL);
	set_cells(fdt, "/cpus/cpu@1", "reg", 2, 1, 0);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.nharts, 1);
	assert_hart(&p, 0, 0x10, true, false, "riscv,sv39");
	free(fdt);

	/* More harts than the table holds. */
	fdt = tree_base();
	for (unsigned i = 1; i < PLAT_MAX_HARTS + 2; i++)
		add_cpu(fdt, i, "riscv,sv39", NULL, NULL);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.nharts, PLAT_MAX_HARTS);
	assert_int_equal(p.nusable, PLAT_MAX_HARTS);
	assert_true(p.truncated);
	free(fdt);
}

static void test_console_sources(void **state)
{
	(void)state;
	struct plat_info p;
	/* linux,stdout-path when stdout-path is absent. */
	void *fdt = tree_base();
	del_prop(fdt, "/chosen", "stdout-path");
	set_str(fdt, "/chosen", "linux,stdout-path", "/soc/uart@10000000");
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_NS16550A);
	assert_string_equal(p.console.path, "/soc/uart@10000000");
	assert_int_equal(p.console.baud, 0);
	free(fdt);

	/* Neither: the serial0 alias, even without /chosen. */
	fdt = tree_base();
	assert_int_equal(fdt_del_node(fdt, node_at(fdt, "/chosen")), 0);
	set_str(fdt, "/aliases", "serial0", "/soc/uart@10000000");
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_NS16550A);
	assert_string_equal(p.console.path, "serial0");
	free(fdt);

	/* Nothing at all: SBI, nothing recorded. */
	fdt = tree_base();
	assert_int_equal(fdt_del_node(fdt, node_at(fdt, "/chosen")), 0);
	assert_int_equal(discover(fdt, &p), 0);
	assert_console(&p.console, PLAT_CONSOLE_SBI, 0, 0, "", "");
	free(fdt);

	/* An alias in stdout-path, with options. */
	fdt = tree_base();
	set_str(fdt, "/aliases", "serial3", "/soc/uart@10000000");
	set_str(fdt, "/chosen", "stdout-path", "serial3:1500000n8");
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_NS16550A);
	assert_string_equal(p.console.path, "serial3");
	assert_int_equal(p.console.baud, 1500000);
	free(fdt);

	/* Options that are not a number, or too big for one. */
	fdt = tree_base();
	set_str(fdt, "/chosen", "stdout-path", "/soc/uart@10000000:n8");
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.baud, 0);
	set_str(fdt, "/chosen", "stdout-path", "/soc/uart@10000000:99999999999");
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.baud, 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_NS16550A);
	free(fdt);
}

static void test_console_uarts(void **state)
{
	(void)state;
	struct plat_info p;
	const char *u = "/soc/uart@10000000";
	void *fdt = tree_base();
	set_str(fdt, u, "compatible", "ns16550");
	set_cells(fdt, u, "reg-shift", 1, 2);
	set_cells(fdt, u, "reg-io-width", 1, 4);
	set_cells(fdt, u, "clock-frequency", 1, 1843200);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_NS16550A);
	assert_int_equal(p.console.reg_shift, 2);
	assert_int_equal(p.console.reg_io_width, 4);
	assert_int_equal(p.console.clock_hz, 1843200);

	/* A UART we cannot drive stays on SBI, named. */
	set_cells(fdt, u, "reg-io-width", 1, 2);
	assert_int_equal(discover(fdt, &p), 0);
	assert_console(&p.console, PLAT_CONSOLE_SBI, 0, 0, u, "ns16550");
	set_cells(fdt, u, "reg-io-width", 1, 4);
	set_cells(fdt, u, "reg-shift", 1, 0); /* word accesses one byte apart */
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_SBI);
	set_cells(fdt, u, "reg-shift", 1, 6);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_SBI);
	set_cells(fdt, u, "reg-shift", 1, 2);
	set_cells(fdt, u, "reg", 4, 0, 0x10000000, 0, 0x10); /* 8 << 2 bytes do not fit */
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_SBI);
	set_cells(fdt, u, "reg", 4, 0, 0x10000000, 0, 0x20);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_NS16550A);
	set_cells(fdt, u, "reg-shift", 2, 0, 2); /* malformed */
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_SBI);
	set_cells(fdt, u, "reg-shift", 1, 2);
	set_str(fdt, u, "status", "disabled");
	assert_int_equal(discover(fdt, &p), 0);
	assert_console(&p.console, PLAT_CONSOLE_SBI, 0, 0, u, "ns16550");
	del_prop(fdt, u, "status");
	del_prop(fdt, u, "reg");
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_SBI);
	free(fdt);

	/* A long compatible is cut to fit, still NUL-terminated. */
	fdt = tree_base();
	set_str(fdt, u, "compatible", "vendor,an-exceedingly-long-uart-name-here");
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(strlen(p.console.compatible), sizeof(p.console.compatible) - 1);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_SBI);
	free(fdt);
}

/* The console base goes through the bus's ranges; the clock through phandles. */
static void test_console_translation_and_clocks(void **state)
{
	(void)state;
	struct plat_info p;
	void *fdt = tree_base();
	const char *u = "/bus/serial@3000";
	set_cells(fdt, "/bus", "#address-cells", 1, 1);
	set_cells(fdt, "/bus", "#size-cells", 1, 1);
	set_cells(fdt, "/bus", "ranges", 4, 0x0, 0x0, 0x20000000, 0x10000);
	set_str(fdt, u, "compatible", "snps,dw-apb-uart");
	set_cells(fdt, u, "reg", 2, 0x3000, 0x100);
	set_cells(fdt, u, "reg-shift", 1, 2);
	set_cells(fdt, u, "reg-io-width", 1, 4);
	set_str(fdt, "/chosen", "stdout-path", u);
	/* A fixed-factor clock (x2 / 4) fed by a 100 MHz fixed clock. */
	set_str(fdt, "/xtal", "compatible", "fixed-clock");
	set_cells(fdt, "/xtal", "#clock-cells", 1, 0);
	set_cells(fdt, "/xtal", "clock-frequency", 1, 100000000);
	set_cells(fdt, "/xtal", "phandle", 1, 10);
	set_str(fdt, "/half", "compatible", "fixed-factor-clock");
	set_cells(fdt, "/half", "#clock-cells", 1, 0);
	set_cells(fdt, "/half", "clocks", 1, 10);
	set_cells(fdt, "/half", "clock-mult", 1, 2);
	set_cells(fdt, "/half", "clock-div", 1, 4);
	set_cells(fdt, "/half", "phandle", 1, 11);
	/* A clock controller with one argument cell and an "osc" input. */
	set_str(fdt, "/crg", "compatible", "acme,crg");
	set_cells(fdt, "/crg", "#clock-cells", 1, 1);
	set_cells(fdt, "/crg", "clocks", 2, 11, 10);
	assert_int_equal(fdt_setprop(fdt, node_at(fdt, "/crg"), "clock-names", "ref\0osc", 8), 0);
	set_cells(fdt, "/crg", "phandle", 1, 12);

	set_cells(fdt, u, "clocks", 1, 11);
	assert_int_equal(discover(fdt, &p), 0);
	assert_console(&p.console, PLAT_CONSOLE_DW_APB_UART, 0x20003000, 0x100, u,
	               "snps,dw-apb-uart");
	assert_int_equal(p.console.clock_hz, 50000000);

	/* "baudclk" is the second entry, behind a controller clock with one argument. */
	set_cells(fdt, u, "clocks", 3, 12, 7, 10);
	assert_int_equal(fdt_setprop(fdt, node_at(fdt, u), "clock-names", "apb_pclk\0baudclk", 17),
	                 0);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.clock_hz, 100000000);

	/* From the controller: its "osc" input (the second), the 100 MHz crystal. */
	set_cells(fdt, u, "clocks", 2, 12, 5);
	del_prop(fdt, u, "clock-names");
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.clock_hz, 100000000);

	/* A controller without an "osc" input: unknown. A dangling phandle: unknown. */
	assert_int_equal(fdt_setprop(fdt, node_at(fdt, "/crg"), "clock-names", "ref\0xtal", 9), 0);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.clock_hz, 0);
	set_cells(fdt, u, "clocks", 1, 99);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.clock_hz, 0);
	/* clock-frequency on the node wins over everything. */
	set_cells(fdt, u, "clock-frequency", 1, 12345);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.clock_hz, 12345);

	/* A base outside the bus's window cannot be translated: SBI. */
	set_cells(fdt, u, "reg", 2, 0x30000, 0x100);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_SBI);
	free(fdt);

	/* A clock loop ends instead of hanging. */
	fdt = tree_base();
	u = "/soc/uart@10000000";
	set_str(fdt, "/loop", "compatible", "fixed-factor-clock");
	set_cells(fdt, "/loop", "#clock-cells", 1, 0);
	set_cells(fdt, "/loop", "clocks", 1, 20);
	set_cells(fdt, "/loop", "clock-mult", 1, 1);
	set_cells(fdt, "/loop", "clock-div", 1, 1);
	set_cells(fdt, "/loop", "phandle", 1, 20);
	set_cells(fdt, u, "clocks", 1, 20);
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(p.console.kind, PLAT_CONSOLE_NS16550A);
	assert_int_equal(p.console.clock_hz, 0);
	free(fdt);
}

static void test_model(void **state)
{
	(void)state;
	struct plat_info p;
	void *fdt = tree_base();
	set_str(fdt, "/", "model",
	        "A Board Whose Model String Goes On For Much Longer Than Sixty-Three Characters");
	assert_int_equal(discover(fdt, &p), 0);
	assert_int_equal(strlen(p.model), sizeof(p.model) - 1);
	assert_int_equal(strncmp(p.model, "A Board Whose", 13), 0);
	del_prop(fdt, "/", "model");
	del_prop(fdt, "/", "compatible");
	assert_int_equal(discover(fdt, &p), 0);
	assert_string_equal(p.model, "");
	free(fdt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_virt_128M),
	    cmocka_unit_test(test_virt_4G),
	    cmocka_unit_test(test_virt_nosstc),
	    cmocka_unit_test(test_virt_opensbi),
	    cmocka_unit_test(test_virt_reserved),
	    cmocka_unit_test(test_virt_missing_uart),
	    cmocka_unit_test(test_sifive_u),
	    cmocka_unit_test(test_visionfive2),
	    cmocka_unit_test(test_visionfive2_8G),
	    cmocka_unit_test(test_visionfive2_s7_sv39),
	    cmocka_unit_test(test_visionfive2_acme_uart),
	    cmocka_unit_test(test_visionfive2_no_stdout),
	    cmocka_unit_test(test_base_tree),
	    cmocka_unit_test(test_missing_essentials),
	    cmocka_unit_test(test_timebase_sources),
	    cmocka_unit_test(test_ram_banks),
	    cmocka_unit_test(test_reserved),
	    cmocka_unit_test(test_harts),
	    cmocka_unit_test(test_console_sources),
	    cmocka_unit_test(test_console_uarts),
	    cmocka_unit_test(test_console_translation_and_clocks),
	    cmocka_unit_test(test_model),
	};
	return cmocka_run_group_tests_name("platform", tests, NULL, NULL);
}
