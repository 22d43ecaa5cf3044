/* What the kernel hands the root task: one read-only page at BOOTINFO_VA. */
#ifndef MICA_BOOTINFO_H
#define MICA_BOOTINFO_H

#include <stdint.h>

#define BOOTINFO_VA 0x7fff0000UL
/* Where the kernel puts the root task's stack and IPC buffer; the root task
 * uses the same places for the tasks it starts. */
#define USER_IPCBUF_VA 0x7ffe0000UL
#define USER_STACK_TOP 0x7ff00000UL
#define USER_STACK_PAGES 16
/* A task's further threads (the memory server's server_client_add_thread):
 * thread k (1 <= k < USER_THREADS_MAX) starts at the ELF entry with
 * a0 = USER_THREAD_FLAG | k << USER_THREAD_INDEX_SHIFT | its argument, its
 * stack of USER_STACK_PAGES below USER_THREAD_STACK_TOP(k) over a guard page,
 * and its IPC buffer at USER_THREAD_IPCBUF_VA(k). Thread 0 is the first. */
#define USER_THREADS_MAX 8
#define USER_THREAD_FLAG (1UL << 63)
#define USER_THREAD_INDEX_SHIFT 56
#define USER_THREAD_ARG_MASK ((1UL << USER_THREAD_INDEX_SHIFT) - 1)
#define USER_THREAD_STACK_TOP(k) \
	(USER_STACK_TOP - (uint64_t)(k) * (USER_STACK_PAGES + 1) * 0x1000UL)
#define USER_THREAD_IPCBUF_VA(k) (USER_IPCBUF_VA + (uint64_t)(k) * 0x1000UL)
#define BOOTINFO_MAGIC 0x4d494341424f4f54UL /* "MICABOOT" */
#define BOOTINFO_MAX_RANGES 16
#define BOOTINFO_MAX_MODULES 8
#define BOOTINFO_MAX_DEVICES 24

/* The RAM the root task owns is also mapped read-write into its space at
 * RAM_WINDOW_VA + (pa - window_pa_base), with the largest pages that fit. */
#define RAM_WINDOW_VA 0x2000000000UL

struct bootinfo_range {
	uint64_t base, size;
};

struct bootinfo_module {
	char name[32];
	uint64_t pa, size; /* an ELF image, copied into RAM the root task owns */
};

/* An MMIO device the device tree lists (its first register window, page
 * aligned outward). Only these ranges can be mapped with MICA_MAP_DEVICE. */
struct bootinfo_device {
	char compatible[32];
	uint64_t base, size;
};

struct bootinfo {
	uint64_t magic;
	uint64_t nranges;
	struct bootinfo_range free[BOOTINFO_MAX_RANGES]; /* RAM the root task owns, unused */
	uint64_t window_pa_base;
	uint64_t nmodules;
	struct bootinfo_module modules[BOOTINFO_MAX_MODULES];
	uint64_t dtb_pa, dtb_size;
	uint64_t nharts;
	uint64_t timebase_hz;
	uint64_t boot_hartid;
	uint64_t flags; /* BOOTINFO_F_* */
	uint64_t ndevices;
	struct bootinfo_device devices[BOOTINFO_MAX_DEVICES];
};

/* The kernel command line (/chosen/bootargs) said "mica.bench": the root task
 * runs benchmarks instead of tests. */
#define BOOTINFO_F_BENCH 0x1
/* "mica.demo": the root task starts the demo tasks instead of the tests. */
#define BOOTINFO_F_DEMO 0x2

#endif
