/* The secondary's side of replication: the primary's stream applied to the
 * data area in order and acknowledged, and what a failing disk does to
 * that (the link drops, the disk is outdated, a reconnect with a backoff
 * repairs it).  Every node has one, ready for a demotion.  Daemon-level:
 * failures are logged here. */
#ifndef BLKREP_SECONDARY_H
#define BLKREP_SECONDARY_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct local;
struct loop;
struct msg_hdr;
struct secondary;
struct stream;
struct sync;

/* NULL when out of memory.  The stream it answers on is the sending
 * peer's (sync_stream()). */
struct secondary *secondary_new(struct local *loc, struct loop *loop, const struct config *cfg);
void secondary_free(struct secondary *sec); /* NULL is ignored */

/* Applies one replicated request from the peer `from`, in stream order, and
 * acknowledges it. */
void secondary_apply(struct secondary *sec, struct sync *from, const struct msg_hdr *h,
		     const uint8_t *payload);

/* Under freeze a sync primary never acknowledges a write without its
 * peer: a secondary that lost it stays up to date (RPO 0). */
/* The resource's policy holds writes when a peer is lost: on-peer-loss
 * = freeze, or quorum = majority. */
bool secondary_policy_holds(const struct config *cfg);
bool secondary_primary_freezes(const struct secondary *sec);
/* An up-to-date secondary that may miss its primary's writes becomes
 * consistent (promoting it then takes --force); why is logged. */
void secondary_may_lag(struct secondary *sec, const char *why);
/* A resync from the peer finished: the disk error's gaps are filled. */
void secondary_disk_repaired(struct secondary *sec);
/* Once a second: true when the reconnect after a disk error is due (the
 * caller enables the links). */
bool secondary_tick(struct secondary *sec);

/* --- three nodes or more --- */
struct msg_gen;
/* The slots' bitmap generations changed (a resync, a promotion): which of
 * them record what this node applies. */
void secondary_slots_changed(struct secondary *sec);
/* MSG_MARK from the primary: the writes received before the previous one
 * are on every connected peer. */
void secondary_mark(struct secondary *sec);
/* MSG_GEN from the primary (from): true if the generations or slots
 * changed (the node then tells its peers: STATE). */
bool secondary_gen(struct secondary *sec, struct sync *from, const struct msg_gen *g);
/* The link to the primary (from) went. */
void secondary_primary_lost(struct secondary *sec, struct sync *from);
/* The primary it lost replicated to it in sync mode (until a resync). */
bool secondary_was_sync_replica(const struct secondary *sec);
/* Restarted uncleanly, not yet resynced by a primary (three nodes or
 * more); forget_receipts: then every extent is out of sync with every
 * other node (its primary lost, or it is promoted). */
bool secondary_unsure(const struct secondary *sec);
void secondary_forget_receipts(struct secondary *sec);

#endif
