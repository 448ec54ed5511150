/* `blkrep attach --loop`, for kernels without the nbd module: the volume as
 * a single file, MOUNTPOINT/volume, in a FUSE file system (libfuse3), bound
 * to a loop device, so that a file system can be made and mounted on it.
 *
 * The FUSE side runs in a thread of its own and is an ordinary NBD client
 * of the node's server, over one end of a socketpair the server adopted
 * (attach.h): every read, write, fsync and fallocate becomes an NBD
 * request, so it is replicated like any other.  One request at a time.
 * Daemon-level: -1 with a one-line reason in err. */
#ifndef BLKREP_FUSEFILE_H
#define BLKREP_FUSEFILE_H

#include <stddef.h>
#include <stdint.h>

struct fusefile;

/* Mounts the file system at mountpoint (created if missing), serving size
 * bytes through the NBD socket nbd_fd (taken, also on failure). */
struct fusefile *fusefile_start(const char *mountpoint, int nbd_fd, uint64_t size, char *err,
				size_t len);

/* Binds a free loop device to the file and returns its number, or -1 with
 * the reason in err.  It flushes the file, which goes to the NBD server:
 * never call it from the thread that runs the server's loop (offload.h). */
int fusefile_bind(struct fusefile *f, char *err, size_t len);

/* Unbinds the loop device: -1 if it is still in use (mounted).  Same
 * caveat as fusefile_bind(). */
int fusefile_unbind(struct fusefile *f, char *err, size_t len);

/* Unmounts and stops the thread (the loop device unbound first). */
void fusefile_stop(struct fusefile *f);

/* The loop device bound, or -1. */
int fusefile_loop(const struct fusefile *f);

/* What a daemon killed while attached with --loop left at mountpoint: a
 * loop device over its dead FUSE file is unbound (or, while a file system
 * is still mounted on it, set to clear itself once released), and the dead
 * mount is removed.  Logs one line per thing found; returns how many. */
int fusefile_reap(const char *mountpoint);

#endif
