/* The replication protocol's message codec.  Pure code: no I/O, no
 * printing, no allocation.
 *
 * Every message is a fixed 32-byte header followed by `length` payload
 * bytes.  The header, big-endian on the wire:
 *
 *	 0  magic   u32	0x424c4b52 "BLKR"
 *	 4  type    u16	enum msg_type
 *	 6  flags   u16	MSG_F_*, allowed per type
 *	 8  length  u32	payload bytes that follow the header
 *	12  count   u32	bytes covered on disk, or an errno value in acks
 *	16  seq     u64	sequence / barrier number, echoed by acks
 *	24  offset  u64	byte offset on disk, or a bit index for MSG_BITMAP
 *
 * msg_hdr_decode() is the one place where a received header is judged:
 * everything knowable from the 32 bytes alone is checked there, so that the
 * caller can trust `length` before reading the payload.  A header it refuses
 * means the peer is broken or hostile; the stream cannot be trusted to stay
 * framed, so the link is dropped.  Byte order is converted only in this
 * module.
 *
 * Versioning: the protocol version is negotiated in MSG_HELLO with
 * msg_negotiate().  The layout of the header and the first MSG_HELLO_SIZE
 * bytes of a HELLO payload are frozen for every version, so any two
 * versions can at least refuse each other with a clear reason; a later
 * version extends HELLO by appending bytes, which this version ignores. */
#ifndef BLKREP_PROTO_MSG_H
#define BLKREP_PROTO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_MAGIC		0x424c4b52U	/* "BLKR" */
#define MSG_HDR_SIZE		32

#define MSG_VERSION_MIN		1
#define MSG_VERSION_MAX		1

#define MSG_MAX_DATA		(32U << 20)	/* WRITE / RESYNC_DATA payload */
#define MSG_MAX_BITMAP		(64U << 10)	/* one BITMAP chunk */
#define MSG_MAX_REASON		1024		/* REFUSE payload */
#define MSG_MAX_HELLO		4096		/* HELLO with a later version's tail */
#define MSG_MAX_ERRNO		4095		/* largest error in an ack's count */
#define MSG_MAX_DIGESTS		(64U << 10)	/* VERIFY_REPLY payload */
#define MSG_AUTH_SIZE		32		/* HMAC-SHA256 */
#define MSG_NONCE_SIZE		32
#define MSG_NAME_SIZE		64		/* resource / node name incl. NUL */
#define MSG_HELLO_SIZE		228		/* encoded struct msg_hello */
#define MSG_GEN_HISTORY		4

/* Wire values: never renumber. */
enum msg_type {
	MSG_HELLO = 1,		/* payload: struct msg_hello */
	MSG_AUTH = 2,		/* payload: HMAC, see proto/auth.h */
	MSG_REFUSE = 3,		/* payload: UTF-8 reason; the sender closes;
				 * seq MSG_REFUSE_ROUTINE: an expected step,
				 * logged as information */
	MSG_STATE = 4,		/* payload: struct msg_hello, after connect */
	MSG_WRITE = 5,		/* offset, count, seq; payload: count bytes */
	MSG_TRIM = 6,		/* offset, count, seq; zeroes the range */
	MSG_ZERO = 7,		/* offset, count, seq */
	MSG_FLUSH = 8,		/* seq: barrier number */
	MSG_ACK = 9,		/* seq of the WRITE/TRIM/ZERO/RESYNC_DATA; count: errno */
	MSG_FLUSH_ACK = 10,	/* seq: barrier number; count: errno */
	MSG_PING = 11,		/* seq */
	MSG_PONG = 12,		/* seq echoed from the PING */
	MSG_BITMAP = 13,	/* offset: first bit (multiple of 8); payload: bits */
	MSG_RESYNC_REQ = 14,	/* target asks: offset, count (<= MSG_MAX_DATA), seq */
	MSG_RESYNC_DATA = 15,	/* source answers: like WRITE */
	MSG_RESYNC_DONE = 16,	/* no payload */
	MSG_VERIFY_REQ = 17,	/* offset, count (<= MSG_MAX_DATA), seq: checksum this */
	MSG_VERIFY_REPLY = 18,	/* seq echoed; payload: one XXH64 per extent, big-endian */
	MSG_GEN = 19,		/* primary to its secondaries (3 nodes or more): payload
				 * struct msg_gen */
	MSG_MARK = 20,		/* primary to its secondaries (3 nodes or more), no payload:
				 * every write sent before the previous MARK is flushed on
				 * every connected peer */
};
#define MSG_TYPE_MAX	MSG_MARK
#define MSG_BEHIND_MAX		7	/* nodes an MSG_GEN names (8 nodes) */
#define MSG_GEN_MAX		(16 + MSG_BEHIND_MAX * (MSG_NAME_SIZE + 8))

#define MSG_F_FUA	(1U << 0)	/* WRITE, TRIM, ZERO: durable before the ack */
#define MSG_F_NO_HOLE	(1U << 1)	/* ZERO: allocate, do not punch */
#define MSG_F_LAST	(1U << 2)	/* BITMAP: the final chunk */
#define MSG_F_NOBARRIER	(1U << 3)	/* FLUSH: durability only; later writes may be
					 * applied before it completes */

#define MSG_REFUSE_ROUTINE 1

struct msg_hdr {
	uint16_t type;		/* enum msg_type */
	uint16_t flags;
	uint32_t length;	/* payload bytes */
	uint32_t count;
	uint64_t seq;
	uint64_t offset;
};

/* Roles and disk states as sent in HELLO and STATE. */
enum msg_role {
	MSG_ROLE_SECONDARY = 0,
	MSG_ROLE_PRIMARY = 1,
	MSG_ROLE_WITNESS = 2, /* a diskless voter: no data, never primary */
};

enum msg_disk {
	MSG_DISK_INCONSISTENT = 0,
	MSG_DISK_OUTDATED = 1,
	MSG_DISK_CONSISTENT = 2,
	MSG_DISK_UPTODATE = 3,
	MSG_DISK_DISKLESS = 4, /* a witness: size_bytes 0 */
};

#define MSG_HELLO_F_CRASHED_PRIMARY	(1U << 0)	/* went down uncleanly as primary */
#define MSG_HELLO_F_ZEROED		(1U << 1)	/* created --zeroed */
#define MSG_HELLO_F_NO_SECRET		(1U << 2)	/* allow-unauthenticated, no secret */
#define MSG_HELLO_F_ASYNC		(1U << 3)	/* replicates in async mode */
#define MSG_HELLO_F_NO_CHANGES		(1U << 4)	/* its out-of-sync bitmap is empty */
#define MSG_HELLO_F_DISCARD		(1U << 5)	/* resolve --discard-local: its changes go */
#define MSG_HELLO_F_RESUMED		(1U << 6)	/* primary only because it went down as one */
#define MSG_HELLO_F_ALL			0x7fU
/* flags2, the byte that was reserved (zero) in the first version: */
#define MSG_HELLO_F2_UNSURE		(1U << 0)	/* three nodes or more: a secondary that
							 * restarted uncleanly and cannot say yet
							 * where it differs from the others */
#define MSG_HELLO_F2_NO_QUORUM	(1U << 1)	/* a primary whose writes wait for quorum:
							 * it steps down for a newer node, so a
							 * verdict against it is no split brain */
#define MSG_HELLO_F2_ALL		0x03U

/* HELLO and STATE payload.  Names are NUL-terminated printable ASCII,
 * zero-padded on the wire; gen_* mirror struct gen_ids (daemon/meta/gen.h). */
struct msg_hello {
	uint16_t version_min, version_max;
	char resource[MSG_NAME_SIZE];
	char node[MSG_NAME_SIZE];
	uint64_t size_bytes;		/* data area */
	uint32_t extent_bytes;		/* bitmap granularity */
	uint8_t role;			/* enum msg_role */
	uint8_t disk;			/* enum msg_disk */
	uint8_t flags;			/* MSG_HELLO_F_* */
	uint8_t flags2;			/* MSG_HELLO_F2_* */
	uint64_t gen_current, gen_bitmap, gen_history[MSG_GEN_HISTORY];
	uint8_t nonce[MSG_NONCE_SIZE];	/* HELLO: fresh per connection; STATE: zero */
};

/* MSG_GEN: the primary's generation now and before (equal when only the
 * list changed), and the nodes that miss its stream (not connected, or
 * connected but not yet resynced), each with the generation the primary's
 * bitmap slot for it counts from.  A secondary that was at old_current
 * moves to new_current and records what it applies for each named node. */
struct msg_gen {
	uint64_t old_current, new_current;
	unsigned nbehind;
	struct {
		char node[MSG_NAME_SIZE];
		uint64_t bitmap_gen;
	} behind[MSG_BEHIND_MAX];
};

/* Encodes g into buf (MSG_GEN_MAX bytes): the payload's length. */
size_t msg_gen_encode(uint8_t *buf, const struct msg_gen *g);
/* Decodes an MSG_GEN payload: 0, or -1 with *why (a length that is not 16
 * plus whole entries, a name that is not NUL-terminated printable ASCII,
 * a zero generation). */
int msg_gen_decode(const uint8_t *buf, size_t len, struct msg_gen *g, const char **why);

/* Decodes and validates a header.  Returns 0 with *h filled, or -1 with
 * *why set to a static reason ("bad magic", ...) and *h undefined.  Checks
 * the magic, the type, the flags allowed for the type, the payload length
 * for the type, that unused fields are zero, and that a disk range
 * (offset + count) stays below 2^63.  Not checked here, because the header
 * cannot know it: the range against the data area and the bitmap chunk
 * against the bitmap size (msg_hdr_check_bounds()), and the payload itself
 * (msg_hello_decode(), msg_reason_sanitize()). */
int msg_hdr_decode(const uint8_t b[MSG_HDR_SIZE], struct msg_hdr *h, const char **why);

/* Encodes a header.  Does not validate: encoding something
 * msg_hdr_decode() refuses is the caller's bug. */
void msg_hdr_encode(uint8_t b[MSG_HDR_SIZE], const struct msg_hdr *h);

/* Checks a decoded header against the session that HELLO established:
 * disk ranges within size_bytes, bitmap chunks within bitmap_bits.
 * Returns 0, or -1 with a static reason in *why. */
int msg_hdr_check_bounds(const struct msg_hdr *h, uint64_t size_bytes, uint64_t bitmap_bits,
			 const char **why);

/* Encodes a HELLO/STATE payload into buf, exactly MSG_HELLO_SIZE bytes.
 * Names are truncated to MSG_NAME_SIZE - 1 bytes and zero-padded. */
void msg_hello_encode(uint8_t *buf, const struct msg_hello *m);

/* Decodes a HELLO/STATE payload of len bytes (at least MSG_HELLO_SIZE;
 * bytes beyond it belong to a later version and are ignored).  Validates
 * version_min <= version_max, non-empty NUL-terminated printable names with
 * zero padding, a non-zero size (0 only with disk DISKLESS, a witness),
 * a power-of-two extent size, role, disk (role WITNESS only DISKLESS),
 * flags, and a non-zero current generation.  Returns 0, or -1 with a static
 * reason in *why. */
int msg_hello_decode(const uint8_t *buf, size_t len, struct msg_hello *m, const char **why);

/* Picks the highest version both ranges contain.  Returns 0 with *chosen
 * set, or -1 if the ranges do not overlap. */
int msg_negotiate(uint16_t my_min, uint16_t my_max, uint16_t peer_min, uint16_t peer_max,
		  uint16_t *chosen);

/* Formats the REFUSE reason for a version mismatch into buf ("incompatible
 * protocol version: peer speaks 2..3, this node 1..1").  Returns the
 * length snprintf() would have written. */
int msg_refuse_version(char *buf, size_t len, uint16_t peer_min, uint16_t peer_max,
		       uint16_t my_min, uint16_t my_max);

/* Copies a REFUSE payload into out as a printable, NUL-terminated string
 * fit for logs (JSON output still escapes it): valid UTF-8 sequences are
 * kept, control characters and invalid bytes become '?'.  out must hold
 * len + 1 bytes; len is at most MSG_MAX_REASON after msg_hdr_decode().
 * Returns the string length. */
size_t msg_reason_sanitize(const uint8_t *p, size_t len, char *out);

/* Name of a message type for log lines ("WRITE", ...; "UNKNOWN"). */
const char *msg_type_name(uint16_t type);

/* Name of a disk state ("uptodate", ..., "diskless"; "unknown"). */
const char *msg_disk_name(uint8_t disk);

/* Name of a role ("secondary", "primary", "witness"; "unknown"). */
const char *msg_role_name(uint8_t role);

#endif
