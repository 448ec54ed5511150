/* The simulated NBD client: connects to the primary's export with the
 * fixed-newstyle handshake, keeps a few requests in flight (writes, FUA
 * writes, FLUSH, TRIM and WRITE_ZEROES, some wider than half the activity
 * log, reads) and records every write in a simhist.  Reads are checked
 * against the history as they come back.  Requests never overlap a write
 * in flight, so each block's versions have one order. */
#ifndef BLKREP_SIMCLIENT_H
#define BLKREP_SIMCLIENT_H

#include <stdbool.h>
#include <stdint.h>

struct simhist;
struct simclient;

/* wide_bytes: a zeroing request at least this wide is "wide". */
struct simclient *simclient_new(const char *export_path, struct simhist *h, uint64_t size,
				uint64_t wide_bytes);
void simclient_free(struct simclient *c);

/* Starts (true) or stops issuing requests; while on, it reconnects
 * whenever the export is there. */
void simclient_run(struct simclient *c, bool on);
/* From now on the client uses this export (after a failover): the
 * connection to the old one is dropped, what was in flight never acked. */
void simclient_set_export(struct simclient *c, const char *export_path);
/* Percent of requests that are FLUSH (default 12); 0 for a while lets
 * writes pile up unflushed. */
void simclient_set_flush_pct(struct simclient *c, unsigned pct);
/* While on, a third of the requests are wide TRIM/WRITE_ZEROES. */
void simclient_set_wide(struct simclient *c, bool on);
/* No request in flight. */
bool simclient_idle(const struct simclient *c);
/* A read returned a value the history does not allow: the first such. */
const char *simclient_violation(const struct simclient *c);
uint64_t simclient_acked(const struct simclient *c);
/* Quorum seeds, after every step: the export's node is (not) a primary
 * without quorum.  A READ answered while it was, or that it was at any
 * step between the READ and its reply, is not checked (a minority primary
 * may serve stale data: the daemon gates writes on quorum, not reads), but
 * counted. */
void simclient_set_minority(struct simclient *c, bool on);
uint64_t simclient_reads_unchecked(const struct simclient *c);

#endif
