/* One NBD client connection on the server's io_uring, and the life of
 * each of its requests.  Input: one RECV at a time fills rbuf; the pump
 * parses the handshake, then request headers, copying small WRITE payloads
 * out of rbuf and receiving large ones straight into their buffer, while
 * earlier requests' disk I/O is in flight (up to CONN_SLOTS).  A request
 * lives in a slot: its buffer, the disk operation (READ/WRITE resubmitted
 * on short transfers, FLUSH, CACHE, zeroing with its fallbacks,
 * BLOCK_STATUS inline), the hand-off to the replicator, and its reply.
 * Output: replies queue in completion order (the cookie matches them) and
 * go out as one SENDMSG batch at a time: never two sends in flight on one
 * socket, because a short send would interleave them.  Every entry point
 * ends in conn_after(), which moves the connection on and frees it once
 * it is dead and nothing of it is in flight. */
#include "nbd/conn.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "utils/ioop.h"
#include "utils/loop.h"
#include "nbd/store.h"
#include "nbd/handshake.h"
#include "nbd/reply.h"
#include "nbd/request.h"
#include "nbd/wire.h"
#include "utils/bufio.h"
#include "utils/log.h"

#define RBUF_SIZE	(64U << 10)	/* >= NBD_HS_MAX_OPTION */
#define SEND_IOVS	64
#define DIRECT_RECV_MIN	(16U << 10)	/* payloads this big skip rbuf */
#define NOSLOT		0xffff
/* Buffer bytes one connection may hold (one request may exceed it), so
 * that a client that stops reading replies cannot take the whole pool. */
#define CONN_QUOTA	(16U << 20)

enum stage { ST_FREE, ST_WAIT_BUF, ST_PAYLOAD, ST_IO, ST_SYNC, ST_QUEUED };

struct slot {
	struct ioop op;
	uint8_t stage;
	uint8_t zero;		/* enum store_zero being tried */
	uint16_t next;		/* free list or reply queue */
	struct conn *c;
	struct nbd_request req;
	uint32_t error;		/* NBD error to reply with */
	uint8_t *buf;
	uint64_t done;		/* bytes received, read, written or zeroed */
	uint32_t hdr_len;
	uint32_t data_len;	/* bytes of buf sent after hdr */
	bool repl_started;	/* the replicator accepted it */
	bool in_repl;		/* a write it accepted: end() is owed */
	bool remote;		/* the peer has not answered yet */
	bool local_done;	/* its reply waits only for the peer */
	struct repl_req rr;
	uint8_t hdr[REPLY_HDR_MAX];
};

struct conn {
	struct ioop recv_op;
	struct ioop send_op;
	const struct conn_host *host;
	struct store *st;
	int fd;
	unsigned pending;	/* submissions not yet completed */
	bool dead;		/* socket shut down; free once pending == 0 */
	bool stopping;		/* read no more requests */
	bool in_tx;		/* handshake done */
	bool close_after_send;
	bool recv_busy, recv_direct;
	bool send_busy, sending_hs;
	bool flush_queued;	/* in the server's end-of-batch send list */
	struct nbd_hs *hs;	/* until its last output is sent */
	struct nbd_session sess;

	uint8_t *rbuf;
	uint32_t rpos, rend;
	struct slot *payload;	/* WRITE whose payload is being received */
	uint64_t discard;	/* payload bytes of a rejected WRITE */
	struct slot *blocked;	/* waiting for a buffer */
	struct slot *parked;	/* waiting for an overlapping write to finish */
	size_t held;		/* buffer bytes held by this connection's slots */
	uint32_t progress;	/* completions that moved data; for conn_tick */
	uint32_t seen_progress;
	unsigned stalled_ticks, hs_ticks;

	uint16_t free_head, nfree;
	uint16_t q_head, q_tail;	/* replies ready to send */
	uint16_t batch[SEND_IOVS];
	unsigned nbatch, iov_pos, iov_cnt;
	struct iovec iov[SEND_IOVS];
	struct msghdr msg;
	struct slot slots[CONN_SLOTS];
};

static void conn_after(struct conn *c);
static void slot_io_done(struct slot *s, int res);

/* --- a request's life: its slot and buffer, disk I/O, replication, reply --- */

static struct slot *slot_take(struct conn *c)
{
	struct slot *s = &c->slots[c->free_head];

	c->free_head = s->next;
	c->nfree--;
	s->error = 0;
	s->done = 0;
	s->buf = NULL;
	s->data_len = 0;
	s->zero = STORE_ZERO_PUNCH;
	s->repl_started = s->in_repl = s->remote = s->local_done = false;
	return s;
}

/* The replicator's range of a write it accepted is free (repl.h). */
static void slot_repl_end(struct slot *s)
{
	s->in_repl = false;
	s->c->host->repl->end(s->c->host->repl_arg, &s->rr);
}

static void slot_release(struct slot *s)
{
	struct conn *c = s->c;
	void *buf = s->buf;

	if (s->in_repl)
		slot_repl_end(s);
	s->stage = ST_FREE;
	s->buf = NULL;
	if (buf)
		c->held -= nbd_request_buf_len(&s->req);
	s->next = c->free_head;
	c->free_head = (uint16_t)(s - c->slots);
	c->nfree++;
	if (buf)
		c->host->put_buffer(c->host->arg, buf);
}

/* Queues the reply; the request is finished (written, read, flushed)
 * here, and on the peer if it was replicated: until the peer answers, the
 * reply waits (sync replication). */
static void slot_reply(struct slot *s)
{
	struct conn *c = s->c;
	uint16_t idx = (uint16_t)(s - c->slots);
	uint16_t t = s->req.type;

	repl_local_done(&s->rr, s->in_repl);
	if (s->remote) {
		s->local_done = true;
		return;
	}
	if (s->in_repl)
		slot_repl_end(s);
	if (c->sess.structured && (t == NBD_CMD_READ || t == NBD_CMD_BLOCK_STATUS)) {
		s->hdr_len = reply_structured(s->hdr, &s->req, s->error, &s->data_len);
	} else {
		nbd_simple_reply_encode(s->hdr, s->error, s->req.cookie);
		s->hdr_len = NBD_SIMPLE_REPLY_SIZE;
		s->data_len = t == NBD_CMD_READ && !s->error ? s->req.length : 0;
	}
	s->stage = ST_QUEUED;
	s->next = NOSLOT;
	if (c->q_head == NOSLOT)
		c->q_head = idx;
	else
		c->slots[c->q_tail].next = idx;
	c->q_tail = idx;
}

static void slot_fail(struct slot *s, int neg_errno)
{
	s->error = nbd_errno_to_wire(neg_errno);
	if (s->in_repl)	/* the peer may have it: the node must know */
		s->rr.local_err = neg_errno;
	slot_reply(s);
}

/* The ring entry for a slot's disk operation; the slot is then in stage. */
static struct io_uring_sqe *slot_sqe(struct slot *s, enum stage stage)
{
	s->stage = stage;
	s->c->pending++;
	return loop_sqe(s->c->host->loop, &s->op);
}

static void slot_sync(struct slot *s)
{
	struct io_uring_sqe *sqe = slot_sqe(s, ST_SYNC);

	io_uring_prep_fsync(sqe, store_fd_for(s->c->st, 1, 1), IORING_FSYNC_DATASYNC);
}

static void slot_submit_zero(struct slot *s, struct io_uring_sqe *sqe)
{
	const struct nbd_request *r = &s->req;

	s->zero = (uint8_t)store_zero_method(s->c->st, s->zero, r->flags & NBD_CMD_FLAG_NO_HOLE);
	store_prep_zero(s->c->st, sqe, s->zero, r->offset, r->length, s->done);
}

/* Hands a write-type request or FLUSH to the replicator, once it takes
 * it.  False if it answered REPL_BUSY (an overlap with a write in flight,
 * or no room: parked until server_repl_wake()), or REPL_FAIL (failed). */
static bool slot_replicate(struct slot *s)
{
	const struct nbd_request *r = &s->req;
	const struct conn_host *host = s->c->host;
	enum repl_verdict rc;

	if (s->repl_started || !nbd_request_mirrored(r->type))
		return true;
	s->rr = (struct repl_req){
		.type = r->type,
		.flags = r->flags & (NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE),
		.length = r->length,
		.offset = r->offset,
		.payload = s->buf,
	};
	rc = host->repl ? host->repl->submit(host->repl_arg, &s->rr) : REPL_LOCAL;
	if (rc == REPL_FAIL)
		return slot_fail(s, -EIO), false;
	if (rc == REPL_BUSY) {
		s->c->parked = s;
		host->park(host->arg, s->c);
		return false;
	}
	s->repl_started = true;
	s->in_repl = host->repl && r->type != NBD_CMD_FLUSH;
	if (rc == REPL_SENT) {
		s->remote = true;
		s->c->pending++;	/* the connection lives until the answer */
	}
	return true;
}

/* Starts (or continues) the disk work of a request whose buffer and
 * payload are ready. */
static void slot_submit(struct slot *s)
{
	const struct nbd_request *r = &s->req;
	struct store *st = s->c->st;
	struct io_uring_sqe *sqe;
	uint64_t off = r->offset + s->done, left = r->length - s->done;
	int fd = store_fd_for(st, off, left);

	if (r->type == NBD_CMD_BLOCK_STATUS) { /* answered inline */
		s->data_len = reply_block_status(st, s->c->sess.meta_id, r, s->buf);
		return slot_reply(s);
	}
	if (r->length == 0 && r->type != NBD_CMD_FLUSH)
		return slot_reply(s);
	if ((r->type == NBD_CMD_WRITE_ZEROES) && (r->flags & NBD_CMD_FLAG_FAST_ZERO) &&
	    store_zero_method(st, s->zero, r->flags & NBD_CMD_FLAG_NO_HOLE) == STORE_ZERO_WRITE)
		return slot_fail(s, -EOPNOTSUPP); /* before the peer is asked */
	if (!slot_replicate(s))
		return;
	if (r->type == NBD_CMD_WRITE && !(r->flags & NBD_CMD_FLAG_FUA) &&
	    store_write_inline(st, fd)) {
		ssize_t n = pwrite(fd, s->buf + s->done, left, (off_t)off);

		return slot_io_done(s, n < 0 ? -errno : (int)n);
	}
	sqe = slot_sqe(s, ST_IO);
	switch (r->type) {
	case NBD_CMD_READ:
		io_uring_prep_read(sqe, fd, s->buf + s->done, (unsigned)left, off);
		break;
	case NBD_CMD_WRITE:
		io_uring_prep_write(sqe, fd, s->buf + s->done, (unsigned)left, off);
		/* FUA: the reply waits for this write to be stable. */
		if (r->flags & NBD_CMD_FLAG_FUA)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case NBD_CMD_FLUSH:
		/* Every write replied to so far has completed, so one
		 * fdatasync now covers them all, on every connection. */
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		slot_submit_zero(s, sqe);
		break;
	case NBD_CMD_CACHE:
		io_uring_prep_fadvise(sqe, fd, r->offset, (off_t)r->length, POSIX_FADV_WILLNEED);
		break;
	}
}

/* A zeroing step finished: fall back, continue, or finish. */
static void slot_zero_done(struct slot *s, int res)
{
	if (res == -EOPNOTSUPP && s->zero != STORE_ZERO_WRITE) {
		store_zero_unsupported(s->c->st, (enum store_zero)s->zero);
		s->zero++;
		return slot_submit(s);
	}
	if (res < 0 || (res == 0 && s->zero == STORE_ZERO_WRITE))
		return slot_fail(s, res ? res : -EIO);
	s->done = s->zero == STORE_ZERO_WRITE ? s->done + (uint64_t)res : s->req.length;
	if (s->done < s->req.length)
		return slot_submit(s);
	if (s->req.flags & NBD_CMD_FLAG_FUA)
		return slot_sync(s);
	slot_reply(s);
}

static void slot_io_done(struct slot *s, int res)
{
	const struct nbd_request *r = &s->req;

	if (res == -EAGAIN || res == -EINTR)
		return slot_submit(s);
	if (s->stage == ST_SYNC)
		return res < 0 ? slot_fail(s, res) : slot_reply(s);
	switch (r->type) {
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
		if (res <= 0)	/* 0: the store shrank under us */
			return slot_fail(s, res ? res : -EIO);
		s->done += (uint64_t)res;
		if (s->done < r->length)
			return slot_submit(s);	/* short transfer */
		return slot_reply(s);
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		return slot_zero_done(s, res);
	case NBD_CMD_CACHE:
		return slot_reply(s);	/* advisory: never an error */
	case NBD_CMD_FLUSH:
		if (s->c->host->repl && s->c->host->repl->flush_done)
			s->c->host->repl->flush_done(s->c->host->repl_arg, res < 0 ? res : 0);
		return res < 0 ? slot_fail(s, res) : slot_reply(s);
	default:
		return res < 0 ? slot_fail(s, res) : slot_reply(s);
	}
}

/* The buffer is there: receive the payload, or start the disk work. */
static void slot_begin(struct slot *s)
{
	if (s->req.type == NBD_CMD_WRITE && s->req.length) {
		s->stage = ST_PAYLOAD;
		s->c->payload = s;
		return;
	}
	slot_submit(s);
}

static void conn_kill(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why && *why)
		log_info("client %d: %s; closing the connection", c->fd, why);
	c->dead = true;
	(void)shutdown(c->fd, SHUT_RDWR);
}

/* --- input --- */

static uint32_t rbuf_avail(const struct conn *c)
{
	return c->rend - c->rpos;
}

static void conn_enter_tx(struct conn *c)
{
	struct nbd_hs_result res;

	nbd_hs_result(c->hs, &res);
	c->sess.size = store_size(c->st);
	c->sess.tflags = res.tflags;
	c->sess.structured = res.structured;
	c->sess.meta_id = res.meta_id;
	c->in_tx = true;
}

static bool step_handshake(struct conn *c)
{
	size_t out, want = nbd_hs_want(c->hs);

	(void)nbd_hs_output(c->hs, &out);
	if (c->send_busy || out || rbuf_avail(c) < want)
		return false;
	switch (nbd_hs_feed(c->hs, c->rbuf + c->rpos, want)) {
	case NBD_HS_MORE:
		break;
	case NBD_HS_DONE:
		conn_enter_tx(c);
		break;
	case NBD_HS_CLOSE:
		c->close_after_send = true;
		(void)nbd_hs_output(c->hs, &out);
		if (!out)
			conn_kill(c, nbd_hs_error(c->hs));
		else if (*nbd_hs_error(c->hs))
			log_info("client %d: %s", c->fd, nbd_hs_error(c->hs));
		return false;
	}
	c->rpos += (uint32_t)want;
	return true;
}

/* A WRITE's payload is in: on to the replicator and the disk. */
static void payload_done(struct conn *c)
{
	struct slot *s = c->payload;

	c->payload = NULL;
	s->done = 0;
	slot_submit(s);
}

static bool step_payload(struct conn *c)
{
	struct slot *s = c->payload;
	uint64_t left = s->req.length - s->done;
	uint32_t n = rbuf_avail(c) < left ? rbuf_avail(c) : (uint32_t)left;

	memcpy(s->buf + s->done, c->rbuf + c->rpos, n);
	c->rpos += n;
	s->done += n;
	if (s->done < s->req.length)
		return false;
	payload_done(c);
	return true;
}

static bool step_discard(struct conn *c)
{
	uint32_t n = rbuf_avail(c) < c->discard ? rbuf_avail(c) : (uint32_t)c->discard;

	c->rpos += n;
	c->discard -= n;
	return c->discard == 0;
}

static bool step_request(struct conn *c)
{
	struct nbd_request req;
	struct nbd_check chk;
	struct slot *s;

	if (rbuf_avail(c) < NBD_REQUEST_SIZE || !c->nfree)
		return false;
	if (nbd_request_decode(c->rbuf + c->rpos, &req) < 0) {
		conn_kill(c, "bad request magic");
		return false;
	}
	if (req.type == NBD_CMD_DISC) {
		c->rpos += NBD_REQUEST_SIZE;
		c->stopping = true;
		return false;
	}
	nbd_request_check(&req, &c->sess, &chk);
	if (chk.verdict == NBD_V_DISCONNECT) {
		conn_kill(c, "WRITE payload far beyond the 32 MiB maximum");
		return false;
	}
	/* Over quota: leave the header unread until replies go out. */
	if (chk.verdict == NBD_V_OK && c->held &&
	    c->held + nbd_request_buf_len(&req) > CONN_QUOTA)
		return false;
	c->rpos += NBD_REQUEST_SIZE;
	s = slot_take(c);
	s->req = req;
	if (chk.verdict == NBD_V_REJECT) {
		log_debug("client %d: %s rejected with error %u", c->fd,
			  nbd_cmd_name(req.type), chk.error);
		c->discard = chk.payload;	/* keep the stream in sync */
		s->error = chk.error;
		slot_reply(s);
		return true;
	}
	if (nbd_request_buf_len(&req)) {
		c->held += nbd_request_buf_len(&req);
		s->buf = c->host->get_buffer(c->host->arg, c, nbd_request_buf_len(&req));
		if (!s->buf) {
			s->stage = ST_WAIT_BUF;
			c->blocked = s;
			return false;
		}
	}
	slot_begin(s);
	return true;
}

static bool conn_step(struct conn *c)
{
	if (c->dead || c->blocked || c->parked || c->close_after_send)
		return false;
	if (!c->in_tx)
		return step_handshake(c);
	if (c->discard)
		return step_discard(c);
	if (c->payload)
		return step_payload(c);
	if (c->stopping)
		return false;
	return step_request(c);
}

static void conn_arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe;
	struct slot *p = c->payload;

	if (c->dead || c->recv_busy || c->blocked || c->parked || c->close_after_send)
		return;
	if (c->stopping && !p && !c->discard)
		return;
	if (c->rpos == c->rend)
		c->rpos = c->rend = 0;
	sqe = loop_sqe(c->host->loop, &c->recv_op);
	if (p && c->rpos == c->rend && p->req.length - p->done >= DIRECT_RECV_MIN) {
		io_uring_prep_recv(sqe, c->fd, p->buf + p->done, p->req.length - p->done,
				   MSG_WAITALL);
		c->recv_direct = true;
	} else {
		rbuf_compact(c->rbuf, RBUF_SIZE, &c->rpos, &c->rend);
		io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rend, RBUF_SIZE - c->rend, 0);
		c->recv_direct = false;
	}
	c->recv_busy = true;
	c->pending++;
}

/* End of input: the client closed, or our own shutdown(SHUT_RD). */
static void conn_on_eof(struct conn *c)
{
	if (!c->stopping || !c->in_tx) {
		conn_kill(c, NULL);
		return;
	}
	/* A half-received WRITE can never complete: drop it unanswered. */
	if (c->payload) {
		slot_release(c->payload);
		c->payload = NULL;
	}
	c->discard = 0;
}

static void conn_on_recv(struct conn *c, int res)
{
	c->recv_busy = false;
	if (c->dead || res == -EAGAIN || res == -EINTR || res == -ENOBUFS)
		return;
	if (res < 0) {
		conn_kill(c, strerror(-res));
		return;
	}
	if (res == 0)
		return conn_on_eof(c);
	if (!c->recv_direct) {
		c->rend += (uint32_t)res;
		return;
	}
	c->payload->done += (uint64_t)res;
	if (c->payload->done == c->payload->req.length)
		payload_done(c);
}

/* --- output --- */

static void conn_submit_send(struct conn *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->host->loop, &c->send_op);

	c->msg.msg_iov = c->iov + c->iov_pos;
	c->msg.msg_iovlen = c->iov_cnt - c->iov_pos;
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	c->send_busy = true;
	c->pending++;
}

/* Sends pending handshake output, else a batch of queued replies. */
static void conn_kick_send(struct conn *c)
{
	size_t out = 0;
	const uint8_t *hs_out = c->hs ? nbd_hs_output(c->hs, &out) : NULL;

	if (c->send_busy || c->dead)
		return;
	c->iov_cnt = c->iov_pos = c->nbatch = 0;
	c->sending_hs = out > 0;
	if (c->sending_hs) {
		iov_push(c->iov, &c->iov_cnt, hs_out, out);
	} else {
		while (c->q_head != NOSLOT && c->iov_cnt + 2 <= SEND_IOVS) {
			struct slot *s = &c->slots[c->q_head];

			c->batch[c->nbatch++] = c->q_head;
			c->q_head = s->next;
			iov_push(c->iov, &c->iov_cnt, s->hdr, s->hdr_len);
			if (s->data_len)
				iov_push(c->iov, &c->iov_cnt, s->buf, s->data_len);
		}
	}
	if (c->iov_cnt)
		conn_submit_send(c);
}

static void conn_release_batch(struct conn *c)
{
	for (unsigned i = 0; i < c->nbatch; i++)
		slot_release(&c->slots[c->batch[i]]);
	c->nbatch = 0;
}

static void conn_hs_sent(struct conn *c, size_t n)
{
	size_t out;

	nbd_hs_consume(c->hs, n);
	(void)nbd_hs_output(c->hs, &out);
	if (out)
		return;
	if (c->close_after_send)
		conn_kill(c, nbd_hs_error(c->hs));
	else if (c->in_tx) {
		nbd_hs_free(c->hs);
		c->hs = NULL;
	}
}

static void conn_on_send(struct conn *c, int res)
{
	size_t n = res > 0 ? (size_t)res : 0;

	c->send_busy = false;
	if (res == -EAGAIN || res == -EINTR) {
		if (!c->dead)
			conn_submit_send(c);
		return;
	}
	if (res < 0 || c->dead) {
		conn_release_batch(c);
		conn_kill(c, res < 0 && res != -EPIPE && res != -ECONNRESET ?
				     strerror(-res) : NULL);
		return;
	}
	if (c->sending_hs)
		return conn_hs_sent(c, n);
	if (!iov_advance(c->iov, &c->iov_pos, c->iov_cnt, n))
		return conn_submit_send(c);	/* short send */
	conn_release_batch(c);
}

/* --- lifecycle --- */

/* The connection's memory, once none of its operations is in flight. */
static void conn_free(struct conn *c)
{
	if (!c)
		return;
	nbd_hs_free(c->hs);
	free(c->rbuf);
	free(c);
}

/* Its owner is freed without running the loop again (node_abandon()):
 * its operations never complete; its buffers go with the pool. */
void conn_abandon(struct conn *c)
{
	close(c->fd);
	conn_free(c);
}

static void conn_destroy(struct conn *c)
{
	/* Replies never sent: their slots still hold buffers. */
	while (c->q_head != NOSLOT) {
		struct slot *s = &c->slots[c->q_head];

		c->q_head = s->next;
		slot_release(s);
	}
	if (c->blocked)
		slot_release(c->blocked);
	if (c->parked) {
		if (c->host->repl->abandon)
			c->host->repl->abandon(c->host->repl_arg, &c->parked->rr);
		slot_release(c->parked);
	}
	if (c->payload)
		slot_release(c->payload);
	c->host->gone(c->host->arg, c);
	close(c->fd);
	conn_free(c);
}

static bool conn_finished(const struct conn *c)
{
	return c->stopping && c->nfree == CONN_SLOTS && !c->send_busy && !c->payload;
}

/* Replies completed in one batch of completions leave in one SENDMSG: the
 * server calls conn_flush() once the batch is drained. */
static void conn_send_later(struct conn *c)
{
	size_t out = 0;

	if (c->hs)
		(void)nbd_hs_output(c->hs, &out);
	if (c->flush_queued || c->send_busy || (c->q_head == NOSLOT && !out))
		return;
	c->flush_queued = true;
	c->host->flush_later(c->host->arg, c);
}

void conn_flush(struct conn *c)
{
	c->flush_queued = false;
	conn_kick_send(c);
}

static void conn_after(struct conn *c)
{
	if (!c->dead) {
		while (conn_step(c))
			;
		conn_send_later(c);
		conn_arm_recv(c);
		if (conn_finished(c))
			conn_kill(c, NULL);
	}
	if (c->dead && c->pending == 0)
		conn_destroy(c);
}

static void conn_recv_done(struct ioop *op, int res)
{
	struct conn *c = container_of(op, struct conn, recv_op);

	c->pending--;
	c->progress += res > 0;
	conn_on_recv(c, res);
	conn_after(c);
}

static void conn_send_done(struct ioop *op, int res)
{
	struct conn *c = container_of(op, struct conn, send_op);

	c->pending--;
	c->progress += res > 0;
	conn_on_send(c, res);
	conn_after(c);
}

static void slot_done(struct ioop *op, int res)
{
	struct slot *s = container_of(op, struct slot, op);
	struct conn *c = s->c;

	c->pending--;
	c->progress++;
	if (c->dead && s->remote)
		s->local_done = true;	/* released when the peer answers */
	else if (c->dead)
		slot_release(s);
	else
		slot_io_done(s, res);
	conn_after(c);
}

void repl_done(struct repl_req *rr, int err)
{
	struct slot *s = container_of(rr, struct slot, rr);
	struct conn *c = s->c;

	/* A peer's error or a lost link leaves the range out of sync (the
	 * node recorded it); the client gets the local result, or EIO. */
	s->error = err == REPL_FAILED ? NBD_EIO : s->error;
	c->pending--;
	s->remote = false;
	if (s->local_done) {
		s->local_done = false;
		if (c->dead)
			slot_release(s);
		else
			slot_reply(s);
	}
	conn_after(c);
}

void conn_repl_retry(struct conn *c)
{
	struct slot *s = c->parked;

	c->parked = NULL;
	if (s && !c->dead) {
		slot_submit(s);
	} else if (s) {
		if (c->host->repl->abandon)
			c->host->repl->abandon(c->host->repl_arg, &s->rr);
		slot_release(s);
	}
	conn_after(c);
}

void conn_resume(struct conn *c, void *buf)
{
	struct slot *s = c->blocked;

	c->blocked = NULL;
	s->buf = buf;
	slot_begin(s);
	conn_after(c);
}

void conn_tick(struct conn *c, bool contended)
{
	size_t held = c->held - (c->blocked ? nbd_request_buf_len(&c->blocked->req) : 0);

	if (!c->in_tx && ++c->hs_ticks > CONN_HANDSHAKE_TICKS) {
		conn_kill(c, "no NBD handshake within 10 s"); /* CONN_HANDSHAKE_TICKS */
	} else if (c->progress != c->seen_progress || !contended || !held) {
		c->seen_progress = c->progress;
		c->stalled_ticks = 0;
	} else if (++c->stalled_ticks >= CONN_STALL_TICKS && !c->dead) {
		log_warn("client %d: holds %zu KiB of buffers that other clients wait for "
			 "and made no progress for %d s; dropping it",
			 c->fd, held >> 10, CONN_STALL_TICKS);
		conn_kill(c, NULL);
	}
	conn_after(c);
}

void conn_stop(struct conn *c, bool hard)
{
	if (hard || !c->in_tx) {
		conn_kill(c, NULL);
	} else if (!c->stopping) {
		c->stopping = true;
		/* Completes the pending RECV; requests in flight finish. */
		(void)shutdown(c->fd, SHUT_RD);
	}
	conn_after(c);
}

static struct conn *conn_alloc(const struct conn_host *h, int fd, bool handshake)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c || !(c->rbuf = malloc(RBUF_SIZE)) ||
	    (handshake && !(c->hs = nbd_hs_new(h->exp)))) {
		log_err("client %d: out of memory", fd);
		conn_free(c);
		close(fd);
		return NULL;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->host = h;
	c->st = h->st;
	c->fd = fd;
	c->recv_op.done = conn_recv_done;
	c->send_op.done = conn_send_done;
	c->q_head = c->q_tail = NOSLOT;
	c->nfree = CONN_SLOTS;
	for (uint16_t i = 0; i < CONN_SLOTS; i++) {
		c->slots[i].op.done = slot_done;
		c->slots[i].c = c;
		c->slots[i].next = (uint16_t)(i + 1 < CONN_SLOTS ? i + 1 : NOSLOT);
	}
	return c;
}

struct conn *conn_new(const struct conn_host *h, int fd)
{
	struct conn *c = conn_alloc(h, fd, true);

	if (c)
		conn_after(c);
	return c;
}

struct conn *conn_new_tx(const struct conn_host *h, int fd, uint16_t tflags)
{
	struct conn *c = conn_alloc(h, fd, false);

	if (c) {
		c->sess.size = store_size(c->st);
		c->sess.tflags = tflags;
		c->in_tx = true;
		conn_after(c);
	}
	return c;
}

