#include "kern/uart16550.h"

#define UART_THR 0 /* transmit holding */
#define UART_IER 1
#define UART_LSR 5
#define LSR_THRE 0x20 /* room in the transmitter */

static uint32_t uart_read(struct uart16550 *u, unsigned reg)
{
	volatile uint8_t *p = u->base + (reg << u->reg_shift);
	if (u->io_width == 4)
		return *(volatile uint32_t *)p;
	return *p;
}

static void uart_write_reg(struct uart16550 *u, unsigned reg, uint32_t v)
{
	volatile uint8_t *p = u->base + (reg << u->reg_shift);
	if (u->io_width == 4)
		*(volatile uint32_t *)p = v;
	else
		*p = (uint8_t)v;
}

void uart16550_init(struct uart16550 *u, void *base, unsigned reg_shift, unsigned io_width)
{
	u->base = base;
	u->reg_shift = reg_shift;
	u->io_width = io_width == 4 ? 4 : 1;
	/* Polled output only: keep the UART's interrupts off. Baud rate and line
	 * format stay as the firmware left them (OpenSBI/U-Boot set 115200n8). */
	uart_write_reg(u, UART_IER, 0);
}

static void uart_putc(struct uart16550 *u, char c)
{
	while (!(uart_read(u, UART_LSR) & LSR_THRE))
		;
	uart_write_reg(u, UART_THR, (uint8_t)c);
}

/* => console lock held */
void uart16550_write(struct uart16550 *u, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n')
			uart_putc(u, '\r');
		uart_putc(u, buf[i]);
	}
}
