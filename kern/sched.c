#include "kern/sched.h"

#include "arch/riscv64/csr.h"
#include "arch/riscv64/pmap.h"
#include "kern/bkl.h"
#include "kern/console.h"
#include "kern/hart.h"
#include "kern/panic.h"
#include "kern/smp.h"
#include "mica/kassert.h"

static struct thread_queue runq[PRIO_LEVELS];
uint32_t runq_nonempty;     /* bit p set iff runq[p] has a thread */
static uint64_t harts_idle; /* harts waiting in sched_idle() */

void thread_queue_remove(struct thread_queue *q, struct thread *t)
{
	if (t->qprev)
		t->qprev->qnext = t->qnext;
	else
		q->head = t->qnext;
	if (t->qnext)
		t->qnext->qprev = t->qprev;
	else
		q->tail = t->qprev;
	t->qnext = t->qprev = 0;
}

struct thread *thread_queue_pop(struct thread_queue *q)
{
	struct thread *t = q->head;
	if (t)
		thread_queue_remove(q, t);
	return t;
}

static bool on_runq(const struct thread *t)
{
	return t->state == THREAD_RUNNABLE && !t->running_on &&
	       (t->qprev || runq[t->prio].head == t);
}

/* Another hart should look at the run queue now if one allowed to run t is
 * idle, or runs something of lower priority. This hart needs no poke: it
 * reschedules on its way out of the kernel. => BKL held */
static void kick_for(const struct thread *t)
{
	uint64_t allowed = t->affinity & harts_online_mask & ~hart_bit(this_hart());
	if (!allowed)
		return;
	uint64_t idle = harts_idle & allowed;
	if (idle) {
		smp_send_ipi(idle & -idle);
		return;
	}
	int victim = -1;
	unsigned lowest = t->prio;
	for (uint64_t m = allowed; m; m &= m - 1) {
		struct thread *c = hart_at((unsigned)__builtin_ctzl(m))->cur;
		if (c && c->prio < lowest) {
			lowest = c->prio;
			victim = __builtin_ctzl(m);
		}
	}
	if (victim >= 0)
		smp_send_ipi(1UL << victim);
}

static void runq_push(struct thread *t)
{
	thread_queue_push(&runq[t->prio], t);
	runq_nonempty |= 1u << t->prio;
	kick_for(t);
}

/* => BKL held */
void sched_make_runnable(struct thread *t)
{
	t->state = THREAD_RUNNABLE;
	if (t->running_on || on_runq(t))
		return;
	runq_push(t);
}

/* => BKL held; t is not current on another hart */
void sched_remove(struct thread *t)
{
	if (t->running_on) {
		KASSERT(t->running_on == this_hart());
		t->running_on->cur = 0;
		t->running_on = 0;
		return;
	}
	if (!on_runq(t))
		return;
	thread_queue_remove(&runq[t->prio], t);
	if (!runq[t->prio].head)
		runq_nonempty &= ~(1u << t->prio);
}

/* The highest-priority queued thread allowed on h, taken off its queue. Most
 * threads may run anywhere, so the walk usually stops at a queue's head. */
static struct thread *runq_take(struct hart *h)
{
	uint64_t bit = hart_bit(h);
	for (uint32_t prios = runq_nonempty; prios;) {
		unsigned prio = 31 - (unsigned)__builtin_clz(prios);
		for (struct thread *t = runq[prio].head; t; t = t->qnext) {
			if (!(t->affinity & bit))
				continue;
			thread_queue_remove(&runq[prio], t);
			if (!runq[prio].head)
				runq_nonempty &= ~(1u << prio);
			return t;
		}
		prios &= ~(1u << prio);
	}
	return 0;
}

/* Is a thread of priority >= prio queued that may run on h? */
static bool waiting_here(struct hart *h, unsigned prio)
{
	uint64_t bit = hart_bit(h);
	for (uint32_t prios = runq_nonempty >> prio << prio; prios;) {
		unsigned p = 31 - (unsigned)__builtin_clz(prios);
		for (struct thread *t = runq[p].head; t; t = t->qnext)
			if (t->affinity & bit)
				return true;
		prios &= ~(1u << p);
	}
	return false;
}

/* => BKL held */
void sched_yield_current(void)
{
	struct hart *h = this_hart();
	struct thread *cur = h->cur;
	if (!cur)
		return;
	h->cur = 0;
	cur->running_on = 0;
	runq_push(cur);
}

/* => BKL held */
void sched_tick(void)
{
	struct thread *cur = this_hart()->cur;
	/* Round robin: only a thread of the same or higher priority takes over. */
	if (cur && sched_contender(cur->prio) && waiting_here(this_hart(), cur->prio))
		sched_yield_current();
}

/* => BKL held */
void sched_preempt_check(void)
{
	struct thread *cur = this_hart()->cur;
	if (cur && cur->prio + 1u < PRIO_LEVELS && sched_contender(cur->prio + 1u) &&
	    waiting_here(this_hart(), cur->prio + 1u))
		sched_yield_current();
}

/* Nothing to run here: wait for an interrupt without the BKL. The hart
 * leaves the last space first, so that a task ending elsewhere never has
 * its tables in this hart's satp. => BKL held; returns with it held */
static void sched_idle(struct hart *h)
{
	if (h->active_pmap != &kernel_pmap)
		pmap_activate(&kernel_pmap);
	harts_idle |= hart_bit(h);
	bkl_unlock();
	/* wfi with sstatus.SIE still clear: it wakes on any interrupt pending
	 * in sie all the same, and an IPI sent since the unlock stays pending
	 * instead of being taken (and lost) just before the wfi. Then let the
	 * handler take what woke us: a timer tick, or the IPI. */
	wfi();
	csr_set(sstatus, SSTATUS_SIE);
	csr_clear(sstatus, SSTATUS_SIE);
	bkl_lock();
	harts_idle &= ~hart_bit(h);
}

/* => BKL held */
struct trapframe *sched_next(void)
{
	struct hart *h = this_hart();
	struct thread *t = h->cur;
	if (t && (t->state != THREAD_RUNNABLE || !(t->affinity & hart_bit(h)))) {
		h->cur = 0;
		t->running_on = 0;
		if (t->state == THREAD_RUNNABLE)
			runq_push(t); /* its affinity no longer includes this hart */
		t = 0;
	}
	while (!t) {
		t = runq_take(h);
		if (!t)
			sched_idle(h);
	}
	h->cur = t;
	t->running_on = h;
	if (t->report_hart) {
		t->report_hart = false;
		t->ctx.x[11] = h->index;
	}
	if (h->active_pmap != &t->task->pm)
		pmap_activate(&t->task->pm);
	return &t->ctx;
}

void user_return(struct trapframe *tf);

/* => BKL held */
_Noreturn void sched_start(void)
{
	struct trapframe *tf = sched_next();
	bkl_unlock();
	/* trap.S's return path leaves SPIE alone (every trap from U-mode sets it,
	 * and so does every sret); the first entry to user mode sets it here. */
	csr_set(sstatus, SSTATUS_SPIE);
	user_return(tf);
	panic("user_return came back");
}
