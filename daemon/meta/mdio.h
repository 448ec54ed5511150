/* A node's metadata on disk: opening the backing store and the meta area
 * (internal, at the end of the backing store, or an external file), and
 * reading and writing the superblock, the activity-log snapshot and the
 * bitmap with plain synchronous I/O.  Used by the metadata commands and at
 * daemon start and stop; the hot path writes activity-log blocks through
 * its own ring at the offsets in mdio_layout().
 * Daemon-level: functions return -1 with a one-line reason in err. */
#ifndef BLKREP_MDIO_H
#define BLKREP_MDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/meta/meta.h"

struct config;
struct config_node;
struct bitmap;
struct mdio;

/* Opens the node's backing store and meta area and computes the layout for
 * max_peers bitmap slots.  With max_peers 0 the layout is the one the
 * superblock names: mdio_read_sb() finds it (until then, one slot's).
 * With create, a missing or short external meta file is created or
 * extended to the size the layout needs. */
struct mdio *mdio_open(const struct config *cfg, const struct config_node *node, bool create,
		       unsigned max_peers, char *err, size_t errlen);

/* Sets the layout to max_peers slots (for create, after looking for
 * existing metadata), extending a short external meta file. */
int mdio_use_slots(struct mdio *m, unsigned max_peers, char *err, size_t errlen);
void mdio_close(struct mdio *m);

const struct meta_layout *mdio_layout(const struct mdio *m);

/* Where the metadata lives, for messages: "PATH (internal)" or "PATH". */
const char *mdio_where(const struct mdio *m);

/* Reads the current superblock.  Fails with the decoder's reason when there
 * is none or it is corrupt.  Opened with max_peers 0, it also finds the
 * layout: internal metadata moves with its slot count, so each count is
 * tried, fewest first, until a superblock says it is that count's, and the
 * first place holding blkrep's magic but no valid superblock stops it. */
int mdio_read_sb(struct mdio *m, struct meta_sb *sb, char *err, size_t errlen);

/* Writes sb (seq bumped) to the copy not read last, then fdatasync. */
int mdio_write_sb(struct mdio *m, struct meta_sb *sb, char *err, size_t errlen);

/* Writes fresh metadata: both superblock copies, an empty activity log and
 * all-clean bitmap slots.  sb->max_peers must be the layout's. */
int mdio_format(struct mdio *m, struct meta_sb *sb, char *err, size_t errlen);

/* Reads the activity-log extents (up to max) into ext; *n gets the count. */
int mdio_read_al(struct mdio *m, uint32_t *ext, unsigned max, unsigned *n, char *err,
		 size_t errlen);

/* Where the next activity-log snapshot goes, for a caller that writes it
 * itself (through its ring): the meta area's fd, the offset of the copy
 * that does not hold the newest durable snapshot, and the seq to encode it
 * with (one above that snapshot's).  Changes nothing: until
 * mdio_al_done(m, true), every call names the same copy and seq, so a
 * failed (maybe torn) write is retried there and the other copy keeps the
 * last good snapshot.  Call mdio_read_al() (or mdio_format()) first. */
uint64_t mdio_al_next(struct mdio *m, int *fd, uint64_t *off);

/* The outcome of writing the snapshot mdio_al_next() placed: ok means it is
 * durable (written in full with RWF_DSYNC or followed by an fdatasync),
 * and only then does the next snapshot move to the other copy with a
 * higher seq.  A failure changes nothing. */
void mdio_al_done(struct mdio *m, bool ok);

/* Reads bitmap slot slot into bm (bitmap_nbits(bm) == layout nbits). */
int mdio_read_bitmap(struct mdio *m, unsigned slot, struct bitmap *bm, char *err,
		     size_t errlen);

/* Writes the dirty pages of bm, bitmap slot slot, then fdatasync (neither when no page
 * is dirty).  The pages are clean only once both succeeded: after a
 * failure they stay dirty, and every call fails again until a write and
 * its fdatasync really succeed. */
int mdio_write_bitmap(struct mdio *m, unsigned slot, struct bitmap *bm, char *err,
		      size_t errlen);
/* The same for slots 0 .. n - 1 (bms[i] is slot i), with one fdatasync
 * after all their pages. */
int mdio_write_bitmaps(struct mdio *m, struct bitmap *const *bms, unsigned n, char *err,
		       size_t errlen);

#endif
