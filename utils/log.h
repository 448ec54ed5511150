/* Logging for the daemon and the CLI: one line per message on stderr, with
 * a level prefix.  Library-like modules never call this; they return errors. */
#ifndef BLKREP_LOG_H
#define BLKREP_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the most verbose level printed (default LOG_INFO) and the program
 * name put before every line. */
void log_init(const char *prog, enum log_level max);

/* Every line also goes to fd from now on (-1: no more); a daemon starting
 * in the background logs to its log file as well as to `up`. */
void log_copy_to(int fd);

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
