/* libFuzzer target for the device-tree reader (lib/dt.c) and platform discovery
 * (lib/platform.c). The input is a DTB as firmware would hand it over, its size the
 * reader's bound (libFuzzer's copy is exactly that big, so ASan sees any read past it).
 *
 * When dt_open() accepts it, every node and property is visited with every accessor,
 * and a few lookups (paths, each alias, compatible strings, phandles, memreserve) run
 * on top; stray handles are thrown in too, since the API promises an error for those.
 * Then plat_discover() runs on the same bytes. Besides ASan and UBSan, the answers are
 * checked against what the API promises (a child's parent is the node, a found
 * compatible node has that string, discovery's counts fit its tables, ...): a broken
 * promise is a __builtin_trap().
 *
 * No seed corpus is needed; tests/fuzz/corpus/fuzz_dt/ has a few small trees (and the
 * .dts they are built from, `dtc -I dts -O dtb -o X.dtb X.dts`) to start deeper:
 *
 *   make build/fuzz/fuzz_dt
 *   build/fuzz/fuzz_dt -max_total_time=600 build/fuzz/corpus/fuzz_dt tests/fuzz/corpus/fuzz_dt */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/dt.h"
#include "lib/platform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

/* Bounds on loops whose natural end depends on the input, so that a reader bug that
 * never terminates is a slow input (which libFuzzer reports) rather than a hang here. */
#define MAX_REG   64
#define MAX_NODES 4096

static volatile size_t sink; /* keeps results the checks do not use from being dropped */

static bool is_string(const struct dt_prop *p)
{
	return dt_prop_is_string(p);
}

static void walk_prop(const struct dt *dt, int node, const struct dt_prop *p)
{
	/* The name came out of the strings block, NUL-terminated there. */
	sink += strlen(p->name);
	struct dt_prop q;
	/* A lookup by that name finds a property of that name (the first, if repeated). */
	CHECK(dt_prop(dt, node, p->name, &q) == 0);
	CHECK(strcmp(q.name, p->name) == 0);

	uint32_t u32;
	uint64_t u64;
	int err = dt_prop_u32(dt, node, p->name, &u32);
	CHECK(err == 0 ? q.len == 4 : err == DT_ERR_BADVALUE);
	err = dt_prop_uint(dt, node, p->name, &u64);
	CHECK(err == 0 ? (q.len == 4 || q.len == 8) : err == DT_ERR_BADVALUE);

	const char *s = dt_prop_string(dt, node, p->name);
	CHECK((s != NULL) == is_string(&q));
	if (s) {
		sink += strlen(s);
		/* The first string of a string list is in that list. */
		CHECK(dt_prop_has_string(dt, node, p->name, s));
	}
	sink += dt_prop_has_string(dt, node, p->name, "okay");
	sink += dt_prop_has_string(dt, node, p->name, "");
}

/* Every accessor on one node; `parent` is what the walk says its parent is. */
static void walk_node(const struct dt *dt, int node, int parent)
{
	const char *name = dt_node_name(dt, node);
	CHECK(name != NULL);
	sink += strlen(name);
	CHECK(dt_parent(dt, node) == (parent < 0 ? DT_ERR_NOTFOUND : parent));

	struct dt_prop p;
	int cur = dt_first_prop(dt, node, &p);
	for (; cur >= 0; cur = dt_next_prop(dt, cur, &p)) {
		walk_prop(dt, node, &p);
		/* A property cursor is not a node. */
		CHECK(dt_node_name(dt, cur) == NULL);
		CHECK(dt_first_child(dt, cur) < 0);
	}
	CHECK(cur == DT_ERR_NOTFOUND);

	/* Children, and finding each of them again by name. */
	for (int c = dt_first_child(dt, node); c >= 0; c = dt_next_sibling(dt, c)) {
		int found = dt_subnode(dt, node, dt_node_name(dt, c));
		CHECK(found >= 0 && found <= c); /* the first child answering to that name */
	}

	sink += dt_node_enabled(dt, node);
	sink += (size_t)dt_addr_cells(dt, node) + (size_t)dt_size_cells(dt, node);
	for (unsigned i = 0; i < MAX_REG; i++) {
		uint64_t addr, size;
		if (dt_reg(dt, node, i, &addr, &size))
			break;
		sink += size;
		if (dt_translate(dt, node, &addr) == 0)
			sink += addr;
	}

	const char *compat = dt_prop_string(dt, node, "compatible");
	if (compat) {
		/* The first node with that string: this one or an earlier one. */
		int first = dt_find_compatible(dt, -1, compat);
		CHECK(first >= 0 && first <= node);
		CHECK(dt_prop_has_string(dt, first, "compatible", compat));
		int next = dt_find_compatible(dt, node, compat);
		CHECK(next < 0 ||
		      (next > node && dt_prop_has_string(dt, next, "compatible", compat)));
	}
	uint32_t ph;
	if (dt_prop_u32(dt, node, "phandle", &ph) == 0 && ph != 0 && ph != UINT32_MAX) {
		int owner = dt_find_phandle(dt, ph);
		CHECK(owner >= 0 && owner <= node);
	}
}

/* dt_path() on fixed paths, on every alias, and on each alias with a tail. */
static void walk_paths(const struct dt *dt)
{
	static const char *const paths[] = {
	    "/",           "/cpus",
	    "/cpus/cpu@0", "/cpus/cpu",
	    "/memory",     "/chosen",
	    "/aliases",    "/soc/",
	    "//soc//",     "/soc/serial@10000000:115200n8",
	    "serial0",     "serial0:9600",
	    "serial0/",    "serial0/x",
	    ":",           "",
	    "nosuchalias", "/a/b/c/d/e/f/g/h",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		sink += (size_t)dt_path(dt, paths[i]);
	CHECK(dt_path(dt, "/") == dt_root(dt));

	int aliases = dt_subnode(dt, dt_root(dt), "aliases");
	struct dt_prop p;
	for (int cur = dt_first_prop(dt, aliases, &p); cur >= 0; cur = dt_next_prop(dt, cur, &p)) {
		char buf[256];
		sink += (size_t)dt_path(dt, p.name);
		snprintf(buf, sizeof(buf), "%s/child:opts", p.name);
		sink += (size_t)dt_path(dt, buf);
		if (is_string(&p))
			sink += (size_t)dt_path(dt, p.data);
	}
}

/* Handles that are not nodes must get an error, never a read outside the blob. */
static void stray_handles(const struct dt *dt, int last)
{
	const int bad[] = {-1,
	                   -4,
	                   INT_MIN,
	                   1,
	                   2,
	                   3,
	                   last + 1,
	                   last + 4,
	                   INT_MAX,
	                   INT_MAX - 3,
	                   (int)dt->size_struct,
	                   (int)dt->size_struct - 4};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int h = bad[i];
		struct dt_prop p;
		uint64_t a, s;
		uint32_t v;
		sink += dt_node_name(dt, h) != NULL;
		sink += (size_t)dt_first_child(dt, h) + (size_t)dt_next_sibling(dt, h);
		sink += (size_t)dt_parent(dt, h) + (size_t)dt_first_prop(dt, h, &p);
		sink += (size_t)dt_next_prop(dt, h, &p) + (size_t)dt_subnode(dt, h, "x");
		sink += (size_t)dt_reg(dt, h, 0, &a, &s) + (size_t)dt_prop_u32(dt, h, "reg", &v);
		sink += (size_t)dt_find_compatible(dt, h, "x") + dt_node_enabled(dt, h);
		sink += (size_t)dt_next_node(dt, h, NULL) + (size_t)dt_addr_cells(dt, h);
		a = 0;
		sink += (size_t)dt_translate(dt, h, &a);
	}
}

static void walk_tree(const struct dt *dt)
{
	int root = dt_root(dt);
	CHECK(root >= 0);
	CHECK(dt_parent(dt, root) == DT_ERR_NOTFOUND);

	/* Document order, with each node's parent kept on a stack by depth. */
	int stack[DT_MAX_DEPTH + 1];
	int depth = 0, last = root, n = 0;
	for (int node = dt_next_node(dt, -1, &depth); node >= 0 && n < MAX_NODES;
	     node = dt_next_node(dt, node, &depth), n++) {
		CHECK(depth >= 0 && depth < DT_MAX_DEPTH);
		CHECK(node >= last);
		stack[depth] = node;
		walk_node(dt, node, depth ? stack[depth - 1] : -1);
		last = node;
	}

	uint64_t base, size;
	unsigned i = 0;
	while (i <= dt->size / 16 && dt_memreserve(dt, i, &base, &size) == 0) {
		CHECK(size != 0);
		i++;
	}
	CHECK(dt_memreserve(dt, i, NULL, NULL) < 0);

	walk_paths(dt);
	stray_handles(dt, last);
	sink += (size_t)dt_find_phandle(dt, 0) + (size_t)dt_find_phandle(dt, UINT32_MAX);
	sink += (size_t)dt_find_compatible(dt, -1, "ns16550a");
	sink += strlen(dt_strerror(dt_root(dt)));
}

static bool nul_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* What plat_discover() promises about a result it returns 0 with. */
static void check_plat(const struct plat_info *p)
{
	CHECK(nul_terminated(p->model, sizeof(p->model)));
	CHECK(p->nram >= 1 && p->nram <= PLAT_MAX_RAM);
	uint64_t total = 0;
	for (unsigned i = 0; i < p->nram; i++) {
		const struct plat_range *r = &p->ram[i];
		/* Non-empty, and clamped so that base + size does not wrap. */
		CHECK(r->size != 0 && (r->base == 0 || r->size <= 0 - r->base));
		total = r->size > UINT64_MAX - total ? UINT64_MAX : total + r->size;
	}
	CHECK(p->ram_total == total);
	CHECK(p->nreserved <= PLAT_MAX_RESERVED);
	for (unsigned i = 0; i < p->nreserved; i++) {
		const struct plat_range *r = &p->reserved[i];
		CHECK(r->size != 0 && (r->base == 0 || r->size <= 0 - r->base));
	}

	const struct plat_console *c = &p->console;
	CHECK(nul_terminated(c->path, sizeof(c->path)));
	CHECK(nul_terminated(c->compatible, sizeof(c->compatible)));
	if (c->kind == PLAT_CONSOLE_SBI) {
		CHECK(c->base == 0 && c->size == 0 && c->reg_shift == 0 && c->reg_io_width == 0);
	} else {
		CHECK(c->kind == PLAT_CONSOLE_NS16550A || c->kind == PLAT_CONSOLE_DW_APB_UART);
		CHECK(c->reg_io_width == 1 || c->reg_io_width == 4);
		CHECK(c->reg_shift <= 4 && (c->reg_io_width == 1 || c->reg_shift >= 2));
		CHECK(c->size == 0 || c->size >= (8u << c->reg_shift));
		CHECK(c->path[0] != '\0');
	}

	CHECK(p->timebase_hz != 0);
	CHECK(p->nharts <= PLAT_MAX_HARTS && (p->nharts >= 1 || p->truncated));
	unsigned usable = 0;
	for (unsigned i = 0; i < p->nharts; i++) {
		const struct plat_hart *h = &p->harts[i];
		CHECK(nul_terminated(h->mmu, sizeof(h->mmu)));
		usable += h->usable;
		/* A repeated id answers with its first entry. */
		bool first = true;
		for (unsigned j = 0; j < i; j++)
			first = first && p->harts[j].hartid != h->hartid;
		if (first)
			CHECK(plat_hart_usable(p, h->hartid) == h->usable);
	}
	CHECK(p->nusable == usable);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dt dt;
	int err = dt_open(&dt, data, size);
	if (err == 0) {
		CHECK(dt.size <= size);
		walk_tree(&dt);
	} else {
		CHECK(err < 0);
		CHECK(dt_root(&dt) < 0); /* a failed open leaves a handle every accessor rejects */
	}

	struct plat_info p, q;
	err = plat_discover(data, size, &p);
	if (err == 0) {
		check_plat(&p);
		/* Pure: a second run gives the same bytes. */
		CHECK(plat_discover(data, size, &q) == 0);
		CHECK(memcmp(&p, &q, sizeof(p)) == 0);
	} else {
		CHECK(err < 0);
	}
	return 0;
}
