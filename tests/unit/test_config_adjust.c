/* daemon/config_adjust: what `blkrep adjust` takes from a re-read config
 * (config_adjust_check(), config_adjust()), without files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"

/* The config with res inserted into [resource], alpha's backing and beta's
 * address as given. */
static struct config *conf(const char *res, const char *backing_a, const char *addr_b)
{
	struct config *c = NULL;
	char text[1024], err[512] = "";

	snprintf(text, sizeof(text),
		 "[resource]\nname = r0\nsecret-file = /etc/blkrep/r0.secret\n%s"
		 "[node alpha]\naddress = 127.0.0.1:7789\nbacking = %s\n"
		 "[node beta]\naddress = %s\nbacking = /b.img\n",
		 res, backing_a, addr_b);
	cr_assert_eq(config_parse_string(text, "/t.conf", &c, err, sizeof(err)), 0, "%s", err);
	return c;
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
