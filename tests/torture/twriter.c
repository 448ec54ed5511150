/* The torture writer.  See twriter.h. */
#include "twriter.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "nbd/wire.h"
#include "tblock.h"
#include "tlog.h"

/* How long a stopping writer waits for the replies still in flight. */
#define DRAIN_SECONDS	 10.0
#define POLL_MS		 50
#define PLACE_TRIES	 16
#define RECV_BUF	 4096

struct slot {
	bool busy;
	bool queued; /* in the send queue: a reply to it is a protocol error */
	bool is_write;
	uint64_t id; /* the issue clock, also the NBD cookie */
	uint64_t first;
	uint32_t nblocks;
	uint8_t hdr[NBD_REQUEST_SIZE];
	uint8_t *buf;
};

struct conn {
	int fd;
	bool dead;
	uint16_t index;
	uint32_t inflight;
	uint32_t flushes_wanted; /* chosen at random, waiting for a free slot */
	struct slot *slots;
	uint32_t *sendq; /* ring of slot indices, qd entries */
	uint32_t sq_head, sq_len;
	size_t sent; /* bytes of the head request already sent */
	size_t rlen;
	uint8_t rbuf[RECV_BUF];
};

struct writer {
	const struct twriter_opts *o;
	struct twriter_stats *st;
	struct conn *conns;
	uint8_t *busy_blocks; /* 1 while a write in flight covers the block */
	struct tlog *log;
	uint64_t clock;
	uint64_t rng;
	uint64_t inflight;
	bool stopping, can_fua, can_flush;
	double t0, drain_deadline;
};

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(struct writer *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng_below(struct writer *w, uint64_t n)
{
	return rng_next(w) % n;
}

static bool rng_chance(struct writer *w, double p)
{
	return p > 0 && (double)(rng_next(w) >> 11) * 0x1.0p-53 < p;
}

static void log_event(struct writer *w, uint8_t type, uint8_t flags, uint16_t conn, uint64_t x,
		      uint32_t arg)
{
	struct tlog_rec r = { .clock = ++w->clock, .x = x, .arg = arg, .type = type,
			      .flags = flags, .conn = conn };

	if (tlog_append(w->log, &r) < 0 && w->st->stop != TWRITER_STOP_LOG_ERROR) {
		w->st->stop = TWRITER_STOP_LOG_ERROR;
		w->stopping = true;
		w->drain_deadline = now_seconds();
	}
}

/* The first reason to stop wins; it is logged as a STOP record. */
static void writer_stop(struct writer *w, enum twriter_stop why)
{
	if (w->stopping)
		return;
	w->stopping = true;
	w->st->stop = why;
	w->drain_deadline = now_seconds() + DRAIN_SECONDS;
	log_event(w, TLOG_STOP, 0, 0, 0, why);
}

static int free_slot(const struct writer *w, const struct conn *c)
{
	for (uint32_t i = 0; i < w->o->qd; i++)
		if (!c->slots[i].busy)
			return (int)i;
	return -1;
}

/* A random block range of the area that no write in flight touches. */
static bool pick_place(struct writer *w, uint64_t *first, uint32_t *n)
{
	uint64_t area = w->st->area_blocks;

	for (int t = 0; t < PLACE_TRIES; t++) {
		uint64_t f = rng_below(w, area);
		uint32_t k = 1 + (uint32_t)rng_below(w, w->o->max_blocks);
		bool free_range = true;

		if (k > area - f)
			k = (uint32_t)(area - f);
		for (uint32_t i = 0; i < k && free_range; i++)
			free_range = !w->busy_blocks[f + i];
		if (free_range) {
			*first = f;
			*n = k;
			return true;
		}
	}
	return false;
}

static void enqueue(struct writer *w, struct conn *c, uint32_t s, uint16_t type, uint16_t flags,
		    uint32_t len)
{
	struct slot *sl = &c->slots[s];
	struct nbd_request r = { .flags = flags, .type = type, .cookie = sl->id,
				 .offset = type == NBD_CMD_WRITE
						   ? w->o->area_offset + sl->first * w->o->block_size
						   : 0,
				 .length = len };

	nbd_request_encode(sl->hdr, &r);
	sl->busy = true;
	sl->queued = true;
	c->sendq[(c->sq_head + c->sq_len) % w->o->qd] = s;
	c->sq_len++;
	c->inflight++;
	w->inflight++;
}

static bool issue_write(struct writer *w, struct conn *c)
{
	int s = free_slot(w, c);
	uint32_t bs = w->o->block_size, n;
	uint64_t first;
	struct slot *sl;
	bool fua;

	if (s < 0 || !pick_place(w, &first, &n))
		return false;
	sl = &c->slots[s];
	fua = w->can_fua && rng_chance(w, w->o->fua_prob);
	log_event(w, TLOG_WRITE, fua ? TLOG_FUA : 0, c->index, first, n);
	*sl = (struct slot){ .is_write = true, .id = w->clock, .first = first, .nblocks = n,
			     .buf = sl->buf };
	for (uint32_t k = 0; k < n; k++) {
		struct tblock_hdr h = { .writer = w->o->writer, .conn = c->index, .seq = sl->id,
					.block = first + k, .seed = w->o->seed };

		tblock_fill(sl->buf + (size_t)k * bs, bs, &h);
		w->busy_blocks[first + k] = 1;
	}
	enqueue(w, c, (uint32_t)s, NBD_CMD_WRITE, fua ? NBD_CMD_FLAG_FUA : 0, n * bs);
	w->st->writes_issued++;
	return true;
}

static void issue_flush(struct writer *w, struct conn *c)
{
	int s = free_slot(w, c);

	if (s < 0 || c->dead)
		return;
	c->flushes_wanted--;
	log_event(w, TLOG_FLUSH, 0, c->index, 0, 0);
	c->slots[s] = (struct slot){ .id = w->clock, .buf = c->slots[s].buf };
	enqueue(w, c, (uint32_t)s, NBD_CMD_FLUSH, 0, 0);
	w->st->flushes_issued++;
}

static void issue_all(struct writer *w)
{
	for (uint32_t i = 0; i < w->o->conns && !w->stopping; i++) {
		struct conn *c = &w->conns[i];

		while (!c->dead && c->inflight < w->o->qd && !w->stopping) {
			if (c->flushes_wanted) {
				issue_flush(w, c);
				continue;
			}
			if (w->o->max_writes && w->st->writes_issued >= w->o->max_writes)
				return;
			if (!issue_write(w, c))
				break;
			/* a FLUSH on a random connection, sent as soon as it has room */
			if (w->can_flush && rng_chance(w, w->o->flush_prob))
				w->conns[rng_below(w, w->o->conns)].flushes_wanted++;
		}
	}
}

/* The requests still in flight on a lost connection stay unacknowledged
 * in the log; nothing more is issued anywhere. */
static void conn_lost(struct writer *w, struct conn *c, enum twriter_stop why)
{
	if (c->dead)
		return;
	c->dead = true;
	close(c->fd);
	c->fd = -1;
	w->inflight -= c->inflight;
	c->inflight = 0;
	c->sq_len = 0;
	writer_stop(w, why);
}

static void complete(struct writer *w, struct conn *c, struct slot *sl, uint32_t error)
{
	log_event(w, TLOG_REPLY, 0, c->index, sl->id, error);
	if (sl->is_write) {
		memset(w->busy_blocks + sl->first, 0, sl->nblocks);
		if (error) {
			w->st->writes_failed++;
		} else {
			w->st->writes_acked++;
			w->st->bytes_acked += (uint64_t)sl->nblocks * w->o->block_size;
		}
	} else if (error) {
		w->st->flushes_failed++;
	} else {
		w->st->flushes_acked++;
	}
	sl->busy = false;
	c->inflight--;
	w->inflight--;
}

static int handle_reply(struct writer *w, struct conn *c, const uint8_t *rep)
{
	uint32_t error;
	uint64_t cookie;

	if (nbd_simple_reply_decode(rep, &error, &cookie) < 0)
		return -1;
	for (uint32_t i = 0; i < w->o->qd; i++) {
		struct slot *sl = &c->slots[i];

		if (sl->busy && !sl->queued && sl->id == cookie) {
			complete(w, c, sl, error);
			return 0;
		}
	}
	return -1;
}

/* Reads what the socket has; 0, or -1 with the connection gone. */
static int conn_recv(struct writer *w, struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
		size_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			conn_lost(w, c, TWRITER_STOP_CONN_LOST);
			return -1;
		}
		c->rlen += (size_t)n;
		for (; c->rlen - off >= NBD_SIMPLE_REPLY_SIZE; off += NBD_SIMPLE_REPLY_SIZE) {
			if (handle_reply(w, c, c->rbuf + off) < 0) {
				conn_lost(w, c, TWRITER_STOP_PROTOCOL);
				return -1;
			}
		}
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
}

/* Sends queued requests until the socket is full; 0, or -1 with the
 * connection gone. */
static int conn_send(struct writer *w, struct conn *c)
{
	while (c->sq_len) {
		struct slot *sl = &c->slots[c->sendq[c->sq_head]];
		size_t plen = sl->is_write ? (size_t)sl->nblocks * w->o->block_size : 0;
		size_t total = NBD_REQUEST_SIZE + plen, done = c->sent;
		struct iovec iov[2];
		int niov = 0;
		ssize_t n;

		if (done < NBD_REQUEST_SIZE)
			iov[niov++] = (struct iovec){ sl->hdr + done, NBD_REQUEST_SIZE - done };
		if (plen) {
			size_t poff = done > NBD_REQUEST_SIZE ? done - NBD_REQUEST_SIZE : 0;

			iov[niov++] = (struct iovec){ sl->buf + poff, plen - poff };
		}
		n = writev(c->fd, iov, niov);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0) {
			conn_lost(w, c, TWRITER_STOP_CONN_LOST);
			return -1;
		}
		c->sent += (size_t)n;
		if (c->sent == total) {
			sl->queued = false;
			c->sent = 0;
			c->sq_head = (c->sq_head + 1) % w->o->qd;
			c->sq_len--;
		}
	}
	return 0;
}

static bool should_exit(struct writer *w, double now)
{
	sig_atomic_t sigs = *w->o->stop_signals;

	if (!w->stopping) {
		if (sigs)
			writer_stop(w, TWRITER_STOP_SIGNAL);
		else if (w->o->seconds > 0 && now - w->t0 >= w->o->seconds)
			writer_stop(w, TWRITER_STOP_TIME);
		else if (w->o->max_writes && w->st->writes_issued >= w->o->max_writes)
			writer_stop(w, TWRITER_STOP_WRITES);
	}
	if (!w->stopping)
		return false;
	/* A signal while stopping for another reason, or a second one: at once. */
	if (sigs >= 2 || (sigs && w->st->stop != TWRITER_STOP_SIGNAL))
		return true;
	return w->inflight == 0 || now >= w->drain_deadline;
}

static int poll_once(struct writer *w, struct pollfd *pfd)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < w->o->conns; i++) {
		struct conn *c = &w->conns[i];

		pfd[i] = (struct pollfd){ .fd = c->dead ? -1 : c->fd, .events = POLLIN };
		if (c->sq_len)
			pfd[i].events |= POLLOUT;
		n += !c->dead;
	}
	if (n == 0)
		return -1;
	if (poll(pfd, w->o->conns, POLL_MS) < 0 && errno != EINTR)
		return -1;
	for (uint32_t i = 0; i < w->o->conns; i++) {
		struct conn *c = &w->conns[i];

		if (c->dead || !pfd[i].revents)
			continue;
		if (pfd[i].revents & POLLOUT && conn_send(w, c) < 0)
			continue;
		if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
			(void)conn_recv(w, c);
	}
	return 0;
}

static void run_loop(struct writer *w)
{
	struct pollfd pfd[w->o->conns];

	for (;;) {
		if (should_exit(w, now_seconds()))
			break;
		if (!w->stopping) {
			issue_all(w);
			for (uint32_t i = 0; i < w->o->conns; i++)
				if (!w->conns[i].dead && w->conns[i].sq_len)
					(void)conn_send(w, &w->conns[i]);
		}
		if (poll_once(w, pfd) < 0)
			break;
	}
}

static int open_conns(struct writer *w, char *err, size_t errlen)
{
	const struct twriter_opts *o = w->o;
	size_t buflen = (size_t)o->max_blocks * o->block_size;
	uint64_t size0 = 0;

	for (uint32_t i = 0; i < o->conns; i++) {
		struct conn *c = &w->conns[i];
		uint64_t size;
		uint16_t flags;

		c->index = (uint16_t)i;
		c->fd = tnbd_open(&o->target, &size, &flags, err, errlen);
		if (c->fd < 0)
			return -1;
		if (i == 0) {
			size0 = size;
			w->can_fua = flags & NBD_FLAG_SEND_FUA;
			w->can_flush = flags & NBD_FLAG_SEND_FLUSH;
			if (flags & NBD_FLAG_READ_ONLY) {
				snprintf(err, errlen, "the export is read-only");
				return -1;
			}
		}
		if (size != size0) {
			snprintf(err, errlen, "connections see different export sizes");
			return -1;
		}
		(void)fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		c->slots = calloc(o->qd, sizeof(*c->slots));
		c->sendq = calloc(o->qd, sizeof(*c->sendq));
		if (!c->slots || !c->sendq)
			goto nomem;
		for (uint32_t s = 0; s < o->qd; s++)
			if (!(c->slots[s].buf = malloc(buflen)))
				goto nomem;
	}
	if (o->area_offset % o->block_size || o->area_offset >= size0) {
		snprintf(err, errlen, "area offset %llu is not a multiple of %u inside the export (%llu bytes)",
			 (unsigned long long)o->area_offset, o->block_size, (unsigned long long)size0);
		return -1;
	}
	w->st->area_blocks = o->area_blocks ? o->area_blocks : (size0 - o->area_offset) / o->block_size;
	if (w->st->area_blocks == 0 ||
	    w->st->area_blocks > (size0 - o->area_offset) / o->block_size) {
		snprintf(err, errlen,
			 "area of %llu blocks of %u bytes at offset %llu does not fit the export (%llu bytes)",
			 (unsigned long long)w->st->area_blocks, o->block_size,
			 (unsigned long long)o->area_offset, (unsigned long long)size0);
		return -1;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* Tells each live connection goodbye (best effort) and frees everything. */
static void close_conns(struct writer *w)
{
	for (uint32_t i = 0; i < w->o->conns; i++) {
		struct conn *c = &w->conns[i];

		if (c->fd >= 0 && !c->dead && c->inflight == 0 && c->sq_len == 0) {
			uint8_t hdr[NBD_REQUEST_SIZE];
			struct nbd_request r = { .type = NBD_CMD_DISC, .cookie = ++w->clock };

			nbd_request_encode(hdr, &r);
			(void)!write(c->fd, hdr, sizeof(hdr));
		}
		if (c->fd >= 0)
			close(c->fd);
		for (uint32_t s = 0; c->slots && s < w->o->qd; s++)
			free(c->slots[s].buf);
		free(c->slots);
		free(c->sendq);
	}
	free(w->conns);
}

int twriter_run(const struct twriter_opts *o, struct twriter_stats *st, char *err,
		size_t errlen)
{
	struct writer w = { .o = o, .st = st, .rng = o->seed ^ ((uint64_t)o->writer << 32) };
	struct tlog_header h;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	w.conns = calloc(o->conns, sizeof(*w.conns));
	if (!w.conns) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < o->conns; i++)
		w.conns[i].fd = -1;
	if (open_conns(&w, err, errlen) < 0)
		goto out;
	w.busy_blocks = calloc(st->area_blocks, 1);
	h = (struct tlog_header){ .block_size = o->block_size, .area_blocks = st->area_blocks,
				  .seed = o->seed, .writer = o->writer, .conns = o->conns };
	if (!w.busy_blocks || !(w.log = tlog_create(o->log_path, &h))) {
		snprintf(err, errlen, "%s: %s", o->log_path, strerror(errno));
		goto out;
	}
	if (!o->quiet && (!w.can_fua || !w.can_flush))
		fprintf(stderr, "nbdtorture: the export lacks%s%s; not sent\n",
			w.can_fua ? "" : " FUA", w.can_flush ? "" : " FLUSH");
	w.t0 = now_seconds();
	run_loop(&w);
	st->seconds = now_seconds() - w.t0;
	rc = 0;
	if (tlog_close(w.log) < 0 || st->stop == TWRITER_STOP_LOG_ERROR) {
		snprintf(err, errlen, "%s: the log could not be written", o->log_path);
		rc = -1;
	}
out:
	free(w.busy_blocks);
	close_conns(&w);
	return rc;
}

const char *twriter_stop_name(enum twriter_stop s)
{
	switch (s) {
	case TWRITER_STOP_TIME:
		return "time";
	case TWRITER_STOP_WRITES:
		return "writes";
	case TWRITER_STOP_SIGNAL:
		return "signal";
	case TWRITER_STOP_CONN_LOST:
		return "connection lost";
	case TWRITER_STOP_PROTOCOL:
		return "protocol error";
	case TWRITER_STOP_LOG_ERROR:
		return "log error";
	}
	return "unknown";
}
