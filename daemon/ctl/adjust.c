/* `blkrep adjust`: the daemon re-reads its config file and takes what it
 * can change while it runs: on-peer-loss and the kernel's timeouts (read
 * where they are used: the timeouts at the next attach), max-lag, a running
 * resync's rate, the peer's address.  Any other change is refused, naming
 * the key, and nothing changes.  Above the node, as node_ctl.c. */
#include <stdio.h>
#include <string.h>

#include "daemon/cli/commands.h"
#include "daemon/config.h"
#include "daemon/ctl/control.h"
#include "daemon/node.h"
#include "daemon/repl/primary.h"
#include "daemon/repl/resync.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "proto/peer.h"
#include "utils/log.h"

/* The peer's address in fresh, if it differs from the running one. */
static const char *new_peer_address(struct node *n, const struct config *fresh)
{
	char err[256];
	const struct config_node *me = config_local_node(fresh, node_me(n)->name, err, sizeof(err));
	const struct config_node *peer = me ? config_peer_node(fresh, me) : NULL;
	const struct config_node *now = config_peer_node(node_config(n), node_me(n));

	return peer && strcmp(peer->address, now->address) != 0 ? peer->address : NULL;
}

/* The parts that can refuse first (the async lag's bound, which cannot
 * grow past its start, and the peer's address, which must resolve), then
 * the running resync's rate.  0, or -1 with why and nothing changed. */
static int adjust_parts(struct node *n, const struct config *fresh, char *why, size_t len)
{
	struct stream *st = primary_stream(node_primary(n));
	struct sync *s = node_peer(n);
	const char *addr = new_peer_address(n, fresh);

	if (!stream_set_max_lag(st, config_max_lag(fresh))) {
		snprintf(why, len, "max-lag above its value at the start: a restart is needed");
		return -1;
	}
	if (s && addr && peer_set_address(sync_peer(s), addr) < 0) {
		(void)stream_set_max_lag(st, config_max_lag(node_config(n)));
		snprintf(why, len, "the peer's address %s does not resolve (see the log)", addr);
		return -1;
	}
	if (s && resync_running(sync_resync(s)))
		resync_set_rate(sync_resync(s), config_resync_rate(fresh));
	return 0;
}

void node_req_adjust(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	struct config *cfg = node_config(n), *fresh = NULL;
	const char *me = node_me(n)->name;
	char why[512], changed[256];

	(void)argc;
	(void)argv;
	if (config_load(config_path(cfg), &fresh, why, sizeof(why)) < 0 ||
	    config_adjust_check(cfg, fresh, me, why, sizeof(why)) < 0 ||
	    adjust_parts(n, fresh, why, sizeof(why)) < 0) {
		log_warn("adjust refused: %s", why);
		control_reply(req, false, "%s", why);
		config_free(fresh);
		return;
	}
	config_adjust(cfg, fresh, me, changed, sizeof(changed));
	log_info("adjust: %s", *changed ? changed : "nothing changed");
	control_reply(req, true, "%s/%s: %s%s\n", config_resource_name(cfg), me,
		      *changed ? "adjusted " : "nothing changed", changed);
}
