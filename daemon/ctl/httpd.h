/* The HTTP endpoint of the node's metrics (`metrics = HOST:PORT`): GET
 * /metrics answers the latest text the loop published.  libmicrohttpd runs
 * it on a thread of its own, which never touches the daemon's state: the
 * loop's thread renders the text and publishes a copy under a mutex; the
 * HTTP thread copies it out under the same mutex.  Daemon-level: NULL or
 * -1 after logging one line. */
#ifndef BLKREP_HTTPD_H
#define BLKREP_HTTPD_H

#include <stddef.h>

struct httpd;

/* Listens on addr (HOST:PORT or [IPV6]:PORT, as the config validated it);
 * until the first httpd_publish(), /metrics answers 503. */
struct httpd *httpd_new(const char *addr);

/* The text /metrics answers from now on (copied; cut at METRICS_TEXT_MAX). */
void httpd_publish(struct httpd *h, const char *text, size_t len);

/* Stops the thread (answers in progress finish) and frees h.  NULL is
 * fine. */
void httpd_free(struct httpd *h);

#endif
