/* The operator: one request over a node's real control socket (the wire
 * format of daemon/control.h: one line, then "ok"/"error" and a body until
 * the daemon closes), answered through a callback. */
#ifndef BLKREP_SIMCTL_H
#define BLKREP_SIMCTL_H

#include <stdbool.h>

/* done(arg, ok, body) runs once the daemon closed the connection; ok is
 * false, body "" when nothing answered.  Returns -1 (done not called) if
 * no daemon listens at path. */
typedef void simctl_done_fn(void *arg, bool ok, const char *body);

int simctl_call(const char *path, const char *line, simctl_done_fn *done, void *arg);
/* Forgets the calls never answered (end of a seed: their sockets go with
 * simfd_reset()); their done() never runs. */
void simctl_reset(void);

/* Takes a number or a string field out of a status --json body. */
bool simctl_json_num(const char *body, const char *key, double *out);
bool simctl_json_str(const char *body, const char *key, char *out, unsigned len);

#endif
