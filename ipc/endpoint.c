#include "ipc/endpoint.h"

#include <string.h>

#include "kern/cap.h"
#include "kern/console.h"
#include "kern/hart.h"
#include "kern/karena.h"
#include "kern/sched.h"
#include "kern/smp.h"
#include "kern/task.h"
#include "mica/errno.h"

uint64_t endpoints_live;
static uint32_t endpoint_ids;

/* => BKL held */
struct endpoint *endpoint_create(void)
{
	struct endpoint *ep = km_alloc(sizeof(*ep), KM_ZERO | KM_CANFAIL);
	if (!ep)
		return 0;
	ep->id = ++endpoint_ids;
	endpoints_live++;
	return ep;
}

/* The thread resumes with `err` in a0. */
static void thread_fail(struct thread *t, int err)
{
	t->queued_on = 0;
	if (t->in_fault) {
		t->in_fault = false;
		task_kill(t->task, "its fault handler is gone", t);
		return;
	}
	t->ctx.x[10] = (uint64_t)(int64_t)err;
	sched_make_runnable(t);
}

static void fail_queue(struct thread_queue *q, int err)
{
	struct thread *t;
	while ((t = thread_queue_pop(q)) != 0)
		thread_fail(t, err);
}

void endpoint_ref(struct endpoint *ep, unsigned rights)
{
	ep->refs++;
	if (rights & CAP_RIGHT_RECV)
		ep->recv_caps++;
}

/* => BKL held */
void endpoint_put(struct endpoint *ep, unsigned rights)
{
	if ((rights & CAP_RIGHT_RECV) && --ep->recv_caps == 0)
		fail_queue(&ep->senders, -MICA_EPIPE); /* nobody can ever receive them */
	if (--ep->refs > 0)
		return;
	fail_queue(&ep->receivers, -MICA_EPIPE);
	while (ep->notes_head) {
		struct exit_note *n = ep->notes_head;
		ep->notes_head = n->next;
		km_free(n, sizeof(*n), 0);
	}
	endpoints_live--;
	km_free(ep, sizeof(*ep), 0);
}

/* => BKL held */
void endpoint_unref(struct endpoint *ep)
{
	endpoint_put(ep, 0);
}

/* Move the capability the sender names in its IPC buffer into the slot the
 * receiver offered. Only through a cap with the grant right. */
static bool ipc_move_cap(struct thread *s, struct thread *r, unsigned rights)
{
	if (!(rights & CAP_RIGHT_GRANT) || !s->ipcbuf || !r->ipcbuf)
		return false;
	uint64_t from = s->ipcbuf->cap_send, to = r->ipcbuf->cap_recv;
	if (from == 0 || from >= CAP_SLOTS || to == 0 || to >= CAP_SLOTS)
		return false;
	struct cap *src = &s->task->caps[from], *dst = &r->task->caps[to];
	if (src->type == CAP_TYPE_NULL || dst->type != CAP_TYPE_NULL)
		return false;
	*dst = *src; /* a move: the reference travels with it */
	memset(src, 0, sizeof(*src));
	return true;
}

static void ipc_transfer(struct thread *s, struct thread *r, uint64_t badge, unsigned rights)
{
	uint64_t tag, mr[IPC_REG_WORDS];
	if (s->in_fault) {
		tag = s->fault_msg.tag;
		memcpy(mr, s->fault_msg.mr, sizeof(mr));
	} else {
		tag = s->ctx.x[11];
		memcpy(mr, &s->ctx.x[12], sizeof(mr));
	}
	unsigned words = ipc_tag_words(tag);
	if (words > IPC_REG_WORDS) {
		/* Both buffers exist: the sender's was checked at the system call. */
		if (r->ipcbuf)
			memcpy(&r->ipcbuf->mr[IPC_REG_WORDS], &s->ipcbuf->mr[IPC_REG_WORDS],
			       (words - IPC_REG_WORDS) * sizeof(uint64_t));
		else
			words = IPC_REG_WORDS; /* the receiver can hold no more */
	}
	bool moved = (tag & IPC_TAG_CAP) && ipc_move_cap(s, r, rights);
	if (r->ipcbuf)
		r->ipcbuf->cap_received = moved;
	r->ctx.x[10] = 0;
	r->ctx.x[11] = (tag & ~(IPC_TAG_LEN_MASK | IPC_TAG_CAP)) | words | (moved ? IPC_TAG_CAP : 0);
	memcpy(&r->ctx.x[12], mr, sizeof(mr));
	r->ctx.x[16] = badge;
}

/* A receiver that takes a new call without answering the last one breaks
 * that reply right: the earlier caller learns it at once. */
static void drop_reply_right(struct thread *t)
{
	struct thread *c = t->reply_to;
	if (!c)
		return;
	t->reply_to = 0;
	c->callee = 0;
	thread_fail(c, -MICA_EPIPE);
}

static void become_callee(struct thread *caller, struct thread *callee)
{
	drop_reply_right(callee);
	caller->state = THREAD_REPLY_BLOCKED;
	caller->callee = callee;
	callee->reply_to = caller;
}

/* => BKL held */
void ipc_send(struct thread *t, const struct cap *c, bool call)
{
	struct endpoint *ep = c->obj;
	if (ep->recv_caps == 0) {
		thread_fail(t, -MICA_EPIPE);
		return;
	}
	struct thread *r = thread_queue_pop(&ep->receivers);
	if (!r) {
		sched_remove(t);
		t->state = THREAD_SEND_BLOCKED;
		t->is_call = call;
		t->send_badge = c->badge;
		t->send_rights = c->rights;
		t->queued_on = ep;
		thread_queue_push(&ep->senders, t);
		return;
	}
	r->queued_on = 0;
	ipc_transfer(t, r, c->badge, c->rights);
	if (call) {
		/* Direct switch: the caller waits, the receiver runs now. */
		sched_remove(t);
		become_callee(t, r);
		r->state = THREAD_RUNNABLE;
		struct hart *h = this_hart();
		if (!h->cur && (r->affinity & hart_bit(h))) {
			h->cur = r;
			r->running_on = h;
		} else {
			sched_make_runnable(r); /* pinned elsewhere: its hart gets an IPI */
		}
	} else {
		t->ctx.x[10] = 0;
		sched_make_runnable(r);
	}
}

static void deliver_exit(struct thread *r, struct exit_note *n)
{
	drop_reply_right(r); /* an exit needs no reply, and a receive ends the last one */
	r->ctx.x[10] = 0;
	r->ctx.x[11] = ipc_tag(IPC_LABEL_TASK_EXIT, 2);
	r->ctx.x[12] = n->task_id;
	r->ctx.x[13] = (uint64_t)n->status;
	r->ctx.x[14] = r->ctx.x[15] = 0;
	r->ctx.x[16] = n->badge;
	if (r->ipcbuf)
		r->ipcbuf->cap_received = 0;
	km_free(n, sizeof(*n), 0);
}

/* => BKL held */
void endpoint_post_exit(struct endpoint *ep, struct exit_note *note)
{
	struct thread *r = thread_queue_pop(&ep->receivers);
	if (r) {
		r->queued_on = 0;
		deliver_exit(r, note);
		sched_make_runnable(r);
		return;
	}
	note->next = 0;
	if (ep->notes_tail)
		ep->notes_tail->next = note;
	else
		ep->notes_head = note;
	ep->notes_tail = note;
}

/* => BKL held */
void ipc_recv(struct thread *t, const struct cap *c)
{
	struct endpoint *ep = c->obj;
	if (ep->notes_head) {
		/* Deaths first: the receiver cleans up before serving anyone else. */
		struct exit_note *n = ep->notes_head;
		ep->notes_head = n->next;
		if (!ep->notes_head)
			ep->notes_tail = 0;
		deliver_exit(t, n);
		return;
	}
	struct thread *s = thread_queue_pop(&ep->senders);
	if (!s) {
		sched_remove(t);
		t->state = THREAD_RECV_BLOCKED;
		t->queued_on = ep;
		thread_queue_push(&ep->receivers, t);
		return;
	}
	s->queued_on = 0;
	ipc_transfer(s, t, s->send_badge, s->send_rights);
	if (s->is_call) {
		become_callee(s, t);
	} else {
		s->ctx.x[10] = 0;
		sched_make_runnable(s);
	}
}

/* => BKL held */
void ipc_reply(struct thread *t)
{
	struct thread *c = t->reply_to;
	if (!c)
		return;
	t->reply_to = 0;
	c->callee = 0;
	if (c->in_fault) {
		c->in_fault = false;
		if (ipc_tag_label(t->ctx.x[11]) == FAULT_REPLY_KILL) {
			task_kill(c->task, "killed by its fault handler", c);
			return;
		}
		/* Resume: registers untouched, sepc still at the faulting instruction. */
		sched_make_runnable(c);
		return;
	}
	ipc_transfer(t, c, 0, 0);
	sched_make_runnable(c);
}

static unsigned fault_access(uint64_t scause)
{
	switch (scause) {
	case 12: /* instruction page fault */
	case 1:  /* instruction access fault */
		return FAULT_ACCESS_EXEC;
	case 15: /* store/AMO page fault */
	case 7:  /* store/AMO access fault */
	case 6:  /* store misaligned */
		return FAULT_ACCESS_WRITE;
	case 13:
	case 5:
	case 4:
		return FAULT_ACCESS_READ;
	default:
		return 0;
	}
}

/* => BKL held */
void ipc_deliver_fault(struct thread *t, uint64_t scause, uint64_t stval, uint64_t pc)
{
	struct endpoint *ep = t->fault_ep;
	if (!ep || ep->recv_caps == 0) {
		task_kill(t->task, ep ? "fault with its handler gone" : "fault with no handler", t);
		return;
	}
	t->fault_msg.tag = ipc_tag(IPC_LABEL_FAULT, IPC_REG_WORDS);
	t->fault_msg.mr[0] = stval;
	t->fault_msg.mr[1] = fault_access(scause);
	t->fault_msg.mr[2] = pc;
	t->fault_msg.mr[3] = scause;
	t->in_fault = true;
	struct cap c = {.type = CAP_TYPE_ENDPOINT, .rights = CAP_RIGHT_SEND,
			.badge = t->fault_badge, .obj = ep};
	ipc_send(t, &c, true);
}

/* => BKL held */
void ipc_detach_thread(struct thread *t)
{
	if (t->queued_on) {
		struct endpoint *ep = t->queued_on;
		thread_queue_remove(t->state == THREAD_SEND_BLOCKED ? &ep->senders : &ep->receivers,
				    t);
		t->queued_on = 0;
	}
	if (t->callee) {
		t->callee->reply_to = 0;
		t->callee = 0;
	}
	drop_reply_right(t);
	if (t->fault_ep) {
		struct endpoint *ep = t->fault_ep;
		t->fault_ep = 0;
		endpoint_unref(ep);
	}
}
