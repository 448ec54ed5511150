/* A minimal blocking NBD client for a socket already in the transmission
 * phase (no handshake, simple replies only): what the FUSE file and
 * `restore-saved` use to go through the node's own server, so that what
 * they write is replicated like any client's.  One request at a time. */
#ifndef BLKREP_NBD_CLIENT_H
#define BLKREP_NBD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes (out) or reads len bytes at p on a blocking descriptor, retrying
 * short transfers and EINTR.  Returns 0, or -EIO on an error or EOF. */
int nbd_io_all(int fd, void *p, size_t len, bool out);

/* Sends one request (payload out for a WRITE) and reads its simple reply
 * (and the data into in for a READ).  *cookie is incremented per request.
 * Returns 0, -errno from the reply's NBD error, or -EIO when the stream
 * broke. */
int nbd_client_call(int fd, uint64_t *cookie, uint16_t type, uint16_t flags, uint64_t off,
		    uint32_t len, const void *out, void *in);

#endif
