// fuzz-sources: daemon/witness/wstate.c proto/msg.c utils/namefield.c
/* libFuzzer harness for the witness's state-file decoder and message
 * handling (daemon/witness/wstate.c).
 *
 * Input: flag u8, then the file.  Flag bit 0 rewrites the checksum to
 * match, so that the fuzzer gets past it.  A decoded state must re-encode
 * to the very same bytes (one encoding per state), have a current
 * generation and NUL-terminated names; a refusal gives a reason.  Then
 * the rest of the input, as a GEN payload, may move the state only to
 * its new_current, with the old current first in the history. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "daemon/witness/wstate.h"
#include "proto/msg.h"
#include "tests/fuzz/check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_gen(struct wstate *s, const uint8_t *p, size_t len)
{
	struct msg_hdr h = { .type = MSG_GEN, .length = (uint32_t)len };
	struct wstate before = *s;
	struct msg_hello hello;
	struct msg_gen g;
	const char *why = NULL, *gwhy;
	bool dirty = false;
	enum wstate_verdict v = wstate_message(s, &dirty, &h, len ? p : NULL, &hello, &why);

	if (msg_gen_decode(p, len, &g, &gwhy) < 0) {
		FUZZ_CHECK(v == WSTATE_DROP && why && !memcmp(s, &before, sizeof(*s)));
		return;
	}
	/* A step that does not start from the witness's generation is
	 * refused, nothing changed (compare and set). */
	if (before.current && g.old_current != before.current && g.new_current != before.current) {
		FUZZ_CHECK(v == WSTATE_STALE && !dirty && !memcmp(s, &before, sizeof(*s)));
		return;
	}
	FUZZ_CHECK(v == WSTATE_NOTHING);
	FUZZ_CHECK(s->current == g.new_current);
	FUZZ_CHECK(dirty == (g.new_current != before.current));
	if (dirty)
		FUZZ_CHECK(s->history[0] == before.current && s->history[1] == before.history[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[WSTATE_SIZE], again[WSTATE_SIZE];
	size_t len;
	struct wstate s;
	const char *why = NULL;

	if (size < 1)
		return 0;
	len = size - 1 < WSTATE_SIZE ? size - 1 : WSTATE_SIZE;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, data + 1, len);
	if ((data[0] & 1) && len == WSTATE_SIZE) {
		uint64_t sum = XXH64(buf, WSTATE_SIZE - 8, 0);

		for (int i = 0; i < 8; i++)
			buf[WSTATE_SIZE - 8 + i] = (uint8_t)(sum >> (8 * i));
	}
	if (wstate_decode(buf, len, &s, &why) < 0) {
		FUZZ_CHECK(why && *why);
		return 0;
	}
	FUZZ_CHECK(len == WSTATE_SIZE && s.current != 0);
	FUZZ_CHECK(strlen(s.resource) > 0 && strlen(s.resource) < WSTATE_NAME);
	FUZZ_CHECK(strlen(s.node) > 0 && strlen(s.node) < WSTATE_NAME);
	wstate_encode(again, &s);
	FUZZ_CHECK(memcmp(again, buf, WSTATE_SIZE) == 0);
	check_gen(&s, data + 1 + len, size - 1 - len);
	return 0;
}
