/* /metrics over HTTP through libmicrohttpd.  See httpd.h. */
#include "daemon/ctl/httpd.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "daemon/config_value.h"
#include "daemon/ctl/metrics.h"
#include "utils/log.h"

#define HTTPD_CONNS_MAX	     16
#define HTTPD_TIMEOUT_S	     10
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct httpd {
	struct MHD_Daemon *mhd;
	struct sockaddr_storage sa;
	pthread_mutex_t lock; /* text and len: written by the loop, read by MHD */
	char *text;	      /* METRICS_TEXT_MAX bytes */
	size_t len;	      /* 0: nothing published yet */
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, void *body, size_t len,
			      enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				      status == MHD_HTTP_OK ? METRICS_CONTENT_TYPE : "text/plain");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* The latest text, copied out under the lock (malloc'd: MHD frees it). */
static enum MHD_Result answer_metrics(struct httpd *h, struct MHD_Connection *c)
{
	char *copy = NULL;
	size_t len;

	pthread_mutex_lock(&h->lock);
	len = h->len;
	if (len && (copy = malloc(len)))
		memcpy(copy, h->text, len);
	pthread_mutex_unlock(&h->lock);
	if (!copy)
		return answer(c, MHD_HTTP_SERVICE_UNAVAILABLE, (void *)"not ready\n", 10,
			      MHD_RESPMEM_PERSISTENT);
	return answer(c, MHD_HTTP_OK, copy, len, MHD_RESPMEM_MUST_FREE);
}

/* MHD's thread: only h's lock and text are touched here. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **req_cls)
{
	(void)version;
	(void)upload;
	if (*upload_len)
		return MHD_NO; /* a GET has no body */
	if (!*req_cls) {
		*req_cls = c; /* headers only: answer on the next call */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, (void *)"GET /metrics\n", 13,
			      MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return answer(c, MHD_HTTP_NOT_FOUND, (void *)"see /metrics\n", 13,
			      MHD_RESPMEM_PERSISTENT);
	return answer_metrics(cls, c);
}

struct httpd *httpd_new(const char *addr)
{
	struct httpd *h = calloc(1, sizeof(*h));
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
	socklen_t salen;
	char err[256];

	if (!h || !(h->text = malloc(METRICS_TEXT_MAX))) {
		log_err("metrics: out of memory");
		goto fail;
	}
	pthread_mutex_init(&h->lock, NULL);
	if (config_address_resolve(addr, &h->sa, &salen, err, sizeof(err)) < 0) {
		log_err("metrics: %s: %s", addr, err);
		goto fail_lock;
	}
	if (h->sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
				  (struct sockaddr *)&h->sa, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)HTTPD_CONNS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)HTTPD_TIMEOUT_S, MHD_OPTION_END);
	if (!h->mhd) {
		log_err("metrics: cannot serve HTTP on %s: %s", addr,
			errno ? strerror(errno) : "libmicrohttpd refused");
		goto fail_lock;
	}
	return h;
fail_lock:
	pthread_mutex_destroy(&h->lock);
fail:
	if (h)
		free(h->text);
	free(h);
	return NULL;
}

void httpd_publish(struct httpd *h, const char *text, size_t len)
{
	if (len > METRICS_TEXT_MAX)
		len = METRICS_TEXT_MAX;
	pthread_mutex_lock(&h->lock);
	memcpy(h->text, text, len);
	h->len = len;
	pthread_mutex_unlock(&h->lock);
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	pthread_mutex_destroy(&h->lock);
	free(h->text);
	free(h);
}
