/* What the simulated NBD client wrote, block by block (4 KiB): every
 * version submitted in order, and the newest one known durable (an acked
 * FUA write, or an acked write that an acked FLUSH followed).  Oracle 2
 * asks whether a block holds a value the rules allow: the durable version
 * or any submitted after it.  Payloads describe themselves (block number
 * and write id in every block), so a read tells which version it sees. */
#ifndef BLKREP_SIMHIST_H
#define BLKREP_SIMHIST_H

#include <stdbool.h>
#include <stdint.h>

#define HIST_BLOCK	4096U

struct simhist;

struct simhist *simhist_new(uint64_t blocks);
void simhist_free(struct simhist *h);

/* A new version of block b (id 0: zeros); returns its index. */
unsigned simhist_submit(struct simhist *h, uint64_t b, uint64_t id);
/* The version's write was acknowledged; durable at once if fua. */
void simhist_acked(struct simhist *h, uint64_t b, unsigned idx, bool fua);
/* A FLUSH was sent: it covers every version acked so far; returns a
 * ticket for simhist_flushed() once the FLUSH is acknowledged. */
uint64_t simhist_flush_sent(struct simhist *h);
void simhist_flushed(struct simhist *h, uint64_t ticket);
/* The connection broke (perhaps the node crashed): versions acked and not
 * yet flushed stay possible but no later FLUSH makes them durable. */
void simhist_forget_pending(struct simhist *h);

/* The client writes to node's export from now on: acknowledgements
 * record it. */
void simhist_set_writer(struct simhist *h, int node);
/* The writer is (not) connected to its peer.  A write submitted while it
 * is alone and acked before it connects again was accepted alone. */
void simhist_set_alone(struct simhist *h, bool alone);
/* Three nodes: the writer misses one of its peers at least (after
 * simhist_set_alone(), which sets it to alone).  Versions acked or made
 * durable meanwhile count as acked or made durable alone for
 * simhist_allowed_but(); simhist_alone_acks() still counts those acked
 * with no peer at all (oracle 4). */
void simhist_set_partial(struct simhist *h, bool partial);
/* How many versions were acked alone so far. */
uint64_t simhist_alone_acks(const struct simhist *h);
/* How many blocks node's export acknowledged writes of so far (Q1). */
uint64_t simhist_acks_by(const struct simhist *h, int node);
/* A node became primary reading blk for block b, media on its disk's
 * media (what a power loss could leave): from now on the older of their
 * versions, if older than the durable one, is the oldest allowed (or, if
 * either is no version, anything until the next durable write).  Durable
 * versions it lacks are gone (the failover lost them; a save file must
 * keep them, oracle 3). */
void simhist_rebase(struct simhist *h, uint64_t b, const uint8_t *blk, const uint8_t *media);
/* Which version blk is for block b: its index (later index: submitted
 * later) and the node that acknowledged it (-1: never acknowledged).
 * False for bytes that are no version (torn, zeros of the start are
 * version 0). */
bool simhist_which(const struct simhist *h, uint64_t b, const uint8_t *blk, unsigned *idx,
		   int *acked_by);

/* Fills one block of write id's payload. */
void simhist_fill(uint8_t *blk, uint64_t b, uint64_t id);
/* Which version block b holds: 0 for zeros, the write id, or -1 for
 * bytes no write put there (torn, or another block's). */
int64_t simhist_decode(const uint8_t *blk, uint64_t b);

/* Whether blk is allowed for block b now: each 512-byte sector of it
 * holds that sector of an allowed version (a write never acknowledged
 * may be torn at sector granularity).  If not, why[] says what was
 * expected. */
bool simhist_allowed(const struct simhist *h, uint64_t b, const uint8_t *blk, char *why,
		     unsigned whylen);
/* The same, but durable versions node skip acknowledged alone (newest
 * first) need not be there: for the other node, promoted while cut off
 * from skip (skip -1: simhist_allowed). */
bool simhist_allowed_but(const struct simhist *h, uint64_t b, const uint8_t *blk, int skip,
			 char *why, unsigned whylen);

#endif
