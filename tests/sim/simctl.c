/* The operator's control requests.  See simctl.h. */
#include "simctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simfd.h"
#include "simrt.h"

#define ANSWER_MAX	(70U << 10)

struct call {
	struct call *prev, *next;	/* calls not yet answered */
	int fd;
	simctl_done_fn *done;
	void *arg;
	size_t len;
	char buf[ANSWER_MAX];
};

/* Calls still waiting when a seed ends (a node crashed or the run stopped
 * before the answer): freed by simctl_reset(), else each seed leaked the
 * 70 KiB answer buffers of its last status requests. */
static struct call *calls;

static void call_unlink(struct call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

void simctl_reset(void)
{
	while (calls) {
		struct call *c = calls;

		call_unlink(c);
		free(c);
	}
}

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
	call_unlink(c);
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
	c->next = calls;
	if (calls)
		calls->prev = c;
	calls = c;
	snprintf(req, sizeof(req), "%s\n", line);
	(void)simfd_send(c->fd, req, strlen(req));
	if (strncmp(line, "status", 6)) /* polled every tick: noise */
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
