#include "kern/console.h"

#include <stdio.h>

#include "arch/riscv64/pmap.h"
#include "kern/kmem.h"
#include "kern/spinlock.h"
#include "kern/uart16550.h"
#include "lib/platform.h"
#include "sbi/sbi.h"

static struct uart16550 console_uart;
static bool console_uart_on;
static struct spinlock console_lock;
static char console_desc[96];

/* => boot hart only, before other harts run */
const char *console_attach(const struct plat_console *c)
{
	if (c->kind == PLAT_CONSOLE_SBI) {
		snprintf(console_desc, sizeof(console_desc), "SBI console (%s%s%s)",
			 sbi.dbcn ? "DBCN" : "legacy putchar", c->compatible[0] ? ", no driver for " : "",
			 c->compatible);
		return console_desc;
	}
	void *regs = pmap_map_device(c->base, c->size ? c->size : 0x100);
	if (!regs)
		return "SBI console (device window full)";
	uart16550_init(&console_uart, regs, c->reg_shift, c->reg_io_width);
	console_uart_on = true;
	snprintf(console_desc, sizeof(console_desc), "%s at 0x%llx (reg-shift %u, io-width %u)",
		 c->compatible, (unsigned long long)c->base, c->reg_shift,
		 c->reg_io_width ? c->reg_io_width : 1);
	return console_desc;
}

/* => takes console_lock */
void console_write(const char *buf, size_t len)
{
	spin_lock(&console_lock);
	if (console_uart_on)
		uart16550_write(&console_uart, buf, len);
	else
		sbi_console_write(buf, len);
	spin_unlock(&console_lock);
}

/* => takes console_lock */
void kvprintf(const char *fmt, va_list ap)
{
	char buf[256];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	console_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* => takes console_lock */
void kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}
