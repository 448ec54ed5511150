/* The primary's quorum (issue 17; see primary.h): a write is acknowledged
 * only while a majority of the resource's voters (this node, its data
 * peers, its witnesses) durably holds this node's current generation.
 * Losing a data peer steps the generation at once, with that peer behind
 * (lanes_write_alone()): the step is on disk here and told to every
 * connected voter (MSG_GEN, then a FLUSH), and writes wait until a
 * majority recorded it.  So a node that missed acknowledged writes always
 * meets a voter that knows a newer generation.  A step that no majority
 * recorded and no data peer took is undone if this node steps down
 * (another was promoted meanwhile: the resync then runs from the common
 * generation, no split brain), and replaced rather than stacked by the
 * next one.  The decisions are here; lanes.c acts on them. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/meta/gen.h"
#include "daemon/meta/local.h"
#include "daemon/repl/primary_int.h"
#include "daemon/repl/sync.h"
#include "daemon/repl/witlink.h"
#include "proto/msg.h"
#include "utils/log.h"
#include "utils/strbuf.h"

bool pq_enabled(const struct primary *p)
{
	return config_quorum(p->cfg) == CONFIG_QUORUM_MAJORITY && !p->no_quorum;
}

void primary_set_witnesses(struct primary *p, struct witlink *const *w, unsigned n)
{
	for (p->nwits = 0; p->nwits < n && p->nwits < PRIMARY_LANES_MAX; p->nwits++)
		p->wits[p->nwits] = w[p->nwits];
}

unsigned primary_voters(const struct primary *p)
{
	return config_node_count(p->cfg);
}

unsigned primary_voters_connected(const struct primary *p)
{
	unsigned n = 1;

	LANES_FOR(p, l)
		n += l->link != NULL;
	for (unsigned i = 0; i < p->nwits; i++)
		n += witlink_up(p->wits[i]);
	return n;
}

bool primary_quorum(const struct primary *p)
{
	return config_quorum(p->cfg) != CONFIG_QUORUM_MAJORITY ||
	       2 * primary_voters_connected(p) > primary_voters(p);
}

/* "connected to 1 of 3 voters (alpha); a majority is 2", or "". */
void primary_quorum_why(const struct primary *p, char *buf, size_t len)
{
	struct strbuf o = STRBUF_INIT(buf, len);

	*buf = '\0';
	if (primary_quorum(p))
		return;
	strbuf_printf(&o, "connected to %u of %u voters (%s", primary_voters_connected(p),
		      primary_voters(p), p->sb->node);
	LANES_FOR(p, l)
		if (l->link)
			strbuf_printf(&o, ", %s", l->name);
	for (unsigned i = 0; i < p->nwits; i++)
		if (witlink_up(p->wits[i]))
			strbuf_printf(&o, ", %s", witlink_name(p->wits[i]));
	strbuf_printf(&o, "); a majority is %u", primary_voters(p) / 2 + 1);
}

/* Voters that durably hold generation gen, this node counted. */
static unsigned pq_confirmed(const struct primary *p, uint64_t gen)
{
	unsigned n = 1;

	LANES_FOR(p, l) {
		/* A sync peer acknowledges no write before it applied (and
		 * wrote) the MSG_GEN before it; an async one is counted once a
		 * FLUSH after it came back. */
		bool async = l->has_mode ? l->async : p->sb->mode == META_MODE_ASYNC;

		if (!l->link || !l->synced || (async && l->flushed < p->gen_epoch))
			continue;
		/* With three data nodes or more a secondary follows an
		 * MSG_GEN only when in step (sync_peer_follows() mirrors it). */
		n += !p->multi || sync_hello(l->sync)->gen_current == gen;
	}
	for (unsigned i = 0; i < p->nwits; i++)
		n += witlink_confirmed(p->wits[i]) == gen;
	return n;
}

/* A data peer left and its absence is not in a generation yet. */
bool pq_step_due(const struct primary *p)
{
	LANES_FOR(p, l)
		if (!l->link && !l->gen_moved)
			return true;
	return false;
}

enum pq_verdict pq_verdict(const struct primary *p)
{
	if (!p->role || !pq_enabled(p))
		return PQ_GO;
	if (!primary_quorum(p))
		return config_on_no_quorum(p->cfg) == CONFIG_NOQ_IO_ERROR ? PQ_FAIL : PQ_HOLD;
	if (p->pend_active || pq_step_due(p))
		return PQ_HOLD;
	return 2 * pq_confirmed(p, p->sb->gen.current) > primary_voters(p) ? PQ_GO : PQ_HOLD;
}

bool primary_io_suspended(const struct primary *p)
{
	return pq_verdict(p) == PQ_HOLD;
}

bool primary_quorum_blocks(const struct primary *p)
{
	return pq_verdict(p) != PQ_GO;
}

enum gen_rel primary_relation(const struct primary *p, const struct msg_hello *h)
{
	uint64_t slots[META_PEERS_MAX];

	for (unsigned i = 0; i < META_PEERS_MAX; i++)
		slots[i] = p->sb->slot[i].bitmap_gen;
	return gen_relation(p->sb->gen.current, p->sb->gen.history, slots, META_PEERS_MAX,
			    h->gen_current, h->gen_bitmap, h->gen_history);
}

/* Tells every connected witness the generation now, from the one it
 * holds: only one this node moved on from (a witness that holds a newer
 * or an unrelated one saw another primary: the node decides). */
void pq_tell_witnesses(struct primary *p)
{
	uint64_t told = p->sb->gen.current;

	for (unsigned i = 0; i < p->nwits; i++) {
		struct witlink *w = p->wits[i];
		uint64_t has = witlink_confirmed(w);

		if (!witlink_up(w) || has == told)
			continue;
		if (primary_relation(p, witlink_hello(w)) == GEN_REL_OLDER)
			witlink_tell(w, has, told);
	}
}

/* A step under quorum (lanes_write_alone()), already on disk: until a
 * majority recorded it, writes wait, and the generations before it are
 * kept to go back to if this node steps down (pq_revert()). */
void pq_stepped(struct primary *p, const struct meta_sb *before)
{
	/* The generation to go back to: the last one a majority recorded or
	 * a data peer took (that one cannot be undone). */
	if (!p->pend_active || p->pend_shared) {
		p->pend_shared = false;
		p->pend = before->gen;
		for (unsigned i = 0; i < META_PEERS_MAX; i++)
			p->pend_slots[i] = before->slot[i].bitmap_gen;
	}
	p->pend_active = true;
	p->gen_epoch = p->epoch;
	log_info("generation %016" PRIx64 ": writes wait until a majority of the voters "
		 "records it", p->sb->gen.current);
}

/* The step, once a majority recorded it: true if it did. */
bool pq_apply(struct primary *p)
{
	if (2 * pq_confirmed(p, p->sb->gen.current) <= primary_voters(p))
		return false;
	p->pend_active = false;
	log_info("generation %016" PRIx64 " recorded by a majority of the voters",
		 p->sb->gen.current);
	return true;
}

/* A step no majority recorded is undone (stepping down): nothing was
 * acknowledged under it, and a node promoted meanwhile holds the
 * generation before it, so the resync runs from there without a split
 * brain.  The bitmaps keep their bits. */
/* The generations before the first step no majority recorded, in memory. */
void pq_restore(struct primary *p)
{
	p->sb->gen = p->pend;
	for (unsigned i = 0; i < META_PEERS_MAX; i++)
		p->sb->slot[i].bitmap_gen = p->pend_slots[i];
}

void primary_drop_pending(struct primary *p)
{
	uint64_t gen = p->sb->gen.current;

	if (!p->pend_active)
		return;
	/* Even if a data peer took it, going back makes this node its
	 * ancestor, never a rival of the node promoted meanwhile. */
	p->pend_active = false;
	pq_restore(p);
	if (local_save_sb(p->loc) == 0)
		log_info("generation %016" PRIx64 " was never recorded by a majority: back to "
			 "%016" PRIx64, gen, p->sb->gen.current);
}

/* The log line when quorum is lost or back. */
void pq_log(struct primary *p, enum pq_verdict v)
{
	char why[256];

	if (v != PQ_GO && !primary_quorum(p) && !p->quorum_lost_logged) {
		primary_quorum_why(p, why, sizeof(why));
		log_warn("quorum lost: %s; writes %s (on-no-quorum = %s)", why,
			 v == PQ_FAIL ? "fail" : "are suspended",
			 config_no_quorum_name(config_on_no_quorum(p->cfg)));
		p->quorum_lost_logged = true;
	} else if (v == PQ_GO && p->quorum_lost_logged) {
		log_info("quorum is back: writes go on");
		p->quorum_lost_logged = false;
	}
}

/* --quorum-override ends once this node is connected to a majority. */
void pq_override_ends(struct primary *p)
{
	if (p->no_quorum && 2 * primary_voters_connected(p) > primary_voters(p)) {
		p->no_quorum = false;
		log_info("quorum is back: writes need a majority again");
	}
}

void primary_quorum_override(struct primary *p)
{
	p->no_quorum = config_quorum(p->cfg) == CONFIG_QUORUM_MAJORITY && !primary_quorum(p);
}
