/* The volume as /dev/nbdN: one end of a socketpair goes to the kernel's
 * NBD client (nbd/kernel.h), the other is served by the node's NBD server
 * as a client already in the transmission phase.  Daemon-level: -1 with a
 * one-line reason in err. */
#ifndef BLKREP_ATTACH_H
#define BLKREP_ATTACH_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct nbdk_params;

/* Transmission flags the kernel is told the server honours. */
uint16_t attach_tflags(void);

/* Attaches srv's volume as /dev/nbd<*index> (*index -1: any free one).
 * Before that, the daemon makes itself safe to serve a block device it may
 * itself need memory from (PR_SET_IO_FLUSHER, mlockall). */
int attach_device(struct server *srv, int *index, const struct nbdk_params *p, char *err,
		  size_t len);

struct fusefile;

/* `attach --loop`: the volume as mountpoint/volume (FUSE); the caller
 * binds a loop device to it off the loop (fusefile_bind()).  NULL on
 * failure. */
struct fusefile *attach_loop(struct server *srv, const char *mountpoint, uint64_t size,
			     char *err, size_t len);

/* After a restart: gives the still-attached /dev/nbd<index> a new socket
 * served by srv (its old one died with the old daemon). */
int attach_reconnect(struct server *srv, int index, const struct nbdk_params *p, char *err,
		     size_t len);

#endif
