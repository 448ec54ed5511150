/* The kernel's NBD client: handing it one end of a socket so that the
 * volume appears as /dev/nbdN, taking it back, and giving a device whose
 * server died a new socket (see ../shared/NBD.md, "The kernel NBD client").
 *
 * The handshake is skipped: the daemon serves the other end of the socket
 * already in the transmission phase, with the flags passed here.  Generic
 * netlink (libnl-genl) is used; where the kernel lacks the "nbd" family
 * the legacy ioctls are, with a thread blocked in NBD_DO_IT for each
 * device.  Daemon-level: -1 with a one-line reason in err. */
#ifndef BLKREP_NBD_KERNEL_H
#define BLKREP_NBD_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nbdk_params {
	uint64_t size;		/* bytes */
	uint64_t tflags;	/* NBD transmission flags the server honours */
	unsigned timeout_s;	/* per request */
	unsigned dead_conn_timeout_s;	/* I/O waits this long for a new socket */
	const char *backend;	/* BACKEND_IDENTIFIER, repeated by reconfigure */
};

/* Loads the nbd module if /sys/module/nbd is missing (modprobe nbd).
 * Returns 0, or -1 with a reason: on a kernel without it, one line that
 * points to `blkrep attach --loop`. */
int nbdk_ensure_module(char *err, size_t len);

/* Attaches fd as /dev/nbd<*index> (*index -1: the kernel picks a free
 * device; the one chosen is returned in *index).  *legacy tells whether
 * the ioctls had to be used (no netlink interface here): such a device
 * cannot be reconfigured after a restart.  Returns 0 or -1. */
int nbdk_connect(int fd, const struct nbdk_params *p, int *index, bool *legacy, char *err,
		 size_t len);

/* Gives the attached device index a new socket fd, once its old one is
 * dead (netlink only). */
int nbdk_reconfigure(int index, int fd, const struct nbdk_params *p, char *err, size_t len);

/* Detaches /dev/nbd<index>. */
int nbdk_disconnect(int index, char *err, size_t len);

/* LINK_DEAD: the kernel gave up on a device's socket (a request timed out
 * on a live but slow server) and waits DEAD_CONN_TIMEOUT for a new one.
 * A monitor is a netlink socket in the "nbd" multicast group: poll its fd,
 * then nbdk_monitor_read() calls dead(arg, index) for each such event. */
struct nbdk_monitor;

/* NULL (with the reason in err) where there is no netlink interface. */
struct nbdk_monitor *nbdk_monitor_open(char *err, size_t len);
int nbdk_monitor_fd(const struct nbdk_monitor *m);
void nbdk_monitor_read(struct nbdk_monitor *m, void (*dead)(void *arg, int index), void *arg);
void nbdk_monitor_close(struct nbdk_monitor *m);

/* Parses "/dev/nbdN" or "nbdN" into N; -1 if it is neither. */
int nbdk_parse_device(const char *dev);

/* True if /dev/nbd<index> has a socket attached (from sysfs: its pid file). */
bool nbdk_in_use(int index);

/* The index of a /dev/nbdN in use whose backend identifier (sysfs
 * "backend", set by CONNECT) is backend; -1 if there is none. */
int nbdk_find_backend(const char *backend);

#endif
