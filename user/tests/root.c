/*
 * The root task as a test driver for the kernel's tasks, IPC, capabilities
 * and fault forwarding (until the memory server takes its place). Each check
 * prints "UTEST name: PASS" or "UTEST name: FAIL ..."; the QEMU runner counts
 * them. The task exits when done, which shuts the machine down.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mica/param.h"
#include "user/mica.h"
#include "server/server.h"
#include "server/spawn.h"
#include "user/tests/bench.h"
#include "user/tests/ipc_test.h"
#include "user/tests/mm_test.h"
#include "user/tests/smp_test.h"

#define EP 10         /* endpoint: all rights */
#define EP_CHILD 11   /* derived: send only, badge 0x55 */
#define EP_FAULT 12   /* derived: send only, badge 0x77 */
#define EP2 13        /* a second endpoint, served by a child */
#define SCRATCH 30    /* free slots for error tests */
#define CHILD_TASK 20
#define BADGE_CHILD 0x55
#define BADGE_FAULT 0x77
#define CHILD_PRIO 5
#define CHILD_TEXT_VA 0x10000 /* user/user.ld */
#define ROOT_PRIO 10 /* what the kernel gives the root task */
#define OOM_TEST_MAX_PAGES (512UL << 20 >> 12)
#define SERVER_CLIENT_SLOTS 10 /* clients the server serves at once (server/server.c) */

static int passed, failed;

static void utest(const char *name, int ok, const char *detail)
{
	if (ok) {
		passed++;
		printf("UTEST %s: PASS\n", name);
	} else {
		failed++;
		printf("UTEST %s: FAIL %s\n", name, detail ? detail : "");
	}
}

#define EXPECT(name, expr, want)                                                                   \
	do {                                                                                       \
		long got_ = (expr);                                                                \
		char why_[64];                                                                     \
		snprintf(why_, sizeof(why_), "got %ld, want %ld", got_, (long)(want));            \
		utest(name, got_ == (want), why_);                                                 \
	} while (0)

static uint64_t not_ours_pa; /* a page the kernel keeps: the device tree's first */
static const struct bootinfo *bootinfo;
static unsigned harts = 1; /* harts running tasks, as kernel_info says */

/* The affinity call on ourselves: `pinned` and `hart` are what pinning to
 * hart 0 returned at the very start. */
static void test_affinity(long pinned, unsigned hart)
{
	struct mica_kernel_info ki = {0};
	char why[96];
	mica_kernel_info(&ki);
	snprintf(why, sizeof(why), "harts %llu, on hart %llu", (unsigned long long)ki.harts,
		 (unsigned long long)ki.hart_index);
	utest("kernel_info_harts",
	      ki.harts >= 1 && ki.harts <= MICA_MAX_HARTS && ki.hart_index == 0, why);
	if (ki.harts >= 1 && ki.harts <= MICA_MAX_HARTS)
		harts = (unsigned)ki.harts;
	snprintf(why, sizeof(why), "result %ld, on hart %u", pinned, hart);
	utest("affinity_pin_to_hart_0", pinned > 0 && hart == 0, why);
	unsigned h = ~0u;
	long r = mica_thread_affinity(0, &h);
	snprintf(why, sizeof(why), "mask %#lx, on hart %u", (unsigned long)r, h);
	utest("affinity_query", r == 1 && h == 0, why);
	EXPECT("affinity_past_the_last_hart", mica_thread_affinity(1UL << harts, &h),
	       -MICA_EINVAL);
	EXPECT("affinity_no_running_hart", mica_thread_affinity(~0UL << harts, &h), -MICA_EINVAL);
	EXPECT("affinity_refused_changed_nothing", mica_thread_affinity(0, &h), 1);
}

static void test_errors(void)
{
	struct mica_msg m = {.tag = 0};
	EXPECT("call_null_slot", mica_call(0, &m), -MICA_EBADF);
	EXPECT("call_slot_out_of_range", mica_call(CAP_SLOTS + 5, &m), -MICA_EBADF);
	EXPECT("call_empty_slot", mica_call(SCRATCH, &m), -MICA_EBADF);
	EXPECT("call_on_task_cap", mica_call(CAP_SLOT_SELF, &m), -MICA_EINVAL);
	EXPECT("recv_without_right", mica_recv(EP_CHILD, &m), -MICA_EPERM);
	m.tag = ipc_tag(1, IPC_MAX_WORDS + 1);
	EXPECT("send_too_long", mica_send(EP, &m), -MICA_EINVAL);
	m.tag = ipc_tag(1, 0) | IPC_TAG_CAP;
	MICA_IPCBUF->cap_send = EP;
	EXPECT("grant_without_right", mica_send(EP_CHILD, &m), -MICA_EPERM);
	MICA_IPCBUF->cap_send = SCRATCH;
	EXPECT("grant_empty_slot", mica_send(EP, &m), -MICA_EBADF);
	EXPECT("unknown_syscall", mica_syscall6(99, 0, 0, 0, 0, 0, 0), -MICA_ENOSYS);

	EXPECT("derive_into_used_slot", mica_cap_derive(EP, EP_CHILD, CAP_RIGHT_SEND, 0),
	       -MICA_EEXIST);
	EXPECT("derive_from_empty", mica_cap_derive(SCRATCH, SCRATCH + 1, CAP_RIGHT_SEND, 0),
	       -MICA_EBADF);
	EXPECT("derive_bad_rights", mica_cap_derive(EP, SCRATCH, 0x100, 0), -MICA_EINVAL);
	EXPECT("rebadge_badged", mica_cap_derive(EP_CHILD, SCRATCH, CAP_RIGHT_SEND, 0x99),
	       -MICA_EPERM);
	EXPECT("badge_a_task_cap", mica_cap_derive(CAP_SLOT_SELF, SCRATCH, CAP_RIGHTS_ALL, 1),
	       -MICA_EPERM);
	/* Rights only narrow: asking for more than the source has gives what it has. */
	unsigned rights = 0;
	uint64_t badge = 0;
	long type = -1;
	if (mica_cap_derive(EP_CHILD, SCRATCH, CAP_RIGHTS_ALL, 0) == 0)
		type = mica_cap_identify(SCRATCH, &rights, &badge);
	utest("derive_never_widens",
	      type == CAP_TYPE_ENDPOINT && rights == CAP_RIGHT_SEND && badge == BADGE_CHILD,
	      "derived cap has more rights or lost its badge");
	EXPECT("delete_derived", mica_cap_delete(SCRATCH), 0);
	EXPECT("delete_empty", mica_cap_delete(SCRATCH), -MICA_EBADF);
	EXPECT("identify_empty", mica_cap_identify(SCRATCH, &rights, &badge), CAP_TYPE_NULL);

	EXPECT("endpoint_create_without_memctl", mica_endpoint_create(EP, SCRATCH), -MICA_EINVAL);
	EXPECT("space_create_bad_slot", mica_space_create(CAP_SLOT_MEMCTL, 0, 0), -MICA_EBADF);
	EXPECT("kill_an_endpoint", mica_task_kill(EP), -MICA_EINVAL);
	EXPECT("debug_write_bad_pointer", mica_debug_write((void *)0x10, 4), -MICA_EFAULT);
	EXPECT("debug_write_kernel_pointer", mica_debug_write((void *)0xffffffff80000000UL, 4),
	       -MICA_EFAULT);
	EXPECT("kernel_info_bad_pointer", mica_kernel_info((void *)0x8), -MICA_EFAULT);

	/* Privileged memory calls on a scratch space: every bad argument refused. */
	long id = mica_space_create(CAP_SLOT_MEMCTL, SCRATCH, "scratch");
	utest("space_create", id > 0, "no scratch space");
	uint64_t frame = spawn_frames(PAGE_SIZE);
	struct mica_mapping good = {0x40000, frame, PAGE_SIZE, MICA_PROT_READ | MICA_PROT_WRITE};
	struct mica_mapping bad = good;
	bad.va = 0x40001;
	EXPECT("enter_misaligned_va", mica_mm_enter(SCRATCH, &bad, 1), -MICA_EINVAL);
	bad = good;
	bad.len = 0;
	EXPECT("enter_zero_length", mica_mm_enter(SCRATCH, &bad, 1), -MICA_EINVAL);
	bad = good;
	bad.prot = MICA_PROT_WRITE;
	EXPECT("enter_write_only", mica_mm_enter(SCRATCH, &bad, 1), -MICA_EINVAL);
	bad = good;
	bad.va = 0xffffffc000000000UL;
	EXPECT("enter_kernel_va", mica_mm_enter(SCRATCH, &bad, 1), -MICA_EFAULT);
	bad = good;
	bad.va = USER_VA_MAX - PAGE_SIZE;
	bad.len = 2 * PAGE_SIZE;
	EXPECT("enter_past_user_space", mica_mm_enter(SCRATCH, &bad, 1), -MICA_EFAULT);
	bad = good;
	bad.pa = not_ours_pa;
	EXPECT("enter_kernel_memory", mica_mm_enter(SCRATCH, &bad, 1), -MICA_EPERM);
	EXPECT("enter_no_mappings", mica_mm_enter(SCRATCH, &good, 0), -MICA_EINVAL);
	bad = good;
	bad.prot |= MICA_MAP_DEVICE; /* RAM, asked for as a device */
	EXPECT("enter_ram_as_device", mica_mm_enter(SCRATCH, &bad, 1), -MICA_EPERM);
	if (bootinfo->ndevices) {
		bad.pa = bootinfo->devices[0].base;
		bad.prot = MICA_PROT_READ | MICA_MAP_DEVICE;
		EXPECT("enter_device", mica_mm_enter(SCRATCH, &bad, 1), 0);
		EXPECT("remove_device", mica_mm_remove(SCRATCH, bad.va, bad.len), 0);
		bad.prot = MICA_PROT_READ; /* the same range, not marked as a device */
		EXPECT("enter_device_as_ram", mica_mm_enter(SCRATCH, &bad, 1), -MICA_EPERM);
	}
	EXPECT("enter_bad_pointer", mica_mm_enter(SCRATCH, (void *)0x8, 1), -MICA_EFAULT);
	EXPECT("enter_on_endpoint", mica_mm_enter(EP, &good, 1), -MICA_EINVAL);
	struct mica_mapping pair[2] = {good, good};
	pair[1].va += PAGE_SIZE;
	pair[1].pa = not_ours_pa;
	uint64_t pa = 0, prot = 0;
	EXPECT("enter_batch_checked_first", mica_mm_enter(SCRATCH, pair, 2), -MICA_EPERM);
	EXPECT("enter_batch_left_nothing", mica_mm_extract(SCRATCH, good.va, &pa, &prot),
	       -MICA_ENOENT);
	EXPECT("enter_good", mica_mm_enter(SCRATCH, &good, 1), 0);
	EXPECT("enter_twice", mica_mm_enter(SCRATCH, &good, 1), -MICA_EEXIST);
	utest("extract", mica_mm_extract(SCRATCH, good.va + 8, &pa, &prot) == 0 &&
				 pa == frame + 8 && prot == (MICA_PROT_READ | MICA_PROT_WRITE),
	      "wrong translation");
	EXPECT("protect_bad_prot", mica_mm_protect(SCRATCH, good.va, PAGE_SIZE, 0), -MICA_EINVAL);
	EXPECT("protect", mica_mm_protect(SCRATCH, good.va, PAGE_SIZE, MICA_PROT_READ), 0);
	utest("protect_took", mica_mm_extract(SCRATCH, good.va, &pa, &prot) == 0 &&
				      prot == MICA_PROT_READ,
	      "protection unchanged");
	EXPECT("remove_wrapping", mica_mm_remove(SCRATCH, good.va, (uint64_t)0 - PAGE_SIZE),
	       -MICA_EFAULT);
	EXPECT("remove", mica_mm_remove(SCRATCH, good.va, PAGE_SIZE), 0);
	EXPECT("remove_left_nothing", mica_mm_extract(SCRATCH, good.va, &pa, &prot), -MICA_ENOENT);
	EXPECT("thread_bad_pc", mica_thread_start(SCRATCH, 0xffffffff80000000UL, USER_STACK_TOP, 0,
						  0, 1, 0),
	       -MICA_EFAULT);
	EXPECT("thread_bad_priority", mica_thread_start(SCRATCH, 0x10000, USER_STACK_TOP, 0, 0, 99,
							0),
	       -MICA_EINVAL);
	EXPECT("thread_unmapped_ipcbuf", mica_thread_start(SCRATCH, 0x10000, USER_STACK_TOP, 0,
							   0x90000, 1, 0),
	       -MICA_EFAULT);
	EXPECT("thread_fault_ep_without_send", mica_thread_start(SCRATCH, 0x10000, USER_STACK_TOP,
								 0, 0, 1, CAP_SLOT_SELF),
	       -MICA_EINVAL);
	EXPECT("donate_misaligned", mica_mm_donate(CAP_SLOT_MEMCTL, frame + 1, PAGE_SIZE),
	       -MICA_EINVAL);
	EXPECT("donate_kernel_memory", mica_mm_donate(CAP_SLOT_MEMCTL, not_ours_pa, PAGE_SIZE),
	       -MICA_EPERM);
	EXPECT("kill_scratch", mica_task_kill(SCRATCH), 0);
	EXPECT("enter_on_dead_task", mica_mm_enter(SCRATCH, &good, 1), -MICA_ESRCH);
	EXPECT("delete_scratch_cap", mica_cap_delete(SCRATCH), 0);
}

/* Serve the scripted child: echo tests, a long message, ping-pong, and two
 * faults (one resumed after mapping the page, one answered with "kill"). */
static void serve_script_child(void)
{
	struct mica_msg m;
	int regs_ok = 1, long_ok = 0, badge_ok = 1, resumed = 0, killed = 0;
	uint64_t pings = 0;
	long err = mica_recv(EP, &m);
	while (err == 0) {
		uint64_t label = ipc_tag_label(m.tag);
		unsigned words = ipc_tag_words(m.tag);
		if (m.badge == BADGE_FAULT && label == IPC_LABEL_FAULT) {
			if (m.mr[0] == FAULT_RESUME_VA && m.mr[1] == FAULT_ACCESS_READ) {
				uint64_t frame = spawn_frames(PAGE_SIZE);
				*(uint64_t *)spawn_window(frame) = FAULT_RESUME_VALUE;
				struct mica_mapping map = {FAULT_RESUME_VA, frame, PAGE_SIZE,
							   MICA_PROT_READ};
				resumed = mica_mm_enter(CHILD_TASK, &map, 1) == 0;
				m.tag = ipc_tag(FAULT_REPLY_RESUME, 0);
			} else {
				killed = m.mr[1] == FAULT_ACCESS_WRITE && m.mr[0] == CHILD_TEXT_VA;
				m.tag = ipc_tag(FAULT_REPLY_KILL, 0);
				mica_reply(&m);
				break;
			}
		} else if (m.badge != BADGE_CHILD) {
			badge_ok = 0;
			m.tag = 0;
		} else if (label >= LABEL_REGS && label <= LABEL_REGS + IPC_REG_WORDS) {
			unsigned n = (unsigned)(label - LABEL_REGS);
			regs_ok &= words == n;
			for (unsigned i = 0; i < n; i++) {
				regs_ok &= m.mr[i] == 1000 * n + i;
				m.mr[i]++;
			}
			m.tag = ipc_tag(LABEL_REGS_REPLY + n, n);
		} else if (label == LABEL_LONG) {
			long_ok = words == IPC_MAX_WORDS;
			for (unsigned i = 0; i < IPC_REG_WORDS; i++) {
				long_ok &= m.mr[i] == i * 3;
				m.mr[i] += 7;
			}
			for (unsigned i = IPC_REG_WORDS; i < IPC_MAX_WORDS; i++) {
				long_ok &= MICA_IPCBUF->mr[i] == i * 3;
				MICA_IPCBUF->mr[i] += 7;
			}
			m.tag = ipc_tag(0, IPC_MAX_WORDS);
		} else if (label == LABEL_PING) {
			pings++;
			m.mr[0]++;
			m.tag = ipc_tag(0, 1);
		} else if (label == LABEL_AFTER_FAULT) {
			resumed &= m.mr[0] == FAULT_RESUME_VALUE;
			m.tag = 0;
		} else {
			m.tag = 0;
		}
		err = mica_reply_recv(EP, &m);
	}
	utest("echo_0_to_4_register_words", regs_ok, "a register word was lost");
	utest("badges_delivered", badge_ok, "a message arrived with an unexpected badge");
	utest("long_message_through_ipc_buffer", long_ok, "IPC buffer words differ");
	utest("pingpong_100000", pings == PINGPONG_ROUNDS, "wrong number of round trips");
	utest("fault_forwarded_and_resumed", resumed, "fault not seen, or the page was not read");
	utest("fault_forwarded_and_killed", killed, "the store fault did not arrive as such");
}

static long spawn_child_at(unsigned mode, uint64_t ep_slot, unsigned ep_rights, unsigned prio)
{
	long id = spawn_module("child", CAP_SLOT_MEMCTL, CHILD_TASK, mode, EP_FAULT, prio);
	if (id < 0)
		return id;
	long err = mica_cap_copy_to(CHILD_TASK, ep_slot, CHILD_EP_SLOT, ep_rights, 0);
	return err ? err : id;
}

static long spawn_child(unsigned mode, uint64_t ep_slot, unsigned ep_rights)
{
	return spawn_child_at(mode, ep_slot, ep_rights, CHILD_PRIO);
}

static void test_script_child(void)
{
	long id = spawn_child(CHILD_SCRIPT, EP_CHILD, CAP_RIGHT_SEND);
	utest("spawn_child", id > 0, "spawn failed");
	if (id <= 0)
		return;
	serve_script_child();
	/* Give the kernel's kill a moment to finish, then drop our handle. */
	mica_yield();
	EXPECT("child_task_gone", mica_task_kill(CHILD_TASK), -MICA_ESRCH);
	mica_cap_delete(CHILD_TASK);
}

/* A server that takes our call and exits: we get -EPIPE, not a hang. */
static void test_server_dies(void)
{
	long id = spawn_child(CHILD_SERVER, EP2, CAP_RIGHT_RECV);
	struct mica_msg m = {.tag = ipc_tag(1, 0)};
	EXPECT("call_to_dying_server", id > 0 ? mica_call(EP2, &m) : id, -MICA_EPIPE);
	mica_cap_delete(CHILD_TASK);
}

/* A caller killed while queued, and one killed while we hold its reply right:
 * neither may leave anything behind that a later message could trip on. */
static void test_killed_mid_ipc(void)
{
	struct mica_msg m;
	/* Our own priority, so that yielding lets it run: its call then waits on EP
	 * because we are not receiving. */
	long id = spawn_child_at(CHILD_BLOCKED_CALLER, EP_CHILD, CAP_RIGHT_SEND, ROOT_PRIO);
	for (int i = 0; i < 3; i++)
		mica_yield();
	EXPECT("kill_queued_caller", id > 0 ? mica_task_kill(CHILD_TASK) : id, 0);
	mica_cap_delete(CHILD_TASK);

	id = spawn_child(CHILD_MARKER, EP_CHILD, CAP_RIGHT_SEND);
	long err = mica_recv(EP, &m);
	utest("queue_clean_after_kill", id > 0 && err == 0 && ipc_tag_label(m.tag) == LABEL_MARKER,
	      "the dead caller's message was delivered");
	m.tag = 0;
	mica_reply(&m);
	mica_yield();
	mica_cap_delete(CHILD_TASK);

	id = spawn_child(CHILD_BLOCKED_CALLER, EP_CHILD, CAP_RIGHT_SEND);
	err = mica_recv(EP, &m); /* we now hold its reply right */
	utest("took_doomed_call", err == 0 && ipc_tag_label(m.tag) == LABEL_DOOMED,
	      "no call arrived");
	EXPECT("kill_while_holding_its_reply", mica_task_kill(CHILD_TASK), 0);
	mica_cap_delete(CHILD_TASK);
	m.tag = 0;
	EXPECT("reply_to_the_dead", mica_reply(&m), 0);
}

/* Move a badged send capability to a child through EP2; the child uses it to
 * call us, and the badge proves which capability it used. */
static void test_capability_transfer(void)
{
	long id = spawn_child(CHILD_CAP_RECEIVER, EP2, CAP_RIGHT_RECV);
	long err = mica_cap_derive(EP, SCRATCH, CAP_RIGHT_SEND, BADGE_GIFT);
	struct mica_msg m = {.tag = ipc_tag(LABEL_GIFT, 0) | IPC_TAG_CAP};
	MICA_IPCBUF->cap_send = SCRATCH;
	if (id > 0 && err == 0)
		err = mica_send(EP2, &m);
	unsigned rights;
	uint64_t badge;
	utest("capability_moved_away", err == 0 && mica_cap_identify(SCRATCH, &rights, &badge) ==
							       CAP_TYPE_NULL,
	      "the capability is still in the sender's slot");
	err = mica_recv(EP, &m);
	utest("capability_used_by_receiver",
	      err == 0 && ipc_tag_label(m.tag) == LABEL_USED_GIFT && m.badge == BADGE_GIFT,
	      "no call through the moved capability");
	m.tag = 0;
	mica_reply(&m);
	/* It has a lower priority and would only run when we block: end it now. */
	mica_task_kill(CHILD_TASK);
	mica_cap_delete(CHILD_TASK);
}

/* An illegal instruction in a thread with no fault endpoint: the kernel kills
 * the task (and says so on the console), and nothing else is disturbed. */
static void test_fault_without_handler(void)
{
	long id = spawn_module("child", CAP_SLOT_MEMCTL, CHILD_TASK, CHILD_ILLEGAL, 0, ROOT_PRIO);
	for (int i = 0; i < 3; i++)
		mica_yield();
	EXPECT("fault_without_handler_kills", id > 0 ? mica_task_kill(CHILD_TASK) : id,
	       -MICA_ESRCH);
	mica_cap_delete(CHILD_TASK);
}

/* Clients pinned two to a hart (one where more harts than the server has
 * client slots for two each), all doing random MM operations against their
 * own model at once, with INFO and QUERY in between: the server's answers
 * and the kernel's shootdowns on its behalf must keep each one's view of its
 * memory right. They need a round of their own: the first one fills every
 * client slot. */
static void run_stress_clients(void)
{
	unsigned per = harts * 2 <= SERVER_CLIENT_SLOTS ? 2 : 1, want = 0, started = 0;
	for (unsigned hart = 0; hart < harts; hart++)
		for (unsigned k = 0; k < per; k++, want++) {
			uint64_t arg = MMTEST_STRESS | (uint64_t)(hart | k << 8) << MMTEST_ARG_SHIFT;
			started += server_spawn_client("mmtest", arg, CHILD_PRIO, 0) != 0;
		}
	utest("server_started_stress_clients", started == want, "a stress client did not start");
	server_run();
}

/* server_client_add_thread's refusals, on a client whose only thread waits
 * for a partner that never comes: each leaves its map as it was. The extra
 * threads it does start have nothing to do and end at once. */
static void test_add_thread_errors(void)
{
	struct mm_client *c = server_spawn_client("mmtest", MMTEST_SHOOT, CHILD_PRIO, 0);
	if (!c) {
		utest("server_add_thread_errors", 0, "no client");
		return;
	}
	size_t n0 = c->map.nentries;
	long wide = server_client_add_thread(c, USER_THREAD_ARG_MASK + 1, CHILD_PRIO);
	bool same = c->map.nentries == n0;
	long err = 0;
	unsigned k;
	for (k = 1; k < USER_THREADS_MAX && !err; k++)
		err = server_client_add_thread(c, 0, CHILD_PRIO);
	size_t n1 = c->map.nentries;
	long full = server_client_add_thread(c, 0, CHILD_PRIO);
	same = same && c->map.nentries == n1;
	server_client_kill(c);
	long gone = server_client_add_thread(c, 0, CHILD_PRIO);
	char why[160];
	snprintf(why, sizeof(why),
		 "too wide %ld, thread %u of %u: %ld, one more %ld, after the kill %ld, map %s", wide,
		 k - 1, USER_THREADS_MAX - 1, err, full, gone, same ? "unchanged" : "changed");
	utest("server_add_thread_errors",
	      wide == -MICA_EINVAL && err == 0 && full == -MICA_EAGAIN && gone == -MICA_ESRCH &&
		  same,
	      why);
	server_run(); /* until its exit note */
}

/* A client with two threads on two harts other than ours where we can: one
 * keeps using a page's translation, the other asks us to replace the page
 * (mm_shoot.c). Alone, so that nothing else takes either hart. */
static void run_shootdown_client(void)
{
	unsigned reader = harts - 1, replacer = harts > 2 ? 1 : 0;
	uint64_t arg = MMTEST_SHOOT | (uint64_t)(reader | replacer << 8) << MMTEST_ARG_SHIFT;
	struct mm_client *c = server_spawn_client("mmtest", arg, CHILD_PRIO, 0);
	long err = c ? server_client_add_thread(c, arg, CHILD_PRIO) : -MICA_ENOMEM;
	char why[64];
	snprintf(why, sizeof(why), "result %ld", err);
	utest("server_started_two_thread_client", err == 0, why);
	if (c && err)
		server_client_kill(c); /* its first thread would wait for ever */
	if (c)
		server_run();
}

/* The same over one frame seen by two tasks: the owner's two threads and the
 * peer's one on three harts (mm_shoot.c); each round the frame goes from
 * both maps and both readers must see the new one. */
static void run_share_shootdown_clients(void)
{
	unsigned owner = harts - 1, peer = harts - 2, replacer = harts > 3 ? 1 : 0;
	uint64_t arg = MMTEST_SHOOT_SHARE | (uint64_t)(owner | replacer << 8) << MMTEST_ARG_SHIFT;
	struct mm_client *x = server_spawn_client("mmtest", arg, CHILD_PRIO, 0);
	struct mm_client *y = server_spawn_client(
		"mmtest", MMTEST_SHOOT_PEER | (uint64_t)peer << MMTEST_ARG_SHIFT, CHILD_PRIO, 0);
	long err = x && y ? server_give_share_token(x, y, MMTEST_TOKEN_SLOT) : -MICA_ENOMEM;
	if (!err)
		err = server_client_add_thread(x, arg, CHILD_PRIO);
	char why[64];
	snprintf(why, sizeof(why), "result %ld", err);
	utest("server_started_share_shootdown_clients", err == 0, why);
	if (err) { /* their readers would wait for a replacer */
		if (x)
			server_client_kill(x);
		if (y)
			server_client_kill(y);
	}
	if (x || y)
		server_run();
}

/* Become the memory server for a set of test clients: one running every
 * operation and error case, three doing random operations against a model,
 * and three that touch memory they may not and must be killed. When the last
 * one is gone, every frame must be back. */
static void run_memory_server(void)
{
	size_t free0, free1, total;
	struct mica_kernel_info k0, k1;
	EXPECT("server_endpoint", server_start(), 0);
	server_frames_stats(&free0, &total);
	mica_kernel_info(&k0);
	uint64_t donated0 = server_donated_pages, heap0 = server_heap_pages();
	static const unsigned modes[] = {MMTEST_MAIN,	  MMTEST_RANDOM,  MMTEST_RANDOM,
					 MMTEST_RANDOM,	  MMTEST_WRITE_RO, MMTEST_EXEC_NX,
					 MMTEST_GUARD};
	/* Spread over several harts every operation is an IPC between harts, many
	 * times dearer under emulation (and more so when the emulated harts
	 * outnumber the host's processors): the random clients do fewer. */
	uint64_t random_ops = harts > 1 ? MMTEST_RANDOM_OPS / 4 : MMTEST_RANDOM_OPS;
	unsigned started = 0;
	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		uint64_t arg = modes[i];
		if (modes[i] == MMTEST_RANDOM)
			arg |= random_ops << MMTEST_ARG_SHIFT;
		started += server_spawn_client("mmtest", arg, CHILD_PRIO, 0) != 0;
	}
	/* The device client may map the console UART, whichever kind this board has. */
	static const char *const uarts[] = {"ns16550a", "snps,dw-apb-uart", "sifive,uart0",
					    "starfive,jh7110-uart", 0};
	uint64_t uart = 0;
	for (unsigned i = 0; i < bootinfo->ndevices && !uart; i++)
		for (const char *const *u = uarts; *u && !uart; u++)
			if (strcmp(bootinfo->devices[i].compatible, *u) == 0)
				uart = bootinfo->devices[i].base;
	struct mm_client *dev = server_spawn_client("mmtest", MMTEST_DEVICE | uart, CHILD_PRIO, 0);
	if (dev)
		server_grant_devices(dev, uarts);
	started += dev != 0;
	struct mm_client *a = server_spawn_client("mmtest", MMTEST_SHARE_A, CHILD_PRIO, 0);
	struct mm_client *b = server_spawn_client("mmtest", MMTEST_SHARE_B, CHILD_PRIO, 0);
	started += a && b && server_give_share_token(a, b, MMTEST_TOKEN_SLOT) == 0 ? 2 : 0;
	utest("server_started_clients", started == sizeof(modes) / sizeof(modes[0]) + 3,
	      "a client did not start");
	server_run();
	run_stress_clients();
	test_add_thread_errors();
	if (harts > 1)
		run_shootdown_client();
	if (harts > 2)
		run_share_shootdown_clients();
	else
		printf("root: %u harts: the SHARE shootdown test wants 3\n", harts);
	/* Alone, so that nobody else's allocations blur its count: a client
	 * with no resident quota runs the machine out of RAM, twice. */
	static const struct mm_quota unlimited = {.entries = 1 << 20, .resident = 1UL << 40,
						  .wired = 64};
	size_t free_now;
	server_frames_stats(&free_now, &total);
	/* Filling gigabytes a page at a time takes minutes under emulation; the
	 * small-RAM boots (128-512 MiB) run it. */
	if (free_now <= OOM_TEST_MAX_PAGES) {
		utest("server_started_oom_client",
		      server_spawn_client("mmtest", MMTEST_OOM, CHILD_PRIO, &unlimited) != 0,
		      "no OOM client");
		server_run();
	} else {
		printf("root: %zu free pages: the out-of-memory test runs on small-RAM boots only\n",
		       free_now);
	}
	server_frames_stats(&free1, &total);
	mica_kernel_info(&k1);
	char why[128];
	uint64_t lent = server_donated_pages - donated0, heap = server_heap_pages() - heap0;
	snprintf(why, sizeof(why),
		 "free frames %zu before, %zu after, %llu lent to the kernel, %llu to the heap",
		 free0, free1, (unsigned long long)lent, (unsigned long long)heap);
	/* Everything is back but what the kernel borrowed and the server's own
	 * heap grew by (its malloc keeps freed memory for reuse). */
	utest("server_frames_back_to_baseline", free1 + lent + heap == free0, why);
	utest("server_killed_the_three_offenders", server_kills == 3, "wrong number of kills");
	utest("server_clients_gone", k1.tasks == k0.tasks && k1.threads == k0.threads,
	      "a client task is still alive");
}

/* A thread of our priority that never makes a system call: only the timer
 * tick can give the processor back to us. If preemption were broken, this
 * test would never return and the boot would time out. */
static void test_preemption(void)
{
	struct mica_kernel_info k0, k1;
	mica_kernel_info(&k0);
	long id = spawn_child_at(CHILD_SPINNER, EP_CHILD, CAP_RIGHT_SEND, ROOT_PRIO);
	mica_yield(); /* the spinner runs now */
	mica_kernel_info(&k1);
	utest("timer_preemption", id > 0 && k1.ticks > k0.ticks, "no tick between the two reads");
	mica_task_kill(CHILD_TASK);
	mica_cap_delete(CHILD_TASK);
}

/* make run: two tasks under the memory server, told in plain words. */
static void run_demo(void)
{
	size_t free0, free1, total;
	struct mica_kernel_info ki;
	printf("\nroot: I am the memory server. Starting two tasks: a writer and a reader.\n");
	server_start();
	server_frames_stats(&free0, &total);
	struct mm_client *w = server_spawn_client("mmtest", MMTEST_DEMO_WRITER, CHILD_PRIO, 0);
	struct mm_client *r = server_spawn_client("mmtest", MMTEST_DEMO_READER, CHILD_PRIO, 0);
	if (!w || !r || server_give_share_token(w, r, MMTEST_TOKEN_SLOT)) {
		printf("root: the demo could not start\n");
		return;
	}
	server_run();
	server_frames_stats(&free1, &total);
	mica_kernel_info(&ki);
	printf("root: both tasks are gone. Free frames: %zu of %zu (%zu before they started; the "
	       "difference is my own heap and page tables lent to the kernel).\n",
	       free1, total, free0);
	printf("root: kernel arena in use: %llu KiB; live tasks %llu, threads %llu, endpoints "
	       "%llu.\n",
	       (unsigned long long)(ki.karena_inuse >> 10), (unsigned long long)ki.tasks,
	       (unsigned long long)ki.threads, (unsigned long long)ki.endpoints);
	printf("root: that was Mica. `make test` runs the full suite.\n");
}

static int same_kernel_use(const struct mica_kernel_info *a, const struct mica_kernel_info *b)
{
	return a->karena_inuse == b->karena_inuse && a->tasks == b->tasks &&
	       a->threads == b->threads && a->endpoints == b->endpoints;
}

int mica_main(uintptr_t arg)
{
	/* Before anything else: the kernel tests below expect one hart's
	 * ordering, and every child we start inherits where we may run. */
	unsigned hart0 = ~0u;
	long pinned = mica_thread_affinity(1, &hart0);
	const struct bootinfo *bi = (const struct bootinfo *)arg;
	printf("root: boot info at %p, %llu free ranges, %llu modules\n", (void *)bi,
	       (unsigned long long)bi->nranges, (unsigned long long)bi->nmodules);
	utest("bootinfo", bi->magic == BOOTINFO_MAGIC && bi->nmodules >= 1, "bad boot info");
	server_frames_init(bi);
	spawn_init(bi);
	if (bi->flags & BOOTINFO_F_DEMO) {
		run_demo();
		return 0;
	}
	if (bi->flags & BOOTINFO_F_BENCH) {
		bench_ipc();
		bench_smp();
		static const struct mm_quota roomy = {.entries = 1 << 16, .resident = 1 << 16,
						      .wired = 1024};
		struct mm_client *c = server_start() == 0 ? server_spawn_client(
								  "mmtest", MMTEST_BENCH, CHILD_PRIO, &roomy)
							    : 0;
		if (c) {
			/* The figures are the server's, not the test build's checker,
			 * which walks the whole map after every change. */
			c->map.debug_check = false;
			server_run();
		}
		return 0;
	}
	not_ours_pa = bi->dtb_pa & ~(uint64_t)PAGE_MASK;
	bootinfo = bi;

	test_affinity(pinned, hart0);
	struct mica_kernel_info before, after;
	mica_kernel_info(&before);
	EXPECT("endpoint_create", mica_endpoint_create(CAP_SLOT_MEMCTL, EP), 0);
	EXPECT("endpoint_create_2", mica_endpoint_create(CAP_SLOT_MEMCTL, EP2), 0);
	EXPECT("derive_badged", mica_cap_derive(EP, EP_CHILD, CAP_RIGHT_SEND, BADGE_CHILD), 0);
	EXPECT("derive_fault_cap", mica_cap_derive(EP, EP_FAULT, CAP_RIGHT_SEND, BADGE_FAULT), 0);

	test_errors();
	test_script_child();
	test_server_dies();
	test_killed_mid_ipc();
	test_capability_transfer();
	test_fault_without_handler();
	test_preemption();
	if (harts > 1)
		smp_tests(bi, harts, utest);
	else
		printf("root: 1 hart: SMP tests skipped\n");

	mica_cap_delete(EP_FAULT);
	mica_cap_delete(EP_CHILD);
	mica_cap_delete(EP2);
	mica_cap_delete(EP);
	mica_yield();
	mica_kernel_info(&after);
	char why[128];
	snprintf(why, sizeof(why), "arena %llu -> %llu, tasks %llu -> %llu, threads %llu -> %llu",
		 (unsigned long long)before.karena_inuse, (unsigned long long)after.karena_inuse,
		 (unsigned long long)before.tasks, (unsigned long long)after.tasks,
		 (unsigned long long)before.threads, (unsigned long long)after.threads);
	utest("no_kernel_memory_leaked", same_kernel_use(&before, &after), why);

	/* The memory server's clients inherit our affinity: let them spread. */
	unsigned h = ~0u;
	long r = mica_thread_affinity((1UL << harts) - 1, &h);
	snprintf(why, sizeof(why), "result %ld, on hart %u", r, h);
	utest("affinity_widened_to_every_hart", r == 1 && h < harts, why);
	run_memory_server();
	printf("UTEST summary: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
