/*
 * The memory-server client library: the MM protocol as functions, and the
 * POSIX-style wrappers built on it. Every mm_* call returns 0 or a positive
 * value on success and a negative MICA_E* error otherwise, leaving the address
 * space unchanged on error.
 */
#ifndef MICA_USER_MM_H
#define MICA_USER_MM_H

#include <stddef.h>
#include <stdint.h>

#include "mica/mm_proto.h"

/* Anonymous memory of `len` bytes (rounded up to pages), zero-filled on first
 * touch. `hint` is where to start looking (or the exact place with
 * MM_MAP_FIXED / MM_MAP_FIXED_NOREPLACE); `align` is 0 or a power of two from
 * the page size to 1 GiB. On success *addr is the mapping's address. */
long mm_map(void *hint, size_t len, unsigned prot, unsigned flags, size_t align, void **addr);
/* Remove [addr, addr+len); holes are fine, partial entries are split. */
long mm_unmap(void *addr, size_t len);
/* -ENOMEM if the range has a hole, -EACCES above the maximum protection or W+X. */
long mm_protect(void *addr, size_t len, unsigned prot);
/* Populate and pin; returns the page count, and the physical address of the
 * first `n` pages in pa[] (n <= MM_WIRE_REPORT), for DMA. Does not nest. */
long mm_wire(void *addr, size_t len, uint64_t *pa, unsigned n);
long mm_unwire(void *addr, size_t len);

/* Map the same frames as [addr, addr+len) into the task whose share token is in
 * `token_slot` (the token stays: a copy travels), with `prot` (no more than the
 * source has), at `hint` (exactly there with MM_MAP_FIXED / _NOREPLACE).
 * *out receives the address in the target. Writes are visible both ways; the
 * frames live until the last task unmaps them. */
long mm_share(void *addr, size_t len, uint64_t token_slot, void *hint, unsigned prot,
	      unsigned flags, void **out);

/* Map the MMIO range [pa, pa+len) (page aligned) with `prot` (read and/or
 * write; never execute). The task needs a grant for a device whose registers
 * contain the range; RAM is never mappable this way (-EPERM). Such a mapping
 * cannot be protected, wired or shared afterwards (-EINVAL). */
long mm_map_device(uint64_t pa, size_t len, unsigned prot, void **addr);

struct mm_query_result {
	uint64_t start, end;
	unsigned prot, max_prot, flags;
	int wired;
	uint64_t resident; /* pages */
};
/* The entry containing addr; -ENOENT when addr is not mapped. */
long mm_query(void *addr, struct mm_query_result *q);

struct mm_info_result {
	uint64_t free_frames, total_frames;
	uint64_t resident, wired, entries; /* this task's */
	uint64_t kernel_arena;             /* bytes in use */
	uint64_t server_held;              /* frames the server keeps: its heap, loans to the kernel */
	uint64_t quota_entries, quota_resident, quota_wired; /* this task's limits */
};
long mm_info(struct mm_info_result *info);

#endif
