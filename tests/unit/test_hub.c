/* Unit tests for proto/hub: three nodes' links in one process on
 * 127.0.0.1, a full mesh.  alpha connects to beta and gamma, beta to
 * gamma; gamma listens for alpha and beta on one shared listener, beta for
 * alpha on its own, alpha for no one.  Every link comes up (PSK, certificates, plain TCP),
 * each message reaches the node it was sent to, a connection naming no
 * registered peer (another pair's key, a wrong secret, an unknown node) is
 * refused while the real peers connect, and dropping one link leaves the
 * others up. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/hub.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "proto/tls.h"
#include "tests/unit/certs.h"
#include "tests/unit/loop_until.h"

enum { ALPHA, BETA, GAMMA, NODES };
static const char *const names[NODES] = { "alpha", "beta", "gamma" };
/* delta has a certificate from the same CA, and is no one's peer. */
static const char *const cert_names[NODES + 1] = { "alpha", "beta", "gamma", "delta" };

/* One end of a link: node me's link to node them. */
struct end {
	struct peer *p;
	int me, them;
	int ups, downs, writes;
	char got[64]; /* the last WRITE's payload */
	struct msg_hello theirs;
};

/* alpha-beta, alpha-gamma, beta-gamma: ends 2i (the connecting one) and
 * 2i + 1. */
#define ENDS 6
static struct end ends[ENDS];
static struct end rogue; /* a client that must be refused */
static struct peer_hub *hubs[NODES];
static struct loop *loop;
static struct ticker ticker;
static char addrs[NODES][32], elsewhere[32];
static struct certs *certs;
static enum { PSK, CERT, PLAIN } mode;
/* gamma's link to alpha has peer-address-only, and alpha's address as
 * 127.0.0.2 (alpha connects from 127.0.0.1). */
static bool alpha_elsewhere;

static void cb_hello(void *arg, struct msg_hello *m)
{
	(void)arg;
	m->size_bytes = 1ULL << 30;
	m->extent_bytes = 64U << 10;
	m->disk = MSG_DISK_UPTODATE;
	m->gen_current = 0x1234;
}

static void cb_up(void *arg, const struct msg_hello *theirs)
{
	struct end *e = arg;

	e->ups++;
	e->theirs = *theirs;
}

static void cb_down(void *arg, const char *why)
{
	(void)why;
	((struct end *)arg)->downs++;
}

static void cb_message(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	struct end *e = arg;

	cr_assert_eq(h->type, MSG_WRITE);
	cr_assert_lt(h->length, sizeof(e->got));
	memcpy(e->got, payload, h->length);
	e->got[h->length] = '\0';
	e->writes++;
}

static const struct peer_ops ops = {
	.hello = cb_hello, .up = cb_up, .down = cb_down, .message = cb_message
};

/* --- fixture --- */

static void free_addrs(void)
{
	int fd[NODES];

	for (int i = 0; i < NODES; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(sin);

		fd[i] = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert(fd[i] >= 0 && bind(fd[i], (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
			  getsockname(fd[i], (struct sockaddr *)&sin, &len) == 0);
		snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%u", ntohs(sin.sin_port));
	}
	for (int i = 0; i < NODES; i++)
		close(fd[i]);
}

static struct tls_ctx *node_tls(const char *node, const char *secret)
{
	struct tls_cfg c = { .resource = "r0",
			     .secret = (const uint8_t *)secret,
			     .secret_len = strlen(secret) };
	char err[256];
	struct tls_ctx *t;

	if (mode == PLAIN)
		return NULL;
	if (mode == CERT) {
		c.ca = certs_ca(certs);
		c.certificate = certs_cert(certs, node);
		c.key = certs_key(certs, node);
	}
	t = tls_ctx_new(&c, err, sizeof(err));
	cr_assert_not_null(t, "%s", err);
	return t;
}

/* A link's configuration without TLS nor hub. */
static struct peer_cfg link_cfg(const char *me, const char *them, const char *my_addr,
				const char *peer_addr, const char *secret)
{
	return (struct peer_cfg){
		.resource = "r0",
		.my_node = me,
		.peer_node = them,
		.my_addr = my_addr,
		.peer_addr = peer_addr,
		.secret = (const uint8_t *)secret,
		.secret_len = strlen(secret),
	};
}

static struct peer *new_end(struct end *e, int me, int them, const char *secret,
			    const char *peer_addr)
{
	struct peer_cfg c = link_cfg(names[me], names[them], addrs[me],
				     peer_addr ? peer_addr : addrs[them], secret);

	c.tls = node_tls(names[me], secret);
	c.hub = hubs[me];
	if (alpha_elsewhere && me == GAMMA && them == ALPHA) {
		c.peer_address_only = true;
		c.peer_addr = elsewhere;
		snprintf(elsewhere, sizeof(elsewhere), "127.0.0.2:%s",
			 strchr(addrs[ALPHA], ':') + 1);
	}
	e->me = me;
	e->them = them;
	e->p = peer_new(loop, &c, &ops, e);
	cr_assert_not_null(e->p);
	return e->p;
}

static void setup(void)
{
	alpha_elsewhere = false;
	memset(ends, 0, sizeof(ends));
	memset(&rogue, 0, sizeof(rogue));
	loop = loop_new();
	cr_assert_not_null(loop);
	ticker_start(&ticker, loop, 20);
	free_addrs();
}

/* Starts the mesh: each node's hub (alpha's, with no link that listens,
 * never opens its socket), the six ends. */
static void start(void)
{
	static const int pairs[3][2] = { { ALPHA, BETA }, { ALPHA, GAMMA }, { BETA, GAMMA } };

	if (mode == CERT)
		cr_assert_not_null(certs = certs_make(cert_names, NODES + 1));
	for (int n = 0; n < NODES; n++) { /* alpha's listens for no one */
		hubs[n] = peer_hub_new(loop, "r0", addrs[n], node_tls(names[n], "sesame"));
		cr_assert_not_null(hubs[n]);
	}
	for (int i = 0; i < 3; i++) {
		new_end(&ends[2 * i], pairs[i][0], pairs[i][1], "sesame", NULL);
		new_end(&ends[2 * i + 1], pairs[i][1], pairs[i][0], "sesame", NULL);
	}
	for (int i = 0; i < ENDS; i++)
		peer_enable(ends[i].p, true);
	for (int i = 0; i < ENDS; i++)
		cr_assert_eq(peer_listen_now(ends[i].p), 0);
}

static bool all_idle(void)
{
	for (int i = 0; i < ENDS; i++)
		if (ends[i].p && !peer_idle(ends[i].p))
			return false;
	for (int n = 0; n < NODES; n++)
		if (hubs[n] && !peer_hub_idle(hubs[n]))
			return false;
	return !rogue.p || peer_idle(rogue.p);
}

static void teardown(void)
{
	for (int i = 0; i < ENDS; i++)
		if (ends[i].p)
			peer_enable(ends[i].p, false);
	if (rogue.p)
		peer_enable(rogue.p, false);
	cr_assert(loop_run_until(loop, all_idle, 3000), "links still busy after disabling");
	for (int i = 0; i < ENDS; i++)
		peer_free(ends[i].p);
	peer_free(rogue.p);
	for (int n = 0; n < NODES; n++) {
		peer_hub_free(hubs[n]);
		hubs[n] = NULL;
	}
	loop_free(loop);
	certs_free(certs);
	certs = NULL;
}

TestSuite(hub, .init = setup, .fini = teardown, .timeout = 30);

/* --- checks --- */

static bool all_up(void)
{
	for (int i = 0; i < ENDS; i++)
		if (!peer_connected(ends[i].p))
			return false;
	return true;
}

static bool all_written(void)
{
	for (int i = 0; i < ENDS; i++)
		if (ends[i].writes < 1)
			return false;
	return true;
}

static void expect_mesh_up(void)
{
	cr_assert(loop_run_until(loop, all_up, 8000), "not all up: %s / %s / %s / %s / %s / %s",
		  peer_last_error(ends[0].p), peer_last_error(ends[1].p),
		  peer_last_error(ends[2].p), peer_last_error(ends[3].p),
		  peer_last_error(ends[4].p), peer_last_error(ends[5].p));
	for (int i = 0; i < ENDS; i++)
		cr_assert_str_eq(ends[i].theirs.node, names[ends[i].them]);
}

/* Each end sends "ME->THEM"; each must receive "THEM->ME". */
static void expect_messages_reach_their_peers(void)
{
	for (int i = 0; i < ENDS; i++) {
		char text[64];
		int n = snprintf(text, sizeof(text), "%s->%s", names[ends[i].me],
				 names[ends[i].them]);
		struct msg_hdr h = {
			.type = MSG_WRITE, .length = (uint32_t)n, .count = (uint32_t)n, .seq = 1
		};

		ends[i].writes = 0;
		cr_assert_eq(peer_send(ends[i].p, &h, text), 0);
	}
	cr_assert(loop_run_until(loop, all_written, 5000), "a WRITE did not arrive");
	for (int i = 0; i < ENDS; i++) {
		char want[64];

		snprintf(want, sizeof(want), "%s->%s", names[ends[i].them], names[ends[i].me]);
		cr_assert_str_eq(ends[i].got, want);
		cr_assert_eq(ends[i].writes, 1);
	}
}

static void mesh_comes_up_and_carries_messages(void)
{
	start();
	expect_mesh_up();
	expect_messages_reach_their_peers();
	for (int i = 0; i < ENDS; i++)
		cr_assert_eq(ends[i].downs, 0, "end %d went down", i);
}

Test(hub, psk_mesh_comes_up_and_each_message_reaches_its_peer)
{
	mode = PSK;
	mesh_comes_up_and_carries_messages();
	cr_assert_str_eq(peer_encryption(ends[3].p), "tls-psk");
}

Test(hub, certificate_mesh_comes_up_and_each_message_reaches_its_peer)
{
	mode = CERT;
	mesh_comes_up_and_carries_messages();
	cr_assert_str_eq(peer_encryption(ends[3].p), "tls-certificate");
}

Test(hub, plain_mesh_comes_up_and_each_message_reaches_its_peer)
{
	mode = PLAIN;
	mesh_comes_up_and_carries_messages();
	cr_assert_str_eq(peer_encryption(ends[3].p), "none");
}

/* --- refusals --- */

static bool rogue_refused_and_mesh_up(void)
{
	return all_up() && peer_last_error(rogue.p)[0] != '\0';
}

static bool rogue_up_or_mesh_down(void)
{
	return rogue.ups > 0 || !all_up();
}

/* A rogue alpha dials gamma's port as (secret, me, them, its addr). */
static void rogue_is_refused(const char *secret, int me, int them, const char *want)
{
	start();
	new_end(&rogue, me, them, secret, addrs[GAMMA]);
	peer_enable(rogue.p, true);
	cr_assert(loop_run_until(loop, rogue_refused_and_mesh_up, 8000), "mesh up %d, rogue: '%s'",
		  all_up(), peer_last_error(rogue.p));
	/* It keeps being refused while the mesh stays up. */
	cr_assert_not(loop_run_until(loop, rogue_up_or_mesh_down, 1500));
	cr_assert(strstr(peer_last_error(rogue.p), want), "rogue: '%s'", peer_last_error(rogue.p));
	cr_assert_eq(rogue.ups, 0);
	expect_messages_reach_their_peers();
	for (int i = 0; i < ENDS; i++)
		cr_assert_eq(ends[i].downs, 0, "end %d went down", i);
}

Test(hub, another_pairs_key_is_refused_while_the_peers_connect)
{
	/* alpha's key for beta, offered to gamma: gamma has no such pair. */
	mode = PSK;
	rogue_is_refused("sesame", ALPHA, BETA, "authentication failed");
}

Test(hub, a_wrong_secret_is_refused_while_the_peers_connect)
{
	mode = PSK;
	rogue_is_refused("open sesame", ALPHA, GAMMA, "authentication failed");
}

Test(hub, an_unknown_node_is_refused_in_plain_tcp)
{
	struct peer_cfg c;

	/* alpha0's HELLO names no peer of gamma's: closed before any HELLO of
	 * gamma's goes out. */
	mode = PLAIN;
	start();
	c = link_cfg("alpha0", "gamma", addrs[ALPHA], addrs[GAMMA], "sesame");
	rogue.p = peer_new(loop, &c, &ops, &rogue);
	cr_assert_not_null(rogue.p);
	peer_enable(rogue.p, true);
	cr_assert(loop_run_until(loop, rogue_refused_and_mesh_up, 8000), "rogue: '%s'",
		  peer_last_error(rogue.p));
	cr_assert_eq(rogue.ups, 0);
	cr_assert(strstr(peer_last_error(rogue.p), "closed"), "rogue: '%s'",
		  peer_last_error(rogue.p));
}

Test(hub, a_certificate_naming_no_peer_is_refused)
{
	struct peer_cfg c = link_cfg("delta", "gamma", addrs[ALPHA], addrs[GAMMA], "sesame");

	mode = CERT;
	start();
	c.tls = node_tls("delta", "sesame");
	rogue.p = peer_new(loop, &c, &ops, &rogue);
	cr_assert_not_null(rogue.p);
	peer_enable(rogue.p, true);
	cr_assert(loop_run_until(loop, rogue_refused_and_mesh_up, 8000), "rogue: '%s'",
		  peer_last_error(rogue.p));
	cr_assert_not(loop_run_until(loop, rogue_up_or_mesh_down, 1500));
	cr_assert(strstr(peer_last_error(rogue.p), "certificate"), "rogue: '%s'",
		  peer_last_error(rogue.p));
}

static bool beta_gamma_up_alpha_refused(void)
{
	return peer_connected(ends[4].p) && peer_connected(ends[5].p) &&
	       strstr(peer_last_error(ends[3].p), "peer-address-only");
}

Test(hub, peer_address_only_refuses_a_peer_from_another_host)
{
	mode = PSK;
	alpha_elsewhere = true;
	start();
	cr_assert(loop_run_until(loop, beta_gamma_up_alpha_refused, 8000), "gamma-alpha: '%s'",
		  peer_last_error(ends[3].p));
	cr_assert_not(loop_run_until(loop, all_up, 1500));
	cr_assert_eq(ends[3].ups, 0);
	cr_assert(peer_connected(ends[0].p) && peer_connected(ends[1].p));
}

/* Idle connections to gamma's port, three times its 8 handshakes at once,
 * those it dropped opened again every 300 ms: the real peers still
 * connect.  (A client opening connections faster than a handshake
 * completes can delay them: docs/SECURITY.md.) */
static int idle_fds[3 * 8];
static uint64_t idle_opened_ms;

static bool mesh_up_despite_idlers(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	unsigned port = 0;

	sscanf(addrs[GAMMA], "127.0.0.1:%u", &port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (now_ms() - idle_opened_ms < 300)
		return all_up();
	idle_opened_ms = now_ms();
	for (unsigned i = 0; i < sizeof(idle_fds) / sizeof(idle_fds[0]); i++) {
		char c;

		if (idle_fds[i] > 0 && recv(idle_fds[i], &c, 1, MSG_DONTWAIT) == -1 &&
		    errno == EAGAIN)
			continue; /* still held open by gamma */
		if (idle_fds[i] > 0)
			close(idle_fds[i]);
		idle_fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(idle_fds[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	return all_up();
}

Test(hub, idle_connections_do_not_keep_the_peers_out)
{
	mode = PSK;
	start();
	memset(idle_fds, 0, sizeof(idle_fds));
	idle_opened_ms = 0;
	(void)mesh_up_despite_idlers(); /* before the peers' first connect */
	cr_assert(loop_run_until(loop, mesh_up_despite_idlers, 10000), "not up: %s / %s",
		  peer_last_error(ends[3].p), peer_last_error(ends[5].p));
	for (unsigned i = 0; i < sizeof(idle_fds) / sizeof(idle_fds[0]); i++)
		close(idle_fds[i]);
	expect_messages_reach_their_peers();
}

/* --- one link goes, the others stay --- */

static bool pair_down(void)
{
	return !peer_connected(ends[2].p) && !peer_connected(ends[3].p);
}

static void dropping_one_link_leaves_the_others(void)
{
	start();
	expect_mesh_up();
	/* gamma drops alpha: alpha-gamma goes, alpha reconnects. */
	peer_drop(ends[3].p, "test: dropped");
	cr_assert(loop_run_until(loop, all_up, 8000), "not back up");
	cr_assert_geq(ends[3].downs, 1);
	/* gamma disables its link to alpha: it stays down... */
	peer_enable(ends[3].p, false);
	cr_assert(loop_run_until(loop, pair_down, 3000));
	cr_assert_not(loop_run_until(loop, all_up, 1500));
	/* ...while beta-gamma, through the same listener, carries on. */
	for (int i = 0; i < ENDS; i++)
		if (i != 2 && i != 3)
			cr_assert_eq(ends[i].downs, 0, "end %d went down", i);
	cr_assert(peer_connected(ends[4].p) && peer_connected(ends[5].p));
	peer_enable(ends[3].p, true);
	expect_mesh_up();
	expect_messages_reach_their_peers();
}

Test(hub, psk_dropping_one_link_leaves_the_others)
{
	mode = PSK;
	dropping_one_link_leaves_the_others();
}

Test(hub, plain_dropping_one_link_leaves_the_others)
{
	mode = PLAIN;
	dropping_one_link_leaves_the_others();
}

/* --- the port --- */

Test(hub, a_taken_port_fails_listen_now)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	mode = PSK;
	sscanf(addrs[GAMMA], "127.0.0.1:%u", &port);
	sin.sin_port = htons((uint16_t)port);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		  listen(fd, 1) == 0);
	hubs[GAMMA] = peer_hub_new(loop, "r0", addrs[GAMMA], node_tls("gamma", "sesame"));
	new_end(&ends[3], GAMMA, ALPHA, "sesame", NULL);
	new_end(&ends[5], GAMMA, BETA, "sesame", NULL);
	peer_enable(ends[3].p, true);
	peer_enable(ends[5].p, true);
	cr_assert_eq(peer_listen_now(ends[3].p), -1);
	close(fd);
	cr_assert_eq(peer_listen_now(ends[3].p), 0);
	cr_assert_eq(peer_listen_now(ends[5].p), 0); /* the same socket */
}

Test(hub, a_link_in_another_tls_mode_is_refused)
{
	struct peer_cfg c = link_cfg("gamma", "alpha", addrs[GAMMA], addrs[ALPHA], "sesame");

	mode = PSK;
	hubs[GAMMA] = peer_hub_new(loop, "r0", addrs[GAMMA], node_tls("gamma", "sesame"));
	c.hub = hubs[GAMMA];
	cr_assert_null(peer_new(loop, &c, &ops, &ends[3])); /* plain link, TLS hub */
}
