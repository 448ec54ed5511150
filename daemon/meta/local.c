/* The node's own replica.  See local.h. */
#include "daemon/meta/local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/meta/alog.h"
#include "daemon/meta/gen.h"
#include "daemon/meta/mdio.h"
#include "daemon/meta/meta.h"
#include "daemon/repl/diskerr.h"
#include "utils/bitmap.h"
#include "utils/log.h"

struct local {
	struct mdio *md;
	struct meta_sb sb;
	struct bitmap *bm[META_PEERS_MAX];	/* one per slot, [0, sb.max_peers) */
	struct diskerr *disk;
	int data_fd;
};

/* Every peer of the config gets a slot, written at once; version 1
 * metadata is upgraded (written as version 2) on the way. */
static int local_slots(struct local *l, const struct config *cfg, const struct config_node *me,
		       char *err, size_t len)
{
	const char *peers[META_PEERS_MAX + 1];
	const struct config_node *n;
	unsigned np = 0;
	int got;

	for (unsigned i = 0; (n = config_node_by_index(cfg, i)) && np <= META_PEERS_MAX; i++)
		if (n != me && !n->witness) /* a witness keeps no data: no slot */
			peers[np++] = n->name;
	got = np > META_PEERS_MAX ? -1 : meta_sb_assign_slots(&l->sb, peers, np);
	if (got < 0 && np > l->sb.max_peers) {
		snprintf(err, len, "%s/%s: the metadata has %u peer slot%s (max-peers at create) "
			 "and the config names %u peers: recreate it with `blkrep create "
			 "--max-peers %u` (this discards the bitmaps)", l->sb.resource,
			 l->sb.node, l->sb.max_peers, l->sb.max_peers == 1 ? "" : "s", np, np);
		return -1;
	}
	if (got < 0) {
		snprintf(err, len, "%s/%s: no free peer slot for a node of the config: the "
			 "metadata's %u peer slot%s (max-peers at create) hold%s nodes no longer "
			 "in it; recreate it with `blkrep create` (this discards the bitmaps)",
			 l->sb.resource, l->sb.node, l->sb.max_peers,
			 l->sb.max_peers == 1 ? "" : "s", l->sb.max_peers == 1 ? "s" : "");
		return -1;
	}
	if (got == 0 && l->sb.version == META_VERSION)
		return 0;
	if (mdio_write_sb(l->md, &l->sb, err, len) < 0)
		return -1;
	if (l->sb.version != META_VERSION)
		log_info("%s/%s: metadata upgraded from version %u to %u (%u peer slot%s)",
			 l->sb.resource, l->sb.node, l->sb.version, META_VERSION, l->sb.max_peers,
			 l->sb.max_peers == 1 ? "" : "s");
	l->sb.version = META_VERSION;
	return 0;
}

static int local_read_bitmaps(struct local *l, char *err, size_t len)
{
	for (unsigned i = 0; i < l->sb.max_peers; i++) {
		l->bm[i] = bitmap_new(mdio_layout(l->md)->nbits);
		if (!l->bm[i]) {
			snprintf(err, len, "out of memory");
			return -1;
		}
		if (mdio_read_bitmap(l->md, i, l->bm[i], err, len) < 0)
			return -1;
	}
	return 0;
}

static int local_load(struct local *l, const struct config *cfg, const struct config_node *me,
		      char *err, size_t len)
{
	char why[256];

	l->md = mdio_open(cfg, me, false, 0, err, len);
	if (!l->md || mdio_read_sb(l->md, &l->sb, err, len) < 0)
		return -1;
	if (strcmp(l->sb.resource, config_resource_name(cfg)) || strcmp(l->sb.node, me->name)) {
		snprintf(err, len, "%s holds metadata of %s/%s, not %s/%s", mdio_where(l->md),
			 l->sb.resource, l->sb.node, config_resource_name(cfg), me->name);
		return -1;
	}
	if (meta_sb_check_layout(&l->sb, mdio_layout(l->md), why, sizeof(why)) < 0) {
		snprintf(err, len, "%s: metadata does not match its device: %s; refusing it "
			 "(nothing written)", mdio_where(l->md), why);
		return -1;
	}
	l->data_fd = open(me->backing, O_RDWR | O_CLOEXEC);
	if (l->data_fd < 0) {
		snprintf(err, len, "%s: %s", me->backing, strerror(errno));
		return -1;
	}
	l->disk = diskerr_new();
	if (!l->disk) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	if (local_read_bitmaps(l, err, len) < 0)
		return -1;
	return local_slots(l, cfg, me, err, len);
}

struct local *local_open(const struct config *cfg, const struct config_node *me)
{
	struct local *l = calloc(1, sizeof(*l));
	char err[512];

	if (!l) {
		log_err("out of memory");
		return NULL;
	}
	l->data_fd = -1;
	if (local_load(l, cfg, me, err, sizeof(err)) < 0) {
		log_err("%s", err);
		local_close(l);
		return NULL;
	}
	return l;
}

void local_close(struct local *l)
{
	if (!l)
		return;
	diskerr_free(l->disk);
	for (unsigned i = 0; i < META_PEERS_MAX; i++)
		bitmap_free(l->bm[i]);
	mdio_close(l->md);
	if (l->data_fd >= 0)
		close(l->data_fd);
	free(l);
}

struct meta_sb *local_sb(struct local *l)
{
	return &l->sb;
}

int local_slot(const struct local *l, const char *peer)
{
	return meta_sb_slot(&l->sb, peer);
}

struct bitmap *local_slot_bm(struct local *l, int slot)
{
	return l->bm[slot];
}

struct bitmap *const *local_bms(const struct local *l)
{
	return l->bm;
}

unsigned local_max_peers(const struct local *l)
{
	return l->sb.max_peers;
}

struct mdio *local_md(struct local *l)
{
	return l->md;
}

struct diskerr *local_disk(struct local *l)
{
	return l->disk;
}

int local_data_fd(const struct local *l)
{
	return l->data_fd;
}

int local_save_sb(struct local *l)
{
	char err[512];

	if (mdio_write_sb(l->md, &l->sb, err, sizeof(err)) == 0)
		return 0;
	log_err("%s", err);
	return -1;
}

int local_save_bm(struct local *l)
{
	char err[512];

	if (alog_save_bitmap(l->md, l->bm, l->sb.max_peers, l->data_fd, err, sizeof(err)) == 0)
		return 0;
	log_err("%s", err);
	return -1;
}

int local_save(struct local *l)
{
	return local_save_sb(l) < 0 ? -1 : local_save_bm(l);
}

void local_new_gen(struct local *l, uint32_t absent_slots)
{
	uint64_t r = 0, ids[META_PEERS_MAX];

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r ^= (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	for (unsigned i = 0; i < l->sb.max_peers; i++)
		ids[i] = l->sb.slot[i].bitmap_gen;
	gen_new_current_slots(&l->sb.gen.current, l->sb.gen.history, ids, l->sb.max_peers,
			      absent_slots, r);
	for (unsigned i = 0; i < l->sb.max_peers; i++)
		l->sb.slot[i].bitmap_gen = ids[i];
}

void local_bm_empty(struct local *l, int slot)
{
	bitmap_clear_range(l->bm[slot], 0, bitmap_nbits(l->bm[slot]));
}

const char *local_disk_name(const struct local *l)
{
	return meta_disk_name(l->sb.disk);
}

const char *local_mode_name(const struct local *l)
{
	return l->sb.mode == META_MODE_ASYNC ? "async" : "sync";
}

uint64_t local_slot_out_of_sync(const struct local *l, int slot, uint64_t limit)
{
	uint64_t ext = l->sb.extent_bytes, bytes;

	if (limit > l->sb.data_bytes)
		limit = l->sb.data_bytes;
	bytes = bitmap_count_below(l->bm[slot], (limit + ext - 1) / ext) * ext;
	return bytes < limit ? bytes : limit;
}

uint64_t local_out_of_sync(const struct local *l, uint64_t limit)
{
	uint64_t most = 0;

	/* A free slot's bits (an activity log marked at a crash) are no
	 * peer's. */
	for (unsigned i = 0; i < l->sb.max_peers; i++) {
		uint64_t b = l->sb.slot[i].node[0] ? local_slot_out_of_sync(l, (int)i, limit) : 0;

		most = b > most ? b : most;
	}
	return most;
}
