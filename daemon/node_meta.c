/* The node's state every part reads or records: its run paths, the
 * superblock and dirty bitmap written to the metadata, ranges marked out
 * of sync, the names of states, locking resync and verify chunks against
 * the export's writes, and the clock and randomness the parts use.
 * Parts below node.c call these, never node.c itself (docs/ARCHITECTURE.md,
 * "Layout"). */
#include "daemon/node_int.h"
#include "daemon/meta/alog.h"
#include "utils/clock.h"
#include "utils/extent.h"

int node_run_path(char *buf, size_t len, const char *resource, const char *node, const char *suffix)
{
	char *dot;

	/* The control socket's path, with this suffix instead of "ctl". */
	if (control_path(buf, len, NULL, resource, node) < 0)
		return -1;
	dot = strrchr(buf, '.');
	if (!dot || (size_t)(dot + 1 - buf) + strlen(suffix) + 1 > len)
		return -1;
	strcpy(dot + 1, suffix);
	return 0;
}

/* --- metadata --- */

int node_save_sb(struct node *n)
{
	char err[512];

	if (mdio_write_sb(n->md, &n->sb, err, sizeof(err)) == 0)
		return 0;
	log_err("%s", err);
	return -1;
}

int node_save_bm(struct node *n)
{
	char err[512];

	if (alog_save_bitmap(n->md, n->bm, n->data_fd, err, sizeof(err)) == 0)
		return 0;
	log_err("%s", err);
	return -1;
}

void node_bm_empty(struct bitmap *bm)
{
	bitmap_clear_range(bm, 0, bitmap_nbits(bm));
}

/* The peer may not hold this range: record it in the persistent bitmap,
 * where no pending flush may clear it. */
void node_mark_out_of_sync(struct node *n, uint64_t off, uint64_t len)
{
	stream_mark_out_of_sync(n->stream, off, len);
}

uint64_t node_random(void)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r ^= (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	return r;
}

uint64_t node_now_ns(void)
{
	return clock_now_ns();
}

/* --- names, for status and logs --- */

const char *node_mode_name(const struct node *n)
{
	return n->sb.mode == META_MODE_ASYNC ? "async" : "sync";
}

const char *node_role_name(bool primary)
{
	return primary ? "primary" : "secondary";
}

const char *node_disk_name(const struct node *n)
{
	return meta_disk_name(n->sb.disk);
}
