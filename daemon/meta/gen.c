/* Generation comparison and transitions; the rules are listed in gen.h.
 * Every rule is written so that the two nodes, each calling gen_compare()
 * with itself as local, reach mirrored verdicts: where a rule could fire
 * both ways at once (a cycle that only corrupt metadata can produce), the
 * answer is split brain, which keeps both sides' data. */
#include "gen.h"

#include <inttypes.h>
#include <stdio.h>

static bool in_history(const struct gen_ids *g, uint64_t id)
{
	if (id == 0)
		return false;
	for (int i = 0; i < GEN_HISTORY; i++)
		if (g->history[i] == id)
			return true;
	return false;
}

/* The LOCAL verdict if only local holds, the PEER one if only peer does. */
static enum gen_verdict pick(bool local, bool peer, enum gen_verdict if_local,
			     enum gen_verdict if_peer, enum gen_verdict otherwise)
{
	if (local && !peer)
		return if_local;
	if (peer && !local)
		return if_peer;
	return otherwise;
}

static enum gen_verdict both_created(const struct gen_side *l, const struct gen_side *p)
{
	if (l->zeroed && p->zeroed)
		return GEN_SAME;
	if (l->primary && p->primary)
		return GEN_SPLIT_BRAIN;
	/* Neither primary: nothing to copy until `primary --force`. */
	return pick(l->primary, p->primary, GEN_FULL_LOCAL_SOURCE, GEN_FULL_PEER_SOURCE,
		    GEN_SAME);
}

/* src moved on from GEN_CREATED, dst did not. */
static bool bitmap_covers_created(const struct gen_side *src, const struct gen_side *dst)
{
	return src->zeroed && dst->zeroed && src->ids.bitmap == GEN_CREATED;
}

static enum gen_verdict one_created(const struct gen_side *l, const struct gen_side *p)
{
	if (p->ids.current == GEN_CREATED)
		return bitmap_covers_created(l, p) ? GEN_BITMAP_LOCAL_SOURCE :
						     GEN_FULL_LOCAL_SOURCE;
	return bitmap_covers_created(p, l) ? GEN_BITMAP_PEER_SOURCE : GEN_FULL_PEER_SOURCE;
}

static enum gen_verdict same_current(const struct gen_side *l, const struct gen_side *p)
{
	if (!l->crashed_primary && !p->crashed_primary)
		return GEN_SAME;
	if (l->crashed_primary != p->crashed_primary)
		return l->crashed_primary ? GEN_SAME_AL_LOCAL_SOURCE : GEN_SAME_AL_PEER_SOURCE;
	if (l->primary != p->primary)
		return l->primary ? GEN_SAME_AL_LOCAL_SOURCE : GEN_SAME_AL_PEER_SOURCE;
	/* Both or neither tiebreak is the caller's bug; local is as good a
	 * guess as any and the data is the same generation either way. */
	return pick(l->tiebreak, p->tiebreak, GEN_SAME_AL_LOCAL_SOURCE, GEN_SAME_AL_PEER_SOURCE,
		    GEN_SAME_AL_LOCAL_SOURCE);
}

enum gen_verdict gen_compare(const struct gen_side *local, const struct gen_side *peer)
{
	const struct gen_ids *l = &local->ids, *p = &peer->ids;
	bool l_ahead, p_ahead;

	/* a, b */
	if (l->current == GEN_CREATED && p->current == GEN_CREATED)
		return both_created(local, peer);
	if (l->current == GEN_CREATED || p->current == GEN_CREATED)
		return one_created(local, peer);
	/* c */
	if (l->current == p->current)
		return same_current(local, peer);
	/* d, e */
	l_ahead = l->bitmap && l->bitmap == p->current;
	p_ahead = p->bitmap && p->bitmap == l->current;
	if (l_ahead || p_ahead)
		return pick(l_ahead, p_ahead, GEN_BITMAP_LOCAL_SOURCE, GEN_BITMAP_PEER_SOURCE,
			    GEN_SPLIT_BRAIN);
	/* f */
	if (l->bitmap && l->bitmap == p->bitmap)
		return GEN_SPLIT_BRAIN;
	/* g */
	l_ahead = in_history(l, p->current);
	p_ahead = in_history(p, l->current);
	if (l_ahead || p_ahead)
		return pick(l_ahead, p_ahead, GEN_FULL_LOCAL_SOURCE, GEN_FULL_PEER_SOURCE,
			    GEN_SPLIT_BRAIN);
	/* h */
	if (in_history(l, p->bitmap) || in_history(p, l->bitmap))
		return GEN_SPLIT_BRAIN;
	return GEN_UNRELATED;
}

void gen_init(struct gen_ids *g)
{
	*g = (struct gen_ids){ .current = GEN_CREATED };
}

uint64_t gen_fresh(uint64_t random)
{
	return random < GEN_FIRST_RANDOM ? random + GEN_FIRST_RANDOM : random;
}

static bool history_has(const uint64_t history[GEN_HISTORY], uint64_t id)
{
	for (int i = 0; i < GEN_HISTORY; i++)
		if (history[i] == id)
			return true;
	return false;
}

static void history_push(uint64_t history[GEN_HISTORY], uint64_t id)
{
	if (id == 0 || history_has(history, id))
		return;
	for (int i = GEN_HISTORY - 1; i > 0; i--)
		history[i] = history[i - 1];
	history[0] = id;
}

void gen_history_push(struct gen_ids *g, uint64_t id)
{
	history_push(g->history, id);
}

static bool slots_hold(const uint64_t *slot_bitmap_gen, unsigned nslots, uint64_t id)
{
	for (unsigned i = 0; i < nslots; i++)
		if (slot_bitmap_gen[i] == id)
			return true;
	return false;
}

void gen_new_current_slots(uint64_t *current, uint64_t history[GEN_HISTORY],
			   uint64_t *slot_bitmap_gen, unsigned nslots, uint32_t absent_mask,
			   uint64_t random)
{
	uint64_t fresh = gen_fresh(random);
	bool all_took = absent_mask != 0;

	/* A repeated id would make unrelated generations look related. */
	while (fresh == *current || history_has(history, fresh) ||
	       slots_hold(slot_bitmap_gen, nslots, fresh))
		fresh = gen_fresh(fresh + 1);
	for (unsigned i = 0; i < nslots; i++) {
		if (!(absent_mask & (1U << i)))
			continue;
		if (slot_bitmap_gen[i] == 0)
			slot_bitmap_gen[i] = *current;
		else
			all_took = false;
	}
	if (!all_took)
		history_push(history, *current);
	*current = fresh;
}

void gen_resync_finished_source_slot(uint64_t history[GEN_HISTORY], uint64_t *slot_bitmap_gen)
{
	history_push(history, *slot_bitmap_gen);
	*slot_bitmap_gen = 0;
}

void gen_resync_finished_target_slot(uint64_t *current, uint64_t history[GEN_HISTORY],
				     uint64_t *slot_bitmap_gen, uint64_t source_current)
{
	if (*current != source_current)
		history_push(history, *current);
	*current = source_current;
	*slot_bitmap_gen = 0;
}

void gen_adopt_history(uint64_t history[GEN_HISTORY], const uint64_t source[GEN_HISTORY])
{
	for (int i = GEN_HISTORY - 1; i >= 0; i--)
		history_push(history, source[i]);
}

void gen_new_current(struct gen_ids *g, uint64_t random)
{
	gen_new_current_slots(&g->current, g->history, &g->bitmap, 1, 1, random);
}

void gen_resync_finished_source(struct gen_ids *g)
{
	gen_resync_finished_source_slot(g->history, &g->bitmap);
}

void gen_resync_finished_target(struct gen_ids *g, const struct gen_ids *source)
{
	gen_resync_finished_target_slot(&g->current, g->history, &g->bitmap, source->current);
}

const char *gen_verdict_name(enum gen_verdict v)
{
	switch (v) {
	case GEN_SAME:
		return "same";
	case GEN_SAME_AL_LOCAL_SOURCE:
		return "activity-log-resync-to-peer";
	case GEN_SAME_AL_PEER_SOURCE:
		return "activity-log-resync-from-peer";
	case GEN_BITMAP_LOCAL_SOURCE:
		return "bitmap-resync-to-peer";
	case GEN_BITMAP_PEER_SOURCE:
		return "bitmap-resync-from-peer";
	case GEN_FULL_LOCAL_SOURCE:
		return "full-sync-to-peer";
	case GEN_FULL_PEER_SOURCE:
		return "full-sync-from-peer";
	case GEN_SPLIT_BRAIN:
		return "split-brain";
	case GEN_UNRELATED:
		return "unrelated";
	}
	return "unknown";
}

/* The generation both sides last shared before they split. */
static uint64_t split_base(const struct gen_ids *l, const struct gen_ids *p)
{
	if (l->bitmap && l->bitmap == p->bitmap)
		return l->bitmap;
	if (in_history(l, p->bitmap))
		return p->bitmap;
	if (in_history(p, l->bitmap))
		return l->bitmap;
	if (l->bitmap == p->current)
		return p->current;
	return l->current;
}

#define X	"%016" PRIx64

int gen_verdict_explain(enum gen_verdict v, const struct gen_side *local,
			const struct gen_side *peer, char *buf, size_t len)
{
	const struct gen_ids *l = &local->ids, *p = &peer->ids;

	switch (v) {
	case GEN_SAME:
		if (l->current == GEN_CREATED && !(local->zeroed && peer->zeroed))
			return snprintf(buf, len,
					"both nodes freshly created and not zeroed: nothing to sync "
					"until one is made primary with primary --force");
		return snprintf(buf, len, "in sync at generation " X, l->current);
	case GEN_SAME_AL_LOCAL_SOURCE:
		return snprintf(buf, len,
				"this node crashed as primary at generation " X
				": resync its activity-log extents to the peer",
				l->current);
	case GEN_SAME_AL_PEER_SOURCE:
		return snprintf(buf, len,
				"peer crashed as primary at generation " X
				": resync its activity-log extents from the peer",
				p->current);
	case GEN_BITMAP_LOCAL_SOURCE:
		return snprintf(buf, len,
				"this node wrote without the peer since generation " X
				": resync changed extents to the peer",
				l->bitmap);
	case GEN_BITMAP_PEER_SOURCE:
		return snprintf(buf, len,
				"peer wrote without this node since generation " X
				": resync changed extents from the peer",
				p->bitmap);
	case GEN_FULL_LOCAL_SOURCE:
		if (p->current == GEN_CREATED)
			return snprintf(buf, len, "peer is freshly created: full sync to the peer");
		return snprintf(buf, len,
				"peer's data (generation " X
				") is an ancestor of this node's: full sync to the peer",
				p->current);
	case GEN_FULL_PEER_SOURCE:
		if (l->current == GEN_CREATED)
			return snprintf(buf, len,
					"this node is freshly created: full sync from the peer");
		return snprintf(buf, len,
				"this node's data (generation " X
				") is an ancestor of the peer's: full sync from the peer",
				l->current);
	case GEN_SPLIT_BRAIN:
		if (l->current == GEN_CREATED && p->current == GEN_CREATED)
			return snprintf(buf, len,
					"split brain: both freshly created nodes are primary");
		return snprintf(buf, len,
				"split brain: both nodes wrote as primary since generation " X,
				split_base(l, p));
	case GEN_UNRELATED:
		return snprintf(buf, len,
				"unrelated data: generations " X " and " X " share no history",
				l->current, p->current);
	}
	return snprintf(buf, len, "unknown verdict %d", (int)v);
}

enum gen_rel gen_relation(uint64_t my_current, const uint64_t my_history[GEN_HISTORY],
			  const uint64_t *my_slot_gens, unsigned nslots, uint64_t their_current,
			  uint64_t their_bitmap, const uint64_t their_history[GEN_HISTORY])
{
	if (their_current == my_current)
		return GEN_REL_SAME;
	if (their_current == 0 || history_has(my_history, their_current) ||
	    slots_hold(my_slot_gens, nslots, their_current))
		return GEN_REL_OLDER;
	if (their_bitmap == my_current || history_has(their_history, my_current))
		return GEN_REL_NEWER;
	return GEN_REL_UNRELATED;
}

static bool they_hold(uint64_t id, uint64_t their_current, uint64_t their_bitmap,
		      const uint64_t their_history[GEN_HISTORY])
{
	return id && (id == their_current || id == their_bitmap || history_has(their_history, id));
}

uint64_t gen_rewind(uint64_t *current, uint64_t history[GEN_HISTORY], const uint64_t *slot_gens,
		    unsigned nslots, uint64_t their_current, uint64_t their_bitmap,
		    const uint64_t their_history[GEN_HISTORY])
{
	for (unsigned i = 0; i < nslots; i++)
		if (they_hold(slot_gens[i], their_current, their_bitmap, their_history)) {
			*current = slot_gens[i];
			return *current;
		}
	for (int i = 0; i < GEN_HISTORY; i++) {
		uint64_t id = history[i];

		if (!they_hold(id, their_current, their_bitmap, their_history))
			continue;
		*current = id;
		for (int j = 0; j < GEN_HISTORY; j++)
			history[j] = i + 1 + j < GEN_HISTORY ? history[i + 1 + j] : 0;
		return id;
	}
	return 0;
}

const char *gen_rel_name(enum gen_rel r)
{
	static const char *const names[] = { "same", "older", "newer", "unrelated" };

	return r <= GEN_REL_UNRELATED ? names[r] : "?";
}
