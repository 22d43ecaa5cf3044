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

/* The SHARE flavour, over one frame seen by two tasks. Reader 0 is the first
 * thread of MMTEST_SHOOT_SHARE, reader 1 that of MMTEST_SHOOT_PEER (which
 * holds the share). Each round the replacer (the share task's second thread)
 * maps a fresh populated page over MMTEST_SHOOT_VA, writes the round into
 * it, shares it over the peer's MMTEST_SHOOT_VA, and publishes the round:
 * both readers must read it, not the last round's number from the old frame.
 * Returns the failures (printed). */
int mm_shoot_share_reader(unsigned idx, unsigned hart);
void mm_shoot_share_replacer(unsigned hart);

/* Wait (yielding, bounded) until something is mapped at `va`: 1 if it is. */
int mmtest_wait_mapped(volatile char *va);

#endif
