/* The config and metadata commands: `blkrep check-config`, `blkrep create`
 * and `blkrep dump-md`. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cli/cli.h"
#include "daemon/config.h"
#include "daemon/meta/gen.h"
#include "daemon/meta/mdio.h"
#include "daemon/meta/meta.h"
#include "utils/bitmap.h"
#include "utils/human.h"
#include "utils/log.h"

struct create_opts {
	bool force;
	bool zeroed;
	unsigned max_peers;	/* 0: the config's peers */
};

/* --max-peers N: 1..META_PEERS_MAX. */
static int parse_max_peers(const char *arg, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (!*arg || *end || v < 1 || v > META_PEERS_MAX) {
		log_err("create: --max-peers must be a number from 1 to %u, not '%s'",
			META_PEERS_MAX, arg);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_create(struct cli *cli, struct create_opts *o)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "zeroed", no_argument, NULL, 'z' },
		{ "max-peers", required_argument, NULL, 'p' },
		{ 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(cli->argc, cli->argv, "", opts, NULL)) != -1) {
		if (c == 'f') {
			o->force = true;
		} else if (c == 'z') {
			o->zeroed = true;
		} else if (c == 'p') {
			if (parse_max_peers(optarg, &o->max_peers) < 0)
				return -1;
		} else {
			log_err("create: unknown option '%s' (usage: create [--force] [--zeroed] "
				"[--max-peers N])", cli->argv[optind - 1]);
			return -1;
		}
	}
	if (optind != cli->argc) {
		log_err("create: unexpected argument '%s'", cli->argv[optind]);
		return -1;
	}
	return 0;
}

int cmd_check_config(struct cli *cli)
{
	const struct config_node *node;
	struct config *cfg = NULL;

	if (cli_load_node(cli, &cfg, &node) < 0)
		return 1;
	if (node->witness)
		printf("%s: resource %s, this node %s (address %s, a witness, state file %s)\n",
		       cli->config_path, config_resource_name(cfg), node->name, node->address,
		       node->state_file);
	else
		printf("%s: resource %s, this node %s (address %s, backing %s)\n",
		       cli->config_path, config_resource_name(cfg), node->name, node->address,
		       node->backing);
	/* Every node, with how data goes to it where that is not the
	 * resource's mode and max-lag. */
	for (unsigned int i = 0; i < config_node_count(cfg); i++) {
		const struct config_node *n = config_node_by_index(cfg, i);
		enum config_mode m = config_node_mode(cfg, n);
		uint64_t lag = config_node_max_lag(cfg, n);
		char size[HUMAN_BYTES_LEN];

		printf("  node %s: address %s", n->name, n->address);
		if (n->witness)
			printf(", witness");
		else if (m != config_mode(cfg) || lag != config_max_lag(cfg))
			printf(", mode %s, max-lag %s", config_mode_name(m),
			       human_bytes(lag, size, sizeof(size)));
		printf("\n");
	}
	config_free(cfg);
	return 0;
}

/* Existing metadata, even unreadable, is only replaced with --force. */
static int check_existing(struct mdio *m, bool force)
{
	struct meta_sb old;
	char err[512];

	if (mdio_read_sb(m, &old, err, sizeof(err)) == 0) {
		if (force)
			return 0;
		log_err("%s already holds metadata of %s/%s; use create --force to "
			"overwrite it (this discards the node's replication state)",
			mdio_where(m), old.resource, old.node);
		return -1;
	}
	if (force || strstr(err, META_WHY_NONE))
		return 0;
	log_err("%s; use create --force to overwrite it", err);
	return -1;
}

/* The config's other nodes, in file order: n of them into peers. */
static unsigned config_peers(const struct config *cfg, const struct config_node *me,
			     const char **peers, unsigned max)
{
	const struct config_node *c;
	unsigned n = 0;

	for (unsigned i = 0; (c = config_node_by_index(cfg, i)); i++)
		if (c != me && !c->witness && n < max) /* a witness keeps no data */
			peers[n++] = c->name;
	return n;
}

static void fill_sb(struct meta_sb *sb, const struct config *cfg,
		    const struct config_node *node, const struct meta_layout *l, bool zeroed)
{
	const char *peers[META_PEERS_MAX];
	unsigned np = config_peers(cfg, node, peers, META_PEERS_MAX);

	meta_sb_defaults(sb);
	sb->max_peers = l->max_peers;
	snprintf(sb->resource, sizeof(sb->resource), "%s", config_resource_name(cfg));
	snprintf(sb->node, sizeof(sb->node), "%s", node->name);
	sb->data_bytes = l->data_bytes;
	sb->extent_bytes = l->extent_bytes;
	sb->al_slots = config_al_extents(cfg);
	sb->gen.current = GEN_CREATED;
	sb->mode = config_mode(cfg) == CONFIG_ASYNC ? META_MODE_ASYNC : META_MODE_SYNC;
	/* --zeroed: the user declares the store blank, so both nodes of the
	 * pair already hold the same (all-zero) data. */
	sb->flags = zeroed ? META_F_ZEROED : 0;
	sb->disk = zeroed ? META_DISK_UPTODATE : META_DISK_INCONSISTENT;
	sb->nbd_index = -1;
	/* As many as fit: up assigns the rest, or says to recreate. */
	(void)meta_sb_assign_slots(sb, peers, np < sb->max_peers ? np : sb->max_peers);
}

/* --max-peers, or the config's peers (at least 1, at most 7). */
static unsigned create_slots(const struct config *cfg, const struct config_node *node,
			     unsigned asked)
{
	const char *peers[META_PEERS_MAX + 1];
	unsigned np = config_peers(cfg, node, peers, META_PEERS_MAX + 1);

	if (asked)
		return asked;
	return np < 1 ? 1 : np > META_PEERS_MAX ? META_PEERS_MAX : np;
}

int cmd_create(struct cli *cli)
{
	struct create_opts o = { 0 };
	const struct config_node *node;
	struct config *cfg = NULL;
	struct mdio *m = NULL;
	struct meta_sb sb;
	char err[512];
	int rc = 1;

	if (parse_create(cli, &o) < 0)
		return 2;
	if (cli_load_node(cli, &cfg, &node) < 0)
		return 1;
	m = mdio_open(cfg, node, true, 0, err, sizeof(err));
	if (!m) {
		log_err("%s", err);
		goto out;
	}
	if (check_existing(m, o.force) < 0)
		goto out;
	if (mdio_use_slots(m, create_slots(cfg, node, o.max_peers), err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	fill_sb(&sb, cfg, node, mdio_layout(m), o.zeroed);
	if (mdio_format(m, &sb, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	printf("created metadata for %s/%s in %s: data area %" PRIu64 " bytes, "
	       "bitmap granularity %u KiB, %u peer slot%s, disk %s\n",
	       sb.resource, sb.node, mdio_where(m), sb.data_bytes, sb.extent_bytes >> 10,
	       sb.max_peers, sb.max_peers == 1 ? "" : "s", meta_disk_name(sb.disk));
	rc = 0;
out:
	mdio_close(m);
	config_free(cfg);
	return rc;
}

/* One slot's bitmap: its out-of-sync extents, or -1 (logged). */
static int64_t slot_count(struct mdio *m, unsigned slot)
{
	struct bitmap *bm = bitmap_new(mdio_layout(m)->nbits);
	char err[512];
	int64_t n = -1;

	if (!bm)
		log_err("out of memory");
	else if (mdio_read_bitmap(m, slot, bm, err, sizeof(err)) < 0)
		log_err("%s", err);
	else
		n = (int64_t)bitmap_count(bm);
	bitmap_free(bm);
	return n;
}

/* The activity log, then "bitmap:" (the most any slot in use has out of
 * sync) and one line per slot in use or holding bits. */
static int dump_al_and_bitmap(struct mdio *m, const struct meta_sb *sb)
{
	const struct meta_layout *l = mdio_layout(m);
	int64_t count[META_PEERS_MAX], most = 0;
	uint32_t ext[META_AL_MAX];
	unsigned n;
	char err[512];

	if (mdio_read_al(m, ext, META_AL_MAX, &n, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	for (unsigned i = 0; i < sb->max_peers; i++) {
		count[i] = slot_count(m, i);
		if (count[i] < 0)
			return -1;
		if (sb->slot[i].node[0] || sb->version == 1)	/* a slot in use */
			most = count[i] > most ? count[i] : most;
	}
	printf("activity log: %u extent(s)", n);
	for (unsigned i = 0; i < n && i < 16; i++)
		printf(" %u", ext[i]);
	printf("%s\n", n > 16 ? " ..." : "");
	printf("bitmap: %" PRId64 " of %" PRIu64 " extents out of sync (%" PRIu64 " bytes)\n",
	       most, l->nbits, (uint64_t)most * l->extent_bytes);
	for (unsigned i = 0; i < sb->max_peers; i++)
		if (sb->slot[i].node[0] || count[i])
			printf("bitmap slot %u (%s): %" PRId64 " extents out of sync (%" PRIu64
			       " bytes)\n", i, sb->slot[i].node[0] ? sb->slot[i].node : "unassigned",
			       count[i], (uint64_t)count[i] * l->extent_bytes);
	return 0;
}

int cmd_dump_md(struct cli *cli)
{
	const struct config_node *node;
	struct config *cfg = NULL;
	struct mdio *m = NULL;
	struct meta_sb sb;
	char err[512], text[4096];
	int rc = 1;

	if (cli_load_node(cli, &cfg, &node) < 0)
		return 1;
	m = mdio_open(cfg, node, false, 0, err, sizeof(err));
	if (!m || mdio_read_sb(m, &sb, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	meta_sb_to_text(&sb, text, sizeof(text));
	printf("metadata in %s\n%s", mdio_where(m), text);
	if (dump_al_and_bitmap(m, &sb) == 0)
		rc = 0;
out:
	mdio_close(m);
	config_free(cfg);
	return rc;
}
