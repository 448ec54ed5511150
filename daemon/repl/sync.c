/* A node's peer (see sync.h): the object and what the node's other parts
 * ask of it.  What happens on its link is in node_sync.c. */
#include "daemon/repl/sync_int.h"

#include "proto/hub.h"
#include "proto/tls.h"

void sync_free(struct sync *s)
{
	if (!s)
		return;
	peer_free(s->peer);
	resync_free(s->rs);
	verify_free(s->vf);
	free(s);
}

bool sync_up(const struct sync *s)
{
	return s->up;
}

const struct msg_hello *sync_hello(const struct sync *s)
{
	return &s->hello;
}

struct peer *sync_peer(const struct sync *s)
{
	return s->peer;
}

enum rs_role sync_rs_role(const struct sync *s)
{
	return s->rs_role;
}

bool sync_exchanging(const struct sync *s)
{
	return s->exchanging;
}

bool sync_split_brain(const struct sync *s)
{
	return s->split_brain;
}

bool sync_resync_progress(const struct sync *s, uint64_t *done, uint64_t *total, uint64_t *bps)
{
	uint64_t ns;

	if (s->rs_role == RS_SOURCE && resync_running(s->rs)) {
		resync_progress(s->rs, done, total, bps);
		return true;
	}
	if (s->rs_role != RS_TARGET || !s->peer_bm_done)
		return false;
	ns = clock_now_ns() - s->rs_recv_start_ns;
	*done = s->rs_recv_bytes;
	*total = s->rs_recv_total > *done ? s->rs_recv_total : *done;
	*bps = ns ? (uint64_t)((double)*done * 1e9 / (double)ns) : 0;
	return true;
}

struct resync *sync_resync(const struct sync *s)
{
	return s->rs;
}

struct verify *sync_verify(const struct sync *s)
{
	return s->vf;
}

struct stream *sync_stream(const struct sync *s)
{
	return s->stream;
}

struct lane *sync_lane(const struct sync *s)
{
	return s->lane;
}

int sync_slot(const struct sync *s)
{
	return s->slot;
}

/* The primary (this node) told the peer, by MSG_GEN, to move from
 * generation old to new: a peer in step does (secondary_gen()), so the
 * verdicts here count it there already, before its STATE says so. */
void sync_peer_follows(struct sync *s, uint64_t old, uint64_t new)
{
	struct msg_hello *h = &s->hello;

	if (old == new || h->gen_current != old || h->disk < MSG_DISK_CONSISTENT ||
	    (h->flags2 & MSG_HELLO_F2_UNSURE))
		return;
	memmove(h->gen_history + 1, h->gen_history, sizeof(h->gen_history) - sizeof(h->gen_history[0]));
	h->gen_history[0] = old;
	h->gen_current = new;
}

bool sync_deferred(const struct sync *s)
{
	return s->deferred;
}

const char *sync_name(const struct sync *s)
{
	return s->other->name;
}

const struct config_node *sync_node(const struct sync *s)
{
	return s->other;
}

void sync_discard_local(struct sync *s, uint64_t gen)
{
	s->saved_for = gen;
	s->discard_local = true;
	peer_enable(s->peer, true);
}

void sync_resync_acked(struct sync *s, void *req, int err)
{
	resync_acked(s->rs, req, err);
}

void sync_flush_covered(struct sync *s)
{
	s->covered(s);
}

void sync_relock(struct sync *s)
{
	resync_relock(s->rs);
	verify_relock(s->vf);
}

const char *sync_peer_disk(const struct sync *s)
{
	static const char *const names[] = { "inconsistent", "outdated", "consistent", "uptodate" };

	if (!s->up)
		return "unknown";
	return s->hello.disk < 4 ? names[s->hello.disk] : "unknown";
}

uint64_t sync_resynced_bytes(const struct sync *s)
{
	return s->resynced_bytes + s->resynced_in;
}

/* A link's (or the hub's) TLS context: a key derived from the secret,
 * or this node's certificate. */
struct tls_ctx *sync_tls_for(const struct config *cfg, const struct config_node *me,
			     const uint8_t *secret, size_t secret_len)
{
	const char *resource = config_resource_name(cfg);
	struct tls_cfg tc = {
		.resource = resource,
		.secret = secret,
		.secret_len = secret_len,
		.ca = config_tls_ca(cfg),
		.certificate = me->tls_certificate,
		.key = me->tls_key,
	};
	char err[TLS_ERR_MAX + 64];
	struct tls_ctx *c = tls_ctx_new(&tc, err, sizeof(err));

	if (!c)
		log_err("%s: %s", resource, err);
	return c;
}

struct peer *sync_link_new(struct loop *loop, const struct config *cfg,
			   const struct config_node *me, const struct config_node *other,
			   const uint8_t *secret, size_t secret_len, struct peer_hub *hub,
			   const struct peer_ops *ops, void *arg)
{
	struct peer_cfg pc = {
		.resource = config_resource_name(cfg),
		.my_node = me->name,
		.peer_node = other->name,
		.my_addr = me->address,
		.peer_addr = other->address,
		.secret = secret,
		.secret_len = secret_len,
		.allow_unauthenticated = config_allow_unauthenticated(cfg),
		.peer_address_only = config_peer_address_only(cfg),
		.hub = hub,
	};

	if (!config_allow_unencrypted(cfg) &&
	    !(pc.tls = sync_tls_for(cfg, me, secret, secret_len)))
		return NULL;
	return peer_new(loop, &pc, ops, arg);
}

struct tls_ctx *sync_tls(const struct sync_env *env)
{
	return sync_tls_for(env->cfg, env->me, env->secret, env->secret_len);
}

/* With three nodes or more: the node's one listening socket, shared by
 * the links of the peers that connect to it (proto/hub.h).  NULL after
 * logging why. */
struct peer_hub *sync_hub_new(const struct sync_env *env)
{
	struct tls_ctx *tls = NULL;

	if (!config_allow_unencrypted(env->cfg) && !(tls = sync_tls(env)))
		return NULL;
	return peer_hub_new(env->loop, config_resource_name(env->cfg), env->me->address, tls);
}

/* MSG_GEN and MSG_MARK, which only a primary sends (three nodes or more). */
void sync_from_primary(struct sync *s, const struct msg_hdr *h, const uint8_t *payload)
{
	struct msg_gen g;
	const char *why;

	if (s->env.up->primary(s->env.node) || s->hello.role != MSG_ROLE_PRIMARY) {
		log_debug("from %s: %s while it is not our primary", s->other->name,
			  msg_type_name(h->type));
		return;
	}
	if (h->type == MSG_MARK)
		return secondary_mark(s->env.sec);
	if (msg_gen_decode(payload, h->length, &g, &why) < 0) {
		peer_drop(s->peer, "bad GEN from %s: %s", s->other->name, why);
		return;
	}
	if (secondary_gen(s->env.sec, s, &g))
		s->env.up->state_changed(s->env.node); /* the peers learn the generation */
}
