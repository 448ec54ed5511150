/* The kernel's NBD client, over generic netlink or ioctls.  See kernel.h. */
#include "kernel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/nbd.h>
#include <linux/nbd-netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

extern char **environ;

int nbdk_parse_device(const char *dev)
{
	const char *p = strncmp(dev, "/dev/", 5) == 0 ? dev + 5 : dev;
	char *end;
	long n;

	if (strncmp(p, "nbd", 3) != 0 || p[3] < '0' || p[3] > '9')
		return -1;
	n = strtol(p + 3, &end, 10);
	return *end || n > 65535 ? -1 : (int)n;
}

bool nbdk_in_use(int index)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/block/nbd%d/pid", index);
	return stat(path, &st) == 0;
}

int nbdk_find_backend(const char *backend)
{
	char path[64], id[256];
	size_t want = strlen(backend);
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int found = -1;

	while (d && found < 0 && (e = readdir(d))) {
		int index = nbdk_parse_device(e->d_name);
		FILE *f;

		if (index < 0 || !nbdk_in_use(index))
			continue;
		snprintf(path, sizeof(path), "/sys/block/nbd%d/backend", index);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(id, sizeof(id), f) && strncmp(id, backend, want) == 0 &&
		    (id[want] == '\n' || id[want] == '\0'))
			found = index;
		fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

int nbdk_ensure_module(char *err, size_t len)
{
	char *const argv[] = { "modprobe", "nbd", NULL };
	struct stat st;
	pid_t pid;
	int status;

	if (stat("/sys/module/nbd", &st) == 0)
		return 0;
	if (posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ) == 0 &&
	    waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	    stat("/sys/module/nbd", &st) == 0)
		return 0;
	snprintf(err, len, "this kernel has no nbd module (modprobe nbd failed): use "
		 "`blkrep attach --loop` for a loop device over FUSE instead");
	return -1;
}

/* --- generic netlink --- */

/* What became of a netlink command: the callers fall back to ioctls on
 * NLR_ABSENT. */
enum nl_result {
	NLR_FAILED = -1, /* reason in err */
	NLR_DONE = 0,
	NLR_ABSENT = 1,	 /* the kernel has no "nbd" netlink family */
};

static enum nl_result nl_open(struct nl_sock **sk, int *family, char *err, size_t len)
{
	*sk = nl_socket_alloc();
	if (!*sk || genl_connect(*sk) < 0) {
		snprintf(err, len, "cannot open a generic netlink socket");
		nl_socket_free(*sk);
		return NLR_FAILED;
	}
	*family = genl_ctrl_resolve(*sk, "nbd");
	if (*family < 0) {
		nl_socket_free(*sk);
		return NLR_ABSENT;
	}
	return NLR_DONE;
}

static int on_reply(struct nl_msg *msg, void *arg)
{
	struct nlattr *a[NBD_ATTR_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, a, NBD_ATTR_MAX, NULL) == 0 && a[NBD_ATTR_INDEX])
		*(int *)arg = (int)nla_get_u32(a[NBD_ATTR_INDEX]);
	return NL_OK;
}

static int put_params(struct nl_msg *m, int fd, const struct nbdk_params *p, bool sizes)
{
	struct nlattr *socks, *item;

	if (sizes && (nla_put_u64(m, NBD_ATTR_SIZE_BYTES, p->size) < 0 ||
		      nla_put_u64(m, NBD_ATTR_BLOCK_SIZE_BYTES, 4096) < 0 ||
		      nla_put_u64(m, NBD_ATTR_SERVER_FLAGS, p->tflags) < 0 ||
		      nla_put_u64(m, NBD_ATTR_TIMEOUT, p->timeout_s) < 0 ||
		      nla_put_u64(m, NBD_ATTR_DEAD_CONN_TIMEOUT, p->dead_conn_timeout_s) < 0))
		return -1;
	if (nla_put_string(m, NBD_ATTR_BACKEND_IDENTIFIER, p->backend) < 0 ||
	    !(socks = nla_nest_start(m, NBD_ATTR_SOCKETS)) ||
	    !(item = nla_nest_start(m, NBD_SOCK_ITEM)) || nla_put_u32(m, NBD_SOCK_FD, (uint32_t)fd) < 0)
		return -1;
	nla_nest_end(m, item);
	nla_nest_end(m, socks);
	return 0;
}

/* Sends one NBD netlink command. */
static enum nl_result nl_command(uint8_t cmd, int fd, int *index, const struct nbdk_params *p,
				 char *err, size_t len)
{
	struct nl_sock *sk;
	struct nl_msg *m;
	int family, rc;
	enum nl_result res = nl_open(&sk, &family, err, len);

	if (res != NLR_DONE)
		return res;
	m = nlmsg_alloc();
	if (!m || !genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, cmd, 0) ||
	    (*index >= 0 && nla_put_u32(m, NBD_ATTR_INDEX, (uint32_t)*index) < 0) ||
	    (p && put_params(m, fd, p, cmd == NBD_CMD_CONNECT) < 0)) {
		snprintf(err, len, "cannot build the netlink message");
		nlmsg_free(m);
		nl_socket_free(sk);
		return NLR_FAILED;
	}
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_reply, index);
	rc = nl_send_sync(sk, m);	/* frees m */
	nl_socket_free(sk);
	if (rc < 0) {
		snprintf(err, len, "the kernel refused: %s", nl_geterror(rc));
		return NLR_FAILED;
	}
	return NLR_DONE;
}

/* --- LINK_DEAD events --- */

struct nbdk_monitor {
	struct nl_sock *sk;
	void (*dead)(void *arg, int index);
	void *arg;
};

static int on_event(struct nl_msg *msg, void *arg)
{
	struct nbdk_monitor *m = arg;
	struct genlmsghdr *g = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *a[NBD_ATTR_MAX + 1];

	if (g->cmd == NBD_CMD_LINK_DEAD &&
	    genlmsg_parse(nlmsg_hdr(msg), 0, a, NBD_ATTR_MAX, NULL) == 0 && a[NBD_ATTR_INDEX])
		m->dead(m->arg, (int)nla_get_u32(a[NBD_ATTR_INDEX]));
	return NL_OK;
}

struct nbdk_monitor *nbdk_monitor_open(char *err, size_t len)
{
	struct nbdk_monitor *m = calloc(1, sizeof(*m));
	int grp;

	if (!m || !(m->sk = nl_socket_alloc()) || genl_connect(m->sk) < 0 ||
	    (grp = genl_ctrl_resolve_grp(m->sk, "nbd", "nbd_mc_group")) < 0 ||
	    nl_socket_add_membership(m->sk, grp) < 0) {
		snprintf(err, len, "cannot listen for NBD link events (no netlink interface)");
		nbdk_monitor_close(m);
		return NULL;
	}
	nl_socket_disable_seq_check(m->sk);
	(void)nl_socket_set_nonblocking(m->sk);
	nl_socket_modify_cb(m->sk, NL_CB_VALID, NL_CB_CUSTOM, on_event, m);
	return m;
}

int nbdk_monitor_fd(const struct nbdk_monitor *m)
{
	return nl_socket_get_fd(m->sk);
}

void nbdk_monitor_read(struct nbdk_monitor *m, void (*dead)(void *arg, int index), void *arg)
{
	m->dead = dead;
	m->arg = arg;
	while (nl_recvmsgs_default(m->sk) >= 0)
		;	/* until it would block */
}

void nbdk_monitor_close(struct nbdk_monitor *m)
{
	if (!m)
		return;
	nl_socket_free(m->sk);
	free(m);
}

/* --- ioctls, for kernels without the netlink interface --- */

static void *do_it(void *arg)
{
	int dev = (int)(intptr_t)arg;

	(void)ioctl(dev, NBD_DO_IT);	/* returns at disconnect */
	(void)ioctl(dev, NBD_CLEAR_QUE);
	(void)ioctl(dev, NBD_CLEAR_SOCK);
	close(dev);
	return NULL;
}

static int ioctl_connect(int fd, const struct nbdk_params *p, int *index, char *err,
			 size_t len)
{
	char path[32];
	pthread_t t;
	int dev;

	if (*index < 0)
		*index = 0;	/* without netlink there is no "pick one for me" */
	snprintf(path, sizeof(path), "/dev/nbd%d", *index);
	dev = open(path, O_RDWR | O_CLOEXEC);
	if (dev < 0 || ioctl(dev, NBD_SET_BLKSIZE, 4096UL) < 0 ||
	    ioctl(dev, NBD_SET_SIZE, (unsigned long)p->size) < 0 ||
	    ioctl(dev, NBD_SET_TIMEOUT, (unsigned long)p->timeout_s) < 0 ||
	    ioctl(dev, NBD_SET_FLAGS, (unsigned long)p->tflags) < 0 ||
	    ioctl(dev, NBD_SET_SOCK, fd) < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		if (dev >= 0)
			close(dev);
		return -1;
	}
	if (pthread_create(&t, NULL, do_it, (void *)(intptr_t)dev) != 0) {
		snprintf(err, len, "cannot start the NBD_DO_IT thread");
		close(dev);
		return -1;
	}
	pthread_detach(t);
	return 0;
}

int nbdk_connect(int fd, const struct nbdk_params *p, int *index, bool *legacy, char *err,
		 size_t len)
{
	enum nl_result rc = nl_command(NBD_CMD_CONNECT, fd, index, p, err, len);

	*legacy = rc == NLR_ABSENT;
	if (rc == NLR_ABSENT)
		return ioctl_connect(fd, p, index, err, len);
	return rc == NLR_DONE ? 0 : -1;
}

int nbdk_reconfigure(int index, int fd, const struct nbdk_params *p, char *err, size_t len)
{
	enum nl_result rc = nl_command(NBD_CMD_RECONFIGURE, fd, &index, p, err, len);

	if (rc == NLR_ABSENT)
		snprintf(err, len, "the kernel has no NBD netlink interface to reconfigure with");
	return rc == NLR_DONE ? 0 : -1;
}

int nbdk_disconnect(int index, char *err, size_t len)
{
	char path[32];
	enum nl_result res = nl_command(NBD_CMD_DISCONNECT, -1, &index, NULL, err, len);
	int rc, dev;

	if (res != NLR_ABSENT)
		return res == NLR_DONE ? 0 : -1;
	snprintf(path, sizeof(path), "/dev/nbd%d", index);
	dev = open(path, O_RDWR | O_CLOEXEC);
	if (dev < 0 || ioctl(dev, NBD_DISCONNECT) < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		rc = -1;
	} else {
		rc = 0;
	}
	if (dev >= 0)
		close(dev);
	return rc;
}
