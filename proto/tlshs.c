/* One TLS handshake on the event loop.  See tlshs.h.
 *
 * At most one RECV and one SENDMSG in flight.  The records are read
 * exactly: first a 5-byte header, then its body, each fed to TLS whole.
 * Output is sent before the next record is read, which a TLS 1.3
 * handshake allows (each side's flight is complete before it waits). */
#include "proto/tlshs.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/tls.h"
#include "utils/clock.h"
#include "utils/ioop.h"
#include "utils/loop.h"

#define OUT_SIZE (16U << 10)

struct tlshs {
	struct ioop recv_op, send_op;
	struct loop *loop;
	int fd;
	struct tls *tls;
	void (*done)(void *arg, struct tlshs *hs);
	void *arg;
	uint64_t started_ms;
	unsigned pending;
	bool finished, ok, aborted;
	bool failing; /* sending the alert that says why, then finish */
	uint32_t have, need; /* bytes of rec received; of the record */
	uint32_t out_pos, out_len;
	char err[TLS_ERR_MAX];
	uint8_t out[OUT_SIZE];
	uint8_t rec[TLS_HDR_SIZE + TLS_RECORD_MAX];
};

static void finish(struct tlshs *hs, bool ok, const char *why)
{
	if (hs->finished)
		return;
	hs->finished = true;
	hs->ok = ok;
	if (!ok) {
		if (why != hs->err)
			snprintf(hs->err, sizeof(hs->err), "%s", why);
		(void)shutdown(hs->fd, SHUT_RDWR);
	}
}

static void recv_arm(struct tlshs *hs)
{
	struct io_uring_sqe *sqe = loop_sqe(hs->loop, &hs->recv_op);

	hs->pending++;
	io_uring_prep_recv(sqe, hs->fd, hs->rec + hs->have, hs->need - hs->have, 0);
}

static void send_arm(struct tlshs *hs)
{
	struct io_uring_sqe *sqe = loop_sqe(hs->loop, &hs->send_op);

	hs->pending++;
	io_uring_prep_send(sqe, hs->fd, hs->out + hs->out_pos, hs->out_len - hs->out_pos,
			   MSG_NOSIGNAL);
}

/* Sends what TLS wrote, if anything; true if a send is now in flight. */
static bool flush_out(struct tlshs *hs)
{
	if (hs->out_pos == hs->out_len) {
		hs->out_pos = 0;
		hs->out_len = (uint32_t)tls_out_take(hs->tls, hs->out, OUT_SIZE);
	}
	if (hs->out_len == 0)
		return false;
	send_arm(hs);
	return true;
}

/* Runs TLS on what arrived, then sends its answer or reads on. */
static void step(struct tlshs *hs)
{
	switch (tls_handshake(hs->tls)) {
	case TLS_STEP_DONE:
		if (!flush_out(hs))
			finish(hs, true, "");
		return;
	case TLS_STEP_FAIL:
		snprintf(hs->err, sizeof(hs->err), "%s", tls_error(hs->tls));
		hs->failing = true;
		if (!flush_out(hs)) /* else the alert goes first */
			finish(hs, false, hs->err);
		return;
	case TLS_STEP_MORE:
		if (flush_out(hs))
			return;
		hs->have = 0;
		hs->need = TLS_HDR_SIZE;
		recv_arm(hs);
		return;
	}
}

/* The last step of every handler: tells the owner, or frees an abandoned
 * handshake, once nothing is in flight. */
static void after(struct tlshs *hs)
{
	if (hs->pending)
		return;
	if (hs->aborted)
		return tlshs_free(hs);
	if (hs->finished)
		hs->done(hs->arg, hs);
}

static void on_recv(struct ioop *op, int res)
{
	struct tlshs *hs = container_of(op, struct tlshs, recv_op);
	const char *bad;
	int len;

	hs->pending--;
	if (hs->finished || hs->aborted) {
		/* moot */
	} else if (res == -EINTR || res == -EAGAIN) {
		recv_arm(hs);
	} else if (res <= 0) {
		finish(hs, false, res == 0 ? "the peer closed the connection during the TLS handshake"
					   : "receive failed during the TLS handshake");
	} else if ((hs->have += (uint32_t)res) < hs->need) {
		recv_arm(hs);
	} else if (hs->need == TLS_HDR_SIZE) {
		len = tls_record_len(hs->rec, &bad);
		if (len < 0) {
			finish(hs, false, bad);
		} else {
			hs->need += (uint32_t)len;
			if (len)
				recv_arm(hs);
			else
				finish(hs, false, "empty TLS record");
		}
	} else if (tls_feed(hs->tls, hs->rec, hs->have) < 0) {
		finish(hs, false, tls_error(hs->tls));
	} else {
		step(hs);
	}
	after(hs);
}

static void on_send(struct ioop *op, int res)
{
	struct tlshs *hs = container_of(op, struct tlshs, send_op);

	hs->pending--;
	if (hs->finished || hs->aborted) {
		/* moot */
	} else if (res == -EINTR || res == -EAGAIN) {
		send_arm(hs);
	} else if (res < 0) {
		finish(hs, false, "send failed during the TLS handshake");
	} else if ((hs->out_pos += (uint32_t)res) < hs->out_len) {
		send_arm(hs);
	} else if (flush_out(hs)) {
		/* more of the flight */
	} else if (hs->failing) {
		finish(hs, false, hs->err);
	} else {
		step(hs); /* everything out: done, or read the answer */
	}
	after(hs);
}

struct tlshs *tlshs_start(struct loop *loop, int fd, struct tls *t,
			  void (*done)(void *arg, struct tlshs *hs), void *arg)
{
	struct tlshs *hs = calloc(1, sizeof(*hs));

	if (!hs)
		return NULL;
	hs->loop = loop;
	hs->fd = fd;
	hs->tls = t;
	hs->done = done;
	hs->arg = arg;
	hs->recv_op.done = on_recv;
	hs->send_op.done = on_send;
	hs->started_ms = clock_now_ms();
	step(hs); /* the client's hello; the server reads */
	if (hs->finished && !hs->pending) {
		/* Failed at once: report from the loop, as promised. */
		hs->pending++;
		io_uring_prep_nop(loop_sqe(loop, &hs->recv_op));
	}
	return hs;
}

bool tlshs_ok(const struct tlshs *hs)
{
	return hs->ok;
}

const char *tlshs_error(const struct tlshs *hs)
{
	return hs->err;
}

uint64_t tlshs_started_ms(const struct tlshs *hs)
{
	return hs->started_ms;
}

void tlshs_take(struct tlshs *hs, int *fd, struct tls **t)
{
	*fd = hs->fd;
	*t = hs->tls;
	hs->fd = -1;
	hs->tls = NULL;
	tlshs_free(hs);
}

void tlshs_free(struct tlshs *hs)
{
	if (!hs)
		return;
	if (hs->fd >= 0)
		close(hs->fd);
	tls_free(hs->tls);
	explicit_bzero(hs->rec, sizeof(hs->rec));
	free(hs);
}

void tlshs_abort(struct tlshs *hs)
{
	hs->aborted = true;
	(void)shutdown(hs->fd, SHUT_RDWR);
	if (!hs->pending)
		tlshs_free(hs);
}
