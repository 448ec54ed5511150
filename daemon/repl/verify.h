/* `blkrep verify` against one peer, and answering the peer's: the walk of
 * a resync (daemon/repl/resync) over every extent, one XXH64 per extent
 * compared; extents that differ become out of sync, for `blkrep resync`.
 * One per peer, held by its struct sync (daemon/repl/sync.h).
 * Daemon-level. */
#ifndef BLKREP_VERIFY_H
#define BLKREP_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct control_req;
struct local;
struct loop;
struct msg_hdr;
struct stream;

struct peer;
struct repl_req;

struct verify;

/* What a verify asks of the replication above it (the primary's side),
 * registered by its creator so that verify.c never calls up by name.
 * Every call is required; each gets the arg given to verify_new(). */
struct verify_ops {
	/* Sends a VERIFY_REQ in the replication stream (primary_send()). */
	int (*send)(void *arg, struct msg_hdr *h, struct repl_req *rr);
	/* A chunk's range against the export's writes (rule 4): see
	 * primary_chunk_lock(), primary_chunk_unlock(), primary_chunk_app_busy(). */
	bool (*lock)(void *arg, struct repl_req *rr);
	void (*unlock)(void *arg, struct repl_req *rr);
	bool (*app_busy)(void *arg);
};

/* Against the peer named name (kept; for messages), over the node's
 * replica loc, its answers found in stream; NULL on failure.  ops must
 * outlive the verify. */
struct verify *verify_new(struct local *loc, struct loop *loop, const struct config *cfg,
			  struct stream *stream, const char *name, const struct verify_ops *ops,
			  void *arg);
void verify_free(struct verify *v); /* NULL is ignored */

/* `verify` of the first bytes of the data area, once the peer's part
 * said it may run (sync_cmd_verify()); answers req. */
void verify_start(struct verify *v, uint64_t bytes, struct control_req *req);
/* The peer's VERIFY_REQ: the checksums go back on link p, in stream
 * order. */
void verify_answer(struct verify *v, const struct msg_hdr *h, struct peer *p);
/* The peer's VERIFY_REPLY to one of ours. */
void verify_reply(struct verify *v, const struct msg_hdr *h, const uint8_t *payload);
/* A request of ours failed in the stream (err: -errno), or was answered. */
void verify_acked(struct verify *v, void *req, int err);
void verify_stop(struct verify *v);   /* the link went */
void verify_pump(struct verify *v);   /* room again: chunks go on */
void verify_relock(struct verify *v); /* a promotion (rule 4) */
/* The last verify: false if none ran since start. */
bool verify_result(const struct verify *v, bool *running, uint64_t *done, uint64_t *total,
		   uint64_t *differ);
/* A verify is running. */
bool verify_running(const struct verify *v);

#endif
