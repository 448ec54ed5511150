/* Text appended to a caller's fixed buffer, for renderers that must not
 * allocate (events, metrics).  A value type: struct strbuf sb =
 * STRBUF_INIT(buf, len).  Once an append does not fit, the buffer is
 * marked full and later appends do nothing; ok says whether all fit. */
#ifndef BLKREP_STRBUF_H
#define BLKREP_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len, pos;
	bool ok;
};

#define STRBUF_INIT(b, l) ((struct strbuf){ .buf = (b), .len = (l), .ok = (l) > 0 })

/* printf-style append; on overflow ok becomes false (the text written
 * before stays, terminated). */
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
