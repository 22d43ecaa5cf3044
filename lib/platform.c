/* Platform discovery from the device tree. See docs/ARCHITECTURE.md, "Platform
 * discovery", for the rules; this file is their only implementation. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/dt.h"
#include "lib/platform.h"

/* Bound on clock-provider chains we follow, so a phandle cycle cannot hang boot. */
#define CLOCK_HOPS 4

/* Copy at most `n` bytes of `src` (stopping at a NUL), always NUL-terminating `dst`. */
static void copy_str_n(char *dst, size_t cap, const char *src, size_t n)
{
	size_t i = 0;
	for (; i + 1 < cap && i < n && src[i]; i++)
		dst[i] = src[i];
	dst[i] = '\0';
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	copy_str_n(dst, cap, src, SIZE_MAX);
}

/* Append a range, clamping one that would wrap past 2^64 so later end computations
 * cannot overflow. Zero-sized ranges carry no information and are dropped. */
static void add_range(struct plat_range *arr, unsigned *n, unsigned cap, uint64_t base,
                      uint64_t size, bool *truncated)
{
	if (size == 0)
		return;
	if (base != 0 && size > (uint64_t)0 - base)
		size = (uint64_t)0 - base;
	if (*n == cap) {
		*truncated = true;
		return;
	}
	arr[*n].base = base;
	arr[*n].size = size;
	(*n)++;
}

static void find_model(const struct dt *dt, int root, struct plat_info *out)
{
	const char *model = dt_prop_string(dt, root, "model");
	if (!model)
		model = dt_prop_string(dt, root, "compatible");
	if (model)
		copy_str(out->model, sizeof(out->model), model);
}

/* Every (address, size) pair of `node`'s reg into `arr`. A malformed reg is an error:
 * guessing at RAM or at what firmware reserved would be worse than refusing to boot. */
static int add_reg_ranges(const struct dt *dt, int node, struct plat_range *arr, unsigned *n,
                          unsigned cap, bool *truncated)
{
	for (unsigned i = 0;; i++) {
		uint64_t base, size;
		int err = dt_reg(dt, node, i, &base, &size);
		if (err == DT_ERR_NOTFOUND)
			return 0;
		if (err)
			return err;
		add_range(arr, n, cap, base, size, truncated);
	}
}

static bool is_memory_node(const struct dt *dt, int node)
{
	const char *type = dt_prop_string(dt, node, "device_type");
	return type && strcmp(type, "memory") == 0 && dt_node_enabled(dt, node);
}

static int find_ram(const struct dt *dt, struct plat_info *out)
{
	for (int node = dt_root(dt); node >= 0; node = dt_next_node(dt, node, NULL)) {
		if (!is_memory_node(dt, node))
			continue;
		int err =
		    add_reg_ranges(dt, node, out->ram, &out->nram, PLAT_MAX_RAM, &out->truncated);
		if (err)
			return err;
	}
	for (unsigned i = 0; i < out->nram; i++) {
		uint64_t room = UINT64_MAX - out->ram_total;
		out->ram_total += out->ram[i].size < room ? out->ram[i].size : room;
	}
	return out->nram ? 0 : DT_ERR_NOTFOUND;
}

/* Children of /reserved-memory are taken whatever their status: reserving a region
 * that firmware no longer needs costs some RAM, handing out one it does need corrupts
 * the firmware. Children without reg (asking the OS to allocate) are not placed yet. */
static int find_reserved(const struct dt *dt, int root, struct plat_info *out)
{
	uint64_t base, size;
	for (unsigned i = 0; dt_memreserve(dt, i, &base, &size) == 0; i++)
		add_range(out->reserved, &out->nreserved, PLAT_MAX_RESERVED, base, size,
		          &out->truncated);

	int rm = dt_subnode(dt, root, "reserved-memory");
	if (rm < 0)
		return 0;
	for (int child = dt_first_child(dt, rm); child >= 0; child = dt_next_sibling(dt, child)) {
		int err = add_reg_ranges(dt, child, out->reserved, &out->nreserved,
		                         PLAT_MAX_RESERVED, &out->truncated);
		if (err)
			return err;
	}
	return 0;
}

/* ---- console ---- */

/* The leading decimal number of stdout-path options such as "115200n8"; 0 if none. */
static uint32_t parse_baud(const char *opts)
{
	uint32_t v = 0;
	for (; *opts >= '0' && *opts <= '9'; opts++) {
		uint32_t d = (uint32_t)(*opts - '0');
		if (v > (UINT32_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return v;
}

/* Position of `name` in a string-list property, or -1. */
static int string_index(const struct dt *dt, int node, const char *prop, const char *name)
{
	struct dt_prop p;
	if (dt_prop(dt, node, prop, &p))
		return -1;
	const char *s = p.data;
	int idx = 0;
	for (uint32_t at = 0; at < p.len; idx++) {
		const char *nul = memchr(s + at, '\0', p.len - at);
		if (!nul)
			break;
		if (strcmp(s + at, name) == 0)
			return idx;
		at += (uint32_t)(nul - (s + at)) + 1;
	}
	return -1;
}

/* The provider node of entry `idx` of `node`'s "clocks" (phandle + #clock-cells args). */
static int clock_provider(const struct dt *dt, int node, int idx)
{
	struct dt_prop p;
	int err = dt_prop(dt, node, "clocks", &p);
	if (err)
		return err;
	const uint8_t *cell = p.data;
	uint32_t ncells = p.len / 4;
	for (uint32_t i = 0; i < ncells; idx--) {
		int provider = dt_find_phandle(dt, dt_be32(cell + 4 * i));
		if (provider < 0)
			return provider;
		if (idx == 0)
			return provider;
		uint32_t args = 0;
		if (dt_prop_u32(dt, provider, "#clock-cells", &args) || args >= ncells)
			return DT_ERR_BADVALUE;
		i += 1 + args;
	}
	return DT_ERR_NOTFOUND;
}

static uint32_t provider_hz(const struct dt *dt, int provider, int hops);

/* The rate of the clock `node` consumes under `name` (its first clock when `name` is NULL
 * or not listed); 0 when the tree does not let us know it. */
static uint32_t input_clock_hz(const struct dt *dt, int node, const char *name, int hops)
{
	if (hops <= 0)
		return 0;
	int idx = name ? string_index(dt, node, "clock-names", name) : 0;
	int provider = clock_provider(dt, node, idx < 0 ? 0 : idx);
	return provider < 0 ? 0 : provider_hz(dt, provider, hops - 1);
}

static uint32_t provider_hz(const struct dt *dt, int provider, int hops)
{
	uint32_t cells = 1;
	uint64_t hz = 0;
	/* A single-output provider that states its rate: a fixed-clock or an oscillator. */
	if (dt_prop_u32(dt, provider, "#clock-cells", &cells) == 0 && cells == 0 &&
	    dt_prop_uint(dt, provider, "clock-frequency", &hz) == 0)
		return hz <= UINT32_MAX ? (uint32_t)hz : 0;
	if (dt_prop_has_string(dt, provider, "compatible", "fixed-factor-clock")) {
		uint32_t mul = 0, div = 0;
		uint64_t parent = input_clock_hz(dt, provider, NULL, hops);
		if (dt_prop_u32(dt, provider, "clock-mult", &mul) ||
		    dt_prop_u32(dt, provider, "clock-div", &div) || div == 0)
			return 0;
		hz = parent * mul / div;
		return hz <= UINT32_MAX ? (uint32_t)hz : 0;
	}
	/* A clock controller we have no driver for. SoC clock generators such as the
	 * JH7110's feed their UART core clocks straight from the reference oscillator,
	 * so when the controller names an "osc" input we take that rate. This is a best
	 * guess, which is why a console driver should keep the divisor firmware set. */
	if (string_index(dt, provider, "clock-names", "osc") >= 0)
		return input_clock_hz(dt, provider, "osc", hops);
	return 0;
}

static uint32_t uart_clock_hz(const struct dt *dt, int node)
{
	uint64_t hz;
	if (dt_prop_uint(dt, node, "clock-frequency", &hz) == 0)
		return hz <= UINT32_MAX ? (uint32_t)hz : 0;
	return input_clock_hz(dt, node, "baudclk", CLOCK_HOPS);
}

/* A u32 property that may be absent (keeping `*v`), but not malformed. */
static int optional_u32(const struct dt *dt, int node, const char *name, uint32_t *v)
{
	int err = dt_prop_u32(dt, node, name, v);
	return err == DT_ERR_NOTFOUND ? 0 : err;
}

static enum plat_console_kind uart_kind(const struct dt *dt, int node)
{
	if (dt_prop_has_string(dt, node, "compatible", "ns16550a") ||
	    dt_prop_has_string(dt, node, "compatible", "ns16550"))
		return PLAT_CONSOLE_NS16550A;
	if (dt_prop_has_string(dt, node, "compatible", "snps,dw-apb-uart"))
		return PLAT_CONSOLE_DW_APB_UART;
	return PLAT_CONSOLE_SBI;
}

/* Fill the MMIO details of a 16550-style UART; false if the node is not drivable. */
static bool setup_mmio_uart(const struct dt *dt, int node, struct plat_console *c)
{
	uint64_t base, size;
	uint32_t shift = 0, width = 1;
	if (dt_reg(dt, node, 0, &base, &size) || dt_translate(dt, node, &base))
		return false;
	if (optional_u32(dt, node, "reg-shift", &shift) ||
	    optional_u32(dt, node, "reg-io-width", &width))
		return false;
	/* Word accesses need a stride of at least a word, and the eight 16550 registers
	 * must fit in the window the node declares. */
	if ((width != 1 && width != 4) || (width == 4 && shift < 2) || shift > 4)
		return false;
	if (size != 0 && size < (8u << shift))
		return false;
	c->base = base;
	c->size = size;
	c->reg_shift = shift;
	c->reg_io_width = width;
	c->clock_hz = uart_clock_hz(dt, node);
	return true;
}

/* The console specification: stdout-path, its older Linux name, or the serial0 alias. */
static const char *console_spec(const struct dt *dt, int root)
{
	int chosen = dt_subnode(dt, root, "chosen");
	const char *spec = NULL;
	if (chosen >= 0) {
		spec = dt_prop_string(dt, chosen, "stdout-path");
		if (!spec)
			spec = dt_prop_string(dt, chosen, "linux,stdout-path");
	}
	if (!spec && dt_path(dt, "serial0") >= 0)
		spec = "serial0";
	return spec;
}

/* Anything short of a UART we can drive leaves the console on SBI, which firmware
 * always provides; path and compatible are still recorded so the kernel can say why. */
static void find_console(const struct dt *dt, int root, struct plat_console *c)
{
	const char *spec = console_spec(dt, root);
	if (!spec)
		return;
	size_t plen = strcspn(spec, ":");
	copy_str_n(c->path, sizeof(c->path), spec, plen);
	if (spec[plen] == ':')
		c->baud = parse_baud(spec + plen + 1);

	int node = dt_path(dt, spec);
	if (node < 0)
		return;
	const char *compat = dt_prop_string(dt, node, "compatible");
	if (compat)
		copy_str(c->compatible, sizeof(c->compatible), compat);
	enum plat_console_kind kind = uart_kind(dt, node);
	if (kind == PLAT_CONSOLE_SBI || !dt_node_enabled(dt, node))
		return;
	if (setup_mmio_uart(dt, node, c))
		c->kind = kind;
}

/* ---- harts ---- */

static bool ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (x != y || y == '\0')
			return false;
	}
	return b[n] == '\0';
}

/* Is `ext` (lower case) one of the '_'-separated multi-letter extensions of an ISA
 * string such as "rv64imafdch_zicsr_sstc"? The first piece holds the base and the
 * single-letter extensions, so it is never a match. */
static bool isa_has_ext(const char *isa, const char *ext)
{
	const char *p = strchr(isa, '_');
	while (p) {
		p++;
		size_t n = strcspn(p, "_");
		if (ieq(p, ext, n))
			return true;
		p = p[n] ? p + n : NULL;
	}
	return false;
}

static bool hart_has_ext(const struct dt *dt, int cpu, const char *ext)
{
	const char *isa = dt_prop_string(dt, cpu, "riscv,isa");
	return (isa && isa_has_ext(isa, ext)) ||
	       dt_prop_has_string(dt, cpu, "riscv,isa-extensions", ext);
}

/* The kernel runs Sv39. Sv48 and Sv57 harts qualify too: every hart that implements a
 * larger scheme must also implement the smaller ones, so it accepts satp.MODE = Sv39. */
static bool mmu_supports_sv39(const char *mmu)
{
	return mmu && (strcmp(mmu, "riscv,sv39") == 0 || strcmp(mmu, "riscv,sv48") == 0 ||
	               strcmp(mmu, "riscv,sv57") == 0);
}

static bool is_cpu_node(const struct dt *dt, int node)
{
	const char *type = dt_prop_string(dt, node, "device_type");
	return type && strcmp(type, "cpu") == 0;
}

/* A hart without a readable hart id cannot be started, so it is left out. */
static void add_hart(const struct dt *dt, int cpu, struct plat_info *out)
{
	uint64_t id;
	if (dt_reg(dt, cpu, 0, &id, NULL) || id > UINT32_MAX)
		return;
	if (out->nharts == PLAT_MAX_HARTS) {
		out->truncated = true;
		return;
	}
	struct plat_hart *h = &out->harts[out->nharts++];
	const char *mmu = dt_prop_string(dt, cpu, "mmu-type");
	h->hartid = (uint32_t)id;
	if (mmu)
		copy_str(h->mmu, sizeof(h->mmu), mmu);
	h->usable = dt_node_enabled(dt, cpu) && mmu_supports_sv39(mmu);
	h->sstc = hart_has_ext(dt, cpu, "sstc");
	if (h->usable)
		out->nusable++;
}

/* timebase-frequency from `node` into `*hz` unless one is already known. */
static int take_timebase(const struct dt *dt, int node, uint64_t *hz, bool *found)
{
	if (*found)
		return 0;
	int err = dt_prop_uint(dt, node, "timebase-frequency", hz);
	if (err == DT_ERR_NOTFOUND)
		return 0;
	if (err)
		return err;
	*found = true;
	return *hz ? 0 : DT_ERR_BADVALUE;
}

static int find_cpus(const struct dt *dt, int root, struct plat_info *out)
{
	int cpus = dt_subnode(dt, root, "cpus");
	if (cpus < 0)
		return cpus;
	bool found = false;
	int err = take_timebase(dt, cpus, &out->timebase_hz, &found);
	for (int n = dt_first_child(dt, cpus); !err && n >= 0; n = dt_next_sibling(dt, n)) {
		if (!is_cpu_node(dt, n))
			continue;
		add_hart(dt, n, out);
		err = take_timebase(dt, n, &out->timebase_hz, &found);
	}
	if (err)
		return err;
	return found && (out->nharts || out->truncated) ? 0 : DT_ERR_NOTFOUND;
}

int plat_discover(const void *dtb, size_t maxsize, struct plat_info *out)
{
	struct dt dt;
	memset(out, 0, sizeof(*out));
	int err = dt_open(&dt, dtb, maxsize);
	if (err)
		return err;
	int root = dt_root(&dt);
	find_model(&dt, root, out);
	err = find_ram(&dt, out);
	if (!err)
		err = find_reserved(&dt, root, out);
	if (!err)
		err = find_cpus(&dt, root, out);
	if (!err)
		find_console(&dt, root, &out->console);
	return err;
}

bool plat_hart_usable(const struct plat_info *p, uint32_t hartid)
{
	for (unsigned i = 0; i < p->nharts; i++) {
		if (p->harts[i].hartid == hartid)
			return p->harts[i].usable;
	}
	return false;
}
