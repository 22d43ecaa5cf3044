#ifndef MICA_KERN_PANIC_H
#define MICA_KERN_PANIC_H

__attribute__((format(printf, 1, 2))) _Noreturn void panic(const char *fmt, ...);
/* Stop the machine: SRST shutdown when the firmware has it, else a final line and wfi. */
_Noreturn void panic_halt(void);
_Noreturn void kernel_shutdown(void);

#endif
