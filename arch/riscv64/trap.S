/*
 * Trap entry and exit.
 *
 * sscratch is zero while the hart runs in the kernel, so a trap from S-mode
 * keeps its stack and saves a frame on it. While a thread runs in U-mode,
 * sscratch holds the hart's struct hart: the entry swaps it into sp, saves the
 * user registers into the thread's context (hart->cur_ctx), and continues on
 * the hart's kernel stack with the kernel's tp. user_trap() returns the
 * context to resume, which may belong to another thread.
 */
#include "arch/riscv64/trapframe.h"
#include "kern/hart.h"

	.section .text
	.balign 4
	.globl trap_entry
trap_entry:
	csrrw	sp, sscratch, sp
	bnez	sp, trap_from_user
	csrr	sp, sscratch		/* back to the kernel stack; sscratch is zero again */
	csrw	sscratch, zero

	addi	sp, sp, -TF_SIZE
	sd	x1, 1*8(sp)
	sd	x3, 3*8(sp)
	sd	x4, 4*8(sp)
	sd	x5, 5*8(sp)
	sd	x6, 6*8(sp)
	sd	x7, 7*8(sp)
	sd	x8, 8*8(sp)
	sd	x9, 9*8(sp)
	sd	x10, 10*8(sp)
	sd	x11, 11*8(sp)
	sd	x12, 12*8(sp)
	sd	x13, 13*8(sp)
	sd	x14, 14*8(sp)
	sd	x15, 15*8(sp)
	sd	x16, 16*8(sp)
	sd	x17, 17*8(sp)
	sd	x18, 18*8(sp)
	sd	x19, 19*8(sp)
	sd	x20, 20*8(sp)
	sd	x21, 21*8(sp)
	sd	x22, 22*8(sp)
	sd	x23, 23*8(sp)
	sd	x24, 24*8(sp)
	sd	x25, 25*8(sp)
	sd	x26, 26*8(sp)
	sd	x27, 27*8(sp)
	sd	x28, 28*8(sp)
	sd	x29, 29*8(sp)
	sd	x30, 30*8(sp)
	sd	x31, 31*8(sp)
	addi	t0, sp, TF_SIZE
	sd	t0, 2*8(sp)		/* the interrupted stack pointer */
	csrr	t0, sepc
	sd	t0, TF_SEPC(sp)
	csrr	t0, sstatus
	sd	t0, TF_SSTATUS(sp)
	csrr	t0, scause
	sd	t0, TF_SCAUSE(sp)
	csrr	t0, stval
	sd	t0, TF_STVAL(sp)

	mv	a0, sp
	call	trap_handler

	ld	t0, TF_SEPC(sp)
	csrw	sepc, t0
	ld	t0, TF_SSTATUS(sp)
	csrw	sstatus, t0
	ld	x1, 1*8(sp)
	ld	x3, 3*8(sp)
	ld	x4, 4*8(sp)
	ld	x5, 5*8(sp)
	ld	x6, 6*8(sp)
	ld	x7, 7*8(sp)
	ld	x8, 8*8(sp)
	ld	x9, 9*8(sp)
	ld	x10, 10*8(sp)
	ld	x11, 11*8(sp)
	ld	x12, 12*8(sp)
	ld	x13, 13*8(sp)
	ld	x14, 14*8(sp)
	ld	x15, 15*8(sp)
	ld	x16, 16*8(sp)
	ld	x17, 17*8(sp)
	ld	x18, 18*8(sp)
	ld	x19, 19*8(sp)
	ld	x20, 20*8(sp)
	ld	x21, 21*8(sp)
	ld	x22, 22*8(sp)
	ld	x23, 23*8(sp)
	ld	x24, 24*8(sp)
	ld	x25, 25*8(sp)
	ld	x26, 26*8(sp)
	ld	x27, 27*8(sp)
	ld	x28, 28*8(sp)
	ld	x29, 29*8(sp)
	ld	x30, 30*8(sp)
	ld	x31, 31*8(sp)
	addi	sp, sp, TF_SIZE
	sret

trap_from_user:
	/* sp = struct hart, sscratch = user sp */
	sd	t0, HART_SCRATCH(sp)
	ld	t0, HART_CUR_CTX(sp)
	sd	x1, 1*8(t0)
	sd	x3, 3*8(t0)
	sd	x4, 4*8(t0)
	sd	x6, 6*8(t0)
	sd	x7, 7*8(t0)
	sd	x8, 8*8(t0)
	sd	x9, 9*8(t0)
	sd	x10, 10*8(t0)
	sd	x11, 11*8(t0)
	sd	x12, 12*8(t0)
	sd	x13, 13*8(t0)
	sd	x14, 14*8(t0)
	sd	x15, 15*8(t0)
	sd	x16, 16*8(t0)
	sd	x17, 17*8(t0)
	sd	x18, 18*8(t0)
	sd	x19, 19*8(t0)
	sd	x20, 20*8(t0)
	sd	x21, 21*8(t0)
	sd	x22, 22*8(t0)
	sd	x23, 23*8(t0)
	sd	x24, 24*8(t0)
	sd	x25, 25*8(t0)
	sd	x26, 26*8(t0)
	sd	x27, 27*8(t0)
	sd	x28, 28*8(t0)
	sd	x29, 29*8(t0)
	sd	x30, 30*8(t0)
	sd	x31, 31*8(t0)
	ld	t1, HART_SCRATCH(sp)
	sd	t1, 5*8(t0)
	csrr	t1, sscratch
	sd	t1, 2*8(t0)
	csrr	t1, sepc
	sd	t1, TF_SEPC(t0)
	/* scause and stval stay in their CSRs: user_trap() reads them, and
	 * records them in the frame only for an exception. */
	csrw	sscratch, zero
	addi	tp, sp, HART_LOCAL_SIZE
	ld	sp, HART_KSTACK_TOP(sp)
	mv	a0, t0
	call	user_trap
	/* fall through with a0 = the context to resume */

	.globl user_return
user_return:
	/* a0 = struct trapframe of the thread to run; tp = this hart's kernel tp */
	addi	t0, tp, -HART_LOCAL_SIZE
	sd	a0, HART_CUR_CTX(t0)
	csrw	sscratch, t0
	ld	t1, TF_SEPC(a0)
	csrw	sepc, t1
	/* Back to U-mode with no user access from S-mode left on. SPIE is
	 * already set: by the trap from U-mode, or by sched_start. */
	li	t1, 0x40100		/* SUM | SPP */
	csrc	sstatus, t1
	ld	x1, 1*8(a0)
	ld	x2, 2*8(a0)
	ld	x3, 3*8(a0)
	ld	x4, 4*8(a0)
	ld	x5, 5*8(a0)
	ld	x6, 6*8(a0)
	ld	x7, 7*8(a0)
	ld	x8, 8*8(a0)
	ld	x9, 9*8(a0)
	ld	x11, 11*8(a0)
	ld	x12, 12*8(a0)
	ld	x13, 13*8(a0)
	ld	x14, 14*8(a0)
	ld	x15, 15*8(a0)
	ld	x16, 16*8(a0)
	ld	x17, 17*8(a0)
	ld	x18, 18*8(a0)
	ld	x19, 19*8(a0)
	ld	x20, 20*8(a0)
	ld	x21, 21*8(a0)
	ld	x22, 22*8(a0)
	ld	x23, 23*8(a0)
	ld	x24, 24*8(a0)
	ld	x25, 25*8(a0)
	ld	x26, 26*8(a0)
	ld	x27, 27*8(a0)
	ld	x28, 28*8(a0)
	ld	x29, 29*8(a0)
	ld	x30, 30*8(a0)
	ld	x31, 31*8(a0)
	ld	x10, 10*8(a0)
	sret
