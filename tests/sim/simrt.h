/* The simulator's runtime: one seeded PRNG, a virtual clock and one queue
 * of events, so that a seed replays a run exactly.  Every simulated thing
 * (a disk completion, bytes arriving on a socket, a timer, the client's
 * next request) is an event; sim_step() runs the earliest.  Events carry
 * the node they belong to and that node's incarnation: a crash bumps the
 * incarnation, and the dead node's events are then skipped, never run.
 * Also the trace: a ring of the last lines (events and daemon log lines)
 * printed when an oracle fails. */
#ifndef BLKREP_SIMRT_H
#define BLKREP_SIMRT_H

#include <stdbool.h>
#include <stdint.h>

#define SIM_NODES	3	/* at most; a seed runs two or three */
#define SIM_DRIVER	(-1)	/* events of the client, operator, network */

typedef void sim_event_fn(void *arg, uint64_t tag);

/* Starts a run: clock at 0, empty queue, PRNG from seed. */
void sim_reset(uint64_t seed);

uint64_t sim_rand(void);
/* Uniform in [0, n); 0 for n == 0. */
uint64_t sim_below(uint64_t n);
/* True with probability pct/100. */
bool sim_chance(unsigned pct);

uint64_t sim_now_ns(void);

/* Runs fn(arg, tag) delay_ns from now, on behalf of owner (a node index,
 * or SIM_DRIVER); it is dropped if that node crashes before. */
void sim_at(uint64_t delay_ns, int owner, sim_event_fn *fn, void *arg, uint64_t tag);

/* Runs the earliest event.  False when none is left. */
bool sim_step(void);
uint64_t sim_steps(void);

/* The node whose event runs now (SIM_DRIVER between nodes): what a file
 * descriptor opened now belongs to. */
int sim_current(void);
void sim_set_current(int owner);

/* Kills node's incarnation: its queued events never run. */
void sim_kill(int node);

/* A line for the trace ring, prefixed with the clock. */
void sim_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the last lines of the ring on stderr. */
void sim_trace_dump(unsigned lines);
/* Echo every trace line on stderr as it is made (SIM_VERBOSE). */
void sim_trace_echo(bool on);

#endif
