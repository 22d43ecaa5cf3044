/* KASSERT: debug-build assertions shared by kernel, server, mm/ and host tests.
 * Each environment supplies kassert_fail(): the kernel panics with a report, host
 * tests abort so that the sanitizers and cmocka see the failure. */
#ifndef MICA_KASSERT_H
#define MICA_KASSERT_H

_Noreturn void kassert_fail(const char *expr, const char *file, int line);

#if defined(MICA_DEBUG) || defined(MICA_TEST)
#define KASSERT(e) ((e) ? (void)0 : kassert_fail(#e, __FILE__, __LINE__))
#else
#define KASSERT(e) ((void)0)
#endif

#endif
