/*
 * The kernel's SMP tests, run by the root task pinned to hart 0 when other
 * harts run tasks too: moving a thread between harts, IPC whose two ends run
 * on different harts, and TLB shootdown. For the latter a child spins on
 * another hart accessing a page while we take the page away (mm_remove) or
 * make it read-only (mm_protect) — the very calls the memory server makes for
 * UNMAP and PROTECT — so any hart that kept the old translation lets an
 * access through that should have faulted. Each test is one UTEST line.
 * We never spin on a child: we wait in recv, and a child that sees its
 * access go through when it should have faulted tells us so at once.
 */
#include "user/tests/smp_test.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mica/param.h"
#include "server/spawn.h"
#include "user/mica.h"
#include "user/tests/ipc_test.h"

/* Slots the rest of the root task's tests leave alone. */
#define SMP_EP            32 /* all rights: we receive the children's calls and faults */
#define SMP_EP_CALL_A     33 /* send only: the first child's line to us */
#define SMP_EP_FAULT_A    34 /* send only: its fault endpoint */
#define SMP_EP_CALL_B     35 /* the same for the second */
#define SMP_EP_FAULT_B    36
#define SMP_TASK_A        37
#define SMP_TASK_B        38
#define BADGE_SMP_CALL_A  0x5301
#define BADGE_SMP_FAULT_A 0x5302
#define BADGE_SMP_CALL_B  0x5303
#define BADGE_SMP_FAULT_B 0x5304

#define SMP_CHILD_PRIO 5 /* below ours: a child runs on our hart only while we wait */
#define ECHO_CALLS     10000
#define SHOOT_ROUNDS   2000
#define SETTLE_SECONDS 5
#define RW             (MICA_PROT_READ | MICA_PROT_WRITE)

static smp_report_fn report;
static uint64_t timebase;
static uint64_t shoot_frame; /* the page under test, the same in every reader */

static inline uint64_t rdtime(void)
{
	uint64_t t;
	__asm__ volatile("rdtime %0" : "=r"(t));
	return t;
}

/* What we changed before this (a mapping, through a system call) is in
 * place before a child can see what we store next. */
static inline void fence_before_publish(void)
{
	__asm__ volatile("fence rw,w" ::: "memory");
}

/* Visit every hart and come back: the kernel must say each time that we are
 * where we asked to be, and must refuse to let us go nowhere. */
static void test_migrate(unsigned harts)
{
	bool ok = true;
	char why[128] = "";
	for (unsigned k = 1; k <= harts && ok; k++) {
		unsigned want = k % harts, h = ~0u; /* ends on hart 0 */
		struct mica_kernel_info ki = {0};
		long r = mica_thread_affinity(1UL << want, &h);
		mica_kernel_info(&ki);
		ok = r >= 0 && h == want && ki.hart_index == want;
		if (!ok)
			snprintf(why, sizeof(why),
			         "asked for hart %u: result %ld, on hart %u, kernel_info says %llu",
			         want, r, h, (unsigned long long)ki.hart_index);
	}
	unsigned h = ~0u;
	uint64_t all = (1UL << harts) - 1;
	long r = ok ? mica_thread_affinity(all, &h) : 0;
	if (ok && (r != 1 || h >= harts)) {
		ok = false;
		snprintf(why, sizeof(why), "widening to %#llx: result %ld, on hart %u",
		         (unsigned long long)all, r, h);
	}
	r = mica_thread_affinity(1, &h);
	if (ok && (r != (long)all || h != 0)) {
		ok = false;
		snprintf(why, sizeof(why), "back to hart 0: result %ld, on hart %u", r, h);
	}
	report("smp_affinity_migrates", ok, why);
}

/* Calls from hart 0 to a server on hart 1: every reply must carry our data
 * back, changed as the server changes it, and the server's hart, which must
 * stay 1 whichever way the kernel passes messages between harts. */
static void test_ipc_cross_hart(void)
{
	char why[160] = "";
	long err = spawn_module("child", CAP_SLOT_MEMCTL, SMP_TASK_A,
	                        CHILD_SMP_ECHO | 1UL << CHILD_ARG_SHIFT, 0, SMP_CHILD_PRIO);
	bool started = err >= 0;
	if (started)
		err = mica_cap_copy_to(SMP_TASK_A, SMP_EP, CHILD_EP_SLOT, CAP_RIGHT_RECV, 0);
	bool ok = err == 0;
	if (!ok)
		snprintf(why, sizeof(why), "could not start the server (%ld)", err);
	unsigned i;
	for (i = 0; i < ECHO_CALLS && ok; i++) {
		struct mica_msg m = {.tag = ipc_tag(LABEL_SMP_ECHO, 4)};
		m.mr[0] = i;
		m.mr[1] = ~(uint64_t)i;
		m.mr[2] = (uint64_t)i * 3;
		err = mica_call(SMP_EP, &m);
		ok = err == 0 && ipc_tag_label(m.tag) == LABEL_SMP_ECHO &&
		     ipc_tag_words(m.tag) == 4 && m.mr[0] == i + 1 && m.mr[1] == ~(uint64_t)i + 1 &&
		     m.mr[2] == (uint64_t)i * 3 + 1 && m.mr[3] == 1;
		if (!ok)
			snprintf(
			    why, sizeof(why),
			    "call %u: result %ld, label %llu, words %#llx %#llx %#llx, hart %lld",
			    i, err, (unsigned long long)ipc_tag_label(m.tag),
			    (unsigned long long)m.mr[0], (unsigned long long)m.mr[1],
			    (unsigned long long)m.mr[2], (long long)m.mr[3]);
	}
	unsigned h = ~0u;
	mica_thread_affinity(0, &h);
	if (ok && h != 0) {
		ok = false;
		snprintf(why, sizeof(why), "after %u calls we run on hart %u, not 0", i, h);
	}
	if (started) {
		mica_task_kill_quiet(SMP_TASK_A);
		mica_cap_delete(SMP_TASK_A);
	}
	report("smp_ipc_cross_hart", ok, why);
}

struct reader {
	uint64_t task;       /* our slot for its task capability */
	uint64_t call_slot;  /* our badged capability it calls and sends through */
	uint64_t fault_slot; /* ... and the one it faults through */
	uint64_t call_badge, fault_badge;
	unsigned hart;
	bool started;
	bool armed;   /* it owes us a LABEL_SMP_ACCESSED */
	bool removed; /* it owes us a fault: the page is gone (or read-only) for it */
	struct smp_status *st;
};

static const struct reader reader_a = {.task = SMP_TASK_A,
                                       .call_slot = SMP_EP_CALL_A,
                                       .fault_slot = SMP_EP_FAULT_A,
                                       .call_badge = BADGE_SMP_CALL_A,
                                       .fault_badge = BADGE_SMP_FAULT_A};
static const struct reader reader_b = {.task = SMP_TASK_B,
                                       .call_slot = SMP_EP_CALL_B,
                                       .fault_slot = SMP_EP_FAULT_B,
                                       .call_badge = BADGE_SMP_CALL_B,
                                       .fault_badge = BADGE_SMP_FAULT_B};

/* Have the reader tell us when it has made two more accesses: armed while
 * it waits for our reply, so that we are blocked in recv long before it gets
 * there, and its send neither blocks it nor takes it off its hart (which
 * would leave its TLB empty). */
static void arm_notify(struct reader *r)
{
	r->armed = true;
	r->st->notify = r->st->reads + 2;
}

/* Start a reader (or writer) on its hart with the page under test mapped
 * read-write, and wait until it runs there. */
static bool start_reader(struct reader *r, unsigned mode, char *why, size_t len)
{
	r->st = 0;
	r->armed = r->removed = false;
	long err = spawn_module("child", CAP_SLOT_MEMCTL, r->task,
	                        mode | (uint64_t)r->hart << CHILD_ARG_SHIFT, r->fault_slot,
	                        SMP_CHILD_PRIO);
	if (err < 0) {
		snprintf(why, len, "could not start the child for hart %u (%ld)", r->hart, err);
		return false;
	}
	r->started = true;
	/* It cannot run before we wait: it shares our hart, below our priority,
	 * until it moves to its own. So its pages can be entered now. */
	uint64_t status = spawn_frames(PAGE_SIZE);
	struct mica_mapping maps[2] = {{SMP_STATUS_VA, status, PAGE_SIZE, RW},
	                               {SMP_SHOOT_VA, shoot_frame, PAGE_SIZE, RW}};
	err = status ? mica_cap_copy_to(r->task, r->call_slot, CHILD_EP_SLOT, CAP_RIGHT_SEND, 0)
	             : -MICA_ENOMEM;
	if (err == 0)
		err = mica_mm_enter(r->task, maps, 2);
	if (err) {
		snprintf(why, len, "could not set up the child for hart %u (%ld)", r->hart, err);
		return false;
	}
	r->st = spawn_window(status);
	struct mica_msg m;
	err = mica_recv(SMP_EP, &m);
	bool ready =
	    err == 0 && m.badge == r->call_badge && ipc_tag_label(m.tag) == LABEL_SMP_READY;
	if (!ready || m.mr[0] != r->hart || (long)m.mr[1] < 0) {
		snprintf(
		    why, len,
		    "the child for hart %u: result %ld, label %#llx, on hart %lld, affinity %lld",
		    r->hart, err, (unsigned long long)ipc_tag_label(m.tag), (long long)m.mr[0],
		    (long long)m.mr[1]);
		return false; /* it waits for our reply until we kill it */
	}
	m.tag = 0;
	mica_reply(&m);
	return true;
}

/* The next message from a reader: *from is the reader, *fault whether it
 * came through its fault endpoint. A report of a stale access, or a message
 * from anyone else, fails the test. */
static bool next_message(struct reader *rd, unsigned n, unsigned round, struct mica_msg *m,
                         struct reader **from, bool *fault, char *why, size_t len)
{
	long err = mica_recv(SMP_EP, m);
	uint64_t label = ipc_tag_label(m->tag);
	if (err) {
		snprintf(why, len, "round %u: recv failed (%ld)", round, err);
		return false;
	}
	*from = 0;
	for (unsigned i = 0; i < n; i++) {
		if (m->badge == rd[i].call_badge || m->badge == rd[i].fault_badge) {
			*from = &rd[i];
			*fault = m->badge == rd[i].fault_badge;
		}
	}
	if (*from && !*fault && label == LABEL_SMP_STALE) {
		snprintf(why, len,
		         "round %u: on hart %u an access at epoch %llu (access %llu) went through "
		         "without a fault: a stale translation",
		         round, (*from)->hart, (unsigned long long)m->mr[0],
		         (unsigned long long)m->mr[1]);
		return false; /* it waits in its call until we kill it */
	}
	if (!*from) {
		snprintf(why, len, "round %u: a message with badge %#llx, label %#llx", round,
		         (unsigned long long)m->badge, (unsigned long long)label);
		return false;
	}
	return true;
}

static void describe(const char *what, unsigned round, const struct reader *r,
                     const struct mica_msg *m, char *why, size_t len)
{
	snprintf(why, len,
	         "round %u: %s from the child on hart %u: label %#llx, address %#llx, access %llu",
	         round, what, r->hart, (unsigned long long)ipc_tag_label(m->tag),
	         (unsigned long long)m->mr[0], (unsigned long long)m->mr[1]);
}

/* Answer a fault the reader owed us: give the page back, count the fault,
 * publish the next even epoch, and let it go on. */
static bool answer_fault(struct reader *r, struct mica_msg *m, unsigned round, bool protect,
                         char *why, size_t len)
{
	uint64_t access = protect ? FAULT_ACCESS_WRITE : FAULT_ACCESS_READ;
	if (m->mr[0] != SMP_SHOOT_VA || m->mr[1] != access) {
		describe("a fault elsewhere", round, r, m, why, len);
		return false;
	}
	r->removed = false;
	volatile uint64_t *page = spawn_window(shoot_frame);
	if (protect && (*page & 1)) {
		snprintf(why, len, "round %u: a write at epoch %llu reached the read-only page",
		         round, (unsigned long long)*page);
		return false;
	}
	struct mica_mapping map = {SMP_SHOOT_VA, shoot_frame, PAGE_SIZE, RW};
	long err = protect ? mica_mm_protect(r->task, SMP_SHOOT_VA, PAGE_SIZE, RW)
	                   : mica_mm_enter(r->task, &map, 1);
	if (err) {
		snprintf(why, len, "round %u: could not give the page back (%ld)", round, err);
		return false;
	}
	r->st->faults++;
	r->st->epoch = 2 * (uint64_t)round + 2;
	arm_notify(r);
	fence_before_publish();
	m->tag = ipc_tag(FAULT_REPLY_RESUME, 0);
	mica_reply(m);
	return true;
}

/* Take one message from the readers: a notification it owed us (it has
 * accessed the page through its present translation, so its hart most
 * likely caches it), or the one fault it owed us this round. Several readers
 * interleave: one that has had its fault answered may notify before another
 * has faulted. Anything else fails the test. We wait blocked in recv, never
 * spinning: under emulation the readers' harts need the host's processors
 * more than we do. */
static bool take_message(struct reader *rd, unsigned n, unsigned round, bool protect, char *why,
                         size_t len)
{
	struct mica_msg m;
	struct reader *r;
	bool fault;
	if (!next_message(rd, n, round, &m, &r, &fault, why, len))
		return false;
	uint64_t label = ipc_tag_label(m.tag);
	if (fault && label == IPC_LABEL_FAULT && r->removed)
		return answer_fault(r, &m, round, protect, why, len);
	if (!fault && label == LABEL_SMP_ACCESSED && r->armed) {
		r->armed = false;
		return true;
	}
	describe(fault ? (r->removed ? "a strange fault" : "a fault it did not owe")
	               : "an unexpected message",
	         round, r, &m, why, len);
	return false;
}

static bool any_armed(const struct reader *rd, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (rd[i].armed)
			return true;
	return false;
}

static bool any_removed(const struct reader *rd, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (rd[i].removed)
			return true;
	return false;
}

/* The readers in rd[0..n) access the page for ever; each round we wait until
 * every one has accessed it through its current translation (so its hart
 * most likely caches it), take it away from all of them, publish an odd
 * epoch, and collect exactly one fault from each. */
static void test_shootdown(const char *name, unsigned mode, struct reader *rd, unsigned n)
{
	bool protect = mode == CHILD_SMP_WRITER;
	char why[192] = "";
	bool ok = true;
	*(volatile uint64_t *)spawn_window(shoot_frame) = 0;
	for (unsigned i = 0; i < n && ok; i++)
		ok = start_reader(&rd[i], mode, why, sizeof(why));
	/* Two on one hart take turns, or each would wait a timer tick for the other. */
	if (ok && n == 2 && rd[0].hart == rd[1].hart)
		rd[0].st->yield = rd[1].st->yield = 1;
	/* Only now: until every reader has said it is ready, nothing else may
	 * arrive. (These readers are running: one may have to wait for us.) */
	for (unsigned i = 0; i < n && ok; i++)
		arm_notify(&rd[i]);
	unsigned round;
	for (round = 0; round < SHOOT_ROUNDS && ok; round++) {
		while (ok && any_armed(rd, n))
			ok = take_message(rd, n, round, protect, why, sizeof(why));
		for (unsigned i = 0; i < n && ok; i++) {
			long err = protect ? mica_mm_protect(rd[i].task, SMP_SHOOT_VA, PAGE_SIZE,
			                                     MICA_PROT_READ)
			                   : mica_mm_remove(rd[i].task, SMP_SHOOT_VA, PAGE_SIZE);
			rd[i].removed = true;
			if (err) {
				ok = false;
				snprintf(why, sizeof(why), "round %u: %s failed (%ld)", round,
				         protect ? "mm_protect" : "mm_remove", err);
			}
		}
		if (!ok)
			break;
		fence_before_publish();
		for (unsigned i = 0; i < n; i++)
			rd[i].st->epoch = 2 * (uint64_t)round + 1;
		while (ok && any_removed(rd, n))
			ok = take_message(rd, n, round, protect, why, sizeof(why));
	}
	for (unsigned i = 0; i < n; i++) {
		if (ok && rd[i].st && rd[i].st->bad) {
			ok = false;
			snprintf(why, sizeof(why),
			         "the child on hart %u counted %llu stale accesses", rd[i].hart,
			         (unsigned long long)rd[i].st->bad);
		}
		/* Killing a task whose thread runs on another hart is allowed. */
		if (rd[i].started) {
			mica_task_kill_quiet(rd[i].task);
			mica_cap_delete(rd[i].task);
			rd[i].started = false;
		}
	}
	if (ok && round != SHOOT_ROUNDS) {
		ok = false;
		snprintf(why, sizeof(why), "only %u rounds", round);
	}
	report(name, ok, why);
}

void smp_tests(const struct bootinfo *bi, unsigned harts, smp_report_fn rep)
{
	report = rep;
	timebase = bi->timebase_hz ? bi->timebase_hz : 10000000;
	struct mica_kernel_info k0, k1;
	mica_kernel_info(&k0);
	long err = mica_endpoint_create(CAP_SLOT_MEMCTL, SMP_EP);
	const struct reader *ab[2] = {&reader_a, &reader_b};
	for (unsigned i = 0; i < 2 && !err; i++) {
		err = mica_cap_derive(SMP_EP, ab[i]->call_slot, CAP_RIGHT_SEND, ab[i]->call_badge);
		if (!err)
			err = mica_cap_derive(SMP_EP, ab[i]->fault_slot, CAP_RIGHT_SEND,
			                      ab[i]->fault_badge);
	}
	shoot_frame = spawn_frames(PAGE_SIZE);
	report("smp_setup", err == 0 && shoot_frame, "no endpoints or no page");
	if (err || !shoot_frame)
		return;

	test_migrate(harts);
	test_ipc_cross_hart();
	struct reader one = reader_a;
	one.hart = harts - 1;
	test_shootdown("smp_shootdown_unmap", CHILD_SMP_READER, &one, 1);
	test_shootdown("smp_shootdown_protect", CHILD_SMP_WRITER, &one, 1);
	/* One frame in two spaces whose threads run on two harts (one, with
	 * two harts): taking it from both must fence both. */
	struct reader two[2] = {reader_a, reader_b};
	two[0].hart = 1;
	two[1].hart = harts > 2 ? 2 : 1;
	test_shootdown("smp_shootdown_shared", CHILD_SMP_READER, two, 2);

	for (unsigned i = 0; i < 2; i++) {
		mica_cap_delete(ab[i]->fault_slot);
		mica_cap_delete(ab[i]->call_slot);
	}
	mica_cap_delete(SMP_EP);
	/* A child killed while it ran on another hart leaves once that hart
	 * has stopped it: give that a moment before anyone counts tasks. */
	uint64_t t0 = rdtime();
	do {
		mica_yield();
		mica_kernel_info(&k1);
	} while ((k1.tasks != k0.tasks || k1.threads != k0.threads) &&
	         rdtime() - t0 < SETTLE_SECONDS * timebase);
	char why[96];
	snprintf(why, sizeof(why), "tasks %llu -> %llu, threads %llu -> %llu",
	         (unsigned long long)k0.tasks, (unsigned long long)k1.tasks,
	         (unsigned long long)k0.threads, (unsigned long long)k1.threads);
	report("smp_children_gone", k1.tasks == k0.tasks && k1.threads == k0.threads, why);
}
