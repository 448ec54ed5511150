/* Logging for the daemon and the CLI: one line per message on stderr, with
 * a level prefix.  Library-like modules never call this; they return errors. */
#ifndef BLKREP_LOG_H
#define BLKREP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* What goes before "blkrep: ": nothing (the CLI), an RFC 3339 UTC time
 * with milliseconds and the level (a daemon's log file, `up --foreground`),
 * or the journal's "<N>" syslog level (stderr is the journal). */
enum log_style { LOG_PLAIN, LOG_STAMPED, LOG_JOURNAL };

/* Sets the most verbose level printed (default LOG_INFO) and the program
 * name put before every line. */
void log_init(const char *prog, enum log_level max);

/* The style of the lines on stderr (default LOG_PLAIN). */
void log_set_style(enum log_style style);

/* True if stderr is the journal: $JOURNAL_STREAM names its device and
 * inode, as systemd sets it for a service's stderr. */
bool log_stderr_is_journal(void);

/* Every line also goes, stamped, to fd: a daemon's log file while its
 * stderr still leads to the `blkrep up` that started it.  The log owns fd
 * from then on; -1 closes the one it had. */
void log_copy_to(int fd);

/* One line to that copy alone (to stderr where there is none). */
void log_copy_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The prefix of a line logged at time ts (CLOCK_REALTIME) in this style,
 * into buf ("" for LOG_PLAIN).  Pure.  Returns its length, or -1 if len is
 * too small. */
int log_format_prefix(char *buf, size_t len, const struct timespec *ts, enum log_level lvl,
		      enum log_style style);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

/* Logs a warning the first time *flag is false, then sets it: for
 * "falling back to X" notices that must appear once, not per request. */
#define log_once(flag, ...)                        \
	do {                                       \
		if (!*(flag)) {                    \
			*(flag) = true;            \
			log_warn(__VA_ARGS__);     \
		}                                  \
	} while (0)

#endif
