/* C start-up for user tasks: thread-local storage for picolibc, then main. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "user/mica.h"

extern char __tdata_start[], __tdata_end[], __tbss_start[], __tbss_end[];

void mica_tls_init(void *tls);
_Noreturn void mica_start(uintptr_t arg);

/* One TLS block for the task's first thread (errno and friends); further
 * threads keep theirs on their stacks (crt0.S). */
#define TLS_BLOCK_SIZE 256
__attribute__((aligned(16))) char __user_tls[TLS_BLOCK_SIZE];
/* Per thread: each thread has an IPC buffer of its own. */
_Thread_local uintptr_t mica_ipcbuf_va = USER_IPCBUF_VA;

_Noreturn void mica_thread_entry(uintptr_t a0);

void mica_tls_init(void *tls)
{
	size_t tdata = (size_t)(__tdata_end - __tdata_start);
	size_t tbss = (size_t)(__tbss_end - __tbss_start);
	if (tdata + tbss > TLS_BLOCK_SIZE)
		mica_task_exit(-MICA_ENOMEM); /* nothing to report with: no TLS yet */
	for (size_t i = 0; i < tdata; i++)
		((char *)tls)[i] = __tdata_start[i];
	for (size_t i = 0; i < tbss; i++)
		((char *)tls)[tdata + i] = 0;
	__asm__ volatile("mv tp, %0" ::"r"(tls));
}

_Noreturn void mica_start(uintptr_t arg)
{
	mica_task_exit(mica_main(arg));
}

/* A program with further threads defines its own; without one they end at once. */
__attribute__((weak)) void mica_thread_main(uintptr_t arg)
{
	(void)arg;
}

_Noreturn void mica_thread_entry(uintptr_t a0)
{
	unsigned k = (unsigned)(a0 >> USER_THREAD_INDEX_SHIFT) & (USER_THREADS_MAX - 1);
	mica_ipcbuf_va = USER_THREAD_IPCBUF_VA(k);
	mica_thread_main(a0 & USER_THREAD_ARG_MASK);
	mica_thread_exit();
}

_Noreturn void mica_task_exit(long status)
{
	mica_syscall6(SYS_TASK_EXIT, (unsigned long)status, 0, 0, 0, 0, 0);
	for (;;)
		;
}

_Noreturn void mica_thread_exit(void)
{
	mica_syscall6(SYS_THREAD_EXIT, 0, 0, 0, 0, 0, 0);
	for (;;)
		;
}

long mica_cap_identify(uint64_t slot, unsigned *rights, uint64_t *badge)
{
	register unsigned long r0 __asm__("a0") = slot;
	register unsigned long r1 __asm__("a1");
	register unsigned long r2 __asm__("a2");
	register unsigned long r7 __asm__("a7") = SYS_CAP_IDENTIFY;
	__asm__ volatile("ecall" : "+r"(r0), "=r"(r1), "=r"(r2) : "r"(r7) : "memory");
	if ((long)r0 >= 0) {
		*rights = (unsigned)r1;
		*badge = r2;
	}
	return (long)r0;
}

long mica_mm_extract(uint64_t task, uint64_t va, uint64_t *pa, uint64_t *prot)
{
	register unsigned long r0 __asm__("a0") = task;
	register unsigned long r1 __asm__("a1") = va;
	register unsigned long r2 __asm__("a2");
	register unsigned long r7 __asm__("a7") = SYS_MM_EXTRACT;
	__asm__ volatile("ecall" : "+r"(r0), "+r"(r1), "=r"(r2) : "r"(r7) : "memory");
	if ((long)r0 == 0) {
		*pa = r1;
		*prot = r2;
	}
	return (long)r0;
}

/* picolibc's _exit, for exit() and abort(). */
_Noreturn void _exit(int status)
{
	mica_task_exit(status);
}
