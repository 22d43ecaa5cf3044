/* In-kernel self tests, run at boot in every build. Each prints one line,
 * "KTEST <name>: PASS" or "KTEST <name>: FAIL <reason>", which the QEMU test
 * runner (tests/qemu/) turns into test results. */
#ifndef MICA_KERN_KTEST_H
#define MICA_KERN_KTEST_H

struct plat_info;

/* The memory checks of kern/ktest_mm.c. */
const char *ktest_pmap_scratch(const struct plat_info *p);
const char *ktest_pmap_asid_switch(const struct plat_info *p);
const char *ktest_kernel_wx(const struct plat_info *p);
const char *ktest_karena_alloc(const struct plat_info *p);
const char *ktest_karena_starve_donate(const struct plat_info *p);

/* Returns the number of failures. */
int ktest_run(const struct plat_info *p);

#endif
