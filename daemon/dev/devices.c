/* The node's block devices (see devices.h): /dev/nbdN through the kernel's
 * NBD client, a loop device over FUSE, LINK_DEAD, and writing save files
 * back. */
#include "daemon/dev/devices.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <liburing.h>
#include "daemon/config.h"
#include "daemon/ctl/control.h"
#include "daemon/dev/attach.h"
#include "daemon/dev/fusefile.h"
#include "daemon/meta/savefile.h"
#include "daemon/node.h"
#include "nbd/client.h"
#include "nbd/kernel.h"
#include "nbd/server.h"
#include "nbd/wire.h"
#include "utils/ioop.h"
#include "utils/log.h"
#include "utils/strbuf.h"
#include "utils/loop.h"
#include "utils/offload.h"

/* What became of the last restore-saved. */
enum restore_state { RESTORE_NONE, RESTORE_RUNNING, RESTORE_DONE, RESTORE_FAILED };

struct devices {
	const struct devices_host *host;
	void *arg;
	struct loop *loop;
	const struct config *cfg;
	const char *resource, *node;
	struct fusefile *ff;	  /* `attach --loop` */
	int loop_index;		  /* its /dev/loopN */
	struct offload *off;	  /* binds and unbinds it off the loop */
	struct nbdk_monitor *mon; /* LINK_DEAD events for /dev/nbdN */
	struct ioop mon_op;
	struct control_req *ff_req; /* the request waiting for that */
	bool ff_down;		    /* ... which is `down --detach` */
	char ff_err[512];	    /* the thread's failure (restore-saved's too) */
	char restore_path[512];	    /* `restore-saved`, running off the loop */
	enum restore_state restore_state;
	uint64_t restore_limit; /* the export's size, read on the loop */
	uint64_t restore_bytes;
	uint64_t restore_cookie;
	int restore_fd;
};

/* A daemon killed while attached with --loop left its loop device and
 * FUSE mount: clean them up (fusefile_reap()). */
static void devices_reap(const struct devices *d)
{
	char mnt[256];

	if (control_run_path(mnt, sizeof(mnt), d->resource, d->node, "fuse") == 0)
		(void)fusefile_reap(mnt);
}

struct devices *devices_new(struct loop *loop, const struct config *cfg, const char *resource,
			    const char *node, const struct devices_host *host, void *arg)
{
	struct devices *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->host = host;
	d->arg = arg;
	d->loop = loop;
	d->cfg = cfg;
	d->resource = resource;
	d->node = node;
	d->restore_fd = -1;
	d->off = offload_new(loop);
	if (!d->off) {
		free(d);
		return NULL;
	}
	devices_reap(d);
	return d;
}

void devices_free(struct devices *d)
{
	char err[512];

	if (!d)
		return;
	/* A loop device still bound keeps the FUSE file busy: unmount lazily. */
	if (d->ff && fusefile_unbind(d->ff, err, sizeof(err)) < 0)
		log_warn("%s", err);
	if (d->ff)
		fusefile_stop(d->ff);
	offload_free(d->off);
	nbdk_monitor_close(d->mon);
	free(d);
}

bool devices_busy(const struct devices *d)
{
	return offload_busy(d->off);
}

bool devices_attached(const struct devices *d)
{
	return d->host->nbd_index(d->arg) >= 0 || d->ff;
}

bool devices_loop(const struct devices *d, int *index)
{
	*index = d->loop_index;
	return d->ff != NULL;
}

/* --- /dev/nbdN --- */

static void devices_nbdk_params(const struct devices *d, struct nbdk_params *p, char *backend,
				size_t len)
{
	snprintf(backend, len, "blkrep:%s/%s", d->resource, d->node);
	*p = (struct nbdk_params){
		.size = d->host->export_bytes(d->arg),
		.tflags = attach_tflags(),
		.timeout_s = config_timeout_s(d->cfg),
		.dead_conn_timeout_s = config_dead_conn_timeout_s(d->cfg),
		.backend = backend,
	};
}

static void devices_arm_monitor(struct devices *d)
{
	io_uring_prep_poll_add(loop_sqe(d->loop, &d->mon_op), nbdk_monitor_fd(d->mon), POLLIN);
}

static void devices_link_dead(void *arg, int index)
{
	struct devices *d = arg;

	if (index != d->host->nbd_index(d->arg))
		return;
	log_warn("the kernel gave up on /dev/nbd%d's socket (a request took longer than "
		 "timeout = %u s): reconnecting it",
		 index, config_timeout_s(d->cfg));
	devices_reattach(d);
}

static void devices_on_monitor(struct ioop *op, int res)
{
	struct devices *d = container_of(op, struct devices, mon_op);

	(void)res;
	nbdk_monitor_read(d->mon, devices_link_dead, d);
	if (!d->host->stopping(d->arg))
		devices_arm_monitor(d);
}

/* Listens for LINK_DEAD once a device is attached (netlink only). */
static void devices_watch(struct devices *d)
{
	char err[256];

	if (d->mon || d->host->nbd_index(d->arg) < 0)
		return;
	d->mon = nbdk_monitor_open(err, sizeof(err));
	if (!d->mon) {
		log_warn("%s", err);
		return;
	}
	d->mon_op.done = devices_on_monitor;
	devices_arm_monitor(d);
}

/* `attach --loop`: for kernels without nbd.ko.  Not kept in metadata: the
 * FUSE file dies with the daemon, so a restart cannot keep it.  Binding
 * the loop device flushes the file, which this loop serves: a thread does
 * it, and the request is answered when it is done. */
static int ff_bind_work(void *arg)
{
	struct devices *d = arg;

	return fusefile_bind(d->ff, d->ff_err, sizeof(d->ff_err));
}

static void ff_bind_done(void *arg, int rc)
{
	struct devices *d = arg;
	struct control_req *req = d->ff_req;

	d->ff_req = NULL;
	if (rc < 0) {
		fusefile_stop(d->ff);
		d->ff = NULL;
		control_reply(req, false, "%s", d->ff_err);
		return;
	}
	d->loop_index = rc;
	log_info("attached as /dev/loop%d (FUSE file under the run directory)", rc);
	control_reply(req, true, "/dev/loop%d", rc);
}

static void devices_attach_loop(struct devices *d, struct server *srv, struct control_req *req)
{
	char mnt[256], err[512];

	if (control_run_path(mnt, sizeof(mnt), d->resource, d->node, "fuse") < 0) {
		control_reply(req, false, "run directory path too long");
		return;
	}
	d->ff = attach_loop(srv, mnt, d->host->export_bytes(d->arg), err, sizeof(err));
	if (!d->ff) {
		control_reply(req, false, "%s", err);
		return;
	}
	d->ff_req = req;
	if (offload_run(d->off, ff_bind_work, ff_bind_done, d) < 0) {
		snprintf(d->ff_err, sizeof(d->ff_err), "cannot start a thread");
		ff_bind_done(d, -1);
	}
}

static int ff_unbind_work(void *arg)
{
	struct devices *d = arg;

	return fusefile_unbind(d->ff, d->ff_err, sizeof(d->ff_err));
}

static void ff_unbind_done(void *arg, int rc)
{
	struct devices *d = arg;
	struct control_req *req = d->ff_req;

	d->ff_req = NULL;
	if (rc < 0) {
		control_reply(req, false, "%s", d->ff_err);
		return;
	}
	fusefile_stop(d->ff);
	d->ff = NULL;
	log_info("detached /dev/loop%d", d->loop_index);
	if (!d->ff_down) {
		control_reply(req, true, "/dev/loop%d detached", d->loop_index);
		return;
	}
	control_reply(req, true, "/dev/loop%d detached; stopping", d->loop_index);
	d->host->stop(d->arg);
}

void devices_detach_loop(struct devices *d, struct control_req *req, bool down)
{
	d->ff_req = req;
	d->ff_down = down;
	if (offload_run(d->off, ff_unbind_work, ff_unbind_done, d) < 0)
		control_reply(req, false, "a device operation is already running");
}

void devices_cmd_attach(struct devices *d, struct control_req *req, int argc, char *const *argv)
{
	struct server *srv = d->host->export(d->arg);
	struct nbdk_params p;
	char backend[160], err[512];
	int index = -1, attached = d->host->nbd_index(d->arg);
	bool loop = argc == 2 && strcmp(argv[1], "--loop") == 0;

	if (argc > 2 || (argc == 2 && !loop && (index = nbdk_parse_device(argv[1])) < 0)) {
		control_reply(req, false, "usage: blkrep attach [/dev/nbdN | --loop]");
		return;
	}
	if (!srv) {
		control_reply(req, false,
			      "only a primary attaches the volume: run blkrep primary first");
		return;
	}
	if (attached >= 0 || d->ff) {
		control_reply(req, false, "already attached as %s%d",
			      d->ff ? "/dev/loop" : "/dev/nbd", d->ff ? d->loop_index : attached);
		return;
	}
	if (offload_busy(d->off)) {
		control_reply(req, false, "a device operation is running");
		return;
	}
	if (loop)
		return devices_attach_loop(d, srv, req);
	devices_nbdk_params(d, &p, backend, sizeof(backend));
	if (attach_device(srv, &index, &p, err, sizeof(err)) < 0) {
		control_reply(req, false, "%s", err);
		return;
	}
	d->host->set_nbd_index(d->arg, index);
	log_info("attached as /dev/nbd%d", index);
	devices_watch(d);
	control_reply(req, true, "/dev/nbd%d", index);
}

bool devices_detach(struct devices *d, char *err, size_t len)
{
	int index = d->host->nbd_index(d->arg);

	if (index < 0)
		return true;
	if (nbdk_disconnect(index, err, len) < 0)
		return false;
	log_info("detached /dev/nbd%d", index);
	d->host->set_nbd_index(d->arg, -1);
	return true;
}

void devices_cmd_detach(struct devices *d, struct control_req *req)
{
	char err[512];
	int was = d->host->nbd_index(d->arg);

	if (d->ff)
		devices_detach_loop(d, req, false);
	else if (was < 0)
		control_reply(req, false, "no device is attached");
	else if (!devices_detach(d, err, sizeof(err)))
		control_reply(req, false, "%s", err);
	else
		control_reply(req, true, "/dev/nbd%d detached", was);
}

/* A device the kernel connected for this node that its metadata does not
 * name: the daemon died between CONNECT and saving the index.  Only a
 * primary has an export, so only a primary claims it. */
static void devices_find_orphan(struct devices *d, const char *backend)
{
	int index;

	if (d->host->nbd_index(d->arg) >= 0 || !d->host->export(d->arg) ||
	    (index = nbdk_find_backend(backend)) < 0)
		return;
	log_warn("/dev/nbd%d is connected for this node (%s) but its metadata names no "
		 "device (the daemon stopped in the middle of attach): reattaching it",
		 index, backend);
	d->host->set_nbd_index(d->arg, index);
}

void devices_reattach(struct devices *d)
{
	struct server *srv = d->host->export(d->arg);
	struct nbdk_params p;
	char backend[160], err[512];
	int index;

	if (!srv)
		return;
	devices_nbdk_params(d, &p, backend, sizeof(backend));
	devices_find_orphan(d, backend);
	index = d->host->nbd_index(d->arg);
	if (index < 0)
		return;
	if (attach_reconnect(srv, index, &p, err, sizeof(err)) == 0) {
		log_info("reattached /dev/nbd%d", index);
		devices_watch(d);
		return;
	}
	/* The kernel no longer holds it for us (disconnected, timed out, or
	 * another boot): forget it, so that it does not pin this node's role. */
	log_err("cannot reattach /dev/nbd%d: %s; forgetting it", index, err);
	d->host->set_nbd_index(d->arg, -1);
}

/* --- restore-saved --- */

/* `restore-saved FILE` on a primary: the saved writes go through the NBD
 * server like a client's (so they are replicated), from a thread, as they
 * are served by this loop. */
static int restore_write(void *arg, uint64_t off, uint32_t len, const uint8_t *data, char *err,
			 size_t errlen)
{
	struct devices *d = arg;
	int rc = nbd_client_call(d->restore_fd, &d->restore_cookie, NBD_CMD_WRITE, 0, off, len,
				 data, NULL);

	if (rc < 0)
		snprintf(err, errlen, "writing %u bytes at %" PRIu64 ": %s", len, off,
			 strerror(-rc));
	return rc < 0 ? -1 : 0;
}

static int restore_work(void *arg)
{
	struct devices *d = arg;
	int rc = savefile_read(d->restore_path, d->restore_limit, restore_write, d,
			       &d->restore_bytes, d->ff_err, sizeof(d->ff_err));

	if (rc == 0 && nbd_client_call(d->restore_fd, &d->restore_cookie, NBD_CMD_FLUSH, 0, 0, 0,
				       NULL, NULL) < 0) {
		snprintf(d->ff_err, sizeof(d->ff_err), "the final flush failed");
		rc = -1;
	}
	close(d->restore_fd);
	return rc;
}

static void restore_done(void *arg, int rc)
{
	struct devices *d = arg;

	d->restore_state = rc < 0 ? RESTORE_FAILED : RESTORE_DONE;
	if (rc < 0)
		log_err("restore-saved %s: %s", d->restore_path, d->ff_err);
	else
		log_info("restored %" PRIu64 " bytes from %s", d->restore_bytes, d->restore_path);
}

void devices_restore_progress(struct devices *d, struct control_req *req)
{
	if (d->restore_state == RESTORE_RUNNING)
		control_reply(req, true, "running 0 0"); /* the thread owns the count */
	else if (d->restore_state == RESTORE_DONE)
		control_reply(req, true, "done restored %" PRIu64 " bytes from %s",
			      d->restore_bytes, d->restore_path);
	else if (d->restore_state == RESTORE_FAILED)
		control_reply(req, false, "%s (%" PRIu64 " bytes were written back before that)",
			      d->ff_err, d->restore_bytes);
	else
		control_reply(req, false, "no restore-saved has run");
}

/* Whether the save file at path was written by a node of this resource;
 * if not, why, in err. */
static bool restore_ours(const struct devices *d, const char *path, char *err, size_t len)
{
	char res[SAVEFILE_NAME], node[SAVEFILE_NAME], names[8 * SAVEFILE_NAME] = "";
	struct strbuf o = STRBUF_INIT(names, sizeof(names));
	bool ours = false;

	if (savefile_names(path, res, node, err, len) < 0)
		return false;
	for (unsigned i = 0; i < config_node_count(d->cfg); i++) {
		const char *name = config_node_by_index(d->cfg, i)->name;

		ours |= strcmp(node, name) == 0;
		strbuf_printf(&o, "%s%s", i ? ", " : "", name);
	}
	if (strcmp(res, d->resource) == 0 && ours)
		return true;
	snprintf(err, len,
		 "%s holds data saved by %s/%s, not by a node of %s (%s): "
		 "restore-saved --force FILE writes it here anyway",
		 path, res, node, d->resource, names);
	return false;
}

void devices_restore(struct devices *d, struct control_req *req, int argc, char *const *argv)
{
	struct server *srv = d->host->export(d->arg);
	bool force = argc == 3 && strcmp(argv[1], "--force") == 0;
	const char *path = argv[argc - 1];
	char err[1024];
	int sv[2];

	if ((argc != 2 || argv[1][0] == '-') && !force) {
		control_reply(req, false, "usage: blkrep restore-saved [--force] FILE");
		return;
	}
	if (!force && !restore_ours(d, path, err, sizeof(err))) {
		control_reply(req, false, "%s", err);
		return;
	}
	if (!srv || offload_busy(d->off)) {
		control_reply(req, false, "%s",
			      !srv ? "only a primary writes saved data back"
				   : "another device operation is running");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    server_adopt(srv, sv[0], attach_tflags()) < 0) {
		control_reply(req, false, "cannot reach the NBD server: %s", strerror(errno));
		return;
	}
	snprintf(d->restore_path, sizeof(d->restore_path), "%s", path);
	d->restore_fd = sv[1];
	d->restore_bytes = 0;
	d->restore_limit = d->host->export_bytes(d->arg);
	if (offload_run(d->off, restore_work, restore_done, d) < 0) {
		close(sv[1]);
		control_reply(req, false, "cannot start a thread");
		return;
	}
	d->restore_state = RESTORE_RUNNING;
	control_reply(req, true, "writing back %s through %s/%s", d->restore_path, d->resource,
		      d->node);
}
