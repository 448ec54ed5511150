/* Unit tests for daemon/actlog: hits and misses, the persist handshake
 * (ADDED / PENDING until the snapshot is durable), LRU eviction, BUSY when
 * nothing may leave, rule 2 (an extent stays until a peer flush covers its
 * last write), standalone mode, snapshot and load, and a random run checked
 * against a model that knows which extent must be evicted. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/meta/actlog.h"

/* Fills slots with extents first.. (one write each at epoch, completed),
 * persisted. */
static void fill(struct actlog *al, uint32_t first, unsigned n, uint64_t epoch)
{
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(actlog_begin(al, first + i, epoch), ACTLOG_ADDED);
		actlog_end(al, first + i);
	}
	actlog_persisted(al, actlog_seq(al));
	cr_assert_not(actlog_dirty(al));
}

Test(actlog, slot_count_is_checked)
{
	struct actlog *al;

	cr_assert_null(actlog_new(0));
	cr_assert_null(actlog_new(15));
	cr_assert_null(actlog_new(1001));
	al = actlog_new(16);
	cr_assert_not_null(al);
	cr_assert_eq(actlog_count(al), 0);
	cr_assert_not(actlog_dirty(al));
	actlog_free(al);
	al = actlog_new(1000);
	cr_assert_not_null(al);
	actlog_free(al);
	actlog_free(NULL);
}

Test(actlog, miss_then_pending_then_hit)
{
	struct actlog *al = actlog_new(16);
	uint64_t need;

	cr_assert_not(actlog_contains(al, 7));
	cr_assert_eq(actlog_begin(al, 7, 1), ACTLOG_ADDED);
	need = actlog_seq(al);
	cr_assert_eq(need, 1);
	cr_assert(actlog_dirty(al));
	cr_assert(actlog_contains(al, 7));
	cr_assert_eq(actlog_count(al), 1);
	/* A second write before the snapshot is durable must wait too. */
	cr_assert_eq(actlog_begin(al, 7, 1), ACTLOG_PENDING);
	cr_assert_eq(actlog_seq(al), need, "a hit changes no content");
	actlog_persisted(al, need);
	cr_assert_not(actlog_dirty(al));
	cr_assert_eq(actlog_persisted_seq(al), need);
	cr_assert_eq(actlog_begin(al, 7, 2), ACTLOG_HIT);
	cr_assert_eq(actlog_refs(al, 7), 3);
	actlog_end(al, 7);
	actlog_end(al, 7);
	actlog_end(al, 7);
	cr_assert_eq(actlog_refs(al, 7), 0);
	actlog_end(al, 7);	/* one too many: ignored */
	actlog_end(al, 99);	/* not in the log: ignored */
	cr_assert_eq(actlog_refs(al, 7), 0);
	cr_assert(actlog_contains(al, 7));
	actlog_free(al);
}

/* A snapshot taken before a later insertion covers only what it held. */
Test(actlog, persist_covers_only_its_snapshot)
{
	struct actlog *al = actlog_new(16);
	uint64_t v;

	cr_assert_eq(actlog_begin(al, 1, 1), ACTLOG_ADDED);
	v = actlog_seq(al);
	cr_assert_eq(actlog_begin(al, 2, 1), ACTLOG_ADDED);	/* while v is written */
	actlog_persisted(al, v);
	cr_assert(actlog_dirty(al));
	cr_assert_eq(actlog_begin(al, 1, 1), ACTLOG_HIT);
	cr_assert_eq(actlog_begin(al, 2, 1), ACTLOG_PENDING);
	actlog_persisted(al, v - 1);	/* a stale completion changes nothing */
	cr_assert_eq(actlog_persisted_seq(al), v);
	actlog_persisted(al, 1000);	/* clipped to the content */
	cr_assert_eq(actlog_persisted_seq(al), actlog_seq(al));
	cr_assert_not(actlog_dirty(al));
	cr_assert_eq(actlog_begin(al, 3, 1), ACTLOG_ADDED);
	cr_assert(actlog_dirty(al));
	actlog_free(al);
}

Test(actlog, evicts_the_least_recently_used)
{
	struct actlog *al = actlog_new(16);
	uint32_t ext[16];

	fill(al, 0, 16, 1);
	actlog_flushed(al, 1);
	cr_assert_eq(actlog_count(al), 16);
	/* Touch 0: now 1 is the least recently used. */
	cr_assert_eq(actlog_begin(al, 0, 1), ACTLOG_HIT);
	actlog_end(al, 0);
	cr_assert_eq(actlog_begin(al, 100, 2), ACTLOG_ADDED);
	cr_assert(actlog_dirty(al));
	cr_assert_eq(actlog_count(al), 16);
	cr_assert_not(actlog_contains(al, 1));
	cr_assert(actlog_contains(al, 0));
	cr_assert(actlog_contains(al, 100));
	actlog_end(al, 100);
	cr_assert_eq(actlog_begin(al, 101, 2), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 2));
	cr_assert_eq(actlog_snapshot(al, ext, 16), 16);
	/* Idle ones from the least recently used on; 101 is still in flight. */
	for (uint32_t i = 0; i < 13; i++)
		cr_assert_eq(ext[i], 3 + i);
	cr_assert_eq(ext[13], 0);
	cr_assert_eq(ext[14], 100);
	cr_assert_eq(ext[15], 101);
	actlog_free(al);
}

/* Recency counts from when a slot last went idle: the victim is the slot
 * idle the longest, whatever the order of insertion. */
Test(actlog, victim_is_the_longest_idle)
{
	struct actlog *al = actlog_new(16);

	for (uint32_t i = 0; i < 16; i++)
		cr_assert_eq(actlog_begin(al, i, 1), ACTLOG_ADDED);
	actlog_persisted(al, actlog_seq(al));
	actlog_flushed(al, 1);
	actlog_end(al, 9);
	actlog_end(al, 4);
	actlog_end(al, 12);
	cr_assert_eq(actlog_begin(al, 50, 2), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 9));
	cr_assert_eq(actlog_begin(al, 51, 2), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 4));
	cr_assert_eq(actlog_begin(al, 52, 2), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 12));
	cr_assert_eq(actlog_begin(al, 53, 2), ACTLOG_BUSY);
	actlog_free(al);
}

Test(actlog, busy_when_every_slot_has_writes_in_flight)
{
	struct actlog *al = actlog_new(16);
	uint64_t seq;

	for (uint32_t i = 0; i < 16; i++)
		cr_assert_eq(actlog_begin(al, i, 1), ACTLOG_ADDED);
	actlog_persisted(al, actlog_seq(al));
	actlog_flushed(al, 10);
	seq = actlog_seq(al);
	cr_assert_eq(actlog_begin(al, 100, 2), ACTLOG_BUSY);
	cr_assert_not(actlog_contains(al, 100));
	cr_assert_eq(actlog_count(al), 16);
	cr_assert_eq(actlog_seq(al), seq, "BUSY changes nothing");
	cr_assert_not(actlog_dirty(al));
	actlog_end(al, 3);
	cr_assert_eq(actlog_begin(al, 100, 2), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 3));
	actlog_free(al);
}

/* Rule 2: a completed write is not enough; a peer flush must cover it. */
Test(actlog, not_evictable_until_flushed_past_its_epoch)
{
	struct actlog *al = actlog_new(16);

	fill(al, 0, 16, 5);
	cr_assert_eq(actlog_begin(al, 100, 6), ACTLOG_BUSY);
	actlog_flushed(al, 4);
	cr_assert_eq(actlog_begin(al, 100, 6), ACTLOG_BUSY);
	/* Extent 0 gets a later write at epoch 7: its epoch rises. */
	cr_assert_eq(actlog_begin(al, 0, 7), ACTLOG_HIT);
	actlog_end(al, 0);
	actlog_flushed(al, 5);
	actlog_flushed(al, 3);	/* going back is ignored */
	for (uint32_t i = 1; i < 16; i++) {
		cr_assert_eq(actlog_begin(al, 100 + i, 6), ACTLOG_ADDED, "extent %u", i);
		actlog_end(al, 100 + i);
		cr_assert_not(actlog_contains(al, i));
	}
	/* Only 0 (epoch 7) and the new ones (epoch 6) are left: none flushed. */
	cr_assert_eq(actlog_begin(al, 200, 8), ACTLOG_BUSY);
	actlog_flushed(al, 6);
	cr_assert_eq(actlog_begin(al, 200, 8), ACTLOG_ADDED);
	cr_assert(actlog_contains(al, 0), "epoch 7 is not flushed yet");
	cr_assert_not(actlog_contains(al, 101));
	actlog_end(al, 200);
	for (uint32_t i = 2; i < 16; i++)
		cr_assert_eq(actlog_begin(al, 300 + i, 8), ACTLOG_ADDED);
	cr_assert_eq(actlog_begin(al, 400, 8), ACTLOG_BUSY);
	cr_assert(actlog_contains(al, 0));
	actlog_flushed(al, 7);
	cr_assert_eq(actlog_begin(al, 400, 8), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 0));
	actlog_free(al);
}

/* Standalone: the bitmap covers an extent, so only in-flight writes keep
 * it; connected again, the epoch rule is back. */
Test(actlog, standalone_needs_only_no_write_in_flight)
{
	struct actlog *al = actlog_new(16);

	fill(al, 0, 16, 9);
	cr_assert_eq(actlog_begin(al, 100, 9), ACTLOG_BUSY);
	actlog_set_standalone(al, true);
	cr_assert_eq(actlog_begin(al, 100, 9), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 0));
	for (uint32_t i = 1; i < 16; i++)
		cr_assert_eq(actlog_begin(al, 100 + i, 9), ACTLOG_ADDED);
	/* All in flight: even standalone cannot evict. */
	cr_assert_eq(actlog_begin(al, 200, 9), ACTLOG_BUSY);
	actlog_end(al, 100);
	actlog_set_standalone(al, false);
	cr_assert_eq(actlog_begin(al, 200, 10), ACTLOG_BUSY);
	actlog_set_standalone(al, true);
	cr_assert_eq(actlog_begin(al, 200, 10), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 100));
	actlog_free(al);
}

Test(actlog, snapshot_lists_every_extent_once)
{
	struct actlog *al = actlog_new(32);
	uint32_t ext[64];
	bool seen[64] = { false };
	unsigned n;

	for (uint32_t i = 0; i < 20; i++)
		cr_assert_eq(actlog_begin(al, i * 3, 1), ACTLOG_ADDED);
	for (uint32_t i = 0; i < 20; i += 2)
		actlog_end(al, i * 3);
	n = actlog_snapshot(al, ext, 64);
	cr_assert_eq(n, 20);
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(ext[i] % 3, 0);
		cr_assert_lt(ext[i], 60);
		cr_assert_not(seen[ext[i]], "extent %u twice", ext[i]);
		seen[ext[i]] = true;
	}
	cr_assert_eq(actlog_snapshot(al, ext, 5), 5);
	cr_assert_eq(actlog_snapshot(al, ext, 0), 0);
	actlog_free(al);
}

Test(actlog, load_restores_evictable_durable_entries)
{
	static const uint32_t saved[] = { 40, 41, 42, 41, 43 };
	struct actlog *al = actlog_new(16);
	uint32_t ext[16];

	cr_assert_eq(actlog_begin(al, 7, 1), ACTLOG_ADDED);	/* replaced by the load */
	cr_assert_eq(actlog_load(al, saved, 5), 4);
	cr_assert_eq(actlog_count(al), 4);
	cr_assert_not(actlog_contains(al, 7));
	cr_assert_eq(actlog_refs(al, 41), 0);
	cr_assert_not(actlog_dirty(al), "loaded content came from disk");
	cr_assert_eq(actlog_begin(al, 42, 1), ACTLOG_HIT);
	actlog_end(al, 42);
	cr_assert_eq(actlog_snapshot(al, ext, 16), 4);
	cr_assert_eq(ext[0], 40);
	cr_assert_eq(ext[3], 42);
	/* Evictable at once, oldest first, with no flush ever seen. */
	fill(al, 100, 12, 0);
	cr_assert_eq(actlog_begin(al, 200, 1), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 40));
	cr_assert_eq(actlog_begin(al, 201, 1), ACTLOG_ADDED);
	cr_assert_not(actlog_contains(al, 41));
	cr_assert(actlog_contains(al, 42));
	actlog_free(al);
}

Test(actlog, load_more_than_slots_keeps_the_most_recent)
{
	struct actlog *al = actlog_new(16);
	uint32_t saved[40];

	for (uint32_t i = 0; i < 40; i++)
		saved[i] = 1000 + i;
	cr_assert_eq(actlog_load(al, saved, 40), 16);
	for (uint32_t i = 0; i < 40; i++)
		cr_assert_eq(actlog_contains(al, 1000 + i), i >= 24, "extent %u", 1000 + i);
	cr_assert_eq(actlog_load(al, saved, 0), 0);
	cr_assert_eq(actlog_count(al), 0);
	actlog_free(al);
}

/* Extents that collide in the hash still find their own slot. */
Test(actlog, many_extents_far_apart)
{
	struct actlog *al = actlog_new(1000);

	for (uint32_t i = 0; i < 1000; i++)
		cr_assert_eq(actlog_begin(al, i << 22, 1), ACTLOG_ADDED);
	cr_assert_eq(actlog_begin(al, 5, 1), ACTLOG_BUSY);
	for (uint32_t i = 0; i < 1000; i++) {
		cr_assert(actlog_contains(al, i << 22));
		cr_assert_eq(actlog_refs(al, i << 22), 1);
		actlog_end(al, i << 22);
	}
	actlog_flushed(al, 1);
	for (uint32_t i = 0; i < 1000; i++)
		cr_assert_eq(actlog_begin(al, (i << 22) + 1, 2), ACTLOG_ADDED);
	for (uint32_t i = 0; i < 1000; i++)
		cr_assert_not(actlog_contains(al, i << 22));
	actlog_free(al);
}

/* The model: which extents are in the log, their writes in flight, their
 * last epoch and when they last went idle. */
struct model {
	bool in;
	unsigned refs;
	uint64_t epoch;
	uint64_t idle_since;
};

Test(actlog, random_run_matches_the_model)
{
	enum { SLOTS = 16, EXTENTS = 48, OPS = 200000 };
	struct actlog *al = actlog_new(SLOTS);
	struct model m[EXTENTS];
	uint64_t epoch = 1, flushed = 0, tick = 0, persisted = 0;
	unsigned count = 0, evictions = 0, busy = 0, pending = 0;
	bool standalone = false;

	memset(m, 0, sizeof(m));
	srand(99);
	for (int op = 0; op < OPS; op++) {
		int what = rand() % 100;
		uint32_t e = (uint32_t)rand() % EXTENTS;

		tick++;
		if (what < 45) {
			enum actlog_result r = actlog_begin(al, e, epoch);
			int victim = -1;

			if (!m[e].in && count == SLOTS) {
				for (int i = 0; i < EXTENTS; i++)
					if (m[i].in && m[i].refs == 0 &&
					    (standalone || m[i].epoch <= flushed) &&
					    (victim < 0 || m[i].idle_since < m[victim].idle_since))
						victim = i;
			}
			if (m[e].in) {
				cr_assert(r == ACTLOG_HIT || r == ACTLOG_PENDING, "op %d", op);
				pending += r == ACTLOG_PENDING;
			} else if (count == SLOTS && victim < 0) {
				cr_assert_eq(r, ACTLOG_BUSY, "op %d", op);
				busy++;
				continue;
			} else {
				cr_assert_eq(r, ACTLOG_ADDED, "op %d", op);
				if (victim >= 0) {
					cr_assert_not(actlog_contains(al, (uint32_t)victim),
						      "op %d: %d should be evicted", op, victim);
					m[victim].in = false;
					evictions++;
				} else {
					count++;
				}
				m[e].in = true;
				m[e].epoch = 0;
			}
			m[e].refs++;
			if (epoch > m[e].epoch)
				m[e].epoch = epoch;
		} else if (what < 85) {
			/* Mostly a write in flight completes, now and then a stray end. */
			for (uint32_t k = 0; k < EXTENTS && rand() % 8 && !m[e].refs; k++)
				e = (e + 1) % EXTENTS;
			if (m[e].in && m[e].refs > 0 && --m[e].refs == 0)
				m[e].idle_since = tick;
			actlog_end(al, e);
		} else if (what < 93) {
			epoch++;
		} else if (what < 97) {
			flushed += (uint64_t)rand() % (epoch - flushed + 1);
			actlog_flushed(al, flushed);
		} else if (what < 99) {
			persisted = actlog_seq(al);
			actlog_persisted(al, persisted);
		} else {
			standalone = !standalone;
			actlog_set_standalone(al, standalone);
		}
		cr_assert_eq(actlog_count(al), count, "op %d", op);
		cr_assert_eq(actlog_dirty(al), persisted < actlog_seq(al));
		for (uint32_t i = 0; i < EXTENTS; i++) {
			cr_assert_eq(actlog_contains(al, i), m[i].in, "op %d extent %u", op, i);
			cr_assert_eq(actlog_refs(al, i), m[i].in ? m[i].refs : 0);
		}
	}
	/* The run went through every case. */
	cr_assert_gt(evictions, 1000, "%u evictions", evictions);
	cr_assert_gt(busy, 1000, "%u busy", busy);
	cr_assert_gt(pending, 100, "%u pending", pending);
	actlog_free(al);
}

/* Rule 7: a fresh log has flushed nothing.  A write of the first epoch (or
 * of a caller whose counter was still 0) stays until a flush covers it,
 * even before the daemon's first peer FLUSH (issue 12, bug 1). */
Test(actlog, nothing_is_flushed_before_the_first_flush)
{
	for (uint64_t first = 0; first <= ACTLOG_EPOCH_FIRST; first++) {
		struct actlog *al = actlog_new(16);

		fill(al, 0, 16, first);
		cr_assert_eq(actlog_begin(al, 100, first + 1), ACTLOG_BUSY,
			     "epoch %" PRIu64 " evicted without any flush", first);
		actlog_flushed(al, 0);
		cr_assert_eq(actlog_begin(al, 100, first + 1), ACTLOG_BUSY);
		actlog_flushed(al, ACTLOG_EPOCH_FIRST);
		cr_assert_eq(actlog_begin(al, 100, first + 1), ACTLOG_ADDED);
		actlog_free(al);
	}
}

/* Rule 8: the log says when a snapshot drops an extent, once. */
Test(actlog, eviction_is_reported_once)
{
	struct actlog *al = actlog_new(16);
	uint32_t ext[4] = { 1, 2, 3, 4 };

	fill(al, 0, 16, 1);
	cr_assert_not(actlog_take_dropped(al), "filling free slots drops nothing");
	actlog_flushed(al, 1);
	cr_assert_eq(actlog_begin(al, 100, 2), ACTLOG_ADDED);
	cr_assert(actlog_take_dropped(al));
	cr_assert_not(actlog_take_dropped(al));
	cr_assert_eq(actlog_begin(al, 100, 2), ACTLOG_PENDING);
	cr_assert_not(actlog_take_dropped(al), "a hit drops nothing");
	actlog_load(al, ext, 4);
	cr_assert_not(actlog_take_dropped(al), "a load is not an eviction");
	actlog_free(al);
}
