/* Fixed-priority preemptive round-robin scheduling of user threads.
 * The running thread is this_hart()->cur and is not on a run queue. */
#ifndef MICA_KERN_SCHED_H
#define MICA_KERN_SCHED_H

#include "kern/object.h"

#define PRIO_LEVELS 32

/* => kernel entered (interrupts off) */
void sched_make_runnable(struct thread *t);
/* => kernel entered (interrupts off) */
void sched_remove(struct thread *t);
/* Put the current thread back at the tail of its queue and let another run.
 * => kernel entered (interrupts off) */
void sched_yield_current(void);
/* Timer tick: round robin among equal priorities. => interrupt context */
void sched_tick(void);
/* The context to resume: the current thread if it can run, else the
 * highest-priority runnable one; idles with wfi while there is none.
 * => kernel entered (interrupts off) */
struct trapframe *sched_next(void);
/* Start running threads on this hart; does not return. => boot hart */
_Noreturn void sched_start(void);

extern uint32_t runq_nonempty;

/* Is a thread of priority >= prio waiting to run? => kernel entered */
static inline bool sched_contender(unsigned prio)
{
	return (runq_nonempty >> prio) != 0;
}

static inline void thread_queue_push(struct thread_queue *q, struct thread *t)
{
	t->qnext = 0;
	t->qprev = q->tail;
	if (q->tail)
		q->tail->qnext = t;
	else
		q->head = t;
	q->tail = t;
}
struct thread *thread_queue_pop(struct thread_queue *q);
void thread_queue_remove(struct thread_queue *q, struct thread *t);

#endif
