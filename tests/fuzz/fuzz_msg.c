/* libFuzzer harness for the replication message codec.
 *
 * Input: a byte stream as a peer would send it: headers, each followed by
 * its payload.  Every header is decoded and the verdict judged by an
 * independent statement of the rules below; an accepted header must
 * re-encode to the same bytes.  Payloads are decoded as the link would
 * (HELLO/STATE, REFUSE) or checked against a session (BITMAP, ranges).
 * A refused header ends the stream, as it ends the connection.
 */
// fuzz-sources: proto/msg.c utils/namefield.c
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd/wire.h"
#include "proto/msg.h"
#include "tests/fuzz/check.h"

/* The session the BITMAP and range checks run against. */
#define SESSION_SIZE	(1ULL << 30)
#define SESSION_BITS	16384ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The header rules, restated from the raw bytes without the codec's table. */
static bool oracle_accepts(const uint8_t *b)
{
	uint16_t type = get_be16(b + 4), flags = get_be16(b + 6);
	uint32_t len = get_be32(b + 8), count = get_be32(b + 12);
	uint64_t off = get_be64(b + 24);
	const uint64_t top = (uint64_t)INT64_MAX;

	if (get_be32(b) != 0x424c4b52)
		return false;
	switch (type) {
	case MSG_HELLO:
		return !flags && len >= 228 && len <= 4096 && !count && !off;
	case MSG_STATE:
		return !flags && len == 228 && !count && !off;
	case MSG_AUTH:
		return !flags && len == 32 && !count && !off;
	case MSG_REFUSE:
		return !flags && len >= 1 && len <= 1024 && !count && !off;
	case MSG_WRITE:
	case MSG_RESYNC_DATA:
		if (flags & ~(type == MSG_WRITE ? MSG_F_FUA : 0))
			return false;
		return len == count && len >= 1 && len <= (32U << 20) && off <= top - count;
	case MSG_TRIM:
	case MSG_ZERO:
		if (flags & ~(MSG_F_FUA | (type == MSG_ZERO ? MSG_F_NO_HOLE : 0)))
			return false;
		return !len && count && off <= top - count;
	case MSG_RESYNC_REQ:
	case MSG_VERIFY_REQ:
		return !flags && !len && count && count <= (32U << 20) && off <= top - count;
	case MSG_VERIFY_REPLY:
		return !flags && len >= 8 && len <= 65536 && len % 8 == 0 && count < 4096 &&
		       !off;
	case MSG_ACK:
	case MSG_FLUSH_ACK:
		return !flags && !len && count < 4096 && !off;
	case MSG_FLUSH:
		return !(flags & ~MSG_F_NOBARRIER) && !len && !count && !off;
	case MSG_PING:
	case MSG_PONG:
	case MSG_RESYNC_DONE:
	case MSG_MARK:
		return !flags && !len && !count && !off;
	case MSG_GEN:
		return !flags && len >= 16 && len <= MSG_GEN_MAX &&
		       (len - 16) % (MSG_NAME_SIZE + 8) == 0 && !count && !off;
	case MSG_BITMAP:
		return !(flags & ~MSG_F_LAST) && len >= 1 && len <= 65536 && !count &&
		       off % 8 == 0 && off <= top - 8ULL * len;
	default:
		return false;
	}
}

static bool oracle_in_session(const struct msg_hdr *h)
{
	switch (h->type) {
	case MSG_WRITE:
	case MSG_TRIM:
	case MSG_ZERO:
	case MSG_RESYNC_REQ:
	case MSG_RESYNC_DATA:
	case MSG_VERIFY_REQ:
		return h->offset + h->count <= SESSION_SIZE;	/* no wrap below 2^63 */
	case MSG_BITMAP:
		return h->offset < SESSION_BITS &&
		       h->offset + 8ULL * h->length < SESSION_BITS + 8;
	default:
		return true;
	}
}

static void check_hello(const uint8_t *p, size_t len)
{
	struct msg_hello m;
	uint8_t again[MSG_HELLO_SIZE];
	const char *why = NULL;
	char reason[160];
	uint16_t v;

	if (msg_hello_decode(p, len, &m, &why) != 0) {
		FUZZ_CHECK(why != NULL);
		return;
	}
	/* One encoding per HELLO: decoding accepted only canonical bytes. */
	msg_hello_encode(again, &m);
	FUZZ_CHECK(memcmp(again, p, MSG_HELLO_SIZE) == 0);
	FUZZ_CHECK(m.version_min >= 1 && m.version_min <= m.version_max);
	FUZZ_CHECK(strlen(m.resource) > 0 && strlen(m.resource) < MSG_NAME_SIZE);
	FUZZ_CHECK(strlen(m.node) > 0 && strlen(m.node) < MSG_NAME_SIZE);
	FUZZ_CHECK(m.role <= MSG_ROLE_WITNESS && m.disk <= MSG_DISK_DISKLESS);
	/* A witness, and it alone, is diskless, with no data area. */
	FUZZ_CHECK((m.role == MSG_ROLE_WITNESS) == (m.disk == MSG_DISK_DISKLESS));
	FUZZ_CHECK((m.size_bytes == 0) == (m.disk == MSG_DISK_DISKLESS));
	FUZZ_CHECK(m.gen_current != 0);

	if (msg_negotiate(MSG_VERSION_MIN, MSG_VERSION_MAX, m.version_min, m.version_max, &v) ==
	    0) {
		FUZZ_CHECK(v >= m.version_min && v <= m.version_max);
		FUZZ_CHECK(v >= MSG_VERSION_MIN && v <= MSG_VERSION_MAX);
		FUZZ_CHECK(v == (m.version_max < MSG_VERSION_MAX ? m.version_max : MSG_VERSION_MAX));
	} else {
		FUZZ_CHECK(m.version_min > MSG_VERSION_MAX || m.version_max < MSG_VERSION_MIN);
		FUZZ_CHECK(msg_refuse_version(reason, sizeof(reason), m.version_min, m.version_max,
					      MSG_VERSION_MIN, MSG_VERSION_MAX) <
			   (int)sizeof(reason));
	}
}

static void check_reason(const uint8_t *p, size_t len)
{
	char out[MSG_MAX_REASON + 1];
	size_t n = msg_reason_sanitize(p, len, out);

	FUZZ_CHECK(n <= len && strlen(out) == n);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((uint8_t)out[i] >= 0x20 && out[i] != 0x7f);
}

static void check_payload(const struct msg_hdr *h, const uint8_t *p)
{
	switch (h->type) {
	case MSG_HELLO:
	case MSG_STATE:
		check_hello(p, h->length);
		break;
	case MSG_REFUSE:
		check_reason(p, h->length);
		break;
	default:
		break;	/* data, MACs and bitmap bits: any bytes are fine */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	while (size - pos >= MSG_HDR_SIZE) {
		const uint8_t *b = data + pos;
		uint8_t again[MSG_HDR_SIZE];
		struct msg_hdr h;
		const char *why = NULL;
		int rc = msg_hdr_decode(b, &h, &why);

		FUZZ_CHECK(rc == 0 || rc == -1);
		FUZZ_CHECK((rc == 0) == oracle_accepts(b));
		if (rc != 0) {
			FUZZ_CHECK(why != NULL && why[0] != '\0');
			FUZZ_CHECK((get_be32(b) != MSG_MAGIC) == (strcmp(why, "bad magic") == 0));
			break;
		}
		msg_hdr_encode(again, &h);
		FUZZ_CHECK(memcmp(again, b, MSG_HDR_SIZE) == 0);

		why = NULL;
		rc = msg_hdr_check_bounds(&h, SESSION_SIZE, SESSION_BITS, &why);
		FUZZ_CHECK((rc == 0) == oracle_in_session(&h));
		FUZZ_CHECK((rc == 0) == (why == NULL));

		pos += MSG_HDR_SIZE;
		if (h.length > size - pos)
			break;	/* the stream ends mid-payload */
		check_payload(&h, data + pos);
		pos += h.length;
	}
	return 0;
}
