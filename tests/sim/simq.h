/* The quorum oracles of the simulator's quorum seeds (issue 17,
 * tests/sim/README.md "Quorum"): Q1, never two primaries that both
 * acknowledge writes while both are primary; the promotion oracle, a
 * `primary` answered ok only by a node that could reach a majority of the
 * voters; and the figures (promotions, refusals, periods without quorum).
 * Q2 (no split brain) and Q3 (a promoted node holds every durable write)
 * are checked by sim.c with what it already has (status, simhist). */
#ifndef BLKREP_SIMQ_H
#define BLKREP_SIMQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIMQ_NODES	3

/* Start of a quorum seed: nn voters.  Nothing is watched in other seeds. */
void simq_reset(int nn);
/* Node i came up (primary if it came back as it went down: not a
 * promotion) or went down (its primary interval ends). */
void simq_seen(int i, bool primary);
/* Every step: each node's role now, the acknowledgements the client got
 * from it so far (simhist_acks_by()), whether it can reach a majority of
 * the voters (itself included) now.  Returns a mask of the nodes that
 * just became primary (promotions); false in *ok and why[] on a Q1
 * violation. */
unsigned simq_step(const bool primary[], const uint64_t acks[], const bool majority[],
		   uint64_t now, bool *ok, char *why, size_t whylen);
/* A `primary` on node i was answered: ok, or refused with body.  False
 * (why[] says) if it went through although i could reach no majority
 * of the voters for the last second. */
bool simq_answer(int i, bool ok, const char *body, uint64_t now, char *why, size_t whylen);
/* Node i's status says writes are held (suspended) or fail (io-error)
 * for want of quorum: counts the periods. */
void simq_status(int i, bool suspended, bool noquorum_primary);

struct simq_counts {
	uint64_t seeds, witness_seeds, promotions_manual, promotions_auto, refusals, refused_with_majority,
		suspended_periods, ioerror_periods, relaxed_seeds, q1_checked_acks,
		reads_minority, relaxed_connects;
};
struct simq_counts *simq_counts(void);

#endif
