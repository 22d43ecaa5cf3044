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
	lla	t0, hart_blocks		/* index 0: the boot hart's */
	addi	tp, t0, HART_LOCAL_SIZE	/* tp points past struct hart; TLS lives above */
	mv	a0, s0
	mv	a1, s1
	lla	a2, _start		/* virtual address of the image... */
	call	kmain			/* ...kmain gets the physical one from the tables */
	/* kmain does not return. */
3:	wfi
	j	3b

boot_park:
	/* A hart released by firmware without HSM. Mica starts the others only
	 * through HSM, at secondary_entry; this one stays here for good. */
	csrw	sie, zero
4:	wfi
	j	4b

/*
 * A hart started through SBI HSM (kern/smp.c): a0 = hart id, a1 = physical
 * address of its struct secondary_args {satp, sp, tp, entry}, MMU off. Loading
 * satp makes this physical PC meaningless (the kernel tables map nothing in
 * the lower half), so the next fetch faults, and the fault lands at stvec:
 * the virtual entry. Position independent like the rest of this page.
 */
	.balign 4
	.globl secondary_entry
secondary_entry:
	csrw	sie, zero
	csrw	sscratch, zero
	ld	t0, 24(a1)
	csrw	stvec, t0
	ld	sp, 8(a1)
	ld	tp, 16(a1)
	ld	t0, 0(a1)
	sfence.vma
	csrw	satp, t0
	/* not reached: the fetch of this instruction faults to stvec */
5:	j	5b

	.section .text
	.balign 4
	.globl secondary_high
secondary_high:
	sfence.vma
	call	secondary_main
6:	wfi
	j	6b

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
