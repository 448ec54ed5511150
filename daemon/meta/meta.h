/* The metadata codec: where the metadata lives (layout), the superblock, and
 * the activity-log snapshot blocks, in and out of their on-disk form.  The
 * daemon reads and writes the blocks; this module does no I/O.
 *
 * Meta area (internal: at the end of the backing store; external: at
 * offset 0 of the meta file), every part 4096-aligned:
 *
 *	superblock A | superblock B | AL snapshot A | AL snapshot B |
 *	bitmap slot 0 pages | slot 1 pages | ... | slot max_peers-1 pages
 *
 * One bitmap slot per peer (DRBD 9's bitmap slots), each bm_bytes long; the
 * number of slots (max_peers) is fixed at create, so a node added later
 * does not move the metadata.  With max_peers 1 the layout is version 1's
 * byte for byte, so version 1 metadata is upgraded by rewriting the
 * superblock only.
 *
 * The superblock and the activity log are each written alternately to their
 * A and B copies, and the valid copy with the higher seq wins.  A write torn
 * by a crash thus damages only the copy being replaced, and the other one
 * still holds the last durable state; the next write goes to the copy that
 * was not picked, and stays there until a write to it succeeded.  The bitmap pages are utils/bitmap's on-disk form.
 *
 * All integers are little-endian on disk.  Every block ends in an XXH64 (seed
 * 0) of the whole block computed with those last 8 bytes zero.  The magic and
 * version of the superblock stay at offsets 0 and 8 in every future version,
 * so an old blkrep can always say that the metadata is newer than itself.
 *
 * Errors: functions return 0 or -1 and, on -1, set *why to a one-line reason
 * fit for the user.  It points to a string constant, or for the version
 * message to a thread-local buffer that the next call in this thread reuses. */
#ifndef BLKREP_META_H
#define BLKREP_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/meta/gen.h"

#define META_BLOCK_BYTES	4096U
#define META_VERSION		2U
#define META_PEERS_MAX		7U	/* bitmap slots at most (8 nodes) */

#define META_EXTENT_MIN		4096U		/* bitmap granularity bounds */
#define META_EXTENT_MAX		(1U << 20)
#define META_EXTENT_DEFAULT	(64U << 10)
#define META_AL_EXTENT_MIN	4096U		/* activity-log extent bounds */
#define META_AL_EXTENT_MAX	(1U << 30)
#define META_AL_EXTENT_DEFAULT	(4U << 20)
#define META_AL_SLOTS_MIN	16U
#define META_AL_SLOTS_MAX	1000U
#define META_AL_SLOTS_DEFAULT	257U

/* Resource and node names: at most META_NAME_MAX printable ASCII bytes. */
#define META_NAME_BYTES		64U
#define META_NAME_MAX		(META_NAME_BYTES - 1)

/* Extents an activity-log block holds: (4096 - 20 header - 8 checksum) / 4. */
#define META_AL_MAX		1017U

struct meta_layout {
	uint64_t data_bytes;	/* data area: offset 0 .. data_bytes of the backing store */
	uint32_t extent_bytes;	/* bitmap granularity */
	uint64_t nbits;		/* ceil(data_bytes / extent_bytes) */
	/* Offsets in the meta area's file: the backing store if internal, the
	 * meta file if external. */
	uint64_t sb_offset[2];
	uint64_t al_offset[2];
	uint64_t bm_offset;	/* slot 0's: meta_layout_bm_offset() for any */
	uint64_t bm_bytes;	/* one slot: ceil(nbits / 8) rounded up to 4096 */
	uint32_t max_peers;	/* bitmap slots, 1..META_PEERS_MAX */
	uint64_t meta_bytes;	/* the whole meta area, from sb_offset[0] */
};

/* Where bitmap slot i (< l->max_peers) starts. */
uint64_t meta_layout_bm_offset(const struct meta_layout *l, unsigned i);

/* Metadata at the end of a backing store of backing_bytes: the meta area
 * ends at backing_bytes rounded down to 4096, and the data area before it is
 * as large as possible, a multiple of 4096.  At most 4096 bytes between the
 * two stay unused, where one more block of data would need one more bitmap
 * page than there is room for.  Returns -1 if
 * extent_bytes is not a power of two in META_EXTENT_MIN..MAX or the backing
 * store leaves no room for data, or max_peers is not 1..META_PEERS_MAX. */
int meta_layout_internal(uint64_t backing_bytes, uint32_t extent_bytes, unsigned max_peers,
			 struct meta_layout *l, const char **why);

/* Metadata at offset 0 of a separate meta file: the data area is the whole
 * backing store rounded down to 4096.  Returns -1 for a bad extent size, a
 * backing store under 4096 bytes, or a meta file smaller than meta_bytes. */
int meta_layout_external(uint64_t backing_bytes, uint64_t meta_file_bytes,
			 uint32_t extent_bytes, unsigned max_peers, struct meta_layout *l,
			 const char **why);

/* Superblock flags. */
#define META_F_CRASHED_PRIMARY	(1U << 0)	/* primary and not yet shut down cleanly */
#define META_F_CLEAN		(1U << 1)	/* the last shutdown was clean */
#define META_F_ZEROED		(1U << 2)	/* created with --zeroed */
#define META_F_WAS_PRIMARY	(1U << 3)	/* role at the last shutdown was primary */
#define META_F_ALL		(META_F_CRASHED_PRIMARY | META_F_CLEAN | META_F_ZEROED | \
				 META_F_WAS_PRIMARY)

enum meta_disk {
	META_DISK_INCONSISTENT,
	META_DISK_OUTDATED,
	META_DISK_CONSISTENT,
	META_DISK_UPTODATE,
};

enum meta_mode {
	META_MODE_SYNC,
	META_MODE_ASYNC,
};

/* Generation identifiers are gen.h's (DESIGN.md, "Roles, data states,
 * generations"); the superblock stores GEN_HISTORY of them. */
#define META_GEN_HISTORY	GEN_HISTORY

/* One bitmap slot: what this node keeps about one peer. */
struct meta_slot {
	char node[META_NAME_BYTES];	/* the peer's name, "": a free slot */
	uint64_t bitmap_gen;		/* the slot's bitmap is relative to it; 0: none */
	enum meta_disk disk;		/* this node's last knowledge of the peer's disk */
	uint32_t flags;			/* none defined yet: 0 */
};

/* The superblock in host form.  Names are NUL-terminated.  The node's
 * generations (gen.current, gen.history) are node-wide; the bitmap ids
 * are per slot, and gen.bitmap is always 0 (encoding a non-zero one is a
 * bug, asserted). */
struct meta_sb {
	uint32_t version;	/* as read (1 or 2); written as META_VERSION */
	uint64_t seq;		/* bumped by the caller for every write */
	char resource[META_NAME_BYTES];
	char node[META_NAME_BYTES];
	uint64_t data_bytes;
	uint32_t extent_bytes;
	uint32_t al_extent_bytes;
	uint32_t al_slots;
	struct gen_ids gen;
	uint32_t flags;		/* META_F_* */
	enum meta_disk disk;
	enum meta_mode mode;
	int32_t nbd_index;	/* attached /dev/nbdN, or -1 */
	uint64_t agreed_bytes;	/* the size the pair replicates (the smaller data
				 * area), kept from the last connect; 0: not yet */
	uint32_t max_peers;	/* bitmap slots, 1..META_PEERS_MAX, fixed at create */
	struct meta_slot slot[META_PEERS_MAX];	/* [max_peers..] all zero */
};

/* Fills sb with defaults: zeros, empty names, default extent sizes and AL
 * slots, disk inconsistent, sync mode, no NBD device, one free peer slot. */
void meta_sb_defaults(struct meta_sb *sb);

/* Encodes sb as version META_VERSION into blk (META_BLOCK_BYTES).  Names are
 * cut at META_NAME_MAX bytes.  Every byte of blk is written. */
void meta_sb_encode(const struct meta_sb *sb, uint8_t *blk);

/* Decodes and validates a superblock: magic, version, checksum, and every
 * field (names printable and NUL-padded, sizes in range, enums known, unused
 * bytes zero, max_peers in range, free and unused slots all zero, slot names
 * unique and not the node's own).  Version 1 is read as version 2 with one
 * slot: its name "" (the caller knows the one peer), its bitmap id and
 * disk version 1's gen.bitmap and peer disk; sb->version says 1.  Returns
 * 0 and fills *sb, or -1 with *why, sb unspecified. */
int meta_sb_decode(const uint8_t *blk, struct meta_sb *sb, const char **why);

/* Whether sb's geometry is the layout l computed from the backing store
 * (and meta file) as they are: data_bytes and extent_bytes, which every
 * other offset and size of the layout follows from.  A superblock edited to
 * claim more (its checksum recomputed) would make the export cover the
 * metadata.  Returns 0, or -1 with "FIELD: superblock says X, the layout
 * Y" in why[len]. */
int meta_sb_check_layout(const struct meta_sb *sb, const struct meta_layout *l, char *why,
			 size_t len);

/* meta_sb_pick()'s *why where neither copy holds blkrep's magic. */
#define META_WHY_NONE "no blkrep metadata here"

/* Picks the superblock from copies a and b: the valid one with the higher
 * seq (a on a tie), *which = 0 for a or 1 for b; the next write goes to copy
 * 1 - *which.  On success *why is NULL, or names the problem of the copy not
 * picked, for a warning.  Returns -1 if neither copy is valid, with the more
 * useful reason (a corruption rather than a missing magic: "no blkrep
 * metadata here" only if neither copy has the magic), and also if either copy
 * is of a newer version: that metadata was upgraded, and an older copy must
 * not be mistaken for the current state. */
int meta_sb_pick(const uint8_t *a, const uint8_t *b, struct meta_sb *out, int *which,
		 const char **why);

/* Encodes an activity-log snapshot of n (<= META_AL_MAX, more are cut)
 * extent numbers into blk (META_BLOCK_BYTES).  Every byte is written. */
void meta_al_encode(uint64_t seq, const uint32_t *ext, unsigned n, uint8_t *blk);

/* Decodes a snapshot into ext (room for max), *n entries.  Extent numbers are
 * not range-checked here: the caller knows the data size.  Returns -1 (with
 * *why) on a missing magic, a checksum mismatch, a count over META_AL_MAX or
 * over max, or non-zero unused bytes. */
int meta_al_decode(const uint8_t *blk, uint64_t *seq, uint32_t *ext, unsigned max, unsigned *n,
		   const char **why);

/* Like meta_sb_pick() for the two activity-log copies. */
int meta_al_pick(const uint8_t *a, const uint8_t *b, uint64_t *seq, uint32_t *ext, unsigned max,
		 unsigned *n, int *which, const char **why);

/* "inconsistent", "outdated", "consistent", "uptodate"; "unknown" otherwise. */
const char *meta_disk_name(enum meta_disk d);

/* The slot of peer name in sb, -1 if none. */
int meta_sb_slot(const struct meta_sb *sb, const char *name);

/* Gives each of the n peers that has no slot in sb the first free one (a
 * free slot of version 1 metadata keeps its bitmap id and disk, which are
 * its one peer's), in the order given; a slot naming a peer not among them
 * is kept.  Returns the number of slots assigned, or -1 (sb unchanged) if
 * there are not enough free slots. */
int meta_sb_assign_slots(struct meta_sb *sb, const char *const *peers, unsigned n);

/* Writes a readable multi-line dump of sb (for `blkrep dump-md`) into buf,
 * always NUL-terminated when len > 0.  Returns the length the whole text
 * needs, as snprintf() does. */
int meta_sb_to_text(const struct meta_sb *sb, char *buf, size_t len);

#endif
