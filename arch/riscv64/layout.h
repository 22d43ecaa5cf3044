/* Kernel virtual address layout (Sv39). User space is the lower half,
 * [USER_VA_MIN, USER_VA_MAX) from mica/param.h; the kernel owns the upper half.
 *
 *   0xffff_ffc0_0000_0000  linear map of physical memory: VA = LINEAR_BASE + PA (128 GiB)
 *   0xffff_ffe0_0000_0000  kernel arena (vmem-managed; see issue 4)
 *   0xffff_ffff_8000_0000  kernel image (link address), 1 GiB slot
 *   0xffff_ffff_c000_0000  device window: MMIO mapped page by page
 *
 * Each region starts on a root-table (1 GiB) boundary so that the boot code
 * and the pmap can reason in root slots. */
#ifndef MICA_ARCH_LAYOUT_H
#define MICA_ARCH_LAYOUT_H

#define LINEAR_BASE 0xffffffc000000000UL
#define LINEAR_SIZE 0x2000000000UL /* 128 GiB: root slots 256..383 */
#define KARENA_BASE 0xffffffe000000000UL
#define KARENA_SIZE 0x100000000UL /* 4 GiB: root slots 384..387 */
#define KIMAGE_BASE 0xffffffff80000000UL /* root slot 510 */
#define DEVWIN_BASE 0xffffffffc0000000UL /* root slot 511 */
#define DEVWIN_SIZE 0x200000UL           /* one level-0 table: 512 pages */

#define KSTACK_SIZE 0x4000UL

#endif
