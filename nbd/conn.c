/* One NBD client connection on the server's io_uring.
 *
 * Input: one RECV at a time fills rbuf; the pump parses the handshake, then
 * request headers, copying small WRITE payloads out of rbuf and receiving
 * large ones straight into their buffer.  The next header is parsed while
 * earlier requests' disk I/O is in flight, up to CONN_SLOTS requests.
 *
 * Output: replies queue in completion order (the cookie matches them) and
 * go out as one SENDMSG batch at a time: never two sends in flight on one
 * socket, because a short send would interleave them.
 *
 * Every entry point ends in conn_after(), which moves the connection on and
 * frees it once it is dead and nothing of it is in flight.
 *
 * A request's own life (buffer, disk, replication, reply) is conn_slot.c;
 * the two share nbd/conn_int.h. */
#include "nbd/conn_int.h"

#include <errno.h>
#include <fcntl.h>
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
#include "nbd/request.h"
#include "nbd/wire.h"
#include "utils/bufio.h"
#include "utils/log.h"

static void conn_after(struct conn *c);

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
	c->payload = NULL;
	s->done = 0;
	slot_submit(s);
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
	    c->held + req_buf_len(&req) > CONN_QUOTA)
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
	if (req_buf_len(&req)) {
		c->held += req_buf_len(&req);
		s->buf = c->host->get_buffer(c->host->arg, c, req_buf_len(&req));
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
	if (c->payload->done == c->payload->req.length) {
		struct slot *s = c->payload;

		c->payload = NULL;
		s->done = 0;
		slot_submit(s);
	}
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
		c->host->repl_abandon(c->host->arg, &c->parked->rr);
		slot_release(c->parked);
	}
	if (c->payload)
		slot_release(c->payload);
	c->host->gone(c->host->arg, c);
	close(c->fd);
	nbd_hs_free(c->hs);
	free(c->rbuf);
	free(c);
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

void conn_repl_done(struct repl_req *rr, int err)
{
	struct slot *s = container_of(rr, struct slot, rr);
	struct conn *c = s->c;

	/* A peer's error or a lost link leaves the range out of sync (the
	 * node recorded it); the local result is what the client gets. */
	(void)err;
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
	if (s && !c->dead)
		slot_submit(s);
	else if (s)
		slot_release(s);
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
	size_t held = c->held - (c->blocked ? req_buf_len(&c->blocked->req) : 0);

	if (c->progress != c->seen_progress || !contended || !held) {
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
		if (c)
			free(c->rbuf);
		free(c);
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


