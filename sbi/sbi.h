/* The Supervisor Binary Interface: calls into the firmware (OpenSBI on both
 * QEMU and the VisionFive 2). Every optional extension is probed once in
 * sbi_init(); callers test the `sbi` flags rather than calling blindly, because
 * older VisionFive 2 firmware (SBI 0.3) has neither HSM nor SRST. */
#ifndef MICA_SBI_H
#define MICA_SBI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SBI_EXT_LEGACY_SET_TIMER 0x00
#define SBI_EXT_LEGACY_PUTCHAR 0x01
#define SBI_EXT_LEGACY_SHUTDOWN 0x08
#define SBI_EXT_BASE 0x10
#define SBI_EXT_TIME 0x54494d45
#define SBI_EXT_IPI 0x735049
#define SBI_EXT_RFENCE 0x52464e43
#define SBI_EXT_HSM 0x48534d
#define SBI_EXT_SRST 0x53525354
#define SBI_EXT_DBCN 0x4442434e

#define SBI_SUCCESS 0
#define SBI_ERR_FAILED -1
#define SBI_ERR_NOT_SUPPORTED -2
#define SBI_ERR_INVALID_PARAM -3
#define SBI_ERR_DENIED -4
#define SBI_ERR_INVALID_ADDRESS -5
#define SBI_ERR_ALREADY_AVAILABLE -6

#define SBI_SRST_SHUTDOWN 0
#define SBI_SRST_COLD_REBOOT 1
#define SBI_SRST_REASON_NONE 0
#define SBI_SRST_REASON_FAILURE 1

#define SBI_HSM_STARTED 0
#define SBI_HSM_STOPPED 1

struct sbiret {
	long error;
	long value;
};

struct sbi_info {
	unsigned spec_major, spec_minor;
	long impl_id;
	long impl_version;
	bool base; /* false: SBI v0.1, legacy calls only */
	bool time, ipi, rfence, hsm, srst, dbcn;
	bool legacy_putchar, legacy_shutdown, legacy_timer;
};

extern struct sbi_info sbi;

struct sbiret sbi_ecall(unsigned long ext, unsigned long fid, unsigned long a0, unsigned long a1,
			unsigned long a2, unsigned long a3, unsigned long a4);

void sbi_init(void);
const char *sbi_impl_name(long impl_id);

/* Console: DBCN when present (physical buffer address), legacy putchar otherwise. */
void sbi_console_write(const char *buf, size_t len);

/* Program the next timer interrupt (absolute time); TIME or legacy call. */
void sbi_set_timer(uint64_t when);

/* Interprocessor interrupts and remote fences take a hart mask relative to mask_base. */
long sbi_send_ipi(unsigned long hart_mask, unsigned long hart_mask_base);
long sbi_remote_sfence_vma(unsigned long hart_mask, unsigned long hart_mask_base,
			   unsigned long start, unsigned long size);
long sbi_remote_sfence_vma_asid(unsigned long hart_mask, unsigned long hart_mask_base,
				unsigned long start, unsigned long size, unsigned long asid);

long sbi_hart_start(unsigned long hartid, unsigned long start_pa, unsigned long opaque);
long sbi_hart_status(unsigned long hartid);

/* Returns only if the firmware refused (its SBI error) or lacks both SRST and
 * the legacy shutdown (SBI_ERR_NOT_SUPPORTED). */
long sbi_system_reset(unsigned long type, unsigned long reason);

#endif
