/* The failover oracle of three-node seeds (tests/sim/README.md, oracle 5):
 * after a failover, a secondary that stayed connected to the new primary
 * receives by resync no more than its bookkeeping covered at the
 * promotion: the new primary's bitmap slot for it, its own slot for the
 * new primary (where, having lost its primary, it put what it received
 * since the last-but-one MSG_MARK).  Read straight from the nodes'
 * memory (local_slot_bm()), the counters from sync_resynced_bytes(). */
#ifndef BLKREP_SIMFO_H
#define BLKREP_SIMFO_H

#include <stdbool.h>
#include <stdint.h>

struct node;

/* Forgets every watch (start of a seed). */
void simfo_reset(void);
/* The operator asks for a resync or verify of whatever is out of sync
 * now (more than the failover's bookkeeping: a disk error's ranges, a
 * verify's differences): the watches end unchecked. */
void simfo_stop(const char *why);
/* At every step while node p is about to be promoted by a failover
 * (not yet primary): samples its bookkeeping with each other node. */
void simfo_before(int p, struct node *const *nodes, int nn, uint64_t data_bytes);
/* Node np (index p) was just promoted by a failover: watches each
 * secondary x whose link with it is up on both sides, its bound the last
 * sample before the promotion. */
void simfo_promoted(int p, struct node *const *nodes, int nn, uint64_t data_bytes);
/* After every step: a watch ends unchecked when its pair's link drops,
 * either node goes, or p stops being primary; it is judged once the two
 * are in step (no resync running, no bit either way).  Writes a violation
 * into why (and returns false) for one that received more than its
 * bookkeeping covered. */
bool simfo_watch(struct node *const *nodes, const char *const *names, char *why, unsigned len);
/* A log line of node's daemon: "resync to X: N bytes to copy
 * (full-sync-to-peer)" from a watched primary marks that watch a full
 * sync, which the generations decided: allowed beyond the bound (counted),
 * unless SIM_FULL_SYNC=fail. */
void simfo_log(int node, const char *line);
/* Settled: judges the watches still running the same way. */
bool simfo_check(struct node *const *nodes, const char *const *names, char *why, unsigned len);

/* Over all seeds: watches begun, checked, ended unchecked; bytes bounded
 * and received. */
struct simfo_counts {
	uint64_t begun, checked, disturbed, bound_bytes, resynced_bytes, zero_bound, full_syncs;
};
const struct simfo_counts *simfo_counts(void);

#endif
