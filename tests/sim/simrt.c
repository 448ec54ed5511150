/* The simulator's runtime: PRNG, clock, event queue, trace.  See simrt.h. */
#include "simrt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_LINES	4096
#define TRACE_WIDTH	200

struct event {
	uint64_t t;
	uint64_t seq;	/* ties run in the order they were queued */
	int owner;
	unsigned gen;
	sim_event_fn *fn;
	void *arg;
	uint64_t tag;
};

static struct {
	uint64_t s[4];
	uint64_t now;
	uint64_t seq;
	uint64_t steps;
	struct event *heap;
	size_t n, cap;
	unsigned gen[SIM_NODES];
	int current;
	char trace[TRACE_LINES][TRACE_WIDTH];
	unsigned trace_next;
	bool echo;
} rt;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: fast, and the same sequence everywhere for a seed. */
uint64_t sim_rand(void)
{
	uint64_t *s = rt.s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

uint64_t sim_below(uint64_t n)
{
	return n ? sim_rand() % n : 0;
}

bool sim_chance(unsigned pct)
{
	return sim_below(100) < pct;
}

void sim_reset(uint64_t seed)
{
	uint64_t z = seed;

	/* splitmix64 spreads a small seed over the whole state. */
	for (int i = 0; i < 4; i++) {
		z += 0x9e3779b97f4a7c15ULL;
		uint64_t x = z;

		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
		rt.s[i] = x ^ (x >> 31);
	}
	rt.now = 1000000000ULL; /* 1 s: no code sees a zero clock */
	rt.n = 0;
	rt.steps = 0;
	rt.current = SIM_DRIVER;
	rt.trace_next = 0;
	memset(rt.trace, 0, sizeof(rt.trace));
}

uint64_t sim_now_ns(void)
{
	return rt.now;
}

static bool before(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void swap(size_t i, size_t j)
{
	struct event t = rt.heap[i];

	rt.heap[i] = rt.heap[j];
	rt.heap[j] = t;
}

void sim_at(uint64_t delay_ns, int owner, sim_event_fn *fn, void *arg, uint64_t tag)
{
	size_t i;

	if (rt.n == rt.cap) {
		rt.cap = rt.cap ? rt.cap * 2 : 1024;
		rt.heap = realloc(rt.heap, rt.cap * sizeof(*rt.heap));
		if (!rt.heap)
			abort();
	}
	i = rt.n++;
	rt.heap[i] = (struct event){ rt.now + delay_ns, rt.seq++, owner,
				     owner >= 0 ? rt.gen[owner] : 0, fn, arg, tag };
	while (i && before(&rt.heap[i], &rt.heap[(i - 1) / 2])) {
		swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct event pop(void)
{
	struct event top = rt.heap[0];
	size_t i = 0;

	rt.heap[0] = rt.heap[--rt.n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < rt.n && before(&rt.heap[l], &rt.heap[m]))
			m = l;
		if (r < rt.n && before(&rt.heap[r], &rt.heap[m]))
			m = r;
		if (m == i)
			break;
		swap(i, m);
		i = m;
	}
	return top;
}

bool sim_step(void)
{
	struct event e;

	do {
		if (!rt.n)
			return false;
		e = pop();
	} while (e.owner >= 0 && e.gen != rt.gen[e.owner]);
	rt.now = e.t;
	rt.steps++;
	rt.current = e.owner;
	e.fn(e.arg, e.tag);
	rt.current = SIM_DRIVER;
	return true;
}

uint64_t sim_steps(void)
{
	return rt.steps;
}

int sim_current(void)
{
	return rt.current;
}

void sim_set_current(int owner)
{
	rt.current = owner;
}

void sim_kill(int node)
{
	rt.gen[node]++;
}

void sim_trace(const char *fmt, ...)
{
	char *line = rt.trace[rt.trace_next++ % TRACE_LINES];
	int o = snprintf(line, TRACE_WIDTH, "%8.3f ", (double)rt.now / 1e9);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + o, TRACE_WIDTH - (size_t)o, fmt, ap);
	va_end(ap);
	if (rt.echo)
		dprintf(2, "%s\n", line);
}

void sim_trace_dump(unsigned lines)
{
	unsigned n = rt.trace_next < lines ? rt.trace_next : lines;

	for (unsigned i = rt.trace_next - n; i < rt.trace_next; i++)
		dprintf(2, "  %s\n", rt.trace[i % TRACE_LINES]);
}

void sim_trace_echo(bool on)
{
	rt.echo = on;
}
