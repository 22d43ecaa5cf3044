/* A test-and-set spinlock that also masks interrupts on the holding hart,
 * so an interrupt handler can never spin on a lock its own hart holds. */
#ifndef MICA_KERN_SPINLOCK_H
#define MICA_KERN_SPINLOCK_H

#include <stdbool.h>

#include "arch/riscv64/csr.h"

struct spinlock {
	volatile int locked;
	unsigned long saved_sie;
};

static inline void spin_lock(struct spinlock *l)
{
	unsigned long s = csr_read(sstatus) & SSTATUS_SIE;
	csr_clear(sstatus, SSTATUS_SIE);
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		;
	l->saved_sie = s;
}

static inline void spin_unlock(struct spinlock *l)
{
	unsigned long s = l->saved_sie;
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
	if (s)
		csr_set(sstatus, SSTATUS_SIE);
}

#endif
