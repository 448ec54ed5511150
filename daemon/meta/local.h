/* The node's own replica: its data area, its metadata (mdio.h), the
 * superblock read from it, one dirty bitmap per peer slot, and what the
 * disk's errors left (diskerr.h).  Every part of the node reads and changes
 * the superblock through local_sb() and records a change with
 * local_save_sb(); the bitmaps' pages go to disk with local_save_bm(), which
 * flushes the data area first if a bit was cleared (rule 8).  A peer's slot
 * is local_slot(l, name).  Daemon-level: failures are logged here. */
#ifndef BLKREP_LOCAL_H
#define BLKREP_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bitmap;
struct config;
struct config_node;
struct diskerr;
struct local;
struct mdio;
struct meta_sb;

/* Opens the backing store's data area and metadata, checks that the
 * metadata is this node's, and reads the superblock and every bitmap slot.
 * Each peer of the config without a slot gets the first free one (config
 * order), and version 1 metadata is rewritten as version 2 (logged); too
 * few slots for the config's peers is refused.  A slot naming a node no
 * longer in the config is kept.  NULL after logging why. */
struct local *local_open(const struct config *cfg, const struct config_node *me);
/* NULL is ignored. */
void local_close(struct local *l);

/* What the parts keep pointers to: valid until local_close(). */
struct meta_sb *local_sb(struct local *l);
/* The slot of a peer's name, -1 if none (every config peer has one). */
int local_slot(const struct local *l, const char *peer);
/* Slot slot's bitmap (0 <= slot < local_max_peers()). */
struct bitmap *local_slot_bm(struct local *l, int slot);
/* All of them, local_max_peers() long (for the activity log). */
struct bitmap *const *local_bms(const struct local *l);
unsigned local_max_peers(const struct local *l);
struct mdio *local_md(struct local *l);
struct diskerr *local_disk(struct local *l);
int local_data_fd(const struct local *l);

/* The superblock to disk: 0, or -1 (logged). */
int local_save_sb(struct local *l);
/* Every slot's changed bitmap pages to disk (rule 8): 0, or -1 (logged). */
int local_save_bm(struct local *l);
/* Both: 0, or -1 (logged). */
int local_save(struct local *l);
/* A new current generation without the peers of absent_slots (bit i: slot
 * i), gen_new_current_slots() (in memory; local_save_sb() records it). */
void local_new_gen(struct local *l, uint32_t absent_slots);
/* Forgets every out-of-sync bit of one slot (local_save_bm() records it). */
void local_bm_empty(struct local *l, int slot);

/* For status and logs. */
const char *local_disk_name(const struct local *l);
const char *local_mode_name(const struct local *l);
/* Bytes of the data area's first limit bytes marked out of sync for the
 * peer of slot (the extent that limit cuts counts up to limit). */
uint64_t local_slot_out_of_sync(const struct local *l, int slot, uint64_t limit);
/* The largest of local_slot_out_of_sync() over the slots in use. */
uint64_t local_out_of_sync(const struct local *l, uint64_t limit);

#endif
