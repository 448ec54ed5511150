/* The simulated NBD client.  See simclient.h. */
#include "simclient.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd/wire.h"
#include "simfd.h"
#include "simhist.h"
#include "simrt.h"

#define QD		8
#define MAX_BLOCKS	8	/* per data request */
#define RETRY_NS	200000000ULL

enum stage { C_DOWN, C_HELLO, C_EXPORT, C_READY };

struct req {
	bool used;
	uint16_t type;
	bool fua;
	uint64_t b0, nb;	/* blocks */
	unsigned idx[MAX_BLOCKS];
	uint64_t ticket;	/* a FLUSH's */
	uint64_t cookie;
	uint64_t minority;	/* a READ's: c->minority when sent */
};

struct simclient {
	char path[128];
	struct simhist *h;
	uint64_t nblocks, wide_blocks;
	bool on, armed;
	enum stage stage;
	int fd;
	uint8_t in[16 + QD * MAX_BLOCKS * HIST_BLOCK];
	size_t in_len;
	struct req reqs[QD];
	unsigned inflight;
	uint16_t *busy;		/* per block: requests in flight that write it */
	uint64_t next_id, next_cookie, acked;
	unsigned flush_pct;
	bool wide;
	char violation[512];
	unsigned gen;		/* of the connection, for stale timers */
	bool minority_now;	/* the export's node is a primary without quorum */
	uint64_t minority;	/* steps it was, so far */
	uint64_t reads_unchecked;
};

static void client_kick(void *arg, uint64_t gen);

struct simclient *simclient_new(const char *export_path, struct simhist *h, uint64_t size,
				uint64_t wide_bytes)
{
	struct simclient *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	snprintf(c->path, sizeof(c->path), "%s", export_path);
	c->h = h;
	c->nblocks = size / HIST_BLOCK;
	c->wide_blocks = wide_bytes / HIST_BLOCK;
	c->busy = calloc(c->nblocks, sizeof(*c->busy));
	c->fd = -1;
	c->flush_pct = 12;
	if (!c->busy)
		abort();
	return c;
}

void simclient_free(struct simclient *c)
{
	if (!c)
		return;
	free(c->busy);
	free(c);
}

static void arm(struct simclient *c, uint64_t delay)
{
	if (c->armed)
		return;
	c->armed = true;
	sim_at(delay, SIM_DRIVER, client_kick, c, c->gen);
}

/* The connection broke: what was in flight has an unknown outcome, which
 * the history already allows (submitted, never acked). */
static void client_drop(struct simclient *c, const char *why)
{
	if (c->fd >= 0) {
		sim_trace("client: connection lost (%s), %u requests in flight", why,
			  c->inflight);
		simfd_close(c->fd);
	}
	c->fd = -1;
	c->stage = C_DOWN;
	c->gen++;
	c->armed = false;
	for (unsigned i = 0; i < QD; i++) {
		struct req *r = &c->reqs[i];

		if (r->used && r->type != NBD_CMD_FLUSH && r->type != NBD_CMD_READ)
			for (uint64_t b = r->b0; b < r->b0 + r->nb; b++)
				c->busy[b]--;
		r->used = false;
	}
	c->inflight = 0;
	c->in_len = 0;
	simhist_forget_pending(c->h);
	if (c->on)
		arm(c, RETRY_NS);
}

static void send_hdr(struct simclient *c, struct req *r, uint64_t off, uint32_t len)
{
	struct nbd_request q = {
		.flags = r->fua ? NBD_CMD_FLAG_FUA : 0,
		.type = r->type,
		.cookie = r->cookie,
		.offset = off,
		.length = len,
	};
	uint8_t buf[NBD_REQUEST_SIZE];

	nbd_request_encode(buf, &q);
	(void)simfd_send(c->fd, buf, sizeof(buf));
}

static struct req *slot(struct simclient *c)
{
	for (unsigned i = 0; i < QD; i++)
		if (!c->reqs[i].used)
			return &c->reqs[i];
	return NULL;
}

/* A run of nb blocks from b0 that no write in flight touches. */
static bool pick_range(struct simclient *c, uint64_t nb, uint64_t *b0)
{
	if (nb > c->nblocks)
		nb = c->nblocks;
	for (int tries = 0; tries < 4; tries++) {
		uint64_t b = sim_below(c->nblocks - nb + 1), i;

		for (i = 0; i < nb && !c->busy[b + i]; i++)
			;
		if (i == nb) {
			*b0 = b;
			return true;
		}
	}
	return false;
}

static void issue_write(struct simclient *c, struct req *r, uint16_t type)
{
	static uint8_t payload[MAX_BLOCKS * HIST_BLOCK];

	for (uint64_t i = 0; i < r->nb; i++) {
		uint64_t id = type == NBD_CMD_WRITE ? ++c->next_id : 0;

		if (type == NBD_CMD_WRITE)
			simhist_fill(payload + i * HIST_BLOCK, r->b0 + i, id);
		unsigned idx = simhist_submit(c->h, r->b0 + i, id);

		if (i < MAX_BLOCKS)
			r->idx[i] = idx;
		c->busy[r->b0 + i]++;
	}
	send_hdr(c, r, r->b0 * HIST_BLOCK, (uint32_t)(r->nb * HIST_BLOCK));
	if (type == NBD_CMD_WRITE)
		(void)simfd_send(c->fd, payload, r->nb * HIST_BLOCK);
}

/* Zeroing requests may be wide: their versions are not tracked per index
 * beyond MAX_BLOCKS, so a wide one is acked block by block from the end. */
static void issue(struct simclient *c)
{
	struct req *r = slot(c);
	unsigned dice = (unsigned)sim_below(100);
	uint64_t nb = 1 + sim_below(MAX_BLOCKS);

	if (!r)
		return;
	*r = (struct req){ .used = true, .cookie = ++c->next_cookie };
	if (dice < c->flush_pct) {
		r->type = NBD_CMD_FLUSH;
		r->ticket = simhist_flush_sent(c->h);
		send_hdr(c, r, 0, 0);
	} else if (dice < 22 && dice >= 12) {
		r->type = NBD_CMD_READ;
		if (!pick_range(c, nb, &r->b0))
			return (void)(r->used = false);
		r->nb = nb;
		r->minority = c->minority;
		send_hdr(c, r, r->b0 * HIST_BLOCK, (uint32_t)(nb * HIST_BLOCK));
	} else if (dice < 28 || (c->wide && dice < 60)) {
		r->type = sim_chance(50) ? NBD_CMD_TRIM : NBD_CMD_WRITE_ZEROES;
		if (c->wide || sim_chance(40))
			nb = c->wide_blocks + sim_below(c->wide_blocks + 1);
		if (!pick_range(c, nb, &r->b0))
			return (void)(r->used = false);
		r->nb = nb < c->nblocks ? nb : c->nblocks;
		r->fua = sim_chance(20);
		issue_write(c, r, r->type);
	} else {
		r->type = NBD_CMD_WRITE;
		r->fua = sim_chance(20);
		if (!pick_range(c, nb, &r->b0))
			return (void)(r->used = false);
		r->nb = nb;
		issue_write(c, r, NBD_CMD_WRITE);
	}
	c->inflight++;
	sim_trace("client: %s %" PRIu64 "+%" PRIu64 "%s cookie %" PRIu64 " (last write id %" PRIu64
		  ")", nbd_cmd_name(r->type), r->b0, r->nb, r->fua ? " fua" : "", r->cookie,
		  c->next_id);
}

/* Versions of the blocks a zeroing request wrote: all after idx[0]-ish;
 * the history keeps the index of each block's newest submitted version. */
static void ack_blocks(struct simclient *c, struct req *r, bool ok)
{
	for (uint64_t i = 0; i < r->nb; i++) {
		uint64_t b = r->b0 + i;

		if (ok && i < MAX_BLOCKS)
			simhist_acked(c->h, b, r->idx[i], r->fua);
		c->busy[b]--;
	}
}

static void check_read(struct simclient *c, struct req *r, const uint8_t *data)
{
	char why[400];

	for (uint64_t i = 0; i < r->nb; i++) {
		if (!simhist_allowed(c->h, r->b0 + i, data + i * HIST_BLOCK, why, sizeof(why)) &&
		    !c->violation[0])
			snprintf(c->violation, sizeof(c->violation), "read: %s", why);
	}
}

static struct req *by_cookie(struct simclient *c, uint64_t cookie)
{
	for (unsigned i = 0; i < QD; i++)
		if (c->reqs[i].used && c->reqs[i].cookie == cookie)
			return &c->reqs[i];
	return NULL;
}

/* One reply, if whole in the buffer: its length, else 0. */
static size_t on_reply(struct simclient *c)
{
	uint32_t err;
	uint64_t cookie;
	struct req *r;
	size_t need = NBD_SIMPLE_REPLY_SIZE;

	if (c->in_len < need)
		return 0;
	if (nbd_simple_reply_decode(c->in, &err, &cookie) < 0 || !(r = by_cookie(c, cookie))) {
		client_drop(c, "bad reply");
		return 0;
	}
	if (r->type == NBD_CMD_READ && !err)
		need += r->nb * HIST_BLOCK;
	if (c->in_len < need)
		return 0;
	sim_trace("client: reply cookie %" PRIu64 " %s", cookie, err ? "error" : "ok");
	if (r->type == NBD_CMD_FLUSH && !err)
		simhist_flushed(c->h, r->ticket);
	else if (r->type == NBD_CMD_FLUSH)
		/* README: after a failed FLUSH, writes since the last one may
		 * be missing from the primary's disk; no later FLUSH on this
		 * connection vouches for them. */
		simhist_forget_pending(c->h);
	else if (r->type == NBD_CMD_READ && !err && (c->minority_now || r->minority != c->minority))
		c->reads_unchecked++; /* served by a primary without quorum: maybe stale */
	else if (r->type == NBD_CMD_READ && !err)
		check_read(c, r, c->in + NBD_SIMPLE_REPLY_SIZE);
	else if (r->type != NBD_CMD_FLUSH && r->type != NBD_CMD_READ)
		ack_blocks(c, r, !err);
	if (!err)
		c->acked++;
	r->used = false;
	c->inflight--;
	return need;
}

static bool handshake(struct simclient *c)
{
	uint8_t out[4 + 16 + 2];

	if (c->stage == C_HELLO && c->in_len >= 18) {
		put_be32(out, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
		put_be64(out + 4, NBD_IHAVEOPT);
		put_be32(out + 12, NBD_OPT_EXPORT_NAME);
		put_be32(out + 16, 2);
		memcpy(out + 20, "r0", 2);
		(void)simfd_send(c->fd, out, sizeof(out));
		memmove(c->in, c->in + 18, c->in_len - 18);
		c->in_len -= 18;
		c->stage = C_EXPORT;
	}
	if (c->stage == C_EXPORT && c->in_len >= 10) {
		memmove(c->in, c->in + 10, c->in_len - 10);
		c->in_len -= 10;
		c->stage = C_READY;
		sim_trace("client: connected to %s", c->path);
		arm(c, 0);
	}
	return c->stage == C_READY;
}

static void on_ready(void *arg)
{
	struct simclient *c = arg;
	bool eof = false;
	size_t n;

	c->in_len += simfd_take(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, &eof);
	if (handshake(c))
		while ((n = on_reply(c)) > 0) {
			memmove(c->in, c->in + n, c->in_len - n);
			c->in_len -= n;
		}
	if (eof && c->fd >= 0)
		client_drop(c, "end of file");
}

static void client_kick(void *arg, uint64_t gen)
{
	struct simclient *c = arg;

	if (gen != c->gen)
		return;
	c->armed = false;
	if (!c->on)
		return;
	if (c->stage == C_DOWN) {
		c->fd = simfd_dial(c->path, on_ready, c);
		if (c->fd < 0)
			return arm(c, RETRY_NS);
		c->stage = C_HELLO;
		return;
	}
	if (c->stage != C_READY)
		return;
	if (c->inflight < QD)
		issue(c);
	arm(c, 20000 + sim_below(500000));
}

void simclient_set_export(struct simclient *c, const char *export_path)
{
	if (!strcmp(c->path, export_path))
		return;
	client_drop(c, "the operator moves the client");
	snprintf(c->path, sizeof(c->path), "%s", export_path);
}

void simclient_set_flush_pct(struct simclient *c, unsigned pct)
{
	c->flush_pct = pct;
}

void simclient_set_wide(struct simclient *c, bool on)
{
	c->wide = on;
}

void simclient_run(struct simclient *c, bool on)
{
	c->on = on;
	if (on)
		arm(c, 0);
	else if (c->stage != C_READY || !c->inflight)
		client_drop(c, "stopped");
}

bool simclient_idle(const struct simclient *c)
{
	return c->inflight == 0;
}

const char *simclient_violation(const struct simclient *c)
{
	return c->violation[0] ? c->violation : NULL;
}

uint64_t simclient_acked(const struct simclient *c)
{
	return c->acked;
}

void simclient_set_minority(struct simclient *c, bool on)
{
	c->minority_now = on;
	c->minority += on;
}

uint64_t simclient_reads_unchecked(const struct simclient *c)
{
	return c->reads_unchecked;
}
