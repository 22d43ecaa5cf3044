/*
 * Copies between kernel and user memory. The user range has been checked to
 * lie in user space; a fault on an unmapped or protected user page resumes at
 * the fixup through the exception table and returns -EFAULT.
 *
 * long uaccess_copy(void *dst, const void *src, unsigned long len)
 */
	.section .text
	.globl uaccess_copy
uaccess_copy:
	li	t1, 0x40000		/* sstatus.SUM: S-mode may touch U pages */
	csrs	sstatus, t1
	beqz	a2, 2f
1:
.Lload:	lbu	t0, 0(a1)
.Lstore: sb	t0, 0(a0)
	addi	a0, a0, 1
	addi	a1, a1, 1
	addi	a2, a2, -1
	bnez	a2, 1b
2:	csrc	sstatus, t1
	li	a0, 0
	ret
.Lfault:
	li	t1, 0x40000
	csrc	sstatus, t1
	li	a0, -14			/* -MICA_EFAULT */
	ret

	.pushsection __ex_table, "a"
	.balign 8
	.dword	.Lload, .Lfault
	.dword	.Lstore, .Lfault
	.popsection
