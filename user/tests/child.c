/* The root task's partner in the IPC, fault and SMP tests and the benchmarks.
 * Its mode arrives in the low bits of a0 (an argument above CHILD_ARG_SHIFT);
 * slot 3 holds the endpoint the root task gave it. */
#include <stdint.h>
#include <stdio.h>

#include "user/mica.h"
#include "user/tests/ipc_test.h"

extern char _start[];

static int failures;

static void check(const char *name, int ok)
{
	printf("UTEST child_%s: %s\n", name, ok ? "PASS" : "FAIL");
	failures += !ok;
}

static void script(void)
{
	struct mica_msg m;
	for (unsigned n = 0; n <= IPC_REG_WORDS; n++) {
		m.tag = ipc_tag(LABEL_REGS + n, n);
		for (unsigned i = 0; i < IPC_REG_WORDS; i++)
			m.mr[i] = 1000 * n + i;
		long err = mica_call(CHILD_EP_SLOT, &m);
		int ok = err == 0 && ipc_tag_label(m.tag) == LABEL_REGS_REPLY + n &&
			 ipc_tag_words(m.tag) == n && m.badge == 0;
		for (unsigned i = 0; i < n; i++)
			ok &= m.mr[i] == 1000 * n + i + 1;
		char name[32];
		snprintf(name, sizeof(name), "call_%u_words", n);
		check(name, ok);
	}

	for (unsigned i = 0; i < IPC_MAX_WORDS; i++)
		MICA_IPCBUF->mr[i] = i * 3;
	m.tag = ipc_tag(LABEL_LONG, IPC_MAX_WORDS);
	for (unsigned i = 0; i < IPC_REG_WORDS; i++)
		m.mr[i] = i * 3;
	int ok = mica_call(CHILD_EP_SLOT, &m) == 0 && ipc_tag_words(m.tag) == IPC_MAX_WORDS;
	for (unsigned i = 0; i < IPC_REG_WORDS; i++)
		ok &= m.mr[i] == i * 3 + 7;
	for (unsigned i = IPC_REG_WORDS; i < IPC_MAX_WORDS; i++)
		ok &= MICA_IPCBUF->mr[i] == i * 3 + 7;
	check("call_64_words", ok);

	ok = 1;
	for (uint64_t i = 0; i < PINGPONG_ROUNDS && ok; i++) {
		m.tag = ipc_tag(LABEL_PING, 1);
		m.mr[0] = i;
		ok = mica_call(CHILD_EP_SLOT, &m) == 0 && m.mr[0] == i + 1;
	}
	m.tag = ipc_tag(LABEL_PING_DONE, 0);
	mica_call(CHILD_EP_SLOT, &m);
	check("pingpong", ok);

	/* Unmapped: the root task's fault handler maps it and resumes us. */
	uint64_t v = *(volatile uint64_t *)FAULT_RESUME_VA;
	m.tag = ipc_tag(LABEL_AFTER_FAULT, 1);
	m.mr[0] = v;
	mica_call(CHILD_EP_SLOT, &m);

	/* A store to our own text: the handler answers "kill". */
	printf("child: writing to my own text at %p\n", (void *)_start);
	*(volatile uint64_t *)_start = 0;
	check("survived_a_killing_fault", 0);
}

/* Ask to run on `hart` only; the answer says where we landed. */
static unsigned pin_to(unsigned hart, long *result)
{
	unsigned h = ~0u;
	*result = mica_thread_affinity(1UL << hart, &h);
	return h;
}

/* The far end of a shootdown test: access SMP_SHOOT_VA for ever while the
 * root task takes it away (or makes it read-only) and gives it back. An
 * access that starts after the root has published an odd epoch must fault:
 * its translation is gone from every hart by then. If it does not (no fault
 * was answered meanwhile), a stale TLB entry let it through, and we tell the
 * root at once rather than leave it waiting for a fault that never comes. */
static _Noreturn void smp_access(unsigned hart, int write)
{
	struct smp_status *st = (struct smp_status *)SMP_STATUS_VA;
	volatile uint64_t *page = (volatile uint64_t *)SMP_SHOOT_VA;
	struct mica_msg m = {0};
	long r;
	unsigned h = pin_to(hart, &r);
	st->hart = h;
	m.tag = ipc_tag(LABEL_SMP_READY, 2);
	m.mr[0] = h;
	m.mr[1] = (uint64_t)r;
	if (mica_call(CHILD_EP_SLOT, &m))
		mica_task_exit(1);
	for (;;) {
		uint64_t f = st->faults;
		uint64_t e = st->epoch;
		/* The access must not be performed before the epoch is read. */
		__asm__ volatile("fence r,r" ::: "memory");
		if (write)
			*page = e;
		else
			(void)*page;
		__asm__ volatile("fence rw,r" ::: "memory");
		if ((e & 1) && st->faults == f) {
			st->bad++;
			m.tag = ipc_tag(LABEL_SMP_STALE, 2);
			m.mr[0] = e;
			m.mr[1] = st->reads;
			mica_call(CHILD_EP_SLOT, &m);
		}
		st->reads++;
		/* A send to a root task waiting in recv does not block us, so
		 * the hart stays in our address space with its TLB as it is. */
		uint64_t want = st->notify;
		if (want && st->reads >= want) {
			st->notify = 0;
			m.tag = ipc_tag(LABEL_SMP_ACCESSED, 0);
			mica_send(CHILD_EP_SLOT, &m);
		}
		if (st->yield)
			mica_yield();
	}
}

/* Each round: hop over the harts in `mask`, touching TOUCH_VA on each, so
 * that all of them may cache its translation; then report and wait for the
 * root to time the unmap and map the page again. */
static _Noreturn void toucher(uint64_t mask)
{
	struct mica_msg m = {.tag = ipc_tag(LABEL_TOUCHED, 0)};
	for (;;) {
		if (mica_call(CHILD_EP_SLOT, &m))
			mica_task_exit(1); /* no root task to wait for: touch nothing */
		for (unsigned h = 0; h < MICA_MAX_HARTS; h++) {
			if (!(mask >> h & 1))
				continue;
			mica_thread_affinity(1UL << h, 0);
			*(volatile uint64_t *)TOUCH_VA = h;
		}
		m.tag = ipc_tag(LABEL_TOUCHED, 0);
	}
}

int mica_main(uintptr_t arg)
{
	struct mica_msg m = {0};
	uintptr_t mode = arg & CHILD_MODE_MASK;
	unsigned hart = (unsigned)(arg >> CHILD_ARG_SHIFT);
	long r;
	switch (mode) {
	case CHILD_SCRIPT:
		script();
		return failures;
	case CHILD_SERVER:
		/* Take one call and leave without answering it. */
		mica_recv(CHILD_EP_SLOT, &m);
		return 7;
	case CHILD_BLOCKED_CALLER:
		m.tag = ipc_tag(LABEL_DOOMED, 0);
		mica_call(CHILD_EP_SLOT, &m);
		return 1; /* never: the root task kills us first */
	case CHILD_ECHO_SERVER:
		mica_recv(CHILD_EP_SLOT, &m);
		for (;;)
			mica_reply_recv(CHILD_EP_SLOT, &m);
	case CHILD_CAP_RECEIVER: {
		MICA_IPCBUF->cap_recv = GIFT_SLOT;
		long err = mica_recv(CHILD_EP_SLOT, &m);
		unsigned rights = 0;
		uint64_t badge = 0;
		int ok = err == 0 && ipc_tag_label(m.tag) == LABEL_GIFT && (m.tag & IPC_TAG_CAP) &&
			 MICA_IPCBUF->cap_received == 1 &&
			 mica_cap_identify(GIFT_SLOT, &rights, &badge) == CAP_TYPE_ENDPOINT &&
			 rights == CAP_RIGHT_SEND && badge == BADGE_GIFT;
		check("received_capability", ok);
		m.tag = ipc_tag(LABEL_USED_GIFT, 0);
		return mica_call(GIFT_SLOT, &m) == 0 ? 0 : 1;
	}
	case CHILD_ILLEGAL:
		__asm__ volatile(".word 0"); /* all-zero: an illegal instruction */
		return 1;
	case CHILD_SPINNER:
		for (;;)
			__asm__ volatile("" ::: "memory");
	case CHILD_SMP_ECHO: {
		pin_to(hart, &r);
		if (mica_recv(CHILD_EP_SLOT, &m))
			return 1;
		for (;;) {
			/* Asked afresh each time: the answer must not depend on where the
			 * caller runs, whichever way the kernel passed the message. */
			unsigned now = ~0u;
			mica_thread_affinity(0, &now);
			m.mr[0]++;
			m.mr[1]++;
			m.mr[2]++;
			m.mr[3] = now;
			m.tag = ipc_tag(LABEL_SMP_ECHO, 4);
			mica_reply_recv(CHILD_EP_SLOT, &m);
		}
	}
	case CHILD_SMP_READER:
		smp_access(hart, 0);
	case CHILD_SMP_WRITER:
		smp_access(hart, 1);
	case CHILD_ECHO_PINNED:
		pin_to(hart, &r);
		if (mica_recv(CHILD_EP_SLOT, &m))
			return 1;
		for (;;)
			mica_reply_recv(CHILD_EP_SLOT, &m);
	case CHILD_TOUCHER:
		toucher(arg >> CHILD_ARG_SHIFT);
	case CHILD_MARKER:
		m.tag = ipc_tag(LABEL_MARKER, 0);
		mica_call(CHILD_EP_SLOT, &m);
		return 0;
	}
	return 99;
}
