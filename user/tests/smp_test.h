/* The root task's SMP tests (user/tests/smp_test.c). */
#ifndef MICA_USER_TESTS_SMP_TEST_H
#define MICA_USER_TESTS_SMP_TEST_H

#include "mica/bootinfo.h"

/* How a test's verdict reaches the root task's UTEST count. */
typedef void (*smp_report_fn)(const char *name, int ok, const char *detail);

/* IPC between harts and TLB shootdown, with `harts` > 1 harts running tasks.
 * => the calling thread runs on hart 0 only; children it starts inherit that */
void smp_tests(const struct bootinfo *bi, unsigned harts, smp_report_fn report);

#endif
