/* Generation identifiers and the decision at connect: who resyncs whom,
 * and how much (DRBD's UUID logic, simplified).  Pure code: no I/O, no
 * randomness of its own (callers pass random values in), no printing.
 *
 * Each node keeps
 *	current   the generation its data is at;
 *	bitmap    the generation its dirty bitmap is relative to: set when
 *	          the node moved on without its peer, 0 when it has not;
 *	history   older generations this node's data descends from, newest
 *	          first, 0 for an empty slot.
 * A new current id is made when a primary starts writing without its
 * peer, including promotion while disconnected (gen_new_current()).
 * While the pair is connected the ids do not change: both stay equal.
 *
 * The resync set.  A verdict says who the source is and whether a bitmap
 * is enough; the extents to copy are the union of both sides' bitmaps, and
 * a node that crashed as primary folds its activity-log extents into its
 * bitmap before it compares, because writes in flight at the crash may
 * have reached either side.  The verdict speaks about data only: a node
 * that is primary and would become a resync target must refuse the
 * connection; that is the caller's policy. */
#ifndef BLKREP_DAEMON_GEN_H
#define BLKREP_DAEMON_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_HISTORY	4
#define GEN_CREATED	4	/* the well-known id of a freshly created node */
#define GEN_FIRST_RANDOM 16	/* ids below this are reserved */

struct gen_ids {
	uint64_t current;
	uint64_t bitmap;		/* 0: none */
	uint64_t history[GEN_HISTORY];	/* newest first, 0: empty */
};

/* What one side knows about itself at connect (the peer's comes from its
 * HELLO). */
struct gen_side {
	struct gen_ids ids;
	bool crashed_primary;	/* went down uncleanly as primary */
	bool primary;		/* primary now */
	bool zeroed;		/* created --zeroed: its GEN_CREATED data is all zeros */
	/* Set on exactly one side of the pair, by a rule both nodes apply
	 * alike (the daemon: the node whose name sorts first).  Decides only
	 * what no generation can: who is the source when both crashed as
	 * primary and neither is primary now. */
	bool tiebreak;
};

enum gen_verdict {
	GEN_SAME,			/* nothing to do */
	GEN_SAME_AL_LOCAL_SOURCE,	/* resync activity-log extents to the peer */
	GEN_SAME_AL_PEER_SOURCE,	/* resync activity-log extents from the peer */
	GEN_BITMAP_LOCAL_SOURCE,	/* resync dirty extents to the peer */
	GEN_BITMAP_PEER_SOURCE,		/* resync dirty extents from the peer */
	GEN_FULL_LOCAL_SOURCE,		/* copy everything to the peer */
	GEN_FULL_PEER_SOURCE,		/* copy everything from the peer */
	GEN_SPLIT_BRAIN,		/* both wrote as primary: keep both, connect nothing */
	GEN_UNRELATED,			/* no common history: refuse */
};

/* Compares the two sides at connect.  Rules, first match wins:
 *  a. both at GEN_CREATED: GEN_SAME if both are zeroed; else a full sync
 *     from the one that is primary if exactly one is; split brain if both
 *     are; else GEN_SAME, and the pair waits (both inconsistent) until an
 *     operator runs `primary --force` on one of them.
 *  b. one side at GEN_CREATED: the other side is the source; a bitmap
 *     resync if both were created zeroed and the other's bitmap is still
 *     relative to GEN_CREATED (an early `primary --force` on a zeroed
 *     pair), else a full sync.
 *  c. equal current ids: an activity-log resync from the side that crashed
 *     as primary (both crashed: from the one that is primary now, else
 *     from the tiebreak side); otherwise GEN_SAME.
 *  d. local bitmap == peer current: the local side moved on alone:
 *     GEN_BITMAP_LOCAL_SOURCE.
 *  e. peer bitmap == local current: GEN_BITMAP_PEER_SOURCE.
 *  f. equal non-zero bitmaps: both moved on from the same base:
 *     GEN_SPLIT_BRAIN.
 *  g. local history holds peer current: GEN_FULL_LOCAL_SOURCE; peer
 *     history holds local current: GEN_FULL_PEER_SOURCE.
 *  h. one side's bitmap is in the other's history: split brain further
 *     back: GEN_SPLIT_BRAIN.
 *  i. GEN_UNRELATED.
 * The rules are symmetric: swapping local and peer swaps LOCAL and PEER in
 * the verdict, so both nodes reach the same decision. */
enum gen_verdict gen_compare(const struct gen_side *local, const struct gen_side *peer);

/* The ids of a freshly created node: current GEN_CREATED, nothing else. */
void gen_init(struct gen_ids *g);

/* Turns a random 64-bit value into a usable fresh id (never one of the
 * reserved ids below GEN_FIRST_RANDOM). */
uint64_t gen_fresh(uint64_t random);

/* The node starts a new generation without its peer (a primary's first
 * write after losing the peer, or promotion while disconnected).  If no
 * bitmap id is set, the bitmap becomes relative to the old current id;
 * else the old current id goes into history and the bitmap keeps
 * accumulating from its older base.  The new current id is
 * gen_fresh(random), stepped past any id g already holds. */
void gen_new_current(struct gen_ids *g, uint64_t random);

/* Pushes id onto the history (newest first), dropping the oldest.  0 and
 * an id already in the history are not pushed. */
void gen_history_push(struct gen_ids *g, uint64_t id);

/* N peers: a node keeps one bitmap id per peer slot (slot_bitmap_gen[i],
 * 0: none) beside its node-wide current id and history.  gen_compare()
 * still compares two nodes: the caller composes a struct gen_ids from its
 * current, the bitmap id of the slot for that peer, and its history.
 *
 * The node starts a new generation without the peers in absent_mask (bit
 * i: slot i).  Each such slot whose bitmap id is 0 gets the old current id
 * (its bitmap is relative to it from now on).  The old current id goes
 * into the history unless every absent slot took it (with one peer this
 * is gen_new_current() exactly); an id already there is not pushed
 * twice.  The new current id is gen_fresh(random), stepped past any id
 * the node holds (current, history, any slot's). */
void gen_new_current_slots(uint64_t *current, uint64_t history[GEN_HISTORY],
			   uint64_t *slot_bitmap_gen, unsigned nslots, uint32_t absent_mask,
			   uint64_t random);

/* A resync to the peer of one slot finished on the source side: that
 * slot's bitmap id goes into the history and is cleared; the other slots
 * keep theirs. */
void gen_resync_finished_source_slot(uint64_t history[GEN_HISTORY], uint64_t *slot_bitmap_gen);

/* A resync from the peer of one slot finished on the target side: the
 * target takes the source's current id, its old current id goes into the
 * history, and its slot for the source is cleared; the other slots keep
 * theirs. */
void gen_resync_finished_target_slot(uint64_t *current, uint64_t history[GEN_HISTORY],
				     uint64_t *slot_bitmap_gen, uint64_t source_current);

/* A resync target, now holding the source's data, also descends from the
 * generations in the source's history: those it lacks join its own (so
 * that a step it skipped, joining by a bitmap resync, is known as its
 * ancestor when it meets a node still at that step). */
void gen_adopt_history(uint64_t history[GEN_HISTORY], const uint64_t source[GEN_HISTORY]);

/* A resync finished on the source side: the bitmap id goes into history
 * and the bitmap id is cleared. */
void gen_resync_finished_source(struct gen_ids *g);

/* A resync finished on the target side: it takes the source's current id,
 * its own old current id goes into history, the bitmap id is cleared. */
void gen_resync_finished_target(struct gen_ids *g, const struct gen_ids *source);

/* Quorum: where another voter's generation stands against this node's.
 * OLDER: theirs is 0 (a witness that saw none yet) or one this node moved on
 * from (its history or a slot's bitmap id); NEWER: they moved on from this
 * node's current (their history or their bitmap id for this node holds it);
 * UNRELATED: neither, both moved on since a common generation (or never
 * shared one). */
enum gen_rel { GEN_REL_SAME, GEN_REL_OLDER, GEN_REL_NEWER, GEN_REL_UNRELATED };
enum gen_rel gen_relation(uint64_t my_current, const uint64_t my_history[GEN_HISTORY],
			  const uint64_t *my_slot_gens, unsigned nslots, uint64_t their_current,
			  uint64_t their_bitmap, const uint64_t their_history[GEN_HISTORY]);
const char *gen_rel_name(enum gen_rel r);

/* A node that steps down under quorum for one whose generation is
 * unrelated to its own (it moved on alone, and no majority recorded that:
 * the other's line is the one that counts) goes back to the newest
 * generation it moved on from that the other also descends from (their
 * current, bitmap id or history): a slot's bitmap id first (the step that
 * left that peer behind, newer than the history), then the history.  Its
 * own changes since stay in its bitmaps, for the resync.  Returns that
 * generation, or 0 (none shared: nothing changed). */
uint64_t gen_rewind(uint64_t *current, uint64_t history[GEN_HISTORY], const uint64_t *slot_gens,
		    unsigned nslots, uint64_t their_current, uint64_t their_bitmap,
		    const uint64_t their_history[GEN_HISTORY]);

/* Name of a verdict for logs and status ("same", "split-brain", ...). */
const char *gen_verdict_name(enum gen_verdict v);

/* One line explaining the verdict for logs and status, e.g. "split brain:
 * both nodes wrote as primary since generation 1f2e...".  Writes into
 * buf like snprintf() and returns what snprintf() returns. */
int gen_verdict_explain(enum gen_verdict v, const struct gen_side *local,
			const struct gen_side *peer, char *buf, size_t len);

#endif
