#include "kern/sched.h"

#include "arch/riscv64/csr.h"
#include "arch/riscv64/pmap.h"
#include "kern/console.h"
#include "kern/hart.h"
#include "kern/panic.h"

static struct thread_queue runq[PRIO_LEVELS];
uint32_t runq_nonempty; /* bit p set iff runq[p] has a thread */

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
	return t->state == THREAD_RUNNABLE && t != this_hart()->cur &&
	       (t->qprev || runq[t->prio].head == t);
}

/* => kernel entered (interrupts off) */
void sched_make_runnable(struct thread *t)
{
	t->state = THREAD_RUNNABLE;
	if (t == this_hart()->cur || on_runq(t))
		return;
	thread_queue_push(&runq[t->prio], t);
	runq_nonempty |= 1u << t->prio;
}

/* => kernel entered (interrupts off) */
void sched_remove(struct thread *t)
{
	if (t == this_hart()->cur) {
		this_hart()->cur = 0;
		return;
	}
	if (!on_runq(t))
		return;
	thread_queue_remove(&runq[t->prio], t);
	if (!runq[t->prio].head)
		runq_nonempty &= ~(1u << t->prio);
}

static struct thread *runq_take_highest(void)
{
	if (!runq_nonempty)
		return 0;
	unsigned prio = 31 - (unsigned)__builtin_clz(runq_nonempty);
	struct thread *t = thread_queue_pop(&runq[prio]);
	if (!runq[prio].head)
		runq_nonempty &= ~(1u << prio);
	return t;
}

/* => kernel entered (interrupts off) */
void sched_yield_current(void)
{
	struct thread *cur = this_hart()->cur;
	if (!cur)
		return;
	this_hart()->cur = 0;
	thread_queue_push(&runq[cur->prio], cur);
	runq_nonempty |= 1u << cur->prio;
}

/* => interrupt context */
void sched_tick(void)
{
	struct thread *cur = this_hart()->cur;
	/* Round robin: only a thread of the same or higher priority takes over. */
	if (cur && runq_nonempty >> cur->prio)
		sched_yield_current();
}

static void switch_space(struct thread *t)
{
	struct pmap *pm = &t->task->pm;
	if (this_hart()->active_pmap != pm) {
		pmap_activate(pm);
		this_hart()->active_pmap = pm;
	}
}

/* => kernel entered (interrupts off) */
struct trapframe *sched_next(void)
{
	struct hart *h = this_hart();
	struct thread *t = h->cur;
	if (t && t->state != THREAD_RUNNABLE)
		t = h->cur = 0;
	while (!t) {
		t = runq_take_highest();
		if (t)
			break;
		/* Nothing to run: wait for an interrupt with the kernel's tables. */
		csr_set(sstatus, SSTATUS_SIE);
		wfi();
		csr_clear(sstatus, SSTATUS_SIE);
	}
	h->cur = t;
	switch_space(t);
	return &t->ctx;
}

void user_return(struct trapframe *tf);

/* => boot hart */
_Noreturn void sched_start(void)
{
	extern char boot_stack_top[];
	this_hart()->kstack_top = (uint64_t)boot_stack_top;
	struct trapframe *tf = sched_next();
	/* trap.S's return path leaves SPIE alone (every trap from U-mode sets it,
	 * and so does every sret); the first entry to user mode sets it here. */
	csr_set(sstatus, SSTATUS_SPIE);
	user_return(tf);
	panic("user_return came back");
}
