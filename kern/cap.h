/* Capability tables: one per task, CAP_SLOTS slots, slot 0 always null.
 * User code names kernel objects only by slot; every use checks type and rights. */
#ifndef MICA_KERN_CAP_H
#define MICA_KERN_CAP_H

#include "kern/object.h"

/* The capability at `slot` if it has `type` and all of `rights`; NULL with the
 * reason in *err otherwise (-MICA_EBADF bad or empty slot, -MICA_EINVAL wrong
 * type, -MICA_EPERM missing rights). => kernel entered */
struct cap *cap_lookup(struct task *t, uint64_t slot, unsigned type, unsigned rights, int *err);
/* An empty, valid, non-null destination slot, or NULL with *err set. */
struct cap *cap_free_slot(struct task *t, uint64_t slot, int *err);
/* Install a copy of `src` with rights narrowed to `rights` into `dst`; takes a
 * reference on the object. => kernel entered */
void cap_install(struct cap *dst, const struct cap *src, unsigned rights, uint64_t badge);
/* Empty a slot and drop its reference (may destroy the object). */
void cap_clear(struct cap *c);

#endif
