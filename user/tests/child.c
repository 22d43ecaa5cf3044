/* The root task's partner in the IPC and fault tests. Its mode arrives in a0;
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

int mica_main(uintptr_t mode)
{
	struct mica_msg m = {0};
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
	case CHILD_MARKER:
		m.tag = ipc_tag(LABEL_MARKER, 0);
		mica_call(CHILD_EP_SLOT, &m);
		return 0;
	}
	return 99;
}
