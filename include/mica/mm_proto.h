/*
 * The MM protocol: what a task asks of the memory server, over IPC (`call` on
 * the server endpoint, which every task has in slot MM_SERVER_SLOT). docs/IPC.md
 * describes each request with its errors; user/mm.h wraps them.
 *
 * Request: tag label MM_OP_*, words as listed per op (MR0.. in registers, more
 * in the IPC buffer). Reply: tag label MM_REPLY; MR0 is the result (>= 0) or a
 * negative MICA_E* error; further results follow in MR1...
 */
#ifndef MICA_MM_PROTO_H
#define MICA_MM_PROTO_H

#include <stdint.h>

#define MM_SERVER_SLOT 4 /* every task's capability to the memory server */

#define MM_OP_MAP 0x101     /* MR0 hint, MR1 length, MR2 prot | flags << 8, MR3 align -> MR0 addr */
#define MM_OP_UNMAP 0x102   /* MR0 addr, MR1 length -> 0 */
#define MM_OP_PROTECT 0x103 /* MR0 addr, MR1 length, MR2 prot -> 0 */
#define MM_OP_WIRE 0x104    /* MR0 addr, MR1 length, MR2 max frames to report (<= MM_WIRE_REPORT)
			       -> MR0 pages wired; the physical address of page i in mr[4 + i] */
#define MM_OP_UNWIRE 0x105  /* MR0 addr, MR1 length -> 0 */
#define MM_OP_QUERY 0x106   /* MR0 addr -> MR0 0, MR1 start, MR2 end, MR3 attributes (below),
			       mr[4] resident pages */
#define MM_OP_INFO 0x107    /* -> MR0 0, MR1 free frames, MR2 total frames, MR3 resident pages;
			       mr[4] wired pages, mr[5] entries, mr[6] kernel arena bytes in use,
			       mr[7] frames the server holds for itself (its heap, and pages lent
			       to the kernel for page tables): they come back to no client;
			       mr[8..10] the task's quotas: entries, resident pages, wired pages */
#define MM_OP_SHARE 0x109   /* MR0 addr, MR1 length, MR2 prot | flags << 8, MR3 hint in the target;
			       the message carries the target's share token (IPC_TAG_CAP)
			       -> MR0 the address in the target */
#define MM_OP_MAP_DEVICE 0x10a /* MR0 physical address, MR1 length, MR2 prot -> MR0 address;
				  needs a device grant for that range (see docs/IPC.md) */
#define MM_REPLY 0x1ff

/* A share token names a task to the server: a send capability to the server
 * endpoint whose badge is the task's badge with this bit set. Whoever holds a
 * task's token may share memory into it. */
#define MM_TOKEN_BIT (1UL << 62)

#define MM_WIRE_REPORT 56 /* physical addresses one WIRE reply can carry */

/* prot: the usual three bits */
#define MM_PROT_NONE 0x0
#define MM_PROT_READ 0x1
#define MM_PROT_WRITE 0x2
#define MM_PROT_EXEC 0x4

/* MAP flags */
#define MM_MAP_FIXED 0x01           /* exactly at hint, replacing what is there */
#define MM_MAP_FIXED_NOREPLACE 0x02 /* exactly at hint; -EEXIST if anything is there */
#define MM_MAP_POPULATE 0x04        /* allocate and map every page now */
#define MM_MAP_WIRE 0x08            /* populate and pin (like WIRE afterwards) */
#define MM_MAP_GUARD 0x10           /* reserve the range; any access faults */
#define MM_MAP_FLAGS_ALL 0x1f

/* QUERY attributes word */
#define MM_QUERY_PROT(a) ((a)&0xff)
#define MM_QUERY_MAXPROT(a) (((a) >> 8) & 0xff)
#define MM_QUERY_FLAGS(a) (((a) >> 16) & 0xffff) /* MM_MAP_GUARD when a guard */
#define MM_QUERY_WIRED(a) (((a) >> 32) & 1)

#endif
