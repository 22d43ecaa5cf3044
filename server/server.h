/* The memory server as it runs in the root task: frames, its own heap, the
 * client table and the message loop. */
#ifndef MICA_SERVER_SERVER_H
#define MICA_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "mica/bootinfo.h"
#include "server/mm_core.h"

/* Take over the RAM the boot info lists. => once, before anything else */
void server_frames_init(const struct bootinfo *bi);
/* 2^order contiguous zeroed pages, or 0. */
uint64_t server_frames_alloc(unsigned order);
void server_frames_stats(size_t *free_pages, size_t *total_pages);
void *server_window(uint64_t pa);

/* Start a client task from a boot module with a badged capability to the
 * server (its slot MM_SERVER_SLOT) and the server as its fault handler, under
 * `quota` (NULL: the boot-module default of 512 entries, 8 192 resident and 64
 * wired pages). Returns the client, or NULL. */
struct mm_client *server_spawn_client(const char *module, uint64_t arg, unsigned prio,
				      const struct mm_quota *quota);

/* Start another thread in `c` (thread index 1, 2, ... up to USER_THREADS_MAX - 1,
 * never reused) at its ELF entry with `arg` (< 2^56), a stack and an IPC
 * buffer of its own, and the server as its fault handler; user code sees it
 * as mica_thread_main(arg). -ESRCH: `c` is ending; -EINVAL: `arg` too wide;
 * -EAGAIN: no index left; other errors from the mapping or the kernel.
 * Nothing stays mapped on failure. */
long server_client_add_thread(struct mm_client *c, uint64_t arg, unsigned prio);

/* End `c` now, as for a violation but not counted as one: its memory goes at
 * once, its slot when the kernel's exit note arrives (in server_run). */
void server_client_kill(struct mm_client *c);

/* Grant `c` the MMIO devices whose compatible string is in `compat` (NULL-ended):
 * its device capability table. */
void server_grant_devices(struct mm_client *c, const char *const *compat);

/* Let `holder` share memory into `target`: its token lands in holder's `slot`. */
int server_give_share_token(struct mm_client *holder, struct mm_client *target, uint64_t slot);

/* Serve until no client is left. */
void server_run(void);

/* Create the server endpoint. */
int server_start(void);

extern const struct mm_env server_env;
extern uint64_t server_donated_pages; /* lent to the kernel for good */
extern unsigned server_kills;         /* clients killed for a bad access */
/* Pages the server's own heap holds (malloc never gives them back). */
uint64_t server_heap_pages(void);

#endif
