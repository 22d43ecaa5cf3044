/* Exception fixups: an instruction that may legitimately fault (a probe of an
 * optional CSR, later a copy from user memory) is listed with a recovery
 * address. The trap handler resumes there instead of declaring the kernel dead. */
#ifndef MICA_ARCH_EXTABLE_H
#define MICA_ARCH_EXTABLE_H

#include <stdbool.h>
#include <stdint.h>

struct extable_entry {
	uint64_t insn;
	uint64_t fixup;
};

/* The recovery address for a faulting pc, or 0. */
uint64_t extable_lookup(uint64_t pc);

/* Read CSR stimecmp; false when the hart has no Sstc or M-mode did not enable it. */
bool probe_stimecmp(void);
/* Load 8 bytes from `addr`; false (with the cause in the hart's fixup fields) on a fault. */
bool probe_load(const volatile uint64_t *addr, uint64_t *out);

/* Store 8 bytes to `addr`; false (cause in the hart's fixup fields) on a fault. */
bool probe_store(volatile uint64_t *addr, uint64_t value);

#endif
