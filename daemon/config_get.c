/* The resource configuration's accessors: what the parser (config.c)
 * made of the file, and freeing it.  See config.h. */
#include "daemon/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config_int.h"

const char *config_path(const struct config *c)
{
	return c->path;
}

const char *config_resource_name(const struct config *c)
{
	return c->name;
}

enum config_mode config_mode(const struct config *c)
{
	return (enum config_mode)c->mode;
}

enum config_peer_loss config_on_peer_loss(const struct config *c)
{
	return (enum config_peer_loss)c->on_peer_loss;
}

const char *config_secret_file(const struct config *c)
{
	return c->secret_file;
}

bool config_allow_unauthenticated(const struct config *c)
{
	return c->allow_unauthenticated;
}

bool config_allow_weak_secret(const struct config *c)
{
	return c->allow_weak_secret;
}

uid_t config_nbd_uid(const struct config *c)
{
	return c->nbd_uid;
}

bool config_allow_unencrypted(const struct config *c)
{
	return c->allow_unencrypted;
}

bool config_peer_address_only(const struct config *c)
{
	return c->peer_address_only;
}

const char *config_tls_ca(const struct config *c)
{
	return c->tls_ca;
}

uint64_t config_resync_rate(const struct config *c)
{
	return c->resync_rate;
}

uint64_t config_max_lag(const struct config *c)
{
	return c->max_lag;
}

enum config_split_brain config_after_split_brain(const struct config *c)
{
	return (enum config_split_brain)c->after_split_brain;
}

uint32_t config_bitmap_granularity(const struct config *c)
{
	return c->granularity;
}

unsigned int config_al_extents(const struct config *c)
{
	return c->al_extents;
}

unsigned int config_timeout_s(const struct config *c)
{
	return c->timeout_s;
}

unsigned int config_dead_conn_timeout_s(const struct config *c)
{
	return c->dead_conn_s;
}

unsigned int config_node_count(const struct config *c)
{
	return c->nnodes;
}

unsigned int config_data_node_count(const struct config *c)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < c->nnodes; i++)
		n += !c->nodes[i].witness;
	return n;
}

enum config_quorum config_quorum(const struct config *c)
{
	return (enum config_quorum)c->quorum;
}

enum config_no_quorum config_on_no_quorum(const struct config *c)
{
	return (enum config_no_quorum)c->no_quorum;
}

bool config_auto_failover(const struct config *c)
{
	return c->auto_failover;
}

const char *config_promote_command(const struct config *c)
{
	return c->promote_command;
}

const char *config_fence_peer(const struct config *c)
{
	return c->fence_peer;
}

const char *config_unfence_peer(const struct config *c)
{
	return c->unfence_peer;
}

const struct config_node *config_node_by_index(const struct config *c, unsigned int i)
{
	return i < c->nnodes ? &c->nodes[i] : NULL;
}

/* n's private half. */
static const struct node_priv *priv_of(const struct config *c, const struct config_node *n)
{
	return &c->priv[n - c->nodes];
}

enum config_mode config_node_mode(const struct config *c, const struct config_node *n)
{
	int m = priv_of(c, n)->mode;

	return (enum config_mode)(m < 0 ? c->mode : m);
}

uint64_t config_node_max_lag(const struct config *c, const struct config_node *n)
{
	uint64_t lag = priv_of(c, n)->max_lag;

	return lag ? lag : c->max_lag;
}

const struct config_node *config_peer_node(const struct config *c, const struct config_node *local)
{
	const struct config_node *other = NULL;

	if (config_data_node_count(c) != 2 || local < c->nodes || local >= c->nodes + c->nnodes ||
	    local->witness)
		return NULL;
	for (unsigned int i = 0; i < c->nnodes; i++)
		if (&c->nodes[i] != local && !c->nodes[i].witness)
			other = &c->nodes[i];
	return other;
}

/* "alpha, beta, gamma": every node's name, for messages. */
static const char *node_names(const struct config *c, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < c->nnodes && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", c->nodes[i].name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

const struct config_node *config_node_for_host(const struct config *c, const char *host, char *err,
					       size_t errlen)
{
	size_t short_len = strcspn(host, ".");
	char names[CONFIG_NODES_MAX * (CONFIG_NAME_MAX + 2)];
	unsigned int i;

	/* The whole name first, so "a.b" beats "a" when both are nodes. */
	for (i = 0; i < c->nnodes; i++)
		if (strcmp(c->nodes[i].name, host) == 0)
			return &c->nodes[i];
	for (i = 0; i < c->nnodes; i++)
		if (strlen(c->nodes[i].name) == short_len &&
		    strncmp(c->nodes[i].name, host, short_len) == 0)
			return &c->nodes[i];
	snprintf(err, errlen, "this host (%s) is not a node in %s (nodes: %s): use --node NAME",
		 host, c->path, node_names(c, names, sizeof(names)));
	return NULL;
}

const struct config_node *config_local_node(const struct config *c, const char *wanted, char *err,
					    size_t errlen)
{
	char host[256], names[CONFIG_NODES_MAX * (CONFIG_NAME_MAX + 2)];
	unsigned int i;

	if (wanted) {
		for (i = 0; i < c->nnodes; i++)
			if (strcmp(c->nodes[i].name, wanted) == 0)
				return &c->nodes[i];
		snprintf(err, errlen, "no node %s in %s (nodes: %s)", wanted, c->path,
			 node_names(c, names, sizeof(names)));
		return NULL;
	}
	if (gethostname(host, sizeof(host)) < 0) {
		snprintf(err, errlen, "gethostname: %s: use --node NAME", strerror(errno));
		return NULL;
	}
	host[sizeof(host) - 1] = '\0';
	return config_node_for_host(c, host, err, errlen);
}

void config_free(struct config *c)
{
	unsigned int i;

	if (!c)
		return;
	for (i = 0; i < CONFIG_NODES_MAX; i++) {
		free(c->priv[i].name);
		free(c->priv[i].address);
		free(c->priv[i].backing);
		free(c->priv[i].nbd);
		free(c->priv[i].meta);
		free(c->priv[i].tls_certificate);
		free(c->priv[i].tls_key);
		free(c->priv[i].metrics);
		free(c->priv[i].state_file);
		free(c->priv[i].auto_attach);
	}
	free(c->tls_ca);
	free(c->secret_file);
	free(c->nbd_user);
	free(c->promote_command);
	free(c->fence_peer);
	free(c->unfence_peer);
	free(c->name);
	free(c->path);
	config_free(c->adjusted);
	free(c);
}
