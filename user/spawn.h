/* Starting a task from a boot module, for the root task (before the memory
 * server exists this is the whole of user-space memory management: frames are
 * taken from the boot-info ranges with a bump allocator and never reused). */
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
