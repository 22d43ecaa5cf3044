/* Host-test glue: what the kernel would supply to portable code. */
#include <stdio.h>
#include <stdlib.h>

#include "mica/kassert.h"

_Noreturn void kassert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "KASSERT failed: %s at %s:%d\n", expr, file, line);
	abort();
}
