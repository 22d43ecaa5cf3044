/* The memory server runs the map's invariant checker after every change (its
 * vm_map is built with MICA_TEST): a broken invariant stops the server loudly
 * rather than letting it hand out memory from a corrupt map. */
#include <stdio.h>

#include "mica/kassert.h"
#include "user/mica.h"

_Noreturn void kassert_fail(const char *expr, const char *file, int line)
{
	printf("server: invariant broken: %s at %s:%d\n", expr, file, line);
	mica_task_exit(70);
}
