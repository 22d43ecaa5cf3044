/* The page tables the boot code builds and the kernel keeps using until the
 * pmap (issue 4) takes over: one root, one level-1 table for the image slot,
 * and a level-1/level-0 pair for the device window. */
#ifndef MICA_ARCH_BOOT_PT_H
#define MICA_ARCH_BOOT_PT_H

#include <stdint.h>

#define PT_ENTRIES 512

extern uint64_t boot_root[PT_ENTRIES];
extern uint64_t boot_l1_image[PT_ENTRIES];
extern uint64_t boot_l1_dev[PT_ENTRIES];
extern uint64_t boot_l0_dev[PT_ENTRIES];

/* Physical address the image was loaded at; set by boot_build_tables(). */
extern uint64_t boot_load_pa;

static inline unsigned vpn2(uint64_t va)
{
	return (va >> 30) & 0x1ff;
}

/* Runs with the MMU off; returns the satp value that turns the tables on. */
uint64_t boot_build_tables(uint64_t load_pa, uint64_t dtb_pa);

#endif
