#include "kern/cap.h"

#include "ipc/endpoint.h"
#include "kern/task.h"
#include "mica/errno.h"

/* => kernel entered */
struct cap *cap_lookup(struct task *t, uint64_t slot, unsigned type, unsigned rights, int *err)
{
	if (slot == CAP_SLOT_NULL || slot >= CAP_SLOTS) {
		*err = -MICA_EBADF;
		return 0;
	}
	struct cap *c = &t->caps[slot];
	if (c->type == CAP_TYPE_NULL) {
		*err = -MICA_EBADF;
		return 0;
	}
	if (c->type != type) {
		*err = -MICA_EINVAL;
		return 0;
	}
	if ((c->rights & rights) != rights) {
		*err = -MICA_EPERM;
		return 0;
	}
	return c;
}

/* => kernel entered */
struct cap *cap_free_slot(struct task *t, uint64_t slot, int *err)
{
	if (slot == CAP_SLOT_NULL || slot >= CAP_SLOTS) {
		*err = -MICA_EBADF;
		return 0;
	}
	if (t->caps[slot].type != CAP_TYPE_NULL) {
		*err = -MICA_EEXIST;
		return 0;
	}
	return &t->caps[slot];
}

static void cap_ref(const struct cap *c)
{
	if (c->type == CAP_TYPE_ENDPOINT)
		endpoint_ref(c->obj, c->rights);
	else if (c->type == CAP_TYPE_TASK)
		((struct task *)c->obj)->refs++;
}

/* => kernel entered */
void cap_install(struct cap *dst, const struct cap *src, unsigned rights, uint64_t badge)
{
	*dst = *src;
	dst->rights = src->rights & rights;
	dst->badge = badge;
	cap_ref(dst);
}

/* => kernel entered */
void cap_clear(struct cap *c)
{
	struct cap old = *c;
	c->type = CAP_TYPE_NULL;
	c->rights = 0;
	c->badge = 0;
	c->obj = 0;
	if (old.type == CAP_TYPE_ENDPOINT)
		endpoint_put(old.obj, old.rights);
	else if (old.type == CAP_TYPE_TASK)
		task_unref(old.obj);
}
