/* Platform discovery: everything the kernel knows about the machine, read from
 * the device tree and nothing else. Pure and host-testable: the kernel calls it
 * once at boot; host tests call it on QEMU and VisionFive 2 trees. */
#ifndef MICA_LIB_PLATFORM_H
#define MICA_LIB_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLAT_MAX_RAM 8
#define PLAT_MAX_RESERVED 16
#define PLAT_MAX_HARTS 16

struct plat_range {
	uint64_t base;
	uint64_t size;
};

enum plat_console_kind {
	PLAT_CONSOLE_SBI = 0, /* unknown or absent UART: use the SBI console */
	PLAT_CONSOLE_NS16550A,
	PLAT_CONSOLE_DW_APB_UART, /* snps,dw-apb-uart: ns16550-like with a stride */
};

struct plat_console {
	enum plat_console_kind kind;
	uint64_t base;         /* MMIO physical address (0 for SBI) */
	uint64_t size;         /* size of the register window */
	uint32_t reg_shift;    /* register stride = 1 << reg_shift */
	uint32_t reg_io_width; /* 1 or 4 bytes per access */
	uint32_t clock_hz;     /* 0 when the tree does not say */
	uint32_t baud;         /* from stdout-path options, else 0 */
	char path[64];         /* node path or alias as given in stdout-path */
	char compatible[32];   /* the first compatible string of the node */
};

struct plat_hart {
	uint32_t hartid;
	bool usable; /* status okay and mmu-type includes Sv39 */
	bool sstc;   /* ISA string or riscv,isa-extensions lists sstc */
	char mmu[16];
};

struct plat_info {
	char model[64];
	struct plat_range ram[PLAT_MAX_RAM];
	unsigned nram;
	uint64_t ram_total;
	/* memreserve entries and /reserved-memory children with a reg, in tree order */
	struct plat_range reserved[PLAT_MAX_RESERVED];
	unsigned nreserved;
	struct plat_console console;
	uint64_t timebase_hz;
	struct plat_hart harts[PLAT_MAX_HARTS];
	unsigned nharts;
	unsigned nusable;
	bool truncated;
};

/* 0 on success, a negative dt_error on a malformed tree or a missing essential
 * (no /cpus, no memory, no timebase-frequency). A list longer than its fixed
 * array is cut at the array size and `truncated` is set, so the caller can say so. */
int plat_discover(const void *dtb, size_t maxsize, struct plat_info *out);

/* Is `hartid` listed and usable? */
bool plat_hart_usable(const struct plat_info *p, uint32_t hartid);

#endif
