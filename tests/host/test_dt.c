/* Host tests of the device-tree reader (lib/dt.c).
 *
 * libfdt is the oracle: on every blob a full walk compares each node, property,
 * lookup and memreserve entry with what libfdt reports. Then the reader is fed
 * truncated, corrupted and hand-made malformed blobs; those must fail with the
 * right error or, when they still parse, be walked without a single read outside
 * the buffer (every blob lives in an exactly-sized heap block under ASan). */
#define _POSIX_C_SOURCE 200809L /* opendir */
#include <dirent.h>
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
#include "tests/host/lib/dt_blobs.h"

/* ---- helpers ---- */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
static void poison(const void *p, size_t n)
{
	__asan_poison_memory_region(p, n);
}
static void unpoison(const void *p, size_t n)
{
	__asan_unpoison_memory_region(p, n);
}
#else
static void poison(const void *p, size_t n)
{
	(void)p;
	(void)n;
}
static void unpoison(const void *p, size_t n)
{
	(void)p;
	(void)n;
}
#endif

static uint8_t *load_or_fail(const char *name, size_t *len)
{
	uint8_t *b = dtt_load(name, len);
	if (!b)
		fail_msg("blob %s missing from %s: run `make dtbs`", name, dtt_dir());
	return b;
}

/* The blob cut to exactly its totalsize, so any read past the tree hits ASan. */
static uint8_t *load_exact(const char *name, size_t *len)
{
	size_t flen;
	uint8_t *file = load_or_fail(name, &flen);
	assert_true(flen >= 40);
	uint32_t total = dtt_totalsize(file);
	assert_true(total <= flen);
	uint8_t *b = dtt_copy(file, total);
	free(file);
	*len = total;
	return b;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- the libfdt comparison ---- */

static void compare_string_list(const struct dt *dt, int node, const char *fdt_blob,
                                const struct dt_prop *p)
{
	const char *s = p->data;
	int count = fdt_stringlist_count(fdt_blob, node, p->name);
	for (int i = 0; i < count; i++) {
		const char *e = fdt_stringlist_get(fdt_blob, node, p->name, i, NULL);
		assert_non_null(e);
		assert_true(dt_prop_has_string(dt, node, p->name, e));
	}
	assert_false(dt_prop_has_string(dt, node, p->name, "no-such-string-in-this-list"));
	if (dt_prop_is_string(p)) {
		assert_string_equal(dt_prop_string(dt, node, p->name), s);
		assert_int_equal(fdt_stringlist_contains(s, (int)p->len, s), 1);
	} else {
		assert_null(dt_prop_string(dt, node, p->name));
	}
}

static void compare_props(const struct dt *dt, const void *fdt, int node)
{
	struct dt_prop p;
	int cur = dt_first_prop(dt, node, &p);
	int fcur = fdt_first_property_offset(fdt, node);
	for (; fcur >= 0; fcur = fdt_next_property_offset(fdt, fcur)) {
		const char *fname;
		int flen;
		const void *fdata = fdt_getprop_by_offset(fdt, fcur, &fname, &flen);
		assert_int_equal(cur, fcur);
		assert_string_equal(p.name, fname);
		assert_int_equal(p.len, flen);
		assert_ptr_equal(p.data, fdata);
		assert_memory_equal(p.data, fdata, (size_t)flen);

		/* Lookup by name finds the first property of that name, like libfdt. */
		struct dt_prop q;
		int glen;
		const void *g = fdt_getprop(fdt, node, fname, &glen);
		assert_int_equal(dt_prop(dt, node, fname, &q), 0);
		assert_ptr_equal(q.data, g);
		assert_int_equal(q.len, glen);

		uint32_t u32;
		uint64_t u64;
		if (flen == 4) {
			assert_int_equal(dt_prop_u32(dt, node, fname, &u32), 0);
			assert_int_equal(u32, fdt32_ld(g));
		} else {
			assert_int_equal(dt_prop_u32(dt, node, fname, &u32), DT_ERR_BADVALUE);
		}
		if (flen == 4 || flen == 8) {
			assert_int_equal(dt_prop_uint(dt, node, fname, &u64), 0);
			assert_true(u64 == (flen == 4 ? fdt32_ld(g) : fdt64_ld(g)));
		} else {
			assert_int_equal(dt_prop_uint(dt, node, fname, &u64), DT_ERR_BADVALUE);
		}
		compare_string_list(dt, node, fdt, &q);
		cur = dt_next_prop(dt, cur, &p);
	}
	assert_int_equal(fcur, -FDT_ERR_NOTFOUND);
	assert_int_equal(cur, DT_ERR_NOTFOUND);
	assert_int_equal(dt_prop(dt, node, "no-such-property", &p), DT_ERR_NOTFOUND);
}

/* Child lists, lookups by name (with and without unit address) and parents. */
static void compare_children(const struct dt *dt, const void *fdt, int node)
{
	int child = dt_first_child(dt, node);
	int fchild = fdt_first_subnode(fdt, node);
	for (; fchild >= 0; fchild = fdt_next_subnode(fdt, fchild)) {
		assert_int_equal(child, fchild);
		assert_int_equal(dt_parent(dt, child), node);
		assert_int_equal(fdt_parent_offset(fdt, fchild), node);
		const char *name = dt_node_name(dt, child);
		assert_int_equal(dt_subnode(dt, node, name), fdt_subnode_offset(fdt, node, name));
		const char *at = strchr(name, '@');
		if (at) {
			char base[256];
			snprintf(base, sizeof(base), "%.*s", (int)(at - name), name);
			assert_int_equal(dt_subnode(dt, node, base),
			                 fdt_subnode_offset(fdt, node, base));
		}
		child = dt_next_sibling(dt, child);
	}
	assert_int_equal(fchild, -FDT_ERR_NOTFOUND);
	assert_int_equal(child, DT_ERR_NOTFOUND);
	assert_int_equal(dt_subnode(dt, node, "no-such-node"), DT_ERR_NOTFOUND);
}

/* Decode reg the long way, with libfdt's view of the parent's cell counts. */
static void compare_reg(const struct dt *dt, const void *fdt, int node)
{
	int len;
	const uint8_t *reg = fdt_getprop(fdt, node, "reg", &len);
	uint64_t a, s;
	if (!reg) {
		assert_int_equal(dt_reg(dt, node, 0, &a, &s), DT_ERR_NOTFOUND);
		return;
	}
	int parent = fdt_parent_offset(fdt, node);
	int ac = parent >= 0 ? fdt_address_cells(fdt, parent) : 2;
	int sc = parent >= 0 ? fdt_size_cells(fdt, parent) : 1;
	if (ac <= 0 || sc < 0 || len % (4 * (ac + sc))) {
		assert_true(dt_reg(dt, node, 0, &a, &s) < 0);
		return;
	}
	int n = len / (4 * (ac + sc));
	for (int i = 0; i < n; i++) {
		const uint8_t *e = reg + 4 * i * (ac + sc);
		uint64_t ea = 0, es = 0;
		int high = 0;
		for (int c = 0; c < ac; c++) {
			high |= c < ac - 2 && fdt32_ld((const fdt32_t *)(e + 4 * c));
			ea = (ea << 32) | fdt32_ld((const fdt32_t *)(e + 4 * c));
		}
		for (int c = 0; c < sc; c++) {
			high |= c < sc - 2 && fdt32_ld((const fdt32_t *)(e + 4 * (ac + c)));
			es = (es << 32) | fdt32_ld((const fdt32_t *)(e + 4 * (ac + c)));
		}
		int err = dt_reg(dt, node, (unsigned)i, &a, &s);
		if (high) {
			assert_int_equal(err, DT_ERR_BADVALUE);
			continue;
		}
		assert_int_equal(err, 0);
		assert_true(a == ea);
		assert_true(s == es);
	}
	assert_int_equal(dt_reg(dt, node, (unsigned)n, &a, &s), DT_ERR_NOTFOUND);
}

static void compare_cells(const struct dt *dt, const void *fdt, int node)
{
	int fa = fdt_address_cells(fdt, node);
	int fs = fdt_size_cells(fdt, node);
	int da = dt_addr_cells(dt, node);
	int ds = dt_size_cells(dt, node);
	if (fa >= 0)
		assert_int_equal(da, fa);
	else /* libfdt refuses #address-cells = 0, which interrupt controllers use */
		assert_true(da == 0 || da == DT_ERR_BADVALUE);
	if (fs >= 0)
		assert_int_equal(ds, fs);
	else
		assert_int_equal(ds, DT_ERR_BADVALUE);
}

static void compare_lookups(const struct dt *dt, const void *fdt, int node)
{
	char path[1024], opts[1100];
	assert_int_equal(fdt_get_path(fdt, node, path, sizeof(path)), 0);
	assert_int_equal(dt_path(dt, path), node);
	assert_int_equal(fdt_path_offset(fdt, path), node);
	snprintf(opts, sizeof(opts), "%s:115200n8", path);
	assert_int_equal(dt_path(dt, opts), node);

	uint32_t ph = fdt_get_phandle(fdt, node);
	if (ph)
		assert_int_equal(dt_find_phandle(dt, ph), fdt_node_offset_by_phandle(fdt, ph));

	const char *compat = fdt_stringlist_get(fdt, node, "compatible", 0, NULL);
	if (compat) {
		assert_int_equal(dt_find_compatible(dt, -1, compat),
		                 fdt_node_offset_by_compatible(fdt, -1, compat));
		int next = fdt_node_offset_by_compatible(fdt, node, compat);
		assert_int_equal(dt_find_compatible(dt, node, compat),
		                 next >= 0 ? next : DT_ERR_NOTFOUND);
	}

	const char *status = fdt_getprop(fdt, node, "status", NULL);
	bool enabled = !status || !strcmp(status, "okay") || !strcmp(status, "ok");
	assert_int_equal(dt_node_enabled(dt, node), enabled);
}

static void compare_memreserve(const struct dt *dt, const void *fdt)
{
	int n = fdt_num_mem_rsv(fdt);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		uint64_t fa, fs, a, s;
		assert_int_equal(fdt_get_mem_rsv(fdt, i, &fa, &fs), 0);
		assert_int_equal(dt_memreserve(dt, (unsigned)i, &a, &s), 0);
		assert_true(a == fa && s == fs);
	}
	assert_int_equal(dt_memreserve(dt, (unsigned)n, NULL, NULL), DT_ERR_NOTFOUND);
}

static void compare_aliases(const struct dt *dt, const void *fdt)
{
	char buf[256];
	int aliases = fdt_path_offset(fdt, "/aliases");
	int cur;
	fdt_for_each_property_offset(cur, fdt, aliases)
	{
		const char *name;
		fdt_getprop_by_offset(fdt, cur, &name, NULL);
		int want = fdt_path_offset(fdt, name);
		assert_true(want >= 0);
		assert_int_equal(dt_path(dt, name), want);
		snprintf(buf, sizeof(buf), "%s:115200n8", name);
		assert_int_equal(dt_path(dt, buf), want);
	}
	assert_int_equal(dt_path(dt, "no-such-alias"), DT_ERR_NOTFOUND);
	assert_int_equal(dt_path(dt, "/no/such/node"), DT_ERR_NOTFOUND);
	assert_int_equal(dt_path(dt, ""), DT_ERR_NOTFOUND);
	assert_int_equal(dt_path(dt, "/"), 0);

	const char *out = fdt_getprop(fdt, fdt_path_offset(fdt, "/chosen"), "stdout-path", NULL);
	if (out) {
		int want = fdt_path_offset_namelen(fdt, out, (int)strcspn(out, ":"));
		assert_int_equal(dt_path(dt, out), want >= 0 ? want : DT_ERR_NOTFOUND);
	}
}

/* Everything libfdt can tell us about `fdt` must match what the reader says. */
static void compare_with_libfdt(const void *fdt, size_t len)
{
	struct dt dt;
	assert_int_equal(fdt_check_full(fdt, len), 0);
	assert_int_equal(dt_open(&dt, fdt, len), 0);
	assert_int_equal(dt_root(&dt), 0);
	assert_int_equal(dt_parent(&dt, 0), DT_ERR_NOTFOUND);
	compare_memreserve(&dt, fdt);
	compare_aliases(&dt, fdt);

	int fdepth = 0, depth = 0, nodes = 0;
	int node = dt_root(&dt);
	int fnode = 0;
	for (;;) {
		assert_int_equal(node, fnode);
		assert_int_equal(depth, fdepth);
		assert_string_equal(dt_node_name(&dt, node), fdt_get_name(fdt, fnode, NULL));
		compare_props(&dt, fdt, node);
		compare_children(&dt, fdt, node);
		compare_reg(&dt, fdt, node);
		compare_cells(&dt, fdt, node);
		compare_lookups(&dt, fdt, node);
		nodes++;
		fnode = fdt_next_node(fdt, fnode, &fdepth);
		node = dt_next_node(&dt, node, &depth);
		if (fnode < 0 || fdepth < 0)
			break;
	}
	assert_int_equal(node, DT_ERR_NOTFOUND);
	assert_true(nodes > 10);
}

static void test_oracle(void **state)
{
	const char *name = *state;
	size_t flen, len;
	uint8_t *file = load_or_fail(name, &flen);
	/* As QEMU hands it over (a 1 MiB buffer around a small tree) and cut to size. */
	compare_with_libfdt(file, flen);
	free(file);
	uint8_t *exact = load_exact(name, &len);
	compare_with_libfdt(exact, len);
	free(exact);
}

static void test_blobs_present(void **state)
{
	(void)state;
	for (size_t i = 0; i < dtt_nrequired; i++) {
		size_t len;
		uint8_t *b = load_or_fail(dtt_required[i], &len);
		struct dt dt;
		assert_int_equal(dt_open(&dt, b, len), 0);
		free(b);
	}
}

static bool is_required(const char *name)
{
	for (size_t i = 0; i < dtt_nrequired; i++) {
		if (!strcmp(name, dtt_required[i]))
			return true;
	}
	return false;
}

/* Any further *.dtb dropped into the directory (a board's tree, say) is compared too. */
static void test_extra_blobs(void **state)
{
	(void)state;
	DIR *d = opendir(dtt_dir());
	if (!d)
		fail_msg("cannot list %s", dtt_dir());
	unsigned extra = 0;
	for (struct dirent *e = readdir(d); e; e = readdir(d)) {
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".dtb") || is_required(e->d_name))
			continue;
		size_t len;
		uint8_t *b = load_or_fail(e->d_name, &len);
		compare_with_libfdt(b, len);
		free(b);
		extra++;
	}
	closedir(d);
	print_message("# %u extra blob(s) in %s\n", extra, dtt_dir());
}

/* ---- truncation and corruption ---- */

/* Every prefix of every blob is rejected. Each prefix sits at the very end of one
 * buffer with the bytes before it poisoned, so a read on either side trips ASan
 * without a heap allocation per length. */
static void test_truncated_everywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < dtt_nrequired; i++) {
		size_t total;
		uint8_t *b = load_exact(dtt_required[i], &total);
		uint8_t *buf = dtt_copy(b, total);
		for (size_t cut = 0; cut < total; cut++) {
			uint8_t *part = buf + total - cut;
			memcpy(part, b, cut);
			poison(buf, total - cut);
			struct dt dt;
			int err = dt_open(&dt, part, cut);
			unpoison(buf, total - cut);
			if (err != DT_ERR_TRUNCATED)
				fail_msg("%s cut to %zu bytes: got %d", dtt_required[i], cut, err);
			assert_int_equal(dt_root(&dt), DT_ERR_BADOFFSET);
		}
		struct dt dt;
		assert_int_equal(dt_open(&dt, b, total), 0);
		free(buf);
		free(b);
	}
}

/* Touch every accessor on whatever dt_open() accepted. The cheap ones run on every
 * node; those that rescan the tree (parent, reg, path, searches) on a sample. */
static void walk_everything(const struct dt *dt)
{
	int depth = 0, count = 0;
	for (int n = dt_next_node(dt, -1, &depth); n >= 0; n = dt_next_node(dt, n, &depth)) {
		const char *name = dt_node_name(dt, n);
		assert_non_null(name);
		struct dt_prop p;
		for (int c = dt_first_prop(dt, n, &p); c >= 0; c = dt_next_prop(dt, c, &p)) {
			uint32_t v32;
			uint64_t v64;
			(void)dt_prop_is_string(&p);
			(void)dt_prop_u32(dt, n, p.name, &v32);
			(void)dt_prop_uint(dt, n, p.name, &v64);
			(void)dt_prop_string(dt, n, p.name);
			(void)dt_prop_has_string(dt, n, p.name, "okay");
		}
		for (int c = dt_first_child(dt, n); c >= 0; c = dt_next_sibling(dt, c))
			(void)dt_subnode(dt, n, dt_node_name(dt, c));
		(void)dt_node_enabled(dt, n);
		(void)dt_addr_cells(dt, n);
		(void)dt_size_cells(dt, n);
		if (count++ % 16 == 0) {
			uint64_t a, s;
			(void)dt_parent(dt, n);
			(void)dt_reg(dt, n, 0, &a, &s);
			(void)dt_translate(dt, n, &a);
			(void)dt_find_compatible(dt, n, "ns16550a");
		}
	}
	uint64_t a, s;
	for (unsigned i = 0; dt_memreserve(dt, i, &a, &s) == 0; i++)
		;
	(void)dt_path(dt, "serial0:115200n8");
	(void)dt_path(dt, "/soc/serial@10000000");
	(void)dt_path(dt, "/chosen");
	(void)dt_find_phandle(dt, 1);
}

static void mutate(struct dtt_rng *r, uint8_t *b, size_t len)
{
	static const uint32_t words[] = {0,          1,          2,          3,          4,
	                                 9,          0xffffffff, 0x7fffffff, 0x80000000, 0x10,
	                                 0xfffffffc, 0x11,       0x20,       0xd00dfeed};
	unsigned edits = 1 + dtt_rng_below(r, 3);
	for (unsigned e = 0; e < edits; e++) {
		/* A third of the edits land in the header, where every byte matters. */
		uint32_t span = dtt_rng_below(r, 3) == 0 ? 40 : (uint32_t)len;
		uint32_t at = dtt_rng_below(r, span);
		switch (dtt_rng_below(r, 3)) {
		case 0:
			b[at] ^= (uint8_t)(1u << dtt_rng_below(r, 8));
			break;
		case 1:
			b[at] = (uint8_t)dtt_rng_next(r);
			break;
		default:
			at &= ~3u;
			if (at + 4 <= len)
				put32(b + at, words[dtt_rng_below(r, sizeof(words) / 4)]);
			break;
		}
	}
}

static void test_corrupted(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		unsigned rounds;
	} plan[] = {
	    {"virt-smp1-128M.dtb", 3000},
	    {"virt-reserved.dtb", 1000},
	    {"sifive_u-smp5.dtb", 1000},
	    {"visionfive2.dtb", 600},
	};
	uint64_t seed = 0x6d6963612d6474ull;
	const char *env = getenv("MICA_DT_SEED");
	if (env)
		seed = strtoull(env, NULL, 0);
	print_message("# corruption seed 0x%llx (set MICA_DT_SEED to repeat another)\n",
	              (unsigned long long)seed);
	struct dtt_rng rng;
	dtt_rng_seed(&rng, seed);
	for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
		size_t len;
		uint8_t *orig = load_exact(plan[i].name, &len);
		unsigned opened = 0;
		for (unsigned round = 0; round < plan[i].rounds; round++) {
			uint8_t *b = dtt_copy(orig, len);
			mutate(&rng, b, len);
			struct dt dt;
			int err = dt_open(&dt, b, len);
			assert_true(err == 0 || err == DT_ERR_BADMAGIC ||
			            err == DT_ERR_BADVERSION || err == DT_ERR_TRUNCATED ||
			            err == DT_ERR_BADSTRUCT);
			if (err == 0) {
				opened++;
				walk_everything(&dt);
			} else {
				assert_int_equal(dt_root(&dt), DT_ERR_BADOFFSET);
			}
			free(b);
		}
		print_message("# %s: %u of %u corrupted copies still parsed\n", plan[i].name,
		              opened, plan[i].rounds);
		free(orig);
	}
}

/* Garbage handles on a good tree: errors, never a stray read. */
static void test_bad_handles(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = load_exact("virt-smp1-128M.dtb", &len);
	struct dt dt;
	assert_int_equal(dt_open(&dt, b, len), 0);
	struct dt_prop p;
	uint64_t a, s;
	for (int h = -8; h < (int)dt.size_struct + 8; h++) {
		(void)dt_node_name(&dt, h);
		(void)dt_first_child(&dt, h);
		(void)dt_next_sibling(&dt, h);
		(void)dt_first_prop(&dt, h, &p);
		(void)dt_next_prop(&dt, h, &p);
		(void)dt_prop(&dt, h, "reg", &p);
		(void)dt_node_enabled(&dt, h);
		(void)dt_addr_cells(&dt, h);
		if (h % 64 == 0) {
			(void)dt_parent(&dt, h);
			(void)dt_reg(&dt, h, 0, &a, &s);
		}
		int d = 0;
		(void)dt_next_node(&dt, h, &d);
	}
	int prop = dt_first_prop(&dt, 0, &p);
	assert_true(prop > 0);
	assert_int_equal(dt_first_child(&dt, prop), DT_ERR_BADOFFSET);
	assert_null(dt_node_name(&dt, prop));
	assert_int_equal(dt_next_prop(&dt, 0, &p), DT_ERR_BADOFFSET);
	assert_int_equal(dt_parent(&dt, prop), DT_ERR_BADOFFSET);
	assert_int_equal(dt_first_child(&dt, 1), DT_ERR_BADOFFSET);
	assert_int_equal(dt_first_child(&dt, -4), DT_ERR_BADOFFSET);
	assert_int_equal(dt_first_child(&dt, (int)dt.size_struct), DT_ERR_BADOFFSET);
	assert_false(dt_node_enabled(&dt, 3));
	free(b);
}

/* ---- hand-made blobs ---- */

enum { TK_BEGIN = 1, TK_END_NODE = 2, TK_PROP = 3, TK_NOP = 4, TK_END = 9 };

/* A raw blob builder: tokens go in exactly as written, however wrong. */
struct raw {
	uint8_t st[1024];
	uint32_t nst;
	char str[256];
	uint32_t nstr;
};

static void raw_u32(struct raw *r, uint32_t v)
{
	assert_true(r->nst + 4 <= sizeof(r->st));
	put32(r->st + r->nst, v);
	r->nst += 4;
}

static void raw_begin(struct raw *r, const char *name)
{
	raw_u32(r, TK_BEGIN);
	size_t n = strlen(name) + 1;
	memcpy(r->st + r->nst, name, n);
	r->nst += (uint32_t)n;
	while (r->nst & 3)
		r->st[r->nst++] = 0;
}

static uint32_t raw_string(struct raw *r, const char *s)
{
	uint32_t off = r->nstr;
	size_t n = strlen(s) + 1;
	assert_true(r->nstr + n <= sizeof(r->str));
	memcpy(r->str + r->nstr, s, n);
	r->nstr += (uint32_t)n;
	return off;
}

static void raw_prop(struct raw *r, const char *name, const void *data, uint32_t len)
{
	raw_u32(r, TK_PROP);
	raw_u32(r, len);
	raw_u32(r, raw_string(r, name));
	memcpy(r->st + r->nst, data, len);
	r->nst += len;
	while (r->nst & 3)
		r->st[r->nst++] = 0;
}

/* Header (40 bytes), an empty memreserve block at 40, then structure and strings. */
enum { RAW_RSV = 40, RAW_STRUCT = 56 };

static uint8_t *raw_finish(const struct raw *r, size_t *len)
{
	uint32_t strings = RAW_STRUCT + r->nst;
	uint32_t total = strings + r->nstr;
	uint8_t *b = calloc(1, total);
	put32(b + 0, DT_MAGIC);
	put32(b + 4, total);
	put32(b + 8, RAW_STRUCT);
	put32(b + 12, strings);
	put32(b + 16, RAW_RSV);
	put32(b + 20, 17);
	put32(b + 24, 16);
	put32(b + 32, r->nstr);
	put32(b + 36, r->nst);
	memcpy(b + RAW_STRUCT, r->st, r->nst);
	memcpy(b + strings, r->str, r->nstr);
	*len = total;
	return b;
}

/* root { compatible = "x"; a { reg = <1>; }; } — the baseline every case edits. */
static void raw_good(struct raw *r)
{
	memset(r, 0, sizeof(*r));
	raw_begin(r, "");
	raw_prop(r, "compatible", "x", 2);
	raw_begin(r, "a");
	raw_prop(r, "reg", "\0\0\0\1", 4);
	raw_u32(r, TK_END_NODE);
	raw_u32(r, TK_END_NODE);
	raw_u32(r, TK_END);
}

static int raw_open(const struct raw *r)
{
	size_t len;
	uint8_t *b = raw_finish(r, &len);
	struct dt dt;
	int err = dt_open(&dt, b, len);
	if (err == 0)
		walk_everything(&dt);
	free(b);
	return err;
}

/* Open a header-edited copy of the baseline. */
static int open_with_header(uint32_t field, uint32_t value, size_t maxsize_delta)
{
	struct raw r;
	size_t len;
	raw_good(&r);
	uint8_t *b = raw_finish(&r, &len);
	put32(b + field, value);
	struct dt dt;
	int err = dt_open(&dt, b, len - maxsize_delta);
	free(b);
	return err;
}

static void test_raw_baseline(void **state)
{
	(void)state;
	struct raw r;
	size_t len;
	raw_good(&r);
	uint8_t *b = raw_finish(&r, &len);
	assert_int_equal(fdt_check_full(b, len), 0);
	struct dt dt;
	assert_int_equal(dt_open(&dt, b, len), 0);
	assert_int_equal(dt_path(&dt, "/a"), fdt_path_offset(b, "/a"));
	free(b);
	assert_int_equal(raw_open(&r), 0);
}

static void test_bad_header(void **state)
{
	(void)state;
	assert_int_equal(open_with_header(0, 0xd00dfeee, 0), DT_ERR_BADMAGIC);
	assert_int_equal(open_with_header(0, 0xedfe0dd0, 0), DT_ERR_BADMAGIC);
	assert_int_equal(open_with_header(20, 15, 0), DT_ERR_BADVERSION);
	assert_int_equal(open_with_header(20, 1, 0), DT_ERR_BADVERSION);
	assert_int_equal(open_with_header(24, 18, 0), DT_ERR_BADVERSION);
	/* A newer version that stays compatible with 17 is fine. */
	assert_int_equal(open_with_header(20, 18, 0), 0);
	/* totalsize beyond what the caller may read, or below the header. */
	assert_int_equal(open_with_header(0, DT_MAGIC, 1), DT_ERR_TRUNCATED);
	assert_int_equal(open_with_header(4, 39, 0), DT_ERR_TRUNCATED);
	assert_int_equal(open_with_header(4, 0xffffffff, 0), DT_ERR_TRUNCATED);
	/* The structure block outside the blob, also through 32-bit wrap-around. */
	assert_int_equal(open_with_header(8, 0x10000, 0), DT_ERR_TRUNCATED);
	assert_int_equal(open_with_header(36, 0x10000, 0), DT_ERR_TRUNCATED);
	assert_int_equal(open_with_header(36, 0xfffffffc, 0), DT_ERR_TRUNCATED);
	assert_int_equal(open_with_header(8, 0xfffffff0, 0), DT_ERR_TRUNCATED);
	/* The structure block overlapping the header. */
	assert_int_equal(open_with_header(8, 36, 0), DT_ERR_TRUNCATED);
	/* Strings block outside the blob. */
	assert_int_equal(open_with_header(32, 0x1000, 0), DT_ERR_TRUNCATED);
	assert_int_equal(open_with_header(12, 0xffffff00, 0), DT_ERR_TRUNCATED);
	/* Memreserve block past the end, and without room for its terminator. */
	assert_int_equal(open_with_header(16, 0x10000, 0), DT_ERR_TRUNCATED);
	assert_int_equal(open_with_header(16, 0, 0), DT_ERR_TRUNCATED);
	/* Misaligned blocks. */
	assert_int_equal(open_with_header(8, RAW_STRUCT + 2, 0), DT_ERR_BADSTRUCT);
	assert_int_equal(open_with_header(16, RAW_RSV + 4, 0), DT_ERR_BADSTRUCT);
	/* Too short to hold the header at all. */
	struct dt dt;
	uint8_t magic[8] = {0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 8};
	assert_int_equal(dt_open(&dt, magic, 3), DT_ERR_TRUNCATED);
	assert_int_equal(dt_open(&dt, magic, 8), DT_ERR_TRUNCATED);
	assert_int_equal(dt_open(&dt, NULL, 100), DT_ERR_TRUNCATED);
	assert_int_equal(dt_open(&dt, "\0\0\0\0\0\0\0\0", 8), DT_ERR_BADMAGIC);
}

static void test_memreserve_unterminated(void **state)
{
	(void)state;
	struct raw r;
	size_t len;
	struct dt dt;
	raw_good(&r);
	uint8_t *b = raw_finish(&r, &len);
	/* The block moved onto the last whole entry, which is not a terminator: there is
	 * no room left for one. */
	uint32_t at = (uint32_t)((len - 16) & ~(size_t)7);
	put32(b + 16, at);
	memset(b + at, 0xff, len - at);
	assert_int_equal(dt_open(&dt, b, len), DT_ERR_TRUNCATED);
	/* Room for half an entry only. */
	put32(b + 16, (uint32_t)((len - 8) & ~(size_t)7));
	assert_int_equal(dt_open(&dt, b, len), DT_ERR_TRUNCATED);
	free(b);
}

static void test_bad_struct(void **state)
{
	(void)state;
	struct raw r;

	/* Unterminated node name: it runs to the end of the structure block (the strings
	 * block right after it does hold a NUL, which must not count). */
	memset(&r, 0, sizeof(r));
	raw_u32(&r, TK_BEGIN);
	memcpy(r.st + r.nst, "abcdefgh", 8);
	r.nst += 8;
	raw_string(&r, "zz");
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);

	/* Property length past the end of the block, and an absurd one. */
	raw_good(&r);
	put32(r.st + 8 + 4, 1000);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
	raw_good(&r);
	put32(r.st + 8 + 4, 0xfffffff0);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);

	/* Name offset past the strings block, and a name without its NUL. */
	raw_good(&r);
	put32(r.st + 8 + 8, r.nstr);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
	raw_good(&r);
	put32(r.st + 8 + 8, 0xffffffff);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
	raw_good(&r);
	r.str[r.nstr - 1] = 'g'; /* "reg" is last; its NUL is gone */
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);

	/* Missing END: dropped, or replaced by a NOP. */
	raw_good(&r);
	r.nst -= 4;
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
	raw_good(&r);
	put32(r.st + r.nst - 4, TK_NOP);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);

	/* END followed by more structure (v17 knows the block's exact size). */
	raw_good(&r);
	raw_u32(&r, TK_NOP);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);

	/* Unbalanced nesting: a node left open, and one closed twice. */
	raw_good(&r);
	put32(r.st + r.nst - 8, TK_NOP);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
	raw_good(&r);
	put32(r.st + r.nst - 4, TK_END_NODE);
	raw_u32(&r, TK_END);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);

	/* Two roots; a property outside any node; a property after a subnode. */
	raw_good(&r);
	r.nst -= 4;
	raw_begin(&r, "");
	raw_u32(&r, TK_END_NODE);
	raw_u32(&r, TK_END);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
	memset(&r, 0, sizeof(r));
	raw_prop(&r, "x", "", 0);
	raw_begin(&r, "");
	raw_u32(&r, TK_END_NODE);
	raw_u32(&r, TK_END);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
	raw_good(&r);
	r.nst -= 8;
	raw_prop(&r, "late", "", 0);
	raw_u32(&r, TK_END_NODE);
	raw_u32(&r, TK_END);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);

	/* An empty structure block, an unknown token, and no root at all. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
	raw_good(&r);
	put32(r.st + r.nst - 12, 7);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
	memset(&r, 0, sizeof(r));
	raw_u32(&r, TK_NOP);
	raw_u32(&r, TK_END);
	assert_int_equal(raw_open(&r), DT_ERR_BADSTRUCT);
}

static void test_depth_limit(void **state)
{
	(void)state;
	struct raw r;
	for (int levels = DT_MAX_DEPTH; levels <= DT_MAX_DEPTH + 1; levels++) {
		memset(&r, 0, sizeof(r));
		for (int i = 0; i < levels; i++)
			raw_begin(&r, i ? "n" : "");
		for (int i = 0; i < levels; i++)
			raw_u32(&r, TK_END_NODE);
		raw_u32(&r, TK_END);
		assert_int_equal(raw_open(&r), levels <= DT_MAX_DEPTH ? 0 : DT_ERR_BADSTRUCT);
	}
	/* The deepest node's parent chain, and a path down to it. */
	size_t len;
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < DT_MAX_DEPTH; i++)
		raw_begin(&r, i ? "n" : "");
	for (int i = 0; i < DT_MAX_DEPTH; i++)
		raw_u32(&r, TK_END_NODE);
	raw_u32(&r, TK_END);
	uint8_t *b = raw_finish(&r, &len);
	struct dt dt;
	assert_int_equal(dt_open(&dt, b, len), 0);
	char path[2 * DT_MAX_DEPTH + 1] = "";
	for (int i = 1; i < DT_MAX_DEPTH; i++)
		strcat(path, "/n");
	int deepest = dt_path(&dt, path);
	assert_int_equal(deepest, fdt_path_offset(b, path));
	int hops = 0;
	for (int n = deepest; n > 0; n = dt_parent(&dt, n))
		hops++;
	assert_int_equal(hops, DT_MAX_DEPTH - 1);
	free(b);
}

/* NOP tokens may sit anywhere between other tokens. */
static void test_nops(void **state)
{
	(void)state;
	struct raw r;
	size_t len;
	memset(&r, 0, sizeof(r));
	raw_u32(&r, TK_NOP);
	raw_begin(&r, "");
	raw_u32(&r, TK_NOP);
	raw_prop(&r, "p", "v", 2);
	raw_u32(&r, TK_NOP);
	raw_prop(&r, "q", "w", 2);
	raw_u32(&r, TK_NOP);
	raw_begin(&r, "a@1");
	raw_u32(&r, TK_END_NODE);
	raw_u32(&r, TK_NOP);
	raw_begin(&r, "b");
	raw_u32(&r, TK_END_NODE);
	raw_u32(&r, TK_NOP);
	raw_u32(&r, TK_END_NODE);
	raw_u32(&r, TK_NOP);
	raw_u32(&r, TK_END);
	uint8_t *b = raw_finish(&r, &len);
	struct dt dt;
	assert_int_equal(dt_open(&dt, b, len), 0);
	int root = dt_root(&dt);
	assert_int_equal(root, 4);
	struct dt_prop p;
	int c = dt_first_prop(&dt, root, &p);
	assert_string_equal(p.name, "p");
	c = dt_next_prop(&dt, c, &p);
	assert_string_equal(p.name, "q");
	assert_int_equal(dt_next_prop(&dt, c, &p), DT_ERR_NOTFOUND);
	int a = dt_subnode(&dt, root, "a");
	assert_int_equal(a, fdt_subnode_offset(b, root, "a"));
	assert_int_equal(dt_next_sibling(&dt, a), dt_path(&dt, "/b"));
	assert_int_equal(dt_next_sibling(&dt, dt_path(&dt, "/b")), DT_ERR_NOTFOUND);
	assert_int_equal(dt_parent(&dt, a), root);
	free(b);
}

/* Version 16 has a 36-byte header and no structure-block size. */
static void test_version16(void **state)
{
	(void)state;
	struct raw r;
	size_t len;
	raw_good(&r);
	uint8_t *b = raw_finish(&r, &len);
	put32(b + 20, 16);
	put32(b + 36, 0xffffffff); /* no longer part of the header */
	struct dt dt;
	assert_int_equal(dt_open(&dt, b, len), 0);
	assert_int_equal(dt.size_struct, r.nst);
	assert_int_equal(dt_path(&dt, "/a"), fdt_path_offset(b, "/a"));
	uint64_t a;
	assert_int_equal(dt_reg(&dt, dt_path(&dt, "/a"), 0, &a, NULL), DT_ERR_BADVALUE);
	free(b);
}

/* ---- semantics on trees built with libfdt ---- */

static void *build(void)
{
	size_t size = 8192;
	void *fdt = calloc(1, size);
	assert_int_equal(fdt_create_empty_tree(fdt, (int)size), 0);
	return fdt;
}

/* The node at `path`, creating it (and its parents) if needed. */
static int mknode(void *fdt, const char *path)
{
	int node = fdt_path_offset(fdt, path);
	if (node >= 0)
		return node;
	const char *slash = strrchr(path, '/');
	char parent[256];
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	int up = slash == path ? 0 : mknode(fdt, parent);
	node = fdt_add_subnode(fdt, up, slash + 1);
	assert_true(node >= 0);
	return node;
}

static void setcells(void *fdt, const char *path, const uint32_t *v, int n)
{
	fdt32_t be[16];
	for (int i = 0; i < n; i++)
		be[i] = cpu_to_fdt32(v[i]);
	int node = mknode(fdt, path);
	assert_int_equal(fdt_setprop(fdt, node, "reg", be, n * 4), 0);
}

static void setprop_cells(void *fdt, const char *path, const char *name, const uint32_t *v, int n)
{
	fdt32_t be[16];
	for (int i = 0; i < n; i++)
		be[i] = cpu_to_fdt32(v[i]);
	assert_int_equal(fdt_setprop(fdt, mknode(fdt, path), name, be, n * 4), 0);
}

static void open_built(struct dt *dt, void *fdt)
{
	assert_int_equal(fdt_pack(fdt), 0);
	assert_int_equal(dt_open(dt, fdt, fdt_totalsize(fdt)), 0);
}

static void test_translate(void **state)
{
	(void)state;
	void *fdt = build();
	setprop_cells(fdt, "/", "#address-cells", (uint32_t[]){2}, 1);
	setprop_cells(fdt, "/", "#size-cells", (uint32_t[]){2}, 1);
	/* /soc: 1-cell child addresses; 0x0-0xfffff maps to 0x4_1000_0000. */
	setprop_cells(fdt, "/soc", "#address-cells", (uint32_t[]){1}, 1);
	setprop_cells(fdt, "/soc", "#size-cells", (uint32_t[]){1}, 1);
	setprop_cells(fdt, "/soc", "ranges",
	              (uint32_t[]){0x0, 0x4, 0x10000000, 0x100000, 0x200000, 0, 0x200000, 0x1000},
	              8);
	setcells(fdt, "/soc/uart@3000", (uint32_t[]){0x3000, 0x100}, 2);
	setcells(fdt, "/soc/dev@200800", (uint32_t[]){0x200800, 0x100}, 2);
	setcells(fdt, "/soc/lost@900000", (uint32_t[]){0x900000, 0x100}, 2);
	/* /soc/bus: an identity bus inside; /soc/i2c: no ranges, not memory mapped. */
	setprop_cells(fdt, "/soc/bus", "#address-cells", (uint32_t[]){1}, 1);
	setprop_cells(fdt, "/soc/bus", "#size-cells", (uint32_t[]){1}, 1);
	assert_int_equal(fdt_setprop(fdt, mknode(fdt, "/soc/bus"), "ranges", NULL, 0), 0);
	setcells(fdt, "/soc/bus/gpio@5000", (uint32_t[]){0x5000, 0x100}, 2);
	setprop_cells(fdt, "/soc/i2c", "#address-cells", (uint32_t[]){1}, 1);
	setprop_cells(fdt, "/soc/i2c", "#size-cells", (uint32_t[]){0}, 1);
	setcells(fdt, "/soc/i2c/eeprom@50", (uint32_t[]){0x50}, 1);
	setcells(fdt, "/memory@80000000", (uint32_t[]){0, 0x80000000, 0, 0x1000}, 4);

	struct dt dt;
	open_built(&dt, fdt);
	uint64_t a, s;
	int n = dt_path(&dt, "/soc/uart@3000");
	assert_int_equal(dt_reg(&dt, n, 0, &a, &s), 0);
	assert_true(a == 0x3000 && s == 0x100);
	assert_int_equal(dt_translate(&dt, n, &a), 0);
	assert_true(a == 0x410003000ull);
	n = dt_path(&dt, "/soc/dev@200800");
	assert_int_equal(dt_reg(&dt, n, 0, &a, NULL), 0);
	assert_int_equal(dt_translate(&dt, n, &a), 0);
	assert_true(a == 0x200800);
	n = dt_path(&dt, "/soc/lost@900000");
	assert_int_equal(dt_reg(&dt, n, 0, &a, NULL), 0);
	assert_int_equal(dt_translate(&dt, n, &a), DT_ERR_NOTFOUND);
	n = dt_path(&dt, "/soc/bus/gpio@5000");
	assert_int_equal(dt_reg(&dt, n, 0, &a, NULL), 0);
	assert_int_equal(dt_translate(&dt, n, &a), 0);
	assert_true(a == 0x410005000ull);
	n = dt_path(&dt, "/soc/i2c/eeprom@50");
	assert_int_equal(dt_reg(&dt, n, 0, &a, &s), 0);
	assert_true(a == 0x50 && s == 0);
	assert_int_equal(dt_translate(&dt, n, &a), DT_ERR_NOTFOUND);
	n = dt_path(&dt, "/memory");
	assert_int_equal(dt_reg(&dt, n, 0, &a, &s), 0);
	assert_int_equal(dt_translate(&dt, n, &a), 0);
	assert_true(a == 0x80000000 && s == 0x1000);
	a = 7;
	assert_int_equal(dt_translate(&dt, dt_root(&dt), &a), 0);
	assert_true(a == 7);
	free(fdt);
}

static void test_reg_errors(void **state)
{
	(void)state;
	void *fdt = build();
	setprop_cells(fdt, "/", "#address-cells", (uint32_t[]){2}, 1);
	setprop_cells(fdt, "/", "#size-cells", (uint32_t[]){1}, 1);
	setcells(fdt, "/odd", (uint32_t[]){0, 1, 2, 3}, 4); /* not a multiple of 3 cells */
	setcells(fdt, "/two", (uint32_t[]){0x1, 0x2, 0x3, 0, 5, 6}, 6);
	setprop_cells(fdt, "/pci", "#address-cells", (uint32_t[]){3}, 1);
	setprop_cells(fdt, "/pci", "#size-cells", (uint32_t[]){2}, 1);
	setcells(fdt, "/pci/dev", (uint32_t[]){0x02000000, 0, 0x1000, 0, 0x100}, 5);
	setcells(fdt, "/pci/low", (uint32_t[]){0, 0x1, 0x1000, 0, 0x100}, 5);
	setprop_cells(fdt, "/bad", "#address-cells", (uint32_t[]){5}, 1);
	setprop_cells(fdt, "/bad", "#size-cells", (uint32_t[]){7}, 1);
	setcells(fdt, "/bad/x", (uint32_t[]){0}, 1);
	setprop_cells(fdt, "/zero", "#address-cells", (uint32_t[]){0}, 1);
	setprop_cells(fdt, "/zero", "#size-cells", (uint32_t[]){0}, 1);
	setcells(fdt, "/zero/x", (uint32_t[]){0}, 0);
	assert_int_equal(fdt_setprop(fdt, mknode(fdt, "/short"), "#size-cells", "ab", 2), 0);

	struct dt dt;
	open_built(&dt, fdt);
	uint64_t a, s;
	assert_int_equal(dt_reg(&dt, dt_path(&dt, "/odd"), 0, &a, &s), DT_ERR_BADVALUE);
	int two = dt_path(&dt, "/two");
	assert_int_equal(dt_reg(&dt, two, 0, &a, &s), 0);
	assert_true(a == 0x100000002ull && s == 3);
	assert_int_equal(dt_reg(&dt, two, 1, &a, &s), 0);
	assert_true(a == 5 && s == 6);
	assert_int_equal(dt_reg(&dt, two, 2, &a, &s), DT_ERR_NOTFOUND);
	assert_int_equal(dt_reg(&dt, two, 0, NULL, NULL), 0);
	assert_int_equal(dt_reg(&dt, dt_path(&dt, "/pci/dev"), 0, &a, &s), DT_ERR_BADVALUE);
	assert_int_equal(dt_reg(&dt, dt_path(&dt, "/pci/low"), 0, &a, &s), 0);
	assert_true(a == 0x100001000ull && s == 0x100);
	assert_int_equal(dt_addr_cells(&dt, dt_path(&dt, "/bad")), DT_ERR_BADVALUE);
	assert_int_equal(dt_size_cells(&dt, dt_path(&dt, "/bad")), DT_ERR_BADVALUE);
	assert_int_equal(dt_reg(&dt, dt_path(&dt, "/bad/x"), 0, &a, &s), DT_ERR_BADVALUE);
	assert_int_equal(dt_reg(&dt, dt_path(&dt, "/zero/x"), 0, &a, &s), DT_ERR_BADVALUE);
	assert_int_equal(dt_size_cells(&dt, dt_path(&dt, "/short")), DT_ERR_BADVALUE);
	assert_int_equal(dt_addr_cells(&dt, dt_path(&dt, "/short")), 2);
	assert_int_equal(dt_size_cells(&dt, dt_path(&dt, "/two")), 1);
	assert_int_equal(dt_reg(&dt, dt_path(&dt, "/short"), 0, &a, &s), DT_ERR_NOTFOUND);
	free(fdt);
}

static void test_strings_and_status(void **state)
{
	(void)state;
	void *fdt = build();
	int n = mknode(fdt, "/n");
	assert_int_equal(fdt_setprop(fdt, n, "list", "ab\0cd\0", 6), 0);
	assert_int_equal(fdt_setprop(fdt, n, "ragged", "ab\0cd", 5), 0);
	assert_int_equal(fdt_setprop(fdt, n, "empty", "", 1), 0);
	assert_int_equal(fdt_setprop(fdt, n, "novalue", NULL, 0), 0);
	assert_int_equal(fdt_setprop(fdt, n, "binary", "\x01\x02\0", 3), 0);
	assert_int_equal(fdt_setprop(fdt, n, "u64", "\0\0\0\1\0\0\0\2", 8), 0);
	assert_int_equal(fdt_setprop_string(fdt, mknode(fdt, "/ok"), "status", "ok"), 0);
	assert_int_equal(fdt_setprop_string(fdt, mknode(fdt, "/okay"), "status", "okay"), 0);
	assert_int_equal(fdt_setprop_string(fdt, mknode(fdt, "/off"), "status", "disabled"), 0);
	assert_int_equal(fdt_setprop_string(fdt, mknode(fdt, "/fail"), "status", "fail-sss"), 0);
	assert_int_equal(fdt_setprop(fdt, mknode(fdt, "/junk"), "status", "okay", 4), 0);
	assert_int_equal(fdt_setprop_u32(fdt, mknode(fdt, "/ph"), "linux,phandle", 0x42), 0);
	mknode(fdt, "/memory@0");
	mknode(fdt, "/memory@1");
	mknode(fdt, "/memory");

	struct dt dt;
	open_built(&dt, fdt);
	n = dt_path(&dt, "/n");
	assert_string_equal(dt_prop_string(&dt, n, "list"), "ab");
	assert_true(dt_prop_has_string(&dt, n, "list", "cd"));
	assert_false(dt_prop_has_string(&dt, n, "list", "c"));
	assert_null(dt_prop_string(&dt, n, "ragged"));
	assert_true(dt_prop_has_string(&dt, n, "ragged", "ab"));
	assert_false(dt_prop_has_string(&dt, n, "ragged", "cd"));
	assert_string_equal(dt_prop_string(&dt, n, "empty"), "");
	assert_null(dt_prop_string(&dt, n, "novalue"));
	assert_null(dt_prop_string(&dt, n, "binary"));
	assert_false(dt_prop_has_string(&dt, n, "missing", "x"));
	uint64_t v;
	assert_int_equal(dt_prop_uint(&dt, n, "u64", &v), 0);
	assert_true(v == 0x100000002ull);
	uint32_t u;
	assert_int_equal(dt_prop_u32(&dt, n, "missing", &u), DT_ERR_NOTFOUND);

	assert_true(dt_node_enabled(&dt, n));
	assert_true(dt_node_enabled(&dt, dt_path(&dt, "/ok")));
	assert_true(dt_node_enabled(&dt, dt_path(&dt, "/okay")));
	assert_false(dt_node_enabled(&dt, dt_path(&dt, "/off")));
	assert_false(dt_node_enabled(&dt, dt_path(&dt, "/fail")));
	assert_false(dt_node_enabled(&dt, dt_path(&dt, "/junk")));

	assert_int_equal(dt_find_phandle(&dt, 0x42), dt_path(&dt, "/ph"));
	assert_int_equal(dt_find_phandle(&dt, 0), DT_ERR_NOTFOUND);
	assert_int_equal(dt_find_phandle(&dt, 0xffffffff), DT_ERR_NOTFOUND);
	assert_int_equal(dt_find_phandle(&dt, 7), DT_ERR_NOTFOUND);

	/* Without a unit address the first "memory@..." in document order answers;
	 * an exact name wins only when it comes first, as in libfdt. */
	assert_int_equal(dt_subnode(&dt, 0, "memory"), fdt_subnode_offset(fdt, 0, "memory"));
	assert_int_equal(dt_subnode(&dt, 0, "memory@1"), fdt_subnode_offset(fdt, 0, "memory@1"));
	assert_int_equal(dt_subnode(&dt, 0, "memory@"), DT_ERR_NOTFOUND);
	assert_int_equal(dt_subnode(&dt, 0, "mem"), DT_ERR_NOTFOUND);
	assert_string_equal(dt_strerror(DT_ERR_TRUNCATED),
	                    "truncated: header or block outside the blob");
	assert_string_equal(dt_strerror(-99), "unknown device-tree error");
	free(fdt);
}

static void test_next_node_subtree(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = load_exact("visionfive2.dtb", &len);
	struct dt dt;
	assert_int_equal(dt_open(&dt, b, len), 0);
	int cpus = dt_path(&dt, "/cpus");
	int depth = 0, count = 0, cpu_nodes = 0;
	for (int n = dt_next_node(&dt, cpus, &depth); n >= 0; n = dt_next_node(&dt, n, &depth)) {
		assert_true(depth >= 1);
		count++;
		if (depth == 1 && !strncmp(dt_node_name(&dt, n), "cpu@", 4))
			cpu_nodes++;
	}
	assert_int_equal(cpu_nodes, 5);
	assert_true(count > 10);
	/* Without depth tracking the walk runs to the end of the tree. */
	int all = 0;
	for (int n = dt_next_node(&dt, cpus, NULL); n >= 0; n = dt_next_node(&dt, n, NULL))
		all++;
	assert_true(all > count);
	free(b);
}

static void test_aliases_and_options(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = load_exact("visionfive2.dtb", &len);
	struct dt dt;
	assert_int_equal(dt_open(&dt, b, len), 0);
	int uart = dt_path(&dt, "/soc/serial@10000000");
	assert_true(uart > 0);
	assert_int_equal(dt_path(&dt, "serial0"), uart);
	assert_int_equal(dt_path(&dt, "serial0:115200n8"), uart);
	assert_int_equal(dt_path(&dt, "/soc/serial@10000000:115200n8"), uart);
	assert_int_equal(dt_path(&dt, "//soc//serial@10000000/"), uart);
	assert_int_equal(dt_path(&dt, "serial7"), DT_ERR_NOTFOUND);
	assert_int_equal(dt_path(&dt, "serial"), DT_ERR_NOTFOUND);
	assert_int_equal(dt_path(&dt, ":115200"), DT_ERR_NOTFOUND);
	assert_int_equal(dt_path(&dt, "/soc/serial"),
	                 dt_subnode(&dt, dt_path(&dt, "/soc"), "serial"));
	int chosen = dt_path(&dt, "/chosen");
	assert_string_equal(dt_prop_string(&dt, chosen, "stdout-path"), "serial0:115200n8");
	assert_int_equal(dt_path(&dt, dt_prop_string(&dt, chosen, "stdout-path")), uart);
	/* An alias followed by a relative path, as libfdt allows. */
	int mmc = dt_path(&dt, "mmc0");
	assert_true(mmc > 0);
	int child = dt_first_child(&dt, mmc);
	if (child >= 0) {
		char p[128];
		snprintf(p, sizeof(p), "mmc0/%s", dt_node_name(&dt, child));
		assert_int_equal(dt_path(&dt, p), fdt_path_offset(b, p));
	}
	free(b);
}

static void test_memreserve_entries(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = load_exact("virt-reserved.dtb", &len);
	struct dt dt;
	assert_int_equal(dt_open(&dt, b, len), 0);
	uint64_t a, s;
	assert_int_equal(dt_memreserve(&dt, 0, &a, &s), 0);
	assert_true(a == 0x87f00000 && s == 0x100000);
	assert_int_equal(dt_memreserve(&dt, 1, &a, &s), 0);
	assert_true(a == 0x80000000 && s == 0x20000);
	assert_int_equal(dt_memreserve(&dt, 2, &a, &s), DT_ERR_NOTFOUND);
	free(b);
}

/* One oracle comparison per blob, named after it. */
#define ORACLE(blob)                                                                               \
	{                                                                                          \
		.name = "libfdt oracle: " blob, .test_func = test_oracle, .initial_state = blob    \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blobs_present),
	    ORACLE("virt-smp1-128M.dtb"),
	    ORACLE("virt-smp4-4G.dtb"),
	    ORACLE("sifive_u-smp5.dtb"),
	    ORACLE("virt-nosstc.dtb"),
	    ORACLE("visionfive2.dtb"),
	    ORACLE("visionfive2-8G.dtb"),
	    ORACLE("visionfive2-s7-sv39.dtb"),
	    ORACLE("visionfive2-acme-uart.dtb"),
	    ORACLE("visionfive2-no-stdout.dtb"),
	    ORACLE("virt-missing-uart.dtb"),
	    ORACLE("virt-opensbi.dtb"),
	    ORACLE("virt-reserved.dtb"),
	    cmocka_unit_test(test_extra_blobs),
	    cmocka_unit_test(test_raw_baseline),
	    cmocka_unit_test(test_bad_header),
	    cmocka_unit_test(test_memreserve_unterminated),
	    cmocka_unit_test(test_bad_struct),
	    cmocka_unit_test(test_depth_limit),
	    cmocka_unit_test(test_nops),
	    cmocka_unit_test(test_version16),
	    cmocka_unit_test(test_translate),
	    cmocka_unit_test(test_reg_errors),
	    cmocka_unit_test(test_strings_and_status),
	    cmocka_unit_test(test_next_node_subtree),
	    cmocka_unit_test(test_aliases_and_options),
	    cmocka_unit_test(test_memreserve_entries),
	    cmocka_unit_test(test_bad_handles),
	    cmocka_unit_test(test_truncated_everywhere),
	    cmocka_unit_test(test_corrupted),
	};
	return cmocka_run_group_tests_name("dt", tests, NULL, NULL);
}
