/* stdout/stderr for picolibc: lines go to the kernel's debug console. */
#include <stdio.h>

#include "user/mica.h"

static char line[128];
static size_t line_len;

static int console_flush(FILE *f)
{
	(void)f;
	if (line_len) {
		/* The kernel rate-limits the debug console: wait for the next tick. */
		while (mica_debug_write(line, line_len) == -MICA_EAGAIN)
			mica_yield();
		line_len = 0;
	}
	return 0;
}

static int console_putc(char c, FILE *f)
{
	line[line_len++] = c;
	if (c == '\n' || line_len == sizeof(line))
		console_flush(f);
	return (unsigned char)c;
}

static FILE console = FDEV_SETUP_STREAM(console_putc, NULL, console_flush, _FDEV_SETUP_WRITE);
FILE *const stdin = &console;
FILE *const stdout = &console;
FILE *const stderr = &console;
