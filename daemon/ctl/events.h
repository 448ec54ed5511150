/* `blkrep events`: what changed in a node, as JSON lines in the
 * vocabulary of DRBD's `drbdsetup events2` (README, "Monitoring").  Pure:
 * the caller (daemon/ctl/obs.c) takes a snapshot of the observable state
 * (struct events_state) after every loop batch and hands it here with the
 * time; this module compares it with the previous one, renders a line per
 * object that changed, and keeps the last EVENTS_RING lines numbered by a
 * sequence for the clients that poll.  No I/O, no clock; events_update()
 * allocates nothing.  Library-like: never logs. */
#ifndef BLKREP_EVENTS_H
#define BLKREP_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENTS_RING	   256	/* lines kept for pollers */
#define EVENTS_LINE_MAX	   1024 /* one rendered line, its '\n' included */
#define EVENTS_TEXT_MAX	   256	/* an error text kept in a snapshot */
#define EVENTS_PROGRESS_MS 1000 /* resync progress alone: a line at most this often */
#define EVENTS_PEERS_MAX   7	/* a resource has at most 8 nodes */

/* The objects, as events2 names them. */
enum events_object { EV_RESOURCE, EV_CONNECTION, EV_DEVICE, EV_PEER_DEVICE, EV_OBJECTS };

/* One peer's objects: its connection and peer-device lines. */
struct events_peer {
	const char *name; /* the peer's ("conn_name") */
	/* connection */
	const char *connection; /* "standalone", "connecting", "connected", "splitbrain" */
	const char *peer_role;	/* "primary", "secondary", "unknown" */
	bool split_brain;
	char last_error[EVENTS_TEXT_MAX]; /* the link's last error, "" */
	/* peer-device */
	const char *replication; /* "off", "established", "sync-source", "sync-target" */
	const char *peer_disk;	 /* as disk, or "unknown" */
	bool resync;		 /* the progress below is valid */
	uint64_t done_bytes, total_bytes, bytes_per_second;
	uint64_t out_of_sync_bytes; /* shown, but alone not a change */
};

/* What a node shows.  The const char * are fixed words or names that
 * outlive the snapshot (the caller's); the texts are copied.  Objects in
 * line order: resource, a connection per peer, device, a peer-device per
 * peer (as events2). */
struct events_state {
	const char *resource, *node; /* names */
	/* resource */
	const char *role; /* "primary", "secondary" */
	bool suspended;	  /* a frozen primary (on-peer-loss = freeze), or one
			   * waiting for quorum */
	bool quorum;	  /* connected to a majority of the voters (or quorum off) */
	const char *mode; /* "sync", "async" */
	/* device */
	const char *disk;		  /* "inconsistent", ..., "uptodate" */
	char disk_error[EVENTS_TEXT_MAX]; /* "" */
	bool attached;
	char path[32]; /* "/dev/nbd0", "/dev/loop3", "" */
	/* connection and peer-device, per peer (peers[0 .. npeers - 1]) */
	unsigned npeers;
	struct events_peer peers[EVENTS_PEERS_MAX];
};

struct events;

/* NULL when out of memory.  events_free(NULL) is fine. */
struct events *events_new(void);
void events_free(struct events *e);

/* Copies s into dst (len bytes), cut to fit, always terminated. */
void events_copy_text(char *dst, size_t len, const char *s);

/* The next snapshot, taken at realtime_ms (ms since the epoch, for the
 * lines' time) and mono_ms (a monotonic clock, for the progress rate).
 * The first call only records st.  Then a "change" line for each object
 * whose fields differ (a peer's objects compared with the same peer's, by
 * index); a peer's resync progress alone (done_bytes, total_bytes) makes
 * a line at most every EVENTS_PROGRESS_MS.  Returns the number of
 * lines added. */
unsigned events_update(struct events *e, const struct events_state *st, uint64_t realtime_ms,
		       uint64_t mono_ms);

/* The sequence number the next line will get (the first is 1). */
uint64_t events_next_seq(const struct events *e);

/* Lines from *seq on, into buf (len bytes, terminated), as many whole
 * lines as fit; *seq moves past them.  If lines from *seq on were already
 * overwritten, a "lost" line first says how many.  Returns the bytes
 * written (0: nothing new, or not even one line fits). */
size_t events_read(const struct events *e, uint64_t *seq, char *buf, size_t len,
		   uint64_t realtime_ms);

/* `--now`: an "exists" line per object of the last snapshot, then the
 * marker {"kind": "exists", "object": "-"}.  Returns the bytes written. */
size_t events_exists(const struct events *e, char *buf, size_t len, uint64_t realtime_ms);

/* One line (kind "destroy" at the daemon's stop, for instance) for object
 * o of the last snapshot (a connection or peer-device: the first peer's).
 * Returns the bytes written. */
size_t events_line(const struct events *e, const char *kind, enum events_object o, char *buf,
		   size_t len, uint64_t realtime_ms);

/* s as the inside of a JSON string: '"', '\\' and control characters
 * escaped, cut to fit len (terminated). */
void events_json_escape(char *out, size_t len, const char *s);

#endif
