/* The node's block devices: /dev/nbdN through the kernel's NBD client (its
 * index is kept in the node's superblock, through the host), a loop device
 * over FUSE (`attach --loop`), LINK_DEAD, and writing a save file back
 * (`restore-saved`), with the thread that does their blocking parts.
 * Daemon-level: failures are answered on the control request or logged. */
#ifndef BLKREP_DEVICES_H
#define BLKREP_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct control_req;
struct loop;
struct server;

/* What the devices ask of the node that owns them.  All required; arg is
 * the one given to devices_new(). */
struct devices_host {
	/* The primary's NBD export, or NULL when not primary. */
	struct server *(*export)(void *arg);
	uint64_t (*export_bytes)(void *arg);	     /* the size it offers */
	int (*nbd_index)(void *arg);		     /* the /dev/nbdN recorded, or -1 */
	void (*set_nbd_index)(void *arg, int index); /* records it (may be -1) */
	bool (*stopping)(void *arg);
	void (*stop)(void *arg); /* `down --detach`: the loop device is detached */
};

struct devices;

/* resource and node (the names in the device's backend string and run
 * paths) must outlive the devices.  NULL on failure. */
struct devices *devices_new(struct loop *loop, const struct config *cfg, const char *resource,
			    const char *node, const struct devices_host *host, void *arg);
/* Unbinds a loop device still bound (lazily) and stops its FUSE file;
 * waits for a thread still running.  NULL is ignored. */
void devices_free(struct devices *d);

/* A device operation (bind, unbind, restore) runs on the thread. */
bool devices_busy(const struct devices *d);
/* /dev/nbdN or a loop device is attached (or being bound). */
bool devices_attached(const struct devices *d);
/* True when the device is a loop device of `attach --loop`; *index its N. */
bool devices_loop(const struct devices *d, int *index);

/* The control requests: each answers req, now or once the thread is done. */
void devices_cmd_attach(struct devices *d, struct control_req *req, int argc, char *const *argv);
void devices_cmd_detach(struct devices *d, struct control_req *req);
/* `down --detach` with a loop device: req is answered once it is
 * detached, and then the host's stop() runs. */
void devices_detach_loop(struct devices *d, struct control_req *req, bool down);
/* Detaches /dev/nbdN; false (with the reason in err) if that failed. */
bool devices_detach(struct devices *d, char *err, size_t len);
/* `restore-saved [--force] FILE` (argv[0] the command's name) and its
 * progress.  A file whose header names another resource, or a node that is
 * not one of this resource's, is refused unless --force. */
void devices_restore(struct devices *d, struct control_req *req, int argc, char *const *argv);
void devices_restore_progress(struct devices *d, struct control_req *req);

/* A primary (re)started with its device attached: the kernel kept the
 * device and its I/O waiting; give it a new socket, or forget it. */
void devices_reattach(struct devices *d);

#endif
