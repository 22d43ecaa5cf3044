#ifndef MICA_KERN_ROOT_H
#define MICA_KERN_ROOT_H

#include <stdint.h>

struct plat_info;

/* Create the root task from the first boot module: its ELF segments, a stack
 * with a guard page, an IPC buffer, the boot-info page, the window onto the
 * RAM it owns, and the memory-control capability. => boot hart, before sched_start */
void root_task_create(const struct plat_info *p, uint64_t dtb_pa, uint64_t dtb_size,
		      uint64_t boot_hartid, uint64_t flags);

#endif
