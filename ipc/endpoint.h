/*
 * Synchronous IPC through endpoints (L4/seL4 style).
 *
 * A message is a tag (label, length, cap flag) and up to IPC_MAX_WORDS words:
 * the first four travel in registers, the rest through the two threads' IPC
 * buffers, copied by the kernel through the linear map. `call` sends and then
 * waits for the reply on a one-shot reply right held by the receiver
 * (receiver->reply_to); `reply_recv` answers it and waits for the next message.
 * The badge of the sender's capability reaches the receiver in a6.
 */
#ifndef MICA_IPC_ENDPOINT_H
#define MICA_IPC_ENDPOINT_H

#include "kern/object.h"

/* => kernel entered */
struct endpoint *endpoint_create(void);
/* References: one per capability (with its rights) and one per thread that
 * uses the endpoint as its fault endpoint. When the last receive-right cap
 * goes, queued senders fail with -MICA_EPIPE (a faulting one loses its task);
 * when the last reference goes, queued receivers do, and the endpoint is freed.
 * => kernel entered */
void endpoint_ref(struct endpoint *ep, unsigned rights);
void endpoint_put(struct endpoint *ep, unsigned rights);
void endpoint_unref(struct endpoint *ep);

/* The current thread sends (or calls) through `c`. The thread's a0 holds the
 * result when it next runs. => kernel entered */
void ipc_send(struct thread *t, const struct cap *c, bool call);
/* => kernel entered */
void ipc_recv(struct thread *t, const struct cap *c);
/* Answer t->reply_to with t's message registers, if there is such a caller.
 * => kernel entered */
void ipc_reply(struct thread *t);

/* Deliver a user exception of `t` to its fault endpoint as a call; kills the
 * task when there is no handler. => kernel entered */
void ipc_deliver_fault(struct thread *t, uint64_t scause, uint64_t stval, uint64_t pc);

/* Deliver a task's death to a waiting receiver, or keep it until one comes.
 * The note then belongs to the endpoint. => kernel entered */
void endpoint_post_exit(struct endpoint *ep, struct exit_note *note);

/* Detach a dying thread from every IPC relationship: queues, reply rights it
 * holds (their callers get -MICA_EPIPE) and the callee it waits on.
 * => kernel entered */
void ipc_detach_thread(struct thread *t);

extern uint64_t endpoints_live;

#endif
