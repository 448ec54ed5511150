/* The witness daemon.  See witness.h.  Its state file is wstate.c's; what
 * a data node's message does to it is decided there too
 * (wstate_message()), this file doing the I/O: the links, the file, the
 * control socket. */
#include "daemon/witness/witness.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/config_secret.h"
#include "daemon/ctl/control.h"
#include "daemon/ctl/rundir.h"
#include "daemon/repl/sync.h"
#include "daemon/witness/wstate.h"
#include "proto/hub.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "proto/tls.h"
#include "utils/log.h"
#include "utils/loop.h"
#include "utils/secmem.h"
#include "utils/strbuf.h"

#define W_EXTENT 4096 /* the extent size a witness says it has */

struct witness;

/* The link to one data node, and what it last said of itself. */
struct wlink {
	struct witness *w;
	const struct config_node *other;
	struct peer *peer;
	bool up;
	bool stale;		/* its last MSG_GEN was refused: ESTALE to its FLUSH */
	struct msg_hello hello; /* valid while up */
};

struct witness {
	const struct node_above *above; /* NULL: the built-in requests */
	struct loop *loop;
	struct config *cfg;
	const struct config_node *me;
	uint8_t *secret; /* secmem, CONFIG_SECRET_MAX bytes */
	size_t secret_len;
	struct wstate st;
	bool dirty;   /* st changed since it was written */
	int save_err; /* errno of the last failed write, 0 */
	struct wlink links[CONFIG_NODES_MAX];
	unsigned nlinks;
	struct peer_hub *hub;
	struct control *ctl;
	struct rundir run;
	struct rundir_signals sig;
	bool stopping;
	int ready_fd;
};

/* --- the state file --- */

/* Durable before a FLUSH is answered: 0, or the errno (logged). */
static int witness_persist(struct witness *w)
{
	char err[512];

	if (!w->dirty)
		return 0;
	if (wstate_save(w->me->state_file, &w->st, err, sizeof(err)) < 0) {
		w->save_err = errno ? errno : EIO;
		log_err("state file %s: the data nodes do not count this witness until it "
			"can write",
			err);
		return w->save_err;
	}
	if (w->save_err)
		log_info("state file %s written again", w->me->state_file);
	w->save_err = 0;
	w->dirty = false;
	return 0;
}

/* --- the links --- */

static void wl_hello(void *arg, struct msg_hello *mine)
{
	const struct wstate *st = &((struct wlink *)arg)->w->st;

	mine->role = MSG_ROLE_WITNESS;
	mine->disk = MSG_DISK_DISKLESS;
	mine->size_bytes = 0;
	mine->extent_bytes = W_EXTENT;
	mine->flags = 0;
	mine->flags2 = 0;
	mine->gen_current = st->current;
	mine->gen_bitmap = 0;
	memcpy(mine->gen_history, st->history, sizeof(mine->gen_history));
}

/* Witnesses link to data nodes only. */
static enum peer_verdict wl_accept(void *arg, const struct msg_hello *theirs, char *why,
				   size_t whylen)
{
	struct wlink *l = arg;

	if (theirs->role != MSG_ROLE_WITNESS)
		return PEER_ACCEPT;
	snprintf(why, whylen, "%s and %s are both witnesses: a witness links to data nodes only",
		 l->w->me->name, l->other->name);
	return PEER_REFUSE;
}

static void wl_up(void *arg, const struct msg_hello *theirs)
{
	struct wlink *l = arg;

	l->up = true;
	l->hello = *theirs;
	log_info("%s is connected: %s, disk %s, generation %016" PRIx64, l->other->name,
		 msg_role_name(theirs->role), msg_disk_name(theirs->disk), theirs->gen_current);
}

static void wl_down(void *arg, const char *why)
{
	struct wlink *l = arg;

	l->up = false;
	log_info("%s is disconnected: %s", l->other->name, why);
}

static void wl_flush_ack(struct wlink *l, uint64_t seq)
{
	struct msg_hdr ack = { .type = MSG_FLUSH_ACK, .seq = seq };

	ack.count = l->stale ? ESTALE : (uint32_t)witness_persist(l->w);
	l->stale = false;
	if (peer_send(l->peer, &ack, NULL) < 0)
		log_debug("FLUSH_ACK to %s not sent: the link went", l->other->name);
}

/* A new generation: on disk at once, and every connected data node hears
 * it (STATE), so that none is promoted without knowing it. */
static void witness_news(struct witness *w)
{
	(void)witness_persist(w);
	for (unsigned i = 0; i < w->nlinks; i++)
		if (w->links[i].up)
			(void)peer_send_state(w->links[i].peer);
}

static void wl_message(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	struct wlink *l = arg;
	struct witness *w = l->w;
	uint64_t was = w->st.current;
	struct msg_hello hello;
	const char *why = "";

	switch (wstate_message(&w->st, &w->dirty, h, payload, &hello, &why)) {
	case WSTATE_HELLO:
		l->hello = hello;
		return;
	case WSTATE_FLUSH:
		return wl_flush_ack(l, h->seq);
	case WSTATE_DROP:
		if (h->type == MSG_STATE || h->type == MSG_GEN)
			peer_drop(l->peer, "bad %s from %s: %s", msg_type_name(h->type),
				  l->other->name, why);
		else
			peer_drop(l->peer, "%s: %s sent %s", why, l->other->name,
				  msg_type_name(h->type));
		return;
	case WSTATE_STALE:
		l->stale = true;
		(void)peer_send_state(l->peer); /* what it lacks: it steps down */
		log_warn("%s's generation step does not start from this witness's %016" PRIx64
			 " (it lacks that newer one): not recorded", l->other->name, was);
		return;
	case WSTATE_NOTHING:
		if (w->st.current == was)
			return;
		log_info("generation %016" PRIx64 " (was %016" PRIx64 "), from %s",
			 w->st.current, was, l->other->name);
		witness_news(w);
		return;
	}
}

static int witness_link(struct witness *w, struct wlink *l)
{
	static const struct peer_ops ops = {
		.hello = wl_hello,
		.accept_peer = wl_accept,
		.up = wl_up,
		.down = wl_down,
		.message = wl_message,
	};
	l->peer = sync_link_new(w->loop, w->cfg, w->me, l->other, w->secret_len ? w->secret : NULL,
				w->secret_len, w->hub, &ops, l);
	if (!l->peer)
		return -1;
	peer_enable(l->peer, true);
	return peer_listen_now(l->peer);
}

/* One link per data node, through the node's shared listener. */
static int witness_links(struct witness *w)
{
	struct sync_env env = { .loop = w->loop,
				.cfg = w->cfg,
				.me = w->me,
				.secret = w->secret_len ? w->secret : NULL,
				.secret_len = w->secret_len };

	if (!(w->hub = sync_hub_new(&env)))
		return -1;
	for (unsigned i = 0; i < config_node_count(w->cfg); i++) {
		const struct config_node *o = config_node_by_index(w->cfg, i);
		struct wlink *l = &w->links[w->nlinks];

		if (o->witness)
			continue;
		l->w = w;
		l->other = o;
		w->nlinks++;
		if (witness_link(w, l) < 0) {
			log_err("cannot set up the link to %s", o->name);
			return -1;
		}
	}
	return 0;
}

/* --- stopping --- */

static void witness_begin_stop(void *arg)
{
	struct witness *w = arg;

	if (w->stopping)
		return;
	w->stopping = true;
	rundir_notify("STOPPING=1");
	log_info("stopping");
	for (unsigned i = 0; i < w->nlinks; i++)
		if (w->links[i].peer)
			peer_enable(w->links[i].peer, false);
	control_stop(w->ctl);
}

static bool witness_keep_going(void *arg)
{
	struct witness *w = arg;

	return !w->stopping || !control_idle(w->ctl);
}

/* --- the control socket --- */

static void witness_builtin(void *arg, struct control_req *req)
{
	struct witness *w = arg;
	int argc;
	char *const *argv = control_req_words(req, &argc);

	if (argc && !strcmp(argv[0], "ping"))
		control_reply(req, true, "pong\n");
	else if (argc && !strcmp(argv[0], "status"))
		witness_req_status(w, req, argc > 1 && !strcmp(argv[1], "--json"));
	else if (argc && !strcmp(argv[0], "down"))
		witness_req_down(w, req);
	else
		control_reply(req, false, "%s is a witness (witness = yes): it keeps no data",
			      w->me->name);
}

static const char *wl_connection(const struct wlink *l)
{
	return l->peer ? peer_state(l->peer) : "standalone";
}

/* Voters this witness is connected to, itself included. */
static unsigned witness_connected(const struct witness *w)
{
	unsigned n = 1;

	for (unsigned i = 0; i < w->nlinks; i++)
		n += w->links[i].up;
	return n;
}

static void witness_peers_json(const struct witness *w, struct strbuf *o)
{
	strbuf_printf(o, "[");
	for (unsigned i = 0; i < w->nlinks; i++) {
		const struct wlink *l = &w->links[i];

		strbuf_printf(o,
			      "%s{\"name\": \"%s\", \"connection\": \"%s\", \"role\": \"%s\", "
			      "\"disk\": \"%s\", \"generation\": ",
			      i ? ", " : "", l->other->name, wl_connection(l),
			      l->up ? msg_role_name(l->hello.role) : "unknown",
			      l->up ? msg_disk_name(l->hello.disk) : "unknown");
		if (l->up)
			strbuf_printf(o, "\"%016" PRIx64 "\"}", l->hello.gen_current);
		else
			strbuf_printf(o, "null}");
	}
	strbuf_printf(o, "]");
}

static void witness_peers_text(const struct witness *w, struct strbuf *o)
{
	for (unsigned i = 0; i < w->nlinks; i++) {
		const struct wlink *l = &w->links[i];
		const char *err = l->peer && !l->up ? peer_last_error(l->peer) : "";

		strbuf_printf(o, "  %s: %s", l->other->name, wl_connection(l));
		if (l->up)
			strbuf_printf(o, ", %s, disk %s, generation %016" PRIx64,
				      msg_role_name(l->hello.role), msg_disk_name(l->hello.disk),
				      l->hello.gen_current);
		strbuf_printf(o, "%s%s\n", *err ? ": " : "", err);
	}
}

void witness_req_status(struct witness *w, struct control_req *req, bool json)
{
	unsigned voters = config_node_count(w->cfg), conn = witness_connected(w);
	bool quorum = conn * 2 > voters;
	char peers[4096];
	struct strbuf o = STRBUF_INIT(peers, sizeof(peers));

	if (json) {
		witness_peers_json(w, &o);
		control_reply(req, true,
			      "{\"resource\": \"%s\", \"node\": \"%s\", \"role\": \"witness\", "
			      "\"disk\": \"diskless\", \"quorum\": %s, \"quorum_policy\": \"%s\", "
			      "\"voters\": %u, \"voters_connected\": %u, "
			      "\"generation\": \"%016" PRIx64 "\", \"state_file\": \"%s\", "
			      "\"state_file_error\": \"%s\", \"peers\": %s}\n",
			      config_resource_name(w->cfg), w->me->name, quorum ? "true" : "false",
			      config_quorum_name(config_quorum(w->cfg)), voters, conn,
			      w->st.current, w->me->state_file,
			      w->save_err ? strerror(w->save_err) : "", peers);
		return;
	}
	witness_peers_text(w, &o);
	control_reply(req, true,
		      "%s/%s: witness (no data), generation %016" PRIx64 "\n"
		      "  state file %s%s%s\n"
		      "  voters: %u of %u connected\n%s",
		      config_resource_name(w->cfg), w->me->name, w->st.current, w->me->state_file,
		      w->save_err ? ": cannot write: " : "",
		      w->save_err ? strerror(w->save_err) : "", conn, voters, peers);
}

void witness_req_down(struct witness *w, struct control_req *req)
{
	control_reply(req, true, "stopping\n");
	witness_begin_stop(w);
}

bool witness_stopping(const struct witness *w)
{
	return w->stopping;
}

const char *witness_name(const struct witness *w)
{
	return w->me->name;
}

/* --- start-up --- */

static int witness_load(struct witness *w)
{
	char err[1024];
	bool created;

	if (config_secret_file(w->cfg) &&
	    (!(w->secret = secmem_alloc(CONFIG_SECRET_MAX)) ||
	     config_load_secret(config_secret_file(w->cfg), config_allow_weak_secret(w->cfg),
				w->secret, &w->secret_len, err, sizeof(err)) < 0)) {
		log_err("%s", w->secret ? err : "cannot allocate memory for the secret");
		return -1;
	}
	if (wstate_load(w->me->state_file, config_resource_name(w->cfg), w->me->name, &w->st,
			&created, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	if (created)
		log_info("state file %s created: generation %016" PRIx64
			 " until a data node's primary tells",
			 w->me->state_file, w->st.current);
	return 0;
}

static int witness_setup(struct witness *w)
{
	control_handler_fn *handle = w->above ? w->above->handle : witness_builtin;

	if (rundir_paths(&w->run, config_resource_name(w->cfg), w->me->name) < 0 ||
	    witness_load(w) < 0 || !(w->loop = loop_new()))
		return -1;
	w->ctl = control_new(w->loop, w->run.ctl, handle, w);
	if (!w->ctl || rundir_write_pid(&w->run) < 0 ||
	    rundir_signals_start(&w->sig, w->loop, witness_begin_stop, w, &w->stopping) < 0 ||
	    witness_links(w) < 0)
		return -1;
	log_info("%s/%s is up as a witness, generation %016" PRIx64 " (state file %s)",
		 config_resource_name(w->cfg), w->me->name, w->st.current, w->me->state_file);
	rundir_ready(&w->run, &w->ready_fd);
	return 0;
}

static void witness_free(struct witness *w)
{
	control_free(w->ctl);
	loop_free(w->loop);
	rundir_signals_close(&w->sig);
	if (w->ctl && *w->run.pid)
		(void)unlink(w->run.pid);
	for (unsigned i = 0; i < w->nlinks; i++)
		peer_free(w->links[i].peer);
	peer_hub_free(w->hub); /* after its links */
	secmem_free(w->secret, CONFIG_SECRET_MAX);
	free(w);
}

struct witness *witness_start(struct config *cfg, const struct config_node *me, int ready_fd,
			      const struct node_above *above)
{
	struct witness *w = calloc(1, sizeof(*w));

	if (!w) {
		log_err("out of memory");
		return NULL;
	}
	w->cfg = cfg;
	w->me = me;
	w->above = above;
	w->ready_fd = ready_fd;
	w->sig.fd = -1;
	if (witness_setup(w) < 0) {
		witness_free(w);
		return NULL;
	}
	return w;
}

struct loop *witness_loop(const struct witness *w)
{
	return w->loop;
}

bool witness_running(struct witness *w)
{
	return witness_keep_going(w);
}

/* The state file was written at every change a FLUSH asked for; what
 * changed since is written now. */
int witness_finish(struct witness *w, bool loop_ok)
{
	int rc = loop_ok && witness_persist(w) == 0 ? 0 : 1;

	log_info("%s/%s stopped%s", config_resource_name(w->cfg), w->me->name,
		 rc ? " uncleanly" : "");
	witness_free(w);
	return rc;
}

void witness_abandon(struct witness *w)
{
	witness_free(w);
}

int witness_run(struct config *cfg, const struct config_node *me, int ready_fd,
		const struct node_above *above)
{
	struct witness *w = witness_start(cfg, me, ready_fd, above);

	if (!w)
		return 1;
	return witness_finish(w, loop_run(w->loop, witness_keep_going, w) == 0);
}
