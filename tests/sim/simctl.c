/* The operator's control requests.  See simctl.h. */
#include "simctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simfd.h"
#include "simrt.h"

#define ANSWER_MAX	(70U << 10)

struct call {
	int fd;
	simctl_done_fn *done;
	void *arg;
	size_t len;
	char buf[ANSWER_MAX];
};

static void on_ready(void *p)
{
	struct call *c = p;
	bool eof;
	size_t room = ANSWER_MAX - 1 - c->len;

	c->len += simfd_take(c->fd, c->buf + c->len, room, &eof);
	if (!eof && room)
		return;
	c->buf[c->len] = '\0';
	simfd_close(c->fd);
	if (!strncmp(c->buf, "ok\n", 3))
		c->done(c->arg, true, c->buf + 3);
	else
		c->done(c->arg, false, c->len > 6 ? c->buf + 6 : "");
	free(c);
}

int simctl_call(const char *path, const char *line, simctl_done_fn *done, void *arg)
{
	struct call *c = calloc(1, sizeof(*c));
	char req[256];

	if (!c)
		abort();
	c->done = done;
	c->arg = arg;
	c->fd = simfd_dial(path, on_ready, c);
	if (c->fd < 0) {
		free(c);
		return -1;
	}
	snprintf(req, sizeof(req), "%s\n", line);
	(void)simfd_send(c->fd, req, strlen(req));
	sim_trace("operator: %s (%s)", line, path);
	return 0;
}

static const char *field(const char *body, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(body, pat);
	return p ? p + strlen(pat) : NULL;
}

bool simctl_json_num(const char *body, const char *key, double *out)
{
	const char *p = field(body, key);

	if (!p)
		return false;
	*out = strtod(p, NULL);
	return true;
}

bool simctl_json_str(const char *body, const char *key, char *out, unsigned len)
{
	const char *p = field(body, key), *e;

	if (!p || *p != '"' || !(e = strchr(p + 1, '"')))
		return false;
	snprintf(out, len, "%.*s", (int)(e - p - 1), p + 1);
	return true;
}
