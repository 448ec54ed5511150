/* The replication link's TLS handshakes (docs/SECURITY.md, "The peer
 * port"): the connecting side's one, and the listener's, up to PEND_MAX at
 * once, each given TLS_HS_MS, the first to authenticate winning.  Each
 * runs in a proto/tlshs; an authenticated connection goes to link.c
 * (link_adopt()), which calls in here for new connections, the tick and
 * stopping.  Refusals are logged at most once a second. */
#include "proto/peer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/tls.h"
#include "proto/tlshs.h"
#include "utils/clock.h"

/* One line a second about connections refused before authenticating:
 * a client without the key may try many. */
void gate_refused(struct peer *p, const char *host, const char *why)
{
	uint64_t now = clock_now_ms();

	if (now - p->refused_log_ms < REFUSED_LOG_MS) {
		p->refused_quiet++;
		return;
	}
	if (p->refused_quiet)
		peer_log(LOG_WARN, p, "refused a connection from %s: %s (and %u more since)", host,
			 why, p->refused_quiet);
	else
		peer_log(LOG_WARN, p, "refused a connection from %s: %s", host, why);
	p->refused_log_ms = now;
	p->refused_quiet = 0;
	if (!peer_connected(p))
		snprintf(p->last_error, sizeof(p->last_error), "%s", why);
}

static void client_done(void *arg, struct tlshs *hs)
{
	struct peer *p = arg;
	struct tls *t;
	int fd;

	p->in_handler = true;
	p->hs = NULL;
	if (!tlshs_ok(hs)) {
		peer_note_error(p, LOG_ERR, tlshs_error(hs));
		tlshs_free(hs);
		peer_backoff(p, false);
	} else {
		tlshs_take(hs, &fd, &t);
		link_adopt(p, fd, t, NULL, 0);
	}
	peer_after(p);
}

/* An accepted connection authenticated: the first one wins.  A link still
 * up is the peer's old one (it reconnected: only it can authenticate), so
 * it goes.  In plain TCP, where anyone could say the peer's name, the link
 * that is up stays. */
void gate_won(struct peer *p, int fd, struct tls *t, const uint8_t *pre, uint32_t n)
{
	if (!t && peer_link_alive(p)) {
		peer_log(LOG_WARN, p, "closing a second connection: one is already open");
		close(fd);
		return;
	}
	if (peer_link_alive(p))
		peer_link_drop(p, "the peer connected again");
	if (p->fd >= 0) { /* the old connection is still draining */
		if (p->stash_fd >= 0) {
			close(p->stash_fd);
			tls_free(p->stash_tls);
		}
		p->stash_fd = fd;
		p->stash_tls = t;
		p->stash_pre_len = n <= sizeof(p->stash_pre) ? n : 0;
		if (p->stash_pre_len)
			memcpy(p->stash_pre, pre, n);
		return;
	}
	link_adopt(p, fd, t, pre, n);
}

static void server_done(void *arg, struct tlshs *hs)
{
	struct peer *p = arg;
	struct tls *t;
	unsigned i;
	int fd;

	p->in_handler = true;
	for (i = 0; i < PEND_MAX && p->pend[i] != hs; i++)
		;
	if (i < PEND_MAX)
		p->pend[i] = NULL;
	if (!tlshs_ok(hs) || p->freeing || !p->enabled) {
		gate_refused(p, i < PEND_MAX ? p->pend_host[i] : "?",
			     tlshs_ok(hs) ? "the link is disabled" : tlshs_error(hs));
		tlshs_free(hs);
	} else {
		tlshs_take(hs, &fd, &t);
		peer_log(LOG_DEBUG, p, "authenticated a connection from %s",
			 i < PEND_MAX ? p->pend_host[i] : "?");
		gate_won(p, fd, t, NULL, 0);
	}
	peer_after(p);
}

void gate_abort(struct peer *p)
{
	if (p->hs)
		tlshs_abort(p->hs);
	p->hs = NULL;
	for (unsigned i = 0; i < PEND_MAX; i++) {
		if (p->pend[i])
			tlshs_abort(p->pend[i]);
		p->pend[i] = NULL;
	}
}

/* Starts the TLS handshake of a new connection: as the client on the
 * connecting side, in a free (or the oldest) slot of the listener's. */
void gate_destroy(struct peer *p)
{
	if (p->hs)
		tlshs_free(p->hs);
	for (unsigned i = 0; i < PEND_MAX; i++)
		if (p->pend[i])
			tlshs_free(p->pend[i]);
}

void gate_start(struct peer *p, int fd, bool client, const char *host)
{
	struct tls *t = tls_new(p->tls_ctx, client, p->peer_node);
	struct tlshs *hs = t ? tlshs_start(p->loop, fd, t, client ? client_done : server_done, p)
			     : NULL;
	unsigned i, old = 0;

	if (!hs) {
		tls_free(t);
		close(fd);
		peer_note_error(p, LOG_ERR, "TLS: out of memory");
		return;
	}
	if (client) {
		p->hs = hs;
		return;
	}
	for (i = 0; i < PEND_MAX && p->pend[i]; i++)
		if (tlshs_started_ms(p->pend[i]) < tlshs_started_ms(p->pend[old]))
			old = i;
	if (i == PEND_MAX) {
		gate_refused(p, p->pend_host[old], "too many connections authenticating at once");
		tlshs_abort(p->pend[old]);
		i = old;
	}
	p->pend[i] = hs;
	snprintf(p->pend_host[i], sizeof(p->pend_host[i]), "%s", host);
}

void gate_tick(struct peer *p, uint64_t now)
{
	char why[ERR_MAX];

	if (p->hs && now - tlshs_started_ms(p->hs) >= HANDSHAKE_MS) {
		snprintf(why, sizeof(why), "TLS handshake with %s not finished within %d s",
			 p->peer_addr, HANDSHAKE_MS / 1000);
		peer_note_error(p, LOG_ERR, why);
		tlshs_abort(p->hs);
		p->hs = NULL;
		peer_backoff(p, false);
	}
	for (unsigned i = 0; i < PEND_MAX; i++) {
		if (p->pend[i] && now - tlshs_started_ms(p->pend[i]) >= TLS_HS_MS) {
			gate_refused(p, p->pend_host[i], "not authenticated within 1 s");
			tlshs_abort(p->pend[i]);
			p->pend[i] = NULL;
		}
	}
}

/* Whether the accepted connection comes from the peer's configured host
 * (any port). */
bool gate_from_peer_host(const struct peer *p)
{
	return peer_same_host(&p->acc_sa, &p->peer_sa);
}
