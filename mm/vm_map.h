/* vm_map: one address space's mappings, kept as address-ordered entries in a red-black
 * tree whose nodes also carry the free gap after each entry and the largest such gap in
 * their subtree. That augmentation is what lets every find-space mode, alignment
 * included, run in O(log n).
 *
 * Locking: mm/ takes no locks. Every function below states what the caller must hold;
 * the memory server is single-threaded and the kernel serialises per map.
 *
 * Errors are negative MICA_E* values. A failing call changes nothing in the map: every
 * argument is checked and every entry an operation could need is allocated before the
 * first modification. */
#ifndef MM_VM_MAP_H
#define MM_VM_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protection bits (entry prot and max_prot). */
#define VM_PROT_NONE  0x0u
#define VM_PROT_READ  0x1u
#define VM_PROT_WRITE 0x2u
#define VM_PROT_EXEC  0x4u
#define VM_PROT_ALL   0x7u

/* Entry flags. Entries merge only when their flags are equal and NOMERGE is clear. */
#define VM_ENT_NOMERGE 0x1u /* never merged with a neighbour (keeps a mapping's identity) */
#define VM_ENT_GUARD   0x2u /* reserved, inaccessible range; requires max_prot == NONE */
#define VM_ENT_DEVICE  0x4u /* MMIO: backing/offset describe physical memory */
#define VM_ENT_SHARED  0x8u /* frames shared with another map */
#define VM_ENT_ALL     0xfu

/* Placement for vm_map_findspace() and vm_map_enter(). Without FIXED/NOREPLACE the hint
 * is a lower bound (bottom-up first fit) or, with TOPDOWN, an upper bound for the end. */
#define VM_PLACE_TOPDOWN   0x1u /* highest fitting address at or below the hint */
#define VM_PLACE_FIXED     0x2u /* exactly at the hint; enter replaces what is there */
#define VM_PLACE_NOREPLACE 0x4u /* exactly at the hint; -MICA_EEXIST if anything is there */
#define VM_PLACE_ALL       0x7u

struct vm_map_entry {
	/* Tree links; the parent pointer's low bit holds the colour (1 = black). */
	struct vm_map_entry *rb_left;
	struct vm_map_entry *rb_right;
	uintptr_t rb_parent_colour;
	/* Address-ordered circular list through the map's header. */
	struct vm_map_entry *prev;
	struct vm_map_entry *next;
	uintptr_t start; /* first byte */
	uintptr_t end;   /* first byte after */
	size_t gap;      /* free bytes from end to the next entry (or the map's max) */
	size_t max_gap;  /* largest gap in this node's subtree */
	void *backing;   /* opaque to the map: what the server hangs pages on */
	uint64_t offset; /* backing offset of start */
	uint8_t prot;
	uint8_t max_prot;
	uint16_t flags;
	uint32_t wired; /* user wiring does not nest: 0 or 1 */
};

/* Where entries come from. alloc may return NULL (-MICA_ENOMEM, map unchanged). ref and
 * unref may be NULL; when set, the map calls ref when a split makes a second entry point
 * at the same backing and unref when an entry pointing at one goes away (merge, removal
 * after the removal callback, or a new mapping absorbed into a neighbour), so the count
 * of references always equals the number of entries naming the backing. */
struct vm_map_ops {
	struct vm_map_entry *(*alloc)(void *ctx);
	void (*free)(void *ctx, struct vm_map_entry *e);
	void (*ref)(void *ctx, void *backing);
	void (*unref)(void *ctx, void *backing);
	void *ctx;
};

/* Attributes of a new mapping. backing carries one reference, which the map takes only
 * when the call succeeds. offset is page aligned and offset + len must not wrap, so that
 * splits can always derive the offset of each piece. */
struct vm_map_attr {
	unsigned prot;
	unsigned max_prot;
	unsigned flags; /* VM_ENT_* */
	void *backing;
	uint64_t offset;
};

struct vm_map_stats {
	uint64_t visits; /* tree nodes touched by searches, fix-ups and rotations */
	uint64_t merges;
	uint64_t splits;
};

struct vm_map {
	/* List head and gap owner for the space below the first entry. Its start is the
	 * map's max and its end the map's min, so "next->start - end" is the gap for every
	 * entry, the header included. It is never in the tree. */
	struct vm_map_entry header;
	struct vm_map_entry *root;
	struct vm_map_entry *hint; /* last lookup result; the header or a live entry */
	uintptr_t min, max;
	size_t nentries;
	size_t size;       /* bytes mapped */
	size_t wired_size; /* bytes wired */
	bool debug_check;  /* MICA_TEST builds: run vm_map_check() after every change */
	struct vm_map_ops ops;
	struct vm_map_stats stats;
};

/* Called once per removed piece, in address order, after the map is consistent again and
 * before the piece's entry is freed. Only the mapping fields (start, end, backing, offset,
 * prot, max_prot, flags, wired) are meaningful; the callback must not touch the map. */
typedef void (*vm_map_remove_cb)(void *arg, const struct vm_map_entry *piece);

/* Return nonzero to stop; vm_map_foreach() returns that value. */
typedef int (*vm_map_iter_cb)(void *arg, const struct vm_map_entry *e);

/* => map storage owned by caller, not yet in use */
int vm_map_init(struct vm_map *map, uintptr_t min, uintptr_t max, const struct vm_map_ops *ops);

/* => map locked by caller; removes every entry (cb may be NULL); map stays usable */
void vm_map_clear(struct vm_map *map, vm_map_remove_cb cb, void *arg);

/* => map locked by caller (the hint is updated). True if addr is mapped: *out is the entry
 * holding it. Otherwise *out is the entry before addr, or NULL when there is none. */
bool vm_map_lookup(struct vm_map *map, uintptr_t addr, struct vm_map_entry **out);

/* => map locked by caller; entry iteration in address order, NULL at the end */
struct vm_map_entry *vm_map_first(const struct vm_map *map);
/* => map locked by caller */
struct vm_map_entry *vm_map_next(const struct vm_map *map, const struct vm_map_entry *e);

/* => map locked by caller; calls cb for each entry overlapping [addr, addr + len) */
int vm_map_foreach(struct vm_map *map, uintptr_t addr, size_t len, vm_map_iter_cb cb, void *arg);

/* => map locked by caller; no change. Finds where a mapping of len bytes aligned to align
 * (0 = page, else a power of two >= PAGE_SIZE) would go; see VM_PLACE_*. */
int vm_map_findspace(struct vm_map *map, uintptr_t hint, size_t len, size_t align, unsigned place,
                     uintptr_t *addr);

/* => map locked by caller. Places and inserts a mapping, merging with compatible
 * neighbours. With VM_PLACE_FIXED, whatever was in the range is removed first and
 * reported through cb (may be NULL). *addr receives the address. */
int vm_map_enter(struct vm_map *map, uintptr_t hint, size_t len, size_t align, unsigned place,
                 const struct vm_map_attr *attr, vm_map_remove_cb cb, void *arg, uintptr_t *addr);

/* => map locked by caller; [addr, addr + len) must be free (else -MICA_EEXIST) */
int vm_map_insert(struct vm_map *map, uintptr_t addr, size_t len, const struct vm_map_attr *attr);

/* => map locked by caller; holes are fine, partial entries are split; cb may be NULL */
int vm_map_remove(struct vm_map *map, uintptr_t addr, size_t len, vm_map_remove_cb cb, void *arg);

/* => map locked by caller; -MICA_ENOMEM on a hole, -MICA_EACCES above max_prot */
int vm_map_protect(struct vm_map *map, uintptr_t addr, size_t len, unsigned prot);

/* => map locked by caller; -MICA_ENOMEM on a hole or a guard entry; does not nest */
int vm_map_wire(struct vm_map *map, uintptr_t addr, size_t len);
/* => map locked by caller; -MICA_ENOMEM on a hole or a guard entry */
int vm_map_unwire(struct vm_map *map, uintptr_t addr, size_t len);

/* => map locked by caller (read is enough). 0 when every invariant holds; otherwise a
 * negative errno with *why (if not NULL) naming the broken rule. O(n). */
int vm_map_check(const struct vm_map *map, const char **why);

#endif
