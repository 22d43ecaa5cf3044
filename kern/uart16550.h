/* The 16550-compatible UARTs Mica drives directly: QEMU's ns16550a (byte
 * registers, stride 1) and the Synopsys DesignWare APB UART of the JH7110
 * (stride 4, 32-bit accesses). Both keep the firmware's line settings. */
#ifndef MICA_KERN_UART16550_H
#define MICA_KERN_UART16550_H

#include <stddef.h>
#include <stdint.h>

struct uart16550 {
	volatile uint8_t *base;
	unsigned reg_shift;
	unsigned io_width; /* 1 or 4 */
};

void uart16550_init(struct uart16550 *u, void *base, unsigned reg_shift, unsigned io_width);
void uart16550_write(struct uart16550 *u, const char *buf, size_t len);

#endif
