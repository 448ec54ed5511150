/* Unit tests for daemon/config's quorum keys (issue 17): quorum,
 * on-no-quorum, auto-failover, promote-command in [resource]; witness,
 * state-file, priority, auto-attach in [node]; their defaults, what is
 * refused (one line naming the key), and `adjust` refusing every one. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"
#include "tests/unit/config_parse.h"

/* Lines 1-3. */
#define RES "[resource]\nname = r0\nsecret-file = /etc/blkrep/r0.secret\n"

/* Two data nodes alpha and beta and a witness w, with extra lines in
 * [resource] (from line 4), alpha's section (from line 7 when res is
 * empty) and w's (from line 13 when res and alpha are empty). */
static const char *trio(char *buf, size_t len, const char *res, const char *alpha,
			const char *witness)
{
	snprintf(buf, len,
		 RES "%s[node alpha]\naddress = 127.0.0.1:7001\nbacking = /a\n%s"
		     "[node beta]\naddress = 127.0.0.1:7002\nbacking = /b\n"
		     "[node w]\naddress = 127.0.0.1:7003\nwitness = yes\n%s",
		 res, alpha, witness);
	return buf;
}

static struct config *trio_ok(const char *res, const char *alpha, const char *witness)
{
	char text[2048];

	return parse_ok(trio(text, sizeof(text), res, alpha, witness));
}

static void trio_fails(const char *res, const char *alpha, const char *witness, const char *want)
{
	char text[2048];

	parse_fails(trio(text, sizeof(text), res, alpha, witness), want);
}

#define PAIR                                                                                       \
	"[node alpha]\naddress = 127.0.0.1:7001\nbacking = /a\n"                                   \
	"[node beta]\naddress = 127.0.0.1:7002\nbacking = /b\n"

Test(config_quorum, a_witness_votes_but_holds_no_data)
{
	struct config *c = trio_ok("", "", "");
	const struct config_node *a = config_node_by_index(c, 0), *b = config_node_by_index(c, 1);
	const struct config_node *w = config_node_by_index(c, 2);

	cr_assert_eq(config_node_count(c), 3);
	cr_assert_eq(config_data_node_count(c), 2);
	cr_assert(w->witness);
	cr_assert_not(a->witness);
	cr_assert_null(w->backing);
	cr_assert_str_eq(w->state_file, "/var/lib/blkrep/r0.witness");
	cr_assert_null(a->state_file);
	/* The only other data node: the witness is no peer for data. */
	cr_assert_eq(config_peer_node(c, a), b);
	cr_assert_eq(config_peer_node(c, b), a);
	cr_assert_null(config_peer_node(c, w));
	config_free(c);
}

Test(config_quorum, majority_by_default_with_three_voters_off_with_two)
{
	struct config *c = trio_ok("", "", "");

	cr_assert_eq(config_quorum(c), CONFIG_QUORUM_MAJORITY);
	cr_assert_eq(config_on_no_quorum(c), CONFIG_NOQ_SUSPEND);
	cr_assert_not(config_auto_failover(c));
	cr_assert_null(config_promote_command(c));
	cr_assert_str_eq(config_quorum_name(config_quorum(c)), "majority");
	cr_assert_str_eq(config_no_quorum_name(config_on_no_quorum(c)), "suspend-io");
	cr_assert_eq(config_node_by_index(c, 0)->priority, CONFIG_DEFAULT_PRIORITY);
	cr_assert_null(config_node_by_index(c, 0)->auto_attach);
	config_free(c);

	c = parse_ok(RES PAIR);
	cr_assert_eq(config_quorum(c), CONFIG_QUORUM_OFF);
	cr_assert_str_eq(config_quorum_name(config_quorum(c)), "off");
	config_free(c);

	c = parse_ok(RES "quorum = majority\n" PAIR);
	cr_assert_eq(config_quorum(c), CONFIG_QUORUM_MAJORITY);
	config_free(c);
}

Test(config_quorum, every_key_set)
{
	struct config *c =
		trio_ok("quorum = majority\non-no-quorum = io-error\n"
			"auto-failover = yes\npromote-command = mount /dev/nbd0 /srv\n",
			"priority = 200\nauto-attach = /dev/nbd0\n", "state-file = /srv/w.state\n");
	const struct config_node *a = config_node_by_index(c, 0);

	cr_assert_eq(config_on_no_quorum(c), CONFIG_NOQ_IO_ERROR);
	cr_assert_str_eq(config_no_quorum_name(CONFIG_NOQ_IO_ERROR), "io-error");
	cr_assert(config_auto_failover(c));
	cr_assert_str_eq(config_promote_command(c), "mount /dev/nbd0 /srv");
	cr_assert_eq(a->priority, 200);
	cr_assert_str_eq(a->auto_attach, "/dev/nbd0");
	cr_assert_str_eq(config_node_by_index(c, 2)->state_file, "/srv/w.state");
	config_free(c);

	c = trio_ok("quorum = off\n", "auto-attach = loop\npriority = 0\n", "");
	cr_assert_eq(config_quorum(c), CONFIG_QUORUM_OFF);
	cr_assert_str_eq(config_node_by_index(c, 0)->auto_attach, "loop");
	cr_assert_eq(config_node_by_index(c, 0)->priority, 0);
	config_free(c);
}

Test(config_quorum, bad_values_name_their_key)
{
	trio_fails("quorum = most\n", "", "",
		   FNAME ":4: bad quorum 'most' (expected off or majority)");
	trio_fails("on-no-quorum = wait\n", "", "",
		   FNAME ":4: bad on-no-quorum 'wait' (expected suspend-io or io-error)");
	trio_fails("auto-failover = maybe\n", "", "",
		   FNAME ":4: bad auto-failover 'maybe' (expected no or yes)");
	trio_fails("promote-command =\n", "", "", FNAME ":4: empty promote-command");
	trio_fails("", "priority = 1001\n", "",
		   FNAME ":7: bad priority '1001' (expected an integer from 0 to 1000)");
	trio_fails("", "auto-attach = /dev/sda\n", "",
		   FNAME ":7: bad auto-attach '/dev/sda' (expected loop or /dev/nbdN)");
	trio_fails("", "auto-attach = /dev/nbd\n", "",
		   FNAME ":7: bad auto-attach '/dev/nbd' (expected loop or /dev/nbdN)");
	trio_fails("", "witness = perhaps\n", "",
		   FNAME ":7: bad witness 'perhaps' (expected no or yes)");
	trio_fails("", "", "state-file = w.state\n",
		   FNAME ":13: bad state-file 'w.state' (expected an absolute path)");
}

Test(config_quorum, a_witness_refuses_every_data_key)
{
	const char *keys[] = { "backing = /w", "nbd = unix:/run/w.sock", "meta = /w.meta",
			       "mode = async", "max-lag = 1M",		 "auto-attach = loop",
			       "priority = 5" };
	const char *names[] = { "backing", "nbd",	  "meta",    "mode",
				"max-lag", "auto-attach", "priority" };
	char line[128], want[256];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(line, sizeof(line), "%s\n", keys[i]);
		snprintf(want, sizeof(want),
			 FNAME ":13: [node w] is a witness (witness = yes): it keeps no data, so "
			       "no %s",
			 names[i]);
		trio_fails("", "", line, want);
	}
}

Test(config_quorum, state_file_is_for_a_witness_only)
{
	trio_fails("", "state-file = /a.state\n", "",
		   FNAME ":7: [node alpha] has a state-file but is no witness (witness = yes)");
}

Test(config_quorum, auto_failover_needs_quorum)
{
	trio_fails("quorum = off\nauto-failover = yes\n", "", "",
		   FNAME ":5: auto-failover = yes needs quorum = majority (quorum is off)");
	parse_fails(RES "auto-failover = yes\n" PAIR,
		    FNAME ":4: auto-failover = yes needs quorum = majority (quorum is off by "
			  "default with 2 nodes)");
	config_free(parse_ok(RES "quorum = majority\nauto-failover = yes\n" PAIR));
}

Test(config_quorum, two_data_nodes_at_least)
{
	parse_fails(RES "[node alpha]\naddress = 127.0.0.1:7001\nbacking = /a\n"
			"[node w]\naddress = 127.0.0.1:7003\nwitness = yes\n"
			"[node v]\naddress = 127.0.0.1:7004\nwitness = yes\n",
		    FNAME ":12: 1 data node: a resource needs at least 2 nodes without witness = "
			  "yes");
	/* A witness still needs an address. */
	trio_fails("", "", "[node v]\nwitness = yes\n", FNAME ":13: [node v] has no address");
}

/* adjust: each new key needs a restart, named. */
static void adjust_refuses(const char *me, const char *res, const char *alpha, const char *witness,
			   const char *want)
{
	struct config *run = trio_ok("", "", ""), *fresh = trio_ok(res, alpha, witness);
	char why[256] = "";

	cr_assert_eq(config_adjust_check(run, fresh, me, why, sizeof(why)), -1);
	cr_assert_str_eq(why, want);
	config_free(run);
	config_free(fresh);
}

Test(config_quorum, adjust_needs_a_restart_for_every_new_key)
{
	adjust_refuses("alpha", "quorum = off\n", "", "",
		       "quorum changed: a restart is needed to apply it");
	adjust_refuses("alpha", "on-no-quorum = io-error\n", "", "",
		       "on-no-quorum changed: a restart is needed to apply it");
	adjust_refuses("alpha", "auto-failover = yes\n", "", "",
		       "auto-failover changed: a restart is needed to apply it");
	adjust_refuses("alpha", "promote-command = true\n", "", "",
		       "promote-command changed: a restart is needed to apply it");
	adjust_refuses("alpha", "", "auto-attach = loop\n", "",
		       "[node alpha] auto-attach changed: a restart is needed to apply it");
	adjust_refuses("alpha", "", "priority = 7\n", "",
		       "[node alpha] priority changed: a restart is needed to apply it");
	/* Every voter reads every node's priority (the failover order). */
	adjust_refuses("beta", "", "priority = 7\n", "",
		       "[node alpha] priority changed: a restart is needed to apply it");
	adjust_refuses("w", "", "", "state-file = /x\n",
		       "[node w] state-file changed: a restart is needed to apply it");
}
