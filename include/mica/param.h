/* Machine-independent sizes used by every layer (Sv39 base page). */
#ifndef MICA_PARAM_H
#define MICA_PARAM_H

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (PAGE_SIZE - 1)
#define MEGAPAGE_SHIFT 21 /* 2 MiB leaf at level 1 */
#define MEGAPAGE_SIZE (1UL << MEGAPAGE_SHIFT)
#define GIGAPAGE_SHIFT 30 /* 1 GiB leaf at level 2 */
#define GIGAPAGE_SIZE (1UL << GIGAPAGE_SHIFT)

/* User address space (DESIGN §6): page 0 is never mapped. */
#define USER_VA_MIN 0x1000UL
#define USER_VA_MAX 0x4000000000UL

#endif
