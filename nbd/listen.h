/* Listening sockets: parsing "HOST:PORT", "[V6]:PORT" and "unix:PATH"
 * addresses, binding them, and taking sockets handed over by systemd
 * socket activation; who may use a Unix socket.  Daemon-level: returns -1
 * and fills err on failure. */
#ifndef BLKREP_LISTEN_H
#define BLKREP_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define LISTEN_MAX	16
#define LISTEN_DEFAULT	"127.0.0.1:10809"

/* Binds and listens on addr; returns the socket fd or -1 with err set.
 * A Unix socket file is created mode 0600 whatever the umask, and given to
 * unix_owner unless that is (uid_t)-1: only its owner and root can connect
 * (and the server checks each client's credentials too). */
int listen_on(const char *addr, uid_t unix_owner, char *err, size_t errlen);

/* Takes the sockets of systemd socket activation (LISTEN_PID/LISTEN_FDS)
 * into fds[], at most max.  Returns how many (0 when not activated) or -1. */
int listen_activated(int *fds, int max, char *err, size_t errlen);

/* Whether listening socket fd is an AF_UNIX one. */
bool listen_is_unix(int fd);

/* The uid of the process that connected Unix socket fd (SO_PEERCRED, as
 * of its connect()); -1 with errno on failure. */
int listen_peer_uid(int fd, uid_t *uid);

/* Pure: who may use a Unix export: root, the server's own user euid, and
 * extra_uid unless it is (uid_t)-1. */
bool listen_uid_allowed(uid_t uid, uid_t euid, uid_t extra_uid);

#endif
