/* Logging: "blkrep: warning: ..." lines on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *log_prog = "blkrep";
static enum log_level log_max = LOG_INFO;
static int log_copy_fd = -1;

void log_copy_to(int fd)
{
	log_copy_fd = fd;
}

void log_init(const char *prog, enum log_level max)
{
	log_prog = prog;
	log_max = max;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	char line[1024];
	va_list ap;

	if (lvl > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line, so lines from several processes do not mix. */
	fprintf(stderr, "%s: %s%s\n", log_prog, prefix[lvl], line);
	if (log_copy_fd >= 0)
		dprintf(log_copy_fd, "%s: %s%s\n", log_prog, prefix[lvl], line);
}
