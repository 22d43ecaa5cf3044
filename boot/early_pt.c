/*
 * The boot page tables, built with the MMU off.
 *
 * This file runs at the physical load address before the jump to the link
 * address, so it may only use PC-relative references: no pointers stored in
 * data, no jump tables (the Makefile builds it with -fno-jump-tables), and no
 * calls outside this file.
 *
 * What it maps:
 *   - the image slot: KIMAGE_BASE onward, 2 MiB leaves onto the load address;
 *   - an identity gigapage around the load address, so the instruction after
 *     the satp write still fetches; kmain() removes it;
 *   - linear-map gigapages for the load address and for the device tree (and
 *     the gigabyte after it, in case the blob straddles the boundary), so the
 *     kernel can read the tree before it knows where RAM is.
 */
#include <stdint.h>

#include "arch/riscv64/boot_pt.h"
#include "arch/riscv64/csr.h"
#include "arch/riscv64/layout.h"
#include "mica/param.h"

uint64_t boot_root[PT_ENTRIES] __attribute__((aligned(4096)));
uint64_t boot_l1_image[PT_ENTRIES] __attribute__((aligned(4096)));
uint64_t boot_l1_dev[PT_ENTRIES] __attribute__((aligned(4096)));
uint64_t boot_l0_dev[PT_ENTRIES] __attribute__((aligned(4096)));
uint64_t boot_load_pa;

extern char _start[], _end[];

#define LEAF_KERNEL (PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D | PTE_G)
#define LEAF_DATA (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D | PTE_G)

static void boot_map_linear_gigapage(uint64_t pa)
{
	uint64_t giga = pa & ~(GIGAPAGE_SIZE - 1);
	if (giga >= LINEAR_SIZE)
		return;
	boot_root[vpn2(LINEAR_BASE + giga)] = pte_make(giga, LEAF_DATA);
}

uint64_t boot_build_tables(uint64_t load_pa, uint64_t dtb_pa)
{
	uint64_t image_bytes = (uint64_t)(_end - _start);
	uint64_t megapages = (image_bytes + MEGAPAGE_SIZE - 1) >> MEGAPAGE_SHIFT;

	for (uint64_t i = 0; i < megapages; i++)
		boot_l1_image[i] = pte_make(load_pa + (i << MEGAPAGE_SHIFT), LEAF_KERNEL);
	boot_root[vpn2(KIMAGE_BASE)] = pte_make((uint64_t)boot_l1_image, PTE_V);

	boot_root[vpn2(load_pa)] = pte_make(load_pa & ~(GIGAPAGE_SIZE - 1), LEAF_KERNEL);

	boot_map_linear_gigapage(load_pa);
	boot_map_linear_gigapage(dtb_pa);
	boot_map_linear_gigapage(dtb_pa + GIGAPAGE_SIZE);

	boot_l1_dev[0] = pte_make((uint64_t)boot_l0_dev, PTE_V);
	boot_root[vpn2(DEVWIN_BASE)] = pte_make((uint64_t)boot_l1_dev, PTE_V);

	boot_load_pa = load_pa;
	return SATP_MODE_SV39 | ((uint64_t)boot_root >> 12);
}
