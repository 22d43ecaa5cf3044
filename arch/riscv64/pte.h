/* Sv39 page-table entry format (RISC-V privileged spec, "Sv39"). Free of
 * inline assembly so that host tests can include it. */
#ifndef MICA_ARCH_PTE_H
#define MICA_ARCH_PTE_H

#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_G (1UL << 5)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE_PPN_SHIFT 10

#define PTE_RWX (PTE_R | PTE_W | PTE_X)
#define PTE_PPN_MASK (((1UL << 44) - 1) << PTE_PPN_SHIFT)

#ifndef __ASSEMBLY__
#include <stdint.h>

static inline uint64_t pte_make(uint64_t pa, uint64_t bits)
{
	return ((pa >> 12) << PTE_PPN_SHIFT) | bits;
}

static inline uint64_t pte_pa(uint64_t pte)
{
	return ((pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT) << 12;
}

/* A valid PTE with any of R, W, X is a leaf; with none it points to a table. */
static inline int pte_is_leaf(uint64_t pte)
{
	return (pte & PTE_V) && (pte & PTE_RWX);
}
#endif

#endif
