#ifndef MICA_USER_TESTS_BENCH_H
#define MICA_USER_TESTS_BENCH_H

/* Run the IPC benchmarks (root task, BOOTINFO_F_BENCH). Prints one
 * "BENCH name value unit" line per figure. */
void bench_ipc(void);
/* With more than one hart: IPC within and between harts, and mm_remove after
 * a thread ran on one hart or several. Ends with "BENCH smp done". */
void bench_smp(void);

#endif
