/* A data node's link to a witness (see witlink.h). */
#include "daemon/repl/witlink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/repl/nodeup.h"
#include "daemon/repl/sync.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "utils/log.h"

struct witlink {
	struct witlink_env env;
	struct peer *peer;
	bool up;
	struct msg_hello hello;	/* the witness's, from HELLO or STATE */
	uint64_t confirmed;	/* the generation it holds durably */
	uint64_t flush_seq;	/* the last FLUSH sent */
	uint64_t told;		/* the generation that FLUSH confirms */
};

struct witlink *witlink_new(const struct witlink_env *env)
{
	struct witlink *w = calloc(1, sizeof(*w));

	if (!w) {
		log_err("out of memory for the link to %s", env->other->name);
		return NULL;
	}
	w->env = *env;
	return w;
}

void witlink_free(struct witlink *w)
{
	if (!w)
		return;
	peer_free(w->peer);
	free(w);
}

bool witlink_up(const struct witlink *w)
{
	return w->up;
}

const char *witlink_name(const struct witlink *w)
{
	return w->env.other->name;
}

struct peer *witlink_peer(const struct witlink *w)
{
	return w->peer;
}

const struct msg_hello *witlink_hello(const struct witlink *w)
{
	return &w->hello;
}

uint64_t witlink_confirmed(const struct witlink *w)
{
	return w->up ? w->confirmed : 0;
}

void witlink_tell(struct witlink *w, uint64_t old, uint64_t new)
{
	struct msg_gen g = { .old_current = old, .new_current = new };
	uint8_t buf[MSG_GEN_MAX];
	struct msg_hdr h = { .type = MSG_GEN };
	struct msg_hdr f = { .type = MSG_FLUSH };

	if (!w->up || new == w->told)
		return;
	h.length = (uint32_t)msg_gen_encode(buf, &g);
	f.seq = w->flush_seq + 1;
	if (peer_send(w->peer, &h, buf) < 0 || peer_send(w->peer, &f, NULL) < 0) {
		peer_drop(w->peer, "no room to send the generation to the witness");
		return;
	}
	w->flush_seq = f.seq;
	w->told = new;
}

/* --- the link --- */

static void witlink_hello_out(void *arg, struct msg_hello *h)
{
	struct witlink *w = arg;
	const struct meta_sb *sb = local_sb(w->env.loc);

	h->role = w->env.up->primary(w->env.node) ? MSG_ROLE_PRIMARY : MSG_ROLE_SECONDARY;
	h->disk = (uint8_t)sb->disk;
	h->size_bytes = sb->data_bytes;
	h->extent_bytes = sb->extent_bytes;
	h->gen_current = sb->gen.current;
	memcpy(h->gen_history, sb->gen.history, sizeof(h->gen_history));
}

static enum peer_verdict witlink_accept(void *arg, const struct msg_hello *h, char *why,
					size_t len)
{
	struct witlink *w = arg;

	if (h->role == MSG_ROLE_WITNESS)
		return PEER_ACCEPT;
	snprintf(why, len, "%s is a witness in the config (witness = yes) but runs as a data "
		 "node: the config must be the same on every node", w->env.other->name);
	return PEER_REFUSE;
}

static void witlink_link_up(void *arg, const struct msg_hello *theirs)
{
	struct witlink *w = arg;

	w->hello = *theirs;
	w->confirmed = theirs->gen_current;
	w->told = 0;
	w->up = true;
	log_info("witness %s connected (it holds generation %016" PRIx64 ")", w->env.other->name,
		 theirs->gen_current);
	w->env.changed(w->env.node);
}

static void witlink_link_down(void *arg, const char *why)
{
	struct witlink *w = arg;

	w->up = false;
	w->confirmed = 0;
	log_warn("witness %s: connection lost: %s", w->env.other->name, why);
	w->env.changed(w->env.node);
}

static void witlink_flush_ack(struct witlink *w, const struct msg_hdr *h)
{
	if (h->seq != w->flush_seq) {
		if (h->seq > w->flush_seq)
			peer_drop(w->peer, "protocol error: the witness answered FLUSH %" PRIu64
				  ", which was never sent", h->seq);
		return;
	}
	if (h->count) {
		log_err("witness %s could not record generation %016" PRIx64 ": %s",
			w->env.other->name, w->told, strerror((int)h->count));
		w->told = 0; /* told again at the next change */
		return;
	}
	w->confirmed = w->told;
	w->hello.gen_current = w->told;
	w->env.changed(w->env.node);
}

static void witlink_message(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	struct witlink *w = arg;
	struct msg_hello st;
	const char *why;

	switch (h->type) {
	case MSG_FLUSH_ACK:
		return witlink_flush_ack(w, h);
	case MSG_STATE:
		if (msg_hello_decode(payload, h->length, &st, &why) < 0) {
			peer_drop(w->peer, "bad STATE from the witness: %s", why);
			return;
		}
		w->hello = st;
		w->confirmed = st.gen_current; /* the witness writes it before it says it */
		w->env.changed(w->env.node);
		return;
	default:
		peer_drop(w->peer, "protocol error: the witness %s sent %s", w->env.other->name,
			  msg_type_name(h->type));
	}
}

static void witlink_released(void *arg, const void *payload)
{
	(void)arg;
	(void)payload;
}

int witlink_start(struct witlink *w)
{
	static const struct peer_ops ops = {
		.hello = witlink_hello_out,
		.accept_peer = witlink_accept,
		.up = witlink_link_up,
		.down = witlink_link_down,
		.message = witlink_message,
		.released = witlink_released,
	};
	w->peer = sync_link_new(w->env.loop, w->env.cfg, w->env.me, w->env.other, w->env.secret,
				w->env.secret_len, w->env.hub, &ops, w);
	if (!w->peer)
		return -1;
	peer_enable(w->peer, true);
	return peer_listen_now(w->peer);
}
