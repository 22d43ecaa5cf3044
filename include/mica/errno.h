/* Error numbers shared by kernel, memory server and user code.
 * The values are the standard Linux/newlib numbers so that picolibc's strerror()
 * describes them; every Mica call returns the negated value on failure. */
#ifndef MICA_ERRNO_H
#define MICA_ERRNO_H

#define MICA_EPERM 1
#define MICA_ENOENT 2
#define MICA_ESRCH 3
#define MICA_EINTR 4
#define MICA_EIO 5
#define MICA_E2BIG 7
#define MICA_EBADF 9
#define MICA_EAGAIN 11
#define MICA_ENOMEM 12
#define MICA_EACCES 13
#define MICA_EFAULT 14
#define MICA_EBUSY 16
#define MICA_EEXIST 17
#define MICA_ENODEV 19
#define MICA_EINVAL 22
#define MICA_ENOSPC 28
#define MICA_EPIPE 32
#define MICA_ERANGE 34
#define MICA_ENOSYS 38
#define MICA_EOVERFLOW 75
#define MICA_ENOTSUP 95

#endif
