/*
 * The memory server's runtime in the root task: it owns the RAM the boot info
 * lists (mm/frame.c over it), lends the kernel pages when a privileged call
 * answers -ENOMEM, loads client tasks from boot modules into maps it keeps,
 * and answers their MM requests and page faults until the last one is gone.
 */
#include "server/server.h"

#include <stdio.h>
#include <string.h>

#include "lib/elf.h"
#include "mica/param.h"
#include "mm/frame.h"
#include "server/mm_pagetab.h"
#include "user/mica.h"

#define SERVER_EP 50
#define SERVER_TMP 51
#define SERVER_RECV 62 /* where a share token sent to the server lands */
#define CLIENT_TASK_BASE 52
#define MAX_CLIENTS 10
#define DONATE_ORDER 4 /* 16 pages per loan to the kernel */

static const struct bootinfo *srv_bi;
static struct frame_allocator srv_fa;
uint64_t server_donated_pages;
unsigned server_kills;

#define MAX_GRANTS 4

struct client_slot {
	bool used;
	const char *const *grants; /* compatible strings of the devices it may map */
	bool ending; /* killed by us; the slot is freed when the kernel's exit note comes */
	struct mm_client c;
	char name[24];
	uint64_t entry;    /* where its threads start (the ELF entry) */
	unsigned nthreads; /* threads started so far; an index is never reused */
};
static struct client_slot clients[MAX_CLIENTS];
static unsigned nclients;
static uint64_t next_badge = 0x100;

void *server_window(uint64_t pa)
{
	return (void *)(RAM_WINDOW_VA + (pa - srv_bi->window_pa_base));
}

/* => once, before anything else */
void server_frames_init(const struct bootinfo *bi)
{
	srv_bi = bi;
	struct frame_range ram[BOOTINFO_MAX_RANGES];
	unsigned n = 0, big = 0;
	for (unsigned i = 0; i < bi->nranges; i++) {
		ram[n].base = bi->free[i].base;
		ram[n].size = bi->free[i].size;
		if (ram[n].size > ram[big].size)
			big = n;
		n++;
	}
	size_t bytes = frame_array_bytes(ram, n);
	/* The page array lives at the start of the largest range, reserved. */
	struct frame_range resv = {ram[big].base, (bytes + PAGE_MASK) & ~PAGE_MASK};
	int err = frame_init(&srv_fa, ram, n, &resv, 1, server_window(resv.base), bytes);
	if (err) {
		printf("server: cannot manage RAM (%d)\n", err);
		mica_task_exit(1);
	}
}

uint64_t server_frames_alloc(unsigned order)
{
	struct frame *f = frame_alloc(&srv_fa, order);
	if (!f)
		return 0;
	uint64_t pa = frame_to_pa(&srv_fa, f);
	memset(server_window(pa), 0, PAGE_SIZE << order);
	return pa;
}

static void server_frames_free(uint64_t pa, unsigned order)
{
	frame_free(&srv_fa, frame_from_pa(&srv_fa, pa), order);
}

void server_frames_stats(size_t *free_pages, size_t *total_pages)
{
	struct frame_stats st;
	frame_get_stats(&srv_fa, &st);
	*free_pages = st.free_pages;
	*total_pages = st.total_pages;
}

/* The kernel ran out of pages for page tables or objects: lend it some. */
static int server_donate(void)
{
	uint64_t pa = server_frames_alloc(DONATE_ORDER);
	if (!pa)
		return -MICA_ENOMEM;
	long err = mica_mm_donate(CAP_SLOT_MEMCTL, pa, PAGE_SIZE << DONATE_ORDER);
	if (err) {
		server_frames_free(pa, DONATE_ORDER);
		return (int)err;
	}
	server_donated_pages += 1u << DONATE_ORDER;
	return 0;
}

/* A privileged call that needs kernel memory (a task, a thread, page tables)
 * answers -ENOMEM when the kernel pool is dry: lend it pages and try again. */
#define WITH_LOANS(call)                                                                           \
	({                                                                                         \
		long r_;                                                                           \
		while ((r_ = (call)) == -MICA_ENOMEM && server_donate() == 0)                      \
			;                                                                          \
		r_;                                                                                \
	})

static uint64_t mica_prot(unsigned mm_prot)
{
	return (uint64_t)mm_prot << 1; /* R, W, X sit one bit higher in the PTE */
}

static int env_enter(void *ctx, uint64_t task, uint64_t va, uint64_t pa, uint64_t len,
		     unsigned prot)
{
	(void)ctx;
	struct mica_mapping m = {va, pa, len, mica_prot(prot)};
	return (int)WITH_LOANS(mica_mm_enter(task, &m, 1));
}

static int env_remove(void *ctx, uint64_t task, uint64_t va, uint64_t len)
{
	(void)ctx;
	return (int)WITH_LOANS(mica_mm_remove(task, va, len));
}

static int env_protect(void *ctx, uint64_t task, uint64_t va, uint64_t len, unsigned prot)
{
	(void)ctx;
	return (int)WITH_LOANS(mica_mm_protect(task, va, len, mica_prot(prot)));
}

static int env_page_alloc(void *ctx, uint64_t *pa)
{
	(void)ctx;
	*pa = server_frames_alloc(0);
	return *pa ? 0 : -MICA_ENOMEM;
}

static void env_page_ref(void *ctx, uint64_t pa)
{
	(void)ctx;
	frame_ref(&srv_fa, frame_from_pa(&srv_fa, pa));
}

/* Drop a reference: the frame goes back with the last one (shared pages). */
static void env_page_free(void *ctx, uint64_t pa)
{
	(void)ctx;
	frame_unref(&srv_fa, frame_from_pa(&srv_fa, pa));
}

static int env_page_alloc_2m(void *ctx, uint64_t *pa)
{
	(void)ctx;
	struct frame *f = frame_alloc(&srv_fa, 9);
	if (!f)
		return -MICA_ENOMEM;
	*pa = frame_to_pa(&srv_fa, f);
	memset(server_window(*pa), 0, PAGE_SIZE << 9);
	frame_split(&srv_fa, f); /* each page is then referenced and freed on its own */
	return 0;
}

const struct mm_env server_env = {
	.enter = env_enter,
	.remove = env_remove,
	.protect = env_protect,
	.page_alloc = env_page_alloc,
	.page_ref = env_page_ref,
	.page_free = env_page_free,
	.page_alloc_2m = env_page_alloc_2m,
};

static struct client_slot *client_by_badge(uint64_t badge)
{
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].used && clients[i].c.badge == badge)
			return &clients[i];
	return 0;
}

/* The task is gone (or about to be): every page and translation goes now; the
 * slot itself is released by the kernel's exit note (client_exited). */
static void client_end(struct client_slot *s)
{
	mica_task_kill_quiet(s->c.task);
	mm_client_destroy(&s->c, &server_env);
	mica_cap_delete(s->c.task);
	s->ending = true;
}

/* The kernel says the task ended: by exit, by our kill, or otherwise. */
static void client_exited(struct client_slot *s, long status)
{
	if (!s->ending) {
		printf("server: %s (task slot %llu) exited with status %ld\n", s->name,
		       (unsigned long long)s->c.task, status);
		mm_client_destroy(&s->c, &server_env);
		mica_cap_delete(s->c.task);
	}
	s->used = false;
	s->ending = false;
	nclients--;
}

/* Map [va, va + len) populated with `prot` and copy `src` into it. */
static long load_range(struct mm_client *c, uint64_t va, uint64_t len, unsigned prot,
		       unsigned flags, const uint8_t *src, uint64_t src_off, uint64_t src_len)
{
	struct mm_request req = {.op = MM_OP_MAP,
				 .addr = va,
				 .len = len,
				 .prot = prot,
				 .flags = MM_MAP_FIXED_NOREPLACE | flags};
	uint64_t out[IPC_MAX_WORDS];
	unsigned nout;
	long r = mm_handle(c, &server_env, &req, out, &nout);
	if (r < 0)
		return r;
	for (uint64_t off = 0; off < src_len;) {
		uint64_t page = (va + src_off + off) & ~PAGE_MASK, pa;
		uint64_t in_page = PAGE_SIZE - ((va + src_off + off) & PAGE_MASK);
		uint64_t n = src_len - off < in_page ? src_len - off : in_page;
		if (!mm_pagetab_get(&c->pages, page, &pa))
			return -MICA_EFAULT;
		memcpy((uint8_t *)server_window(pa) + ((va + src_off + off) & PAGE_MASK), src + off,
		       n);
		off += n;
	}
	return 0;
}

static unsigned elf_to_mm_prot(uint32_t f)
{
	return ((f & ELF_PF_R) ? MM_PROT_READ : 0) | ((f & ELF_PF_W) ? MM_PROT_WRITE : 0) |
	       ((f & ELF_PF_X) ? MM_PROT_EXEC : 0);
}

/* Undo map_thread_memory(): whatever of it is there goes. */
static void unmap_thread_memory(struct mm_client *c, unsigned k)
{
	uint64_t top = USER_THREAD_STACK_TOP(k);
	uint64_t out[IPC_MAX_WORDS];
	unsigned nout;
	struct mm_request req = {.op = MM_OP_UNMAP,
				 .addr = top - (USER_STACK_PAGES + 1) * PAGE_SIZE,
				 .len = (USER_STACK_PAGES + 1) * PAGE_SIZE};
	mm_handle(c, &server_env, &req, out, &nout);
	req.addr = USER_THREAD_IPCBUF_VA(k);
	req.len = PAGE_SIZE;
	mm_handle(c, &server_env, &req, out, &nout);
}

/* Thread k's stack (lazy, over a guard page) and IPC buffer (resident and
 * wired: the kernel holds on to its frame). On failure nothing stays mapped. */
static long map_thread_memory(struct mm_client *c, unsigned k)
{
	uint64_t top = USER_THREAD_STACK_TOP(k), lo = top - USER_STACK_PAGES * PAGE_SIZE;
	long err = load_range(c, lo - PAGE_SIZE, PAGE_SIZE, MM_PROT_NONE, MM_MAP_GUARD, 0, 0, 0);
	if (!err)
		err = load_range(c, lo, USER_STACK_PAGES * PAGE_SIZE, MM_PROT_READ | MM_PROT_WRITE,
				 0, 0, 0, 0);
	if (!err)
		err = load_range(c, USER_THREAD_IPCBUF_VA(k), PAGE_SIZE,
				 MM_PROT_READ | MM_PROT_WRITE, MM_MAP_WIRE, 0, 0, 0);
	if (err)
		unmap_thread_memory(c, k);
	return err;
}

struct mm_client *server_spawn_client(const char *module, uint64_t arg, unsigned prio,
				      const struct mm_quota *quota)
{
	const struct bootinfo_module *m = 0;
	for (unsigned i = 0; i < srv_bi->nmodules; i++)
		if (strcmp(srv_bi->modules[i].name, module) == 0)
			m = &srv_bi->modules[i];
	struct client_slot *s = 0;
	unsigned idx = 0;
	for (; idx < MAX_CLIENTS; idx++)
		if (!clients[idx].used) {
			s = &clients[idx];
			break;
		}
	if (!m || !s)
		return 0;
	const uint8_t *file = server_window(m->pa);
	struct elf_image img;
	if (elf_parse(file, m->size, USER_VA_MIN, USER_STACK_TOP - USER_STACK_PAGES * PAGE_SIZE,
		      &img))
		return 0;
	uint64_t task = CLIENT_TASK_BASE + idx;
	uint64_t badge = next_badge++;
	/* One badged capability serves as the task's line to us, its fault
	 * endpoint and its exit notification. */
	if (mica_cap_derive(SERVER_EP, SERVER_TMP, CAP_RIGHT_SEND | CAP_RIGHT_GRANT, badge))
		return 0;
	if (WITH_LOANS(mica_space_create_notify(CAP_SLOT_MEMCTL, task, module, SERVER_TMP)) < 0) {
		mica_cap_delete(SERVER_TMP);
		return 0;
	}
	static const struct mm_quota boot_module_quota = {
		.entries = 512, .resident = 8192, .wired = 64};
	mm_client_init(&s->c, badge, task, quota ? quota : &boot_module_quota);
	s->used = true;
	nclients++;
	strncpy(s->name, module, sizeof(s->name) - 1);
	long err = 0;
	for (unsigned i = 0; i < img.nsegments && !err; i++) {
		const struct elf_segment *seg = &img.seg[i];
		uint64_t first = seg->vaddr & ~PAGE_MASK;
		uint64_t len = ((seg->vaddr + seg->memsz + PAGE_MASK) & ~PAGE_MASK) - first;
		err = load_range(&s->c, first, len, elf_to_mm_prot(seg->flags), MM_MAP_POPULATE,
				 file + seg->offset, seg->vaddr - first, seg->filesz);
	}
	if (!err)
		err = map_thread_memory(&s->c, 0);
	s->entry = img.entry;
	s->nthreads = 1;
	if (!err)
		err = mica_cap_copy_to(task, SERVER_TMP, MM_SERVER_SLOT,
				       CAP_RIGHT_SEND | CAP_RIGHT_GRANT, 0);
	if (!err)
		err = WITH_LOANS(mica_thread_start(task, img.entry, USER_STACK_TOP, arg,
						   USER_IPCBUF_VA, prio, SERVER_TMP));
	mica_cap_delete(SERVER_TMP);
	if (err < 0) {
		/* The exit note of the half-built task releases the slot. */
		printf("server: cannot start %s (%ld)\n", module, err);
		client_end(s);
		return 0;
	}
	return &s->c;
}

void server_client_kill(struct mm_client *c)
{
	struct client_slot *s = client_by_badge(c->badge);
	if (s && !s->ending)
		client_end(s);
}

long server_client_add_thread(struct mm_client *c, uint64_t arg, unsigned prio)
{
	struct client_slot *s = client_by_badge(c->badge);
	if (!s || s->ending)
		return -MICA_ESRCH;
	if (arg & ~USER_THREAD_ARG_MASK)
		return -MICA_EINVAL;
	if (s->nthreads >= USER_THREADS_MAX)
		return -MICA_EAGAIN;
	unsigned k = s->nthreads;
	long err = map_thread_memory(c, k);
	if (err)
		return err;
	/* Its faults come to us with the task's badge, like the first thread's. */
	err = mica_cap_derive(SERVER_EP, SERVER_TMP, CAP_RIGHT_SEND | CAP_RIGHT_GRANT, c->badge);
	if (!err) {
		err = WITH_LOANS(mica_thread_start(
			c->task, s->entry, USER_THREAD_STACK_TOP(k),
			USER_THREAD_FLAG | (uint64_t)k << USER_THREAD_INDEX_SHIFT | arg,
			USER_THREAD_IPCBUF_VA(k), prio, SERVER_TMP));
		mica_cap_delete(SERVER_TMP);
	}
	if (err < 0) {
		unmap_thread_memory(c, k);
		return err;
	}
	s->nthreads++;
	return 0;
}

static void reply_words(struct mica_msg *m, long result, const uint64_t *out, unsigned nout)
{
	m->mr[0] = (uint64_t)result;
	for (unsigned i = 1; i < nout && i < IPC_REG_WORDS; i++)
		m->mr[i] = out[i];
	for (unsigned i = IPC_REG_WORDS; i < nout; i++)
		MICA_IPCBUF->mr[i] = out[i];
	m->tag = ipc_tag(MM_REPLY, nout ? nout : 1);
}

static long server_info(struct mm_client *c, uint64_t *out, unsigned *nout)
{
	size_t free_pages, total;
	server_frames_stats(&free_pages, &total);
	struct mica_kernel_info ki;
	mica_kernel_info(&ki);
	out[1] = free_pages;
	out[2] = total;
	out[3] = mm_resident_pages(c);
	out[4] = c->wired_pages;
	out[5] = c->map.nentries;
	out[6] = ki.karena_inuse;
	out[7] = server_donated_pages + server_heap_pages();
	out[8] = c->quota.entries;
	out[9] = c->quota.resident;
	out[10] = c->quota.wired;
	*nout = 11;
	return 0;
}

void server_grant_devices(struct mm_client *c, const char *const *compat)
{
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].used && &clients[i].c == c)
			clients[i].grants = compat;
}

static bool granted(const struct client_slot *s, uint64_t pa, uint64_t len)
{
	for (unsigned i = 0; i < srv_bi->ndevices; i++) {
		const struct bootinfo_device *d = &srv_bi->devices[i];
		if (pa < d->base || len > d->size || pa - d->base > d->size - len)
			continue;
		for (const char *const *g = s->grants; g && *g; g++)
			if (strcmp(*g, d->compatible) == 0)
				return true;
	}
	return false;
}

/* MMIO into a client: a device entry whose translations are entered at once
 * (nothing is resident: there is no RAM behind it). */
static long server_map_device(struct client_slot *s, const uint64_t *mr)
{
	uint64_t pa = mr[0], len = mr[1], prot = mr[2];
	if ((pa | len) & PAGE_MASK || len == 0 || pa + len < pa)
		return -MICA_EINVAL;
	if (prot == MM_PROT_NONE || prot & ~(uint64_t)(MM_PROT_READ | MM_PROT_WRITE) )
		return -MICA_EINVAL; /* devices are never executed */
	if (!granted(s, pa, len))
		return -MICA_EPERM;
	struct vm_map_attr attr = {.prot = (unsigned)prot,
				   .max_prot = (unsigned)prot,
				   .flags = VM_ENT_DEVICE | VM_ENT_NOMERGE,
				   .offset = pa};
	uintptr_t at;
	int err = vm_map_enter(&s->c.map, USER_VA_MIN, len, 0, 0, &attr, 0, 0, &at);
	if (err)
		return err;
	unsigned pte = (prot & MM_PROT_WRITE) ? (unsigned)prot | MM_PROT_READ : (unsigned)prot;
	struct mica_mapping m = {at, pa, len, mica_prot(pte) | MICA_MAP_DEVICE};
	long kerr = WITH_LOANS(mica_mm_enter(s->c.task, &m, 1));
	if (kerr) {
		vm_map_remove(&s->c.map, at, len, 0, 0);
		return kerr;
	}
	return (long)at;
}

struct device_probe {
	bool found;
};

static int find_device_entry(void *arg, const struct vm_map_entry *e)
{
	struct device_probe *p = arg;
	p->found |= (e->flags & VM_ENT_DEVICE) != 0;
	return 0;
}

/* Device entries have no pages to populate, wire or share, and their
 * protection is fixed when they are mapped. */
static bool touches_device(struct client_slot *s, uint64_t addr, uint64_t len)
{
	struct device_probe p = {false};
	vm_map_foreach(&s->c.map, addr, len, find_device_entry, &p);
	return p.found;
}

/* The target of a SHARE is named by the token the message carried. */
static long server_share(struct client_slot *s, const struct mm_request *req)
{
	unsigned rights;
	uint64_t badge;
	if (!MICA_IPCBUF->cap_received)
		return -MICA_EPERM;
	long type = mica_cap_identify(SERVER_RECV, &rights, &badge);
	struct client_slot *target = 0;
	if (type == CAP_TYPE_ENDPOINT && (badge & MM_TOKEN_BIT))
		target = client_by_badge(badge & ~MM_TOKEN_BIT);
	if (!target)
		return -MICA_EPERM;
	return mm_core_share(&s->c, &target->c, &server_env, req);
}

int server_give_share_token(struct mm_client *holder, struct mm_client *target, uint64_t slot)
{
	long err = mica_cap_derive(SERVER_EP, SERVER_TMP, CAP_RIGHT_SEND,
				   target->badge | MM_TOKEN_BIT);
	if (!err)
		err = mica_cap_copy_to(holder->task, SERVER_TMP, slot, CAP_RIGHT_SEND, 0);
	mica_cap_delete(SERVER_TMP);
	return (int)err;
}

/* One message from a client; false when no reply is due (the client is gone). */
static bool server_handle(struct client_slot *s, struct mica_msg *m)
{
	uint64_t out[IPC_MAX_WORDS] = {0};
	unsigned nout = 1;
	if (ipc_tag_label(m->tag) == IPC_LABEL_FAULT) {
		const char *why = "";
		if (touches_device(s, m->mr[0] & ~PAGE_MASK, PAGE_SIZE)) {
			printf("server: killing %s: access against a device mapping's protection "
			       "(address 0x%llx, pc 0x%llx)\n",
			       s->name, (unsigned long long)m->mr[0], (unsigned long long)m->mr[2]);
			server_kills++;
			client_end(s);
			return false;
		}
		if (mm_fault(&s->c, &server_env, m->mr[0], (unsigned)m->mr[1], &why) == 0) {
			m->tag = ipc_tag(FAULT_REPLY_RESUME, 0);
			return true;
		}
		printf("server: killing %s: %s (address 0x%llx, pc 0x%llx)\n", s->name, why,
		       (unsigned long long)m->mr[0], (unsigned long long)m->mr[2]);
		server_kills++;
		client_end(s);
		return false;
	}
	if (ipc_tag_label(m->tag) == IPC_LABEL_TASK_EXIT) {
		client_exited(s, (long)m->mr[1]);
		return false;
	}
	if (ipc_tag_label(m->tag) == MM_OP_MAP_DEVICE) {
		reply_words(m, (m->tag & IPC_TAG_CAP) ? -MICA_EINVAL : server_map_device(s, m->mr),
			    out, 1);
		return true;
	}
	struct mm_request req;
	long r = mm_decode(m->tag, m->mr, &req);
	if (r == 0 && (req.op == MM_OP_PROTECT || req.op == MM_OP_WIRE || req.op == MM_OP_UNWIRE ||
		       req.op == MM_OP_SHARE) &&
	    touches_device(s, req.addr, req.len))
		r = -MICA_EINVAL;
	if (r == 0 && req.op == MM_OP_SHARE)
		r = server_share(s, &req);
	else if (r == 0)
		r = req.op == MM_OP_INFO ? server_info(&s->c, out, &nout)
					 : mm_handle(&s->c, &server_env, &req, out, &nout);
	reply_words(m, r, out, nout);
	return true;
}

void server_run(void)
{
	struct mica_msg m;
	MICA_IPCBUF->cap_recv = SERVER_RECV;
	long err = mica_recv(SERVER_EP, &m);
	while (nclients > 0) {
		bool reply = false;
		if (err == 0) {
			struct client_slot *s = client_by_badge(m.badge);
			if (s) {
				reply = server_handle(s, &m);
			} else {
				reply_words(&m, -MICA_EPERM, 0, 1);
				reply = true;
			}
		}
		/* A capability that arrived has served its purpose (or none). */
		if (MICA_IPCBUF->cap_received)
			mica_cap_delete(SERVER_RECV);
		if (nclients == 0) {
			if (reply)
				mica_reply(&m);
			break;
		}
		err = reply ? mica_reply_recv(SERVER_EP, &m) : mica_recv(SERVER_EP, &m);
	}
}

int server_start(void)
{
	return (int)WITH_LOANS(mica_endpoint_create(CAP_SLOT_MEMCTL, SERVER_EP));
}
