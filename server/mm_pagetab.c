/* Resident pages of one client: an open-addressing hash table from virtual page
 * to physical page, grown by doubling. Deleted slots are tombstones until the
 * next rehash. */
#include "server/mm_pagetab.h"

#include <stdlib.h>
#include <string.h>

#include "mica/errno.h"
#include "mica/param.h"

#define KEY_EMPTY 0
#define KEY_TOMB 2
#define KEY_USED 1 /* low bit set on a live key: va is page aligned */

static size_t slot_of(uint64_t va, size_t cap)
{
	uint64_t h = (va >> PAGE_SHIFT) * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 20) & (cap - 1);
}

static int pagetab_grow(struct mm_pagetab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 64;
	uint64_t *keys = calloc(ncap, sizeof(uint64_t)), *vals = calloc(ncap, sizeof(uint64_t));
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -MICA_ENOMEM;
	}
	for (size_t i = 0; i < t->cap; i++) {
		if (!(t->keys[i] & KEY_USED))
			continue;
		size_t s = slot_of(t->keys[i], ncap);
		while (keys[s])
			s = (s + 1) & (ncap - 1);
		keys[s] = t->keys[i];
		vals[s] = t->vals[i];
	}
	free(t->keys);
	free(t->vals);
	t->keys = keys;
	t->vals = vals;
	t->cap = ncap;
	t->tomb = 0;
	return 0;
}

int mm_pagetab_reserve(struct mm_pagetab *t, size_t more)
{
	while ((t->used + t->tomb + more) * 4 >= t->cap * 3)
		if (pagetab_grow(t))
			return -MICA_ENOMEM;
	return 0;
}

static size_t find(const struct mm_pagetab *t, uint64_t va)
{
	if (!t->cap)
		return SIZE_MAX;
	for (size_t s = slot_of(va, t->cap);; s = (s + 1) & (t->cap - 1)) {
		if (t->keys[s] == KEY_EMPTY)
			return SIZE_MAX;
		if (t->keys[s] == (va | KEY_USED))
			return s;
	}
}

bool mm_pagetab_get(const struct mm_pagetab *t, uint64_t va, uint64_t *pa)
{
	size_t s = find(t, va);
	if (s == SIZE_MAX)
		return false;
	*pa = t->vals[s];
	return true;
}

int mm_pagetab_put(struct mm_pagetab *t, uint64_t va, uint64_t pa)
{
	if (mm_pagetab_reserve(t, 1))
		return -MICA_ENOMEM;
	size_t s = slot_of(va, t->cap);
	while (t->keys[s] & KEY_USED)
		s = (s + 1) & (t->cap - 1);
	if (t->keys[s] == KEY_TOMB)
		t->tomb--;
	t->keys[s] = va | KEY_USED;
	t->vals[s] = pa;
	t->used++;
	return 0;
}

bool mm_pagetab_del(struct mm_pagetab *t, uint64_t va, uint64_t *pa)
{
	size_t s = find(t, va);
	if (s == SIZE_MAX)
		return false;
	*pa = t->vals[s];
	t->keys[s] = KEY_TOMB;
	t->used--;
	t->tomb++;
	return true;
}

size_t mm_pagetab_remove_range(struct mm_pagetab *t, uint64_t va, uint64_t len,
			       void (*fn)(void *arg, uint64_t va, uint64_t pa), void *arg)
{
	size_t removed = 0;
	uint64_t pa;
	if (len / PAGE_SIZE <= t->used) {
		for (uint64_t off = 0; off < len; off += PAGE_SIZE)
			if (mm_pagetab_del(t, va + off, &pa)) {
				fn(arg, va + off, pa);
				removed++;
			}
		return removed;
	}
	/* A large, sparse range: walk the table instead of the range. */
	for (size_t s = 0; s < t->cap; s++) {
		uint64_t key = t->keys[s];
		if (!(key & KEY_USED))
			continue;
		uint64_t page = key & ~(uint64_t)KEY_USED;
		if (page < va || page - va >= len)
			continue;
		pa = t->vals[s];
		t->keys[s] = KEY_TOMB;
		t->used--;
		t->tomb++;
		fn(arg, page, pa);
		removed++;
	}
	return removed;
}

size_t mm_pagetab_count_range(const struct mm_pagetab *t, uint64_t va, uint64_t len)
{
	size_t n = 0;
	uint64_t pa;
	if (len / PAGE_SIZE <= t->used) {
		for (uint64_t off = 0; off < len; off += PAGE_SIZE)
			n += mm_pagetab_get(t, va + off, &pa);
		return n;
	}
	for (size_t s = 0; s < t->cap; s++) {
		uint64_t page = t->keys[s] & ~(uint64_t)KEY_USED;
		if ((t->keys[s] & KEY_USED) && page >= va && page - va < len)
			n++;
	}
	return n;
}

void mm_pagetab_free(struct mm_pagetab *t)
{
	free(t->keys);
	free(t->vals);
	memset(t, 0, sizeof(*t));
}
