/* Tasks (address space + capability table + threads) and their threads. */
#ifndef MICA_KERN_TASK_H
#define MICA_KERN_TASK_H

#include "kern/object.h"

extern uint64_t tasks_live, threads_live;
extern struct task *root_task;

/* A task with an empty address space and capability table. Its end is posted
 * to `exit_ep` (may be NULL) with `exit_badge`. => BKL held */
struct task *task_create(const char *name, struct endpoint *exit_ep, uint64_t exit_badge);
/* End a task: every thread, capability and mapping goes; callers waiting on
 * its threads get -MICA_EPIPE. `why` (may be NULL for a normal exit) and the
 * thread `culprit` (may be NULL) are reported on the console in one line.
 * The root task's end shuts the machine down. => BKL held */
void task_kill(struct task *t, const char *why, struct thread *culprit);
/* Drop a task capability's reference. => BKL held */
void task_unref(struct task *t);

/* A runnable thread in `task`, allowed on the harts in `affinity`. The IPC
 * buffer, when given, must be mapped writable in the task. => BKL held */
int thread_create(struct task *task, uint64_t pc, uint64_t sp, uint64_t arg, uint64_t ipcbuf_va,
		  unsigned prio, uint64_t affinity, struct endpoint *fault_ep,
		  uint64_t fault_badge, struct thread **out);
/* => BKL held */
void thread_exit(struct thread *t);
/* This hart's current thread was killed from another hart while it ran here:
 * free it, and finish its task if it was the last one.
 * => BKL held, t == this_hart()->cur */
void thread_reap(struct thread *t);

#endif
