/* daemon/config_adjust: what `blkrep adjust` takes from a re-read config
 * (config_adjust_check(), config_adjust()), without files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"

#define RES "[resource]\nname = r0\nsecret-file = /etc/blkrep/r0.secret\n"

static struct config *parse(const char *text)
{
	struct config *c = NULL;
	char err[512] = "";

	cr_assert_eq(config_parse_string(text, "/t.conf", &c, err, sizeof(err)), 0, "%s", err);
	return c;
}

/* The config with res inserted into [resource], alpha's backing and beta's
 * address as given. */
static struct config *conf(const char *res, const char *backing_a, const char *addr_b)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 RES "%s[node alpha]\naddress = 127.0.0.1:7789\nbacking = %s\n"
		     "[node beta]\naddress = %s\nbacking = /b.img\n",
		 res, backing_a, addr_b);
	return parse(text);
}

/* Whether alpha's daemon may take fresh; its refusal in why. */
static int check(const struct config *running, const struct config *fresh, char *why)
{
	return config_adjust_check(running, fresh, "alpha", why, 256);
}

Test(config_adjust, takes_the_live_keys_and_names_them)
{
	struct config *run = conf("", "/a.img", "127.0.0.1:7790");
	struct config *fresh = conf("max-lag = 8M\non-peer-loss = freeze\ntimeout = 9\n"
				    "resync-rate = 10M\ndead-conn-timeout = 60\n",
				    "/a.img", "127.0.0.2:7791");
	const struct config_node *alpha = config_node_by_index(run, 0);
	char why[256] = "", changed[256];

	cr_assert_eq(check(run, fresh, why), 0, "%s", why);
	config_adjust(run, fresh, "alpha", changed, sizeof(changed));
	cr_assert_str_eq(changed, "on-peer-loss, resync-rate, max-lag, timeout, "
				  "dead-conn-timeout, the peer's address");
	cr_assert_eq(config_max_lag(run), 8 << 20);
	cr_assert_eq(config_on_peer_loss(run), CONFIG_PEER_LOSS_FREEZE);
	cr_assert_eq(config_timeout_s(run), 9);
	cr_assert_eq(config_dead_conn_timeout_s(run), 60);
	cr_assert_eq(config_resync_rate(run), 10 << 20);
	cr_assert_str_eq(config_peer_node(run, alpha)->address, "127.0.0.2:7791");
	config_free(run); /* and fresh with it */
}

Test(config_adjust, the_same_file_changes_nothing)
{
	struct config *run = conf("", "/a.img", "127.0.0.1:7790");
	struct config *fresh = conf("", "/a.img", "127.0.0.1:7790");
	char why[256] = "", changed[256];

	cr_assert_eq(check(run, fresh, why), 0, "%s", why);
	config_adjust(run, fresh, "alpha", changed, sizeof(changed));
	cr_assert_str_eq(changed, "");
	config_free(run);
}

/* fresh (alpha's backing and beta's address) is refused with want. */
static void refused(const char *res, const char *backing_a, const char *addr_b, const char *want)
{
	struct config *run = conf("", "/a.img", "127.0.0.1:7790");
	struct config *fresh = conf(res, backing_a, addr_b);
	char why[256] = "";

	cr_assert_eq(check(run, fresh, why), -1);
	cr_assert_str_eq(why, want);
	config_free(fresh);
	config_free(run);
}

Test(config_adjust, refuses_what_needs_a_restart_naming_the_key)
{
	refused("", "/other.img", "127.0.0.1:7790",
		"[node alpha] backing changed: a restart is needed to apply it");
	refused("mode = async\n", "/a.img", "127.0.0.1:7790",
		"mode changed: a restart is needed to apply it");
	refused("peer-address-only = yes\n", "/a.img", "127.0.0.1:7790",
		"peer-address-only changed: a restart is needed to apply it");
	refused("al-extents = 16\n", "/a.img", "127.0.0.1:7790",
		"al-extents changed: a restart is needed to apply it");
}

Test(config_adjust, the_peer_judges_its_own_keys)
{
	struct config *run = conf("", "/a.img", "127.0.0.1:7790");
	struct config *fresh = conf("", "/a.img", "127.0.0.1:7791");
	char why[256] = "";

	/* For beta, its own address changed: a restart. */
	cr_assert_eq(config_adjust_check(run, fresh, "beta", why, sizeof(why)), -1);
	cr_assert_str_eq(why, "[node beta] address changed: a restart is needed to apply it");
	config_free(fresh);
	config_free(run);
}

/* gamma's address and backing, which conf3() does not write itself. */
#define GAMMA "address = 127.0.0.1:7791\nbacking = /c.img\n"

/* Three nodes: res into [resource], gamma as the lines of gamma's section,
 * then more (whole sections). */
static struct config *conf3(const char *res, const char *gamma, const char *more)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 RES "%s[node alpha]\naddress = 127.0.0.1:7789\nbacking = /a.img\n"
		     "[node beta]\naddress = 127.0.0.1:7790\nbacking = /b.img\nmode = sync\n"
		     "[node gamma]\n%s%s",
		 res, gamma, more);
	return parse(text);
}

/* me's daemon takes fresh, with want as the list of what changed. */
static void takes(struct config *run, struct config *fresh, const char *me, const char *want)
{
	char why[256] = "", changed[256];

	cr_assert_eq(config_adjust_check(run, fresh, me, why, sizeof(why)), 0, "%s", why);
	config_adjust(run, fresh, me, changed, sizeof(changed));
	cr_assert_str_eq(changed, want);
}

/* A replica's own mode and max-lag are live, named with both values. */
Test(config_adjust, a_nodes_mode_and_max_lag_are_live)
{
	struct config *run = conf3("", GAMMA "mode = async\nmax-lag = 64M\n", "");
	struct config *fresh = conf3("", GAMMA "mode = sync\nmax-lag = 128M\n", "");
	const struct config_node *gamma = config_node_by_index(run, 2);

	takes(run, fresh, "alpha",
	      "node gamma: mode async -> sync, "
	      "node gamma: max-lag 64.0 MiB -> 128.0 MiB");
	cr_assert_eq(config_node_mode(run, gamma), CONFIG_SYNC);
	cr_assert_eq(config_node_max_lag(run, gamma), 128ULL << 20);
	config_free(run);
}

/* A node that takes the resource's values again: named with what it
 * resolves to; the resource's max-lag itself is named as before. */
Test(config_adjust, a_node_back_to_the_resources_values)
{
	struct config *run = conf3("", GAMMA "mode = async\nmax-lag = 64M\n", "");
	struct config *fresh = conf3("max-lag = 32M\n", GAMMA, "");
	const struct config_node *gamma = config_node_by_index(run, 2);

	takes(run, fresh, "gamma",
	      "max-lag, node gamma: mode async -> sync, "
	      "node gamma: max-lag 64.0 MiB -> 32.0 MiB");
	cr_assert_eq(config_node_mode(run, gamma), CONFIG_SYNC);
	cr_assert_eq(config_node_max_lag(run, gamma), 32ULL << 20);
	cr_assert_eq(config_max_lag(run), 32ULL << 20);
	/* Spelling out what a node already had changes nothing. */
	fresh = conf3("max-lag = 32M\n", GAMMA "mode = sync\n", "");
	takes(run, fresh, "gamma", "");
	config_free(run);
}

Test(config_adjust, another_nodes_address_named_among_three)
{
	struct config *run = conf3("", GAMMA, "");
	struct config *fresh = conf3("", "address = 127.0.0.9:7791\nbacking = /c.img\n", "");

	takes(run, fresh, "alpha", "node gamma's address");
	cr_assert_str_eq(config_node_by_index(run, 2)->address, "127.0.0.9:7791");
	config_free(run);
}

/* fresh is refused for a daemon running me (of three nodes) with want. */
static void refused3(struct config *fresh, const char *me, const char *want)
{
	struct config *run = conf3("", GAMMA, "");
	char why[256] = "";

	cr_assert_eq(config_adjust_check(run, fresh, me, why, sizeof(why)), -1);
	cr_assert_str_eq(why, want);
	config_free(fresh);
	config_free(run);
}

Test(config_adjust, nodes_added_or_removed_need_a_restart)
{
	const char *want = "nodes added or removed: restart the daemon (blkrep down, up)";

	/* A fourth node. */
	refused3(conf3("", GAMMA, "[node delta]\naddress = 127.0.0.1:7792\nbacking = /d.img\n"),
		 "alpha", want);
	/* gamma gone: the two-node file of the same resource. */
	refused3(conf("", "/a.img", "127.0.0.1:7790"), "alpha", want);
	/* ... also for gamma itself, which is no node any more. */
	refused3(conf("", "/a.img", "127.0.0.1:7790"), "gamma", want);
	/* A key that needs a restart anyway is named first. */
	refused3(conf3("al-extents = 16\n", GAMMA,
		       "[node delta]\naddress = 127.0.0.1:7792\n"
		       "backing = /d.img\n"),
		 "alpha", "al-extents changed: a restart is needed to apply it");
}

Test(config_adjust, a_node_renamed_needs_a_restart)
{
	struct config *run = conf("", "/a.img", "127.0.0.1:7790");
	struct config *fresh =
		parse(RES "[node alpha]\naddress = 127.0.0.1:7789\nbacking = /a.img\n"
			  "[node bravo]\naddress = 127.0.0.1:7790\nbacking = /b.img\n");
	char why[256] = "";

	cr_assert_eq(check(run, fresh, why), -1);
	cr_assert_str_eq(why, "nodes added or removed: restart the daemon (blkrep down, up)");
	config_free(fresh);
	config_free(run);
}
