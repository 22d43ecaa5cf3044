#ifndef MICA_KERN_ROOT_H
#define MICA_KERN_ROOT_H

#include <stdint.h>

struct plat_info;
struct dt;
struct bootinfo_device;

/* Create the root task from the first boot module: its ELF segments, a stack
 * with a guard page, an IPC buffer, the boot-info page, the window onto the
 * RAM it owns, and the memory-control capability. => boot hart, before sched_start */
void root_task_create(const struct plat_info *p, const struct dt *dt, uint64_t dtb_pa,
		      uint64_t dtb_size, uint64_t boot_hartid, uint64_t flags);

/* The MMIO devices found in the device tree at boot. => no lock: fixed after boot */
unsigned kernel_devices(const struct bootinfo_device **out);

#endif
