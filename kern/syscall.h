#ifndef MICA_KERN_SYSCALL_H
#define MICA_KERN_SYSCALL_H

#include "arch/riscv64/trapframe.h"
#include "kern/object.h"

/* => kernel entered from U-mode with t current */
void syscall_dispatch(struct thread *t, struct trapframe *tf);
/* => interrupts off, on this hart's kernel stack */
struct trapframe *user_trap(struct trapframe *tf);

#endif
