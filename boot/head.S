/*
 * Kernel entry. The first 64 bytes are the RISC-V Linux image header, so that
 * both `qemu -kernel` and U-Boot `booti` accept the image. Firmware enters at
 * offset 0 in S-mode with the MMU off: a0 = hart id, a1 = physical address of
 * the device tree. Until the jump to the kernel's link address everything here
 * (and boot_build_tables(), called from here) must be position independent,
 * because the image runs wherever it was loaded.
 */
#include "arch/riscv64/csr.h"
#include "arch/riscv64/layout.h"
#include "kern/hart.h"

	.section .text.head, "ax"
	.globl _start
_start:
	.option push
	.option norvc
	j	boot_entry		/* code0: hop over the header */
	.word	0			/* code1 */
	.option pop
	.dword	MICA_TEXT_OFFSET	/* text_offset: booti places us at RAM base + this */
	.dword	mica_image_size		/* image_size: load size plus bss, from kernel.ld */
	.dword	0			/* flags: little endian */
	.word	2			/* header version 0.2 */
	.word	0			/* res1 */
	.dword	0			/* res2 */
	.ascii	"RISCV\0\0\0"		/* magic (deprecated, still checked by some loaders) */
	.ascii	"RSC\x05"		/* magic2 */
	.word	0			/* res3: no PE/COFF header */

boot_entry:
	csrw	sie, zero
	csrw	sscratch, zero
	mv	s0, a0
	mv	s1, a1

	/* Firmware without HSM may release every hart here: one wins, the rest park. */
	lla	t0, boot_lottery
	li	t1, 1
	amoadd.w t1, t1, (t0)
	bnez	t1, boot_park

	lla	t0, __bss_start
	lla	t1, __bss_end
1:	bgeu	t0, t1, 2f
	sd	zero, 0(t0)
	addi	t0, t0, 8
	j	1b
2:
	/* A temporary stack inside the image (physical) for the table builder. */
	lla	sp, boot_stack_top
	lla	a0, _start
	mv	a1, s1
	call	boot_build_tables	/* returns the satp value in a0 */

	sfence.vma
	csrw	satp, a0
	sfence.vma

	/* The identity slot keeps this PC valid; now go to the link address. */
	ld	t0, .Lhigh
	jr	t0

	.balign 8
.Lhigh:	.dword	boot_high

boot_high:
	lla	sp, boot_stack_top	/* same stack, now by virtual address */
	lla	t0, boot_hart_block
	addi	tp, t0, HART_LOCAL_SIZE	/* tp points past struct hart; TLS lives above */
	mv	a0, s0
	mv	a1, s1
	lla	a2, _start		/* virtual address of the image... */
	call	kmain			/* ...kmain gets the physical one from the tables */
	/* kmain does not return. */
3:	wfi
	j	3b

boot_park:
	/* Parked until SMP support starts harts properly through HSM. */
	csrw	sie, zero
4:	wfi
	j	4b

	.section .data
	.balign 4
boot_lottery:
	.word	0

	.section .bss.stack, "aw", @nobits
	.balign 16
	.globl boot_stack_bottom
boot_stack_bottom:
	.space	KSTACK_SIZE
	.globl boot_stack_top
boot_stack_top:
