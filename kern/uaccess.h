/* Reading and writing user memory from the kernel, with every address checked. */
#ifndef MICA_KERN_UACCESS_H
#define MICA_KERN_UACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mica/errno.h"
#include "mica/param.h"

long uaccess_copy(void *dst, const void *src, unsigned long len);

/* Is [va, va + len) inside user space without wrapping? */
static inline bool user_range_ok(uint64_t va, uint64_t len)
{
	return va >= USER_VA_MIN && va < USER_VA_MAX && len <= USER_VA_MAX - va;
}

/* => the current task's address space is active */
static inline long copy_from_user(void *dst, uint64_t src, size_t len)
{
	if (!user_range_ok(src, len))
		return -MICA_EFAULT;
	return uaccess_copy(dst, (const void *)src, len);
}

/* => the current task's address space is active */
static inline long copy_to_user(uint64_t dst, const void *src, size_t len)
{
	if (!user_range_ok(dst, len))
		return -MICA_EFAULT;
	return uaccess_copy((void *)dst, src, len);
}

#endif
