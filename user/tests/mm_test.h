#ifndef MICA_USER_TESTS_MM_TEST_H
#define MICA_USER_TESTS_MM_TEST_H

#define MMTEST_MAIN 1
#define MMTEST_RANDOM 2 /* the argument: how many operations (0: MMTEST_RANDOM_OPS) */
#define MMTEST_WRITE_RO 3
#define MMTEST_EXEC_NX 4
#define MMTEST_GUARD 5

#define MMTEST_SHARE_A 6 /* shares a buffer into B, sees B's write, exits */
#define MMTEST_SHARE_B 7 /* waits for the buffer, writes, outlives A */
#define MMTEST_OOM 8     /* allocates until -ENOMEM, frees, again */
#define MMTEST_BENCH 9   /* the memory server's benchmarks (mica.bench) */
#define MMTEST_DEVICE 10 /* maps the device whose page-aligned address is in the upper bits */
#define MMTEST_DEMO_WRITER 11 /* make run: allocate, share, protect, wire */
#define MMTEST_DEMO_READER 12 /* make run: read the shared buffer, then fault on purpose */
#define MMTEST_STRESS 13 /* pinned to hart (arg & 0xff): random operations, INFO and QUERY */
#define MMTEST_SHOOT 14 /* two threads, harts (arg & 0xff) and (arg >> 8 & 0xff): mm_shoot.c */
#define MMTEST_SHOOT_SHARE 15 /* the same over a page shared into MMTEST_SHOOT_PEER */
#define MMTEST_SHOOT_PEER 16  /* on hart (arg & 0xff): reads the page MMTEST_SHOOT_SHARE shares */
#define MMTEST_MODE_MASK 0xfffUL
#define MMTEST_ARG_SHIFT 12 /* a mode's argument: the bits above the mode */

#define MMTEST_RANDOM_OPS 100000
#define MMTEST_STRESS_OPS 2500
#define MMTEST_SHOOT_ROUNDS 2000
#define MMTEST_SHOOT_VA 0x3400000000UL
#define MMTEST_SHOOT_STATUS_VA 0x3410000000UL /* SHOOT_SHARE's status page, in both tasks */
#define MMTEST_TOKEN_SLOT 5 /* A holds B's share token here */
#define MMTEST_SHARE_VA 0x3200000000UL

#endif
