/* SBI calls and the extension probe. Function ids and extension ids are the
 * values of the RISC-V SBI specification (v2.0). */
#include "sbi/sbi.h"

#include "kern/kmem.h"

struct sbi_info sbi;

struct sbiret sbi_ecall(unsigned long ext, unsigned long fid, unsigned long a0, unsigned long a1,
			unsigned long a2, unsigned long a3, unsigned long a4)
{
	register unsigned long r_a0 __asm__("a0") = a0;
	register unsigned long r_a1 __asm__("a1") = a1;
	register unsigned long r_a2 __asm__("a2") = a2;
	register unsigned long r_a3 __asm__("a3") = a3;
	register unsigned long r_a4 __asm__("a4") = a4;
	register unsigned long r_a6 __asm__("a6") = fid;
	register unsigned long r_a7 __asm__("a7") = ext;
	__asm__ volatile("ecall"
			 : "+r"(r_a0), "+r"(r_a1)
			 : "r"(r_a2), "r"(r_a3), "r"(r_a4), "r"(r_a6), "r"(r_a7)
			 : "memory");
	return (struct sbiret){.error = (long)r_a0, .value = (long)r_a1};
}

/* Legacy (v0.1) calls return their result in a0 only. */
static long sbi_legacy(unsigned long ext, unsigned long a0)
{
	return sbi_ecall(ext, 0, a0, 0, 0, 0, 0).error;
}

static bool sbi_probe(unsigned long ext)
{
	struct sbiret r = sbi_ecall(SBI_EXT_BASE, 3, ext, 0, 0, 0, 0);
	return r.error == SBI_SUCCESS && r.value != 0;
}

/* => called once on the boot hart, before any other SBI use */
void sbi_init(void)
{
	struct sbiret r = sbi_ecall(SBI_EXT_BASE, 0, 0, 0, 0, 0, 0);
	/* v0.1 firmware has no Base extension and answers with an error (or garbage
	 * in a0 that is not SBI_SUCCESS): assume the legacy calls. */
	if (r.error != SBI_SUCCESS) {
		sbi.base = false;
		sbi.legacy_putchar = sbi.legacy_shutdown = sbi.legacy_timer = true;
		return;
	}
	sbi.base = true;
	sbi.spec_major = ((unsigned long)r.value >> 24) & 0x7f;
	sbi.spec_minor = (unsigned long)r.value & 0xffffff;
	sbi.impl_id = sbi_ecall(SBI_EXT_BASE, 1, 0, 0, 0, 0, 0).value;
	sbi.impl_version = sbi_ecall(SBI_EXT_BASE, 2, 0, 0, 0, 0, 0).value;
	sbi.time = sbi_probe(SBI_EXT_TIME);
	sbi.ipi = sbi_probe(SBI_EXT_IPI);
	sbi.rfence = sbi_probe(SBI_EXT_RFENCE);
	sbi.hsm = sbi_probe(SBI_EXT_HSM);
	sbi.srst = sbi_probe(SBI_EXT_SRST);
	sbi.dbcn = sbi_probe(SBI_EXT_DBCN);
	sbi.legacy_putchar = sbi_probe(SBI_EXT_LEGACY_PUTCHAR);
	sbi.legacy_shutdown = sbi_probe(SBI_EXT_LEGACY_SHUTDOWN);
	sbi.legacy_timer = sbi_probe(SBI_EXT_LEGACY_SET_TIMER);
}

const char *sbi_impl_name(long impl_id)
{
	static const char *const names[] = {"BBL",    "OpenSBI", "Xvisor", "KVM",          "RustSBI",
					    "Diosix", "Coffer",  "Xen",    "PolarFire HSS"};
	if (impl_id >= 0 && (unsigned long)impl_id < sizeof(names) / sizeof(names[0]))
		return names[impl_id];
	return "unknown";
}

/* => console lock held (or single-threaded early boot) */
void sbi_console_write(const char *buf, size_t len)
{
	if (sbi.dbcn) {
		/* DBCN wants a physical address and may write fewer bytes than asked. */
		while (len > 0) {
			struct sbiret r = sbi_ecall(SBI_EXT_DBCN, 0, len, kva_to_pa(buf), 0, 0, 0);
			if (r.error != SBI_SUCCESS || r.value <= 0)
				break;
			buf += r.value;
			len -= (size_t)r.value;
		}
		if (len == 0)
			return;
	}
	if (!sbi.legacy_putchar)
		return;
	for (size_t i = 0; i < len; i++)
		sbi_legacy(SBI_EXT_LEGACY_PUTCHAR, (unsigned char)buf[i]);
}

void sbi_set_timer(uint64_t when)
{
	if (sbi.time)
		sbi_ecall(SBI_EXT_TIME, 0, when, 0, 0, 0, 0);
	else
		sbi_legacy(SBI_EXT_LEGACY_SET_TIMER, when);
}

long sbi_send_ipi(unsigned long hart_mask, unsigned long hart_mask_base)
{
	if (!sbi.ipi)
		return SBI_ERR_NOT_SUPPORTED;
	return sbi_ecall(SBI_EXT_IPI, 0, hart_mask, hart_mask_base, 0, 0, 0).error;
}

long sbi_remote_sfence_vma(unsigned long hart_mask, unsigned long hart_mask_base,
			   unsigned long start, unsigned long size)
{
	if (!sbi.rfence)
		return SBI_ERR_NOT_SUPPORTED;
	return sbi_ecall(SBI_EXT_RFENCE, 1, hart_mask, hart_mask_base, start, size, 0).error;
}

long sbi_remote_sfence_vma_asid(unsigned long hart_mask, unsigned long hart_mask_base,
				unsigned long start, unsigned long size, unsigned long asid)
{
	if (!sbi.rfence)
		return SBI_ERR_NOT_SUPPORTED;
	return sbi_ecall(SBI_EXT_RFENCE, 2, hart_mask, hart_mask_base, start, size, asid).error;
}

long sbi_hart_start(unsigned long hartid, unsigned long start_pa, unsigned long opaque)
{
	if (!sbi.hsm)
		return SBI_ERR_NOT_SUPPORTED;
	return sbi_ecall(SBI_EXT_HSM, 0, hartid, start_pa, opaque, 0, 0).error;
}

long sbi_hart_status(unsigned long hartid)
{
	if (!sbi.hsm)
		return SBI_ERR_NOT_SUPPORTED;
	struct sbiret r = sbi_ecall(SBI_EXT_HSM, 2, hartid, 0, 0, 0, 0);
	return r.error != SBI_SUCCESS ? r.error : r.value;
}

long sbi_system_reset(unsigned long type, unsigned long reason)
{
	if (sbi.srst)
		return sbi_ecall(SBI_EXT_SRST, 0, type, reason, 0, 0, 0).error;
	if (sbi.legacy_shutdown && type == SBI_SRST_SHUTDOWN) {
		sbi_legacy(SBI_EXT_LEGACY_SHUTDOWN, 0);
		return SBI_ERR_FAILED;
	}
	return SBI_ERR_NOT_SUPPORTED;
}
