/* What the root test driver and its child agree on. */
#ifndef MICA_USER_TESTS_IPC_TEST_H
#define MICA_USER_TESTS_IPC_TEST_H

#define CHILD_EP_SLOT 3

#define CHILD_SCRIPT 1
#define CHILD_SERVER 2
#define CHILD_BLOCKED_CALLER 3
#define CHILD_MARKER 4
#define CHILD_CAP_RECEIVER 6 /* take a capability from the root task and use it */
#define CHILD_ILLEGAL 7      /* execute an illegal instruction with no fault handler */
#define CHILD_SPINNER 8 /* spin forever without a system call */
#define CHILD_ECHO_SERVER 5 /* benchmarks: answer every call with the same message */
/* SMP modes (smp_test.c, bench.c): the low bits are the mode, the bits from
 * CHILD_ARG_SHIFT up an argument, a hart index or a mask of them. */
#define CHILD_SMP_ECHO 9     /* on the hart: answer each call with its data + 1 and our hart */
#define CHILD_SMP_READER 10  /* on the hart: read SMP_SHOOT_VA for ever (see smp_status) */
#define CHILD_SMP_WRITER 11  /* the same, writing */
#define CHILD_ECHO_PINNED 12 /* on the hart: CHILD_ECHO_SERVER */
#define CHILD_TOUCHER 13     /* per round: hop over the harts in the mask, touch a page */
#define CHILD_MODE_MASK 0xffUL
#define CHILD_ARG_SHIFT 8

#define LABEL_REGS 100
#define LABEL_REGS_REPLY 200
#define LABEL_LONG 300
#define LABEL_PING 400
#define LABEL_PING_DONE 401
#define LABEL_AFTER_FAULT 500
#define LABEL_DOOMED 600
#define LABEL_MARKER 700
#define LABEL_GIFT 800
#define LABEL_USED_GIFT 801
#define GIFT_SLOT 5
#define BADGE_GIFT 0x99

#define LABEL_SMP_ECHO 900
#define LABEL_SMP_READY 901 /* MR0 the hart we run on, MR1 affinity's result */
#define LABEL_SMP_STALE 902 /* a read or write went through a translation that was gone */
#define LABEL_TOUCHED 903   /* the page was touched on every hart asked for */
#define LABEL_SMP_ACCESSED 904 /* sent (no reply): reads reached what notify asked for */

#define PINGPONG_ROUNDS 100000
#define FAULT_RESUME_VA 0x5000000UL
#define FAULT_RESUME_VALUE 0xfeedf00dUL

/* The shootdown tests: the root task maps a status page and the page under
 * test into each reader, and removes or narrows the latter while the reader
 * runs on another hart. The root writes the first four words (the reader
 * clears notify when it has sent), the reader the last three. */
#define SMP_STATUS_VA 0x5200000UL
#define SMP_SHOOT_VA 0x5400000UL
#define TOUCH_VA 0x5600000UL /* bench: the page CHILD_TOUCHER touches */
struct smp_status {
	volatile uint64_t epoch;  /* odd: SMP_SHOOT_VA is gone (or read-only) since */
	volatile uint64_t faults; /* faults at SMP_SHOOT_VA the root has answered */
	volatile uint64_t yield;  /* nonzero: share the hart, yield after each access */
	volatile uint64_t notify; /* nonzero: send LABEL_SMP_ACCESSED once reads gets there */
	uint64_t pad0[4];         /* the reader's words on their own cache line */
	volatile uint64_t reads;  /* accesses completed */
	volatile uint64_t bad;    /* accesses that went through without the fault they owed */
	volatile uint64_t hart;   /* where the reader runs */
};

#endif
