/* Unit tests for daemon/peer: two peers on one loop over 127.0.0.1, the
 * handshake and each of its refusals, a replicated WRITE and its ACK,
 * reconnecting after a disconnect, and a peer that goes silent.  Every run
 * of the loop is bounded by a deadline, and a test ticker wakes the loop so
 * that the deadline is seen even when nothing else happens. */
#include <criterion/criterion.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "utils/loop.h"
#include "proto/peer.h"
#include "proto/tls.h"
#include "utils/clock.h"
#include "proto/msg.h"
#include "tests/unit/loop_until.h"

#define MiB (1U << 20)

struct side {
	struct peer *p;
	int ups, downs, writes, acks, nreleased, writable;
	char down_why[512];
	struct msg_hello theirs;
	uint8_t *got; /* last WRITE payload */
	struct msg_hdr got_hdr;
	uint64_t ack_seq;
	const void *released;
	bool pause_after_write;
};

static struct loop *loop;
static struct side a, b;
static uint16_t port_a, port_b;
static char addr_a[32], addr_b[32];
static struct ticker ticker;

/* --- callbacks --- */

static void cb_hello(void *arg, struct msg_hello *m)
{
	(void)arg;
	m->size_bytes = 1ULL << 30;
	m->extent_bytes = 64U << 10;
	m->role = MSG_ROLE_SECONDARY;
	m->disk = MSG_DISK_UPTODATE;
	m->gen_current = 0x1234;
}

static void cb_up(void *arg, const struct msg_hello *theirs)
{
	struct side *s = arg;

	s->ups++;
	s->theirs = *theirs;
}

static void cb_down(void *arg, const char *why)
{
	struct side *s = arg;

	s->downs++;
	snprintf(s->down_why, sizeof(s->down_why), "%s", why);
}

static void cb_message(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	struct side *s = arg;
	struct msg_hdr ack = { .type = MSG_ACK, .seq = h->seq };

	switch (h->type) {
	case MSG_WRITE:
		s->writes++;
		s->got_hdr = *h;
		free(s->got);
		s->got = malloc(h->length);
		cr_assert_not_null(s->got);
		memcpy(s->got, payload, h->length);
		cr_assert_eq(peer_send(s->p, &ack, NULL), 0);
		if (s->pause_after_write)
			peer_recv_pause(s->p, true);
		break;
	case MSG_ACK:
		s->acks++;
		s->ack_seq = h->seq;
		break;
	default:
		cr_assert_fail("unexpected %s delivered", msg_type_name(h->type));
	}
}

static void cb_released(void *arg, const void *payload)
{
	struct side *s = arg;

	s->nreleased++;
	s->released = payload;
}

static void cb_writable(void *arg)
{
	((struct side *)arg)->writable++;
}

static const struct peer_ops ops = {
	.hello = cb_hello,
	.up = cb_up,
	.down = cb_down,
	.message = cb_message,
	.released = cb_released,
	.writable = cb_writable,
};

/* --- the loop, bounded --- */

/* Runs the loop until cond() or ms have passed; returns cond(). */
static bool run_until(bool (*cond)(void), unsigned ms)
{
	return loop_run_until(loop, cond, ms);
}

static bool never(void)
{
	return false;
}

static bool both_up(void)
{
	return a.ups >= 1 && b.ups >= 1;
}

static bool both_idle(void)
{
	return (!a.p || peer_idle(a.p)) && (!b.p || peer_idle(b.p));
}

/* --- fixture --- */

/* Two free ports: bound at once, so they differ, then released. */
static void free_ports(void)
{
	int fd[2];

	for (int i = 0; i < 2; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(sin);

		fd[i] = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_geq(fd[i], 0);
		cr_assert_eq(bind(fd[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
		cr_assert_eq(getsockname(fd[i], (struct sockaddr *)&sin, &len), 0);
		if (i == 0)
			port_a = ntohs(sin.sin_port);
		else
			port_b = ntohs(sin.sin_port);
	}
	close(fd[0]);
	close(fd[1]);
	snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%u", port_a);
	snprintf(addr_b, sizeof(addr_b), "127.0.0.1:%u", port_b);
}

static struct peer_cfg cfg_a(void)
{
	return (struct peer_cfg){
		.resource = "r0",
		.my_node = "alpha",
		.peer_node = "beta",
		.my_addr = addr_a,
		.peer_addr = addr_b,
		.secret = (const uint8_t *)"sesame",
		.secret_len = 6,
	};
}

static struct peer_cfg cfg_b(void)
{
	return (struct peer_cfg){
		.resource = "r0",
		.my_node = "beta",
		.peer_node = "alpha",
		.my_addr = addr_b,
		.peer_addr = addr_a,
		.secret = (const uint8_t *)"sesame",
		.secret_len = 6,
	};
}

static void setup(void)
{
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	loop = loop_new();
	cr_assert_not_null(loop);
	free_ports();
	ticker_start(&ticker, loop, 50);
}

static void teardown(void)
{
	if (!loop)
		return; /* the test took everything down itself */
	if (a.p)
		peer_enable(a.p, false);
	if (b.p)
		peer_enable(b.p, false);
	cr_assert(run_until(both_idle, 2000), "peers still busy after being disabled");
	peer_free(a.p);
	peer_free(b.p);
	free(a.got);
	free(b.got);
	loop_free(loop);
}

/* With use_tls, every peer the tests start runs TLS with a key derived
 * from its secret (as the daemon does by default). */
static bool use_tls;

static struct peer_cfg with_tls(const struct peer_cfg *c)
{
	struct peer_cfg t = *c;
	struct tls_cfg tc = { .resource = c->resource, .secret = c->secret,
			      .secret_len = c->secret_len };
	char err[256];

	if (!use_tls)
		return t;
	t.tls = tls_ctx_new(&tc, err, sizeof(err));
	cr_assert_not_null(t.tls, "%s", err);
	return t;
}

static void start(const struct peer_cfg *ca_in, const struct peer_cfg *cb_in)
{
	struct peer_cfg ca_t, cb_t, *ca = NULL, *cb = NULL;

	if (ca_in) {
		ca_t = with_tls(ca_in);
		ca = &ca_t;
	}
	if (cb_in) {
		cb_t = with_tls(cb_in);
		cb = &cb_t;
	}
	if (ca) {
		a.p = peer_new(loop, ca, &ops, &a);
		cr_assert_not_null(a.p);
		cr_assert_str_eq(peer_state(a.p), "standalone");
		peer_enable(a.p, true);
	}
	if (cb) {
		b.p = peer_new(loop, cb, &ops, &b);
		cr_assert_not_null(b.p);
		peer_enable(b.p, true);
	}
}

static void start_default(void)
{
	struct peer_cfg ca = cfg_a(), cb = cfg_b();

	start(&ca, &cb);
}

/* Starts both with the default configurations and their own ops, which
 * must outlive the peers (teardown frees them). */
static void start_with_ops(const struct peer_ops *ops_a, const struct peer_ops *ops_b)
{
	struct peer_cfg ca0 = cfg_a(), cb0 = cfg_b(), ca = with_tls(&ca0), cb = with_tls(&cb0);

	a.p = peer_new(loop, &ca, ops_a, &a);
	b.p = peer_new(loop, &cb, ops_b, &b);
	cr_assert(a.p && b.p);
	peer_enable(a.p, true);
	peer_enable(b.p, true);
}

TestSuite(peer, .init = setup, .fini = teardown, .timeout = 20);

/* --- the handshake succeeds, data flows --- */

static bool write_acked(void)
{
	return a.acks >= 1 && a.nreleased >= 1;
}

static void replicate_a_write(void)
{
	struct msg_hdr w = {
		.type = MSG_WRITE, .count = MiB, .length = MiB, .seq = 7, .offset = 4096
	};
	uint8_t *data = malloc(MiB);

	cr_assert_not_null(data);
	for (uint32_t i = 0; i < MiB; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 12));
	start_default();
	cr_assert_eq(peer_send_ref(a.p, &w, data), -ENOTCONN);
	cr_assert(run_until(both_up, 5000), "not up: a '%s', b '%s'", peer_last_error(a.p),
		  peer_last_error(b.p));
	cr_assert(peer_connected(a.p) && peer_connected(b.p));
	cr_assert_str_eq(peer_state(a.p), "connected");
	cr_assert_str_eq(peer_last_error(a.p), "");
	cr_assert_eq(peer_version(a.p), MSG_VERSION_MAX);
	cr_assert_str_eq(a.theirs.node, "beta");
	cr_assert_str_eq(b.theirs.node, "alpha");
	cr_assert_str_eq(b.theirs.resource, "r0");
	cr_assert_eq(b.theirs.gen_current, 0x1234);

	/* Too big to copy: only by reference. */
	cr_assert_eq(peer_send(a.p, &w, data), -EINVAL);
	cr_assert_eq(peer_send_ref(a.p, &w, data), 0);
	cr_assert(run_until(write_acked, 5000), "no ACK");
	cr_assert_eq(b.writes, 1);
	cr_assert_eq(b.got_hdr.offset, 4096);
	cr_assert_eq(b.got_hdr.count, MiB);
	cr_assert_eq(b.got_hdr.seq, 7);
	cr_assert_arr_eq(b.got, data, MiB);
	cr_assert_eq(a.ack_seq, 7);
	cr_assert_eq(a.released, data);
	cr_assert_eq(a.nreleased, 1);
	cr_assert_eq(a.downs + b.downs, 0);
	free(data);
}

Test(peer, same_secret_connects_and_replicates_a_write)
{
	replicate_a_write();
	cr_assert_str_eq(peer_encryption(a.p), "none");
	cr_assert_null(peer_tls_offload(a.p));
}

/* peer_on_ack(): ACK and FLUSH_ACK bypass ops->message. */
static int direct_acks, direct_flush_acks;
static uint64_t direct_ack_seq;

static void cb_ack(void *arg, const struct msg_hdr *h)
{
	cr_assert_eq(arg, &a);
	direct_ack_seq = h->seq;
	if (h->type == MSG_ACK)
		direct_acks++;
	else if (h->type == MSG_FLUSH_ACK)
		direct_flush_acks++;
	else
		cr_assert_fail("%s delivered to the ack callback", msg_type_name(h->type));
}

static bool write_answered_direct(void)
{
	return b.writes >= 1 && direct_acks >= 1;
}

static bool acks_direct(void)
{
	return direct_acks >= 1 && direct_flush_acks >= 1 && a.nreleased >= 1;
}

Test(peer, acks_go_to_the_subscribed_ack_callback)
{
	static uint8_t data[4096];
	struct msg_hdr w = { .type = MSG_WRITE, .count = 4096, .length = 4096, .seq = 9 };
	struct msg_hdr fa = { .type = MSG_FLUSH_ACK, .seq = 10 };

	start_default();
	peer_on_ack(a.p, cb_ack, &a);
	cr_assert(run_until(both_up, 5000), "not up: a '%s', b '%s'", peer_last_error(a.p),
		  peer_last_error(b.p));
	cr_assert_eq(peer_send_ref(a.p, &w, data), 0);
	cr_assert(run_until(write_answered_direct, 5000), "no ACK");
	cr_assert_eq(direct_ack_seq, 9);
	cr_assert_eq(peer_send(b.p, &fa, NULL), 0);
	cr_assert(run_until(acks_direct, 5000), "no FLUSH_ACK");
	cr_assert_eq(direct_ack_seq, 10);
	cr_assert_eq(a.acks, 0, "ops->message saw no ACK");
	cr_assert_eq(b.writes, 1);
}

static bool write_answered(void)
{
	return b.writes >= 1 && a.acks >= 1;
}

/* A caller that reuses its buffer at once (a verify reply's checksums, up
 * to 64 KiB, are built in one static buffer for every request): what
 * peer_send() queued must be what it was given, whatever the size. */
Test(peer, peer_send_copies_the_payload_whatever_its_size)
{
	const uint32_t len = MSG_MAX_DIGESTS;
	struct msg_hdr w = { .type = MSG_WRITE, .count = len, .length = len, .seq = 9 };
	uint8_t *buf = malloc(len), *want = malloc(len);

	cr_assert(buf && want);
	for (uint32_t i = 0; i < len; i++)
		want[i] = (uint8_t)(i * 13 + 1);
	memcpy(buf, want, len);
	start_default();
	cr_assert(run_until(both_up, 5000));
	cr_assert_eq(peer_send(a.p, &w, buf), 0);
	memset(buf, 0xee, len); /* the next request's checksums */
	cr_assert(run_until(write_answered, 5000), "no ACK");
	cr_assert_eq(b.got_hdr.length, len);
	cr_assert(memcmp(b.got, want, len) == 0,
		  "the peer got the caller's buffer as overwritten after peer_send()");
	cr_assert_eq(a.nreleased, 0, "a copied payload is never released");
	free(buf);
	free(want);
}

static bool three_writes(void)
{
	return b.writes >= 3;
}

Test(peer, paused_receiver_gets_buffered_messages_after_resuming)
{
	uint8_t small[512];

	memset(small, 0xa5, sizeof(small));
	start_default();
	cr_assert(run_until(both_up, 5000));
	b.pause_after_write = true;
	for (uint64_t seq = 1; seq <= 3; seq++) {
		struct msg_hdr w = { .type = MSG_WRITE,
				     .count = sizeof(small),
				     .length = sizeof(small),
				     .seq = seq };

		cr_assert_eq(peer_send(a.p, &w, small), 0);
	}
	(void)run_until(never, 300);
	cr_assert_eq(b.writes, 1, "delivered %d while paused", b.writes);
	b.pause_after_write = false;
	peer_recv_pause(b.p, false);
	cr_assert(run_until(three_writes, 2000));
	cr_assert_eq(b.got_hdr.seq, 3);
	cr_assert_eq(a.nreleased, 0, "small payloads are copied, never released");
}

static bool second_closed;
static int raw_fd = -1;

static bool raw_eof(void)
{
	char c;

	second_closed = recv(raw_fd, &c, 1, MSG_DONTWAIT) == 0;
	return second_closed;
}

Test(peer, listener_closes_a_second_connection)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port_b),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	start_default();
	cr_assert(run_until(both_up, 5000));
	raw_fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(raw_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert(run_until(raw_eof, 2000), "second connection not closed");
	close(raw_fd);
	cr_assert(peer_connected(a.p) && peer_connected(b.p));
	cr_assert_eq(a.downs + b.downs, 0);
	cr_assert_eq(b.ups, 1);
}

/* --- refusals --- */

static const char *want_error;

static bool both_refused(void)
{
	return strstr(peer_last_error(a.p), want_error) && strstr(peer_last_error(b.p), want_error);
}

static void expect_refusal(const char *what)
{
	want_error = what;
	cr_assert(run_until(both_refused, 5000), "expected '%s': a '%s', b '%s'", what,
		  peer_last_error(a.p), peer_last_error(b.p));
	/* and it stays refused across retries */
	(void)run_until(never, 500);
	cr_assert(both_refused(), "a '%s', b '%s'", peer_last_error(a.p), peer_last_error(b.p));
	cr_assert_eq(a.ups + b.ups, 0);
	cr_assert_str_eq(peer_state(a.p), "connecting");
	cr_assert_str_eq(peer_state(b.p), "connecting");
	cr_assert(!peer_connected(a.p) && !peer_connected(b.p));
}

Test(peer, different_secrets_are_refused)
{
	struct peer_cfg ca = cfg_a(), cb = cfg_b();

	cb.secret = (const uint8_t *)"open sesame";
	cb.secret_len = 11;
	start(&ca, &cb);
	expect_refusal("authentication failed: the peers' secrets differ");
}

Test(peer, different_resource_names_are_refused)
{
	struct peer_cfg ca = cfg_a(), cb = cfg_b();

	cb.resource = "r1";
	start(&ca, &cb);
	expect_refusal("resource name mismatch");
	cr_assert(strstr(peer_last_error(a.p), "peer serves r1, this node r0"), "%s",
		  peer_last_error(a.p));
}

Test(peer, unexpected_node_name_is_refused)
{
	struct peer_cfg ca = cfg_a(), cb = cfg_b();

	cb.my_node = "gamma"; /* alpha expects beta */
	start(&ca, &cb);
	expect_refusal("unexpected peer node gamma (expected beta)");
	cr_assert(strstr(peer_last_error(b.p), "peer refused: "), "%s", peer_last_error(b.p));
}

Test(peer, secret_on_one_side_only_is_refused)
{
	struct peer_cfg ca = cfg_a(), cb = cfg_b();

	cb.secret = NULL;
	cb.secret_len = 0;
	cb.allow_unauthenticated = true;
	start(&ca, &cb);
	expect_refusal("shared secret");
	cr_assert(strstr(peer_last_error(a.p), "peer beta has no shared secret"), "%s",
		  peer_last_error(a.p));
	cr_assert(strstr(peer_last_error(b.p), "this node has no shared secret"), "%s",
		  peer_last_error(b.p));
}

Test(peer, both_unauthenticated_connect)
{
	struct peer_cfg ca = cfg_a(), cb = cfg_b();

	ca.secret = cb.secret = NULL;
	ca.secret_len = cb.secret_len = 0;
	ca.allow_unauthenticated = cb.allow_unauthenticated = true;
	start(&ca, &cb);
	cr_assert(run_until(both_up, 5000), "a '%s', b '%s'", peer_last_error(a.p),
		  peer_last_error(b.p));
	cr_assert(a.theirs.flags & MSG_HELLO_F_NO_SECRET);
}

Test(peer, no_secret_without_allow_unauthenticated_is_a_config_error)
{
	struct peer_cfg ca = cfg_a();

	ca.secret = NULL;
	ca.secret_len = 0;
	cr_assert_null(peer_new(loop, &ca, &ops, &a));
}

Test(peer, incompatible_versions_are_refused)
{
	struct peer_cfg ca = cfg_a(), cb = cfg_b();

	ca.version_min = MSG_VERSION_MAX + 1;
	ca.version_max = MSG_VERSION_MAX + 2;
	start(&ca, &cb);
	expect_refusal("incompatible protocol version");
}

static enum peer_verdict refuse_peer(void *arg, const struct msg_hello *theirs, char *why,
				     size_t whylen)
{
	(void)arg;
	snprintf(why, whylen, "size mismatch: peer has %llu bytes",
		 (unsigned long long)theirs->size_bytes);
	return PEER_REFUSE;
}

Test(peer, accept_peer_may_refuse_with_a_reason)
{
	static struct peer_ops ops_b;

	ops_b = ops;
	ops_b.accept_peer = refuse_peer;
	start_with_ops(&ops, &ops_b);
	expect_refusal("size mismatch: peer has 1073741824 bytes");
	cr_assert(strstr(peer_last_error(a.p), "peer refused: "), "%s", peer_last_error(a.p));
}

/* --- losing the link --- */

static int want_ups;

static bool both_down(void)
{
	return a.downs >= want_ups && b.downs >= want_ups;
}

static bool both_up_again(void)
{
	return a.ups >= want_ups && b.ups >= want_ups && peer_connected(a.p) && peer_connected(b.p);
}

Test(peer, disconnect_drops_the_link_and_connect_restores_it)
{
	start_default();
	cr_assert(run_until(both_up, 5000));

	/* the connecting side disconnects */
	want_ups = 1;
	peer_enable(a.p, false);
	cr_assert_str_eq(peer_state(a.p), "standalone");
	cr_assert(run_until(both_down, 3000), "downs: a %d, b %d", a.downs, b.downs);
	cr_assert_str_eq(a.down_why, "disconnected by this node");
	cr_assert_str_eq(b.down_why, "peer closed the connection");
	cr_assert_str_eq(peer_state(b.p), "connecting");
	peer_enable(a.p, true);
	want_ups = 2;
	cr_assert(run_until(both_up_again, 5000), "a '%s', b '%s'", peer_last_error(a.p),
		  peer_last_error(b.p));

	/* the listening side disconnects: alpha retries with backoff */
	peer_enable(b.p, false);
	cr_assert(run_until(both_down, 3000), "downs: a %d, b %d", a.downs, b.downs);
	cr_assert_str_eq(a.down_why, "peer closed the connection");
	(void)run_until(never, 700);
	cr_assert(strstr(peer_last_error(a.p), "Connection refused"), "%s", peer_last_error(a.p));
	peer_enable(b.p, true);
	want_ups = 3;
	cr_assert(run_until(both_up_again, 6000), "a '%s', b '%s'", peer_last_error(a.p),
		  peer_last_error(b.p));
	cr_assert_eq(a.downs, 2);
	cr_assert_eq(b.downs, 2);
}

/* A fake beta that accepts, says HELLO and STATE, then never sends again. */
static int fake_lfd = -1, fake_fd = -1;

static void put_msg(uint8_t *buf, uint16_t type, const struct msg_hello *m)
{
	struct msg_hdr h = { .type = type, .length = MSG_HELLO_SIZE };

	msg_hdr_encode(buf, &h);
	msg_hello_encode(buf + MSG_HDR_SIZE, m);
}

static bool fake_step(void)
{
	struct msg_hello m = { 0 };
	uint8_t buf[2 * (MSG_HDR_SIZE + MSG_HELLO_SIZE)];

	if (fake_fd < 0) {
		fake_fd = accept4(fake_lfd, NULL, NULL, SOCK_NONBLOCK);
		if (fake_fd < 0)
			return false;
		cb_hello(NULL, &m);
		m.version_min = m.version_max = MSG_VERSION_MAX;
		strcpy(m.resource, "r0");
		strcpy(m.node, "beta");
		m.flags = MSG_HELLO_F_NO_SECRET;
		memset(m.nonce, 0x5a, sizeof(m.nonce));
		put_msg(buf, MSG_HELLO, &m);
		memset(m.nonce, 0, sizeof(m.nonce));
		put_msg(buf + MSG_HDR_SIZE + MSG_HELLO_SIZE, MSG_STATE, &m);
		cr_assert_eq(write(fake_fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	}
	return a.downs > 0;
}

Test(peer, silent_peer_is_dropped)
{
	struct peer_cfg ca = cfg_a();
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port_b),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint64_t t0;

	ca.secret = NULL;
	ca.secret_len = 0;
	ca.allow_unauthenticated = true;
	fake_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	cr_assert_eq(bind(fake_lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(fake_lfd, 4), 0);
	start(&ca, NULL);
	t0 = now_ms();
	cr_assert(run_until(fake_step, 8000), "not dropped: ups %d, last error '%s'", a.ups,
		  peer_last_error(a.p));
	cr_assert_eq(a.ups, 1);
	cr_assert(strstr(a.down_why, "silent"), "%s", a.down_why);
	cr_assert_geq(now_ms() - t0, 4900);
	close(fake_fd);
	close(fake_lfd);
}

/* --- many messages: a full queue, writable, batching, short sends --- */

#define STRESS_MSGS 3000
static const uint32_t stress_sizes[] = { 100,	 4096,		16383,
					 16384,	 PEER_COPY_MAX, PEER_COPY_MAX + 1,
					 MiB + 3 };
#define NSIZES (sizeof(stress_sizes) / sizeof(stress_sizes[0]))
static uint8_t *pattern;
static uint64_t stress_next = 1, stress_got, stress_bad;
static int stress_full;

static uint32_t stress_size(uint64_t seq)
{
	return stress_sizes[seq % NSIZES];
}

static void stress_fill(void)
{
	while (stress_next <= STRESS_MSGS) {
		uint32_t n = stress_size(stress_next);
		struct msg_hdr w = { .type = MSG_WRITE,
				     .count = n,
				     .length = n,
				     .seq = stress_next,
				     .offset = stress_next * 512 };
		int rc = n > PEER_COPY_MAX ? peer_send_ref(a.p, &w, pattern)
					   : peer_send(a.p, &w, pattern);

		if (rc == -ENOBUFS) {
			stress_full++;
			return;
		}
		cr_assert_eq(rc, 0);
		stress_next++;
	}
}

static void stress_writable(void *arg)
{
	(void)arg;
	stress_fill();
}

static void stress_message(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	(void)arg;
	stress_got++;
	if (h->type != MSG_WRITE || h->seq != stress_got || h->length != stress_size(h->seq) ||
	    h->offset != h->seq * 512 || memcmp(payload, pattern, h->length) != 0)
		stress_bad++;
}

static bool stress_done(void)
{
	return stress_got >= STRESS_MSGS || stress_bad;
}

static void thousands_of_messages(void)
{
	static struct peer_ops ops_a, ops_b;
	int by_ref = 0;

	ops_a = ops;
	ops_b = ops;
	pattern = malloc(MiB + 3);
	cr_assert_not_null(pattern);
	for (uint32_t i = 0; i < MiB + 3; i++)
		pattern[i] = (uint8_t)(i * 7 + 13);
	ops_a.writable = stress_writable;
	ops_b.message = stress_message;
	start_with_ops(&ops_a, &ops_b);
	cr_assert(run_until(both_up, 5000));
	stress_fill();
	cr_assert(run_until(stress_done, 15000), "got %llu of %d", (unsigned long long)stress_got,
		  STRESS_MSGS);
	cr_assert_eq(stress_bad, 0, "message %llu is wrong", (unsigned long long)stress_got);
	cr_assert_gt(stress_full, 0, "the queue never filled up");
	/* every by-reference payload comes back, and only those */
	(void)run_until(never, 100);
	for (uint64_t seq = 1; seq <= STRESS_MSGS; seq++)
		by_ref += stress_size(seq) > PEER_COPY_MAX;
	cr_assert_eq(a.nreleased, by_ref);
	free(pattern);
}

Test(peer, thousands_of_messages_arrive_in_order)
{
	thousands_of_messages();
}

/* --- a burst of requests: every one answered --- */

#define BURST 4000
static uint64_t burst_next = 1, burst_answered, burst_acked;
static int burst_unanswered;

static void burst_fill(void)
{
	while (burst_next <= BURST) {
		struct msg_hdr t = { .type = MSG_TRIM,
				     .count = 4096,
				     .seq = burst_next,
				     .offset = burst_next * 4096 };
		int rc = peer_send(a.p, &t, NULL);

		if (rc == -ENOBUFS)
			return;
		cr_assert_eq(rc, 0);
		burst_next++;
	}
}

static void burst_writable(void *arg)
{
	(void)arg;
	burst_fill();
}

/* b answers every TRIM at once, as a secondary does. */
static void burst_answer(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	struct msg_hdr ack = { .type = MSG_ACK, .seq = h->seq };

	(void)arg;
	(void)payload;
	if (h->type != MSG_TRIM || peer_send(b.p, &ack, NULL) != 0)
		burst_unanswered++;
	else
		burst_answered++;
}

static void burst_count(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	(void)arg;
	(void)payload;
	burst_acked += h->type == MSG_ACK;
}

static bool burst_queued(void)
{
	return burst_next > BURST;
}

static bool burst_done(void)
{
	return burst_acked >= BURST || burst_unanswered;
}

/* Thousands of requests arrive in one receive (the receiver was busy):
 * more answers than its send queue holds.  Each must still be answered,
 * none lost to a full queue. */
static void burst_of_requests(void)
{
	static struct peer_ops ops_a, ops_b;

	ops_a = ops;
	ops_b = ops;
	ops_a.writable = burst_writable;
	ops_a.message = burst_count;
	ops_b.message = burst_answer;
	start_with_ops(&ops_a, &ops_b);
	cr_assert(run_until(both_up, 5000));
	peer_recv_pause(b.p, true);
	burst_fill();
	(void)run_until(burst_queued, 3000);
	(void)run_until(never, 200); /* into the socket */
	cr_assert_eq(burst_answered, 0);
	peer_recv_pause(b.p, false);
	cr_assert(run_until(burst_done, 10000), "%llu of %d answered",
		  (unsigned long long)burst_acked, BURST);
	cr_assert_eq(burst_unanswered, 0, "%d requests found the send queue full for their answer",
		     burst_unanswered);
	cr_assert_eq(burst_acked, BURST);
	cr_assert_eq(a.downs + b.downs, 0, "a '%s', b '%s'", a.down_why, b.down_why);
}

Test(peer, a_burst_of_requests_is_paced_so_that_every_answer_fits)
{
	burst_of_requests();
}

/* --- freeing a peer that still has operations in flight --- */

Test(peer, free_with_operations_in_flight_then_loop_free)
{
	start_default();
	cr_assert(run_until(both_up, 5000));
	cr_assert_eq(peer_send(a.p, &(struct msg_hdr){ .type = MSG_FLUSH, .seq = 1 }, NULL), 0);
	/* RECV, TIMEOUT, maybe SENDMSG in flight: the loop never runs again */
	peer_free(a.p);
	peer_free(b.p);
	a.p = b.p = NULL;
	loop_free(loop);
	loop = NULL; /* ASan: nothing touches the freed peers */
	cr_assert_eq(a.downs + b.downs, 0, "no callback from peer_free");
}

/* --- TLS: the same link, every byte encrypted --- */

Test(peer, tls_link_replicates_a_write)
{
	use_tls = true;
	replicate_a_write();
	cr_assert_str_eq(peer_encryption(a.p), "tls-psk");
	cr_assert_not_null(peer_tls_offload(a.p)); /* kernel or userspace */
}

Test(peer, tls_thousands_of_messages_arrive_in_order)
{
	use_tls = true;
	thousands_of_messages();
}

Test(peer, tls_a_burst_of_requests_is_paced)
{
	use_tls = true;
	burst_of_requests();
}

Test(peer, tls_different_secrets_are_refused)
{
	struct peer_cfg ca = cfg_a(), cb = cfg_b();

	use_tls = true;
	cb.secret = (const uint8_t *)"open sesame";
	cb.secret_len = 11;
	start(&ca, &cb);
	expect_refusal("authentication failed");
	cr_assert(strstr(peer_last_error(b.p), "secret"), "b: %s", peer_last_error(b.p));
}

Test(peer, tls_peer_refuses_a_plaintext_one)
{
	struct peer_cfg ca = cfg_a(), cb = cfg_b();

	a.p = peer_new(loop, &ca, &ops, &a); /* plain TCP */
	cr_assert_not_null(a.p);
	use_tls = true;
	start(NULL, &cb);
	peer_enable(a.p, true);
	(void)run_until(never, 1500);
	cr_assert(strstr(peer_last_error(b.p), "not TLS"), "b: '%s'", peer_last_error(b.p));
	cr_assert_eq(a.ups + b.ups, 0);
}

/* Idle connections that never authenticate take no slot the real peer
 * needs: several handshakes run at once and each gets 1 s. */
Test(peer, tls_idle_connections_do_not_keep_the_peer_out)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port_b),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct peer_cfg ca = cfg_a(), cb = cfg_b();
	int hog[12];
	uint64_t t0;

	use_tls = true;
	start(NULL, &cb);
	(void)run_until(never, 200); /* listening */
	for (int i = 0; i < 12; i++) {
		hog[i] = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_eq(connect(hog[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	(void)run_until(never, 200);
	t0 = clock_now_ms();
	start(&ca, NULL);
	cr_assert(run_until(both_up, 3000), "not up: a '%s', b '%s'", peer_last_error(a.p),
		  peer_last_error(b.p));
	cr_assert_lt(clock_now_ms() - t0, 2000);
	for (int i = 0; i < 12; i++)
		close(hog[i]);
}

static bool rekeyed(void)
{
	return a.downs >= 1 && a.ups >= 2 && b.ups >= 2;
}

/* Past its limit of blocks under one key the link reconnects for new
 * keys, and says so. */
Test(peer, tls_link_rekeys_by_reconnecting)
{
	struct msg_hdr w = { .type = MSG_WRITE, .count = MiB, .length = MiB, .seq = 1 };
	uint8_t *data = calloc(1, MiB);

	use_tls = true;
	setenv("BLKREP_TEST_REKEY_BLOCKS", "100000", 1); /* 1.6 MB */
	start_default();
	unsetenv("BLKREP_TEST_REKEY_BLOCKS");
	cr_assert(run_until(both_up, 5000));
	for (int i = 0; i < 3; i++) {
		w.seq = (uint64_t)i + 1;
		if (peer_send_ref(a.p, &w, data) == 0)
			(void)run_until(write_acked, 2000);
	}
	cr_assert(run_until(rekeyed, 8000), "a downs %d ups %d, b ups %d: '%s'", a.downs, a.ups,
		  b.ups, a.down_why);
	cr_assert(strstr(a.down_why, "rekeying"), "why: '%s'", a.down_why);
	free(data);
}
