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

/* A node of cfg by name, or NULL. */
static const struct config_node *node_named(const struct config *cfg, const char *name)
{
	char err[256];

	return config_local_node(cfg, name, err, sizeof(err));
}

/* Every peer's async bound from cfg (false: one cannot take it). */
static bool adjust_lags(struct node *n, const struct config *cfg)
{
	bool ok = true;

	for (unsigned i = 0; i < node_npeers(n); i++) {
		struct sync *s = node_peer_at(n, i);
		const struct config_node *c = node_named(cfg, sync_name(s));

		if (c && !stream_set_max_lag(sync_stream(s), config_node_max_lag(cfg, c)))
			ok = false;
	}
	return ok;
}

/* The peers' addresses that changed: -1 with why if one does not resolve. */
static int adjust_addresses(struct node *n, const struct config *fresh, char *why, size_t len)
{
	for (unsigned i = 0; i < node_npeers(n); i++) {
		struct sync *s = node_peer_at(n, i);
		const struct config_node *c = node_named(fresh, sync_name(s));
		const struct config_node *now = node_named(node_config(n), sync_name(s));

		if (!c || !now || !strcmp(c->address, now->address))
			continue;
		if (peer_set_address(sync_peer(s), c->address) < 0) {
			snprintf(why, len, "%s's address %s does not resolve (see the log)",
				 sync_name(s), c->address);
			return -1;
		}
	}
	return 0;
}

/* The parts that can refuse first (the async lags' bounds, which cannot
 * grow past their start, and the peers' addresses, which must resolve),
 * then the running resyncs' rate.  0, or -1 with why and nothing changed. */
static int adjust_parts(struct node *n, const struct config *fresh, char *why, size_t len)
{
	if (!adjust_lags(n, fresh)) {
		(void)adjust_lags(n, node_config(n));
		snprintf(why, len, "max-lag above its value at the start: a restart is needed");
		return -1;
	}
	if (adjust_addresses(n, fresh, why, len) < 0) {
		(void)adjust_lags(n, node_config(n));
		return -1;
	}
	for (unsigned i = 0; i < node_npeers(n); i++)
		if (resync_running(sync_resync(node_peer_at(n, i))))
			resync_set_rate(sync_resync(node_peer_at(n, i)), config_resync_rate(fresh));
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
