/* Blob loading and a small PRNG for the device-tree host tests. */
#include "dt_blobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const dtt_required[] = {
    "virt-smp1-128M.dtb",      "virt-smp4-4G.dtb",          "sifive_u-smp5.dtb",
    "virt-nosstc.dtb",         "visionfive2.dtb",           "visionfive2-8G.dtb",
    "visionfive2-s7-sv39.dtb", "visionfive2-acme-uart.dtb", "visionfive2-no-stdout.dtb",
    "virt-missing-uart.dtb",   "virt-opensbi.dtb",          "virt-reserved.dtb",
};
const size_t dtt_nrequired = sizeof(dtt_required) / sizeof(dtt_required[0]);

const char *dtt_dir(void)
{
	const char *d = getenv("MICA_DTB_DIR");
	return d && *d ? d : "build/dtb";
}

uint8_t *dtt_load(const char *name, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dtt_dir(), name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "dtt_load: cannot open %s (run `make dtbs` or set MICA_DTB_DIR)\n",
		        path);
		return NULL;
	}
	uint8_t *buf = NULL;
	long size = -1;
	if (fseek(f, 0, SEEK_END) == 0)
		size = ftell(f);
	if (size > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)size);
		if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "dtt_load: cannot read %s\n", path);
		return NULL;
	}
	*len = (size_t)size;
	return buf;
}

uint8_t *dtt_copy(const void *blob, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	if (p && len)
		memcpy(p, blob, len);
	return p;
}

uint32_t dtt_totalsize(const void *blob)
{
	const uint8_t *b = blob;
	return ((uint32_t)b[4] << 24) | ((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) | b[7];
}

void dtt_rng_seed(struct dtt_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ull; /* the state must never be zero */
}

uint64_t dtt_rng_next(struct dtt_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

uint32_t dtt_rng_below(struct dtt_rng *r, uint32_t n)
{
	return n ? (uint32_t)((dtt_rng_next(r) >> 32) % n) : 0;
}
