#include "arch/riscv64/extable.h"

#include "arch/riscv64/csr.h"

extern const struct extable_entry __ex_table_start[], __ex_table_end[];

uint64_t extable_lookup(uint64_t pc)
{
	for (const struct extable_entry *e = __ex_table_start; e < __ex_table_end; e++)
		if (e->insn == pc)
			return e->fixup;
	return 0;
}

#define EXTABLE_ENTRY(insn, fixup)                                                                 \
	".pushsection __ex_table, \"a\"\n\t.balign 8\n\t.dword " #insn ", " #fixup                \
	"\n\t.popsection\n\t"

bool probe_stimecmp(void)
{
	long ok = 1;
	__asm__ volatile("1: csrr t0, 0x14d\n\t"
			 "j 3f\n"
			 "2: li %0, 0\n"
			 "3:\n\t" EXTABLE_ENTRY(1b, 2b)
			 : "+r"(ok)
			 :
			 : "t0");
	return ok;
}

bool probe_load(const volatile uint64_t *addr, uint64_t *out)
{
	long ok = 1;
	uint64_t v = 0;
	__asm__ volatile("1: ld %1, 0(%2)\n\t"
			 "j 3f\n"
			 "2: li %0, 0\n"
			 "3:\n\t" EXTABLE_ENTRY(1b, 2b)
			 : "+r"(ok), "+r"(v)
			 : "r"(addr)
			 : "memory");
	*out = v;
	return ok;
}

bool probe_store(volatile uint64_t *addr, uint64_t value)
{
	long ok = 1;
	__asm__ volatile("1: sd %1, 0(%2)\n\t"
			 "j 3f\n"
			 "2: li %0, 0\n"
			 "3:\n\t" EXTABLE_ENTRY(1b, 2b)
			 : "+r"(ok)
			 : "r"(value), "r"(addr)
			 : "memory");
	return ok;
}
