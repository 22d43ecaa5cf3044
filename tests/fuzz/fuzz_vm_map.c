/* libFuzzer target for mm/vm_map: the input is an operation sequence (see
 * vmref_op_decode) applied to a map and to the per-page reference model. After every
 * operation the harness runs the invariant checker and compares map, model, removal
 * callbacks and reference counts; allocation failures can be injected per operation and
 * must leave the map exactly as it was. Any difference aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mica/param.h"
#include "tests/host/lib/vm_map_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmref_harness h;
	struct vmref_op op;
	char buf[256];
	unsigned cfg;

	if (size == 0)
		return 0;
	/* First byte: a small map low in memory, or one ending at the top of the address
	 * space where addr + len overflows are reachable. */
	cfg = *data++;
	size--;
	if (vmref_h_init(&h, cfg & 1 ? (uintptr_t)0 - 65 * PAGE_SIZE : 0x10000, 64) != 0)
		abort();
	h.map.debug_check = false; /* vmref_h_step runs the checker itself */
	while (vmref_op_decode(&op, &data, &size, &h.ref)) {
		if (vmref_h_step(&h, &op) != 0) {
			vmref_op_format(&op, buf, sizeof(buf));
			fprintf(stderr, "vm_map mismatch after %llu steps: %s\n  op: %s\n",
			        (unsigned long long)h.steps, h.msg, buf);
			abort();
		}
	}
	vmref_h_fini(&h);
	return 0;
}
