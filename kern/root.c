#include "kern/root.h"

#include <string.h>

#include "arch/riscv64/pmap.h"
#include "kern/cap.h"
#include "kern/console.h"
#include "kern/kmem.h"
#include "kern/kpool.h"
#include "kern/panic.h"
#include "kern/task.h"
#include "lib/dt.h"
#include "lib/elf.h"
#include "lib/platform.h"
#include "mica/bootinfo.h"
#include "mica/errno.h"
#include "mica/param.h"

#define ROOT_STACK_TOP USER_STACK_TOP
#define ROOT_STACK_PAGES USER_STACK_PAGES
#define ROOT_IPCBUF_VA USER_IPCBUF_VA
#define ROOT_PRIORITY 10

struct module_entry {
	const char *name;
	const uint8_t *start, *end;
};
extern const struct module_entry mica_modules[];

/* RAM the root task will own; the kernel takes frames for the root task's own
 * image from the bottom of these ranges before handing the rest over. */
static struct bootinfo_range owned[BOOTINFO_MAX_RANGES];
static unsigned nowned;

static uint64_t take_frames(uint64_t bytes)
{
	bytes = (bytes + PAGE_MASK) & ~PAGE_MASK;
	for (unsigned i = 0; i < nowned; i++) {
		if (owned[i].size >= bytes) {
			uint64_t pa = owned[i].base;
			owned[i].base += bytes;
			owned[i].size -= bytes;
			memset(pa_to_kva(pa), 0, bytes);
			return pa;
		}
	}
	panic("root: no RAM left for the root task (%llu bytes)", (unsigned long long)bytes);
}

static void map_or_panic(struct task *t, uint64_t va, uint64_t pa, uint64_t len, uint64_t prot)
{
	int err = pmap_enter(&t->pm, va, pa, len, prot, 0);
	if (err)
		panic("root: cannot map 0x%llx (%d)", (unsigned long long)va, err);
}

static uint64_t elf_prot(uint32_t flags)
{
	return ((flags & ELF_PF_R) ? PTE_R : 0) | ((flags & ELF_PF_W) ? PTE_W | PTE_R : 0) |
	       ((flags & ELF_PF_X) ? PTE_X : 0);
}

static uint64_t load_root_image(struct task *t, const struct module_entry *m)
{
	struct elf_image img;
	size_t size = (size_t)(m->end - m->start);
	int err = elf_parse(m->start, size, USER_VA_MIN, ROOT_STACK_TOP - ROOT_STACK_PAGES * PAGE_SIZE,
			    &img);
	if (err)
		panic("root: boot module \"%s\" is not a loadable ELF (%d)", m->name, err);
	for (unsigned i = 0; i < img.nsegments; i++) {
		const struct elf_segment *s = &img.seg[i];
		uint64_t first = s->vaddr & ~PAGE_MASK;
		uint64_t len = ((s->vaddr + s->memsz + PAGE_MASK) & ~PAGE_MASK) - first;
		uint64_t pa = take_frames(len);
		memcpy((uint8_t *)pa_to_kva(pa) + (s->vaddr - first), m->start + s->offset,
		       s->filesz);
		map_or_panic(t, first, pa, len, elf_prot(s->flags));
	}
	return img.entry;
}

/* => boot hart, before sched_start */
static struct bootinfo_device devices[BOOTINFO_MAX_DEVICES];
static unsigned ndevices;

unsigned kernel_devices(const struct bootinfo_device **out)
{
	*out = devices;
	return ndevices;
}

static bool overlaps_ram(const struct plat_info *p, uint64_t base, uint64_t size)
{
	for (unsigned i = 0; i < p->nram; i++)
		if (base < p->ram[i].base + p->ram[i].size && p->ram[i].base < base + size)
			return true;
	return false;
}

/* Every enabled node with a compatible string and a memory-mapped register
 * window outside RAM is a device the memory server may hand out. */
static void collect_devices(const struct plat_info *p, const struct dt *dt)
{
	int depth = 0;
	for (int node = dt_next_node(dt, -1, &depth); node >= 0 && ndevices < BOOTINFO_MAX_DEVICES;
	     node = dt_next_node(dt, node, &depth)) {
		const char *compat = dt_prop_string(dt, node, "compatible");
		uint64_t base, size;
		if (!compat || !dt_node_enabled(dt, node) || dt_reg(dt, node, 0, &base, &size) < 0 ||
		    size == 0 || dt_translate(dt, node, &base) < 0)
			continue;
		uint64_t first = base & ~PAGE_MASK;
		uint64_t end = (base + size + PAGE_MASK) & ~PAGE_MASK;
		if (end <= first || overlaps_ram(p, first, end - first))
			continue;
		struct bootinfo_device *d = &devices[ndevices++];
		strncpy(d->compatible, compat, sizeof(d->compatible) - 1);
		d->base = first;
		d->size = end - first;
	}
}

void root_task_create(const struct plat_info *p, const struct dt *dt, uint64_t dtb_pa,
		      uint64_t dtb_size, uint64_t boot_hartid, uint64_t flags)
{
	if (dt)
		collect_devices(p, dt);
	const struct plat_range *free;
	unsigned nfree = kpool_free_ranges(&free);
	for (unsigned i = 0; i < nfree && nowned < BOOTINFO_MAX_RANGES; i++)
		owned[nowned++] = (struct bootinfo_range){free[i].base, free[i].size};
	if (nowned == 0)
		panic("root: no RAM for user space");

	struct task *t = task_create(mica_modules[0].name, 0, 0);
	if (!t)
		panic("root: cannot create the root task");
	uint64_t entry = load_root_image(t, &mica_modules[0]);

	uint64_t stack = take_frames(ROOT_STACK_PAGES * PAGE_SIZE);
	/* The page below the stack stays unmapped: an overflow faults. */
	map_or_panic(t, ROOT_STACK_TOP - ROOT_STACK_PAGES * PAGE_SIZE, stack,
		     ROOT_STACK_PAGES * PAGE_SIZE, PTE_R | PTE_W);
	map_or_panic(t, ROOT_IPCBUF_VA, take_frames(PAGE_SIZE), PAGE_SIZE, PTE_R | PTE_W);

	uint64_t bi_pa = take_frames(PAGE_SIZE);
	struct bootinfo *bi = pa_to_kva(bi_pa);
	bi->magic = BOOTINFO_MAGIC;
	for (unsigned i = 1; mica_modules[i].name && i <= BOOTINFO_MAX_MODULES; i++) {
		const struct module_entry *m = &mica_modules[i];
		uint64_t size = (uint64_t)(m->end - m->start);
		uint64_t pa = take_frames(size);
		memcpy(pa_to_kva(pa), m->start, size);
		struct bootinfo_module *bm = &bi->modules[bi->nmodules++];
		strncpy(bm->name, m->name, sizeof(bm->name) - 1);
		bm->pa = pa;
		bm->size = size;
	}
	bi->dtb_pa = dtb_pa;
	bi->dtb_size = dtb_size;
	bi->nharts = p->nusable;
	bi->timebase_hz = p->timebase_hz;
	bi->boot_hartid = boot_hartid;
	bi->flags = flags;
	bi->ndevices = ndevices;
	memcpy(bi->devices, devices, sizeof(devices));
	map_or_panic(t, BOOTINFO_VA, bi_pa, PAGE_SIZE, PTE_R);

	/* The window: every owned range, frames already used included, so the root
	 * task can reach all of its RAM without a system call. */
	uint64_t window_base = free[0].base;
	for (unsigned i = 1; i < nfree; i++)
		if (free[i].base < window_base)
			window_base = free[i].base;
	bi->window_pa_base = window_base;
	for (unsigned i = 0; i < nfree; i++) {
		uint64_t va = RAM_WINDOW_VA + (free[i].base - window_base);
		if (va + free[i].size > USER_VA_MAX)
			continue; /* beyond the window: reachable only by mapping it */
		map_or_panic(t, va, free[i].base, free[i].size, PTE_R | PTE_W);
	}
	for (unsigned i = 0; i < nowned; i++)
		if (owned[i].size)
			bi->free[bi->nranges++] = owned[i];

	struct cap memctl = {.type = CAP_TYPE_MEMCTL, .rights = CAP_RIGHTS_ALL};
	cap_install(&t->caps[CAP_SLOT_MEMCTL], &memctl, CAP_RIGHTS_ALL, 0);
	struct cap self = {.type = CAP_TYPE_TASK, .rights = CAP_RIGHTS_ALL, .obj = t};
	cap_install(&t->caps[CAP_SLOT_SELF], &self, CAP_RIGHTS_ALL, 0);

	if (thread_create(t, entry, ROOT_STACK_TOP, BOOTINFO_VA, ROOT_IPCBUF_VA, ROOT_PRIORITY,
			  ~0UL, 0, 0, 0) < 0)
		panic("root: cannot start the root thread");
	root_task = t;
	uint64_t total = 0;
	for (unsigned i = 0; i < nfree; i++)
		total += free[i].size;
	kprintf("root:      task %u from module \"%s\", entry 0x%llx, %llu KiB of RAM owned\n",
		t->id, mica_modules[0].name, (unsigned long long)entry,
		(unsigned long long)(total >> 10));
}
