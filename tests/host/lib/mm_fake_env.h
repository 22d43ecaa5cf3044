/* Host-only fake of what the memory server gets from the kernel (struct mm_env): the page
 * tables of one task, kept as a map va -> (pa, prot), and a fixed pool of simulated
 * frames.
 *
 * The fake refuses what the kernel refuses (unaligned or empty ranges, ranges outside user
 * space, a protection the page tables cannot hold, a frame the server does not own, a page
 * that is already mapped) with the kernel's errors. Every refusal except -EEXIST from
 * enter is also counted as misuse, and so is dropping a reference the frame does not
 * have, or the last one while a translation still names the frame, or mapping a frame
 * more often than it has references: the server should never do any of that, so tests
 * insist the count stays 0.
 *
 * One fake stands for one task and one client: only that task has page tables, and the
 * checks below assume that every allocated frame is one of that client's resident pages
 * (so SHARE between clients is outside what it can check). Linked into every host, fuzz and bench
 * binary: no cmocka, no server functions (bench binaries do not link server/), and every symbol
 * starts with mmfake_. */
#ifndef TESTS_HOST_LIB_MM_FAKE_ENV_H
#define TESTS_HOST_LIB_MM_FAKE_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/mm_core.h"

#define MMFAKE_PA_BASE 0x80200000UL /* physical address of frame 0 */

struct mmfake {
	struct mm_env env; /* what the server is given; env.ctx points back here */
	uint64_t task;     /* the only task with page tables */

	/* Page tables: open addressing on va; key va | 1 when used, 0 empty, 2 deleted. */
	uint64_t *pt_key;
	uint64_t *pt_pa;
	uint8_t *pt_prot;
	size_t pt_cap, pt_used, pt_tomb;

	/* Frames: FIFO of free frame numbers, so that a frame just freed is not handed out
	 * again at once and a stale use of it has time to show. */
	size_t nframes, nfree, fifo_head;
	size_t *fifo;
	uint32_t *refs; /* per frame: 0 free, else references (page_alloc, page_ref) */
	uint32_t *maps; /* per frame: translations naming it */

	/* Failure injection for page_alloc: < 0 never; otherwise the allocation that many
	 * calls from now fails (0: the next one), and with fail_all every one after it. */
	long fail_in;
	bool fail_all;
	/* The same for enter (-MICA_ENOMEM, as when the kernel is out of table pages). */
	long enter_fail_in;

	uint64_t allocs, frees, refs_taken, failures, enters, removes, protects, enter_failures;
	unsigned misuse;
	char why[256]; /* the first misuse */
};

int mmfake_init(struct mmfake *f, uint64_t task, size_t nframes);
void mmfake_fini(struct mmfake *f);

/* The protection the page tables hold for a mapping made with prot: write implies read,
 * since RISC-V reserves write-without-read. */
unsigned mmfake_pte_prot(unsigned prot);

bool mmfake_lookup(const struct mmfake *f, uint64_t va, uint64_t *pa, unsigned *prot);
size_t mmfake_frames_used(const struct mmfake *f);
bool mmfake_frame_allocated(const struct mmfake *f, uint64_t pa);
/* Calls fn for every translation, in no particular order. */
void mmfake_foreach(const struct mmfake *f,
                    void (*fn)(void *arg, uint64_t va, uint64_t pa, unsigned prot), void *arg);

/* Resident pages of a client, read from its table (layout in server/mm_core.h). */
bool mmfake_resident(const struct mm_client *c, uint64_t va, uint64_t *pa);
void mmfake_foreach_resident(const struct mm_client *c,
                             void (*fn)(void *arg, uint64_t va, uint64_t pa), void *arg);

/* Cross-checks the client against the fake: no misuse, vm_map_check, every resident page
 * inside a non-guard entry on an allocated frame of its own, a translation exactly for
 * the resident pages of accessible entries (with the entry's protection), no other
 * translation, frames in use == resident pages, wired entries fully resident and the
 * wired count right, quotas kept. 0, or -1 with the reason in why. */
int mmfake_check_client(const struct mmfake *f, const struct mm_client *c, char *why, size_t n);

/* Everything a failed request must leave as it was. */
struct mmfake_ent {
	uint64_t start, end;
	unsigned prot, max_prot, flags, wired;
};
struct mmfake_pte {
	uint64_t va, pa;
	unsigned prot;
};
struct mmfake_snap {
	size_t nent, npte, nres, frames_used, wired_pages;
	struct mmfake_ent *ent;
	struct mmfake_pte *pte; /* sorted by va */
	struct mmfake_pte *res; /* resident pages (prot unused), sorted by va */
};
void mmfake_snap_take(struct mmfake_snap *s, const struct mmfake *f, const struct mm_client *c);
/* true when equal; otherwise why says what differs */
bool mmfake_snap_equal(const struct mmfake_snap *s, const struct mmfake *f,
                       const struct mm_client *c, char *why, size_t n);
void mmfake_snap_free(struct mmfake_snap *s);

#endif
