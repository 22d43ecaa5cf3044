/* libFuzzer target for mm/vmem: the first two bytes choose an arena configuration
 * (quantum, size, quantum caches, importing from a parent, a tight tag budget, hash
 * size, placement near the top of the address space), the rest is decoded into
 * operations. Each operation runs on the arena and on the reference bitmap of
 * tests/host/lib/vmem_ref.c, which compares them and runs vmem_check() after every
 * step; the arena checks itself too (MICA_TEST). Any disagreement aborts.
 *
 *   make build/fuzz/fuzz_vmem && build/fuzz/fuzz_vmem -max_total_time=600 corpus/ */
#include <stddef.h>
#include <stdint.h>

#include "tests/host/lib/vmem_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmem_ref_config cfg;
	struct vmem_ref_op op;

	if (size < 2)
		return 0;
	vmem_ref_pick_config((unsigned)data[0] | (unsigned)data[1] << 8, &cfg);
	data += 2;
	size -= 2;
	vmem_ref_setup(&cfg);
	while (vmem_ref_decode_op(&data, &size, &op))
		vmem_ref_step(&op);
	vmem_ref_teardown();
	return 0;
}
