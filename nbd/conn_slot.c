/* A request's life on a connection: its slot and buffer, the disk
 * operation (READ/WRITE resubmitted on short transfers, FLUSH, CACHE,
 * zeroing with its fallbacks, BLOCK_STATUS inline), the hand-off to the
 * replicator, and its reply queued in completion order.  See conn.c for
 * the connection around it. */
#include "nbd/conn_int.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include "utils/loop.h"
#include "nbd/store.h"

struct slot *slot_take(struct conn *c)
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

/* Bytes of buffer a request needs before it can start. */
uint32_t req_buf_len(const struct nbd_request *r)
{
	switch (r->type) {
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
		return r->length;
	case NBD_CMD_BLOCK_STATUS:
		return STATUS_BUF;
	default:
		return 0;
	}
}

void slot_release(struct slot *s)
{
	struct conn *c = s->c;
	void *buf = s->buf;

	if (s->in_repl) {
		c->host->repl_end(c->host->arg, &s->rr);
		s->in_repl = false;
	}
	s->stage = ST_FREE;
	s->buf = NULL;
	if (buf)
		c->held -= req_buf_len(&s->req);
	s->next = c->free_head;
	c->free_head = (uint16_t)(s - c->slots);
	c->nfree++;
	if (buf)
		c->host->put_buffer(c->host->arg, buf);
}

static void reply_structured(struct slot *s)
{
	const struct nbd_request *r = &s->req;

	if (s->error) {
		nbd_chunk_encode(s->hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, r->cookie, 6);
		put_be32(s->hdr + 20, s->error);
		put_be16(s->hdr + 24, 0);
		s->hdr_len = 26;
		s->data_len = 0;
	} else if (r->type == NBD_CMD_BLOCK_STATUS) {
		nbd_chunk_encode(s->hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS,
				 r->cookie, s->data_len);
		s->hdr_len = 20;
	} else if (r->length == 0) {
		nbd_chunk_encode(s->hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r->cookie, 0);
		s->hdr_len = 20;
	} else {
		nbd_chunk_encode(s->hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
				 r->cookie, 8 + r->length);
		put_be64(s->hdr + 20, r->offset);
		s->hdr_len = 28;
		s->data_len = r->length;
	}
}

/* Queues the reply; the request is finished (written, read, flushed)
 * here, and on the peer if it was replicated: until the peer answers, the
 * reply waits (sync replication). */
void slot_reply(struct slot *s)
{
	struct conn *c = s->c;
	uint16_t idx = (uint16_t)(s - c->slots);
	uint16_t t = s->req.type;

	if (s->remote) {
		s->local_done = true;
		return;
	}
	if (s->in_repl) {
		c->host->repl_end(c->host->arg, &s->rr);
		s->in_repl = false;
	}

	if (c->sess.structured && (t == NBD_CMD_READ || t == NBD_CMD_BLOCK_STATUS)) {
		reply_structured(s);
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

/* BLOCK_STATUS from SEEK_DATA/SEEK_HOLE.  These lseeks do not wait for
 * data I/O, so they run inline rather than on a helper thread. */
static void slot_block_status(struct slot *s)
{
	uint64_t off = s->req.offset, end = off + s->req.length;
	int max = s->req.flags & NBD_CMD_FLAG_REQ_ONE ? 1 : STATUS_MAX, n = 0;

	put_be32(s->buf, s->c->sess.meta_id);
	while (off < end && n < max) {
		bool hole;
		uint64_t len = store_extent(s->c->st, off, end - off, &hole);

		put_be32(s->buf + 4 + 8 * n, (uint32_t)len);
		put_be32(s->buf + 8 + 8 * n, hole ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0);
		off += len;
		n++;
	}
	s->data_len = 4 + 8 * (uint32_t)n;
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
	int fd = store_fd_for(s->c->st, r->offset, r->length);
	enum store_zero m = store_zero_method(s->c->st, s->zero,
					      r->flags & NBD_CMD_FLAG_NO_HOLE);
	uint64_t left = r->length - s->done;
	unsigned chunk = (unsigned)(left < STORE_ZERO_BUF ? left : STORE_ZERO_BUF);

	s->zero = (uint8_t)m;
	if (m != STORE_ZERO_WRITE) {
		io_uring_prep_fallocate(sqe, fd, store_zero_mode(m), (off_t)r->offset,
					(off_t)r->length);
		return;
	}
	io_uring_prep_write(sqe, store_fd_for(s->c->st, r->offset + s->done, chunk),
			    store_zero_buf(), chunk, r->offset + s->done);
}

static bool is_replicated(uint16_t type)
{
	return type == NBD_CMD_WRITE || type == NBD_CMD_TRIM ||
	       type == NBD_CMD_WRITE_ZEROES || type == NBD_CMD_FLUSH;
}

/* Hands a write-type request or FLUSH to the replicator, once.  Returns
 * false if it overlaps a write in flight: the connection parks it. */
static bool slot_replicate(struct slot *s)
{
	const struct nbd_request *r = &s->req;
	enum repl_verdict rc;

	if (s->repl_started || !is_replicated(r->type))
		return true;
	s->rr = (struct repl_req){
		.type = r->type,
		.flags = r->flags & (NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE),
		.length = r->length,
		.offset = r->offset,
		.payload = s->buf,
	};
	rc = s->c->host->repl_begin(s->c->host->arg, s->c, &s->rr);
	if (rc == REPL_BUSY) {
		s->c->parked = s;
		return false;
	}
	s->repl_started = true;
	s->in_repl = r->type != NBD_CMD_FLUSH;
	if (rc == REPL_SENT) {
		s->remote = true;
		s->c->pending++;	/* the connection lives until the answer */
	}
	return true;
}

/* Starts (or continues) the disk work of a request whose buffer and
 * payload are ready. */
void slot_submit(struct slot *s)
{
	const struct nbd_request *r = &s->req;
	struct store *st = s->c->st;
	struct io_uring_sqe *sqe;
	uint64_t off = r->offset + s->done, left = r->length - s->done;
	int fd = store_fd_for(st, off, left);

	if (r->type == NBD_CMD_BLOCK_STATUS)
		return slot_block_status(s);
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

void slot_io_done(struct slot *s, int res)
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
		s->c->host->flush_done(s->c->host->arg, res < 0 ? res : 0);
		return res < 0 ? slot_fail(s, res) : slot_reply(s);
	default:
		return res < 0 ? slot_fail(s, res) : slot_reply(s);
	}
}

/* The buffer is there: receive the payload, or start the disk work. */
void slot_begin(struct slot *s)
{
	if (s->req.type == NBD_CMD_WRITE && s->req.length) {
		s->stage = ST_PAYLOAD;
		s->c->payload = s;
		return;
	}
	slot_submit(s);
}
