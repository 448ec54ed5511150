/* The torture tool's NBD connections.  See tnbd.h. */
#include "tnbd.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nbd/client.h"
#include "nbd/wire.h"

static int connect_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "connect %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int connect_tcp(const char *hostport, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(hostport, ':'), *h = hostport;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL, *a;
	size_t hl;
	int fd = -1, one = 1, rc;

	if (!colon || colon == hostport || !colon[1]) {
		snprintf(err, errlen, "bad HOST:PORT: %s", hostport);
		return -1;
	}
	hl = (size_t)(colon - hostport);
	if (hostport[0] == '[' && colon[-1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(err, errlen, "host name too long: %s", hostport);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "%s: %s", hostport, gai_strerror(rc));
		return -1;
	}
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		snprintf(err, errlen, "connect %s: %s", hostport, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Greeting, client flags, then NBD_OPT_GO for the export. */
static int send_go(int fd, const char *name, char *err, size_t errlen)
{
	uint8_t greet[18], cflags[4], opt[16 + 4 + 4096 + 2];
	uint32_t nl = (uint32_t)strlen(name);
	uint16_t sflags;

	if (nbd_io_all(fd, greet, sizeof(greet), false) < 0 || get_be64(greet) != NBD_MAGIC ||
	    get_be64(greet + 8) != NBD_IHAVEOPT) {
		snprintf(err, errlen, "not a newstyle NBD server");
		return -1;
	}
	sflags = get_be16(greet + 16);
	if (!(sflags & NBD_FLAG_FIXED_NEWSTYLE) || nl > 4096) {
		snprintf(err, errlen, "server is not fixed newstyle, or the export name is too long");
		return -1;
	}
	put_be32(cflags, NBD_FLAG_FIXED_NEWSTYLE | (sflags & NBD_FLAG_NO_ZEROES));
	put_be64(opt, NBD_IHAVEOPT);
	put_be32(opt + 8, NBD_OPT_GO);
	put_be32(opt + 12, 4 + nl + 2);
	put_be32(opt + 16, nl);
	memcpy(opt + 20, name, nl);
	put_be16(opt + 20 + nl, 0);
	if (nbd_io_all(fd, cflags, sizeof(cflags), true) < 0 ||
	    nbd_io_all(fd, opt, 22 + nl, true) < 0) {
		snprintf(err, errlen, "handshake: connection lost");
		return -1;
	}
	return 0;
}

/* Option replies up to NBD_REP_ACK; INFO_EXPORT gives size and flags. */
static int read_go_replies(int fd, uint64_t *size, uint16_t *flags, char *err, size_t errlen)
{
	bool have_export = false;

	for (int n = 0; n < 64; n++) {
		uint8_t hdr[20], data[512];
		uint32_t type, len;

		if (nbd_io_all(fd, hdr, sizeof(hdr), false) < 0 || get_be64(hdr) != NBD_REP_MAGIC) {
			snprintf(err, errlen, "handshake: bad or missing option reply");
			return -1;
		}
		type = get_be32(hdr + 12);
		len = get_be32(hdr + 16);
		if (len > sizeof(data) || nbd_io_all(fd, data, len, false) < 0) {
			snprintf(err, errlen, "handshake: option reply too long or cut");
			return -1;
		}
		if (type == NBD_REP_ACK) {
			if (have_export)
				return 0;
			snprintf(err, errlen, "handshake: GO acknowledged without export info");
			return -1;
		}
		if (type & (1U << 31)) {
			snprintf(err, errlen, "server refused the export (error 0x%x)%s%.*s", type,
				 len ? ": " : "", (int)len, (const char *)data);
			return -1;
		}
		if (type == NBD_REP_INFO && len >= 12 && get_be16(data) == NBD_INFO_EXPORT) {
			*size = get_be64(data + 2);
			*flags = get_be16(data + 10);
			have_export = true;
		}
	}
	snprintf(err, errlen, "handshake: too many option replies");
	return -1;
}

int tnbd_open(const struct tnbd_target *t, uint64_t *size, uint16_t *flags, char *err,
	      size_t errlen)
{
	int fd = t->socket_path ? connect_unix(t->socket_path, err, errlen)
				: connect_tcp(t->hostport, err, errlen);

	if (fd < 0)
		return -1;
	if (send_go(fd, t->export_name ? t->export_name : "", err, errlen) < 0 ||
	    read_go_replies(fd, size, flags, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}
