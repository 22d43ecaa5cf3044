#include "kern/ktest.h"

#include <stdbool.h>

#include "arch/riscv64/csr.h"
#include "arch/riscv64/extable.h"
#include "arch/riscv64/layout.h"
#include "kern/console.h"
#include "kern/hart.h"
#include "kern/kmem.h"
#include "lib/platform.h"
#include "mica/param.h"
#include "sbi/sbi.h"

static int ktest_passed, ktest_failed;

static void ktest_result(const char *name, const char *failure)
{
	if (failure) {
		ktest_failed++;
		kprintf("KTEST %s: FAIL %s\n", name, failure);
	} else {
		ktest_passed++;
		kprintf("KTEST %s: PASS\n", name);
	}
}

/* A block of .bss that nothing writes: head.S must have cleared it. */
static volatile uint64_t bss_probe[512];

static const char *test_bss_cleared(const struct plat_info *p)
{
	for (unsigned i = 0; i < sizeof(bss_probe) / sizeof(bss_probe[0]); i++)
		if (bss_probe[i] != 0)
			return "a .bss word was not zero at boot";
	return 0;
}

static const char *test_sbi_extensions(const struct plat_info *p)
{
	if (!sbi.base)
		return sbi.legacy_timer ? 0 : "SBI v0.1 without the legacy timer";
	if (sbi.spec_major == 0 && sbi.spec_minor < 2)
		return "Base extension answered but spec version < 0.2";
	if (!sbi.time && !sbi.legacy_timer)
		return "neither TIME nor the legacy timer call";
	if (!sbi.dbcn && !sbi.legacy_putchar && p->console.kind == PLAT_CONSOLE_SBI)
		return "no console at all";
	return 0;
}

static const char *test_timer_ticks(const struct plat_info *p)
{
	struct hart *h = this_hart();
	const uint64_t want = 3;
	/* Give up after a generous two seconds rather than hang the boot. */
	uint64_t limit = rdtime() + 2 * p->timebase_hz;
	/* Line up with a tick first: one may be overdue from the boot work above,
	 * and it would arrive at once. */
	uint64_t first = h->ticks;
	while (h->ticks == first && rdtime() < limit)
		wfi();
	first = h->ticks;
	uint64_t t0 = rdtime();
	while (h->ticks < first + want && rdtime() < limit)
		wfi();
	uint64_t elapsed = rdtime() - t0;
	if (h->ticks < first + want)
		return "timer interrupts did not arrive";
	/* Ticks must not come early: at least (want - 1) whole intervals passed. */
	if (elapsed < (want - 1) * h->tick_interval)
		return "ticks arrived faster than the configured rate";
	return 0;
}

static const char *test_trap_fixup(const struct plat_info *p)
{
	/* The last slot of the device window is never handed out. */
	const volatile uint64_t *hole =
		(const volatile uint64_t *)(DEVWIN_BASE + DEVWIN_SIZE - PAGE_SIZE);
	uint64_t v;
	if (probe_load(hole, &v))
		return "load from an unmapped address did not fault";
	if (this_hart()->fixup_scause != EXC_LOAD_PAGE_FAULT)
		return "fault was not reported as a load page fault";
	if (this_hart()->fixup_stval != (uint64_t)hole)
		return "stval does not name the faulting address";
	return 0;
}

static bool in_reserved(const struct plat_info *p, uint64_t pa)
{
	for (unsigned i = 0; i < p->nreserved; i++)
		if (pa >= p->reserved[i].base && pa - p->reserved[i].base < p->reserved[i].size)
			return true;
	return false;
}

/* Reads the first and last word of every RAM bank through the linear map.
 * Reserved ranges are skipped: firmware protects its own with PMP, and a load
 * there faults with an access fault even though the mapping is right. */
static const char *test_linear_map(const struct plat_info *p)
{
	uint64_t v;
	unsigned probed = 0;
	for (unsigned i = 0; i < p->nram; i++) {
		uint64_t ends[2] = {p->ram[i].base, p->ram[i].base + p->ram[i].size - 8};
		for (unsigned j = 0; j < 2; j++) {
			if (ends[j] >= LINEAR_SIZE || in_reserved(p, ends[j]))
				continue;
			if (!probe_load(pa_to_kva(ends[j]), &v))
				return "a RAM bank is not reachable through the linear map";
			probed++;
		}
	}
	return probed ? 0 : "no RAM word outside reserved ranges to probe";
}

static const char *test_image_placement(const struct plat_info *p)
{
	if (boot_load_pa & (MEGAPAGE_SIZE - 1))
		return "image not loaded on a 2 MiB boundary";
	for (unsigned i = 0; i < p->nram; i++)
		if (boot_load_pa >= p->ram[i].base && boot_load_pa < p->ram[i].base + p->ram[i].size)
			return 0;
	return "load address is not inside any RAM bank";
}

int ktest_run(const struct plat_info *p)
{
	static const struct {
		const char *name;
		const char *(*fn)(const struct plat_info *);
	} tests[] = {
		{"bss_cleared", test_bss_cleared},   {"sbi_extensions", test_sbi_extensions},
		{"timer_ticks", test_timer_ticks},   {"trap_fixup", test_trap_fixup},
		{"linear_map", test_linear_map},     {"image_placement", test_image_placement},
		{"pmap_scratch", ktest_pmap_scratch}, {"pmap_asid_switch", ktest_pmap_asid_switch},
		{"kernel_wx", ktest_kernel_wx},      {"karena_alloc", ktest_karena_alloc},
		{"karena_starve_donate", ktest_karena_starve_donate},
	};
	for (unsigned i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		ktest_result(tests[i].name, tests[i].fn(p));
	kprintf("KTEST summary: %d passed, %d failed\n", ktest_passed, ktest_failed);
	return ktest_failed;
}
