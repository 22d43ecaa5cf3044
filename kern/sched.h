/* Fixed-priority preemptive round-robin scheduling of user threads on every
 * hart, from one run queue per priority shared by all harts (the BKL guards
 * it). A thread runs only on the harts in its affinity mask. The running
 * thread is its hart's `cur` and is not on a run queue. */
#ifndef MICA_KERN_SCHED_H
#define MICA_KERN_SCHED_H

#include "kern/object.h"

#define PRIO_LEVELS 32

/* => BKL held */
void sched_make_runnable(struct thread *t);
/* Take t off the run queue, or off this hart if it is this hart's current
 * thread. => BKL held; t is not current on another hart */
void sched_remove(struct thread *t);
/* Put the current thread back at the tail of its queue and let another run.
 * => BKL held */
void sched_yield_current(void);
/* Timer tick: round robin among equal priorities. => BKL held */
void sched_tick(void);
/* An IPI asked this hart to look again: give way to a higher priority.
 * => BKL held */
void sched_preempt_check(void);
/* The context to resume: the current thread if it can run, else the
 * highest-priority runnable one allowed here; idles with wfi (BKL dropped)
 * while there is none. => BKL held */
struct trapframe *sched_next(void);
/* Start running threads on this hart; does not return. => BKL held */
_Noreturn void sched_start(void);

extern uint32_t runq_nonempty;

/* Is a thread of priority >= prio waiting to run? => BKL held */
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
