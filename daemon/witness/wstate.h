/* A witness's state file: the last generation it saw of its resource, so
 * that a restarted witness cannot help a stale data node to quorum.  A
 * fixed WSTATE_SIZE bytes, little-endian:
 *
 *	  0  magic    8 bytes "BLKRWITN"
 *	  8  version  u32 (WSTATE_VERSION)
 *	 12  zero     u32
 *	 16  resource 64 bytes, NUL-terminated, zero-padded
 *	 80  node     64 bytes, the same
 *	144  seq      u64: how many times it was written
 *	152  current  u64: the generation now (never 0)
 *	160  history  4 x u64: the ones before, newest first, 0: empty
 *	192  zero     up to WSTATE_SIZE - 8
 *	248  checksum u64: XXH64 (seed 0) of bytes 0..248
 *
 * The encoding, the decoding and what a MSG_GEN does to the state are
 * pure; wstate_load() and wstate_save() are the file I/O (plain open,
 * write, fsync, rename: the simulator's files too).  Errors: -1 with one
 * line in err; nothing here prints. */
#ifndef BLKREP_WSTATE_H
#define BLKREP_WSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSTATE_SIZE    256
#define WSTATE_VERSION 1
#define WSTATE_HISTORY 4
#define WSTATE_NAME    64 /* resource and node names, with their NUL */

struct wstate {
	char resource[WSTATE_NAME];
	char node[WSTATE_NAME];
	uint64_t seq;
	uint64_t current;
	uint64_t history[WSTATE_HISTORY];
};

/* A fresh state: the created generation (gen.h's GEN_CREATED), which any
 * data node's generation supersedes; seq 0. */
void wstate_init(struct wstate *s, const char *resource, const char *node);

void wstate_encode(uint8_t buf[WSTATE_SIZE], const struct wstate *s);

/* Decodes len bytes: 0, or -1 with a static reason in *why ("not a
 * witness state file", "unknown version 7", "checksum mismatch", ...). */
int wstate_decode(const uint8_t *buf, size_t len, struct wstate *s, const char **why);

/* MSG_GEN: current becomes new_current; a different old current goes to
 * the front of the history (the oldest dropped).  Returns whether the
 * state changed (0 is ignored: no generation). */
bool wstate_apply_gen(struct wstate *s, uint64_t new_current);

/* What a witness does with a message h (payload: h->length bytes) from a
 * data node, decided without I/O:
 *	MSG_STATE: WSTATE_HELLO, its decoded payload in *hello for status;
 *	MSG_GEN: wstate_apply_gen() (*dirty set if s changed), WSTATE_NOTHING;
 *	    but WSTATE_STALE, s unchanged, for a step that does not start
 *	    from this witness's generation (its sender lacks a newer one:
 *	    the FLUSH after it is answered ESTALE, so that it is not
 *	    counted);
 *	MSG_FLUSH: WSTATE_FLUSH: make s durable if *dirty, then answer
 *	    MSG_FLUSH_ACK with h->seq;
 *	MSG_MARK: WSTATE_NOTHING (a primary's marker, for data nodes);
 *	anything else: WSTATE_DROP, *why "a witness keeps no data"; a STATE
 *	    or GEN whose payload does not decode: WSTATE_DROP, *why the
 *	    decoder's reason.  The caller drops the link. */
struct msg_hdr;
struct msg_hello;
enum wstate_verdict { WSTATE_NOTHING, WSTATE_HELLO, WSTATE_FLUSH, WSTATE_DROP, WSTATE_STALE };
enum wstate_verdict wstate_message(struct wstate *s, bool *dirty, const struct msg_hdr *h,
				   const uint8_t *payload, struct msg_hello *hello,
				   const char **why);

/* Reads path into *s, checking that it belongs to resource and node.  A
 * missing file is a fresh state (wstate_init()), written at once, with
 * *created set.  A corrupt or foreign file, or an unreadable one: -1 with
 * one line in err saying what to do ("PATH: checksum mismatch: not a
 * state file this witness wrote; move it away to start afresh (the
 * witness then forgets the generation it saw)"). */
int wstate_load(const char *path, const char *resource, const char *node, struct wstate *s,
		bool *created, char *err, size_t errlen);

/* Writes *s to path durably and atomically: PATH.tmp written and fsynced,
 * renamed over path, its directory fsynced (created, mode 0700, if
 * missing: only the last component).  s->seq is counted up first.  0, or
 * -1 with "PATH: REASON" in err (errno kept). */
int wstate_save(const char *path, struct wstate *s, char *err, size_t errlen);

#endif
