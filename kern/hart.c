#include "kern/hart.h"

#include <string.h>

extern char __tdata_start[], __tdata_end[], __tbss_start[], __tbss_end[];

/* Give a hart its TLS image (picolibc's errno and friends) and identity.
 * => before the hart calls into picolibc */
void hart_block_init(struct hart_block *b, uint64_t hartid, unsigned index)
{
	size_t tdata = (size_t)(__tdata_end - __tdata_start);
	size_t tbss = (size_t)(__tbss_end - __tbss_start);
	/* No memcpy yet: it is a picolibc routine and may itself touch TLS. */
	for (size_t i = 0; i < tdata; i++)
		b->tls[i] = __tdata_start[i];
	for (size_t i = 0; i < tbss; i++)
		b->tls[tdata + i] = 0;
	b->local.h.hartid = hartid;
	b->local.h.index = index;
}
