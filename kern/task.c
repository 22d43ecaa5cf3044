#include "kern/task.h"

#include <string.h>

#include "ipc/endpoint.h"
#include "kern/cap.h"
#include "kern/console.h"
#include "kern/hart.h"
#include "kern/karena.h"
#include "kern/kmem.h"
#include "kern/panic.h"
#include "kern/sched.h"
#include "kern/smp.h"
#include "mica/kassert.h"
#include "mica/errno.h"
#include "mica/param.h"

uint64_t tasks_live, threads_live;
struct task *root_task;
static uint32_t task_ids, thread_ids;

/* => BKL held */
struct task *task_create(const char *name, struct endpoint *exit_ep, uint64_t exit_badge)
{
	struct task *t = km_alloc(sizeof(*t), KM_ZERO | KM_CANFAIL);
	if (!t)
		return 0;
	if (exit_ep) {
		t->exit_note = km_alloc(sizeof(*t->exit_note), KM_ZERO | KM_CANFAIL);
		if (!t->exit_note) {
			km_free(t, sizeof(*t), 0);
			return 0;
		}
		t->exit_note->badge = exit_badge;
		t->exit_ep = exit_ep;
		endpoint_ref(exit_ep, 0);
	}
	if (pmap_create(&t->pm)) {
		if (exit_ep) {
			endpoint_unref(exit_ep);
			km_free(t->exit_note, sizeof(*t->exit_note), 0);
		}
		km_free(t, sizeof(*t), 0);
		return 0;
	}
	t->exit_status = -1;
	t->id = ++task_ids;
	t->refs = 1; /* alive */
	strncpy(t->name, name, sizeof(t->name) - 1);
	tasks_live++;
	return t;
}

static void task_free(struct task *t)
{
	tasks_live--;
	km_free(t, sizeof(*t), 0);
}

/* => BKL held */
void task_unref(struct task *t)
{
	if (--t->refs == 0)
		task_free(t);
}

/* A thread that is current on another hart cannot be freed here: that hart
 * may be about to load its registers and return to user mode. It becomes a
 * zombie (dead, off every queue and out of its task) and an IPI brings its
 * hart into the kernel, where thread_reap() frees it. */
static void thread_destroy(struct thread *th)
{
	ipc_detach_thread(th);
	struct task *task = th->task;
	for (struct thread **p = &task->threads; *p; p = &(*p)->task_next) {
		if (*p == th) {
			*p = th->task_next;
			break;
		}
	}
	task->nthreads--;
	if (th->running_on && th->running_on != this_hart()) {
		th->state = THREAD_DEAD;
		task->zombies++;
		smp_send_ipi(hart_bit(th->running_on));
		return;
	}
	sched_remove(th);
	th->state = THREAD_DEAD;
	threads_live--;
	km_free(th, sizeof(*th), 0);
}

/* The rest of a task's end, once none of its threads runs anywhere: only
 * then may its tables go and its exit be told (the memory server reuses the
 * frames as soon as it hears). => BKL held */
static void task_finish(struct task *t)
{
	if (this_hart()->active_pmap == &t->pm)
		pmap_activate(&kernel_pmap);
	pmap_destroy(&t->pm);
	if (t->exit_ep) {
		struct endpoint *ep = t->exit_ep;
		t->exit_note->task_id = t->id;
		t->exit_note->status = t->exit_status;
		endpoint_post_exit(ep, t->exit_note);
		t->exit_ep = 0;
		t->exit_note = 0;
		endpoint_unref(ep);
	}
	if (t == root_task) {
		kprintf("mica: the root task has ended%s\n", t->killed ? " abnormally" : "");
		kprintf("mica: %u hart%s ran tasks; %llu remote TLB fences reached %llu harts; %llu "
			"ASID rollovers with several harts running, %llu ASIDs kept for other harts\n",
			harts_online, harts_online == 1 ? "" : "s",
			(unsigned long long)pmap_shootdowns, (unsigned long long)pmap_shootdown_harts,
			(unsigned long long)pmap_smp_rollovers, (unsigned long long)pmap_asids_kept);
		kernel_shutdown();
	}
	task_unref(t);
}

/* => BKL held, t == this_hart()->cur */
void thread_reap(struct thread *t)
{
	struct task *task = t->task;
	KASSERT(t->state == THREAD_DEAD && t->running_on == this_hart());
	this_hart()->cur = 0;
	t->running_on = 0;
	threads_live--;
	km_free(t, sizeof(*t), 0);
	if (--task->zombies == 0)
		task_finish(task);
}

/* => BKL held */
void task_kill(struct task *t, const char *why, struct thread *culprit)
{
	if (t->dead)
		return;
	t->dead = true;
	t->killed = why != 0;
	if (why) {
		kprintf("mica: task %u (%s) killed: %s", t->id, t->name, why);
		if (culprit)
			kprintf(" [thread %u, scause %llu, pc 0x%llx, address 0x%llx]", culprit->tid,
				(unsigned long long)culprit->ctx.scause,
				(unsigned long long)culprit->ctx.sepc,
				(unsigned long long)culprit->ctx.stval);
		kprintf("\n");
	}
	while (t->threads)
		thread_destroy(t->threads);
	for (unsigned i = 0; i < CAP_SLOTS; i++)
		if (t->caps[i].type != CAP_TYPE_NULL)
			cap_clear(&t->caps[i]);
	if (t->zombies == 0)
		task_finish(t);
}

/* => BKL held */
int thread_create(struct task *task, uint64_t pc, uint64_t sp, uint64_t arg, uint64_t ipcbuf_va,
		  unsigned prio, uint64_t affinity, struct endpoint *fault_ep,
		  uint64_t fault_badge, struct thread **out)
{
	if (prio >= PRIO_LEVELS)
		return -MICA_EINVAL;
	struct mica_ipc_buffer *buf = 0;
	if (ipcbuf_va) {
		uint64_t pa, prot;
		if ((ipcbuf_va & PAGE_MASK) || ipcbuf_va >= USER_VA_MAX ||
		    pmap_extract(&task->pm, ipcbuf_va, &pa, &prot) || !(prot & PTE_W))
			return -MICA_EFAULT;
		buf = pa_to_kva(pa);
	}
	struct thread *th = km_alloc(sizeof(*th), KM_ZERO | KM_CANFAIL);
	if (!th)
		return -MICA_ENOMEM;
	th->task = task;
	th->tid = ++thread_ids;
	th->prio = (uint8_t)prio;
	th->affinity = affinity;
	th->ctx.sepc = pc;
	th->ctx.x[2] = sp;
	th->ctx.x[10] = arg;
	th->ipcbuf = buf;
	th->ipcbuf_va = ipcbuf_va;
	if (fault_ep) {
		endpoint_ref(fault_ep, 0);
		th->fault_ep = fault_ep;
		th->fault_badge = fault_badge;
	}
	th->task_next = task->threads;
	task->threads = th;
	task->nthreads++;
	threads_live++;
	th->state = THREAD_DEAD; /* not yet on any queue */
	sched_make_runnable(th);
	if (out)
		*out = th;
	return (int)th->tid;
}

/* => BKL held */
void thread_exit(struct thread *t)
{
	struct task *task = t->task;
	if (task->nthreads == 1) {
		task_kill(task, 0, 0);
		return;
	}
	thread_destroy(t);
}
