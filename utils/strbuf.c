/* Appending to a fixed buffer.  See strbuf.h. */
#include "utils/strbuf.h"

#include <stdarg.h>
#include <stdio.h>

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!sb->ok)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->pos, sb->len - sb->pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sb->len - sb->pos) {
		sb->ok = false;
		sb->buf[sb->pos] = '\0';
	} else {
		sb->pos += (size_t)n;
	}
}
