/* Listening sockets: parsing "HOST:PORT", "[V6]:PORT" and "unix:PATH"
 * addresses, binding them, and taking sockets handed over by systemd
 * socket activation.  Daemon-level: returns -1 and fills err on failure. */
#ifndef BLKREP_LISTEN_H
#define BLKREP_LISTEN_H

#include <stddef.h>

#define LISTEN_MAX	16
#define LISTEN_DEFAULT	"127.0.0.1:10809"

/* Binds and listens on addr; returns the socket fd or -1 with err set. */
int listen_on(const char *addr, char *err, size_t errlen);

/* Takes the sockets of systemd socket activation (LISTEN_PID/LISTEN_FDS)
 * into fds[], at most max.  Returns how many (0 when not activated) or -1. */
int listen_activated(int *fds, int max, char *err, size_t errlen);

#endif
