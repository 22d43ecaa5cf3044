/* The boot-time linear map of RAM: gigapages added to the boot tables once the
 * device tree has named the RAM banks, so that the kernel pool and the pmap can
 * reach every page while they build the real kernel tables. */
#include "kern/kmem.h"

#include "arch/riscv64/csr.h"
#include "lib/platform.h"
#include "mica/param.h"

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
