#include "user/mm.h"

#include "user/mica.h"

static long mm_call(unsigned op, uint64_t a, uint64_t b, uint64_t c, uint64_t d,
		    struct mica_msg *m)
{
	m->tag = ipc_tag(op, 4);
	m->mr[0] = a;
	m->mr[1] = b;
	m->mr[2] = c;
	m->mr[3] = d;
	long err = mica_call(MM_SERVER_SLOT, m);
	if (err)
		return err;
	if (ipc_tag_label(m->tag) != MM_REPLY)
		return -MICA_EIO;
	return (long)m->mr[0];
}

long mm_map(void *hint, size_t len, unsigned prot, unsigned flags, size_t align, void **addr)
{
	struct mica_msg m;
	long r = mm_call(MM_OP_MAP, (uintptr_t)hint, len, prot | (uint64_t)flags << 8, align, &m);
	if (r >= 0 && addr)
		*addr = (void *)r;
	return r < 0 ? r : 0;
}

#define MM_SCRATCH_SLOT (CAP_SLOTS - 1) /* the library's: a token copy on its way out */

long mm_share(void *addr, size_t len, uint64_t token_slot, void *hint, unsigned prot,
	      unsigned flags, void **out)
{
	long err = mica_cap_derive(token_slot, MM_SCRATCH_SLOT, CAP_RIGHT_SEND, 0);
	if (err)
		return err;
	struct mica_msg m = {.tag = ipc_tag(MM_OP_SHARE, 4) | IPC_TAG_CAP,
			     .mr = {(uintptr_t)addr, len, prot | (uint64_t)flags << 8,
				    (uintptr_t)hint}};
	MICA_IPCBUF->cap_send = MM_SCRATCH_SLOT;
	err = mica_call(MM_SERVER_SLOT, &m);
	mica_cap_delete(MM_SCRATCH_SLOT); /* in case the capability did not travel */
	if (err)
		return err;
	long r = (long)m.mr[0];
	if (r >= 0 && out)
		*out = (void *)r;
	return r < 0 ? r : 0;
}

long mm_map_device(uint64_t pa, size_t len, unsigned prot, void **addr)
{
	struct mica_msg m;
	long r = mm_call(MM_OP_MAP_DEVICE, pa, len, prot, 0, &m);
	if (r >= 0 && addr)
		*addr = (void *)r;
	return r < 0 ? r : 0;
}

long mm_unmap(void *addr, size_t len)
{
	struct mica_msg m;
	return mm_call(MM_OP_UNMAP, (uintptr_t)addr, len, 0, 0, &m);
}

long mm_protect(void *addr, size_t len, unsigned prot)
{
	struct mica_msg m;
	return mm_call(MM_OP_PROTECT, (uintptr_t)addr, len, prot, 0, &m);
}

long mm_wire(void *addr, size_t len, uint64_t *pa, unsigned n)
{
	struct mica_msg m;
	long r = mm_call(MM_OP_WIRE, (uintptr_t)addr, len, pa ? n : 0, 0, &m);
	if (r >= 0 && pa)
		for (unsigned i = 0; i < n && i < (unsigned)r; i++)
			pa[i] = MICA_IPCBUF->mr[IPC_REG_WORDS + i];
	return r;
}

long mm_unwire(void *addr, size_t len)
{
	struct mica_msg m;
	return mm_call(MM_OP_UNWIRE, (uintptr_t)addr, len, 0, 0, &m);
}

long mm_query(void *addr, struct mm_query_result *q)
{
	struct mica_msg m;
	long r = mm_call(MM_OP_QUERY, (uintptr_t)addr, 0, 0, 0, &m);
	if (r < 0)
		return r;
	q->start = m.mr[1];
	q->end = m.mr[2];
	q->prot = MM_QUERY_PROT(m.mr[3]);
	q->max_prot = MM_QUERY_MAXPROT(m.mr[3]);
	q->flags = MM_QUERY_FLAGS(m.mr[3]);
	q->wired = MM_QUERY_WIRED(m.mr[3]);
	q->resident = MICA_IPCBUF->mr[4];
	return 0;
}

long mm_info(struct mm_info_result *info)
{
	struct mica_msg m;
	long r = mm_call(MM_OP_INFO, 0, 0, 0, 0, &m);
	if (r < 0)
		return r;
	info->free_frames = m.mr[1];
	info->total_frames = m.mr[2];
	info->resident = m.mr[3];
	info->wired = MICA_IPCBUF->mr[4];
	info->entries = MICA_IPCBUF->mr[5];
	info->kernel_arena = MICA_IPCBUF->mr[6];
	info->server_held = MICA_IPCBUF->mr[7];
	info->quota_entries = MICA_IPCBUF->mr[8];
	info->quota_resident = MICA_IPCBUF->mr[9];
	info->quota_wired = MICA_IPCBUF->mr[10];
	return 0;
}
