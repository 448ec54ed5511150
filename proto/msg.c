/* Replication message codec.  One table says, per type, which flags,
 * which payload and which header fields are allowed; msg_hdr_decode()
 * applies it, so no other code needs to know the rules. */
#include "msg.h"

#include <stdio.h>
#include <string.h>

#include "nbd/wire.h"
#include "utils/namefield.h"

/* Largest byte offset a range may reach: pwrite() takes a signed off_t. */
#define MSG_MAX_OFFSET	((uint64_t)INT64_MAX)

enum payload_kind {
	P_NONE,		/* length == 0 */
	P_DATA,		/* length == count, 1..MSG_MAX_DATA */
	P_HELLO,	/* MSG_HELLO_SIZE..MSG_MAX_HELLO */
	P_STATE,	/* exactly MSG_HELLO_SIZE */
	P_AUTH,		/* exactly MSG_AUTH_SIZE */
	P_REASON,	/* 1..MSG_MAX_REASON */
	P_BITMAP,	/* 1..MSG_MAX_BITMAP */
	P_DIGESTS,	/* 8..MSG_MAX_DIGESTS, a multiple of 8 */
	P_GEN,		/* 16 + whole entries, at most MSG_BEHIND_MAX */
};

enum count_kind {
	C_ZERO,		/* unused: must be 0 */
	C_RANGE,	/* bytes on disk, >= 1; offset + count is a disk range */
	C_ERRNO,	/* 0 or an errno value */
};

struct type_rule {
	const char *name;
	uint16_t flags;		/* allowed MSG_F_* */
	uint8_t payload;	/* enum payload_kind */
	uint8_t count;		/* enum count_kind */
	bool offset;		/* offset is used (else must be 0) */
	uint32_t max_count;	/* C_RANGE upper bound, 0 for none below 2^32 */
};

/* seq is free in every message: a sender may number anything it sends. */
static const struct type_rule rules[MSG_TYPE_MAX + 1] = {
	[MSG_HELLO] = { "HELLO", 0, P_HELLO, C_ZERO, false, 0 },
	[MSG_AUTH] = { "AUTH", 0, P_AUTH, C_ZERO, false, 0 },
	[MSG_REFUSE] = { "REFUSE", 0, P_REASON, C_ZERO, false, 0 },
	[MSG_STATE] = { "STATE", 0, P_STATE, C_ZERO, false, 0 },
	[MSG_WRITE] = { "WRITE", MSG_F_FUA, P_DATA, C_RANGE, true, MSG_MAX_DATA },
	[MSG_TRIM] = { "TRIM", MSG_F_FUA, P_NONE, C_RANGE, true, 0 },
	[MSG_ZERO] = { "ZERO", MSG_F_FUA | MSG_F_NO_HOLE, P_NONE, C_RANGE, true, 0 },
	[MSG_FLUSH] = { "FLUSH", MSG_F_NOBARRIER, P_NONE, C_ZERO, false, 0 },
	[MSG_ACK] = { "ACK", 0, P_NONE, C_ERRNO, false, 0 },
	[MSG_FLUSH_ACK] = { "FLUSH_ACK", 0, P_NONE, C_ERRNO, false, 0 },
	[MSG_PING] = { "PING", 0, P_NONE, C_ZERO, false, 0 },
	[MSG_PONG] = { "PONG", 0, P_NONE, C_ZERO, false, 0 },
	[MSG_BITMAP] = { "BITMAP", MSG_F_LAST, P_BITMAP, C_ZERO, true, 0 },
	[MSG_RESYNC_REQ] = { "RESYNC_REQ", 0, P_NONE, C_RANGE, true, MSG_MAX_DATA },
	[MSG_RESYNC_DATA] = { "RESYNC_DATA", 0, P_DATA, C_RANGE, true, MSG_MAX_DATA },
	[MSG_RESYNC_DONE] = { "RESYNC_DONE", 0, P_NONE, C_ZERO, false, 0 },
	[MSG_VERIFY_REQ] = { "VERIFY_REQ", 0, P_NONE, C_RANGE, true, MSG_MAX_DATA },
	[MSG_VERIFY_REPLY] = { "VERIFY_REPLY", 0, P_DIGESTS, C_ERRNO, false, 0 },
	[MSG_GEN] = { "GEN", 0, P_GEN, C_ZERO, false, 0 },
	[MSG_MARK] = { "MARK", 0, P_NONE, C_ZERO, false, 0 },
};

#define GEN_ENTRY (MSG_NAME_SIZE + 8)

static const struct type_rule *rule_of(uint16_t type)
{
	if (type == 0 || type > MSG_TYPE_MAX)
		return NULL;
	return &rules[type];
}

static const char *check_length(const struct type_rule *r, const struct msg_hdr *h)
{
	uint32_t n = h->length;

	switch (r->payload) {
	case P_NONE:
		return n == 0 ? NULL : "unexpected payload";
	case P_DATA:
		if (n == 0)
			return "empty data payload";
		if (n > MSG_MAX_DATA)
			return "data payload too large";
		return n == h->count ? NULL : "payload length differs from count";
	case P_HELLO:
		return n >= MSG_HELLO_SIZE && n <= MSG_MAX_HELLO ? NULL : "bad hello length";
	case P_STATE:
		return n == MSG_HELLO_SIZE ? NULL : "bad state length";
	case P_AUTH:
		return n == MSG_AUTH_SIZE ? NULL : "bad auth length";
	case P_REASON:
		return n >= 1 && n <= MSG_MAX_REASON ? NULL : "bad refusal length";
	case P_BITMAP:
		return n >= 1 && n <= MSG_MAX_BITMAP ? NULL : "bad bitmap chunk length";
	case P_DIGESTS:
		return n >= 8 && n <= MSG_MAX_DIGESTS && n % 8 == 0 ? NULL :
								 "bad checksum list length";
	case P_GEN:
		return n >= 16 && n <= MSG_GEN_MAX && (n - 16) % GEN_ENTRY == 0 ? NULL :
										 "bad generation list length";
	}
	return "bad payload rule";
}

static const char *check_fields(const struct type_rule *r, const struct msg_hdr *h)
{
	switch (r->count) {
	case C_ZERO:
		if (h->count)
			return "count must be zero";
		break;
	case C_RANGE:
		if (h->count == 0)
			return "empty range";
		if (r->max_count && h->count > r->max_count)
			return "range too large";
		break;
	case C_ERRNO:
		if (h->count > MSG_MAX_ERRNO)
			return "bad error code";
		break;
	}
	if (!r->offset && h->offset)
		return "offset must be zero";
	if (h->type == MSG_BITMAP) {
		if (h->offset % 8)
			return "bitmap chunk not byte-aligned";
		/* length * 8 bits must be addressable after offset */
		if (h->offset > MSG_MAX_OFFSET - (uint64_t)h->length * 8)
			return "bitmap chunk out of range";
	}
	if (r->count == C_RANGE && h->offset > MSG_MAX_OFFSET - h->count)
		return "range beyond 2^63";
	return NULL;
}

int msg_hdr_decode(const uint8_t b[MSG_HDR_SIZE], struct msg_hdr *h, const char **why)
{
	const struct type_rule *r;
	const char *bad;

	if (get_be32(b) != MSG_MAGIC) {
		*why = "bad magic";
		return -1;
	}
	h->type = get_be16(b + 4);
	h->flags = get_be16(b + 6);
	h->length = get_be32(b + 8);
	h->count = get_be32(b + 12);
	h->seq = get_be64(b + 16);
	h->offset = get_be64(b + 24);

	r = rule_of(h->type);
	if (!r) {
		*why = "unknown message type";
		return -1;
	}
	if (h->flags & ~r->flags) {
		*why = "flags not allowed for this type";
		return -1;
	}
	bad = check_length(r, h);
	if (!bad)
		bad = check_fields(r, h);
	if (bad) {
		*why = bad;
		return -1;
	}
	return 0;
}

void msg_hdr_encode(uint8_t b[MSG_HDR_SIZE], const struct msg_hdr *h)
{
	put_be32(b, MSG_MAGIC);
	put_be16(b + 4, h->type);
	put_be16(b + 6, h->flags);
	put_be32(b + 8, h->length);
	put_be32(b + 12, h->count);
	put_be64(b + 16, h->seq);
	put_be64(b + 24, h->offset);
}

int msg_hdr_check_bounds(const struct msg_hdr *h, uint64_t size_bytes, uint64_t bitmap_bits,
			 const char **why)
{
	const struct type_rule *r = rule_of(h->type);

	if (!r) {
		*why = "unknown message type";
		return -1;
	}
	if (r->count == C_RANGE &&
	    (h->offset > size_bytes || h->count > size_bytes - h->offset)) {
		*why = "range beyond the end of the data area";
		return -1;
	}
	/* The last chunk's last byte may carry padding bits past the end. */
	if (h->type == MSG_BITMAP &&
	    (h->offset >= bitmap_bits || h->length > (bitmap_bits + 7) / 8 - h->offset / 8)) {
		*why = "bitmap chunk beyond the end of the bitmap";
		return -1;
	}
	return 0;
}

/* Layout of the HELLO/STATE payload (frozen for every protocol version). */
#define H_VERSION_MIN	0
#define H_VERSION_MAX	2
#define H_RESOURCE	4
#define H_NODE		(H_RESOURCE + MSG_NAME_SIZE)
#define H_SIZE		(H_NODE + MSG_NAME_SIZE)
#define H_EXTENT	(H_SIZE + 8)
#define H_ROLE		(H_EXTENT + 4)
#define H_DISK		(H_ROLE + 1)
#define H_FLAGS		(H_DISK + 1)
#define H_PAD		(H_FLAGS + 1)
#define H_GEN		(H_PAD + 1)
#define H_NONCE		(H_GEN + 8 * (2 + MSG_GEN_HISTORY))
#define H_END		(H_NONCE + MSG_NONCE_SIZE)

_Static_assert(H_END == MSG_HELLO_SIZE, "MSG_HELLO_SIZE does not match the layout");

static void put_name(uint8_t *p, const char *name)
{
	size_t n = strnlen(name, MSG_NAME_SIZE - 1);

	memset(p, 0, MSG_NAME_SIZE);
	memcpy(p, name, n);
}

/* A name field (see utils/namefield.h): one encoding per name, so a HELLO
 * re-encodes to the same bytes. */
static const char *get_name(const uint8_t *p, char *name, const char *what_bad)
{
	if (!namefield_valid(p, MSG_NAME_SIZE))
		return what_bad;
	memcpy(name, p, MSG_NAME_SIZE);
	return NULL;
}

void msg_hello_encode(uint8_t *buf, const struct msg_hello *m)
{
	put_be16(buf + H_VERSION_MIN, m->version_min);
	put_be16(buf + H_VERSION_MAX, m->version_max);
	put_name(buf + H_RESOURCE, m->resource);
	put_name(buf + H_NODE, m->node);
	put_be64(buf + H_SIZE, m->size_bytes);
	put_be32(buf + H_EXTENT, m->extent_bytes);
	buf[H_ROLE] = m->role;
	buf[H_DISK] = m->disk;
	buf[H_FLAGS] = m->flags;
	buf[H_PAD] = m->flags2;
	put_be64(buf + H_GEN, m->gen_current);
	put_be64(buf + H_GEN + 8, m->gen_bitmap);
	for (int i = 0; i < MSG_GEN_HISTORY; i++)
		put_be64(buf + H_GEN + 16 + 8 * i, m->gen_history[i]);
	memcpy(buf + H_NONCE, m->nonce, MSG_NONCE_SIZE);
}

static const char *hello_check(const uint8_t *buf, struct msg_hello *m)
{
	const char *bad;

	m->version_min = get_be16(buf + H_VERSION_MIN);
	m->version_max = get_be16(buf + H_VERSION_MAX);
	if (m->version_min == 0 || m->version_min > m->version_max)
		return "bad version range";
	bad = get_name(buf + H_RESOURCE, m->resource, "bad resource name");
	if (!bad)
		bad = get_name(buf + H_NODE, m->node, "bad node name");
	if (bad)
		return bad;
	m->disk = buf[H_DISK];
	m->size_bytes = get_be64(buf + H_SIZE);
	/* Only a witness's (diskless) data area is empty. */
	if ((m->size_bytes == 0) != (m->disk == MSG_DISK_DISKLESS) ||
	    m->size_bytes > MSG_MAX_OFFSET)
		return "bad size";
	m->extent_bytes = get_be32(buf + H_EXTENT);
	if (m->extent_bytes < 512 || (m->extent_bytes & (m->extent_bytes - 1)))
		return "bad extent size";
	m->role = buf[H_ROLE];
	if (m->role > MSG_ROLE_WITNESS)
		return "bad role";
	if (m->disk > MSG_DISK_DISKLESS ||
	    (m->role == MSG_ROLE_WITNESS) != (m->disk == MSG_DISK_DISKLESS))
		return "bad disk state";
	m->flags = buf[H_FLAGS];
	if (m->flags & ~MSG_HELLO_F_ALL)
		return "unknown hello flags";
	m->flags2 = buf[H_PAD];
	if (m->flags2 & ~MSG_HELLO_F2_ALL)
		return "unknown hello flags";
	m->gen_current = get_be64(buf + H_GEN);
	if (m->gen_current == 0)
		return "no current generation";
	m->gen_bitmap = get_be64(buf + H_GEN + 8);
	for (int i = 0; i < MSG_GEN_HISTORY; i++)
		m->gen_history[i] = get_be64(buf + H_GEN + 16 + 8 * i);
	memcpy(m->nonce, buf + H_NONCE, MSG_NONCE_SIZE);
	return NULL;
}

int msg_hello_decode(const uint8_t *buf, size_t len, struct msg_hello *m, const char **why)
{
	const char *bad;

	if (len < MSG_HELLO_SIZE) {
		*why = "hello too short";
		return -1;
	}
	bad = hello_check(buf, m);
	if (bad) {
		*why = bad;
		return -1;
	}
	return 0;
}

int msg_negotiate(uint16_t my_min, uint16_t my_max, uint16_t peer_min, uint16_t peer_max,
		  uint16_t *chosen)
{
	uint16_t lo = my_min > peer_min ? my_min : peer_min;
	uint16_t hi = my_max < peer_max ? my_max : peer_max;

	if (lo > hi)
		return -1;
	*chosen = hi;
	return 0;
}

int msg_refuse_version(char *buf, size_t len, uint16_t peer_min, uint16_t peer_max,
		       uint16_t my_min, uint16_t my_max)
{
	return snprintf(buf, len, "incompatible protocol version: peer speaks %u..%u, this node %u..%u",
			peer_min, peer_max, my_min, my_max);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0.  Rejects
 * overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	/* C1 controls are as unwelcome in a log line as C0 ones. */
	if (cp >= 0x80 && cp <= 0x9f)
		return 0;
	return len;
}

size_t msg_reason_sanitize(const uint8_t *p, size_t len, char *out)
{
	size_t i = 0, o = 0;

	while (i < len) {
		size_t n = utf8_seq(p + i, len - i);

		if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f))
			n = 0;
		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return o;
}

const char *msg_type_name(uint16_t type)
{
	const struct type_rule *r = rule_of(type);

	return r ? r->name : "UNKNOWN";
}

const char *msg_disk_name(uint8_t disk)
{
	switch (disk) {
	case MSG_DISK_INCONSISTENT:
		return "inconsistent";
	case MSG_DISK_OUTDATED:
		return "outdated";
	case MSG_DISK_CONSISTENT:
		return "consistent";
	case MSG_DISK_UPTODATE:
		return "uptodate";
	case MSG_DISK_DISKLESS:
		return "diskless";
	default:
		return "unknown";
	}
}

const char *msg_role_name(uint8_t role)
{
	switch (role) {
	case MSG_ROLE_SECONDARY:
		return "secondary";
	case MSG_ROLE_PRIMARY:
		return "primary";
	case MSG_ROLE_WITNESS:
		return "witness";
	default:
		return "unknown";
	}
}

size_t msg_gen_encode(uint8_t *buf, const struct msg_gen *g)
{
	put_be64(buf, g->old_current);
	put_be64(buf + 8, g->new_current);
	for (unsigned i = 0; i < g->nbehind && i < MSG_BEHIND_MAX; i++) {
		put_name(buf + 16 + GEN_ENTRY * i, g->behind[i].node);
		put_be64(buf + 16 + GEN_ENTRY * i + MSG_NAME_SIZE, g->behind[i].bitmap_gen);
	}
	return 16 + GEN_ENTRY * (g->nbehind < MSG_BEHIND_MAX ? g->nbehind : MSG_BEHIND_MAX);
}

int msg_gen_decode(const uint8_t *buf, size_t len, struct msg_gen *g, const char **why)
{
	memset(g, 0, sizeof(*g));
	if (len < 16 || len > MSG_GEN_MAX || (len - 16) % GEN_ENTRY) {
		*why = "bad generation list length";
		return -1;
	}
	g->old_current = get_be64(buf);
	g->new_current = get_be64(buf + 8);
	g->nbehind = (unsigned)((len - 16) / GEN_ENTRY);
	if (!g->old_current || !g->new_current) {
		*why = "no current generation";
		return -1;
	}
	for (unsigned i = 0; i < g->nbehind; i++) {
		const uint8_t *e = buf + 16 + GEN_ENTRY * i;

		if ((*why = get_name(e, g->behind[i].node, "bad node name")))
			return -1;
		g->behind[i].bitmap_gen = get_be64(e + MSG_NAME_SIZE);
	}
	return 0;
}
