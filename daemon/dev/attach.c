/* Attaching the volume to the kernel.  See attach.h. */
#include "attach.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/dev/fusefile.h"
#include "nbd/server.h"
#include "nbd/kernel.h"
#include "nbd/wire.h"
#include "utils/log.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

uint16_t attach_tflags(void)
{
	return NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
	       NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
}

/* Memory reclaim may write to the device this daemon serves: its own
 * allocations must not wait for that (kernel commit 8d19f1c8e193). */
static void attach_harden(void)
{
	static int done;

	if (done++)
		return;
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) < 0)
		log_warn("prctl(PR_SET_IO_FLUSHER): %s", strerror(errno));
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		log_warn("mlockall: %s", strerror(errno));
}

/* A socketpair: sv[0] served by srv, sv[1] for the kernel. */
static int attach_pair(struct server *srv, int sv[2], char *err, size_t len)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, len, "socketpair: %s", strerror(errno));
		return -1;
	}
	if (server_adopt(srv, sv[0], attach_tflags()) < 0) {
		snprintf(err, len, "the NBD server cannot take another connection");
		close(sv[1]);
		return -1;
	}
	return 0;
}

int attach_device(struct server *srv, int *index, const struct nbdk_params *p, char *err,
		  size_t len)
{
	int sv[2], rc;
	bool legacy;

	if (nbdk_ensure_module(err, len) < 0)
		return -1;
	if (*index >= 0 && nbdk_in_use(*index)) {
		snprintf(err, len, "/dev/nbd%d is in use", *index);
		return -1;
	}
	attach_harden();
	if (attach_pair(srv, sv, err, len) < 0)
		return -1;
	rc = nbdk_connect(sv[1], p, index, &legacy, err, len);
	if (rc == 0 && legacy)
		log_warn("the kernel's nbd netlink interface is not visible here (another network "
			 "namespace?): /dev/nbd%d is attached with ioctls and cannot be reattached "
			 "after a daemon restart", *index);
	close(sv[1]);	/* the kernel holds its own reference; on failure the
			 * server sees the end of the stream and drops sv[0] */
	return rc;
}

struct fusefile *attach_loop(struct server *srv, const char *mountpoint, uint64_t size,
			     char *err, size_t len)
{
	int sv[2];

	attach_harden();
	if (attach_pair(srv, sv, err, len) < 0)
		return NULL;
	return fusefile_start(mountpoint, sv[1], size, err, len);
}

int attach_reconnect(struct server *srv, int index, const struct nbdk_params *p, char *err,
		     size_t len)
{
	int sv[2], rc;

	attach_harden();
	if (attach_pair(srv, sv, err, len) < 0)
		return -1;
	rc = nbdk_reconfigure(index, sv[1], p, err, len);
	close(sv[1]);
	return rc;
}
