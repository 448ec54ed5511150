/* utils/privdir: the run directory's checks, and files opened in it
 * without following symbolic links. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utils/privdir.h"

static char top[64];

static void make_top(void)
{
	strcpy(top, "/tmp/blkrep-test-privdir.XXXXXX");
	cr_assert_not_null(mkdtemp(top));
}

static void remove_top(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	(void)!system(cmd);
}

TestSuite(privdir, .init = make_top, .fini = remove_top);

Test(privdir, why_not_is_pure)
{
	struct stat sb = { .st_mode = S_IFDIR | 0700, .st_uid = 1000 };
	char buf[128];

	cr_assert_null(privdir_why_not(&sb, 1000, buf, sizeof(buf)));
	sb.st_mode = S_IFDIR | 0755;
	cr_assert_null(privdir_why_not(&sb, 1000, buf, sizeof(buf)), "readable is fine");
	sb.st_mode = S_IFDIR | 0770;
	cr_assert_str_eq(privdir_why_not(&sb, 1000, buf, sizeof(buf)),
			 "writable by group or others (mode 0770): chmod 700 it");
	sb.st_mode = S_IFDIR | 01777;
	cr_assert_str_eq(privdir_why_not(&sb, 1000, buf, sizeof(buf)),
			 "writable by group or others (mode 1777): chmod 700 it");
	sb.st_mode = S_IFDIR | 0700;
	cr_assert_str_eq(privdir_why_not(&sb, 0, buf, sizeof(buf)),
			 "owned by uid 1000, not by this process's user (uid 0)");
	sb.st_mode = S_IFREG | 0600;
	cr_assert_str_eq(privdir_why_not(&sb, 1000, buf, sizeof(buf)), "not a directory");
}

Test(privdir, created_0700_whatever_the_umask)
{
	char path[128], err[256];
	struct stat sb;
	mode_t old = umask(0277);
	int fd;

	snprintf(path, sizeof(path), "%s/run", top);
	fd = privdir_open(path, err, sizeof(err));
	umask(old);
	cr_assert(fd >= 0, "%s", err);
	close(fd);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0700, "mode %o", (unsigned)(sb.st_mode & 07777));
}

Test(privdir, existing_open_directory_refused)
{
	char path[128], err[256], want[256];

	snprintf(path, sizeof(path), "%s/run", top);
	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_eq(chmod(path, 0777), 0);
	snprintf(want, sizeof(want), "%s: writable by group or others (mode 0777): chmod 700 it",
		 path);
	cr_assert_eq(privdir_open(path, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);
	if (geteuid() == 0) {
		cr_assert_eq(chmod(path, 0700), 0);
		cr_assert_eq(chown(path, 65534, (gid_t)-1), 0);
		snprintf(want, sizeof(want),
			 "%s: owned by uid 65534, not by this process's user (uid 0)", path);
		cr_assert_eq(privdir_open(path, err, sizeof(err)), -1);
		cr_assert_str_eq(err, want);
	}
}

static char link_path[160], target[160];

/* TOP/run, 0700, holding x.pid -> TOP/victim (which does not exist). */
static void plant_link(void)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/run", top);
	snprintf(link_path, sizeof(link_path), "%s/x.pid", dir);
	snprintf(target, sizeof(target), "%s/victim", top);
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(symlink(target, link_path), 0);
}

Test(privdir, symlink_in_it_refused_not_followed)
{
	char err[256], want[256];
	int fd;

	plant_link();
	snprintf(want, sizeof(want), "%s: a symbolic link: refusing to follow it", link_path);
	cr_assert_eq(privdir_open_file(link_path, O_WRONLY | O_CREAT | O_TRUNC, 0644, err,
				       sizeof(err)),
		     -1);
	cr_assert_str_eq(err, want);
	cr_assert_eq(access(target, F_OK), -1, "the link's target was created");
	cr_assert_eq(unlink(link_path), 0);
	fd = privdir_open_file(link_path, O_WRONLY | O_CREAT | O_TRUNC, 0644, err, sizeof(err));
	cr_assert(fd >= 0, "%s", err);
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

Test(privdir, write_file_refuses_a_planted_link)
{
	char err[256], buf[16] = "";
	int fd;

	plant_link();
	cr_assert_eq(privdir_write_file(link_path, "42\n", 0644, err, sizeof(err)), -1);
	cr_assert(strstr(err, "a symbolic link: refusing to follow it"), "%s", err);
	cr_assert_eq(access(target, F_OK), -1, "the link's target was created");
	cr_assert_eq(unlink(link_path), 0);
	cr_assert_eq(privdir_write_file(link_path, "42\n", 0644, err, sizeof(err)), 0, "%s", err);
	fd = open(link_path, O_RDONLY);
	cr_assert_eq(read(fd, buf, sizeof(buf) - 1), 3);
	close(fd);
	cr_assert_str_eq(buf, "42\n");
}
