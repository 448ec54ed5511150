/* The quorum oracles (Q1 and the promotion oracle) and figures.  See
 * simq.h. */
#include "simq.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SECOND		1000000000ULL
#define NEVER		UINT64_MAX

struct qnode {
	bool primary;
	uint64_t since;		/* start of its last primary interval, NEVER */
	bool acked;		/* it acknowledged a write at last_ack */
	uint64_t last_ack;
	uint64_t acks;		/* acknowledgements seen so far */
	uint64_t majority_at;	/* it last could reach a majority */
	uint64_t minority_at;	/* it last could not */
	bool suspended, noquorum;
};

static struct {
	int nn;
	bool on;
	struct qnode n[SIMQ_NODES];
} Q;
static struct simq_counts C;

static const char *const names[SIMQ_NODES] = { "alpha", "beta", "gamma" };

struct simq_counts *simq_counts(void)
{
	return &C;
}

void simq_reset(int nn)
{
	memset(&Q, 0, sizeof(Q));
	Q.nn = nn;
	Q.on = nn > 0;
	for (int i = 0; i < SIMQ_NODES; i++)
		Q.n[i].since = NEVER;
	C.seeds += Q.on;
}

void simq_seen(int i, bool primary)
{
	struct qnode *q = &Q.n[i];

	if (primary && q->since == NEVER)
		q->since = 0; /* as it went down: its interval goes on */
	q->primary = primary;
	q->suspended = q->noquorum = false;
}

/* Node i acknowledged a write now: no other node may have acknowledged
 * one since i's primary interval began (both were primary then and both
 * acknowledged: two writers). */
static bool q1_ack(int i, uint64_t now, char *why, size_t whylen)
{
	const struct qnode *q = &Q.n[i];

	C.q1_checked_acks++;
	for (int j = 0; j < Q.nn; j++) {
		const struct qnode *o = &Q.n[j];

		if (j == i || !o->acked || q->since == NEVER || o->last_ack < q->since)
			continue;
		snprintf(why, whylen,
			 "Q1: two primaries acknowledged writes: %s acked one at %.3f s, "
			 "%s (primary since %.3f s) acked one at %.3f s",
			 names[j], (double)o->last_ack / SECOND, names[i],
			 (double)q->since / SECOND, (double)now / SECOND);
		return false;
	}
	return true;
}

unsigned simq_step(const bool primary[], const uint64_t acks[], const bool majority[],
		   uint64_t now, bool *ok, char *why, size_t whylen)
{
	unsigned promoted = 0;

	*ok = true;
	if (!Q.on)
		return 0;
	for (int i = 0; i < Q.nn; i++) {
		struct qnode *q = &Q.n[i];

		if (primary[i] && !q->primary) {
			q->since = now;
			promoted |= 1U << i;
		}
		q->primary = primary[i];
		if (majority[i])
			q->majority_at = now;
		else
			q->minority_at = now;
		if (acks[i] != q->acks) {
			q->acks = acks[i];
			if (*ok && !q1_ack(i, now, why, whylen))
				*ok = false;
			q->acked = true;
			q->last_ack = now;
		}
	}
	return promoted;
}

bool simq_answer(int i, bool ok, const char *body, uint64_t now, char *why, size_t whylen)
{
	const struct qnode *q = &Q.n[i];

	if (!Q.on)
		return true;
	if (!ok) {
		if (strstr(body, "no quorum")) {
			C.refusals++;
			/* Reachable is not connected (a link retries every 8 s at
			 * most): a figure, not a violation. */
			C.refused_with_majority += q->majority_at > q->minority_at &&
						   now - q->minority_at > 10 * SECOND;
		}
		return true;
	}
	if (q->majority_at + SECOND >= now)
		return true;
	snprintf(why, whylen,
		 "promoted without quorum: primary on %s answered ok at %.3f s, but it could "
		 "reach no majority of the %d voters since %.3f s",
		 names[i], (double)now / SECOND, Q.nn, (double)q->majority_at / SECOND);
	return false;
}

void simq_status(int i, bool suspended, bool noquorum_primary)
{
	struct qnode *q = &Q.n[i];

	if (!Q.on)
		return;
	C.suspended_periods += suspended && !q->suspended;
	C.ioerror_periods += noquorum_primary && !suspended && !q->noquorum;
	q->suspended = suspended;
	q->noquorum = noquorum_primary && !suspended;
}
