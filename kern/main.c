/* The boot hart's path from the first C instruction to the banner. */
#include <string.h>

#include "arch/riscv64/boot_pt.h"
#include "arch/riscv64/csr.h"
#include "arch/riscv64/layout.h"
#include "arch/riscv64/pmap.h"
#include "arch/riscv64/timer.h"
#include "arch/riscv64/trapframe.h"
#include "kern/console.h"
#include "kern/bkl.h"
#include "kern/hart.h"
#include "kern/karena.h"
#include "kern/kpool.h"
#include "kern/kmem.h"
#include "kern/ktest.h"
#include "kern/panic.h"
#include "kern/root.h"
#include "kern/sched.h"
#include "kern/smp.h"
#include "lib/dt.h"
#include "lib/platform.h"
#include "mica/bootinfo.h"
#include "mica/param.h"
#include "sbi/sbi.h"

#define MICA_RELEASE "0.1.0-dev"

extern char _start[], _end[];
extern char boot_stack_bottom[], boot_stack_top[];

static struct plat_info plat;
static struct pmap_boot_info pmap_info;
static uint64_t kpool_bytes;

_Noreturn void kmain(uint64_t hartid, uint64_t dtb_pa);

static void print_size(uint64_t bytes)
{
	if (bytes >= GIGAPAGE_SIZE && !(bytes & (GIGAPAGE_SIZE - 1)))
		kprintf("%llu GiB", (unsigned long long)(bytes >> 30));
	else if (bytes >= (1UL << 20))
		kprintf("%llu MiB", (unsigned long long)(bytes >> 20));
	else
		kprintf("%llu KiB", (unsigned long long)(bytes >> 10));
}

static void print_range(const char *label, const struct plat_range *r)
{
	kprintf("%-10s 0x%010llx-0x%010llx (", label, (unsigned long long)r->base,
		(unsigned long long)(r->base + r->size));
	print_size(r->size);
	kprintf(")\n");
}

static void print_banner(uint64_t boot_hartid, const char *console, const char *timer)
{
	kprintf("\nMica %s (%s), a RISC-V Sv39 microkernel\n", MICA_RELEASE, MICA_VERSION);
	kprintf("platform:  %s\n", plat.model[0] ? plat.model : "(no model in the device tree)");
	kprintf("image:     loaded at 0x%llx, %llu KiB, text_offset 0x%llx\n",
		(unsigned long long)boot_load_pa, (unsigned long long)((_end - _start) >> 10),
		(unsigned long long)MICA_TEXT_OFFSET);
	for (unsigned i = 0; i < plat.nram; i++)
		print_range("ram:", &plat.ram[i]);
	kprintf("ram total: %llu MiB in %u bank%s\n", (unsigned long long)(plat.ram_total >> 20),
		plat.nram, plat.nram == 1 ? "" : "s");
	for (unsigned i = 0; i < plat.nreserved; i++)
		print_range("reserved:", &plat.reserved[i]);
	if (plat.nreserved == 0)
		kprintf("reserved:  none listed\n");

	kprintf("harts:     usable");
	for (unsigned i = 0; i < plat.nharts; i++)
		if (plat.harts[i].usable)
			kprintf(" %u", plat.harts[i].hartid);
	kprintf("; not usable");
	unsigned unusable = 0;
	for (unsigned i = 0; i < plat.nharts; i++)
		if (!plat.harts[i].usable) {
			kprintf(" %u", plat.harts[i].hartid);
			unusable++;
		}
	if (!unusable)
		kprintf(" none");
	kprintf("; boot hart %llu\n", (unsigned long long)boot_hartid);
	kprintf("harts total: %u usable of %u\n", plat.nusable, plat.nharts);

	kprintf("timebase:  %llu Hz\n", (unsigned long long)plat.timebase_hz);
	if (sbi.base) {
		long v = sbi.impl_version;
		kprintf("sbi:       v%u.%u, %s", sbi.spec_major, sbi.spec_minor,
			sbi_impl_name(sbi.impl_id));
		if (sbi.impl_id == 1) /* OpenSBI encodes major.minor as 16.16 */
			kprintf(" %ld.%ld", v >> 16, v & 0xffff);
		else
			kprintf(" version 0x%lx", v);
		kprintf("; extensions:%s%s%s%s%s%s\n", sbi.time ? " time" : "", sbi.ipi ? " ipi" : "",
			sbi.rfence ? " rfence" : "", sbi.hsm ? " hsm" : "", sbi.srst ? " srst" : "",
			sbi.dbcn ? " dbcn" : "");
	} else {
		kprintf("sbi:       v0.1 (legacy calls only)\n");
	}
	kprintf("console:   %s\n", console);
	kprintf("timer:     %u Hz via %s\n", (unsigned)MICA_HZ, timer);
	kprintf("mmu:       Sv39, %u ASID bits%s; linear map %llu x 1 GiB, %llu x 2 MiB, %llu x 4 KiB\n",
		pmap_info.asid_bits, pmap_info.asid_bits ? "" : " (flush on every switch)",
		(unsigned long long)pmap_info.linear_leaves[2],
		(unsigned long long)pmap_info.linear_leaves[1],
		(unsigned long long)pmap_info.linear_leaves[0]);
	kprintf("kpool:     %llu KiB for page tables and kernel objects\n",
		(unsigned long long)(kpool_bytes >> 10));
	if (plat.truncated)
		kprintf("warning:   the device tree lists more than Mica's fixed tables hold; "
			"extra entries ignored\n");
	if (!plat_hart_usable(&plat, (uint32_t)boot_hartid))
		kprintf("warning:   the boot hart is not marked usable in the device tree\n");
}

static bool hart_has_sstc(uint64_t hartid)
{
	for (unsigned i = 0; i < plat.nharts; i++)
		if (plat.harts[i].hartid == hartid)
			return plat.harts[i].sstc;
	return false;
}

static bool bootarg(const struct dt *dt, const char *word)
{
	int chosen = dt_path(dt, "/chosen");
	const char *args = chosen >= 0 ? dt_prop_string(dt, chosen, "bootargs") : 0;
	return args && strstr(args, word);
}

/* For the QEMU tests of the exception report: bootargs "mica.crash". */
static void maybe_crash_on_request(const struct dt *dt)
{
	if (!bootarg(dt, "mica.crash"))
		return;
	kprintf("mica.crash: dereferencing an unmapped address on purpose\n");
	*(volatile uint64_t *)(DEVWIN_BASE + DEVWIN_SIZE - 2 * PAGE_SIZE) = 0xdead;
}

/* For the QEMU tests of ASID rollover while several harts run tasks:
 * bootargs "mica.asid_bits=N" makes the pmap use only N ASID bits (at least
 * MIN_TEST_ASID_BITS, so that a new generation always has a free ASID). */
#define MIN_TEST_ASID_BITS 5
static void maybe_limit_asids(const struct dt *dt)
{
	int chosen = dt_path(dt, "/chosen");
	const char *args = chosen >= 0 ? dt_prop_string(dt, chosen, "bootargs") : 0;
	const char *arg = args ? strstr(args, "mica.asid_bits=") : 0;
	if (!arg || !pmap_asid_bits())
		return;
	unsigned bits = 0;
	for (const char *c = arg + strlen("mica.asid_bits="); *c >= '0' && *c <= '9'; c++)
		bits = bits * 10 + (unsigned)(*c - '0');
	if (bits < MIN_TEST_ASID_BITS)
		bits = MIN_TEST_ASID_BITS;
	if (bits > pmap_asid_bits())
		bits = pmap_asid_bits();
	pmap_limit_asid_bits(bits);
	kprintf("mmu:       mica.asid_bits: using %u of %u ASID bits\n", bits, pmap_asid_bits());
}

_Noreturn void kmain(uint64_t hartid, uint64_t dtb_pa)
{
	hart_block_init(&hart_blocks[0], hartid, 0);
	this_hart()->kstack_bottom = (uint64_t)boot_stack_bottom;
	this_hart()->kstack_top = (uint64_t)boot_stack_top;
	boot_root[vpn2(boot_load_pa)] = 0; /* the identity slot served its purpose */
	sfence_vma_all();
	/* Floating point stays off in the kernel: any FP instruction traps. */
	csr_clear(sstatus, SSTATUS_FS);
	trap_init();
	sbi_init();
	kprintf("\nmica: entered on hart %llu, image at 0x%llx, device tree at 0x%llx\n",
		(unsigned long long)hartid, (unsigned long long)boot_load_pa,
		(unsigned long long)dtb_pa);

	if (dtb_pa == 0 || dtb_pa + GIGAPAGE_SIZE > LINEAR_SIZE)
		panic("no usable device tree address (a1 = 0x%llx)", (unsigned long long)dtb_pa);
	/* head.S mapped the tree's gigabyte and the next one. */
	uint64_t mapped = (dtb_pa & ~(GIGAPAGE_SIZE - 1)) + 2 * GIGAPAGE_SIZE - dtb_pa;
	const void *dtb = pa_to_kva(dtb_pa);
	int err = plat_discover(dtb, mapped, &plat);
	if (err < 0)
		panic("device tree at 0x%llx rejected: %s", (unsigned long long)dtb_pa,
		      dt_strerror(err));
	linear_map_ram(&plat);
	kpool_bytes = kpool_init(&plat, boot_load_pa, (uint64_t)(_end - _start), dtb_pa,
				 dt_be32((const uint8_t *)dtb + 4));
	pmap_bootstrap(&plat, &pmap_info);
	karena_init();
	const char *console = console_attach(&plat.console);

	timer_init(plat.timebase_hz, MICA_HZ, hart_has_sstc(hartid));
	print_banner(hartid, console, this_hart()->sstc ? "stimecmp (Sstc)" : "SBI TIME");
	csr_set(sstatus, SSTATUS_SIE);

	struct dt dt;
	bool have_dt = false;
	uint64_t root_flags = 0;
	if (dt_open(&dt, dtb, mapped) == 0) {
		have_dt = true;
		maybe_crash_on_request(&dt);
		if (bootarg(&dt, "mica.bench"))
			root_flags |= BOOTINFO_F_BENCH;
		if (bootarg(&dt, "mica.demo"))
			root_flags |= BOOTINFO_F_DEMO;
		/* For the QEMU test of firmware without HSM (QEMU's OpenSBI has it). */
		if (bootarg(&dt, "mica.nohsm"))
			sbi.hsm = false;
	}
	/* User code may read cycle, time and instret (benchmarks count instructions). */
	csr_write(scounteren, 7);

	ktest_run(&plat);
	if (have_dt)
		maybe_limit_asids(&dt);

	/* From here on the kernel runs tasks: interrupts come in through traps. */
	csr_clear(sstatus, SSTATUS_SIE);
	root_task_create(&plat, have_dt ? &dt : 0, dtb_pa, dt_be32((const uint8_t *)dtb + 4), hartid,
			 root_flags);
	csr_set(sie, SIE_SSIE); /* IPIs: another hart queued work for this one */
	bkl_lock();
	smp_start_secondaries(&plat);
	sched_start();
}
