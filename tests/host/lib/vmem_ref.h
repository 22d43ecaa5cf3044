/* Differential harness for mm/vmem: every operation is applied to a real arena and to
 * a deliberately dumb reference (one owner slot per quantum), and the two are compared
 * after every step. Shared by tests/host/test_vmem_diff.c (random operations) and
 * tests/fuzz/fuzz_vmem.c (operations decoded from the fuzzer's bytes).
 *
 * Linked into every host test, fuzz target and benchmark: no cmocka here, and every
 * global name starts with vmem_ref_. A mismatch prints the operation, the arena and
 * the reason on stderr and calls abort(). */
#ifndef MICA_TESTS_VMEM_REF_H
#define MICA_TESTS_VMEM_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mm/vmem.h"

#define VMEM_REF_MAX_UNITS 1024

struct vmem_ref_config {
	vmem_addr_t base;       /* first address of the modelled range */
	unsigned units;         /* range length in quanta, 32 .. VMEM_REF_MAX_UNITS */
	vmem_size_t quantum;    /* power of two */
	unsigned qcache_quanta; /* quantum caches for 1..n quanta (0..VMEM_QCACHE_SIZES) */
	bool import;            /* the arena imports from a parent arena over the range */
	unsigned import_min_units;
	size_t initial_tags; /* tags in the pool at start; 0 = plenty */
	size_t refill_chunk; /* tags the refill hook adds per call; 0 = no hook */
	size_t tag_budget;   /* tags the hook and ADD_TAGS may add in all; 0 = plenty */
	size_t hash_buckets; /* 0 = the arena's built-in table */
};

enum vmem_ref_op_kind {
	VMEM_REF_ALLOC,    /* vmem_alloc(size, flags) */
	VMEM_REF_XALLOC,   /* vmem_xalloc with every parameter, possibly invalid */
	VMEM_REF_FREE,     /* free live allocation `pick` (xfree when `use_xfree`) */
	VMEM_REF_BAD_FREE, /* free something that is not an allocation, or the wrong size */
	VMEM_REF_DRAIN,
	VMEM_REF_ADD_SPAN, /* add span number `pick` of the layout (or overlap one) */
	VMEM_REF_ADD_TAGS, /* feed `size` tags from the budget to the pool */
	VMEM_REF_NKINDS,
};

struct vmem_ref_op {
	enum vmem_ref_op_kind kind;
	vmem_size_t size, align, phase, nocross;
	vmem_addr_t minaddr, maxaddr, addr;
	unsigned flags;
	unsigned pick;
	bool use_xfree;
};

struct vmem_ref_counts {
	uint64_t ops, alloc_ok, alloc_nomem, alloc_einval, frees, bad_frees, drains, spans_added,
	    tag_failures;
};

/* Start over with a fresh arena (and parent, with cfg->import). */
void vmem_ref_setup(const struct vmem_ref_config *cfg);
/* Apply one operation to both sides and compare; aborts on any disagreement. */
void vmem_ref_step(const struct vmem_ref_op *op);
/* Free everything, destroy the arenas and check that every tag came back. */
void vmem_ref_teardown(void);
const struct vmem_ref_counts *vmem_ref_counts(void);
struct vmem *vmem_ref_arena(void);

/* Random operation with a realistic mix (mostly valid, some deliberately bad). */
void vmem_ref_random_op(uint64_t *rng, struct vmem_ref_op *op);
/* Operation decoded from fuzzer bytes; false when the input is used up. */
bool vmem_ref_decode_op(const uint8_t **data, size_t *len, struct vmem_ref_op *op);
/* A configuration chosen by one byte (fuzzer) or a random number. */
void vmem_ref_pick_config(unsigned selector, struct vmem_ref_config *cfg);

/* splitmix64 */
uint64_t vmem_ref_rand(uint64_t *state);
/* The seed from $MICA_SEED if set, otherwise from the clock; printed either way. */
uint64_t vmem_ref_seed(const char *what);

#endif
