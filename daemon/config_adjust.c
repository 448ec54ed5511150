/* `blkrep adjust` on the config's side: which keys a re-read of the file
 * changed, and whether a running daemon can take them.  Pure.  See
 * config.h. */
#include "daemon/config.h"

#include <stdio.h>
#include <string.h>

#include "daemon/config_int.h"

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
	};

	return first_changed(keys, sizeof(keys) / sizeof(keys[0]));
}

/* A key of this node's own section (the peer's matter to the peer). */
static const char *node_key_changed(const struct node_priv *a, const struct node_priv *b)
{
	const struct key_diff keys[] = {
		{ "address", str_differ(a->address, b->address) },
		{ "backing", str_differ(a->backing, b->backing) },
		{ "nbd", str_differ(a->nbd, b->nbd) },
		{ "meta", str_differ(a->meta, b->meta) },
		{ "tls-certificate", str_differ(a->tls_certificate, b->tls_certificate) },
		{ "tls-key", str_differ(a->tls_key, b->tls_key) },
	};

	return first_changed(keys, sizeof(keys) / sizeof(keys[0]));
}

int config_adjust_check(const struct config *running, const struct config *fresh, const char *me,
			char *err, size_t errlen)
{
	const struct node_priv *mine = node_named(running, me), *now = node_named(fresh, me);
	const char *key = resource_key_changed(running, fresh);

	if (!key && (!now || str_differ(running->priv[0].name, fresh->priv[0].name) ||
		     str_differ(running->priv[1].name, fresh->priv[1].name))) {
		snprintf(err, errlen, "the node names changed: a restart is needed to apply them");
		return -1;
	}
	if (key) {
		snprintf(err, errlen, "%s changed: a restart is needed to apply it", key);
		return -1;
	}
	key = mine ? node_key_changed(mine, now) : NULL;
	if (key) {
		snprintf(err, errlen, "[node %s] %s changed: a restart is needed to apply it", me, key);
		return -1;
	}
	return 0;
}

/* Appends key to the list in out ("a, b"). */
static void name_key(char *out, size_t len, const char *key)
{
	size_t used = strlen(out);

	snprintf(out + used, len - used, "%s%s", used ? ", " : "", key);
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
	running->on_peer_loss = fresh->on_peer_loss;
	running->resync_rate = fresh->resync_rate;
	running->max_lag = fresh->max_lag;
	running->timeout_s = fresh->timeout_s;
	running->dead_conn_s = fresh->dead_conn_s;
	for (unsigned int i = 0; i < running->nnodes; i++) {
		if (strcmp(running->priv[i].name, me) == 0 ||
		    !str_differ(running->nodes[i].address, fresh->priv[i].address))
			continue;
		name_key(changed, len, "the peer's address");
		/* Fresh's string: fresh lives as long as running does.  The
		 * old one stays, as anyone may still hold it. */
		running->nodes[i].address = fresh->priv[i].address;
	}
	fresh->adjusted = running->adjusted;
	running->adjusted = fresh;
}
