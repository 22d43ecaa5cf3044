/* Flattened device-tree reader.
 *
 * Trust model: dt_open() proves the header and the token framing of the whole
 * structure block once. The accessors still decode every token through
 * dt_token(), which re-checks bounds, because a caller may hand back any
 * integer as a node or property handle; a stray handle then gets an error or a
 * meaningless answer, never a read outside the blob. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/dt.h"

enum {
	TOK_BEGIN_NODE = 1,
	TOK_END_NODE = 2,
	TOK_PROP = 3,
	TOK_NOP = 4,
	TOK_END = 9,
};

/* Header field offsets. Version 16 lacks size_dt_struct, hence two header sizes. */
enum {
	HDR_MAGIC = 0,
	HDR_TOTALSIZE = 4,
	HDR_OFF_STRUCT = 8,
	HDR_OFF_STRINGS = 12,
	HDR_OFF_RSVMAP = 16,
	HDR_VERSION = 20,
	HDR_LAST_COMP = 24,
	HDR_SIZE_STRINGS = 32,
	HDR_SIZE_STRUCT = 36,
	HDR_LEN_V16 = 36,
	HDR_LEN_V17 = 40,
};

#define RSV_ENTRY_LEN 16u
/* A blob bigger than this could not be addressed by int handles. */
#define DT_MAX_TOTALSIZE 0x7ffffff0u

/* One decoded token. `next` is where the following token starts. */
struct dt_tok {
	uint32_t tag;
	uint32_t next;
	const char *name;    /* BEGIN_NODE: node name; PROP: property name */
	const uint8_t *data; /* PROP only */
	uint32_t len;        /* PROP only */
};

static uint32_t align4(uint32_t x)
{
	return (x + 3u) & ~3u;
}

static const uint8_t *struct_base(const struct dt *dt)
{
	return dt->blob + dt->off_struct;
}

/* The NUL-terminated string starting `at` inside a region of `len` bytes, or NULL. */
static const char *bounded_str(const uint8_t *region, uint32_t len, uint32_t at)
{
	if (at >= len || !memchr(region + at, '\0', len - at))
		return NULL;
	return (const char *)region + at;
}

static int decode_prop(const struct dt *dt, uint32_t off, struct dt_tok *t)
{
	const uint8_t *s = struct_base(dt);
	uint32_t room = dt->size_struct - off;
	if (room < 12)
		return DT_ERR_BADSTRUCT;
	uint32_t len = dt_be32(s + off + 4);
	uint32_t nameoff = dt_be32(s + off + 8);
	if (len > room - 12)
		return DT_ERR_BADSTRUCT;
	t->name = bounded_str(dt->blob + dt->off_strings, dt->size_strings, nameoff);
	if (!t->name)
		return DT_ERR_BADSTRUCT;
	t->data = s + off + 12;
	t->len = len;
	t->next = align4(off + 12 + len);
	return 0;
}

/* Decode the token at `off`; every byte it covers is checked to lie in the block. */
static int dt_token(const struct dt *dt, int off, struct dt_tok *t)
{
	if (off < 0 || (off & 3) || dt->size_struct < 4 || (uint32_t)off > dt->size_struct - 4)
		return DT_ERR_BADOFFSET;
	uint32_t o = (uint32_t)off;
	const uint8_t *s = struct_base(dt);
	t->tag = dt_be32(s + o);
	t->name = NULL;
	t->data = NULL;
	t->len = 0;
	t->next = o + 4;
	switch (t->tag) {
	case TOK_BEGIN_NODE:
		t->name = bounded_str(s, dt->size_struct, o + 4);
		if (!t->name)
			return DT_ERR_BADSTRUCT;
		t->next = align4(o + 4 + (uint32_t)strlen(t->name) + 1);
		break;
	case TOK_PROP: {
		int err = decode_prop(dt, o, t);
		if (err)
			return err;
		break;
	}
	case TOK_END_NODE:
	case TOK_NOP:
	case TOK_END:
		break;
	default:
		return DT_ERR_BADSTRUCT;
	}
	/* The padding after a name or value must also be inside the block. */
	if (t->next > dt->size_struct)
		return DT_ERR_BADSTRUCT;
	return 0;
}

/* Offsets are stored as uint32_t but handed out as int: dt_open() keeps them below INT_MAX. */
static int as_handle(uint32_t off)
{
	return (int)off;
}

static int token_skip_nops(const struct dt *dt, uint32_t off, struct dt_tok *t, int *at)
{
	for (;;) {
		int err = dt_token(dt, as_handle(off), t);
		if (err)
			return err;
		if (t->tag != TOK_NOP) {
			*at = as_handle(off);
			return 0;
		}
		off = t->next;
	}
}

/* ---- header and framing checks (dt_open) ---- */

static bool block_inside(uint32_t off, uint32_t size, uint32_t hdrlen, uint32_t total)
{
	return off >= hdrlen && (uint64_t)off + size <= total;
}

static int check_memreserve(const struct dt *dt)
{
	for (uint64_t off = dt->off_rsvmap; off + RSV_ENTRY_LEN <= dt->size; off += RSV_ENTRY_LEN) {
		if (dt_be64(dt->blob + off + 8) == 0)
			return 0;
	}
	return DT_ERR_TRUNCATED;
}

struct walk_state {
	unsigned depth;
	bool root_seen;
	uint64_t has_child; /* bit d: the open node at level d already has a subnode */
};

static int check_token(const struct dt_tok *t, struct walk_state *w)
{
	switch (t->tag) {
	case TOK_BEGIN_NODE:
		if ((w->depth == 0 && w->root_seen) || w->depth >= DT_MAX_DEPTH)
			return DT_ERR_BADSTRUCT;
		w->has_child |= 1ull << w->depth;
		w->depth++;
		w->has_child &= ~(1ull << w->depth);
		w->root_seen = true;
		return 0;
	case TOK_END_NODE:
		if (w->depth == 0)
			return DT_ERR_BADSTRUCT;
		w->depth--;
		return 0;
	case TOK_PROP:
		/* Properties come before subnodes; one after a subnode would be invisible to
		 * readers that stop at the first child, so the blob is treated as corrupt. */
		if (w->depth == 0 || (w->has_child & (1ull << w->depth)))
			return DT_ERR_BADSTRUCT;
		return 0;
	case TOK_NOP:
		return 0;
	default:
		return DT_ERR_BADSTRUCT;
	}
}

static int check_structure(struct dt *dt, bool exact_size)
{
	struct walk_state w = {0};
	uint32_t off = 0;
	for (;;) {
		struct dt_tok t;
		if (dt_token(dt, as_handle(off), &t) < 0)
			return DT_ERR_BADSTRUCT;
		if (t.tag == TOK_END) {
			if (w.depth != 0 || !w.root_seen)
				return DT_ERR_BADSTRUCT;
			if (exact_size && t.next != dt->size_struct)
				return DT_ERR_BADSTRUCT;
			dt->size_struct = t.next;
			return 0;
		}
		int err = check_token(&t, &w);
		if (err)
			return err;
		off = t.next;
	}
}

static int check_header(struct dt *dt, const uint8_t *b, size_t maxsize, uint32_t *version)
{
	if (maxsize < 4)
		return DT_ERR_TRUNCATED;
	if (dt_be32(b + HDR_MAGIC) != DT_MAGIC)
		return DT_ERR_BADMAGIC;
	if (maxsize < HDR_LAST_COMP + 4)
		return DT_ERR_TRUNCATED;
	*version = dt_be32(b + HDR_VERSION);
	if (*version < 16 || dt_be32(b + HDR_LAST_COMP) > 17)
		return DT_ERR_BADVERSION;
	uint32_t hdrlen = *version >= 17 ? HDR_LEN_V17 : HDR_LEN_V16;
	uint32_t total = dt_be32(b + HDR_TOTALSIZE);
	if (maxsize < hdrlen || total < hdrlen || total > maxsize)
		return DT_ERR_TRUNCATED;
	if (total > DT_MAX_TOTALSIZE)
		return DT_ERR_BADSTRUCT;

	dt->blob = b;
	dt->size = total;
	dt->off_struct = dt_be32(b + HDR_OFF_STRUCT);
	dt->off_strings = dt_be32(b + HDR_OFF_STRINGS);
	dt->size_strings = dt_be32(b + HDR_SIZE_STRINGS);
	dt->off_rsvmap = dt_be32(b + HDR_OFF_RSVMAP);
	if (dt->off_struct > total)
		return DT_ERR_TRUNCATED;
	/* Version 16 does not record the structure size: allow up to the end of the blob
	 * and let the walk find where it really ends. */
	dt->size_struct = *version >= 17 ? dt_be32(b + HDR_SIZE_STRUCT) : total - dt->off_struct;

	if (!block_inside(dt->off_struct, dt->size_struct, hdrlen, total) ||
	    !block_inside(dt->off_strings, dt->size_strings, hdrlen, total) ||
	    !block_inside(dt->off_rsvmap, 0, hdrlen, total))
		return DT_ERR_TRUNCATED;
	if ((dt->off_struct & 3) || (dt->off_rsvmap & 7))
		return DT_ERR_BADSTRUCT;
	return 0;
}

int dt_open(struct dt *dt, const void *blob, size_t maxsize)
{
	uint32_t version = 0;
	memset(dt, 0, sizeof(*dt));
	int err = blob ? check_header(dt, blob, maxsize, &version) : DT_ERR_TRUNCATED;
	if (!err)
		err = check_memreserve(dt);
	if (!err)
		err = check_structure(dt, version >= 17);
	if (err)
		memset(dt, 0, sizeof(*dt)); /* every accessor now fails cleanly */
	return err;
}

const char *dt_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case DT_ERR_NOTFOUND:
		return "not found";
	case DT_ERR_BADMAGIC:
		return "bad magic (not a device tree)";
	case DT_ERR_BADVERSION:
		return "unsupported device-tree version";
	case DT_ERR_TRUNCATED:
		return "truncated: header or block outside the blob";
	case DT_ERR_BADSTRUCT:
		return "malformed structure block";
	case DT_ERR_BADVALUE:
		return "property has a bad size or format";
	case DT_ERR_BADOFFSET:
		return "not a node or property of this tree";
	default:
		return err > 0 ? "success" : "unknown device-tree error";
	}
}

int dt_memreserve(const struct dt *dt, unsigned index, uint64_t *base, uint64_t *size)
{
	uint64_t off = dt->off_rsvmap;
	for (unsigned i = 0;; i++, off += RSV_ENTRY_LEN) {
		if (off + RSV_ENTRY_LEN > dt->size)
			return DT_ERR_TRUNCATED;
		/* A zero size ends the list: the terminator is all zeros, and a zero-sized
		 * reservation would reserve nothing anyway. */
		uint64_t sz = dt_be64(dt->blob + off + 8);
		if (sz == 0)
			return DT_ERR_NOTFOUND;
		if (i == index) {
			if (base)
				*base = dt_be64(dt->blob + off);
			if (size)
				*size = sz;
			return 0;
		}
	}
}

/* ---- nodes ---- */

/* Decode `node`, which must be a BEGIN_NODE token. */
static int node_token(const struct dt *dt, int node, struct dt_tok *t)
{
	int err = dt_token(dt, node, t);
	if (err)
		return err;
	return t->tag == TOK_BEGIN_NODE ? 0 : DT_ERR_BADOFFSET;
}

int dt_root(const struct dt *dt)
{
	struct dt_tok t;
	int at;
	int err = token_skip_nops(dt, 0, &t, &at);
	if (err)
		return err;
	return t.tag == TOK_BEGIN_NODE ? at : DT_ERR_BADSTRUCT;
}

const char *dt_node_name(const struct dt *dt, int node)
{
	struct dt_tok t;
	return node_token(dt, node, &t) ? NULL : t.name;
}

/* The first token after `node`'s properties: a subnode or the node's END_NODE. */
static int after_props(const struct dt *dt, int node, struct dt_tok *t, int *at)
{
	int err = node_token(dt, node, t);
	while (!err) {
		err = token_skip_nops(dt, t->next, t, at);
		if (!err && t->tag != TOK_PROP)
			return 0;
	}
	return err;
}

int dt_first_child(const struct dt *dt, int node)
{
	struct dt_tok t;
	int at;
	int err = after_props(dt, node, &t, &at);
	if (err)
		return err;
	if (t.tag == TOK_BEGIN_NODE)
		return at;
	return t.tag == TOK_END_NODE ? DT_ERR_NOTFOUND : DT_ERR_BADSTRUCT;
}

/* The offset just past `node`'s END_NODE. */
static int skip_subtree(const struct dt *dt, int node, uint32_t *end)
{
	struct dt_tok t;
	int err = node_token(dt, node, &t);
	if (err)
		return err;
	for (unsigned depth = 1;;) {
		if (dt_token(dt, as_handle(t.next), &t) || t.tag == TOK_END)
			return DT_ERR_BADSTRUCT;
		if (t.tag == TOK_BEGIN_NODE) {
			depth++;
		} else if (t.tag == TOK_END_NODE && --depth == 0) {
			*end = t.next;
			return 0;
		}
	}
}

int dt_next_sibling(const struct dt *dt, int node)
{
	uint32_t end;
	int err = skip_subtree(dt, node, &end);
	if (err)
		return err;
	struct dt_tok t;
	int at;
	err = token_skip_nops(dt, end, &t, &at);
	if (err)
		return err;
	return t.tag == TOK_BEGIN_NODE ? at : DT_ERR_NOTFOUND;
}

int dt_next_node(const struct dt *dt, int node, int *depth)
{
	if (node < 0) {
		int root = dt_root(dt);
		if (root >= 0 && depth)
			*depth = 0;
		return root;
	}
	struct dt_tok t;
	int err = node_token(dt, node, &t);
	if (err)
		return err;
	int rel = 0; /* depth of the current position relative to `node` */
	for (;;) {
		uint32_t off = t.next;
		err = dt_token(dt, as_handle(off), &t);
		if (err)
			return err;
		switch (t.tag) {
		case TOK_BEGIN_NODE:
			if (depth)
				*depth += rel + 1;
			return as_handle(off);
		case TOK_END_NODE:
			rel--;
			if (depth && *depth + rel < 0)
				return DT_ERR_NOTFOUND;
			break;
		case TOK_END:
			return DT_ERR_NOTFOUND;
		default:
			break;
		}
	}
}

int dt_parent(const struct dt *dt, int node)
{
	int stack[DT_MAX_DEPTH];
	int depth = 0;
	for (int n = dt_root(dt); n >= 0; n = dt_next_node(dt, n, &depth)) {
		if (depth >= DT_MAX_DEPTH)
			return DT_ERR_BADSTRUCT;
		stack[depth] = n;
		if (n == node)
			return depth == 0 ? DT_ERR_NOTFOUND : stack[depth - 1];
		if (n > node)
			break; /* document order passed it: not a node */
	}
	return DT_ERR_BADOFFSET;
}

/* Does the node name `have` answer to the `len` bytes of `want`? An exact match, or,
 * when `want` has no unit address, a match of the part before '@'. */
static bool name_matches(const char *have, const char *want, size_t len)
{
	if (strncmp(have, want, len) != 0)
		return false;
	if (have[len] == '\0')
		return true;
	return have[len] == '@' && !memchr(want, '@', len);
}

static int subnode_namelen(const struct dt *dt, int parent, const char *name, size_t len)
{
	int child = dt_first_child(dt, parent);
	for (; child >= 0; child = dt_next_sibling(dt, child)) {
		if (name_matches(dt_node_name(dt, child), name, len))
			return child;
	}
	return child;
}

int dt_subnode(const struct dt *dt, int parent, const char *name)
{
	return subnode_namelen(dt, parent, name, strlen(name));
}

/* Follow the '/'-separated components in [p, end) from `node`. */
static int walk_path(const struct dt *dt, int node, const char *p, const char *end)
{
	while (node >= 0) {
		while (p < end && *p == '/')
			p++;
		if (p == end)
			return node;
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *stop = slash ? slash : end;
		node = subnode_namelen(dt, node, p, (size_t)(stop - p));
		p = stop;
	}
	return node;
}

static int prop_namelen(const struct dt *dt, int node, const char *name, size_t len,
                        struct dt_prop *out)
{
	struct dt_prop p;
	int cur = dt_first_prop(dt, node, &p);
	for (; cur >= 0; cur = dt_next_prop(dt, cur, &p)) {
		if (strncmp(p.name, name, len) == 0 && p.name[len] == '\0') {
			if (out)
				*out = p;
			return cur;
		}
	}
	return cur;
}

/* The path an alias stands for; aliases must name absolute paths. */
static const char *alias_target(const struct dt *dt, const char *name, size_t len)
{
	int aliases = dt_subnode(dt, dt_root(dt), "aliases");
	struct dt_prop p;
	if (aliases < 0 || prop_namelen(dt, aliases, name, len, &p) < 0)
		return NULL;
	if (!dt_prop_is_string(&p) || ((const char *)p.data)[0] != '/')
		return NULL;
	return p.data;
}

int dt_path(const struct dt *dt, const char *path)
{
	int root = dt_root(dt);
	if (root < 0)
		return root;
	const char *end = path + strcspn(path, ":");
	if (end == path)
		return DT_ERR_NOTFOUND;
	if (*path == '/')
		return walk_path(dt, root, path, end);

	const char *slash = memchr(path, '/', (size_t)(end - path));
	const char *alias_end = slash ? slash : end;
	const char *target = alias_target(dt, path, (size_t)(alias_end - path));
	if (!target)
		return DT_ERR_NOTFOUND;
	int node = walk_path(dt, root, target, target + strlen(target));
	return walk_path(dt, node, alias_end, end);
}

/* ---- properties ---- */

static int prop_at(const struct dt *dt, uint32_t off, struct dt_prop *out)
{
	struct dt_tok t;
	int at;
	int err = token_skip_nops(dt, off, &t, &at);
	if (err)
		return err;
	if (t.tag != TOK_PROP)
		return DT_ERR_NOTFOUND;
	if (out) {
		out->name = t.name;
		out->data = t.data;
		out->len = t.len;
	}
	return at;
}

int dt_first_prop(const struct dt *dt, int node, struct dt_prop *out)
{
	struct dt_tok t;
	int err = node_token(dt, node, &t);
	return err ? err : prop_at(dt, t.next, out);
}

int dt_next_prop(const struct dt *dt, int cursor, struct dt_prop *out)
{
	struct dt_tok t;
	int err = dt_token(dt, cursor, &t);
	if (err)
		return err;
	if (t.tag != TOK_PROP)
		return DT_ERR_BADOFFSET;
	return prop_at(dt, t.next, out);
}

int dt_prop(const struct dt *dt, int node, const char *name, struct dt_prop *out)
{
	int cur = prop_namelen(dt, node, name, strlen(name), out);
	return cur < 0 ? cur : 0;
}

bool dt_prop_is_string(const struct dt_prop *p)
{
	const uint8_t *d = p->data;
	if (p->len == 0 || d[p->len - 1] != '\0')
		return false;
	for (uint32_t i = 0; i < p->len; i++) {
		if (d[i] != '\0' && (d[i] < 0x20 || d[i] > 0x7e))
			return false;
	}
	return true;
}

int dt_prop_u32(const struct dt *dt, int node, const char *name, uint32_t *out)
{
	struct dt_prop p;
	int err = dt_prop(dt, node, name, &p);
	if (err)
		return err;
	if (p.len != 4)
		return DT_ERR_BADVALUE;
	*out = dt_be32(p.data);
	return 0;
}

int dt_prop_uint(const struct dt *dt, int node, const char *name, uint64_t *out)
{
	struct dt_prop p;
	int err = dt_prop(dt, node, name, &p);
	if (err)
		return err;
	if (p.len == 4)
		*out = dt_be32(p.data);
	else if (p.len == 8)
		*out = dt_be64(p.data);
	else
		return DT_ERR_BADVALUE;
	return 0;
}

const char *dt_prop_string(const struct dt *dt, int node, const char *name)
{
	struct dt_prop p;
	if (dt_prop(dt, node, name, &p) || !dt_prop_is_string(&p))
		return NULL;
	return p.data;
}

bool dt_prop_has_string(const struct dt *dt, int node, const char *name, const char *str)
{
	struct dt_prop p;
	if (dt_prop(dt, node, name, &p))
		return false;
	const char *s = p.data;
	size_t want = strlen(str) + 1;
	/* Only whole, NUL-terminated entries count; a ragged tail is ignored. */
	for (uint32_t at = 0; at < p.len;) {
		const char *nul = memchr(s + at, '\0', p.len - at);
		if (!nul)
			break;
		size_t n = (size_t)(nul - (s + at)) + 1;
		if (n == want && memcmp(s + at, str, n) == 0)
			return true;
		at += (uint32_t)n;
	}
	return false;
}

bool dt_node_enabled(const struct dt *dt, int node)
{
	struct dt_prop p;
	int err = dt_prop(dt, node, "status", &p);
	if (err == DT_ERR_NOTFOUND)
		return true; /* a node without "status" is enabled; a bad handle gets BADOFFSET */
	if (err || !dt_prop_is_string(&p))
		return false;
	return strcmp(p.data, "okay") == 0 || strcmp(p.data, "ok") == 0;
}

/* ---- addresses ---- */

/* libfdt and the specification cap cell counts at 4; more is a corrupt tree. */
#define DT_MAX_CELLS 4

static int cells(const struct dt *dt, int node, const char *name, int dflt)
{
	uint32_t v;
	int err = dt_prop_u32(dt, node, name, &v);
	if (err == DT_ERR_NOTFOUND)
		return dflt; /* NOTFOUND only comes from a real node without the property */
	if (err)
		return err;
	return v > DT_MAX_CELLS ? DT_ERR_BADVALUE : (int)v;
}

int dt_addr_cells(const struct dt *dt, int node)
{
	return cells(dt, node, "#address-cells", 2);
}

int dt_size_cells(const struct dt *dt, int node)
{
	return cells(dt, node, "#size-cells", 1);
}

/* A number of `n` cells; those beyond the low two must be zero to fit in 64 bits. */
static int read_cells(const uint8_t *p, int n, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		if (i < n - 2 && dt_be32(p + 4 * i) != 0)
			return DT_ERR_BADVALUE;
		v = (v << 32) | dt_be32(p + 4 * i);
	}
	*out = v;
	return 0;
}

/* The cell counts that apply to `node`'s own reg: those of its parent. */
static int bus_cells(const struct dt *dt, int node, int *ac, int *sc)
{
	int parent = dt_parent(dt, node);
	if (parent == DT_ERR_NOTFOUND) {
		*ac = 2;
		*sc = 1;
		return 0;
	}
	if (parent < 0)
		return parent;
	*ac = dt_addr_cells(dt, parent);
	*sc = dt_size_cells(dt, parent);
	if (*ac < 0)
		return *ac;
	return *sc < 0 ? *sc : 0;
}

int dt_reg(const struct dt *dt, int node, unsigned index, uint64_t *addr, uint64_t *size)
{
	int ac, sc;
	int err = bus_cells(dt, node, &ac, &sc);
	if (err)
		return err;
	struct dt_prop p;
	err = dt_prop(dt, node, "reg", &p);
	if (err)
		return err;
	uint32_t entry = 4u * (uint32_t)(ac + sc);
	if (ac == 0 || p.len % entry)
		return DT_ERR_BADVALUE;
	if (index >= p.len / entry)
		return DT_ERR_NOTFOUND;
	const uint8_t *e = (const uint8_t *)p.data + (size_t)index * entry;
	uint64_t a, s;
	err = read_cells(e, ac, &a);
	if (!err)
		err = read_cells(e + 4 * ac, sc, &s);
	if (err)
		return err;
	if (addr)
		*addr = a;
	if (size)
		*size = s;
	return 0;
}

/* Map `addr` from the child side of `bus` to the side of `bus`'s parent. */
static int translate_one(const struct dt *dt, int bus, int up, uint64_t *addr)
{
	struct dt_prop r;
	int err = dt_prop(dt, bus, "ranges", &r);
	if (err || r.len == 0)
		return err;
	int cac = dt_addr_cells(dt, bus);
	int csc = dt_size_cells(dt, bus);
	int pac = dt_addr_cells(dt, up);
	if (cac < 0 || csc < 0 || pac < 0)
		return cac < 0 ? cac : csc < 0 ? csc : pac;
	uint32_t entry = 4u * (uint32_t)(cac + pac + csc);
	if (cac == 0 || pac == 0 || r.len % entry)
		return DT_ERR_BADVALUE;
	for (uint32_t off = 0; off < r.len; off += entry) {
		const uint8_t *e = (const uint8_t *)r.data + off;
		uint64_t child, parent, size;
		if (read_cells(e, cac, &child) || read_cells(e + 4 * cac, pac, &parent) ||
		    read_cells(e + 4 * (cac + pac), csc, &size))
			continue; /* e.g. PCI's flag cell: not a plain memory window */
		if (*addr >= child && *addr - child < size) {
			*addr = parent + (*addr - child);
			return 0;
		}
	}
	return DT_ERR_NOTFOUND;
}

int dt_translate(const struct dt *dt, int node, uint64_t *addr)
{
	int bus = dt_parent(dt, node);
	if (bus < 0)
		return bus == DT_ERR_NOTFOUND ? 0 : bus;
	for (;;) {
		int up = dt_parent(dt, bus);
		if (up == DT_ERR_NOTFOUND)
			return 0; /* the root's address space is the CPU's */
		if (up < 0)
			return up;
		int err = translate_one(dt, bus, up, addr);
		if (err)
			return err;
		bus = up;
	}
}

/* ---- searches ---- */

int dt_find_compatible(const struct dt *dt, int from, const char *compat)
{
	int node = dt_next_node(dt, from < 0 ? -1 : from, NULL);
	for (; node >= 0; node = dt_next_node(dt, node, NULL)) {
		if (dt_prop_has_string(dt, node, "compatible", compat))
			return node;
	}
	return node;
}

int dt_find_phandle(const struct dt *dt, uint32_t ph)
{
	if (ph == 0 || ph == UINT32_MAX)
		return DT_ERR_NOTFOUND; /* values reserved as "no phandle" */
	int node = dt_root(dt);
	for (; node >= 0; node = dt_next_node(dt, node, NULL)) {
		uint32_t v;
		if ((dt_prop_u32(dt, node, "phandle", &v) == 0 ||
		     dt_prop_u32(dt, node, "linux,phandle", &v) == 0) &&
		    v == ph)
			return node;
	}
	return node;
}
