/* A node's peers (see sync.h): the object, what the node's other parts ask
 * of it, and the node's questions about all of its peers.  What happens
 * on a link is in node_sync.c. */
#include "daemon/repl/sync_int.h"

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

struct node *sync_node(const struct sync *s)
{
	return s->n;
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
	ns = node_now_ns() - s->rs_recv_start_ns;
	*done = s->rs_recv_bytes;
	*total = s->rs_recv_total > *done ? s->rs_recv_total : *done;
	*bps = ns ? (uint64_t)((double)*done * 1e9 / (double)ns) : 0;
	return true;
}

struct verify *sync_verify(const struct sync *s)
{
	return s->vf;
}

const char *sync_name(const struct sync *s)
{
	return s->other->name;
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

const char *node_peer_disk(const struct sync *s)
{
	static const char *const names[] = { "inconsistent", "outdated", "consistent", "uptodate" };

	if (!s->up)
		return "unknown";
	return s->hello.disk < 4 ? names[s->hello.disk] : "unknown";
}

/* --- the node's peers, all of them --- */

void node_free_peers(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		sync_free(n->peers[i]);
	n->npeers = 0;
}

bool node_connected(const struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (n->peers[i]->up)
			return true;
	return false;
}

/* A connected peer is primary. */
bool node_peer_primary(const struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (n->peers[i]->up && n->peers[i]->hello.role == MSG_ROLE_PRIMARY)
			return true;
	return false;
}

void node_send_state(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		(void)peer_send_state(n->peers[i]->peer);
}

void node_links_enable(struct node *n, bool on)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (n->peers[i]->peer)
			peer_enable(n->peers[i]->peer, on);
}

void node_relock(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		sync_relock(n->peers[i]);
}

/* A loop hook: the resyncs retry chunks an application write held. */
void node_pump(void *arg)
{
	struct node *n = arg;

	for (unsigned i = 0; i < n->npeers; i++) {
		resync_pump(n->peers[i]->rs);
		verify_pump(n->peers[i]->vf);
	}
}

/* --- the exported size --- */

/* The pair replicates the smaller of the two data areas: the peer's, while
 * connected; without it, the size agreed at the last connect (kept in the
 * superblock), so that a primary that comes back alone does not export
 * more than its peer can hold. */
uint64_t node_export_size(const struct node *n)
{
	uint64_t bytes = n->sb.data_bytes;

	for (unsigned i = 0; i < n->npeers; i++)
		if (n->peers[i]->up && n->peers[i]->hello.size_bytes < bytes)
			bytes = n->peers[i]->hello.size_bytes;
	if (!node_connected(n) && n->sb.agreed_bytes)
		return n->sb.agreed_bytes;
	return bytes;
}

/* At connect: the size both sides agree on now, kept for later starts. */
void node_agree_size(struct node *n)
{
	uint64_t agreed = node_export_size(n);

	if (agreed == n->sb.agreed_bytes)
		return;
	n->sb.agreed_bytes = agreed;
	(void)node_save_sb(n);
}
