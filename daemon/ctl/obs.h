/* The node's observability: the events of `blkrep events` and the metrics
 * of `blkrep metrics` and HTTP /metrics (README, "Monitoring").  It reads
 * the node's state through daemon/node.h after every loop batch (a loop
 * hook: cheap, no allocation) and hands it to the pure modules that
 * compare and render (events.h, metrics.h); it holds the `events-poll`
 * requests that wait for a change, and runs the HTTP endpoint (httpd.h)
 * when the node's config names `metrics`.  Loop thread only.
 * Daemon-level: NULL after logging. */
#ifndef BLKREP_OBS_H
#define BLKREP_OBS_H

#include <stddef.h>

struct node;
struct obs;
struct sync;

/* Before the node's parts start (a metrics port that cannot be bound
 * stops start-up before the metadata is touched), after the node's own
 * loop hooks (so that its hook sees what theirs changed).  It reads the
 * node from its first loop batch on. */
struct obs *obs_new(struct node *n);
/* After the loop is freed (its hook is then gone too).  NULL is fine. */
void obs_free(struct obs *o);
/* Once a second, from the node's tick: waiting polls time out, the HTTP
 * text is rendered again.  NULL is fine. */
void obs_tick(struct obs *o);

/* Shared with status (daemon/ctl/node_ctl.c): the link's state as status
 * and events name it ("splitbrain" once refused for a split brain), and
 * the disk's error text (the activity log's while it cannot be written),
 * "" when none. */
const char *obs_connection(const struct node *n);
/* The same for one peer (NULL: "standalone"). */
const char *obs_sync_connection(const struct sync *s);
const char *obs_disk_error(const struct node *n);
/* The attached device into buf ("/dev/nbd0", "/dev/loop3" for attach
 * --loop) and buf, or NULL when none is. */
const char *obs_device(const struct node *n, char *buf, size_t len);

#endif
