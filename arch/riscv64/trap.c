#include "arch/riscv64/trapframe.h"

#include "arch/riscv64/csr.h"
#include "arch/riscv64/extable.h"
#include "arch/riscv64/layout.h"
#include "arch/riscv64/timer.h"
#include "kern/console.h"
#include "kern/hart.h"
#include "kern/panic.h"

extern char trap_entry[];

void trap_init(void)
{
	csr_write(sscratch, 0);
	csr_write(stvec, (uint64_t)trap_entry);
}

const char *trap_cause_name(uint64_t scause)
{
	static const char *const exc[] = {
		[EXC_INST_MISALIGNED] = "instruction address misaligned",
		[EXC_INST_ACCESS] = "instruction access fault",
		[EXC_ILLEGAL_INST] = "illegal instruction",
		[EXC_BREAKPOINT] = "breakpoint",
		[EXC_LOAD_MISALIGNED] = "load address misaligned",
		[EXC_LOAD_ACCESS] = "load access fault",
		[EXC_STORE_MISALIGNED] = "store/AMO address misaligned",
		[EXC_STORE_ACCESS] = "store/AMO access fault",
		[EXC_ECALL_U] = "environment call from U-mode",
		[EXC_ECALL_S] = "environment call from S-mode",
		[EXC_INST_PAGE_FAULT] = "instruction page fault",
		[EXC_LOAD_PAGE_FAULT] = "load page fault",
		[EXC_STORE_PAGE_FAULT] = "store/AMO page fault",
	};
	if (scause & SCAUSE_INTERRUPT) {
		switch (scause & ~SCAUSE_INTERRUPT) {
		case IRQ_S_SOFT:
			return "supervisor software interrupt";
		case IRQ_S_TIMER:
			return "supervisor timer interrupt";
		case IRQ_S_EXT:
			return "supervisor external interrupt";
		}
		return "unknown interrupt";
	}
	if (scause < sizeof(exc) / sizeof(exc[0]) && exc[scause])
		return exc[scause];
	return "unknown exception";
}

static bool in_kernel_stack(uint64_t p)
{
	return p >= this_hart()->kstack_bottom && p <= this_hart()->kstack_top;
}

static const char *const reg_names[32] = {
	"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0",
	"a1",   "a2", "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5",
	"s6",   "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
};

/* The GCC frame layout with -fno-omit-frame-pointer: s0 is the caller's sp,
 * the return address sits at s0 - 8 and the caller's s0 at s0 - 16. */
static void backtrace_from(uint64_t pc, uint64_t fp)
{
	kprintf("backtrace (addr2line -e build/<platform>/mica.elf):\n");
	kprintf("  #0 0x%016llx\n", (unsigned long long)pc);
	for (int depth = 1; depth < 32; depth++) {
		if ((fp & 7) || !in_kernel_stack(fp - 16) || !in_kernel_stack(fp))
			break;
		uint64_t ra = ((uint64_t *)fp)[-1];
		uint64_t next = ((uint64_t *)fp)[-2];
		if (ra < KIMAGE_BASE)
			break;
		kprintf("  #%d 0x%016llx\n", depth, (unsigned long long)ra);
		if (next <= fp)
			break;
		fp = next;
	}
}

void trap_report(const struct trapframe *tf, const char *why)
{
	kprintf("\n*** mica: %s\n", why);
	kprintf("scause 0x%016llx (%s)\nstval  0x%016llx\nsepc   0x%016llx\nsstatus 0x%016llx "
		"hart %llu\n",
		(unsigned long long)tf->scause, trap_cause_name(tf->scause),
		(unsigned long long)tf->stval, (unsigned long long)tf->sepc,
		(unsigned long long)tf->sstatus, (unsigned long long)this_hart()->hartid);
	for (int i = 1; i < 32; i++)
		kprintf("%4s %016llx%s", reg_names[i], (unsigned long long)tf->x[i],
			(i % 4 == 3 || i == 31) ? "\n" : "  ");
	backtrace_from(tf->sepc, tf->x[8]);
}

void trap_handler(struct trapframe *tf)
{
	if (tf->scause & SCAUSE_INTERRUPT) {
		if ((tf->scause & ~SCAUSE_INTERRUPT) == IRQ_S_TIMER) {
			timer_interrupt();
			return;
		}
		if ((tf->scause & ~SCAUSE_INTERRUPT) == IRQ_S_SOFT) {
			/* An IPI that found this hart idle or waiting for the BKL:
			 * both look at the run queue next, and user_trap() sees
			 * the note. */
			csr_clear(sip, SIP_SSIP);
			this_hart()->ipi_seen = true;
			return;
		}
		trap_report(tf, "unexpected interrupt");
		panic_halt();
	}
	uint64_t fixup = extable_lookup(tf->sepc);
	if (fixup) {
		this_hart()->fixup_scause = tf->scause;
		this_hart()->fixup_stval = tf->stval;
		tf->sepc = fixup;
		return;
	}
	trap_report(tf, "fatal exception in the kernel");
	panic_halt();
}
