/* Unit tests for the fence-peer and unfence-peer commands (issue 18): the
 * config keys, and how daemon/ctl/hook reads a command's answer (DRBD's
 * exit codes: 3, 4, 5, 7 outdate the peer; anything else keeps writes
 * frozen, a signal or a missing shell included). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/ctl/hook.h"
#include "tests/unit/config_parse.h"

#define RES "[resource]\nname = r0\nsecret-file = /etc/blkrep/r0.secret\n"
#define PAIR                                                                                       \
	"[node alpha]\naddress = 127.0.0.1:7001\nbacking = /a\n"                                   \
	"[node beta]\naddress = 127.0.0.1:7002\nbacking = /b\n"

Test(fence, keys_default_to_none_and_take_a_command_line)
{
	struct config *c = parse_ok(RES PAIR);

	cr_assert_null(config_fence_peer(c));
	cr_assert_null(config_unfence_peer(c));
	config_free(c);
	c = parse_ok(RES "on-peer-loss = freeze\n"
			 "fence-peer = /usr/lib/blkrep/crm-fence-peer --timeout 30\n"
			 "unfence-peer = /usr/lib/blkrep/crm-unfence-peer\n" PAIR);
	cr_assert_str_eq(config_fence_peer(c), "/usr/lib/blkrep/crm-fence-peer --timeout 30");
	cr_assert_str_eq(config_unfence_peer(c), "/usr/lib/blkrep/crm-unfence-peer");
	config_free(c);
}

Test(fence, an_empty_command_is_refused_naming_its_key)
{
	parse_fails(RES "fence-peer =\n" PAIR, FNAME ":4: empty fence-peer");
	parse_fails(RES "unfence-peer =\n" PAIR, FNAME ":4: empty unfence-peer");
	parse_fails(RES "fence-peer = a\nfence-peer = b\n" PAIR,
		    FNAME ":5: duplicate key 'fence-peer' (first set at line 4)");
}

Test(fence, adjust_needs_a_restart_for_them)
{
	struct config *run = parse_ok(RES PAIR);
	struct config *fresh = parse_ok(RES "fence-peer = true\n" PAIR);
	char why[256] = "";

	cr_assert_eq(config_adjust_check(run, fresh, "alpha", why, sizeof(why)), -1);
	cr_assert_str_eq(why, "fence-peer changed: a restart is needed to apply it");
	config_free(fresh);
	fresh = parse_ok(RES "unfence-peer = true\n" PAIR);
	cr_assert_eq(config_adjust_check(run, fresh, "alpha", why, sizeof(why)), -1);
	cr_assert_str_eq(why, "unfence-peer changed: a restart is needed to apply it");
	config_free(fresh);
	config_free(run);
}

/* The wait status of a real child that exits with code, or dies of sig. */
static int status_of(int code, int sig)
{
	int st = 0;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (sig)
			raise(sig);
		_exit(code);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return st;
}

Test(fence, the_peer_is_left_behind_only_on_3_4_5_7)
{
	for (int code = 0; code < 256; code++) {
		bool want = code == 3 || code == 4 || code == 5 || code == 7;

		cr_assert_eq(hook_fence_outdates(status_of(code, 0)), want, "exit %d", code);
	}
	cr_assert_not(hook_fence_outdates(status_of(0, SIGKILL)));
	cr_assert_not(hook_fence_outdates(status_of(0, SIGTERM)));
}

Test(fence, its_answer_reads_as_a_line)
{
	char buf[48];

	cr_assert_str_eq(hook_status_str(status_of(4, 0), buf, sizeof(buf)), "exit 4");
	cr_assert_str_eq(hook_status_str(status_of(127, 0), buf, sizeof(buf)), "exit 127");
	cr_assert_str_eq(hook_status_str(status_of(0, SIGKILL), buf, sizeof(buf)),
			 "killed by signal 9");
}

/* A detached command runs with the BLKREP_* environment, no descriptor of
 * the caller's past stderr, and stdin from /dev/null. */
Test(fence, a_detached_command_gets_the_environment)
{
	char dir[] = "/tmp/blkrep-hook.XXXXXX", out[64], line[1024], got[512] = "";
	struct hook_env e = { .config = "/etc/blkrep/r0.conf", .resource = "r0",
			      .node = "alpha", .peers = "beta gamma" };
	int fd;
	FILE *f = NULL;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(out, sizeof(out), "%s/env", dir);
	/* A descriptor the command must not get (high: not reused by its shell). */
	fd = fcntl(open("/dev/null", O_RDONLY), F_DUPFD, 50);
	cr_assert_geq(fd, 50);
	snprintf(line, sizeof(line),
		 "echo \"$BLKREP_CONFIG|$BLKREP_RESOURCE|$BLKREP_NODE|$BLKREP_PEERS|"
		 "$BLKREP_DEVICE|$(test -e /proc/self/fd/%d && echo open || echo closed)|"
		 "$(head -c1 | wc -c)\" > %s.tmp && mv %s.tmp %s",
		 fd, out, out, out);
	cr_assert_eq(hook_run_detached("test", line, &e), 0);
	for (int i = 0; i < 500 && !(f = fopen(out, "r")); i++)
		usleep(10000);
	cr_assert_not_null(f, "the command did not run");
	cr_assert_not_null(fgets(got, sizeof(got), f));
	fclose(f);
	close(fd);
	cr_assert_str_eq(got, "/etc/blkrep/r0.conf|r0|alpha|beta gamma||closed|0\n");
	unlink(out);
	rmdir(dir);
}
