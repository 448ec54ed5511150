/* `blkrep adjust` on the config's side: which keys a re-read of the file
 * changed, and whether a running daemon can take them.  Pure.  See
 * config.h. */
#include "daemon/config.h"

#include <stdio.h>
#include <string.h>

#include "daemon/config_int.h"
#include "utils/human.h"

struct key_diff {
	const char *key;
	bool changed;
};

static bool str_differ(const char *a, const char *b)
{
	return (a || b) && (!a || !b || strcmp(a, b) != 0);
}

/* The [node] section called name, or NULL. */
static const struct node_priv *node_named(const struct config *c, const char *name)
{
	for (unsigned int i = 0; i < c->nnodes; i++)
		if (strcmp(c->priv[i].name, name) == 0)
			return &c->priv[i];
	return NULL;
}

/* Whether a and b list the same nodes (both sorted by name). */
static bool same_nodes(const struct config *a, const struct config *b)
{
	if (a->nnodes != b->nnodes)
		return false;
	for (unsigned int i = 0; i < a->nnodes; i++)
		if (strcmp(a->priv[i].name, b->priv[i].name) != 0)
			return false;
	return true;
}

/* The first key in keys[0..n) that changed, or NULL. */
static const char *first_changed(const struct key_diff *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (keys[i].changed)
			return keys[i].key;
	return NULL;
}

/* A [resource] key the daemon read once, at its start. */
static const char *resource_key_changed(const struct config *a, const struct config *b)
{
	const struct key_diff keys[] = {
		{ "name", str_differ(a->name, b->name) },
		{ "mode", a->mode != b->mode },
		{ "secret-file", str_differ(a->secret_file, b->secret_file) },
		{ "allow-unauthenticated", a->allow_unauthenticated != b->allow_unauthenticated },
		{ "allow-unencrypted", a->allow_unencrypted != b->allow_unencrypted },
		{ "peer-address-only", a->peer_address_only != b->peer_address_only },
		{ "allow-weak-secret", a->allow_weak_secret != b->allow_weak_secret },
		{ "nbd-user", str_differ(a->nbd_user, b->nbd_user) },
		{ "tls-ca", str_differ(a->tls_ca, b->tls_ca) },
		{ "after-split-brain", a->after_split_brain != b->after_split_brain },
		{ "bitmap-granularity", a->granularity != b->granularity },
		{ "al-extents", a->al_extents != b->al_extents },
		/* Its default follows the node count, which has its own message. */
		{ "quorum", a->quorum != b->quorum && a->nnodes == b->nnodes },
		{ "on-no-quorum", a->no_quorum != b->no_quorum },
		{ "auto-failover", a->auto_failover != b->auto_failover },
		{ "promote-command", str_differ(a->promote_command, b->promote_command) },
		{ "fence-peer", str_differ(a->fence_peer, b->fence_peer) },
		{ "unfence-peer", str_differ(a->unfence_peer, b->unfence_peer) },
	};

	return first_changed(keys, sizeof(keys) / sizeof(keys[0]));
}

/* A key of this node's own section that the daemon read once (the other
 * nodes' matter to them; every node's mode and max-lag are live). */
static const char *node_key_changed(const struct node_priv *a, const struct node_priv *b)
{
	const struct key_diff keys[] = {
		{ "address", str_differ(a->address, b->address) },
		{ "backing", str_differ(a->backing, b->backing) },
		{ "nbd", str_differ(a->nbd, b->nbd) },
		{ "meta", str_differ(a->meta, b->meta) },
		{ "tls-certificate", str_differ(a->tls_certificate, b->tls_certificate) },
		{ "tls-key", str_differ(a->tls_key, b->tls_key) },
		{ "state-file", str_differ(a->state_file, b->state_file) },
		{ "auto-attach", str_differ(a->auto_attach, b->auto_attach) },
	};

	return first_changed(keys, sizeof(keys) / sizeof(keys[0]));
}

/* A key of any node's section that every voter reads once: which nodes
 * vote without data, and the auto-failover order. */
static int voter_key_changed(const struct config *a, const struct config *b, char *err,
			     size_t errlen)
{
	for (unsigned int i = 0; i < a->nnodes; i++) {
		const struct node_priv *x = &a->priv[i], *y = &b->priv[i];
		const char *key = x->witness != y->witness     ? "witness"
				  : x->priority != y->priority ? "priority"
							       : NULL;

		if (key) {
			snprintf(err, errlen,
				 "[node %s] %s changed: a restart is needed to apply it", x->name,
				 key);
			return -1;
		}
	}
	return 0;
}

int config_adjust_check(const struct config *running, const struct config *fresh, const char *me,
			char *err, size_t errlen)
{
	const struct node_priv *mine = node_named(running, me), *now = node_named(fresh, me);
	const char *key = resource_key_changed(running, fresh);

	if (!key && (!now || !same_nodes(running, fresh))) {
		snprintf(err, errlen,
			 "nodes added or removed: restart the daemon (blkrep down, up)");
		return -1;
	}
	if (key) {
		snprintf(err, errlen, "%s changed: a restart is needed to apply it", key);
		return -1;
	}
	key = mine ? node_key_changed(mine, now) : NULL;
	if (key) {
		snprintf(err, errlen, "[node %s] %s changed: a restart is needed to apply it", me,
			 key);
		return -1;
	}
	return voter_key_changed(running, fresh, err, errlen);
}

/* Appends key to the list in out ("a, b"). */
static void name_key(char *out, size_t len, const char *key)
{
	size_t used = strlen(out);

	snprintf(out + used, len - used, "%s%s", used ? ", " : "", key);
}

/* A node's own mode or max-lag that changed what it resolves to, named
 * with both values ("node gamma: mode async -> sync"); running takes
 * fresh's. */
static void adjust_node_modes(struct config *running, const struct config *fresh, unsigned int i,
			      char *changed, size_t len)
{
	struct node_priv *a = &running->priv[i];
	const struct node_priv *b = &fresh->priv[i];
	const struct config_node *na = &running->nodes[i], *nb = &fresh->nodes[i];
	enum config_mode ma = config_node_mode(running, na), mb = config_node_mode(fresh, nb);
	uint64_t la = config_node_max_lag(running, na), lb = config_node_max_lag(fresh, nb);
	char what[CONFIG_NAME_MAX + 64], ha[HUMAN_BYTES_LEN], hb[HUMAN_BYTES_LEN];

	if (a->mode != b->mode && ma != mb) {
		snprintf(what, sizeof(what), "node %s: mode %s -> %s", a->name,
			 config_mode_name(ma), config_mode_name(mb));
		name_key(changed, len, what);
	}
	if (a->max_lag != b->max_lag && la != lb) {
		snprintf(what, sizeof(what), "node %s: max-lag %s -> %s", a->name,
			 human_bytes(la, ha, sizeof(ha)), human_bytes(lb, hb, sizeof(hb)));
		name_key(changed, len, what);
	}
	a->mode = b->mode;
	a->max_lag = b->max_lag;
}

/* Another node's address: for the next connect to it.  Fresh's string:
 * fresh lives as long as running does.  The old one stays, as anyone may
 * still hold it. */
static void adjust_address(struct config *running, const struct config *fresh, unsigned int i,
			   char *changed, size_t len)
{
	char what[CONFIG_NAME_MAX + 32];

	if (!str_differ(running->nodes[i].address, fresh->priv[i].address))
		return;
	if (running->nnodes == 2)
		snprintf(what, sizeof(what), "the peer's address");
	else
		snprintf(what, sizeof(what), "node %s's address", running->priv[i].name);
	name_key(changed, len, what);
	running->nodes[i].address = fresh->priv[i].address;
}

void config_adjust(struct config *running, struct config *fresh, const char *me, char *changed,
		   size_t len)
{
	const struct key_diff keys[] = {
		{ "on-peer-loss", running->on_peer_loss != fresh->on_peer_loss },
		{ "resync-rate", running->resync_rate != fresh->resync_rate },
		{ "max-lag", running->max_lag != fresh->max_lag },
		{ "timeout", running->timeout_s != fresh->timeout_s },
		{ "dead-conn-timeout", running->dead_conn_s != fresh->dead_conn_s },
	};

	changed[0] = '\0';
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].changed)
			name_key(changed, len, keys[i].key);
	/* config_adjust_check() made sure both list the same nodes.  Before
	 * the resource's max-lag changes: a node's old value may be it. */
	for (unsigned int i = 0; i < running->nnodes; i++) {
		adjust_node_modes(running, fresh, i, changed, len);
		if (strcmp(running->priv[i].name, me) != 0)
			adjust_address(running, fresh, i, changed, len);
	}
	running->on_peer_loss = fresh->on_peer_loss;
	running->resync_rate = fresh->resync_rate;
	running->max_lag = fresh->max_lag;
	running->timeout_s = fresh->timeout_s;
	running->dead_conn_s = fresh->dead_conn_s;
	fresh->adjusted = running->adjusted;
	running->adjusted = fresh;
}
