/* The device window and the boot-time linear map of RAM.
 *
 * Until the pmap exists (issue 4) the kernel lives on the boot tables; this
 * file extends them with MMIO pages for the console and with the RAM banks the
 * device tree reported. */
#include "kern/kmem.h"

#include "arch/riscv64/csr.h"
#include "lib/platform.h"
#include "mica/param.h"

static unsigned devwin_next; /* next free page slot in boot_l0_dev */

/* => boot hart only, before other harts run */
void *devwin_map(uint64_t pa, uint64_t size)
{
	uint64_t first = pa & ~PAGE_MASK;
	uint64_t pages = (pa + size - first + PAGE_MASK) >> PAGE_SHIFT;
	if (size == 0 || pages > PT_ENTRIES - devwin_next)
		return 0;
	unsigned slot = devwin_next;
	for (uint64_t i = 0; i < pages; i++)
		boot_l0_dev[slot + i] = pte_make(first + (i << PAGE_SHIFT),
						 PTE_V | PTE_R | PTE_W | PTE_A | PTE_D | PTE_G);
	devwin_next += (unsigned)pages;
	sfence_vma_all();
	return (void *)(DEVWIN_BASE + ((uint64_t)slot << PAGE_SHIFT) + (pa - first));
}

/* => boot hart only, before other harts run */
void linear_map_ram(const struct plat_info *p)
{
	for (unsigned i = 0; i < p->nram; i++) {
		uint64_t start = p->ram[i].base & ~(GIGAPAGE_SIZE - 1);
		uint64_t end = p->ram[i].base + p->ram[i].size;
		for (uint64_t g = start; g < end && g < LINEAR_SIZE; g += GIGAPAGE_SIZE)
			boot_root[vpn2(LINEAR_BASE + g)] =
				pte_make(g, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D | PTE_G);
	}
	sfence_vma_all();
}
