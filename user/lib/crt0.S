/* User entry: the kernel starts a task's first thread here with sp set,
 * a0 = its argument (the boot-info address for the root task). A further
 * thread comes here too, with USER_THREAD_FLAG (bit 63) set in a0: it keeps
 * its thread-local block at the top of its own stack. */
#define TLS_BLOCK_SIZE 256 /* as __user_tls in start.c */

	.section .text.start, "ax"
	.globl _start
_start:
	.option push
	.option norelax
	lla	gp, __global_pointer$
	.option pop
	mv	s0, a0
	bltz	a0, 2f
	lla	a0, __user_tls
	call	mica_tls_init
	mv	a0, s0
	call	mica_start
1:	j	1b
2:	addi	sp, sp, -TLS_BLOCK_SIZE
	mv	a0, sp
	call	mica_tls_init
	mv	a0, s0
	call	mica_thread_entry
	j	1b
