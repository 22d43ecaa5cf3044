/*
 * System-call entry: validate every argument, then act. A call that fails
 * returns a negative MICA_E* in a0 and has changed nothing. The ABI is in
 * include/mica/syscall.h and docs/IPC.md.
 */
#include <string.h>

#include "arch/riscv64/csr.h"
#include "arch/riscv64/pmap.h"
#include "arch/riscv64/timer.h"
#include "ipc/endpoint.h"
#include "ipc/fastpath.h"
#include "kern/bkl.h"
#include "kern/cap.h"
#include "kern/console.h"
#include "kern/hart.h"
#include "kern/karena.h"
#include "kern/root.h"
#include "mica/bootinfo.h"
#include "kern/kpool.h"
#include "kern/sched.h"
#include "kern/smp.h"
#include "kern/syscall.h"
#include "kern/task.h"
#include "kern/uaccess.h"
#include "lib/platform.h"
#include "mica/errno.h"

#define A(n) (tf->x[10 + (n)])
#define DEBUG_BYTES_PER_TICK 4096
#define DEBUG_CHUNK 256

static void set_result(struct trapframe *tf, long v)
{
	A(0) = (uint64_t)v;
}

/* Is [pa, pa + len) RAM that the memory server owns (never the kernel's)? */
static bool server_owns(uint64_t pa, uint64_t len)
{
	const struct plat_range *r;
	unsigned n = kpool_free_ranges(&r);
	for (unsigned i = 0; i < n; i++)
		if (pa >= r[i].base && len <= r[i].size && pa - r[i].base <= r[i].size - len)
			return true;
	return false;
}

/* Is [pa, pa + len) inside one MMIO device the device tree lists? (Those never
 * overlap RAM: collect_devices() leaves such nodes out.) */
static bool device_range(uint64_t pa, uint64_t len)
{
	const struct bootinfo_device *d;
	unsigned n = kernel_devices(&d);
	for (unsigned i = 0; i < n; i++)
		if (pa >= d[i].base && len <= d[i].size && pa - d[i].base <= d[i].size - len)
			return true;
	return false;
}

static bool prot_ok(uint64_t prot)
{
	return prot != 0 && !(prot & ~(uint64_t)PTE_RWX) && !((prot & PTE_W) && !(prot & PTE_R));
}

/* Messages of more than four words need the sender's IPC buffer; a capability
 * needs the grant right and a non-empty slot. */
static int check_message(struct thread *t, uint64_t tag, const struct cap *via, bool allow_cap)
{
	unsigned words = ipc_tag_words(tag);
	if (words > IPC_MAX_WORDS)
		return -MICA_EINVAL;
	if (words > IPC_REG_WORDS && !t->ipcbuf)
		return -MICA_EINVAL;
	if (tag & IPC_TAG_CAP) {
		if (!allow_cap || !t->ipcbuf)
			return -MICA_EINVAL;
		if (!(via->rights & CAP_RIGHT_GRANT))
			return -MICA_EPERM;
		uint64_t slot = t->ipcbuf->cap_send;
		if (slot == 0 || slot >= CAP_SLOTS || t->task->caps[slot].type == CAP_TYPE_NULL)
			return -MICA_EBADF;
	}
	return 0;
}

static struct task *task_arg(struct thread *t, uint64_t slot, int *err)
{
	struct cap *c = cap_lookup(t->task, slot, CAP_TYPE_TASK, CAP_RIGHT_CONTROL, err);
	if (!c)
		return 0;
	struct task *task = c->obj;
	if (task->dead) {
		*err = -MICA_ESRCH;
		return 0;
	}
	return task;
}

static bool memctl_ok(struct thread *t, uint64_t slot, int *err)
{
	return cap_lookup(t->task, slot, CAP_TYPE_MEMCTL, 0, err) != 0;
}

/* A badge can be set only on an unbadged endpoint capability. */
static int check_badge(const struct cap *src, uint64_t badge)
{
	if (badge == 0 || badge == src->badge)
		return 0;
	if (src->type != CAP_TYPE_ENDPOINT || src->badge != 0)
		return -MICA_EPERM;
	return 0;
}

static void sys_ipc(struct thread *t, struct trapframe *tf, unsigned nr)
{
	int err = 0;
	unsigned rights = nr == SYS_CALL || nr == SYS_SEND ? CAP_RIGHT_SEND : CAP_RIGHT_RECV;
	struct cap *c = cap_lookup(t->task, A(0), CAP_TYPE_ENDPOINT, rights, &err);
	if (!c) {
		set_result(tf, err);
		return;
	}
	switch (nr) {
	case SYS_CALL:
	case SYS_SEND:
		err = check_message(t, A(1), c, true);
		if (err)
			set_result(tf, err);
		else
			ipc_send(t, c, nr == SYS_CALL);
		return;
	case SYS_REPLY_RECV:
		err = check_message(t, A(1), c, false);
		if (err) {
			set_result(tf, err);
			return;
		}
		if (t->reply_to && t->reply_to->in_fault && t->reply_to->task == t->task &&
		    ipc_tag_label(A(1)) == FAULT_REPLY_KILL) {
			task_kill(t->task, "killed by its own fault handler", t->reply_to);
			return;
		}
		ipc_reply(t);
		ipc_recv(t, c);
		return;
	default:
		ipc_recv(t, c);
	}
}

static long sys_debug_write(struct thread *t, uint64_t buf, uint64_t len)
{
	struct task *task = t->task;
	uint64_t now = hart_at(0)->ticks; /* one clock for every hart */
	if (task->debug_budget >> 32 != now) /* high half: the tick the budget is for */
		task->debug_budget = (now << 32) | DEBUG_BYTES_PER_TICK;
	uint64_t left = task->debug_budget & 0xffffffffu;
	if (!user_range_ok(buf, len))
		return -MICA_EFAULT;
	if (len > left)
		return -MICA_EAGAIN;
	char chunk[DEBUG_CHUNK];
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < DEBUG_CHUNK ? len - done : DEBUG_CHUNK;
		if (copy_from_user(chunk, buf + done, n))
			return -MICA_EFAULT;
		console_write(chunk, n);
		done += n;
	}
	task->debug_budget -= len;
	return (long)len;
}

/* Copy the caller's capability in `src_slot` into an empty slot of `to`, with
 * rights narrowed by `rights` and, on an unbadged endpoint, a badge (0: keep).
 * Shared by cap_derive (to = the caller) and cap_copy_to (to = a task it controls). */
static long cap_copy_checked(struct thread *t, uint64_t src_slot, struct task *to,
			     uint64_t dst_slot, uint64_t rights, uint64_t badge)
{
	int err;
	if (src_slot == 0 || src_slot >= CAP_SLOTS ||
	    t->task->caps[src_slot].type == CAP_TYPE_NULL)
		return -MICA_EBADF;
	struct cap *src = &t->task->caps[src_slot];
	struct cap *dst = cap_free_slot(to, dst_slot, &err);
	if (!dst)
		return err;
	if (rights & ~(uint64_t)CAP_RIGHTS_ALL)
		return -MICA_EINVAL;
	if ((err = check_badge(src, badge)) != 0)
		return err;
	cap_install(dst, src, (unsigned)rights, badge ? badge : src->badge);
	return 0;
}

static long sys_cap_derive(struct thread *t, struct trapframe *tf)
{
	return cap_copy_checked(t, A(0), t->task, A(1), A(2), A(3));
}

static long sys_cap_copy_to(struct thread *t, struct trapframe *tf)
{
	int err;
	struct task *target = task_arg(t, A(0), &err);
	if (!target)
		return err;
	return cap_copy_checked(t, A(1), target, A(2), A(3), A(4));
}

static long sys_cap_identify(struct thread *t, struct trapframe *tf)
{
	if (A(0) >= CAP_SLOTS)
		return -MICA_EBADF;
	const struct cap *c = &t->task->caps[A(0)];
	A(1) = c->rights;
	A(2) = c->badge;
	return c->type;
}

static long sys_kernel_info(struct thread *t, struct trapframe *tf)
{
	struct karena_stats ks;
	struct kpool_stats ps;
	karena_get_stats(&ks);
	kpool_get_stats(&ps);
	struct mica_kernel_info info = {
		.karena_inuse = ks.mem_inuse,
		.kpool_free = ps.boot_free_pages + ps.donated_free,
		.tasks = tasks_live,
		.threads = threads_live,
		.endpoints = endpoints_live,
		.ticks = this_hart()->ticks,
		.harts = harts_online,
		.hart_index = this_hart()->index,
		.shootdowns = pmap_shootdowns,
		.shootdown_harts = pmap_shootdown_harts,
	};
	(void)t;
	return copy_to_user(A(0), &info, sizeof(info));
}

static long sys_endpoint_create(struct thread *t, struct trapframe *tf)
{
	int err;
	if (!memctl_ok(t, A(0), &err))
		return err;
	struct cap *dst = cap_free_slot(t->task, A(1), &err);
	if (!dst)
		return err;
	struct endpoint *ep = endpoint_create();
	if (!ep)
		return -MICA_ENOMEM;
	struct cap c = {.type = CAP_TYPE_ENDPOINT, .rights = CAP_RIGHT_SEND | CAP_RIGHT_RECV |
							     CAP_RIGHT_GRANT, .obj = ep};
	cap_install(dst, &c, CAP_RIGHTS_ALL, 0);
	return 0;
}

static long sys_space_create(struct thread *t, struct trapframe *tf)
{
	int err;
	if (!memctl_ok(t, A(0), &err))
		return err;
	struct cap *dst = cap_free_slot(t->task, A(1), &err);
	if (!dst)
		return err;
	char name[24] = "task";
	if (A(2)) {
		memset(name, 0, sizeof(name));
		if (copy_from_user(name, A(2), sizeof(name) - 1))
			return -MICA_EFAULT;
	}
	struct cap *exit_cap = 0;
	if (A(3)) {
		exit_cap = cap_lookup(t->task, A(3), CAP_TYPE_ENDPOINT, CAP_RIGHT_SEND, &err);
		if (!exit_cap)
			return err;
	}
	struct task *task = task_create(name, exit_cap ? exit_cap->obj : 0,
					exit_cap ? exit_cap->badge : 0);
	if (!task)
		return -MICA_ENOMEM;
	struct cap c = {.type = CAP_TYPE_TASK, .rights = CAP_RIGHTS_ALL, .obj = task};
	cap_install(dst, &c, CAP_RIGHTS_ALL, 0);
	return task->id;
}

static long sys_mm_enter(struct thread *t, struct trapframe *tf)
{
	int err;
	struct task *task = task_arg(t, A(0), &err);
	if (!task)
		return err;
	uint64_t n = A(2);
	if (n == 0 || n > MICA_MM_ENTER_MAX)
		return -MICA_EINVAL;
	struct mica_mapping maps[MICA_MM_ENTER_MAX];
	if (copy_from_user(maps, A(1), n * sizeof(maps[0])))
		return -MICA_EFAULT;
	for (uint64_t i = 0; i < n; i++) {
		const struct mica_mapping *m = &maps[i];
		bool device = m->prot & MICA_MAP_DEVICE;
		if (((m->va | m->pa | m->len) & PAGE_MASK) || m->len == 0 ||
		    !prot_ok(m->prot & ~(uint64_t)MICA_MAP_DEVICE))
			return -MICA_EINVAL;
		if (!user_range_ok(m->va, m->len))
			return -MICA_EFAULT;
		if (device ? !device_range(m->pa, m->len) : !server_owns(m->pa, m->len))
			return -MICA_EPERM;
	}
	for (uint64_t i = 0; i < n; i++) {
		const struct mica_mapping *m = &maps[i];
		bool device = m->prot & MICA_MAP_DEVICE;
		err = pmap_enter(&task->pm, m->va, m->pa, m->len, m->prot & PTE_RWX,
				 device ? PT_ENTER_NOSUPER : 0);
		if (err) {
			while (i-- > 0)
				pmap_remove(&task->pm, maps[i].va, maps[i].len);
			return err;
		}
	}
	return 0;
}

static long sys_mm_range(struct thread *t, struct trapframe *tf, unsigned nr)
{
	int err;
	struct task *task = task_arg(t, A(0), &err);
	if (!task)
		return err;
	uint64_t va = A(1), len = A(2);
	if (((va | len) & PAGE_MASK) || len == 0)
		return -MICA_EINVAL;
	if (!user_range_ok(va, len))
		return -MICA_EFAULT;
	if (nr == SYS_MM_REMOVE)
		return pmap_remove(&task->pm, va, len);
	if (!prot_ok(A(3)))
		return -MICA_EINVAL;
	return pmap_protect(&task->pm, va, len, A(3));
}

static long sys_mm_extract(struct thread *t, struct trapframe *tf)
{
	int err;
	struct task *task = task_arg(t, A(0), &err);
	if (!task)
		return err;
	if (!user_range_ok(A(1), 1))
		return -MICA_EFAULT;
	uint64_t pa, prot;
	err = pmap_extract(&task->pm, A(1), &pa, &prot);
	if (err)
		return err;
	A(1) = pa;
	A(2) = prot;
	return 0;
}

static long sys_thread_start(struct thread *t, struct trapframe *tf)
{
	int err;
	struct task *task = task_arg(t, A(0), &err);
	if (!task)
		return err;
	uint64_t pc = A(1), sp = A(2), prio = A(5) & 0xff, fault_slot = A(5) >> 8;
	if (!user_range_ok(pc, 4) || (pc & 1) || !user_range_ok(sp - 16, 16) || (sp & 15))
		return -MICA_EFAULT;
	struct endpoint *fault_ep = 0;
	uint64_t fault_badge = 0;
	if (fault_slot) {
		struct cap *c =
			cap_lookup(t->task, fault_slot, CAP_TYPE_ENDPOINT, CAP_RIGHT_SEND, &err);
		if (!c)
			return err;
		fault_ep = c->obj;
		fault_badge = c->badge;
	}
	/* The new thread may run where its creator may. */
	return thread_create(task, pc, sp, A(3), A(4), (unsigned)prio, t->affinity, fault_ep,
			     fault_badge, 0);
}

/* The new mask takes effect on the way out: sched_next() moves the thread if
 * this hart is no longer allowed, and reports where it landed in a1. */
static long sys_thread_affinity(struct thread *t, struct trapframe *tf)
{
	uint64_t mask = A(0);
	uint64_t old = t->affinity & harts_online_mask;
	if (mask) {
		if (!(mask & harts_online_mask))
			return -MICA_EINVAL;
		t->affinity = mask;
	}
	t->report_hart = true;
	return (long)old;
}

static long sys_mm_donate(struct thread *t, struct trapframe *tf)
{
	int err;
	if (!memctl_ok(t, A(0), &err))
		return err;
	if (((A(1) | A(2)) & PAGE_MASK) || A(2) == 0)
		return -MICA_EINVAL;
	if (!server_owns(A(1), A(2)))
		return -MICA_EPERM;
	return km_donate(A(1), A(2));
}

/* => kernel entered from U-mode with t current */
void syscall_dispatch(struct thread *t, struct trapframe *tf)
{
	unsigned nr = (unsigned)tf->x[17];
	int err;
	switch (nr) {
	case SYS_CALL:
	case SYS_REPLY_RECV:
	case SYS_RECV:
	case SYS_SEND:
		sys_ipc(t, tf, nr);
		return;
	case SYS_REPLY:
		err = check_message(t, A(1), 0, false);
		set_result(tf, err);
		if (!err)
			ipc_reply(t);
		return;
	case SYS_YIELD:
		set_result(tf, 0);
		sched_yield_current();
		return;
	case SYS_THREAD_AFFINITY:
		set_result(tf, sys_thread_affinity(t, tf));
		return;
	case SYS_THREAD_EXIT:
		thread_exit(t);
		return;
	case SYS_TASK_EXIT:
		kprintf("mica: task %u (%s) exited with status %lld\n", t->task->id, t->task->name,
			(long long)A(0));
		t->task->exit_status = (int64_t)A(0);
		task_kill(t->task, 0, 0);
		return;
	case SYS_DEBUG_WRITE:
		set_result(tf, sys_debug_write(t, A(0), A(1)));
		return;
	case SYS_CAP_DERIVE:
		set_result(tf, sys_cap_derive(t, tf));
		return;
	case SYS_CAP_DELETE: {
		uint64_t slot = A(0);
		if (slot == 0 || slot >= CAP_SLOTS || t->task->caps[slot].type == CAP_TYPE_NULL) {
			set_result(tf, -MICA_EBADF);
			return;
		}
		set_result(tf, 0);
		cap_clear(&t->task->caps[slot]);
		return;
	}
	case SYS_CAP_IDENTIFY:
		set_result(tf, sys_cap_identify(t, tf));
		return;
	case SYS_KERNEL_INFO:
		set_result(tf, sys_kernel_info(t, tf));
		return;
	case SYS_ENDPOINT_CREATE:
		set_result(tf, sys_endpoint_create(t, tf));
		return;
	case SYS_SPACE_CREATE:
		set_result(tf, sys_space_create(t, tf));
		return;
	case SYS_TASK_KILL: {
		struct task *task = task_arg(t, A(0), &err);
		if (!task) {
			set_result(tf, err);
			return;
		}
		if (A(1) > TASK_KILL_QUIET) {
			set_result(tf, -MICA_EINVAL);
			return;
		}
		set_result(tf, 0);
		task_kill(task, A(1) == TASK_KILL_QUIET ? 0 : "killed by request", 0);
		return;
	}
	case SYS_MM_ENTER:
		set_result(tf, sys_mm_enter(t, tf));
		return;
	case SYS_MM_REMOVE:
	case SYS_MM_PROTECT:
		set_result(tf, sys_mm_range(t, tf, nr));
		return;
	case SYS_MM_EXTRACT:
		set_result(tf, sys_mm_extract(t, tf));
		return;
	case SYS_THREAD_START:
		set_result(tf, sys_thread_start(t, tf));
		return;
	case SYS_MM_DONATE:
		set_result(tf, sys_mm_donate(t, tf));
		return;
	case SYS_CAP_COPY_TO:
		set_result(tf, sys_cap_copy_to(t, tf));
		return;
	default:
		set_result(tf, -MICA_ENOSYS);
	}
}

/* The way back to user mode: drop the BKL, waking any hart asleep on it.
 * Every call below is a tail call, so user_trap() needs no stack frame of
 * its own on the fastpath. => BKL held */
static __attribute__((noinline)) struct trapframe *wake_then_resume(struct trapframe *tf)
{
	bkl_wake_sleepers();
	return tf;
}

static inline struct trapframe *unlock_and_resume(struct trapframe *tf)
{
	if (bkl_release())
		return wake_then_resume(tf);
	return tf;
}

/* Everything but the IPC fastpath. => BKL held, t current on h */
static __attribute__((noinline)) struct trapframe *
user_trap_slow(struct hart *h, struct thread *t, struct trapframe *tf, uint64_t scause,
	       uint64_t stval)
{
	uint64_t irq = scause & SCAUSE_INTERRUPT ? scause & ~SCAUSE_INTERRUPT : ~0UL;
	if (irq == IRQ_S_TIMER)
		timer_interrupt();
	else if (irq == IRQ_S_SOFT)
		csr_clear(sip, SIP_SSIP);
	if (t->state == THREAD_DEAD) {
		thread_reap(t); /* killed by another hart while it ran here */
	} else if (irq == IRQ_S_TIMER) {
		sched_tick();
	} else if (irq == IRQ_S_SOFT) {
		h->ipi_seen = true;
	} else if (irq != ~0UL) {
		/* not enabled in sie: nothing to do */
	} else if (scause == EXC_ECALL_U) {
		tf->sepc += 4;
		syscall_dispatch(t, tf);
	} else {
		tf->scause = scause;
		tf->stval = stval;
		ipc_deliver_fault(t, tf->scause, tf->stval, tf->sepc);
	}
	if (h->ipi_seen) {
		/* Here, or while this hart waited for the BKL, another hart
		 * asked it to look at the run queue. */
		h->ipi_seen = false;
		sched_preempt_check();
	}
	tf = sched_next();
	bkl_unlock();
	return tf;
}

/* => BKL held */
static inline struct trapframe *
user_trap_locked(struct trapframe *tf, uint64_t scause,
						 uint64_t stval)
{
	struct hart *h = this_hart();
	struct thread *t = h->cur;
	if (scause == EXC_ECALL_U && t->state != THREAD_DEAD) {
		uint64_t nr = tf->x[17];
		if ((nr == SYS_CALL && ipc_fastpath_call(h, t, tf)) ||
		    (nr == SYS_REPLY_RECV && ipc_fastpath_reply_recv(h, t, tf)))
			return unlock_and_resume(&h->cur->ctx);
	}
	return user_trap_slow(h, t, tf, scause, stval);
}

/* => interrupts off; this hart drew `ticket` and it is not yet served */
static __attribute__((noinline)) struct trapframe *
user_trap_contended(struct trapframe *tf, uint64_t scause, uint64_t stval, uint32_t ticket)
{
	bkl_wait(ticket);
	return user_trap_locked(tf, scause, stval);
}

/* Every trap from U-mode lands here, on this hart's kernel stack with
 * interrupts off; returns the context to resume, which may belong to another
 * thread. The BKL is held from here until that return. */
struct trapframe *user_trap(struct trapframe *tf)
{
	/* Read the trap CSRs first: waiting for the BKL may take interrupts,
	 * which overwrite them. */
	uint64_t scause = csr_read(scause), stval = csr_read(stval);
	uint32_t ticket = bkl_draw();
	if (!bkl_served(ticket))
		return user_trap_contended(tf, scause, stval, ticket);
	return user_trap_locked(tf, scause, stval);
}
