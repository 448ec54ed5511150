/* Logging: "blkrep: warning: ..." lines on stderr, behind a time stamp and
 * the level in a daemon's log, or the journal's level. */
#include "log.h"
#include "utils/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *log_prog = "blkrep";
static enum log_level log_max = LOG_INFO;
static enum log_style log_style = LOG_PLAIN;
static int log_copy_fd = -1;

void log_init(const char *prog, enum log_level max)
{
	log_prog = prog;
	log_max = max;
}

void log_set_style(enum log_style style)
{
	log_style = style;
}

bool log_stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_copy_to(int fd)
{
	if (log_copy_fd >= 0)
		close(log_copy_fd);
	log_copy_fd = fd;
}

int log_format_prefix(char *buf, size_t len, const struct timespec *ts, enum log_level lvl,
		      enum log_style style)
{
	static const char *const name[] = { "error", "warning", "info", "debug" };
	static const char syslog_level[] = { '3', '4', '6', '7' }; /* sd-daemon.h SD_ERR ... */
	char stamp[CLOCK_RFC3339_LEN];
	int n;

	if (style == LOG_PLAIN)
		n = snprintf(buf, len, "%s", "");
	else if (style == LOG_JOURNAL)
		n = snprintf(buf, len, "<%c>", syslog_level[lvl]);
	else if (clock_rfc3339(stamp, sizeof(stamp), (uint64_t)ts->tv_sec * 1000 +
						       (uint64_t)ts->tv_nsec / 1000000) < 0)
		return -1;
	else
		n = snprintf(buf, len, "%s %s ", stamp, name[lvl]);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* The whole line, prefix to newline, into out (truncated to fit). */
static void log_line(char *out, size_t len, enum log_level lvl, enum log_style style,
		     const char *text)
{
	static const char *const level[] = { "error: ", "warning: ", "", "debug: " };
	struct timespec ts = { 0, 0 };
	char prefix[64];

	if (style == LOG_STAMPED)
		(void)clock_gettime(CLOCK_REALTIME, &ts);
	if (log_format_prefix(prefix, sizeof(prefix), &ts, lvl, style) < 0)
		prefix[0] = '\0';
	snprintf(out, len, "%s%s: %s%s\n", prefix, log_prog, level[lvl], text);
	if (strlen(out) == len - 1)
		out[len - 2] = '\n';
}

static void log_to_copy(enum log_level lvl, const char *text)
{
	char line[1200];

	log_line(line, sizeof(line), lvl, LOG_STAMPED, text);
	if (write(log_copy_fd, line, strlen(line)) < 0)
		log_copy_to(-1); /* a full disk: the log goes on without its copy */
}

static void log_vmsg(enum log_level lvl, bool stderr_too, const char *fmt, va_list ap)
{
	char text[1024], line[1200];

	if (lvl > log_max)
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	if (log_copy_fd >= 0)
		log_to_copy(lvl, text);
	if (!stderr_too && log_copy_fd >= 0)
		return;
	log_line(line, sizeof(line), lvl, log_style, text);
	/* One write per line, so lines from several processes do not mix. */
	fputs(line, stderr);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, true, fmt, ap);
	va_end(ap);
}

void log_copy_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, false, fmt, ap);
	va_end(ap);
}
