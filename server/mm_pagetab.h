#ifndef MICA_SERVER_MM_PAGETAB_H
#define MICA_SERVER_MM_PAGETAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/mm_core.h"

/* Make room for `more` insertions so that they cannot fail. */
int mm_pagetab_reserve(struct mm_pagetab *t, size_t more);
bool mm_pagetab_get(const struct mm_pagetab *t, uint64_t va, uint64_t *pa);
int mm_pagetab_put(struct mm_pagetab *t, uint64_t va, uint64_t pa);
bool mm_pagetab_del(struct mm_pagetab *t, uint64_t va, uint64_t *pa);
/* Remove every page in [va, va + len), calling fn for each; returns how many. */
size_t mm_pagetab_remove_range(struct mm_pagetab *t, uint64_t va, uint64_t len,
			       void (*fn)(void *arg, uint64_t va, uint64_t pa), void *arg);
size_t mm_pagetab_count_range(const struct mm_pagetab *t, uint64_t va, uint64_t len);
void mm_pagetab_free(struct mm_pagetab *t);

#endif
