/* The two-thread shootdown client (user/tests/mm_shoot.c). */
#ifndef MICA_USER_TESTS_MM_SHOOT_H
#define MICA_USER_TESTS_MM_SHOOT_H

#include <stdint.h>

/* The first thread: pin to `hart`, then access MMTEST_SHOOT_VA once per
 * round and check that the access faulted. Returns the failures (printed). */
int mm_shoot_reader(unsigned hart);
/* The second thread (mica_thread_main): pin to `hart`, then each round ask
 * the server to replace the page and publish the round. */
void mm_shoot_replacer(unsigned hart);

#endif
