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
#include "mica/errno.h"
#include "mica/param.h"

uint64_t tasks_live, threads_live;
struct task *root_task;
static uint32_t task_ids, thread_ids;

/* => kernel entered */
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

/* => kernel entered */
void task_unref(struct task *t)
{
	if (--t->refs == 0)
		task_free(t);
}

static void thread_destroy(struct thread *th)
{
	ipc_detach_thread(th);
	sched_remove(th);
	th->state = THREAD_DEAD;
	struct task *task = th->task;
	for (struct thread **p = &task->threads; *p; p = &(*p)->task_next) {
		if (*p == th) {
			*p = th->task_next;
			break;
		}
	}
	task->nthreads--;
	threads_live--;
	km_free(th, sizeof(*th), 0);
}

/* => kernel entered */
void task_kill(struct task *t, const char *why, struct thread *culprit)
{
	if (t->dead)
		return;
	t->dead = true;
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
	if (this_hart()->active_pmap == &t->pm) {
		pmap_activate(&kernel_pmap);
		this_hart()->active_pmap = &kernel_pmap;
	}
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
		kprintf("mica: the root task has ended%s\n", why ? " abnormally" : "");
		kernel_shutdown();
	}
	task_unref(t);
}

/* => kernel entered */
int thread_create(struct task *task, uint64_t pc, uint64_t sp, uint64_t arg, uint64_t ipcbuf_va,
		  unsigned prio, struct endpoint *fault_ep, uint64_t fault_badge,
		  struct thread **out)
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

/* => kernel entered */
void thread_exit(struct thread *t)
{
	struct task *task = t->task;
	if (task->nthreads == 1) {
		task_kill(task, 0, 0);
		return;
	}
	thread_destroy(t);
}
