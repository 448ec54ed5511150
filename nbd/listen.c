/* Listening sockets.  See listen.h. */
#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_unix(const char *path, uid_t owner, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "unix:%s: path too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	/* A stale socket from a previous run would make bind fail. */
	if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
		(void)unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Linux creates the socket file with the socket inode's mode less the
	 * umask: never wider than 0600, whatever the umask, and then exactly
	 * 0600 (a umask of 0200 would leave it unconnectable). */
	if (fd < 0 || fchmod(fd, 0600) < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0600) < 0 ||
	    (owner != (uid_t)-1 && lchown(path, owner, (gid_t)-1) < 0) || listen(fd, 128) < 0) {
		snprintf(err, errlen, "unix:%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Splits "host:port" or "[v6]:port" into host and port in buf. */
static int split_host_port(const char *addr, char *buf, size_t len, char **host,
			   char **port)
{
	char *colon;

	if (strlen(addr) >= len)
		return -1;
	strcpy(buf, addr);
	colon = strrchr(buf, ':');
	if (!colon || colon == buf || !colon[1])
		return -1;
	*colon = '\0';
	*port = colon + 1;
	*host = buf;
	if (buf[0] == '[') {
		if (colon[-1] != ']')
			return -1;
		colon[-1] = '\0';
		*host = buf + 1;
	}
	return 0;
}

static int listen_tcp(const char *addr, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL;
	char buf[300], *host, *port;
	int fd = -1, one = 1, rc;

	if (split_host_port(addr, buf, sizeof(buf), &host, &port) < 0) {
		snprintf(err, errlen, "%s: expected HOST:PORT, [IPV6]:PORT or unix:PATH", addr);
		return -1;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		snprintf(err, errlen, "%s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int listen_on(const char *addr, uid_t unix_owner, char *err, size_t errlen)
{
	if (strncmp(addr, "unix:", 5) == 0)
		return listen_unix(addr + 5, unix_owner, err, errlen);
	return listen_tcp(addr, err, errlen);
}

int listen_activated(int *fds, int max, char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	long count;

	if (!pid || !n || strtol(pid, NULL, 10) != getpid())
		return 0;
	count = strtol(n, NULL, 10);
	if (count < 1 || count > max) {
		snprintf(err, errlen, "LISTEN_FDS=%s: expected 1 to %d sockets", n, max);
		return -1;
	}
	for (int i = 0; i < count; i++) {
		fds[i] = 3 + i;	/* SD_LISTEN_FDS_START */
		(void)fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return (int)count;
}

bool listen_is_unix(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

int listen_peer_uid(int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	*uid = cred.uid;
	return 0;
}

bool listen_uid_allowed(uid_t uid, uid_t euid, uid_t extra_uid)
{
	return uid == 0 || uid == euid || (extra_uid != (uid_t)-1 && uid == extra_uid);
}
