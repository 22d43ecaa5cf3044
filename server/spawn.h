/* Starting a bare task from a boot module, for the kernel tests the root task
 * runs before it becomes the memory server: frames from the server's
 * allocator, mapped directly, never reclaimed. Real clients are started with
 * server_spawn_client(), which keeps their memory in a map. */
#ifndef MICA_USER_SPAWN_H
#define MICA_USER_SPAWN_H

#include <stddef.h>
#include <stdint.h>

#include "mica/bootinfo.h"

void spawn_init(const struct bootinfo *bi);
/* Zeroed frames (page multiple), or 0 when RAM is exhausted. */
uint64_t spawn_frames(size_t bytes);
/* The root task's view of a physical address, through the RAM window. */
void *spawn_window(uint64_t pa);

/* Create a task from `module` in `task_slot` and start its first thread with
 * `arg` in a0; faults go to the endpoint in `fault_slot` (0: none).
 * Returns the task id or a negative error. */
long spawn_module(const char *module, uint64_t memctl, uint64_t task_slot, uint64_t arg,
		  uint64_t fault_slot, unsigned prio);

#endif
