/*
 * IPC and system-call benchmarks, run by the root task when the kernel was
 * booted with "mica.bench". Under QEMU's -icount shift=0 the cycle counter
 * advances by one per guest instruction, so the figures are instruction
 * counts, exact and repeatable; elsewhere they are cycles.
 */
#include <stdint.h>
#include <stdio.h>

#include "user/mica.h"
#include "server/spawn.h"
#include "user/tests/bench.h"
#include "user/tests/ipc_test.h"

#define BENCH_EP 40
#define BENCH_TASK 41
#define ROUNDS 20000

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
