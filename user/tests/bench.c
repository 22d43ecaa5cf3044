/*
 * IPC and system-call benchmarks, run by the root task when the kernel was
 * booted with "mica.bench". Under QEMU's -icount shift=0 the cycle counter
 * advances by one per guest instruction, so the figures are instruction
 * counts, exact and repeatable; elsewhere they are cycles. With several harts
 * under icount the counter follows QEMU's one virtual clock, so it counts the
 * instructions of every hart: a cross-hart figure includes the other hart's
 * work (and the firmware's, for IPIs and remote fences).
 */
#include <stdint.h>
#include <stdio.h>

#include "mica/param.h"
#include "user/mica.h"
#include "server/spawn.h"
#include "user/tests/bench.h"
#include "user/tests/ipc_test.h"

#define BENCH_EP 40
#define BENCH_TASK 41
#define ROUNDS 20000
#define UNMAP_ROUNDS 500
#define UNMAP_WARMUP 20

static inline uint64_t rdcycle(void)
{
	uint64_t c;
	__asm__ volatile("rdcycle %0" : "=r"(c));
	return c;
}

static void report(const char *name, uint64_t total, uint64_t rounds)
{
	/* Hundredths, so that a fraction of an instruction per operation shows. */
	uint64_t hundredths = total * 100 / rounds;
	printf("BENCH %s %llu.%02llu instructions\n", name, (unsigned long long)(hundredths / 100),
	       (unsigned long long)(hundredths % 100));
}

static uint64_t time_calls(unsigned words)
{
	struct mica_msg m = {.tag = ipc_tag(1, words)};
	/* Warm up: the first call finds the server not yet waiting. */
	for (int i = 0; i < 100; i++)
		mica_call(BENCH_EP, &m);
	uint64_t t0 = rdcycle();
	for (int i = 0; i < ROUNDS; i++) {
		m.tag = ipc_tag(1, words);
		mica_call(BENCH_EP, &m);
	}
	return rdcycle() - t0;
}

void bench_ipc(void)
{
	unsigned rights;
	uint64_t badge;
	uint64_t t0 = rdcycle();
	for (int i = 0; i < ROUNDS; i++)
		mica_cap_identify(0, &rights, &badge);
	report("null_syscall", rdcycle() - t0, ROUNDS);

	/* An empty loop costs too: measure it so it can be taken out. */
	t0 = rdcycle();
	for (int i = 0; i < ROUNDS; i++)
		__asm__ volatile("" ::: "memory");
	uint64_t loop = rdcycle() - t0;
	report("empty_loop", loop, ROUNDS);

	if (mica_endpoint_create(CAP_SLOT_MEMCTL, BENCH_EP) ||
	    spawn_module("child", CAP_SLOT_MEMCTL, BENCH_TASK, CHILD_ECHO_SERVER, 0, 5) < 0 ||
	    mica_cap_copy_to(BENCH_TASK, BENCH_EP, CHILD_EP_SLOT, CAP_RIGHT_RECV, 0)) {
		printf("BENCH setup failed\n");
		return;
	}
	report("ipc_call_reply_recv_0_words", time_calls(0), ROUNDS);
	report("ipc_call_reply_recv_4_words", time_calls(4), ROUNDS);
	mica_task_kill(BENCH_TASK);
	mica_cap_delete(BENCH_TASK);
	mica_cap_delete(BENCH_EP);
	printf("BENCH done\n");
}

static void stop_child(void)
{
	mica_task_kill_quiet(BENCH_TASK);
	mica_cap_delete(BENCH_TASK);
}

/* Start a child from `hart`, so that it runs there first (it inherits our
 * affinity) and its address space has been live on no other hart; give it
 * the endpoint and, if `map` is not NULL, that mapping; then go back to hart
 * 0. It cannot run before all that: on its hart we are in its way, with our
 * higher priority, until we leave. */
static long spawn_from(unsigned hart, uint64_t arg, unsigned ep_rights,
		       const struct mica_mapping *map)
{
	mica_thread_affinity(1UL << hart, 0);
	long err = spawn_module("child", CAP_SLOT_MEMCTL, BENCH_TASK, arg, 0, 5);
	if (err >= 0) {
		err = mica_cap_copy_to(BENCH_TASK, BENCH_EP, CHILD_EP_SLOT, ep_rights, 0);
		if (err == 0 && map)
			err = mica_mm_enter(BENCH_TASK, map, 1);
		if (err)
			stop_child();
	}
	mica_thread_affinity(1, 0);
	return err < 0 ? err : 0;
}

/* call + reply_recv with the server pinned to `hart`, we on hart 0. */
static int bench_echo_on(const char *name, unsigned hart)
{
	if (spawn_from(hart, CHILD_ECHO_PINNED | (uint64_t)hart << CHILD_ARG_SHIFT,
		       CAP_RIGHT_RECV, 0))
		return -1;
	report(name, time_calls(0), ROUNDS);
	stop_child();
	return 0;
}

/* mm_remove of one page from a task whose thread touched it on each hart in
 * `mask` since it was entered: the kernel must fence it out of each of those
 * harts' TLBs before the call returns. Between rounds the page goes back in
 * and the thread makes the same tour again. */
static int bench_unmap_after(const char *name, uint64_t mask)
{
	uint64_t frame = spawn_frames(PAGE_SIZE);
	struct mica_mapping map = {TOUCH_VA, frame, PAGE_SIZE, MICA_PROT_READ | MICA_PROT_WRITE};
	if (!frame || spawn_from((unsigned)__builtin_ctzl(mask),
				 CHILD_TOUCHER | mask << CHILD_ARG_SHIFT, CAP_RIGHT_SEND, &map))
		return -1;
	struct mica_msg m;
	long err = mica_recv(BENCH_EP, &m); /* it is ready; nothing touched yet */
	uint64_t total = 0;
	for (unsigned r = 0; r < UNMAP_WARMUP + UNMAP_ROUNDS && err == 0; r++) {
		m.tag = 0;
		err = mica_reply_recv(BENCH_EP, &m); /* go; it has made its tour */
		if (err || ipc_tag_label(m.tag) != LABEL_TOUCHED)
			break;
		uint64_t t0 = rdcycle();
		err = mica_mm_remove(BENCH_TASK, TOUCH_VA, PAGE_SIZE);
		uint64_t t = rdcycle() - t0;
		if (r >= UNMAP_WARMUP)
			total += t;
		if (err == 0)
			err = mica_mm_enter(BENCH_TASK, &map, 1);
	}
	stop_child();
	if (err)
		return -1;
	report(name, total, UNMAP_ROUNDS);
	return 0;
}

void bench_smp(void)
{
	struct mica_kernel_info ki = {0};
	mica_kernel_info(&ki);
	if (ki.harts <= 1)
		return;
	unsigned harts = (unsigned)ki.harts;
	char name[64];
	snprintf(name, sizeof(name), "mm_unmap_1_page_ran_on_%u_harts", harts);
	if (mica_endpoint_create(CAP_SLOT_MEMCTL, BENCH_EP) ||
	    bench_echo_on("ipc_call_reply_recv_same_hart", 0) ||
	    bench_echo_on("ipc_call_reply_recv_cross_hart", 1) ||
	    bench_unmap_after("mm_unmap_1_page_ran_on_1_hart", 1) ||
	    bench_unmap_after("mm_unmap_1_page_ran_on_other_hart", 2) ||
	    bench_unmap_after(name, (1UL << harts) - 1)) {
		printf("BENCH smp setup failed\n");
		mica_cap_delete(BENCH_EP);
		return;
	}
	mica_cap_delete(BENCH_EP);
	printf("BENCH smp done\n");
}
