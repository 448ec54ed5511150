/* daemon/witness/wstate: the witness's state file (its encoding, what a
 * corrupt or foreign file says, the atomic write) and what a data node's
 * message does to the witness (wstate_message()). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/meta/gen.h"
#include "daemon/witness/wstate.h"
#include "proto/msg.h"

static struct wstate sample(void)
{
	struct wstate s;

	wstate_init(&s, "r0", "wit");
	s.seq = 7;
	s.current = 0x1234567890abcdefULL;
	s.history[0] = 0x55;
	s.history[1] = GEN_CREATED;
	return s;
}

Test(wstate, a_fresh_state_is_at_the_created_generation)
{
	struct wstate s;

	wstate_init(&s, "r0", "wit");
	cr_assert_eq(s.current, GEN_CREATED);
	cr_assert_eq(s.seq, 0);
	cr_assert_eq(s.history[0], 0);
	cr_assert_str_eq(s.resource, "r0");
	cr_assert_str_eq(s.node, "wit");
}

Test(wstate, round_trips)
{
	struct wstate s = sample(), out;
	uint8_t buf[WSTATE_SIZE];
	const char *why = NULL;

	wstate_encode(buf, &s);
	cr_assert_eq(wstate_decode(buf, sizeof(buf), &out, &why), 0, "%s", why);
	cr_assert_eq(memcmp(&s, &out, sizeof(s)), 0);
}

static void refused(void (*spoil)(uint8_t *b, size_t *len), const char *want)
{
	struct wstate s = sample(), out;
	uint8_t buf[WSTATE_SIZE];
	size_t len = sizeof(buf);
	const char *why = NULL;

	wstate_encode(buf, &s);
	spoil(buf, &len);
	cr_assert_eq(wstate_decode(buf, len, &out, &why), -1);
	cr_assert_str_eq(why, want);
}

static void flip_generation(uint8_t *b, size_t *len)
{
	(void)len;
	b[153] ^= 1;
}

static void truncate_it(uint8_t *b, size_t *len)
{
	(void)b;
	*len = WSTATE_SIZE - 1;
}

static void other_magic(uint8_t *b, size_t *len)
{
	(void)len;
	memcpy(b, "BLKRMETA", 8);
}

Test(wstate, a_corrupt_or_foreign_file_is_refused_with_its_reason)
{
	refused(flip_generation, "checksum mismatch (the file is corrupt)");
	refused(truncate_it, "not a witness state file");
	refused(other_magic, "not a witness state file");
}

Test(wstate, a_gen_moves_current_and_keeps_the_history_newest_first)
{
	struct wstate s;

	wstate_init(&s, "r0", "wit");
	cr_assert(wstate_apply_gen(&s, 100));
	cr_assert_eq(s.current, 100);
	cr_assert_eq(s.history[0], GEN_CREATED);
	cr_assert_not(wstate_apply_gen(&s, 100), "the same generation changes nothing");
	cr_assert_not(wstate_apply_gen(&s, 0));
	for (uint64_t g = 101; g <= 104; g++)
		cr_assert(wstate_apply_gen(&s, g));
	cr_assert_eq(s.current, 104);
	cr_assert_eq(s.history[0], 103);
	cr_assert_eq(s.history[3], 100, "four kept, the oldest dropped");
}

static enum wstate_verdict message(struct wstate *s, bool *dirty, uint16_t type,
				   const uint8_t *payload, uint32_t len, const char **why)
{
	struct msg_hdr h = { .type = type, .length = len, .seq = 9 };
	struct msg_hello hello;

	return wstate_message(s, dirty, &h, payload, &hello, why);
}

Test(wstate, messages_from_a_data_node)
{
	struct wstate s;
	struct msg_gen g = { .old_current = GEN_CREATED, .new_current = 0xabc };
	uint8_t buf[MSG_GEN_MAX];
	size_t len = msg_gen_encode(buf, &g);
	bool dirty = false;
	const char *why = "";

	wstate_init(&s, "r0", "wit");
	cr_assert_eq(message(&s, &dirty, MSG_GEN, buf, (uint32_t)len, &why), WSTATE_NOTHING);
	cr_assert_eq(s.current, 0xabc);
	cr_assert(dirty);
	cr_assert_eq(message(&s, &dirty, MSG_FLUSH, NULL, 0, &why), WSTATE_FLUSH);
	cr_assert_eq(message(&s, &dirty, MSG_MARK, NULL, 0, &why), WSTATE_NOTHING);
	cr_assert_eq(message(&s, &dirty, MSG_WRITE, NULL, 0, &why), WSTATE_DROP);
	cr_assert_str_eq(why, "a witness keeps no data");
	cr_assert_eq(message(&s, &dirty, MSG_RESYNC_REQ, NULL, 0, &why), WSTATE_DROP);
	cr_assert_eq(message(&s, &dirty, MSG_GEN, buf, 3, &why), WSTATE_DROP);
	cr_assert_str_eq(why, "bad generation list length");
	cr_assert_eq(s.current, 0xabc, "a bad GEN changes nothing");
}

/* A node that lacks the witness's newer generation (a primary's step the
 * witness recorded while that node was cut off) cannot have its own step
 * recorded: it would be promoted over acknowledged writes it lacks. */
Test(wstate, a_step_from_an_older_generation_is_refused)
{
	struct wstate s;
	struct msg_gen g1 = { .old_current = 0x10, .new_current = 0x20 },
		       g2 = { .old_current = 0x10, .new_current = 0x30 },
		       g3 = { .old_current = 0x20, .new_current = 0x40 };
	uint8_t buf[MSG_GEN_MAX];
	bool dirty = false;
	const char *why = "";

	wstate_init(&s, "r0", "wit");
	s.current = 0x10;
	cr_assert_eq(message(&s, &dirty, MSG_GEN, buf, (uint32_t)msg_gen_encode(buf, &g1), &why),
		     WSTATE_NOTHING);
	cr_assert_eq(s.current, 0x20);
	cr_assert_eq(message(&s, &dirty, MSG_GEN, buf, (uint32_t)msg_gen_encode(buf, &g2), &why),
		     WSTATE_STALE);
	cr_assert_eq(s.current, 0x20, "a stale step changes nothing");
	cr_assert_eq(message(&s, &dirty, MSG_GEN, buf, (uint32_t)msg_gen_encode(buf, &g3), &why),
		     WSTATE_NOTHING);
	cr_assert_eq(s.current, 0x40);
	cr_assert_eq(s.history[0], 0x20);
}

Test(wstate, a_state_message_is_kept_for_status)
{
	struct msg_hello in = { .version_min = 1,
				.version_max = 1,
				.resource = "r0",
				.node = "alpha",
				.size_bytes = 1 << 20,
				.extent_bytes = 4096,
				.role = MSG_ROLE_PRIMARY,
				.disk = MSG_DISK_UPTODATE,
				.gen_current = 0x77 },
			 out;
	struct msg_hdr h = { .type = MSG_STATE, .length = MSG_HELLO_SIZE };
	uint8_t buf[MSG_HELLO_SIZE];
	struct wstate s;
	bool dirty = false;
	const char *why = "";

	wstate_init(&s, "r0", "wit");
	msg_hello_encode(buf, &in);
	cr_assert_eq(wstate_message(&s, &dirty, &h, buf, &out, &why), WSTATE_HELLO, "%s", why);
	cr_assert_eq(out.gen_current, 0x77);
	cr_assert_eq(out.role, MSG_ROLE_PRIMARY);
	cr_assert_not(dirty, "a data node's STATE does not move the witness");
}

/* A fresh directory under /tmp. */
static char *tmpdir(void)
{
	static char dir[64];

	snprintf(dir, sizeof(dir), "/tmp/wstate-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	return dir;
}

Test(wstate, missing_file_is_created_then_read_back)
{
	char path[128], err[512] = "";
	struct wstate s, again;
	bool created;

	snprintf(path, sizeof(path), "%s/sub/w.state", tmpdir());
	cr_assert_eq(wstate_load(path, "r0", "wit", &s, &created, err, sizeof(err)), 0, "%s", err);
	cr_assert(created);
	cr_assert_eq(s.seq, 1, "written once");
	wstate_apply_gen(&s, 0x99);
	cr_assert_eq(wstate_save(path, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(wstate_load(path, "r0", "wit", &again, &created, err, sizeof(err)), 0);
	cr_assert_not(created);
	cr_assert_eq(again.current, 0x99);
	cr_assert_eq(again.history[0], GEN_CREATED);
	cr_assert_eq(again.seq, 2);
	strcat(path, ".tmp");
	cr_assert_eq(access(path, F_OK), -1, "no temporary file left");
}

Test(wstate, a_foreign_or_corrupt_file_says_what_to_do)
{
	char path[128], err[512] = "", want[512];
	struct wstate s;
	bool created;
	FILE *f;

	snprintf(path, sizeof(path), "%s/w.state", tmpdir());
	s = sample();
	cr_assert_eq(wstate_save(path, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(wstate_load(path, "r1", "wit", &s, &created, err, sizeof(err)), -1);
	snprintf(want, sizeof(want),
		 "%s: the state of r0/wit, not of r1/wit: set another state-file for this "
		 "witness, or move the file away to start afresh",
		 path);
	cr_assert_str_eq(err, want);
	f = fopen(path, "r+");
	cr_assert_not_null(f);
	fseek(f, 150, SEEK_SET);
	fputc('!', f);
	fclose(f);
	cr_assert_eq(wstate_load(path, "r0", "wit", &s, &created, err, sizeof(err)), -1);
	snprintf(want, sizeof(want),
		 "%s: checksum mismatch (the file is corrupt): move it away to start afresh (the "
		 "witness then forgets the generation it saw: bring it up only while the "
		 "primary is up)",
		 path);
	cr_assert_str_eq(err, want);
}
