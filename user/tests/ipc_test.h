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

#define PINGPONG_ROUNDS 100000
#define FAULT_RESUME_VA 0x5000000UL
#define FAULT_RESUME_VALUE 0xfeedf00dUL

#endif
