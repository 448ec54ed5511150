/* The replies that are more than a simple reply header: structured replies
 * (READ data, BLOCK_STATUS, errors) and BLOCK_STATUS's extent descriptors.
 * A connection's requests call these; they call nothing of the
 * connection's.  No I/O but the store's SEEK_DATA/SEEK_HOLE lseeks. */
#ifndef BLKREP_NBD_REPLY_H
#define BLKREP_NBD_REPLY_H

#include <stdint.h>

#include "nbd/request.h"

struct store;

/* The largest structured reply header reply_structured() writes. */
#define REPLY_HDR_MAX		32
/* BLOCK_STATUS descriptors in one reply at most. */
#define REPLY_STATUS_MAX	256

/* Encodes the one structured reply chunk of r: an error chunk (error, an
 * NBD error, non-zero), BLOCK_STATUS with *data_len bytes of descriptors,
 * or READ's OFFSET_DATA (NONE for an empty read).  Returns the header's
 * length; *data_len: the bytes of payload that follow it. */
uint32_t reply_structured(uint8_t hdr[REPLY_HDR_MAX], const struct nbd_request *r, uint32_t error,
			  uint32_t *data_len);

/* Fills buf (NBD_STATUS_BUF bytes, nbd/request.h) with r's BLOCK_STATUS payload for the
 * base:allocation context meta_id, from the store's holes: at most one
 * descriptor with NBD_CMD_FLAG_REQ_ONE.  Returns its length in bytes. */
uint32_t reply_block_status(const struct store *st, uint32_t meta_id,
			    const struct nbd_request *r, uint8_t *buf);

#endif
