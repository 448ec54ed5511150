/* The resource configuration: one INI file per resource, identical on
 * every node (2 to CONFIG_NODES_MAX), parsed with libinih into a struct
 * config that only `adjust` changes (config_adjust()).  Parsing the text
 * is pure (config_parse_string); only config_load touches files (the
 * secret file is config_secret.h, single values config_value.h).  Every
 * check the file can fail is made here, so the daemon never meets a bad
 * value later.
 *
 * Errors: functions return -1 (or NULL) and put one line in err, of the form
 * "FILE:LINE: reason" for anything wrong in the text.  Nothing here prints
 * or exits. */
#ifndef BLKREP_CONFIG_H
#define BLKREP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config_secret.h"
#include "daemon/config_value.h"

#define CONFIG_NAME_MAX	  63 /* resource and node names */
#define CONFIG_NODES_MIN  2  /* [node NAME] sections in a resource */
#define CONFIG_NODES_MAX  8
#define CONFIG_SECRET_MAX 4096 /* bytes in a secret file */

#define CONFIG_DEFAULT_MAX_LAG	   (64ULL << 20)
#define CONFIG_DEFAULT_GRANULARITY (64U << 10)
#define CONFIG_MIN_GRANULARITY	   (4U << 10)
#define CONFIG_MAX_GRANULARITY	   (1U << 20)
#define CONFIG_DEFAULT_AL_EXTENTS  512
#define CONFIG_MIN_AL_EXTENTS	   16
#define CONFIG_MAX_AL_EXTENTS	   1000
#define CONFIG_DEFAULT_TIMEOUT_S   30
#define CONFIG_DEFAULT_DEAD_CONN_S 120
#define CONFIG_MAX_TIMEOUT_S	   86400
#define CONFIG_DEFAULT_PRIORITY	   100
#define CONFIG_MAX_PRIORITY	   1000
#define CONFIG_STATE_DIR	   "/var/lib/blkrep" /* a witness's default state-file */

enum config_mode {
	CONFIG_SYNC,
	CONFIG_ASYNC,
};

/* What a sync-mode primary does when it loses its peer. */
enum config_peer_loss {
	CONFIG_PEER_LOSS_CONTINUE, /* serve alone, record dirty extents */
	CONFIG_PEER_LOSS_FREEZE,   /* hold writes until the peer or outdate-peer */
};

enum config_split_brain {
	CONFIG_SB_DISCONNECT,
	CONFIG_SB_DISCARD_ZERO_CHANGES,
};

/* quorum: whether a node needs a majority of the voters (every [node],
 * witnesses included) to write or promote. */
enum config_quorum {
	CONFIG_QUORUM_OFF,
	CONFIG_QUORUM_MAJORITY,
};

/* on-no-quorum: what a primary does with writes while it has no quorum. */
enum config_no_quorum {
	CONFIG_NOQ_SUSPEND,  /* "suspend-io": hold them */
	CONFIG_NOQ_IO_ERROR, /* "io-error": fail them with EIO */
};

/* One [node NAME] section.  The strings are owned by the config. */
struct config_node {
	const char *name;
	const char *address; /* HOST:PORT or [IPV6]:PORT, validated */
	const char *backing; /* absolute path */
	const char *nbd;     /* "unix:/PATH" or HOST:PORT; NULL: no export */
	const char *meta;    /* absolute path; NULL: internal metadata */
	/* Its TLS certificate and key (PEM), with tls-ca; else NULL. */
	const char *tls_certificate, *tls_key;
	/* HOST:PORT of its Prometheus /metrics over HTTP, validated; NULL: none. */
	const char *metrics;
	/* witness = yes: a diskless voter (backing, nbd, meta NULL). */
	bool witness;
	/* A witness's state file (absolute; by default
	 * CONFIG_STATE_DIR/RESOURCE.witness); NULL for a data node. */
	const char *state_file;
	/* Auto-failover order, 0..CONFIG_MAX_PRIORITY, higher first (then
	 * name); CONFIG_DEFAULT_PRIORITY unless set. */
	unsigned int priority;
	/* What an automatic promotion attaches: "loop" or "/dev/nbdN"; NULL:
	 * nothing. */
	const char *auto_attach;
};

struct config;

/* Parses config text.  fname is only used in messages and to resolve a
 * relative secret-file against its directory; no file is read.  On success
 * returns 0 and *out (free with config_free); on failure returns -1 with
 * "FNAME:LINE: reason" in err and *out untouched. */
int config_parse_string(const char *text, const char *fname, struct config **out, char *err,
			size_t errlen);

/* Reads path (at most 1 MiB, no NUL bytes) and parses it as above. */
int config_load(const char *path, struct config **out, char *err, size_t errlen);

void config_free(struct config *c);

/* The file name given to config_load or config_parse_string. */
const char *config_path(const struct config *c);

const char *config_resource_name(const struct config *c);
enum config_mode config_mode(const struct config *c);
enum config_peer_loss config_on_peer_loss(const struct config *c);
/* NULL when allow-unauthenticated = yes (exactly one of the two is set). */
const char *config_secret_file(const struct config *c);
bool config_allow_unauthenticated(const struct config *c);
/* Plain TCP on the peer link (allow-unencrypted = yes); TLS otherwise. */
bool config_allow_unencrypted(const struct config *c);
/* The listening node accepts only the peer's host (peer-address-only). */
bool config_peer_address_only(const struct config *c);
/* Certificate mode: the CA's PEM file (absolute); NULL: TLS with a key
 * derived from the secret. */
const char *config_tls_ca(const struct config *c);
/* allow-weak-secret = yes: a secret under 128 bits is accepted. */
bool config_allow_weak_secret(const struct config *c);
/* nbd-user's uid, resolved by config_load(): besides root and the daemon's
 * own user, the one user whose processes may connect to a node's Unix NBD
 * export; (uid_t)-1 when none (or the text was only parsed). */
uid_t config_nbd_uid(const struct config *c);
/* Resync rate cap in bytes per second; 0 = adaptive (yield to app I/O). */
uint64_t config_resync_rate(const struct config *c);
uint64_t config_max_lag(const struct config *c);
enum config_split_brain config_after_split_brain(const struct config *c);
/* Bytes per dirty-bitmap bit: a power of two in 4 KiB .. 1 MiB. */
uint32_t config_bitmap_granularity(const struct config *c);
unsigned int config_al_extents(const struct config *c);
/* NBD request timeout. */
unsigned int config_timeout_s(const struct config *c);
unsigned int config_dead_conn_timeout_s(const struct config *c);

/* The number of [node NAME] sections: 2 to CONFIG_NODES_MAX.  Every
 * node, witnesses included: the voters. */
unsigned int config_node_count(const struct config *c);

/* The nodes without witness = yes: 2 to CONFIG_NODES_MAX. */
unsigned int config_data_node_count(const struct config *c);

/* quorum: as set, else majority with 3 nodes or more (witnesses count),
 * off with 2. */
enum config_quorum config_quorum(const struct config *c);
/* on-no-quorum (default suspend-io). */
enum config_no_quorum config_on_no_quorum(const struct config *c);
/* auto-failover = yes (only with quorum = majority; default no). */
bool config_auto_failover(const struct config *c);
/* promote-command: a shell command run after an automatic promotion;
 * NULL: none. */
const char *config_promote_command(const struct config *c);
/* fence-peer: a shell command a primary under on-peer-loss = freeze runs
 * when it is without a peer; its exit code 3, 4, 5 or 7 outdates that
 * peer (writes go on).  unfence-peer: run after a resync from a primary
 * completed.  NULL: none. */
const char *config_fence_peer(const struct config *c);
const char *config_unfence_peer(const struct config *c);

/* Node i of config_node_count(), sorted by name (strcmp), whatever the
 * file's order; NULL past the last. */
const struct config_node *config_node_by_index(const struct config *c, unsigned int i);

/* How data is replicated *to* node n (one of c's nodes): its section's
 * mode and max-lag, else the resource's. */
enum config_mode config_node_mode(const struct config *c, const struct config_node *n);
uint64_t config_node_max_lag(const struct config *c, const struct config_node *n);

/* The node this host runs: `wanted` by name when not NULL, else the node
 * named like this host (gethostname(), whole or up to its first dot).
 * NULL with a reason naming every node when there is none. */
const struct config_node *config_local_node(const struct config *c, const char *wanted, char *err,
					    size_t errlen);

/* config_local_node() for a given host name, without asking the system. */
const struct config_node *config_node_for_host(const struct config *c, const char *host, char *err,
					       size_t errlen);

/* The only other data node when c has exactly two (witnesses ignored);
 * NULL if local is not one of c's nodes, or if c has more than two data
 * nodes (walk config_node_by_index() then). */
const struct config_node *config_peer_node(const struct config *c, const struct config_node *local);

/* `blkrep adjust`, for a daemon running node me of running, given fresh,
 * a re-read of its file: 0 if the two differ at most in on-peer-loss,
 * resync-rate, max-lag, timeout, dead-conn-timeout, the other nodes'
 * addresses and any node's own mode and max-lag; else -1 with "KEY
 * changed: a restart is needed to apply it", or "nodes added or removed:
 * restart the daemon (blkrep down, up)", in err. */
int config_adjust_check(const struct config *running, const struct config *fresh, const char *me,
			char *err, size_t errlen);

/* After config_adjust_check(): running takes those values from fresh, and
 * fresh itself, freed with running (a new address is fresh's string).
 * The keys that changed go to changed ("max-lag, timeout, node gamma: mode
 * async -> sync"; "the peer's address" in a two-node resource, "node
 * NAME's address" otherwise; "" if none). */
void config_adjust(struct config *running, struct config *fresh, const char *me, char *changed,
		   size_t len);

/* "sync"/"async", "continue"/"freeze", "disconnect"/"discard-zero-changes":
 * the spelling used in the file, for status output. */
const char *config_mode_name(enum config_mode m);
const char *config_peer_loss_name(enum config_peer_loss p);
const char *config_split_brain_name(enum config_split_brain s);
/* "off"/"majority", "suspend-io"/"io-error". */
const char *config_quorum_name(enum config_quorum q);
const char *config_no_quorum_name(enum config_no_quorum q);

#endif
