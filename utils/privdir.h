/* A private directory (the daemon's run directory): created mode 0700,
 * and, when it exists already, refused unless it is a directory owned by
 * the process's effective user that neither group nor others can write.
 * Files in it are opened relative to the checked directory's descriptor
 * and never through a symbolic link, so a link planted there is refused,
 * not followed.  Errors: -1 with one line "PATH: reason" in err; nothing
 * here prints or exits. */
#ifndef BLKREP_PRIVDIR_H
#define BLKREP_PRIVDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Pure: why a directory with these attributes is not private to euid
 * ("owned by uid 1000, not by this process's user (uid 0)", "writable by
 * group or others (mode 0777)"), or NULL when it is. */
const char *privdir_why_not(const struct stat *sb, uid_t euid, char *buf, size_t len);

/* Opens directory path (creating it 0700 first if it is missing) and
 * checks it.  Returns its descriptor (O_DIRECTORY, close-on-exec) or -1. */
int privdir_open(const char *path, char *err, size_t errlen);

/* privdir_open() of the directory of path (an absolute file name). */
int privdir_open_parent(const char *path, char *err, size_t errlen);

/* privdir_open() of path's directory, then openat() of its last component
 * with flags | O_NOFOLLOW | O_CLOEXEC and mode.  Returns the fd or -1. */
int privdir_open_file(const char *path, int flags, mode_t mode, char *err, size_t errlen);

/* privdir_open_file(path, O_WRONLY | O_CREAT | O_TRUNC, mode), then text
 * written to it.  0, or -1 with err. */
int privdir_write_file(const char *path, const char *text, mode_t mode, char *err, size_t errlen);

#endif
