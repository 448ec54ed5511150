/* Request validation, in the order the NBD spec implies: framing first
 * (payload length), then command and flags, then permissions, then range. */
#include "request.h"

static uint16_t allowed_flags(uint16_t type)
{
	switch (type) {
	case NBD_CMD_READ:
		return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF;
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
	case NBD_CMD_FLUSH:
	case NBD_CMD_CACHE:
		return NBD_CMD_FLAG_FUA;
	case NBD_CMD_WRITE_ZEROES:
		return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
	case NBD_CMD_BLOCK_STATUS:
		return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
	default:
		return 0;
	}
}

static bool is_write(uint16_t type)
{
	return type == NBD_CMD_WRITE || type == NBD_CMD_TRIM ||
	       type == NBD_CMD_WRITE_ZEROES;
}

/* Returns the NBD error for a request whose framing is fine, or 0. */
static uint32_t check_semantics(const struct nbd_request *req, const struct nbd_session *s)
{
	uint64_t end = req->offset + req->length;
	bool past_end = end < req->offset || end > s->size;

	if (req->type > NBD_CMD_BLOCK_STATUS || req->type == NBD_CMD_DISC)
		return NBD_EINVAL;
	if (req->flags & ~allowed_flags(req->type))
		return NBD_EINVAL;
	if ((req->flags & NBD_CMD_FLAG_DF) && !s->structured)
		return NBD_EINVAL;
	if (is_write(req->type) && (s->tflags & NBD_FLAG_READ_ONLY))
		return NBD_EPERM;
	if (req->type == NBD_CMD_FLUSH)
		return req->offset || req->length ? NBD_EINVAL : 0;
	if (req->type == NBD_CMD_WRITE && req->length > NBD_MAX_PAYLOAD)
		return NBD_EINVAL;
	if (req->type == NBD_CMD_READ && req->length > NBD_MAX_PAYLOAD)
		return s->structured ? NBD_EOVERFLOW : NBD_EINVAL;
	if (req->type == NBD_CMD_BLOCK_STATUS && (!s->meta_id || !req->length))
		return NBD_EINVAL;
	if (past_end)
		return req->type == NBD_CMD_WRITE || req->type == NBD_CMD_WRITE_ZEROES ?
			       NBD_ENOSPC : NBD_EINVAL;
	return 0;
}

void nbd_request_check(const struct nbd_request *req, const struct nbd_session *s,
		       struct nbd_check *out)
{
	out->verdict = NBD_V_OK;
	out->error = 0;
	out->payload = req->type == NBD_CMD_WRITE ? req->length : 0;

	if (req->type == NBD_CMD_DISC)
		return;
	if (out->payload > NBD_DISCONNECT_PAYLOAD) {
		out->verdict = NBD_V_DISCONNECT;
		return;
	}
	out->error = check_semantics(req, s);
	if (out->error)
		out->verdict = NBD_V_REJECT;
}

uint16_t nbd_export_tflags(bool read_only, bool structured)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
		     NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_SEND_CACHE |
		     NBD_FLAG_CAN_MULTI_CONN;

	if (read_only)
		f |= NBD_FLAG_READ_ONLY;
	if (structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

uint32_t nbd_request_buf_len(const struct nbd_request *r)
{
	switch (r->type) {
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
		return r->length;
	case NBD_CMD_BLOCK_STATUS:
		return NBD_STATUS_BUF;
	default:
		return 0;
	}
}

bool nbd_request_mirrored(uint16_t type)
{
	return is_write(type) || type == NBD_CMD_FLUSH;
}
