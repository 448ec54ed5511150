/* The torture tool's NBD connections: connect to a unix socket or a TCP
 * HOST:PORT and do the fixed newstyle handshake with NBD_OPT_GO, so that
 * the socket is left in the transmission phase (simple replies). */
#ifndef BLKREP_TORTURE_TNBD_H
#define BLKREP_TORTURE_TNBD_H

#include <stddef.h>
#include <stdint.h>

struct tnbd_target {
	const char *socket_path; /* or NULL */
	const char *hostport;	 /* "HOST:PORT", "[v6]:PORT"; used when socket_path is NULL */
	const char *export_name; /* "" for the default export */
};

/* Connects and negotiates.  Returns a blocking socket, with the export's
 * size and transmission flags in *size and *flags; or -1 with a one-line
 * reason in err (errlen bytes). */
int tnbd_open(const struct tnbd_target *t, uint64_t *size, uint16_t *flags, char *err,
	      size_t errlen);

#endif
