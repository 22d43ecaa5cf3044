/*
 * Kernel objects: tasks, threads, endpoints, and the capabilities naming them.
 *
 * Every object comes from the kernel arena. The kernel is event driven: one
 * kernel stack per hart, and a thread that blocks is just a state, so nothing
 * below ever sleeps. Every field here is read and written only with the big
 * kernel lock held (kern/bkl.h).
 */
#ifndef MICA_KERN_OBJECT_H
#define MICA_KERN_OBJECT_H

#include <stdbool.h>
#include <stdint.h>

#include "arch/riscv64/pmap.h"
#include "arch/riscv64/trapframe.h"
#include "mica/syscall.h"

struct endpoint;
struct task;

struct cap {
	uint8_t type;   /* CAP_TYPE_* */
	uint8_t rights; /* CAP_RIGHT_* */
	uint64_t badge;
	void *obj;
};

enum thread_state {
	THREAD_RUNNABLE,     /* on a run queue, or running */
	THREAD_SEND_BLOCKED, /* queued on an endpoint to send (or call) */
	THREAD_RECV_BLOCKED, /* queued on an endpoint to receive */
	THREAD_REPLY_BLOCKED, /* called; waits for its reply */
	THREAD_DEAD,
};

struct thread {
	struct trapframe ctx; /* user registers; first, so trap.S finds them at offset 0 */
	struct task *task;
	uint32_t tid;
	uint8_t prio;
	uint8_t state;
	bool is_call;  /* SEND_BLOCKED: the pending send is a call */
	bool in_fault; /* REPLY_BLOCKED on the fault handler */
	bool report_hart; /* SYS_THREAD_AFFINITY: put the hart index in a1 when next run */
	uint64_t affinity; /* hart indices it may run on */
	struct hart *running_on; /* the hart whose current thread it is, or NULL */
	struct thread *qnext, *qprev; /* run queue or endpoint queue */
	struct endpoint *queued_on;
	struct thread *reply_to; /* a caller waiting for this thread's reply */
	struct thread *callee;   /* REPLY_BLOCKED: whom we wait on */
	uint64_t send_badge;     /* SEND_BLOCKED: badge of the cap used */
	uint8_t send_rights;     /* SEND_BLOCKED: rights of the cap used */
	struct mica_ipc_buffer *ipcbuf; /* kernel view (linear map), or NULL */
	uint64_t ipcbuf_va;
	struct endpoint *fault_ep;
	uint64_t fault_badge;
	struct {
		uint64_t tag, mr[IPC_REG_WORDS];
	} fault_msg; /* what a faulting thread "sends" (its registers stay intact) */
	struct thread *task_next; /* the task's threads */
};

struct thread_queue {
	struct thread *head, *tail;
};

/* A task's death, waiting on its exit endpoint for a receiver. Allocated when
 * the endpoint is registered, so that a task can always die without memory. */
struct exit_note {
	struct exit_note *next;
	uint64_t badge;
	uint32_t task_id;
	int64_t status;
};

struct endpoint {
	struct thread_queue senders, receivers;
	struct exit_note *notes_head, *notes_tail; /* deaths not yet received */
	uint32_t refs;      /* capabilities naming it, plus threads using it as fault endpoint */
	uint32_t recv_caps; /* capabilities with the receive right: 0 means nobody ever will */
	uint32_t id;
};

struct task {
	struct pmap pm;
	struct cap caps[CAP_SLOTS];
	struct thread *threads;
	uint32_t id;
	uint32_t nthreads;
	uint32_t refs; /* task capabilities naming it, plus one while it is alive */
	uint32_t zombies; /* killed threads still current on another hart */
	bool dead;
	bool killed; /* ended by a kill with a reason, not by its own exit */
	uint64_t debug_budget; /* SYS_DEBUG_WRITE bytes left this tick */
	struct endpoint *exit_ep; /* told when the task ends, or NULL */
	struct exit_note *exit_note;
	int64_t exit_status; /* SYS_TASK_EXIT's status; -1 when killed */
	char name[24];
};

#endif
