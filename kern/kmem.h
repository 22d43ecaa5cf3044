/* Translating between the kernel's two views of physical memory: the image
 * (linked at KIMAGE_BASE, loaded at boot_load_pa) and the linear map. */
#ifndef MICA_KERN_KMEM_H
#define MICA_KERN_KMEM_H

#include <stdint.h>

#include "arch/riscv64/boot_pt.h"
#include "arch/riscv64/layout.h"

static inline uint64_t kva_to_pa(const void *p)
{
	uint64_t va = (uint64_t)p;
	if (va >= KIMAGE_BASE && va < DEVWIN_BASE)
		return va - KIMAGE_BASE + boot_load_pa;
	return va - LINEAR_BASE;
}

static inline void *pa_to_kva(uint64_t pa)
{
	return (void *)(LINEAR_BASE + pa);
}

/* Map every RAM bank into the boot tables' linear map (gigapages, rounded out). */
struct plat_info;
void linear_map_ram(const struct plat_info *p);

#endif
