/*
 * The memory server's logic, apart from IPC: one `struct mm_client` per task
 * (a vm_map of its entries and a table of its resident pages), the request
 * decoder, and the operations. It reaches the kernel and physical memory only
 * through `struct mm_env`, so host tests run it without a kernel.
 *
 * Every request is decoded and validated in full (mm_decode) before anything
 * changes; an operation that fails leaves the map and the page tables exactly
 * as they were.
 */
#ifndef MICA_SERVER_MM_CORE_H
#define MICA_SERVER_MM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mica/mm_proto.h"
#include "mm/vm_map.h"

struct mm_env {
	/* The kernel's page tables of the client's task (prot: MM_PROT_*). */
	int (*enter)(void *ctx, uint64_t task, uint64_t va, uint64_t pa, uint64_t len,
		     unsigned prot);
	int (*remove)(void *ctx, uint64_t task, uint64_t va, uint64_t len);
	int (*protect)(void *ctx, uint64_t task, uint64_t va, uint64_t len, unsigned prot);
	/* A zeroed page with one reference; -MICA_ENOMEM when RAM is exhausted. */
	int (*page_alloc)(void *ctx, uint64_t *pa);
	/* Another reference (the page is shared), and dropping one (the page is
	 * freed with the last). */
	void (*page_ref)(void *ctx, uint64_t pa);
	void (*page_free)(void *ctx, uint64_t pa);
	/* Optional: 512 zeroed pages forming one naturally aligned 2 MiB block,
	 * each with its own reference (freed one by one like any page). */
	int (*page_alloc_2m)(void *ctx, uint64_t *pa);
	void *ctx;
};

struct mm_request {
	unsigned op;
	uint64_t addr, len, align;
	unsigned prot, flags;
	unsigned report; /* WIRE: physical addresses wanted */
	uint64_t hint2;  /* SHARE: where to place it in the target */
};

/* Resident pages: va -> pa, open addressing. */
struct mm_pagetab {
	uint64_t *keys; /* va | 1 when used, 0 empty, 2 deleted */
	uint64_t *vals;
	size_t cap, used, tomb;
};

struct mm_quota {
	size_t entries;   /* map entries */
	size_t resident;  /* pages */
	size_t wired;     /* pages */
};

struct mm_client {
	uint64_t badge;
	uint64_t task; /* the server's task-capability slot for it */
	struct vm_map map;
	struct mm_pagetab pages;
	size_t wired_pages;
	struct mm_quota quota;
	bool forbid_wx;
};

/* => pure function; -MICA_E* for a malformed request */
int mm_decode(uint64_t tag, const uint64_t mr[4], struct mm_request *req);

/* => client owned by the (single-threaded) server */
int mm_client_init(struct mm_client *c, uint64_t badge, uint64_t task, const struct mm_quota *q);
/* Remove every entry, free every page. => client owned by the server */
void mm_client_destroy(struct mm_client *c, const struct mm_env *env);

/* The operations; results as in the MM protocol. out[] receives extra reply
 * words (up to 64). => client owned by the server */
long mm_handle(struct mm_client *c, const struct mm_env *env, const struct mm_request *req,
	       uint64_t *out, unsigned *nout);

/* SHARE: the pages of [req->addr, +len) in `src` become a mapping in `dst`
 * (placed per req->flags at req->hint2) with req->prot, the same frames in both.
 * => both clients owned by the server */
long mm_core_share(struct mm_client *src, struct mm_client *dst, const struct mm_env *env,
	      const struct mm_request *req);

/* A page fault: 0 when the page is now mapped (resume), negative when the access
 * is a real violation (kill). `why` gets a short reason. => client owned by the server */
int mm_fault(struct mm_client *c, const struct mm_env *env, uint64_t addr, unsigned access,
	     const char **why);

size_t mm_resident_pages(const struct mm_client *c);

#endif
