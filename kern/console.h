/* The kernel console: the device tree's stdout UART when Mica has a driver
 * for it, the SBI console otherwise (and before the tree has been read). */
#ifndef MICA_KERN_CONSOLE_H
#define MICA_KERN_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

struct plat_console;

/* Switch from the SBI console to the UART the tree names, if we drive it.
 * Returns a short description of the device in use. */
const char *console_attach(const struct plat_console *c);
void console_write(const char *buf, size_t len);

__attribute__((format(printf, 1, 2))) void kprintf(const char *fmt, ...);
void kvprintf(const char *fmt, va_list ap);

#endif
