/* libFuzzer target for the memory server's logic: the input is a sequence of requests, each
 * a tag and four message words, decoded with mm_decode and, when valid, applied to one
 * client over the fake kernel (tests/host/lib/mm_fake_env.c); some steps are page faults
 * instead (mm_fault), and some end the client and start a new one, as a task's exit does.
 *
 * After every step: vm_map_check and the fake's cross-check (translations exactly for the
 * resident pages of accessible entries, frames in use equal to resident pages, quotas,
 * no call the kernel would refuse); a failed request must have changed nothing; a request
 * that succeeded must have done what it says. At the end mm_client_destroy must give back
 * every frame. Any of that failing traps.
 *
 * Input: one byte of configuration, then per step an op byte and four words, each word a
 * kind byte and what that kind reads (see word()), so that the fuzzer reaches valid
 * requests, edge values and raw 64-bit words alike. Quotas and the frame pool are small
 * so that every limit is met within a few steps. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mica/errno.h"
#include "mica/mm_proto.h"
#include "mica/param.h"
#include "mica/syscall.h"
#include "mm/vm_map.h"
#include "server/mm_core.h"
#include "server/mm_pagetab.h"
#include "tests/host/lib/mm_fake_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TASK     9
#define BASE     USER_VA_MIN /* small addresses, BASE + byte * PAGE_SIZE: where MAP puts things */
#define FAULT_OP 0xfa017     /* not a protocol label: a page fault, MR0 address, MR1 access */
#define EXIT_OP                                                                                    \
	0xe417 /* nor this: the task ends (the server's loop hears it from the                     \
	        * kernel), so the client is destroyed and a new one started */

struct input {
	const uint8_t *p;
	size_t n;
};

static bool byte(struct input *in, uint8_t *b)
{
	if (in->n == 0)
		return false;
	*b = *in->p++;
	in->n--;
	return true;
}

static uint64_t bytes(struct input *in, unsigned k)
{
	uint64_t v = 0;
	uint8_t b = 0;

	for (unsigned i = 0; i < k && byte(in, &b); i++)
		v |= (uint64_t)b << (8 * i);
	return v;
}

/* Values where the checks change their mind. */
static const uint64_t edges[] = {
    0,
    1,
    PAGE_SIZE - 1,
    PAGE_SIZE,
    PAGE_SIZE + 1,
    USER_VA_MIN,
    USER_VA_MIN - 1,
    USER_VA_MAX,
    USER_VA_MAX - PAGE_SIZE,
    USER_VA_MAX - USER_VA_MIN,
    USER_VA_MAX + 1,
    ~(uint64_t)0,
    ~(uint64_t)PAGE_MASK,
    (uint64_t)1 << 63,
    1UL << 21,
    1UL << 30,
    1UL << 31,
    MM_WIRE_REPORT,
    MM_WIRE_REPORT + 1,
    MM_PROT_READ | MM_PROT_WRITE,
    MM_PROT_READ | MM_PROT_WRITE | MM_PROT_EXEC,
    MM_PROT_READ | (uint64_t)MM_MAP_POPULATE << 8,
    MM_PROT_READ | MM_PROT_WRITE | (uint64_t)MM_MAP_WIRE << 8,
    MM_PROT_READ | (uint64_t)MM_MAP_FIXED << 8,
    MM_PROT_READ | (uint64_t)MM_MAP_FIXED_NOREPLACE << 8,
    (uint64_t)MM_MAP_GUARD << 8,
    (uint64_t)(MM_MAP_GUARD | MM_MAP_FIXED) << 8,
    (uint64_t)MM_MAP_FLAGS_ALL << 8,
    BASE,
    BASE + 256 * PAGE_SIZE,
    64 * PAGE_SIZE,
    ~(uint64_t)0 << 32,
};

/* One message word: a kind byte, then what it needs. */
static uint64_t word(struct input *in)
{
	uint8_t k = 0, b = 0;

	byte(in, &k);
	switch (k & 7) {
	case 0: /* a page in the small window */
		byte(in, &b);
		return BASE + (uint64_t)b * PAGE_SIZE;
	case 1: /* a short length */
		byte(in, &b);
		return ((uint64_t)b % 32 + 1) * PAGE_SIZE;
	case 2: /* a small number: prot, report, access */
		byte(in, &b);
		return b;
	case 3:
		return bytes(in, 8);
	case 4:
		return edges[(k >> 3) % (sizeof(edges) / sizeof(edges[0]))];
	case 5: /* an unaligned address in the window */
		byte(in, &b);
		return BASE + (uint64_t)(k >> 3) * PAGE_SIZE + b;
	case 6: /* prot and MAP flags */
		byte(in, &b);
		return (b & 7) | (uint64_t)(b >> 3) << 8;
	default: /* a longer length, up to 256 MiB */
		return (bytes(in, 2) + 1) * PAGE_SIZE;
	}
}

static const unsigned labels[] = {
    MM_OP_MAP,   MM_OP_MAP,  MM_OP_UNMAP, MM_OP_PROTECT, MM_OP_WIRE, MM_OP_UNWIRE,
    MM_OP_QUERY, FAULT_OP,   FAULT_OP,    MM_OP_INFO,    EXIT_OP,    MM_OP_SHARE,
    MM_OP_MAP,   MM_OP_WIRE, FAULT_OP,    0 /* raw */,
};

struct state {
	struct mmfake f;
	struct mm_client c;
	struct mm_quota q;
	uint64_t out[64];
	unsigned nout;
	char msg[512];
};

static __attribute__((noreturn)) void die(struct state *s, const char *what, uint64_t tag,
                                          const uint64_t mr[4], long res)
{
	fprintf(stderr, "fuzz_mm_decode: %s\n  tag %#llx mr %#llx %#llx %#llx %#llx -> %ld\n  %s\n",
	        what, (unsigned long long)tag, (unsigned long long)mr[0], (unsigned long long)mr[1],
	        (unsigned long long)mr[2], (unsigned long long)mr[3], res, s->msg);
	__builtin_trap();
}

static void client_start(struct state *s)
{
	if (mm_client_init(&s->c, 1, TASK, &s->q) != 0)
		__builtin_trap();
}

/* Ends the client; every frame and translation must be gone. */
static void client_end(struct state *s)
{
	mm_client_destroy(&s->c, &s->f.env);
	if (mmfake_frames_used(&s->f) != 0 || s->f.pt_used != 0 || s->f.misuse != 0) {
		fprintf(stderr, "fuzz_mm_decode: after destroy %zu frames, %zu translations, %s\n",
		        mmfake_frames_used(&s->f), s->f.pt_used, s->f.misuse ? s->f.why : "");
		__builtin_trap();
	}
}

struct cover {
	uint64_t next;
	int prot; /* < 0: any */
	bool wired, bad;
};

/* The range is entries end to end, all with the protection or wiring expected. */
static int cover_cb(void *arg, const struct vm_map_entry *e)
{
	struct cover *cv = arg;

	if (e->start > cv->next || (cv->prot >= 0 && e->prot != (unsigned)cv->prot) ||
	    (cv->wired && !e->wired))
		cv->bad = true;
	cv->next = e->end;
	return 0;
}

static int count_cb(void *arg, const struct vm_map_entry *e)
{
	(void)e;
	++*(unsigned *)arg;
	return 0;
}

static bool covered(struct state *s, uint64_t a, uint64_t len, int prot, bool wired)
{
	struct cover cv = {a, prot, wired, false};

	vm_map_foreach(&s->c.map, a, len, cover_cb, &cv);
	return !cv.bad && cv.next >= a + len;
}

/* What a request that succeeded must have done; NULL when it did. */
static const char *postcondition(struct state *s, const struct mm_request *rq, long res)
{
	switch (rq->op) {
	case MM_OP_MAP: {
		uint64_t a = (uint64_t)res, align = rq->align ? rq->align : PAGE_SIZE;
		struct vm_map_entry *e;

		if ((a & (align - 1)) != 0)
			return "MAP: address not aligned as asked";
		if ((rq->flags & (MM_MAP_FIXED | MM_MAP_FIXED_NOREPLACE)) && a != rq->addr)
			return "MAP: fixed mapping elsewhere";
		if (a < USER_VA_MIN || a + rq->len > USER_VA_MAX)
			return "MAP: outside user space";
		/* The new range is one entry: a merge only makes it larger. */
		if (!vm_map_lookup(&s->c.map, a, &e) || e->end < a + rq->len ||
		    e->prot != rq->prot ||
		    !(e->flags & VM_ENT_GUARD) != !(rq->flags & MM_MAP_GUARD) ||
		    !e->wired != !(rq->flags & MM_MAP_WIRE))
			return "MAP: the entry is not what was asked";
		if ((rq->flags & (MM_MAP_POPULATE | MM_MAP_WIRE)) &&
		    mm_pagetab_count_range(&s->c.pages, a, rq->len) != rq->len / PAGE_SIZE)
			return "MAP: not every page populated";
		if (!(rq->flags & (MM_MAP_POPULATE | MM_MAP_WIRE)) &&
		    mm_pagetab_count_range(&s->c.pages, a, rq->len) != 0)
			return "MAP: pages resident that nobody touched";
		return NULL;
	}
	case MM_OP_UNMAP: {
		unsigned n = 0;

		vm_map_foreach(&s->c.map, rq->addr, rq->len, count_cb, &n);
		if (n != 0 || mm_pagetab_count_range(&s->c.pages, rq->addr, rq->len) != 0)
			return "UNMAP: something left in the range";
		return NULL;
	}
	case MM_OP_PROTECT:
		return covered(s, rq->addr, rq->len, (int)rq->prot, false)
		           ? NULL
		           : "PROTECT: range not changed";
	case MM_OP_WIRE: {
		if (res != (long)(rq->len / PAGE_SIZE))
			return "WIRE: wrong page count";
		if (!covered(s, rq->addr, rq->len, -1, true))
			return "WIRE: range not wired";
		if (mm_pagetab_count_range(&s->c.pages, rq->addr, rq->len) != rq->len / PAGE_SIZE)
			return "WIRE: not every page resident";
		unsigned n = rq->report < res ? rq->report : (unsigned)res;
		if (s->nout != (n ? IPC_REG_WORDS + n : 1))
			return "WIRE: reply length";
		for (unsigned i = 0; i < n; i++) {
			uint64_t pa;

			if (!mm_pagetab_get(&s->c.pages, rq->addr + (uint64_t)i * PAGE_SIZE, &pa) ||
			    s->out[IPC_REG_WORDS + i] != pa)
				return "WIRE: reported frame is not the page's";
		}
		return NULL;
	}
	case MM_OP_QUERY: {
		struct vm_map_entry *e;

		if (!vm_map_lookup(&s->c.map, rq->addr, &e) || s->out[1] != e->start ||
		    s->out[2] != e->end || MM_QUERY_PROT(s->out[3]) != e->prot ||
		    MM_QUERY_WIRED(s->out[3]) != !!e->wired ||
		    s->out[4] != mm_pagetab_count_range(&s->c.pages, e->start, e->end - e->start))
			return "QUERY: reply differs from the entry";
		return NULL;
	}
	default: /* a fault: the page is resident, and mapped unless PROT_NONE */
		if (rq->op == 0) {
			uint64_t va = rq->addr & ~PAGE_MASK, pa, tpa;
			struct vm_map_entry *e;

			if (!vm_map_lookup(&s->c.map, va, &e) ||
			    !mm_pagetab_get(&s->c.pages, va, &pa) ||
			    !mmfake_lookup(&s->f, va, &tpa, NULL) || tpa != pa)
				return "fault: the page is not resident and mapped";
		}
		return NULL;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state s;
	struct input in = {data, size};
	uint8_t cfg = 0, opb;

	if (!byte(&in, &cfg))
		return 0;
	/* A pool smaller than the resident quota or larger: RAM or the quota runs out. */
	if (mmfake_init(&s.f, TASK, cfg & 1 ? 40 : 96) != 0)
		__builtin_trap();
	s.q = (struct mm_quota){.entries = 8 + (cfg >> 1) % 24, .resident = 64, .wired = 24};
	client_start(&s);
	while (byte(&in, &opb)) {
		unsigned label = labels[opb & 15];
		uint64_t mr[4], tag;
		struct mm_request rq;
		struct mmfake_snap snap;
		long res;
		int err;

		if (label == 0)
			tag = bytes(&in, 8);
		else
			tag = ipc_tag(label == FAULT_OP ? 0 : label, 4) |
			      ((opb & 16) ? IPC_TAG_CAP : 0);
		for (int i = 0; i < 4; i++)
			mr[i] = word(&in);
		if (label == EXIT_OP && !(opb & 16)) {
			client_end(&s);
			client_start(&s);
			continue;
		}
		/* Injected failures: page_alloc anywhere; enter only where the server can undo
		 * it (a fault, WIRE, MAP that replaces nothing); PROTECT ignores a refused
		 * re-entry by design (the next fault restores it). */
		if (opb & 32) {
			s.f.fail_in = (long)(mr[3] % 8);
			s.f.fail_all = opb & 64;
		}
		if (label == FAULT_OP) {
			const char *why = NULL;

			if (opb & 128)
				s.f.enter_fail_in = (long)(mr[2] % 4);
			mmfake_snap_take(&snap, &s.f, &s.c);
			res = mm_fault(&s.c, &s.f.env, mr[0], (unsigned)(mr[1] & 7), &why);
			if (res != 0 && why == NULL)
				die(&s, "fault refused with no reason", 0, mr, res);
			rq.op = 0;
			rq.addr = mr[0];
		} else {
			err = mm_decode(tag, mr, &rq);
			if (err != 0) {
				if (err > 0)
					die(&s, "decode returned a positive error", tag, mr, err);
				s.f.fail_in = -1;
				continue;
			}
			if ((opb & 128) && (rq.op == MM_OP_WIRE ||
			                    (rq.op == MM_OP_MAP && !(rq.flags & MM_MAP_FIXED))))
				s.f.enter_fail_in = (long)(mr[2] % 4);
			mmfake_snap_take(&snap, &s.f, &s.c);
			memset(s.out, 0, sizeof(s.out));
			res = mm_handle(&s.c, &s.f.env, &rq, s.out, &s.nout);
		}
		s.f.fail_in = -1;
		s.f.fail_all = false;
		s.f.enter_fail_in = -1;
		if (mmfake_check_client(&s.f, &s.c, s.msg, sizeof(s.msg)) != 0)
			die(&s, "server and page tables disagree", tag, mr, res);
		if (res < 0 && !mmfake_snap_equal(&snap, &s.f, &s.c, s.msg, sizeof(s.msg)))
			die(&s, "a failed request changed something", tag, mr, res);
		mmfake_snap_free(&snap);
		if (res >= 0) {
			const char *bad = postcondition(&s, &rq, res);

			if (bad != NULL) {
				snprintf(s.msg, sizeof(s.msg), "%s", bad);
				die(&s, "a request did not do what it says", tag, mr, res);
			}
		}
	}
	client_end(&s);
	mmfake_fini(&s.f);
	return 0;
}
