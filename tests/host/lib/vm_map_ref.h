/* Host-only reference model and test harness for mm/vm_map.
 *
 * The model keeps one record per page over a small address range and implements every
 * vm_map operation by brute force, so that differential tests, the fuzzer and the
 * allocation-failure tests can compare the real map with it after each step. It is
 * linked into every host binary: no cmocka here, and every symbol starts with vmref_. */
#ifndef TESTS_HOST_LIB_VM_MAP_REF_H
#define TESTS_HOST_LIB_VM_MAP_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mm/vm_map.h"

struct vmref_page {
	uint8_t mapped;
	uint8_t prot;
	uint8_t max_prot;
	uint8_t flags;
	uint8_t wired;
	uint8_t cut; /* an entry boundary sits before this page even if attributes agree */
	void *backing;
	uint64_t offset; /* backing offset of this page */
};

struct vmref {
	uintptr_t min, max;
	size_t npages;
	struct vmref_page *pg;
};

int vmref_init(struct vmref *r, uintptr_t min, size_t npages);
void vmref_fini(struct vmref *r);
int vmref_findspace(const struct vmref *r, uintptr_t hint, size_t len, size_t align, unsigned place,
                    uintptr_t *addr);
int vmref_enter(struct vmref *r, uintptr_t hint, size_t len, size_t align, unsigned place,
                const struct vm_map_attr *attr, uintptr_t *addr);
int vmref_remove(struct vmref *r, uintptr_t addr, size_t len);
int vmref_protect(struct vmref *r, uintptr_t addr, size_t len, unsigned prot);
int vmref_wire(struct vmref *r, uintptr_t addr, size_t len);
int vmref_unwire(struct vmref *r, uintptr_t addr, size_t len);

/* A run of pages that the canonical map keeps as one entry. */
struct vmref_run {
	size_t first, npages;
};
/* Next run starting at page index >= from; false when there is none. */
bool vmref_next_run(const struct vmref *r, size_t from, struct vmref_run *run);

/* Entry allocator for tests: counts live entries, can fail on demand, and keeps a
 * reference count per backing object (the objects are the addresses of objs[i]). */
#define VMREF_NOBJ 4
struct vmref_env {
	size_t live;       /* entries allocated and not freed */
	size_t allocs;     /* successful allocations so far */
	long fail_in;      /* < 0: never; else the fail_in-th allocation from now fails */
	bool fail_all;     /* once failing, keep failing */
	unsigned failures; /* allocations refused */
	long refs[VMREF_NOBJ];
	char objs[VMREF_NOBJ];
};
void vmref_env_init(struct vmref_env *env);
struct vm_map_ops vmref_env_ops(struct vmref_env *env);
int vmref_env_obj(const struct vmref_env *env, const void *backing); /* index or -1 */

/* Full copy of a map, pointers and tree shape included, for "exactly unchanged" tests. */
struct vmref_dump {
	struct vm_map map;
	size_t n, cap;
	const struct vm_map_entry **ptr;
	struct vm_map_entry *ent;
};
void vmref_dump_take(struct vmref_dump *d, const struct vm_map *map);
bool vmref_dump_equal(const struct vmref_dump *d, const struct vm_map *map);
void vmref_dump_free(struct vmref_dump *d);

enum vmref_kind {
	VMREF_ENTER,
	VMREF_REMOVE,
	VMREF_PROTECT,
	VMREF_WIRE,
	VMREF_UNWIRE,
	VMREF_LOOKUP,
	VMREF_FINDSPACE,
	VMREF_NKINDS
};

struct vmref_op {
	enum vmref_kind kind;
	uintptr_t addr; /* or hint */
	size_t len;
	size_t align;
	unsigned place;
	unsigned prot, max_prot, flags;
	int obj; /* backing object index, -1 for none */
	uint64_t offset;
	long fail_in; /* inject an allocation failure (-1: none) */
};

struct vmref_harness {
	struct vm_map map;
	struct vmref ref;
	struct vmref_env env;
	struct vmref ref_before; /* model before the step, for removal pieces and undo */
	size_t npieces, cap_pieces;
	struct vm_map_entry *pieces; /* what the removal callback reported */
	struct vmref_dump dump;
	uint64_t steps, errors, injected;
	char msg[512];
};

int vmref_h_init(struct vmref_harness *h, uintptr_t min, size_t npages);
void vmref_h_fini(struct vmref_harness *h);
/* Applies op to both the map and the model and compares everything; 0 or -1 (h->msg). */
int vmref_h_step(struct vmref_harness *h, const struct vmref_op *op);
/* Compares map and model state, runs the checker, checks reference counts. */
int vmref_h_compare(struct vmref_harness *h);

uint64_t vmref_rand(uint64_t *state);
void vmref_op_random(struct vmref_op *op, uint64_t *rng, const struct vmref *r);
/* Builds an op from fuzzer bytes; false when the input is exhausted. */
bool vmref_op_decode(struct vmref_op *op, const uint8_t **data, size_t *size,
                     const struct vmref *r);
void vmref_op_format(const struct vmref_op *op, char *buf, size_t n);

#endif
