#include "server/spawn.h"
#include "server/server.h"

#include <string.h>

#include "lib/elf.h"
#include "mica/param.h"
#include "user/mica.h"

static const struct bootinfo *spawn_bi;

void spawn_init(const struct bootinfo *bi)
{
	spawn_bi = bi;
}

void *spawn_window(uint64_t pa)
{
	return server_window(pa);
}

/* Contiguous frames from the server's allocator (a power-of-two block). These
 * tasks are the kernel tests' partners, outside the server's maps: their
 * frames are not reclaimed. */
uint64_t spawn_frames(size_t bytes)
{
	unsigned order = 0;
	while ((PAGE_SIZE << order) < bytes)
		order++;
	return server_frames_alloc(order);
}

static uint64_t elf_to_prot(uint32_t f)
{
	return ((f & ELF_PF_R) ? MICA_PROT_READ : 0) |
	       ((f & ELF_PF_W) ? MICA_PROT_READ | MICA_PROT_WRITE : 0) |
	       ((f & ELF_PF_X) ? MICA_PROT_EXEC : 0);
}

long spawn_module(const char *module, uint64_t memctl, uint64_t task_slot, uint64_t arg,
		  uint64_t fault_slot, unsigned prio)
{
	const struct bootinfo_module *m = 0;
	for (unsigned i = 0; i < spawn_bi->nmodules; i++)
		if (strcmp(spawn_bi->modules[i].name, module) == 0)
			m = &spawn_bi->modules[i];
	if (!m)
		return -MICA_ENOENT;
	const uint8_t *file = spawn_window(m->pa);
	struct elf_image img;
	long err = elf_parse(file, m->size, USER_VA_MIN,
			     USER_STACK_TOP - USER_STACK_PAGES * PAGE_SIZE, &img);
	if (err)
		return err;
	struct mica_mapping maps[ELF_MAX_SEGMENTS + 2];
	unsigned n = 0;
	for (unsigned i = 0; i < img.nsegments; i++) {
		const struct elf_segment *s = &img.seg[i];
		uint64_t first = s->vaddr & ~PAGE_MASK;
		uint64_t len = ((s->vaddr + s->memsz + PAGE_MASK) & ~PAGE_MASK) - first;
		uint64_t pa = spawn_frames(len);
		if (!pa)
			return -MICA_ENOMEM;
		memcpy((uint8_t *)spawn_window(pa) + (s->vaddr - first), file + s->offset,
		       s->filesz);
		maps[n++] = (struct mica_mapping){first, pa, len, elf_to_prot(s->flags)};
	}
	uint64_t stack = spawn_frames(USER_STACK_PAGES * PAGE_SIZE);
	uint64_t ipcbuf = spawn_frames(PAGE_SIZE);
	if (!stack || !ipcbuf)
		return -MICA_ENOMEM;
	maps[n++] = (struct mica_mapping){USER_STACK_TOP - USER_STACK_PAGES * PAGE_SIZE, stack,
					  USER_STACK_PAGES * PAGE_SIZE,
					  MICA_PROT_READ | MICA_PROT_WRITE};
	maps[n++] = (struct mica_mapping){USER_IPCBUF_VA, ipcbuf, PAGE_SIZE,
					  MICA_PROT_READ | MICA_PROT_WRITE};
	long id = mica_space_create(memctl, task_slot, module);
	if (id < 0)
		return id;
	err = mica_mm_enter(task_slot, maps, n);
	if (err == 0)
		err = mica_thread_start(task_slot, img.entry, USER_STACK_TOP, arg, USER_IPCBUF_VA,
					prio, fault_slot);
	if (err < 0) {
		mica_task_kill(task_slot);
		mica_cap_delete(task_slot);
		return err;
	}
	return id;
}
