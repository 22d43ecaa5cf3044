#include "kern/panic.h"

#include <stdarg.h>

#include "arch/riscv64/csr.h"
#include "kern/console.h"
#include "mica/kassert.h"
#include "sbi/sbi.h"

/* The test runner keys on these final lines; keep them stable. */
#define LINE_SHUTDOWN "mica: shutdown\n"
#define LINE_HALTED "mica: halted: %s; power off by hand\n"

static _Noreturn void stop_forever(void)
{
	csr_clear(sstatus, SSTATUS_SIE);
	csr_write(sie, 0);
	for (;;)
		wfi();
}

static _Noreturn void shutdown_with(unsigned long reason)
{
	csr_clear(sstatus, SSTATUS_SIE);
	kprintf(LINE_SHUTDOWN);
	long err = sbi_system_reset(SBI_SRST_SHUTDOWN, reason);
	kprintf(LINE_HALTED, err == SBI_ERR_NOT_SUPPORTED ? "the firmware offers no SBI shutdown"
							  : "the firmware's shutdown returned");
	stop_forever();
}

_Noreturn void kernel_shutdown(void)
{
	shutdown_with(SBI_SRST_REASON_NONE);
}

_Noreturn void panic_halt(void)
{
	kprintf("mica: halted after a fatal error\n");
	shutdown_with(SBI_SRST_REASON_FAILURE);
}

_Noreturn void panic(const char *fmt, ...)
{
	va_list ap;
	csr_clear(sstatus, SSTATUS_SIE);
	kprintf("\n*** mica: panic: ");
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
	panic_halt();
}

_Noreturn void kassert_fail(const char *expr, const char *file, int line)
{
	panic("assertion \"%s\" failed at %s:%d", expr, file, line);
}
