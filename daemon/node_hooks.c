/* The shell commands a node runs (daemon/ctl/hook.h): promote-command
 * after an automatic promotion (issue 17), fence-peer and unfence-peer
 * (issue 18), and what the fence-peer command's answer does. */
#include "daemon/node.h"
#include "daemon/node_int.h"

#include <stdio.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/ctl/hook.h"
#include "daemon/dev/devices.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/repl/primary.h"
#include "daemon/repl/sync.h"
#include "utils/log.h"
#include "utils/strbuf.h"

static struct hook_env node_hook_env(const struct node *n, const char *peers, const char *dev)
{
	return (struct hook_env){ .config = config_path(n->cfg),
				  .resource = n->sb->resource,
				  .node = n->sb->node,
				  .device = dev,
				  .peers = peers };
}

#define NODE_ATTACH_CMD "\"$BLKREP_BIN\" -c \"$BLKREP_CONFIG\" --node \"$BLKREP_NODE\" " \
			"attach \"$BLKREP_DEVICE\""

/* After an automatic promotion: auto-attach and promote-command. */
void node_failover_command(const struct node *n)
{
	const char *cmd = config_promote_command(n->cfg), *dev = n->me->auto_attach;
	struct hook_env e = node_hook_env(n, NULL, dev);
	char line[4096];

	if (dev && cmd)
		snprintf(line, sizeof(line), NODE_ATTACH_CMD " && { %s; }", cmd);
	else if (dev || cmd)
		snprintf(line, sizeof(line), "%s", dev ? NODE_ATTACH_CMD : cmd);
	else
		return;
	log_info("auto-failover: running: %s", line);
	(void)hook_run_detached("auto-failover", line, &e);
}

/* Every peer not connected is outdated: its slot says so on disk, and a
 * frozen primary writes on without it.  Their names go to names ("" if
 * every peer is connected). */
void node_outdate_down_peers(struct node *n, char *names, size_t len)
{
	struct strbuf o = STRBUF_INIT(names, len);

	names[0] = '\0';
	for (unsigned i = 0; i < n->npeers; i++) {
		if (sync_up(n->peers[i]))
			continue;
		n->sb->slot[sync_slot(n->peers[i])].disk = META_DISK_OUTDATED;
		strbuf_printf(&o, "%s%s", *names ? ", " : "", sync_name(n->peers[i]));
	}
	if (!*names)
		return;
	(void)local_save_sb(n->loc);
	primary_outdate_peer(n->pri);
}

/* --- fence-peer --- */

static void node_fence_done(void *arg, int wstatus)
{
	struct node *n = arg;
	char now[NODE_NAMES_LEN], names[NODE_NAMES_LEN];

	hook_status_str(wstatus, n->fence_result, sizeof(n->fence_result));
	if (!primary_fence_wanted(n->pri, now, sizeof(now)) || strcmp(now, n->fence_peers) != 0) {
		/* Back, outdated by an operator, or others lost meanwhile:
		 * the next check asks again for whoever is missing now. */
		log_info("fence-peer for %s: %s; the peers changed meanwhile", n->fence_peers,
			 n->fence_result);
		n->fence_refused = false;
		return;
	}
	if (!hook_fence_outdates(wstatus)) {
		n->fence_refused = true;
		log_err("fence-peer for %s: %s: writes stay frozen until %s back or "
			"`blkrep outdate-peer`",
			n->fence_peers, n->fence_result, strchr(now, ' ') ? "they are" : "it is");
		return;
	}
	node_outdate_down_peers(n, names, sizeof(names));
	log_warn("fence-peer for %s: %s (the peer is outdated, down or fenced): %s outdated; "
		 "writes go on without them",
		 n->fence_peers, n->fence_result, names);
}

/* After every batch of the loop (the tick's too): a primary under freeze
 * without a peer runs fence-peer, once for each set of missing peers. */
void node_fence_check(void *arg)
{
	struct node *n = arg;
	const char *cmd = config_fence_peer(n->cfg);
	char want[NODE_NAMES_LEN];
	struct hook_env e;

	if (!cmd || !n->pri || hook_running(n->fence))
		return;
	/* Primary only because it went down as one: it steps back if its
	 * peer was promoted meanwhile, and must not fence that one first. */
	if (n->resumed && !devices_attached(n->dev))
		return;
	if (!primary_fence_wanted(n->pri, want, sizeof(want))) {
		n->fence_refused = false;
		return;
	}
	if (n->fence_refused && strcmp(want, n->fence_peers) == 0)
		return; /* it said no for these: frozen */
	if (!n->fence && !(n->fence = hook_new(n->loop, node_fence_done, n)))
		return;
	snprintf(n->fence_peers, sizeof(n->fence_peers), "%s", want);
	e = node_hook_env(n, want, NULL);
	log_warn("writes frozen without %s: running fence-peer: %s", want, cmd);
	if (hook_start(n->fence, "fence-peer", cmd, &e) < 0) {
		snprintf(n->fence_result, sizeof(n->fence_result), "did not start");
		n->fence_refused = true;
		return;
	}
	snprintf(n->fence_result, sizeof(n->fence_result), "running");
	n->fence_refused = false;
}

const char *node_fence_state(const struct node *n)
{
	return n->fence_result;
}

/* After a resync from source: this node is up to date again. */
void node_unfence(const struct node *n, const char *source)
{
	const char *cmd = config_unfence_peer(n->cfg);
	struct hook_env e = node_hook_env(n, source, NULL);

	if (!cmd)
		return;
	log_info("resync from %s done: running unfence-peer: %s", source, cmd);
	(void)hook_run_detached("unfence-peer", cmd, &e);
}
