/*
 * The IPC fastpath: `call` to a waiting receiver and `reply_recv` with no
 * sender waiting, register-only messages, no capability transfer. One slot
 * lookup, no allocation, no scheduler queue walk, and an address-space switch
 * that is a single satp write when the ASID is current. Anything unusual
 * returns false and the general path (ipc/endpoint.c) handles it, with the
 * same result.
 *
 * Inline, because the system-call entry is their only caller and a call and
 * return per IPC is a measurable share of a round trip.
 *
 * Both paths switch to the partner on this hart, so the partner must be
 * allowed here; a partner pinned elsewhere goes the general way, which
 * queues it and wakes its hart by IPI.
 */
#ifndef MICA_IPC_FASTPATH_H
#define MICA_IPC_FASTPATH_H

#include <stdbool.h>

#include "arch/riscv64/pmap.h"
#include "kern/hart.h"
#include "kern/object.h"
#include "kern/sched.h"

static inline void copy_regs(struct trapframe *to, const struct trapframe *from, uint64_t tag,
			     uint64_t badge)
{
	to->x[10] = 0;
	to->x[11] = tag;
	to->x[12] = from->x[12];
	to->x[13] = from->x[13];
	to->x[14] = from->x[14];
	to->x[15] = from->x[15];
	to->x[16] = badge;
}

static inline void switch_to(struct hart *h, struct thread *from, struct thread *to)
{
	h->cur = to;
	from->running_on = 0;
	to->running_on = h;
	if (to->task != from->task)
		pmap_activate_fast(h, &to->task->pm);
}

/* => BKL held, t current on h */
static inline bool ipc_fastpath_call(struct hart *h, struct thread *t, struct trapframe *tf)
{
	uint64_t slot = tf->x[10], tag = tf->x[11];
	if (slot >= CAP_SLOTS || (tag & (IPC_TAG_CAP | IPC_TAG_LEN_MASK)) > IPC_REG_WORDS)
		return false;
	const struct cap *c = &t->task->caps[slot];
	if (c->type != CAP_TYPE_ENDPOINT || !(c->rights & CAP_RIGHT_SEND))
		return false;
	struct endpoint *ep = c->obj;
	struct thread *r = ep->receivers.head;
	if (!r || r->reply_to || !(r->affinity & (1UL << h->index)))
		return false;
	ep->receivers.head = r->qnext;
	if (r->qnext)
		r->qnext->qprev = 0;
	else
		ep->receivers.tail = 0;
	r->qnext = 0;
	r->queued_on = 0;
	copy_regs(&r->ctx, tf, tag, c->badge);
	tf->sepc += 4;
	t->state = THREAD_REPLY_BLOCKED;
	t->callee = r;
	r->reply_to = t;
	r->state = THREAD_RUNNABLE;
	switch_to(h, t, r);
	return true;
}

/* => BKL held, t current on h */
static inline bool ipc_fastpath_reply_recv(struct hart *h, struct thread *t, struct trapframe *tf)
{
	uint64_t slot = tf->x[10], tag = tf->x[11];
	if (slot >= CAP_SLOTS || (tag & (IPC_TAG_CAP | IPC_TAG_LEN_MASK)) > IPC_REG_WORDS)
		return false;
	const struct cap *c = &t->task->caps[slot];
	if (c->type != CAP_TYPE_ENDPOINT || !(c->rights & CAP_RIGHT_RECV))
		return false;
	struct endpoint *ep = c->obj;
	struct thread *caller = t->reply_to;
	/* The caller must be a plain call, and no thread of its priority or above
	 * may be waiting to run (round robin would pick that one first). */
	if (!caller || caller->in_fault || ep->senders.head || ep->notes_head ||
	    sched_contender(caller->prio) || !(caller->affinity & (1UL << h->index)))
		return false;
	copy_regs(&caller->ctx, tf, tag, 0);
	tf->sepc += 4;
	t->reply_to = 0;
	caller->callee = 0;
	caller->state = THREAD_RUNNABLE;
	t->state = THREAD_RECV_BLOCKED;
	t->queued_on = ep;
	thread_queue_push(&ep->receivers, t);
	switch_to(h, t, caller);
	return true;
}

#endif
