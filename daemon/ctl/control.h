/* The per-node control socket: how `blkrep status`, `primary`, `down`...
 * reach the daemon of one (resource, node).
 *
 * Protocol, one request per connection.  The client sends one line of
 * text, at most CONTROL_LINE_MAX bytes with its '\n', words separated by
 * spaces or tabs ("status --json").  The daemon answers "ok\n" or
 * "error\n", then the body (for an error: one line, the reason), then
 * closes the connection.
 *
 * Daemon side: control_new() and everything after it run on the event
 * loop's thread and never block it; they return NULL or -1 after logging.
 * Client side: control_call() is plain blocking code for the CLI process;
 * it never logs and reports failures in err. */
#ifndef BLKREP_CONTROL_H
#define BLKREP_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_RUN_DIR		"/run/blkrep"
/* Overrides CONTROL_RUN_DIR in control_path() when it is given no run_dir:
 * the tests use it to keep out of /run. */
#define CONTROL_RUN_DIR_ENV	"BLKREP_RUN_DIR"

#define CONTROL_LINE_MAX	4096		/* a request, its '\n' included */
#define CONTROL_WORDS_MAX	32
#define CONTROL_BODY_MAX	(64U << 10)	/* longer bodies are cut */
#define CONTROL_CONNS_MAX	16		/* more get "error\nbusy" */
#define CONTROL_IDLE_MS		10000		/* to send the request, or read the answer */
#define CONTROL_WAIT_MS		10000		/* how long the CLI waits for a starting daemon */

struct loop;
struct control;
struct control_req;

/* Called on the loop's thread for every well-formed request (at least one
 * word; malformed ones are answered by this module).  The handler must
 * answer each req exactly once with control_reply(), now or from a later
 * completion; req stays valid until then. */
typedef void control_handler_fn(void *arg, struct control_req *req);

/* Creates the directory of path if it is missing (mode 0700; only the last
 * component), replaces a stale socket file, and listens there (mode 0600),
 * accepting through loop.  Fails, without touching the socket file, if a
 * daemon already answers on path: "another blkrep daemon is running for
 * this node (PATH)".  Returns NULL after logging. */
struct control *control_new(struct loop *loop, const char *path, control_handler_fn *handler,
			    void *arg);

/* Stops accepting, drops clients still sending their request and lets
 * answers already being sent finish (within CONTROL_IDLE_MS).  Requests
 * waiting in the handler are the handler's: it should answer them (for
 * instance "the daemon is stopping") so that their clients hear it. */
void control_stop(struct control *c);

/* True once control_stop() was called and nothing of c is in flight on the
 * loop any more (no accept, no connection, no timer). */
bool control_idle(const struct control *c);

/* Closes the socket, unlinks its file and frees every connection (requests
 * the handler still holds become invalid).  Because c's operations point at
 * c, call it either once control_idle(c) is true, or once the loop will run
 * no more (its pending completions are then never delivered).  NULL is
 * fine. */
void control_free(struct control *c);

/* How long a client may take to send its request, or to read its answer
 * (default CONTROL_IDLE_MS); for tests that would not wait 10 s. */
void control_set_idle_ms(struct control *c, unsigned idle_ms);

/* The request's words, argv-style: (*argc) of them, then NULL.  Valid until
 * control_reply(). */
char *const *control_req_words(const struct control_req *req, int *argc);

/* Answers req: "ok" or "error", then the printf-style body (cut at
 * CONTROL_BODY_MAX bytes; a final '\n' is added when missing).  Then the
 * answer is sent through the loop and the connection closed and freed: req
 * is invalid on return.  Call it on the loop's thread, exactly once per
 * req, from the handler or later. */
void control_reply(struct control_req *req, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Client side.  Sends request_line (without its '\n') to the daemon on path
 * and waits for the whole answer.  While the socket is missing or refuses
 * connections (the daemon may still be starting) it retries every 100 ms
 * for up to wait_ms.  The answer itself is awaited without a limit: a
 * command that waits for an event (a resync, a drain) is bounded by the
 * daemon.
 *
 * Returns 0 when the daemon answered: *ok tells "ok" from "error" and *body
 * (malloc'd, the caller frees it; may be NULL to discard) holds the body
 * without its final '\n'.  Returns -1 with a one-line reason in err when
 * there was no answer: "no blkrep daemon is running for this node (PATH)",
 * a malformed answer, a request line that is too long or holds a '\n'. */
int control_call(const char *path, const char *request_line, int wait_ms, char **body, bool *ok,
		 char *err, size_t errlen);

/* Writes RUN_DIR/RESOURCE-NODE.ctl to buf, RUN_DIR being run_dir, or when
 * that is NULL $BLKREP_RUN_DIR if set and not empty, or CONTROL_RUN_DIR.
 * Returns 0, or -1 after logging if the path does not fit in len or in a
 * unix socket address, or if a name holds a '/'. */
int control_path(char *buf, size_t len, const char *run_dir, const char *resource,
		 const char *node);

/* Creates (0700) or checks the run directory that holds path: refused,
 * after logging what is wrong, unless it is a directory of this process's
 * user that neither group nor others can write (utils/privdir.h). */
int control_make_run_dir(const char *path);

/* RUN_DIR/RESOURCE-NODE.SUFFIX: control_path() (no run_dir) with this
 * suffix instead of "ctl", for the node's other run files. */
int control_run_path(char *buf, size_t len, const char *resource, const char *node,
		     const char *suffix);

#endif
