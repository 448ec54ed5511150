/* The control socket's text format as pure code (no I/O, no allocation,
 * no logging): the daemon's reading of a request line, the client's
 * writing of one, and the client's reading of an answer.  control.c does
 * the I/O; control.h describes the protocol.
 *
 * A request is words separated by runs of spaces or tabs, then '\n' (a
 * '\r' before it is dropped).  A word is any bytes but NUL, space and the
 * control characters (below 0x20, and DEL), so that what the client joins
 * the daemon splits back into the same words, and no word carries a
 * terminal escape or a line break into a log or an answer. */
#ifndef BLKREP_CTLPARSE_H
#define BLKREP_CTLPARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/ctl/control.h"

/* Reads the len bytes received so far in buf (len <= CONTROL_LINE_MAX;
 * buf has room for one more byte).  Returns 1 once they hold a whole line,
 * then split in place into argv[0..*argc) (1 to CONTROL_WORDS_MAX words,
 * argv[*argc] NULL; bytes after the '\n' are ignored); 0 while more bytes
 * are needed (buf untouched); -1 with a static one-line reason in *why:
 * "request too long", "request holds a NUL byte", "request holds a control
 * character", "too many words (at most 32)", "empty request". */
int ctlparse_request(char *buf, size_t len, char *argv[CONTROL_WORDS_MAX + 1], int *argc,
		     const char **why);

/* Joins words[0..n) with single spaces into line (size bytes, NUL-
 * terminated, no '\n').  Returns its length, or -1 with a static one-line
 * reason in *why if ctlparse_request() could not split it back into the
 * same words: no words or too many, an empty word, a word holding a
 * space, a tab or another control character, or a line longer than
 * CONTROL_LINE_MAX bytes with its '\n' (or than size - 1 bytes). */
int ctlparse_join(char *const *words, int n, char *line, size_t size, const char **why);

/* Reads a whole answer of len bytes: "ok" or "error", then '\n' and the
 * body, or nothing more.  Returns 0 with *ok set and the body at
 * ans[*body_off], *body_len bytes without its final '\n'; or -1 if the
 * answer is malformed. */
int ctlparse_answer(const char *ans, size_t len, bool *ok, size_t *body_off, size_t *body_len);

#endif
