/* In-kernel self tests, run at boot in every build. Each prints one line,
 * "KTEST <name>: PASS" or "KTEST <name>: FAIL <reason>", which the QEMU test
 * runner (tests/qemu/) turns into test results. */
#ifndef MICA_KERN_KTEST_H
#define MICA_KERN_KTEST_H

struct plat_info;

/* Returns the number of failures. */
int ktest_run(const struct plat_info *p);

#endif
