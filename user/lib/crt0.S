/* User entry: the kernel starts a task's first thread here with sp set,
 * a0 = its argument (the boot-info address for the root task). */
	.section .text.start, "ax"
	.globl _start
_start:
	.option push
	.option norelax
	lla	gp, __global_pointer$
	.option pop
	mv	s0, a0
	lla	a0, __user_tls
	call	mica_tls_init
	mv	a0, s0
	call	mica_start
1:	j	1b
