/*
 * The big kernel lock. Every entry from user mode takes it before looking at
 * any kernel object and drops it just before returning to user mode, so the
 * kernel proper runs on one hart at a time, as in seL4. What it buys: the
 * event-driven kernel (one stack per hart, nothing ever sleeps in the kernel)
 * needs no other lock for tasks, threads, endpoints, capabilities or the run
 * queue. The few leaf locks below it (karena, kernel pmap, kpool, console)
 * guard what boot code and panics reach without it.
 *
 * A ticket lock, so that harts get the kernel in arrival order: a hart in a
 * tight system-call loop cannot starve the others. A waiter spins a while,
 * then sleeps in wfi until the holder's unlock sends it an IPI: short waits
 * stay cheap, and long ones stop taking the processor (or, under QEMU, the
 * host core) from the hart that holds the lock.
 *
 * Lock order: BKL, then the karena lock, the kernel pmap lock, the kpool lock;
 * the console lock is a leaf.
 */
#ifndef MICA_KERN_BKL_H
#define MICA_KERN_BKL_H

#include <stdbool.h>
#include <stdint.h>

#include "kern/hart.h"

struct ticket_lock {
	uint32_t next;     /* the ticket the next arrival draws */
	uint32_t owner;    /* the ticket being served */
	uint64_t sleepers; /* harts waiting in wfi for their turn */
};

extern struct ticket_lock bkl;

/* The slow halves, out of line. */
void bkl_wait(uint32_t ticket);
void bkl_wake_sleepers(void);

/* Draw a ticket; the lock is this hart's once bkl_served(ticket).
 * => interrupts off on this hart; the BKL not held by it */
static inline uint32_t bkl_draw(void)
{
	return __atomic_fetch_add(&bkl.next, 1, __ATOMIC_RELAXED);
}

static inline bool bkl_served(uint32_t ticket)
{
	return __atomic_load_n(&bkl.owner, __ATOMIC_ACQUIRE) == ticket;
}

/* => interrupts off on this hart; the BKL not held by it */
static inline void bkl_lock(void)
{
	uint32_t ticket = bkl_draw();
	if (!bkl_served(ticket))
		bkl_wait(ticket);
}

/* Let the next ticket in; true if a waiter sleeps and needs bkl_wake_sleepers().
 * => the BKL held by this hart */
static inline bool bkl_release(void)
{
	__atomic_store_n(&bkl.owner, bkl.owner + 1, __ATOMIC_RELEASE);
	/* Pairs with the fence in bkl_wait(): either the sleeper sees the new
	 * owner before its wfi, or this load sees the sleeper. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&bkl.sleepers, __ATOMIC_RELAXED) != 0;
}

/* => the BKL held by this hart */
static inline void bkl_unlock(void)
{
	if (bkl_release())
		bkl_wake_sleepers();
}

#endif
