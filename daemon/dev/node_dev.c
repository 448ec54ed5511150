/* The node's block devices (see node_int.h): /dev/nbdN through the
 * kernel's NBD client, a loop device over FUSE, LINK_DEAD, and writing
 * save files back. */
#include "daemon/node_int.h"

/* --- /dev/nbdN --- */

static void node_nbdk_params(const struct node *n, struct nbdk_params *p, char *backend, size_t len)
{
	snprintf(backend, len, "blkrep:%s/%s", n->sb.resource, n->sb.node);
	*p = (struct nbdk_params){
		.size = n->export_bytes,
		.tflags = attach_tflags(),
		.timeout_s = config_timeout_s(n->cfg),
		.dead_conn_timeout_s = config_dead_conn_timeout_s(n->cfg),
		.backend = backend,
	};
}

static void node_arm_monitor(struct node *n)
{
	io_uring_prep_poll_add(loop_sqe(n->loop, &n->mon_op), nbdk_monitor_fd(n->mon), POLLIN);
}

static void node_link_dead(void *arg, int index)
{
	struct node *n = arg;

	if (index != n->sb.nbd_index)
		return;
	log_warn("the kernel gave up on /dev/nbd%d's socket (a request took longer than "
		 "timeout = %u s): reconnecting it",
		 index, config_timeout_s(n->cfg));
	node_reattach(n);
}

static void node_on_monitor(struct ioop *op, int res)
{
	struct node *n = container_of(op, struct node, mon_op);

	(void)res;
	nbdk_monitor_read(n->mon, node_link_dead, n);
	if (!n->stopping)
		node_arm_monitor(n);
}

/* Listens for LINK_DEAD once a device is attached (netlink only). */
static void node_watch_device(struct node *n)
{
	char err[256];

	if (n->mon || n->sb.nbd_index < 0)
		return;
	n->mon = nbdk_monitor_open(err, sizeof(err));
	if (!n->mon) {
		log_warn("%s", err);
		return;
	}
	n->mon_op.done = node_on_monitor;
	node_arm_monitor(n);
}

/* `attach --loop`: for kernels without nbd.ko.  Not kept in metadata: the
 * FUSE file dies with the daemon, so a restart cannot keep it.  Binding
 * the loop device flushes the file, which this loop serves: a thread does
 * it, and the request is answered when it is done. */
static int ff_bind_work(void *arg)
{
	struct node *n = arg;

	return fusefile_bind(n->ff, n->ff_err, sizeof(n->ff_err));
}

static void ff_bind_done(void *arg, int rc)
{
	struct node *n = arg;
	struct control_req *req = n->ff_req;

	n->ff_req = NULL;
	if (rc < 0) {
		fusefile_stop(n->ff);
		n->ff = NULL;
		control_reply(req, false, "%s", n->ff_err);
		return;
	}
	n->loop_index = rc;
	log_info("attached as /dev/loop%d (FUSE file under the run directory)", rc);
	control_reply(req, true, "/dev/loop%d", rc);
}

static void node_attach_loop(struct node *n, struct control_req *req)
{
	char mnt[256], err[512];

	if (node_run_path(mnt, sizeof(mnt), n->sb.resource, n->sb.node, "fuse") < 0) {
		control_reply(req, false, "run directory path too long");
		return;
	}
	n->ff = attach_loop(n->srv, mnt, n->export_bytes, err, sizeof(err));
	if (!n->ff) {
		control_reply(req, false, "%s", err);
		return;
	}
	n->ff_req = req;
	if (offload_run(n->off, ff_bind_work, ff_bind_done, n) < 0) {
		snprintf(n->ff_err, sizeof(n->ff_err), "cannot start a thread");
		ff_bind_done(n, -1);
	}
}

static int ff_unbind_work(void *arg)
{
	struct node *n = arg;

	return fusefile_unbind(n->ff, n->ff_err, sizeof(n->ff_err));
}

static void ff_unbind_done(void *arg, int rc)
{
	struct node *n = arg;
	struct control_req *req = n->ff_req;

	n->ff_req = NULL;
	if (rc < 0) {
		control_reply(req, false, "%s", n->ff_err);
		return;
	}
	fusefile_stop(n->ff);
	n->ff = NULL;
	log_info("detached /dev/loop%d", n->loop_index);
	if (!n->ff_down) {
		control_reply(req, true, "/dev/loop%d detached", n->loop_index);
		return;
	}
	control_reply(req, true, "/dev/loop%d detached; stopping", n->loop_index);
	n->up->stop(n);
}

/* Detaches the loop device of `attach --loop`; req is answered later. */
void node_detach_loop(struct node *n, struct control_req *req, bool down)
{
	n->ff_req = req;
	n->ff_down = down;
	if (offload_run(n->off, ff_unbind_work, ff_unbind_done, n) < 0)
		control_reply(req, false, "a device operation is already running");
}

void node_cmd_attach(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	struct nbdk_params p;
	char backend[160], err[512];
	int index = -1;
	bool loop = argc == 2 && strcmp(argv[1], "--loop") == 0;

	if (argc > 2 || (argc == 2 && !loop && (index = nbdk_parse_device(argv[1])) < 0)) {
		control_reply(req, false, "usage: blkrep attach [/dev/nbdN | --loop]");
		return;
	}
	if (!n->primary || !n->srv) {
		control_reply(req, false,
			      "only a primary attaches the volume: run blkrep primary first");
		return;
	}
	if (n->sb.nbd_index >= 0 || n->ff) {
		control_reply(req, false, "already attached as %s%d",
			      n->ff ? "/dev/loop" : "/dev/nbd",
			      n->ff ? n->loop_index : (int)n->sb.nbd_index);
		return;
	}
	if (offload_busy(n->off)) {
		control_reply(req, false, "a device operation is running");
		return;
	}
	if (loop)
		return node_attach_loop(n, req);
	node_nbdk_params(n, &p, backend, sizeof(backend));
	if (attach_device(n->srv, &index, &p, err, sizeof(err)) < 0) {
		control_reply(req, false, "%s", err);
		return;
	}
	n->sb.nbd_index = index;
	(void)node_save_sb(n);
	log_info("attached as /dev/nbd%d", index);
	node_watch_device(n);
	control_reply(req, true, "/dev/nbd%d", index);
}

/* Detaches the device; false (with the reason in err) if that failed. */
bool node_detach(struct node *n, char *err, size_t len)
{
	if (n->sb.nbd_index < 0)
		return true;
	if (nbdk_disconnect(n->sb.nbd_index, err, len) < 0)
		return false;
	log_info("detached /dev/nbd%d", (int)n->sb.nbd_index);
	n->sb.nbd_index = -1;
	(void)node_save_sb(n);
	return true;
}

void node_cmd_detach(struct node *n, struct control_req *req)
{
	char err[512];
	int was = n->sb.nbd_index;

	if (n->ff)
		node_detach_loop(n, req, false);
	else if (was < 0)
		control_reply(req, false, "no device is attached");
	else if (!node_detach(n, err, sizeof(err)))
		control_reply(req, false, "%s", err);
	else
		control_reply(req, true, "/dev/nbd%d detached", was);
}

/* A device the kernel connected for this node that its metadata does not
 * name: the daemon died between CONNECT and saving the index. */
static void node_find_orphan(struct node *n, const char *backend)
{
	int index;

	if (n->sb.nbd_index >= 0 || !n->primary || (index = nbdk_find_backend(backend)) < 0)
		return;
	log_warn("/dev/nbd%d is connected for this node (%s) but its metadata names no "
		 "device (the daemon stopped in the middle of attach): reattaching it",
		 index, backend);
	n->sb.nbd_index = index;
	(void)node_save_sb(n);
}

/* A primary restarted with its device attached: the kernel has kept the
 * device and its I/O waiting (DEAD_CONN_TIMEOUT); give it a new socket. */
void node_reattach(struct node *n)
{
	struct nbdk_params p;
	char backend[160], err[512];

	if (!n->srv)
		return;
	node_nbdk_params(n, &p, backend, sizeof(backend));
	node_find_orphan(n, backend);
	if (n->sb.nbd_index < 0)
		return;
	if (attach_reconnect(n->srv, n->sb.nbd_index, &p, err, sizeof(err)) == 0) {
		log_info("reattached /dev/nbd%d", (int)n->sb.nbd_index);
		node_watch_device(n);
		return;
	}
	/* The kernel no longer holds it for us (disconnected, timed out, or
	 * another boot): forget it, so that it does not pin this node's role. */
	log_err("cannot reattach /dev/nbd%d: %s; forgetting it", (int)n->sb.nbd_index, err);
	n->sb.nbd_index = -1;
	(void)node_save_sb(n);
}
