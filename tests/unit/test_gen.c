/* Unit tests for daemon/gen: every rule of gen_compare() on histories
 * built the way the daemon builds them, through the transition functions
 * (a pair that stays in sync, a primary that writes alone, a secondary
 * promoted behind its primary's back, crashes), plus the symmetry that
 * lets both nodes reach the same decision. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/meta/gen.h"

/* Random values as the daemon would draw them. */
#define R1	0x6a09e667f3bcc908ULL
#define R2	0xbb67ae8584caa73bULL
#define R3	0x3c6ef372fe94f82bULL
#define R4	0xa54ff53a5f1d36f1ULL
#define R5	0x510e527fade682d1ULL

static struct gen_side created(bool zeroed)
{
	struct gen_side s = { .zeroed = zeroed };

	gen_init(&s.ids);
	return s;
}

static enum gen_verdict mirror(enum gen_verdict v)
{
	switch (v) {
	case GEN_SAME_AL_LOCAL_SOURCE:
		return GEN_SAME_AL_PEER_SOURCE;
	case GEN_SAME_AL_PEER_SOURCE:
		return GEN_SAME_AL_LOCAL_SOURCE;
	case GEN_BITMAP_LOCAL_SOURCE:
		return GEN_BITMAP_PEER_SOURCE;
	case GEN_BITMAP_PEER_SOURCE:
		return GEN_BITMAP_LOCAL_SOURCE;
	case GEN_FULL_LOCAL_SOURCE:
		return GEN_FULL_PEER_SOURCE;
	case GEN_FULL_PEER_SOURCE:
		return GEN_FULL_LOCAL_SOURCE;
	default:
		return v;
	}
}

/* Both nodes compare, each with itself as local: the verdicts must mirror. */
static void expect(const struct gen_side *a, const struct gen_side *b, enum gen_verdict want)
{
	enum gen_verdict ab = gen_compare(a, b), ba = gen_compare(b, a);

	cr_assert_eq(ab, want, "a vs b: %s, expected %s", gen_verdict_name(ab),
		     gen_verdict_name(want));
	cr_assert_eq(ba, mirror(want), "b vs a: %s, expected %s", gen_verdict_name(ba),
		     gen_verdict_name(mirror(want)));
}

static void assert_ids_eq(const struct gen_ids *a, const struct gen_ids *b)
{
	cr_assert_eq(a->current, b->current);
	cr_assert_eq(a->bitmap, b->bitmap);
	cr_assert_arr_eq(a->history, b->history, sizeof(a->history));
}

static void explains(enum gen_verdict v, const struct gen_side *l, const struct gen_side *p,
		     const char *needle)
{
	char buf[256];
	int n = gen_verdict_explain(v, l, p, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_assert_lt(n, (int)sizeof(buf));
	cr_assert_not_null(strstr(buf, needle), "\"%s\" lacks \"%s\"", buf, needle);
}

/* The pair as it is after a first full sync from a at the start: both at
 * the same fresh generation, with GEN_CREATED in history. */
static void synced_pair(struct gen_side *a, struct gen_side *b)
{
	*a = created(false);
	*b = created(false);
	a->primary = true;
	gen_new_current(&a->ids, R1);	/* primary --force */
	expect(a, b, GEN_FULL_LOCAL_SOURCE);
	gen_resync_finished_source(&a->ids);
	gen_resync_finished_target(&b->ids, &a->ids);
	expect(a, b, GEN_SAME);
}

/* rule a */
Test(gen, fresh_pair_not_zeroed_waits_for_primary_force)
{
	struct gen_side a = created(false), b = created(false);

	expect(&a, &b, GEN_SAME);
	explains(GEN_SAME, &a, &b, "primary --force");
	b.zeroed = true;	/* one zeroed side is not enough */
	expect(&a, &b, GEN_SAME);
	explains(GEN_SAME, &a, &b, "primary --force");
}

Test(gen, fresh_zeroed_pair_needs_no_sync)
{
	struct gen_side a = created(true), b = created(true);

	expect(&a, &b, GEN_SAME);
	explains(GEN_SAME, &a, &b, "in sync");
	a.primary = true;
	expect(&a, &b, GEN_SAME);
	b.primary = true;
	expect(&a, &b, GEN_SAME);
}

Test(gen, fresh_pair_with_one_primary_syncs_fully_from_it)
{
	struct gen_side a = created(false), b = created(false);

	b.primary = true;
	expect(&a, &b, GEN_FULL_PEER_SOURCE);
	explains(GEN_FULL_PEER_SOURCE, &a, &b, "freshly created");
	a.zeroed = true;
	expect(&a, &b, GEN_FULL_PEER_SOURCE);
}

Test(gen, fresh_pair_with_two_primaries_is_split_brain)
{
	struct gen_side a = created(false), b = created(false);

	a.primary = b.primary = true;
	expect(&a, &b, GEN_SPLIT_BRAIN);
	explains(GEN_SPLIT_BRAIN, &a, &b, "split brain");
}

/* rule b: `primary --force` before the first connect. */
Test(gen, early_primary_force_on_a_fresh_pair_syncs_fully)
{
	struct gen_side a = created(false), b = created(false);

	gen_new_current(&a.ids, R1);
	a.primary = true;
	cr_assert_eq(a.ids.bitmap, GEN_CREATED);
	expect(&a, &b, GEN_FULL_LOCAL_SOURCE);
	explains(GEN_FULL_LOCAL_SOURCE, &a, &b, "peer is freshly created");
	a.primary = false;	/* demoted again: still the only source */
	expect(&a, &b, GEN_FULL_LOCAL_SOURCE);
}

/* Issue 3, item 6: an early `primary --force` on a zeroed pair needs no
 * full sync and is no split brain: the bitmap holds everything written. */
Test(gen, early_primary_force_on_a_zeroed_pair_is_a_bitmap_resync)
{
	struct gen_side a = created(true), b = created(true);

	gen_new_current(&a.ids, R1);
	a.primary = true;
	expect(&a, &b, GEN_BITMAP_LOCAL_SOURCE);
	/* promoted, demoted, promoted again while alone: still relative to
	 * GEN_CREATED */
	gen_new_current(&a.ids, R2);
	cr_assert_eq(a.ids.bitmap, GEN_CREATED);
	expect(&a, &b, GEN_BITMAP_LOCAL_SOURCE);
	/* only a zeroed target holds the zeros the bitmap is relative to */
	b.zeroed = false;
	expect(&a, &b, GEN_FULL_LOCAL_SOURCE);
}

Test(gen, both_forced_before_connecting_is_split_brain)
{
	struct gen_side a = created(true), b = created(true);

	gen_new_current(&a.ids, R1);
	gen_new_current(&b.ids, R2);
	a.primary = b.primary = true;
	expect(&a, &b, GEN_SPLIT_BRAIN);
	a.zeroed = b.zeroed = false;
	expect(&a, &b, GEN_SPLIT_BRAIN);
}

/* A replaced disk: `create --force` on b long after the pair diverged
 * from GEN_CREATED. */
Test(gen, a_recreated_node_syncs_fully_from_the_other)
{
	struct gen_side a, b;

	synced_pair(&a, &b);
	b = created(true);
	expect(&a, &b, GEN_FULL_LOCAL_SOURCE);
	a.zeroed = true;	/* a's bitmap is not relative to GEN_CREATED */
	expect(&a, &b, GEN_FULL_LOCAL_SOURCE);
}

/* rule c */
Test(gen, same_ids_without_a_crash_need_nothing)
{
	struct gen_side a, b;

	synced_pair(&a, &b);
	assert_ids_eq(&a.ids, &b.ids);
	cr_assert_eq(a.ids.history[0], GEN_CREATED);
	explains(GEN_SAME, &a, &b, "in sync at generation");
}

Test(gen, crashed_primary_resyncs_its_activity_log)
{
	struct gen_side a, b;

	synced_pair(&a, &b);
	a.crashed_primary = true;	/* kill -9 while connected, restarted */
	expect(&a, &b, GEN_SAME_AL_LOCAL_SOURCE);
	explains(GEN_SAME_AL_LOCAL_SOURCE, &a, &b, "crashed as primary");
	a.primary = false;
	b.primary = true;	/* even if the peer is primary now */
	expect(&a, &b, GEN_SAME_AL_LOCAL_SOURCE);
	explains(GEN_SAME_AL_PEER_SOURCE, &b, &a, "peer crashed as primary");
}

Test(gen, both_crashed_resync_from_the_primary_else_the_tiebreak)
{
	struct gen_side a, b;

	synced_pair(&a, &b);
	a.crashed_primary = b.crashed_primary = true;
	a.primary = false;
	b.primary = true;
	expect(&a, &b, GEN_SAME_AL_PEER_SOURCE);
	b.primary = false;
	b.tiebreak = true;
	expect(&a, &b, GEN_SAME_AL_PEER_SOURCE);
	b.tiebreak = false;
	a.tiebreak = true;
	expect(&a, &b, GEN_SAME_AL_LOCAL_SOURCE);
}

/* rules d, e: the primary writes alone while the secondary is down. */
Test(gen, primary_writing_alone_resyncs_its_bitmap_then_agrees)
{
	struct gen_side a, b;
	uint64_t base;

	synced_pair(&a, &b);
	base = a.ids.current;
	gen_new_current(&a.ids, R2);	/* first write without the peer */
	cr_assert_eq(a.ids.bitmap, base);
	expect(&a, &b, GEN_BITMAP_LOCAL_SOURCE);
	explains(GEN_BITMAP_LOCAL_SOURCE, &a, &b, "this node wrote without the peer");
	explains(GEN_BITMAP_PEER_SOURCE, &b, &a, "peer wrote without this node");

	gen_resync_finished_source(&a.ids);
	gen_resync_finished_target(&b.ids, &a.ids);
	assert_ids_eq(&a.ids, &b.ids);
	cr_assert_eq(a.ids.history[0], base);
	expect(&a, &b, GEN_SAME);

	/* and the next outage works the same way */
	gen_new_current(&a.ids, R3);
	expect(&a, &b, GEN_BITMAP_LOCAL_SOURCE);
}

/* The old primary died; the secondary was promoted and wrote; the old
 * primary returns (crash flag and all) and must take the newer data. */
Test(gen, promoted_secondary_resyncs_the_returning_old_primary)
{
	struct gen_side a, b;

	synced_pair(&a, &b);
	a.crashed_primary = true;
	a.primary = false;
	gen_new_current(&b.ids, R2);
	b.primary = true;
	expect(&a, &b, GEN_BITMAP_PEER_SOURCE);
}

Test(gen, several_promotions_alone_keep_one_bitmap_base)
{
	struct gen_side a, b;
	uint64_t base;

	synced_pair(&a, &b);
	base = a.ids.current;
	gen_new_current(&a.ids, R2);
	gen_new_current(&a.ids, R3);
	gen_new_current(&a.ids, R4);
	cr_assert_eq(a.ids.bitmap, base);
	expect(&a, &b, GEN_BITMAP_LOCAL_SOURCE);
	gen_resync_finished_source(&a.ids);
	gen_resync_finished_target(&b.ids, &a.ids);
	expect(&a, &b, GEN_SAME);
	cr_assert_eq(b.ids.current, a.ids.current);
}

/* rule f: link cut under `continue`, the secondary promoted while the old
 * primary kept writing. */
Test(gen, both_wrote_as_primary_is_split_brain)
{
	struct gen_side a, b;
	char want[64];

	synced_pair(&a, &b);
	gen_new_current(&a.ids, R2);
	a.primary = true;
	gen_new_current(&b.ids, R3);
	b.primary = true;
	expect(&a, &b, GEN_SPLIT_BRAIN);
	snprintf(want, sizeof(want), "since generation %016llx",
		 (unsigned long long)b.ids.bitmap);
	explains(GEN_SPLIT_BRAIN, &a, &b, "both nodes wrote as primary");
	explains(GEN_SPLIT_BRAIN, &a, &b, want);
	/* demoting one of them changes nothing: the data diverged */
	b.primary = false;
	expect(&a, &b, GEN_SPLIT_BRAIN);
}

/* rule g: b's metadata lost its bitmap id (an old snapshot restored), but
 * its generation is in a's history. */
Test(gen, an_ancestor_without_bitmap_gets_a_full_sync)
{
	struct gen_side a, b, old_b;

	synced_pair(&a, &b);
	old_b = b;
	gen_new_current(&a.ids, R2);
	gen_resync_finished_source(&a.ids);
	gen_resync_finished_target(&b.ids, &a.ids);
	gen_new_current(&a.ids, R3);
	gen_resync_finished_source(&a.ids);
	gen_resync_finished_target(&b.ids, &a.ids);
	cr_assert_eq(a.ids.bitmap, 0);
	expect(&a, &old_b, GEN_FULL_LOCAL_SOURCE);
	explains(GEN_FULL_LOCAL_SOURCE, &a, &old_b, "ancestor");
	explains(GEN_FULL_PEER_SOURCE, &old_b, &a, "ancestor");
}

/* rule h: a split brain whose base one side has since moved into history
 * (it resynced a replacement peer in between). */
Test(gen, a_split_further_back_is_still_split_brain)
{
	struct gen_side a, b;
	char base[32];

	synced_pair(&a, &b);
	snprintf(base, sizeof(base), "%016llx", (unsigned long long)a.ids.current);
	gen_new_current(&a.ids, R2);
	gen_new_current(&b.ids, R3);
	gen_resync_finished_source(&a.ids);	/* synced some other disk */
	gen_new_current(&a.ids, R4);
	cr_assert_neq(a.ids.bitmap, b.ids.bitmap);
	expect(&a, &b, GEN_SPLIT_BRAIN);
	explains(GEN_SPLIT_BRAIN, &a, &b, base);
	explains(GEN_SPLIT_BRAIN, &b, &a, base);
}

/* rule i: nodes of two different pairs (the same resource name by
 * mistake), each synced from its own GEN_CREATED. */
Test(gen, nodes_of_different_pairs_are_unrelated)
{
	struct gen_side a, b, c, d;

	synced_pair(&a, &b);
	c = created(false);
	d = created(false);
	gen_new_current(&c.ids, R5);
	gen_resync_finished_source(&c.ids);
	gen_resync_finished_target(&d.ids, &c.ids);
	expect(&c, &d, GEN_SAME);
	expect(&a, &c, GEN_UNRELATED);
	expect(&b, &d, GEN_UNRELATED);
	explains(GEN_UNRELATED, &a, &c, "share no history");
}

/* The next digit of *d in base b. */
static unsigned long digit(unsigned long *d, unsigned long b)
{
	unsigned long r = *d % b;

	*d /= b;
	return r;
}

/* Every combination of a few ids and flags: the two nodes always reach
 * mirrored verdicts.  n is read as mixed-radix digits. */
Test(gen, verdicts_mirror_for_any_ids)
{
	static const uint64_t cur[] = { GEN_CREATED, 16, 17, 18 };
	static const uint64_t opt[] = { 0, GEN_CREATED, 16, 17, 18 };
	const unsigned long total = 4 * 5 * 5 * 4 * 5 * 5 * 64;

	for (unsigned long n = 0; n < total; n++) {
		unsigned long d = n;
		struct gen_side a = { .tiebreak = true }, b = { .tiebreak = false };

		a.ids.current = cur[digit(&d, 4)];
		a.ids.bitmap = opt[digit(&d, 5)];
		a.ids.history[1] = opt[digit(&d, 5)];
		b.ids.current = cur[digit(&d, 4)];
		b.ids.bitmap = opt[digit(&d, 5)];
		b.ids.history[2] = opt[digit(&d, 5)];
		a.crashed_primary = d & 1;
		b.crashed_primary = d & 2;
		a.primary = d & 4;
		b.primary = d & 8;
		a.zeroed = d & 16;
		b.zeroed = d & 32;
		cr_assert_eq(gen_compare(&b, &a), mirror(gen_compare(&a, &b)), "case %lu", n);
	}
}

Test(gen, fresh_ids_avoid_reserved_and_known_ids)
{
	struct gen_ids g;

	cr_assert_eq(gen_fresh(R1), R1);
	cr_assert_geq(gen_fresh(0), GEN_FIRST_RANDOM);
	cr_assert_geq(gen_fresh(GEN_CREATED), GEN_FIRST_RANDOM);

	gen_init(&g);
	cr_assert_eq(g.current, GEN_CREATED);
	cr_assert_eq(g.bitmap, 0);
	gen_new_current(&g, GEN_CREATED);	/* a reserved value */
	cr_assert_neq(g.current, GEN_CREATED);
	cr_assert_geq(g.current, GEN_FIRST_RANDOM);
	gen_new_current(&g, g.current);	/* the same draw again */
	cr_assert_neq(g.current, g.history[0]);
	cr_assert_eq(g.bitmap, GEN_CREATED);
}

Test(gen, history_keeps_the_newest_four)
{
	struct gen_ids g = { .current = 100 };

	for (uint64_t id = 1; id <= 6; id++)
		gen_history_push(&g, id + 16);
	cr_assert_eq(g.history[0], 22);
	cr_assert_eq(g.history[1], 21);
	cr_assert_eq(g.history[2], 20);
	cr_assert_eq(g.history[3], 19);
	gen_history_push(&g, 0);	/* not an id */
	cr_assert_eq(g.history[0], 22);
}

Test(gen, resync_transitions)
{
	struct gen_ids src = { .current = 30, .bitmap = 20, .history = { 10 } };
	struct gen_ids dst = { .current = 20, .history = { 10 } };
	struct gen_ids full = { .current = 99, .bitmap = 98 };

	gen_resync_finished_source(&src);
	cr_assert_eq(src.bitmap, 0);
	cr_assert_eq(src.history[0], 20);
	cr_assert_eq(src.history[1], 10);
	gen_resync_finished_target(&dst, &src);
	assert_ids_eq(&dst, &src);

	/* a full-sync target keeps its old generation in history */
	gen_resync_finished_target(&full, &src);
	cr_assert_eq(full.current, 30);
	cr_assert_eq(full.bitmap, 0);
	cr_assert_eq(full.history[0], 99);

	/* a source without a bitmap (full sync) changes nothing */
	src = (struct gen_ids){ .current = 30, .history = { 20 } };
	gen_resync_finished_source(&src);
	cr_assert_eq(src.history[0], 20);
	cr_assert_eq(src.history[1], 0);
}

Test(gen, verdict_names)
{
	cr_assert_str_eq(gen_verdict_name(GEN_SAME), "same");
	cr_assert_str_eq(gen_verdict_name(GEN_SPLIT_BRAIN), "split-brain");
	cr_assert_str_eq(gen_verdict_name(GEN_BITMAP_PEER_SOURCE), "bitmap-resync-from-peer");
	cr_assert_str_eq(gen_verdict_name((enum gen_verdict)99), "unknown");
	for (int v = GEN_SAME; v <= GEN_UNRELATED; v++)
		cr_assert_str_neq(gen_verdict_name((enum gen_verdict)v), "unknown");
}

/* ---- N peers: one bitmap id per peer slot ---- */

/* A node of a three-node resource: slots for its two peers. */
struct node3 {
	const char *name;
	uint64_t current, history[GEN_HISTORY], slot[2];
	const char *peer[2];	/* the peer of each slot */
};

static unsigned slot_of(const struct node3 *n, const struct node3 *peer)
{
	return strcmp(n->peer[0], peer->name) == 0 ? 0 : 1;
}

/* What n tells gen_compare() about itself when it meets peer. */
static struct gen_side side3(const struct node3 *n, const struct node3 *peer)
{
	struct gen_side s = { .ids = { .current = n->current,
				       .bitmap = n->slot[slot_of(n, peer)] },
			      .tiebreak = strcmp(n->name, peer->name) < 0 };

	memcpy(s.ids.history, n->history, sizeof(s.ids.history));
	return s;
}

static void expect3(const struct node3 *a, const struct node3 *b, enum gen_verdict want)
{
	struct gen_side sa = side3(a, b), sb = side3(b, a);

	expect(&sa, &sb, want);
}

/* a, b, c all in sync at generation R1 (after a first full sync). */
static void synced_three(struct node3 *a, struct node3 *b, struct node3 *c)
{
	*a = (struct node3){ .name = "a", .peer = { "b", "c" } };
	*b = (struct node3){ .name = "b", .peer = { "a", "c" } };
	*c = (struct node3){ .name = "c", .peer = { "a", "b" } };
	for (struct node3 *n = a; n; n = n == a ? b : n == b ? c : NULL) {
		n->current = gen_fresh(R1);
		n->history[0] = GEN_CREATED;
	}
}

static void new_gen(struct node3 *n, uint32_t absent, uint64_t random)
{
	gen_new_current_slots(&n->current, n->history, n->slot, 2, absent, random);
}

/* A primary loses one peer, then the other: each resyncs from the
 * primary only what it missed, a bitmap resync from its own base. */
Test(gen_slots, a_peer_lost_then_another)
{
	struct node3 a, b, c;
	uint64_t g1;

	synced_three(&a, &b, &c);
	g1 = a.current;
	new_gen(&a, 1U << slot_of(&a, &c), R2);	/* c lost: its slot takes g1 */
	cr_assert_eq(a.slot[slot_of(&a, &c)], g1);
	cr_assert_eq(a.slot[slot_of(&a, &b)], 0);
	new_gen(&b, 1U << slot_of(&b, &c), a.current);	/* b still connected: it follows */
	cr_assert_eq(b.current, a.current);
	/* Then b is lost too: its slot takes the generation b has. */
	new_gen(&a, 1U << slot_of(&a, &b) | 1U << slot_of(&a, &c), R3);
	cr_assert_eq(a.slot[slot_of(&a, &b)], gen_fresh(R2));
	cr_assert_eq(a.slot[slot_of(&a, &c)], g1, "c's base does not move");
	cr_assert_eq(a.history[0], gen_fresh(R2), "kept as history too (c's slot lacks it)");
	expect3(&a, &b, GEN_BITMAP_LOCAL_SOURCE);
	expect3(&a, &c, GEN_BITMAP_LOCAL_SOURCE);
	expect3(&b, &c, GEN_BITMAP_LOCAL_SOURCE);	/* b kept a bitmap for c too */
}

/* The primary dies; b is promoted while c is connected to it; c follows
 * b's new generation without a.  When a returns, both b and c resync it
 * from their slot for a, and c agrees with b. */
Test(gen_slots, promotion_of_another_node)
{
	struct node3 a, b, c;
	uint64_t g1;

	synced_three(&a, &b, &c);
	g1 = a.current;
	new_gen(&b, 1U << slot_of(&b, &a), R2);		/* promoted without a */
	new_gen(&c, 1U << slot_of(&c, &a), b.current);	/* c takes b's id */
	cr_assert_eq(c.current, b.current);
	cr_assert_eq(b.slot[slot_of(&b, &a)], g1);
	cr_assert_eq(c.slot[slot_of(&c, &a)], g1);
	expect3(&b, &c, GEN_SAME);
	expect3(&b, &a, GEN_BITMAP_LOCAL_SOURCE);
	expect3(&c, &a, GEN_BITMAP_LOCAL_SOURCE);
}

/* The resync from b to a finishes: b's slot for a goes to its history, a
 * takes b's current and clears its slot for b; a's slot for c and c's
 * for a are untouched, and a and c agree without a resync. */
Test(gen_slots, resync_finished)
{
	struct node3 a, b, c;
	uint64_t g1, a_for_c;

	synced_three(&a, &b, &c);
	g1 = a.current;
	new_gen(&b, 1U << slot_of(&b, &a), R2);
	new_gen(&c, 1U << slot_of(&c, &a), b.current);
	a.slot[slot_of(&a, &c)] = a_for_c = 0x777;	/* some base a keeps for c */
	gen_resync_finished_source_slot(b.history, &b.slot[slot_of(&b, &a)]);
	gen_resync_finished_target_slot(&a.current, a.history, &a.slot[slot_of(&a, &b)],
					b.current);
	cr_assert_eq(b.slot[slot_of(&b, &a)], 0);
	cr_assert_eq(b.history[0], g1);
	cr_assert_eq(a.current, b.current);
	cr_assert_eq(a.history[0], g1);
	cr_assert_eq(a.slot[slot_of(&a, &b)], 0);
	cr_assert_eq(a.slot[slot_of(&a, &c)], a_for_c, "the other slot keeps its id");
	cr_assert_eq(c.slot[slot_of(&c, &a)], g1);
	expect3(&a, &b, GEN_SAME);
	expect3(&a, &c, GEN_SAME);
	/* c learns a is back in sync with a bitmap resync of what it keeps. */
	gen_resync_finished_source_slot(c.history, &c.slot[slot_of(&c, &a)]);
	cr_assert_eq(c.slot[slot_of(&c, &a)], 0);
	cr_assert_eq(c.history[0], g1, "once only: g1 was there already");
	cr_assert_eq(c.history[1], GEN_CREATED);
}

/* With one slot the N-slot step is the two-node one. */
Test(gen_slots, one_slot_is_the_pair)
{
	struct gen_ids pair = { .current = 99, .history = { 50 } };
	uint64_t cur = 99, hist[GEN_HISTORY] = { 50 }, slot = 0;

	for (uint64_t r = 1000; r < 1003; r++) {
		gen_new_current(&pair, r);
		gen_new_current_slots(&cur, hist, &slot, 1, 1, r);
		cr_assert_eq(cur, pair.current);
		cr_assert_eq(slot, pair.bitmap);
		cr_assert_arr_eq(hist, pair.history, sizeof(hist));
	}
	/* A fresh id never repeats one held in any slot. */
	cur = 20;
	slot = gen_fresh(5);
	memset(hist, 0, sizeof(hist));
	gen_new_current_slots(&cur, hist, &slot, 1, 0, 5);
	cr_assert_neq(cur, slot);
	cr_assert_eq(hist[0], 20, "no slot took the old id: history keeps it");
}

Test(gen_slots, history_has_no_duplicates)
{
	struct gen_ids g = { .current = 100 };

	gen_history_push(&g, 40);
	gen_history_push(&g, 41);
	gen_history_push(&g, 40);
	cr_assert_eq(g.history[0], 41);
	cr_assert_eq(g.history[1], 40);
	cr_assert_eq(g.history[2], 0);
}

/* Quorum (issue 17): a witness's or a peer's generation against ours. */
Test(gen, relation_says_who_moved_on)
{
	uint64_t hist[GEN_HISTORY] = { 0x20, 0x10 }, none[GEN_HISTORY] = { 0 };
	uint64_t slots[2] = { 0x30, 0 }, their_hist[GEN_HISTORY] = { 0x40, 0x20 };

	cr_assert_eq(gen_relation(0x40, hist, slots, 2, 0x40, 0, none), GEN_REL_SAME);
	/* A witness that saw nothing yet, one we moved on from (history or a
	 * slot's bitmap id). */
	cr_assert_eq(gen_relation(0x40, hist, slots, 2, 0, 0, none), GEN_REL_OLDER);
	cr_assert_eq(gen_relation(0x40, hist, slots, 2, 0x20, 0, none), GEN_REL_OLDER);
	cr_assert_eq(gen_relation(0x40, hist, slots, 2, 0x30, 0, none), GEN_REL_OLDER);
	/* They moved on from ours: their history, or their bitmap id for us. */
	cr_assert_eq(gen_relation(0x40, hist, slots, 2, 0x50, 0, their_hist), GEN_REL_NEWER);
	cr_assert_eq(gen_relation(0x40, hist, slots, 2, 0x50, 0x40, none), GEN_REL_NEWER);
	/* Both moved on from a common one: another primary wrote meanwhile. */
	uint64_t common[GEN_HISTORY] = { 0x20 };

	cr_assert_eq(gen_relation(0x40, hist, slots, 2, 0x60, 0, common), GEN_REL_UNRELATED);
	cr_assert_str_eq(gen_rel_name(GEN_REL_UNRELATED), "unrelated");
}

/* A node that steps down under quorum, its generation unrelated to the
 * other's, goes back to the newest one they share. */
Test(gen, rewind_to_the_common_generation)
{
	uint64_t cur = 0x50, hist[GEN_HISTORY] = { 0x40, 0x30, 0x20 };
	uint64_t theirs[GEN_HISTORY] = { 0x30, 0x20 }, none[GEN_HISTORY] = { 0 };

	uint64_t slots[2] = { 0x45, 0 };

	cr_assert_eq(gen_rewind(&cur, hist, slots, 2, 0x60, 0, theirs), 0x30);
	cr_assert_eq(cur, 0x30);
	cr_assert_eq(hist[0], 0x20, "what came after it is gone from the history");
	cr_assert_eq(hist[1], 0);
	cr_assert_eq(gen_rewind(&cur, hist, slots, 2, 0x70, 0, none), 0, "nothing shared: unchanged");
	cr_assert_eq(cur, 0x30);
	/* The step that left a peer behind is newer than the history. */
	theirs[0] = 0x45;
	cr_assert_eq(gen_rewind(&cur, hist, slots, 2, 0x80, 0, theirs), 0x45);
}
