/* struct config, shared by the parser (config.c) and its accessors
 * (config_get.c).  Nothing else includes it. */
#ifndef BLKREP_CONFIG_INT_H
#define BLKREP_CONFIG_INT_H

#include <sys/types.h>

#include "daemon/config.h"

struct node_priv {
	char *name, *address, *backing, *nbd, *meta;
	char *tls_certificate, *tls_key;
	char *metrics;
	char *state_file, *auto_attach;
	int witness;	       /* 0 or 1 */
	unsigned int priority; /* CONFIG_DEFAULT_PRIORITY unless set */
	int mode;	       /* enum config_mode, or -1: the resource's */
	uint64_t max_lag;      /* 0: the resource's */
	int line;	       /* of its [node NAME] header */
};

struct config {
	char *path;
	char *name;
	/* The keys spelled from a list are ints (config.c sets them by
	 * offset): enum config_mode, enum config_peer_loss, ... and bools. */
	int mode;
	int on_peer_loss;
	char *secret_file;
	int allow_unauthenticated, allow_unencrypted, peer_address_only;
	int allow_weak_secret;
	char *nbd_user; /* resolved by config_load() into nbd_uid */
	int nbd_user_line;
	uid_t nbd_uid;
	char *tls_ca;
	uint64_t resync_rate;
	uint64_t max_lag;
	int after_split_brain;
	uint32_t granularity;
	unsigned int al_extents;
	unsigned int timeout_s;
	unsigned int dead_conn_s;
	int quorum;	   /* enum config_quorum; -1 while parsing: unset */
	int no_quorum;	   /* enum config_no_quorum */
	int auto_failover; /* 0 or 1 */
	char *promote_command;
	char *fence_peer;
	char *unfence_peer;
	unsigned int nnodes;
	/* Sorted by name once the file is read (file order while parsing). */
	struct node_priv priv[CONFIG_NODES_MAX];
	/* Views of priv, filled at the end. */
	struct config_node nodes[CONFIG_NODES_MAX];
	struct config *adjusted; /* configs `adjust` took values from */
};

#endif
