/* struct sync (see sync.h), shared by its two files only: sync.c, the
 * object and what the node's other parts ask of it; node_sync.c, what
 * happens on the link.  Nothing else includes it. */
#ifndef BLKREP_SYNC_INT_H
#define BLKREP_SYNC_INT_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/ctl/control.h"
#include "daemon/meta/gen.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/meta/savefile.h"
#include "daemon/repl/primary.h"
#include "daemon/repl/resync.h"
#include "daemon/repl/secondary.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "daemon/repl/verify.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "utils/bitmap.h"
#include "utils/clock.h"
#include "utils/extent.h"
#include "utils/log.h"

#define RS_FLUSH_BYTES (32U << 20) /* resync data between peer FLUSHes */

struct sync {
	struct sync_env env;		 /* what the node gave sync_new() */
	struct meta_sb *sb;		 /* env.loc's */
	struct bitmap *bm;		 /* the peer's slot's, env.loc's */
	struct stream *stream;		 /* the lane's */
	struct lane *lane;		 /* the primary's side, to this peer */
	int slot;			 /* the peer's bitmap slot */
	bool multi;			 /* three nodes or more */
	bool deferred;			 /* a resync waits for a primary (sync_defers()) */
	const struct config_node *other; /* the peer in the config */
	struct peer *peer;		 /* the link */
	bool up;			 /* the handshake was accepted */
	struct msg_hello hello;		 /* what the peer says of itself */
	/* After a connect: the verdict, the bitmap exchange, the resync. */
	enum gen_verdict verdict;
	enum rs_role rs_role;
	struct resync *rs;	/* the resync source's walk of the bitmap */
	uint64_t bm_sent_page;	/* next page of our bitmap to send */
	bool bm_sent;		/* our last chunk is queued */
	bool peer_bm_done;	/* the peer's last chunk arrived */
	bool rs_final;		/* the source's pass is over: flush, then check */
	bool exchanging;	/* bitmaps are being exchanged */
	uint64_t rs_recv_bytes; /* the target's progress */
	uint64_t rs_recv_total;
	uint64_t rs_recv_start_ns;
	bool split_brain;   /* the last connect found that both wrote as primary */
	bool discard_local; /* `resolve --discard-local`: become the target */
	uint64_t saved_for; /* the generation whose own changes were saved */
	struct verify *vf;  /* `blkrep verify` against this peer */
	uint64_t resynced_bytes; /* sent as its resync source, for status */
	uint64_t resynced_in;	 /* received as its resync target, for status */
	/* node_sync.c's check whether a resync source is done, for
	 * sync_flush_covered(), which the primary's side calls (below
	 * node_sync.c, it must not name it). */
	void (*covered)(struct sync *s);
};

/* sync.c: a link's (or the hub's) TLS context, NULL after logging why. */
struct tls_ctx;
struct tls_ctx *sync_tls(const struct sync_env *env);
/* sync.c: MSG_GEN and MSG_MARK from the peer, if it is our primary. */
void sync_from_primary(struct sync *s, const struct msg_hdr *h, const uint8_t *payload);

#endif
