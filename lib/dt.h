/* A read-only reader for flattened device trees (DTB, version 16/17).
 *
 * Every accessor is bounds-checked against the size given to dt_open(): a
 * malformed or truncated blob yields an error, never an out-of-bounds read.
 * Node handles are offsets into the structure block, as in the DTB itself.
 * The prefix is dt_ (not fdt_) so that host tests can link libfdt as an oracle. */
#ifndef MICA_LIB_DT_H
#define MICA_LIB_DT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_MAGIC 0xd00dfeedu

/* Errors are negative; 0 or a positive offset is success. */
enum dt_error {
	DT_ERR_NOTFOUND = -1, /* no such node or property */
	DT_ERR_BADMAGIC = -2,
	DT_ERR_BADVERSION = -3,
	DT_ERR_TRUNCATED = -4, /* header or a block lies outside the blob */
	/* malformed structure block (bad token, nesting, length), or a misaligned block */
	DT_ERR_BADSTRUCT = -5,
	DT_ERR_BADVALUE = -6,  /* property present but of the wrong size or format */
	DT_ERR_BADOFFSET = -7, /* a handle that is not a node (or property cursor) of this tree */
};

/* Nesting limit checked by dt_open(): the root is level 1. Real trees use fewer than 10. */
#define DT_MAX_DEPTH 32

struct dt {
	const uint8_t *blob;
	uint32_t size; /* totalsize, already checked against the caller's bound */
	uint32_t off_struct, size_struct;
	uint32_t off_strings, size_strings;
	uint32_t off_rsvmap;
};

struct dt_prop {
	const char *name;
	const void *data; /* big-endian cells, inside the blob */
	uint32_t len;
};

/* Check the header and every block's bounds; the structure block is walked once
 * so that later accessors can trust token framing. `maxsize` is how many bytes
 * may be read at `blob` (the caller's knowledge; totalsize must not exceed it). */
int dt_open(struct dt *dt, const void *blob, size_t maxsize);

const char *dt_strerror(int err);

/* Reserved-memory block: entry `index` (0-based); DT_ERR_NOTFOUND past the end. */
int dt_memreserve(const struct dt *dt, unsigned index, uint64_t *base, uint64_t *size);

/* Nodes. The root is dt_root(). Names are "name@unit" as stored. */
int dt_root(const struct dt *dt);
const char *dt_node_name(const struct dt *dt, int node);
int dt_first_child(const struct dt *dt, int node);
int dt_next_sibling(const struct dt *dt, int node);
int dt_parent(const struct dt *dt, int node); /* DT_ERR_NOTFOUND for the root */
/* A child by exact name, or by name without unit address ("memory" finds "memory@80000000"). */
int dt_subnode(const struct dt *dt, int parent, const char *name);
/* An absolute path ("/cpus/cpu@1") or an alias name ("serial0"); a path may end in
 * ":options" (as stdout-path does), which is ignored. */
int dt_path(const struct dt *dt, const char *path);
/* Depth-first walk: the next node after `node` in document order; DT_ERR_NOTFOUND at the end.
 * A negative `node` starts the walk at the root (depth 0). When `depth` is not NULL it holds
 * the depth of `node` on entry and that of the result on return, and the walk stops with
 * DT_ERR_NOTFOUND instead of climbing above depth 0: start it at 0 to visit one subtree. */
int dt_next_node(const struct dt *dt, int node, int *depth);

/* Properties. */
int dt_prop(const struct dt *dt, int node, const char *name, struct dt_prop *out);
int dt_first_prop(const struct dt *dt, int node, struct dt_prop *out); /* returns a cursor */
int dt_next_prop(const struct dt *dt, int cursor, struct dt_prop *out);
bool dt_prop_is_string(const struct dt_prop *p); /* NUL-terminated, printable */
int dt_prop_u32(const struct dt *dt, int node, const char *name, uint32_t *out);
/* A 1- or 2-cell integer (e.g. timebase-frequency, clock-frequency). */
int dt_prop_uint(const struct dt *dt, int node, const char *name, uint64_t *out);
/* NULL unless the property is a well-formed string (of a string list, the first string). */
const char *dt_prop_string(const struct dt *dt, int node, const char *name);
/* Does a string-list property (e.g. "compatible") contain `str` exactly? */
bool dt_prop_has_string(const struct dt *dt, int node, const char *name, const char *str);
/* Is the node enabled (no "status", or "okay"/"ok")? */
bool dt_node_enabled(const struct dt *dt, int node);

/* #address-cells / #size-cells that apply to the children of `node`
 * (defaults 2 and 1 when absent, per the devicetree specification). */
int dt_addr_cells(const struct dt *dt, int node);
int dt_size_cells(const struct dt *dt, int node);
/* The `index`-th (address, size) pair of `node`'s "reg", decoded with its parent's
 * cell counts. DT_ERR_NOTFOUND past the end. Not translated through "ranges". */
int dt_reg(const struct dt *dt, int node, unsigned index, uint64_t *addr, uint64_t *size);
/* Turn `addr`, an address on the bus that `node` sits on (as dt_reg() returns it), into a
 * CPU physical address through the "ranges" of every ancestor bus. An empty "ranges" is
 * the identity; DT_ERR_NOTFOUND when a bus has no "ranges" (its children are not memory
 * mapped) or no range covers the address. */
int dt_translate(const struct dt *dt, int node, uint64_t *addr);

/* Find the next node (after `from`, or from the start with from = -1) whose
 * "compatible" contains `compat`. */
int dt_find_compatible(const struct dt *dt, int from, const char *compat);
/* The node whose "phandle" is `ph`. */
int dt_find_phandle(const struct dt *dt, uint32_t ph);

static inline uint32_t dt_be32(const void *p)
{
	const uint8_t *b = p;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static inline uint64_t dt_be64(const void *p)
{
	return ((uint64_t)dt_be32(p) << 32) | dt_be32((const uint8_t *)p + 4);
}

#endif
