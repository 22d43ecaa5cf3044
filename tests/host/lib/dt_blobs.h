/* Device-tree blobs for the host tests of lib/dt.c and lib/platform.c.
 * Linked into every host binary, so no cmocka here; names start with dtt_. */
#ifndef MICA_TESTS_DT_BLOBS_H
#define MICA_TESTS_DT_BLOBS_H

#include <stddef.h>
#include <stdint.h>

/* Where the blobs are: $MICA_DTB_DIR, else build/dtb (what `make dtbs` fills). */
const char *dtt_dir(void);

/* The blobs tools/dump-dtbs.sh produces; the tests fail when one is missing. */
extern const char *const dtt_required[];
extern const size_t dtt_nrequired;

/* Read `name` from dtt_dir() into a buffer of exactly the file's size, so that ASan
 * reports any read past it. NULL (with a message on stderr) if it cannot be read. */
uint8_t *dtt_load(const char *name, size_t *len);

/* A heap copy of the first `len` bytes of `blob`, sized exactly `len` (malloc(0) is
 * avoided: a zero-length copy gets one guard byte that the reader must not touch). */
uint8_t *dtt_copy(const void *blob, size_t len);

/* The totalsize field of a blob already known to have a header. */
uint32_t dtt_totalsize(const void *blob);

/* Deterministic generator for the corruption tests (xorshift64*). */
struct dtt_rng {
	uint64_t s;
};
void dtt_rng_seed(struct dtt_rng *r, uint64_t seed);
uint64_t dtt_rng_next(struct dtt_rng *r);
uint32_t dtt_rng_below(struct dtt_rng *r, uint32_t n);

#endif
