/*
 * TLB shootdown through the MM protocol, as a multi-threaded program sees it.
 * The task has two threads on two harts. The replacer asks the server to map
 * a fresh page over MMTEST_SHOOT_VA (MAP FIXED: the old page is unmapped and
 * its translation removed) and, once the server has replied, publishes the
 * round. The reader's hart still caches the old translation, because the
 * reader used it last and has stayed in the address space since, spinning on
 * the round counter. Its next access must fault: a fresh page reads zero,
 * and the fault makes the page resident, which INFO shows. An access through
 * a stale TLB entry instead reads the old page (which holds the previous
 * round's number) and leaves the resident count as it was.
 *
 * The SHARE flavour puts one frame in two tasks whose readers spin on two
 * harts, and replaces it in both maps each round; it checks by value alone.
 */
#include "user/tests/mm_shoot.h"

#include <stdbool.h>
#include <stdio.h>

#include "mica/param.h"
#include "user/mica.h"
#include "user/mm.h"
#include "user/tests/mm_test.h"

/* Written by one thread each, read by the other. */
static struct {
	volatile uint64_t round;    /* replacer: the page was replaced for this round */
	volatile uint64_t resident; /* replacer: our resident pages right after it */
	volatile long error;        /* replacer: a request that failed, or 0 */
	volatile uint64_t pad[5];   /* the reader's words on their own cache line */
	volatile uint64_t seen;     /* reader: rounds checked */
	volatile uint64_t failed;   /* reader: it gave up; the replacer stops too */
} shoot;

static long pin(unsigned hart)
{
	unsigned h = ~0u;
	long r = mica_thread_affinity(1UL << hart, &h);
	return r < 0 ? r : h == hart ? 0 : -MICA_EIO;
}

/* Everything stored before is visible before `value` is in `word`. */
static void publish(volatile uint64_t *word, uint64_t value)
{
	__asm__ volatile("fence rw,w" ::: "memory");
	*word = value;
}

/* Spin until the round counter moves on from `r`; what was published before
 * it is visible on return. Returns the new value (r + 1, or ~0 to stop). */
static uint64_t await_round(volatile uint64_t *round, uint64_t r)
{
	uint64_t next;
	while ((next = *round) == r)
		__asm__ volatile("" ::: "memory");
	__asm__ volatile("fence r,rw" ::: "memory");
	return next;
}

void mm_shoot_replacer(unsigned hart)
{
	long err = pin(hart);
	for (uint64_t r = 1; r <= MMTEST_SHOOT_ROUNDS && !err; r++) {
		/* Wait until the reader has checked the last round and used the
		 * page's translation again (or gave up). */
		while (shoot.seen != r - 1 && !shoot.failed)
			__asm__ volatile("" ::: "memory");
		if (shoot.failed)
			return;
		void *got = 0;
		struct mm_info_result info;
		err = mm_map((void *)MMTEST_SHOOT_VA, PAGE_SIZE, MM_PROT_READ | MM_PROT_WRITE,
		             MM_MAP_FIXED, 0, &got);
		if (!err && got != (void *)MMTEST_SHOOT_VA)
			err = -MICA_EFAULT;
		if (!err)
			err = mm_info(&info);
		if (!err) {
			shoot.resident = info.resident;
			publish(&shoot.round, r);
		}
	}
	if (err) {
		shoot.error = err;
		publish(&shoot.round, ~0ULL); /* the reader stops waiting */
	}
}

int mm_shoot_reader(unsigned hart)
{
	volatile uint64_t *page = (volatile uint64_t *)MMTEST_SHOOT_VA;
	struct mm_info_result info;
	long err = pin(hart);
	/* Our stack for the INFO call is resident before the counting starts. */
	if (!err)
		err = mm_info(&info);
	uint64_t r = 0, stale = 0, bad_round = 0, got = 0, resident = 0, want = 0;
	while (!err && r < MMTEST_SHOOT_ROUNDS) {
		uint64_t next = await_round(&shoot.round, r);
		if (next != r + 1)
			break; /* the replacer stopped: its error says why */
		r = next;
		uint64_t v = *page; /* must fault: the page is new */
		*page = r;
		err = mm_info(&info);
		if (!err && (v != 0 || info.resident != shoot.resident + 1)) {
			if (!stale++) {
				bad_round = r;
				got = v;
				resident = info.resident;
				want = shoot.resident + 1;
			}
		}
		/* Through the translation the fault made: our hart caches it now. */
		if (!err && *page != r)
			err = -MICA_EFAULT;
		shoot.seen = r;
	}
	if (err || stale)
		shoot.failed = 1;
	bool ok = !err && !shoot.error && !stale && r == MMTEST_SHOOT_ROUNDS;
	printf("UTEST mm_shootdown_via_server_hart%u: %s", hart, ok ? "PASS\n" : "FAIL ");
	if (!ok)
		printf("(%llu of %llu rounds; reader error %ld, replacer error %ld; %llu stale "
		       "accesses, the first in round %llu: read %llu, resident %llu, want 0 and "
		       "%llu)\n",
		       (unsigned long long)r, (unsigned long long)MMTEST_SHOOT_ROUNDS, err,
		       (long)shoot.error, (unsigned long long)stale, (unsigned long long)bad_round,
		       (unsigned long long)got, (unsigned long long)resident,
		       (unsigned long long)want);
	return !ok;
}

/* The SHARE flavour: the state both tasks see, in a page the replacer maps
 * and shares into the peer before the first round. */
struct share_status {
	volatile uint64_t round; /* replacer: both views of the page hold this round */
	volatile long error;     /* replacer: a request that failed; the readers stop */
	volatile uint64_t pad[6];
	struct {
		volatile uint64_t seen; /* rounds this reader checked */
		volatile uint64_t failed;
		volatile uint64_t pad[6];
	} reader[2];
};

static struct share_status *const share_st = (struct share_status *)MMTEST_SHOOT_STATUS_VA;

void mm_shoot_share_replacer(unsigned hart)
{
	long err = pin(hart);
	void *got;
	if (!err)
		err =
		    mm_map((void *)MMTEST_SHOOT_STATUS_VA, PAGE_SIZE, MM_PROT_READ | MM_PROT_WRITE,
		           MM_MAP_FIXED_NOREPLACE | MM_MAP_POPULATE, 0, &got);
	if (!err)
		err = mm_share((void *)MMTEST_SHOOT_STATUS_VA, PAGE_SIZE, MMTEST_TOKEN_SLOT,
		               (void *)MMTEST_SHOOT_STATUS_VA, MM_PROT_READ | MM_PROT_WRITE,
		               MM_MAP_FIXED_NOREPLACE, &got);
	if (err)
		return; /* the readers time out waiting for the status page */
	volatile uint64_t *page = (volatile uint64_t *)MMTEST_SHOOT_VA;
	for (uint64_t r = 1; r <= MMTEST_SHOOT_ROUNDS && !err; r++) {
		while ((share_st->reader[0].seen != r - 1 || share_st->reader[1].seen != r - 1) &&
		       !share_st->reader[0].failed && !share_st->reader[1].failed)
			__asm__ volatile("" ::: "memory");
		if (share_st->reader[0].failed || share_st->reader[1].failed) {
			err = -MICA_EIO; /* a reader gave up: release the other */
			break;
		}
		/* The old frame leaves our map here and the peer's below; it
		 * keeps round r - 1, which a stale translation would show. */
		err = mm_map((void *)MMTEST_SHOOT_VA, PAGE_SIZE, MM_PROT_READ | MM_PROT_WRITE,
		             MM_MAP_FIXED | MM_MAP_POPULATE, 0, &got);
		if (!err) {
			*page = r;
			err = mm_share((void *)MMTEST_SHOOT_VA, PAGE_SIZE, MMTEST_TOKEN_SLOT,
			               (void *)MMTEST_SHOOT_VA, MM_PROT_READ, MM_MAP_FIXED, &got);
		}
		if (!err)
			publish(&share_st->round, r);
	}
	if (err) {
		share_st->error = err;
		publish(&share_st->round, ~0ULL); /* the readers stop waiting */
	}
}

int mm_shoot_share_reader(unsigned idx, unsigned hart)
{
	volatile uint64_t *page = (volatile uint64_t *)MMTEST_SHOOT_VA;
	long err = pin(hart);
	bool mapped = !err && mmtest_wait_mapped((volatile char *)MMTEST_SHOOT_STATUS_VA);
	if (!err && !mapped)
		err = -MICA_ENOENT; /* the status page never came */
	uint64_t r = 0, stale = 0, bad_round = 0, got = 0;
	while (!err && r < MMTEST_SHOOT_ROUNDS) {
		uint64_t next = await_round(&share_st->round, r);
		if (next != r + 1)
			break;
		r = next;
		uint64_t v = *page;
		if (v != r && !stale++) {
			bad_round = r;
			got = v;
		}
		share_st->reader[idx].seen = r;
	}
	if (mapped && (err || stale))
		share_st->reader[idx].failed = 1;
	long replacer_err = mapped ? share_st->error : 0;
	bool ok = !err && !replacer_err && !stale && r == MMTEST_SHOOT_ROUNDS;
	printf("UTEST mm_shootdown_share_%s_hart%u: %s", idx ? "peer" : "owner", hart,
	       ok ? "PASS\n" : "FAIL ");
	if (!ok)
		printf("(%llu of %llu rounds; reader error %ld, replacer error %ld; %llu stale "
		       "reads, the first in round %llu read %llu)\n",
		       (unsigned long long)r, (unsigned long long)MMTEST_SHOOT_ROUNDS, err,
		       replacer_err, (unsigned long long)stale, (unsigned long long)bad_round,
		       (unsigned long long)got);
	return !ok;
}
