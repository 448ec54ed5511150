/* Unit tests for daemon/config: every rule of the config file, with the
 * exact "FILE:LINE: reason" each refusal gives; size parsing; the secret
 * file's checks on real temporary files; choosing the local node. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/config_value.h"
#include "tests/unit/config_parse.h"

/* Lines 1-3. */
#define RES "[resource]\nname = r0\nsecret-file = /etc/blkrep/r0.secret\n"
/* Six lines: [node alpha] on the first, [node beta] on the fourth. */
#define NODES                                                                                      \
	"[node alpha]\n"                                                                           \
	"address = 127.0.0.1:7789\n"                                                               \
	"backing = /var/lib/blkrep/r0.img\n"                                                       \
	"[node beta]\n"                                                                            \
	"address = 127.0.0.1:7790\n"                                                               \
	"backing = /var/lib/blkrep/r0-b.img\n"

/* A resource key on line 4, followed by the nodes. */
static void res_key_fails(const char *line, const char *reason)
{
	char text[2048], want[1024];

	snprintf(text, sizeof(text), RES "%s\n" NODES, line);
	snprintf(want, sizeof(want), FNAME ":4: %s", reason);
	parse_fails(text, want);
}

static struct config *res_key_ok(const char *line)
{
	char text[1024];

	snprintf(text, sizeof(text), RES "%s\n" NODES, line);
	return parse_ok(text);
}

/* A key of node beta on line 10. */
static void node_key_fails(const char *line, const char *reason)
{
	char text[2048], want[1024];

	snprintf(text, sizeof(text), RES NODES "%s\n", line);
	snprintf(want, sizeof(want), FNAME ":10: %s", reason);
	parse_fails(text, want);
}

static struct config *node_key_ok(const char *line)
{
	char text[1024];

	snprintf(text, sizeof(text), RES NODES "%s\n", line);
	return parse_ok(text);
}

Test(config, example_from_the_issue)
{
	struct config *c = parse_ok("[resource]\n"
				    "name = r0\n"
				    "# sync | async\n"
				    "mode = sync\n"
				    "# continue | freeze\n"
				    "on-peer-loss = continue\n"
				    "secret-file = /etc/blkrep/r0.secret\n"
				    "[node alpha]\n"
				    "address = 127.0.0.1:7789\n"
				    "backing = /var/lib/blkrep/r0.img\n"
				    "nbd = unix:/run/blkrep/r0.nbd\n"
				    "[node beta]\n"
				    "address = 127.0.0.1:7790\n"
				    "backing = /var/lib/blkrep/r0-b.img\n");
	const struct config_node *a = config_node_by_index(c, 0);
	const struct config_node *b = config_node_by_index(c, 1);

	cr_assert_str_eq(config_path(c), FNAME);
	cr_assert_str_eq(config_resource_name(c), "r0");
	cr_assert_eq(config_mode(c), CONFIG_SYNC);
	cr_assert_eq(config_on_peer_loss(c), CONFIG_PEER_LOSS_CONTINUE);
	cr_assert_str_eq(config_secret_file(c), "/etc/blkrep/r0.secret");
	cr_assert_not(config_allow_unauthenticated(c));
	cr_assert_str_eq(a->name, "alpha");
	cr_assert_str_eq(a->address, "127.0.0.1:7789");
	cr_assert_str_eq(a->backing, "/var/lib/blkrep/r0.img");
	cr_assert_str_eq(a->nbd, "unix:/run/blkrep/r0.nbd");
	cr_assert_null(a->meta);
	cr_assert_str_eq(b->name, "beta");
	cr_assert_str_eq(b->address, "127.0.0.1:7790");
	cr_assert_str_eq(b->backing, "/var/lib/blkrep/r0-b.img");
	cr_assert_null(b->nbd);
	cr_assert_null(b->meta);
	cr_assert_null(config_node_by_index(c, 2));
	cr_assert_eq(config_peer_node(c, a), b);
	cr_assert_eq(config_peer_node(c, b), a);
	config_free(c);
}

Test(config, defaults)
{
	struct config *c = parse_ok(RES NODES);

	cr_assert_eq(config_mode(c), CONFIG_SYNC);
	cr_assert_eq(config_on_peer_loss(c), CONFIG_PEER_LOSS_CONTINUE);
	cr_assert_not(config_allow_unauthenticated(c));
	cr_assert_eq(config_resync_rate(c), 0); /* adaptive */
	cr_assert_eq(config_max_lag(c), 64ULL << 20);
	cr_assert_eq(config_after_split_brain(c), CONFIG_SB_DISCONNECT);
	cr_assert_eq(config_bitmap_granularity(c), 64U << 10);
	cr_assert_eq(config_al_extents(c), 512);
	cr_assert_eq(config_timeout_s(c), 30);
	cr_assert_eq(config_dead_conn_timeout_s(c), 120);
	config_free(c);
}

Test(config, every_key_set)
{
	struct config *c = parse_ok("[resource]\n"
				    "name = r_1.x-Y\n"
				    "mode = async\n"
				    "on-peer-loss = freeze\n"
				    "allow-unauthenticated = yes\nallow-unencrypted = yes\n"
				    "resync-rate = 100M\n"
				    "max-lag = 1G\n"
				    "after-split-brain = discard-zero-changes\n"
				    "bitmap-granularity = 4K\n"
				    "al-extents = 16\n"
				    "timeout = 5\n"
				    "dead-conn-timeout = 7\n"
				    "[node a]\n"
				    "address = [::1]:1\n"
				    "backing = /dev/vdb\n"
				    "nbd = localhost:10809\n"
				    "meta = /var/lib/blkrep/a.md\n"
				    "[node b]\n"
				    "address = host-b.example.com:65535\n"
				    "backing = /dev/vdc\n"
				    "meta = internal\n");
	const struct config_node *a = config_node_by_index(c, 0);

	cr_assert_str_eq(config_resource_name(c), "r_1.x-Y");
	cr_assert_eq(config_mode(c), CONFIG_ASYNC);
	cr_assert_eq(config_on_peer_loss(c), CONFIG_PEER_LOSS_FREEZE);
	cr_assert(config_allow_unauthenticated(c));
	cr_assert_null(config_secret_file(c));
	cr_assert_eq(config_resync_rate(c), 100ULL << 20);
	cr_assert_eq(config_max_lag(c), 1ULL << 30);
	cr_assert_eq(config_after_split_brain(c), CONFIG_SB_DISCARD_ZERO_CHANGES);
	cr_assert_eq(config_bitmap_granularity(c), 4096);
	cr_assert_eq(config_al_extents(c), 16);
	cr_assert_eq(config_timeout_s(c), 5);
	cr_assert_eq(config_dead_conn_timeout_s(c), 7);
	cr_assert_str_eq(a->address, "[::1]:1");
	cr_assert_str_eq(a->nbd, "localhost:10809");
	cr_assert_str_eq(a->meta, "/var/lib/blkrep/a.md");
	cr_assert_null(config_node_by_index(c, 1)->meta);
	config_free(c);
}

Test(config, comments_blank_lines_indentation_crlf)
{
	struct config *c = parse_ok("# leading comment\r\n"
				    "\r\n"
				    "; another\r\n"
				    "[resource]\r\n"
				    "    name = r0\r\n"
				    "\t# indented comment\r\n"
				    "\tallow-unauthenticated=yes\r\n"
				    "allow-unencrypted = yes\r\n"
				    "   [ node  alpha ]\r\n"
				    "  address = 127.0.0.1:1\r\n"
				    "  backing = /a\r\n"
				    "[node beta]\n"
				    "  address = 127.0.0.1:2\n"
				    "  backing = /b"); /* no final newline */

	cr_assert_str_eq(config_resource_name(c), "r0");
	cr_assert_str_eq(config_node_by_index(c, 0)->name, "alpha");
	cr_assert_str_eq(config_node_by_index(c, 0)->backing, "/a");
	cr_assert_str_eq(config_node_by_index(c, 1)->backing, "/b");
	config_free(c);
}

Test(config, node_names_and_sections_in_any_order)
{
	struct config *c = parse_ok(NODES RES);

	cr_assert_str_eq(config_resource_name(c), "r0");
	cr_assert_str_eq(config_node_by_index(c, 1)->name, "beta");
	config_free(c);
}

Test(config, resource_name_rules)
{
	char line[512];

	snprintf(line, sizeof(line),
		 "[resource]\nname = %.63s\nallow-unauthenticated = yes\nallow-unencrypted = yes\n" NODES,
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	config_free(parse_ok(line));
	parse_fails("[resource]\nname = " /* 64 characters */
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		    FNAME ":2: bad name '"
			  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			  "' (expected 1-63 characters of A-Z a-z 0-9 _ . -)");
	parse_fails("[resource]\nname = r 0\n",
		    FNAME ":2: bad name 'r 0' (expected 1-63 characters of A-Z a-z 0-9 _ . -)");
	parse_fails("[resource]\nname = r/0\n",
		    FNAME ":2: bad name 'r/0' (expected 1-63 characters of A-Z a-z 0-9 _ . -)");
	parse_fails("[resource]\nname =\n",
		    FNAME ":2: bad name '' (expected 1-63 characters of A-Z a-z 0-9 _ . -)");
}

Test(config, choice_values)
{
	res_key_fails("mode = Sync", "bad mode 'Sync' (expected sync or async)");
	res_key_fails("mode = semi", "bad mode 'semi' (expected sync or async)");
	res_key_fails("on-peer-loss = stop",
		      "bad on-peer-loss 'stop' (expected continue or freeze)");
	res_key_fails("after-split-brain = discard",
		      "bad after-split-brain 'discard' (expected disconnect or "
		      "discard-zero-changes)");
	res_key_fails("allow-unauthenticated = true",
		      "bad allow-unauthenticated 'true' (expected no or yes)");
	res_key_fails("mode = sync#comment", "bad mode 'sync#comment' (expected sync or async)");
}

Test(config, resync_rate)
{
	static const struct {
		const char *v;
		uint64_t want;
	} ok[] = {
		{ "adaptive", 0 },	     { "0", 0 },
		{ "100M", 100ULL << 20 },    { "100M/s", 100ULL << 20 },
		{ "100MB/s", 100ULL << 20 }, { "1g", 1ULL << 30 },
		{ "12345", 12345 },
	};
	char line[64];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config *c;

		snprintf(line, sizeof(line), "resync-rate = %s", ok[i].v);
		c = res_key_ok(line);
		cr_assert_eq(config_resync_rate(c), ok[i].want, "%s", ok[i].v);
		config_free(c);
	}
	res_key_fails("resync-rate = fast",
		      "bad resync-rate 'fast' (expected adaptive or a size per second like 100M)");
	res_key_fails(
		"resync-rate = 100M/h",
		"bad resync-rate '100M/h' (expected adaptive or a size per second like 100M)");
	res_key_fails("resync-rate = /s",
		      "bad resync-rate '/s' (expected adaptive or a size per second like 100M)");
}

Test(config, max_lag)
{
	struct config *c = res_key_ok("max-lag = 8MiB");

	cr_assert_eq(config_max_lag(c), 8ULL << 20);
	config_free(c);
	res_key_fails("max-lag = 0", "bad max-lag '0' (must be more than 0)");
	res_key_fails("max-lag = lots",
		      "bad max-lag 'lots' (expected a size like 4096, 64K or 1G)");
}

Test(config, bitmap_granularity)
{
	static const char *const ok[] = { "4K", "4096", "8k", "128KiB", "1M", "1048576" };
	static const char *const bad[] = { "2K", "2M", "96K", "0", "4097", "1G" };
	char line[64], want[160];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config *c;
		uint64_t g;

		snprintf(line, sizeof(line), "bitmap-granularity = %s", ok[i]);
		c = res_key_ok(line);
		cr_assert_eq(config_parse_size(ok[i], &g), 0);
		cr_assert_eq(config_bitmap_granularity(c), g, "%s", ok[i]);
		config_free(c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "bitmap-granularity = %s", bad[i]);
		snprintf(want, sizeof(want),
			 "bad bitmap-granularity '%s' (expected a power of two from 4K to 1M)",
			 bad[i]);
		res_key_fails(line, want);
	}
	res_key_fails("bitmap-granularity = 64Q",
		      "bad bitmap-granularity '64Q' (expected a size like 4096, 64K or 1G)");
}

Test(config, integers)
{
	struct config *c = res_key_ok("al-extents = 1000");

	cr_assert_eq(config_al_extents(c), 1000);
	config_free(c);
	res_key_fails("al-extents = 15",
		      "bad al-extents '15' (expected an integer from 16 to 1000)");
	res_key_fails("al-extents = 1001",
		      "bad al-extents '1001' (expected an integer from 16 to 1000)");
	res_key_fails("al-extents = 5x",
		      "bad al-extents '5x' (expected an integer from 16 to 1000)");
	res_key_fails("al-extents = -20",
		      "bad al-extents '-20' (expected an integer from 16 to 1000)");
	res_key_fails(
		"al-extents = 99999999999999999999",
		"bad al-extents '99999999999999999999' (expected an integer from 16 to 1000)");
	res_key_fails("timeout = 0", "bad timeout '0' (expected an integer from 1 to 86400)");
	res_key_fails("timeout = 30s", "bad timeout '30s' (expected an integer from 1 to 86400)");
	res_key_fails("dead-conn-timeout = ",
		      "bad dead-conn-timeout '' (expected an integer from 1 to 86400)");
	c = res_key_ok("dead-conn-timeout = 86400");
	cr_assert_eq(config_dead_conn_timeout_s(c), 86400);
	config_free(c);
}

Test(config, size_parsing)
{
	static const struct {
		const char *s;
		uint64_t want;
	} ok[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "100B", 100 },
		{ "64K", 64ULL << 10 },
		{ "64k", 64ULL << 10 },
		{ "64KB", 64ULL << 10 },
		{ "64KiB", 64ULL << 10 },
		{ "64kib", 64ULL << 10 },
		{ "1m", 1ULL << 20 },
		{ "3G", 3ULL << 30 },
		{ "1T", 1ULL << 40 },
		{ "1tb", 1ULL << 40 },
		{ "0T", 0 },
		{ "16777215T", 16777215ULL << 40 },
		{ "18446744073709551615", UINT64_MAX },
		{ "007", 7 },
	};
	static const char *const bad[] = {
		"",
		"K",
		"B",
		"-1",
		"+1",
		" 1",
		"1 ",
		"64 K",
		"1.5G",
		"64X",
		"64KX",
		"64KBB",
		"64iB",
		"64Ki",
		"1P",
		"16777216T",		/* 2^64 */
		"18446744073709551616", /* 2^64 */
		"99999999999999999999999",
		"0x10",
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 12345;

		cr_assert_eq(config_parse_size(ok[i].s, &v), 0, "'%s' refused", ok[i].s);
		cr_assert_eq(v, ok[i].want, "'%s' gave %llu", ok[i].s, (unsigned long long)v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;

		cr_assert_eq(config_parse_size(bad[i], &v), -1, "'%s' accepted", bad[i]);
		cr_assert_eq(v, 12345, "'%s' wrote the output", bad[i]);
	}
}

Test(config, secret_neither)
{
	parse_fails("[resource]\nname = r0\n" NODES,
		    FNAME ":1: no secret-file, tls-ca nor allow-unauthenticated = yes: refusing to "
			  "run unauthenticated");
	parse_fails("# x\n[resource]\nname = r0\nallow-unauthenticated = no\n" NODES,
		    FNAME ":2: no secret-file, tls-ca nor allow-unauthenticated = yes: refusing to "
			  "run unauthenticated");
}

Test(config, secret_both)
{
	parse_fails("[resource]\nname = r0\nallow-unauthenticated = yes\nsecret-file = /s\n" NODES,
		    FNAME ":4: both secret-file and allow-unauthenticated = yes: choose one");
	parse_fails("[resource]\nsecret-file = /s\nallow-unauthenticated = yes\nname = r0\n" NODES,
		    FNAME ":3: both secret-file and allow-unauthenticated = yes: choose one");
}

Test(config, secret_file_and_allow_no)
{
	struct config *c = res_key_ok("allow-unauthenticated = no");

	cr_assert_not(config_allow_unauthenticated(c));
	cr_assert_str_eq(config_secret_file(c), "/etc/blkrep/r0.secret");
	config_free(c);
	parse_fails("[resource]\nname = r0\nsecret-file =\n", FNAME ":3: empty secret-file");
}

/* Relative to the config file's directory, whatever the working directory. */
Test(config, relative_secret_file)
{
	const char *text = "[resource]\nname = r0\nsecret-file = keys/r0.secret\n" NODES;
	struct config *c = NULL;
	char err[256];

	c = parse_ok(text);
	cr_assert_str_eq(config_secret_file(c), "/etc/blkrep/keys/r0.secret");
	config_free(c);
	cr_assert_eq(config_parse_string(text, "r0.conf", &c, err, sizeof(err)), 0);
	cr_assert_str_eq(config_secret_file(c), "keys/r0.secret");
	config_free(c);
	cr_assert_eq(config_parse_string(text, "conf/r0.conf", &c, err, sizeof(err)), 0);
	cr_assert_str_eq(config_secret_file(c), "conf/keys/r0.secret");
	config_free(c);
}

Test(config, unknown_section_and_keys)
{
	parse_fails(RES "[global]\n" NODES,
		    FNAME ":4: unknown section [global] (expected [resource] or [node NAME])");
	parse_fails(RES "[node]\n" NODES,
		    FNAME ":4: unknown section [node] (expected [resource] or [node NAME])");
	parse_fails(RES "[nodes alpha]\n",
		    FNAME ":4: unknown section [nodes alpha] (expected [resource] or [node NAME])");
	res_key_fails("protocol = C", "unknown key 'protocol' in [resource]");
	res_key_fails("Name = r1", "unknown key 'Name' in [resource]");
	node_key_fails("port = 7789", "unknown key 'port' in [node beta]");
	node_key_fails("name = r0", "unknown key 'name' in [node beta]");
	parse_fails("name = r0\n" RES,
		    FNAME ":1: 'name' is outside any section (expected [resource] or [node NAME])");
}

Test(config, duplicates)
{
	res_key_fails("name = r1", "duplicate key 'name' (first set at line 2)");
	node_key_fails("backing = /x", "duplicate key 'backing' (first set at line 9)");
	parse_fails(RES NODES "[resource]\n", FNAME ":10: duplicate [resource] (first at line 1)");
	parse_fails(RES NODES "[node alpha]\n",
		    FNAME ":10: duplicate [node alpha] (first at line 4)");
	/* A key repeated in the other node is no duplicate. */
	config_free(parse_ok(RES NODES "nbd = unix:/run/b.nbd\n"));
}

Test(config, node_count)
{
	/* More than two: tests/unit/test_config_nodes.c. */
	parse_fails(RES "[node alpha]\naddress = 127.0.0.1:1\nbacking = /a\n# end\n",
		    FNAME ":7: 1 [node NAME] section: a resource has 2 to 8 nodes");
	parse_fails(RES, FNAME ":3: 0 [node NAME] sections: a resource has 2 to 8 nodes");
	parse_fails(RES "[node bad/name]\n",
		    FNAME ":4: bad node name 'bad/name' (expected 1-63 characters of A-Z a-z 0-9 "
			  "_ . -)");
}

Test(config, missing_required)
{
	parse_fails(NODES "\n", FNAME ":7: no [resource] section");
	parse_fails("", FNAME ":1: no [resource] section");
	parse_fails("# only a comment\n\n\n", FNAME ":3: no [resource] section");
	parse_fails(NODES "[resource]\nsecret-file = /s\n", FNAME ":7: [resource] has no name");
	parse_fails(
		RES
		"[node alpha]\nbacking = /a\n[node beta]\naddress = 127.0.0.1:2\nbacking = /b\n",
		FNAME ":4: [node alpha] has no address");
	parse_fails(RES "[node alpha]\naddress = 127.0.0.1:1\nbacking = /a\n[node beta]\n"
			"address = 127.0.0.1:2\n",
		    FNAME ":7: [node beta] has no backing");
}

Test(config, addresses)
{
	static const char *const ok[] = {
		"127.0.0.1:7789",  "[::1]:7789",	 "[fe80::1%eth0]:1",
		"localhost:65535", "db-1.example.com:1", "10.0.0.1:00080",
	};
	static const char *const bad[] = {
		"127.0.0.1",	 "127.0.0.1:",	  "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:+80", "127.0.0.1:80x", ":7789",	 "::1:7789",
		"[::1]",	 "[::1]7789",	  "[]:1",	 "[nothost]:1",
		"a:b:c",	 "127.0.0.300:1", "my host:1",	 "127.0.0.1:123456",
		"[::1%]:1",
	};
	char line[512], want[256];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config *c;

		snprintf(line, sizeof(line),
			 RES
			 "[node a]\naddress = %s\nbacking = /a\n[node b]\naddress = 127.0.0.9:9\n"
			 "backing = /b\n",
			 ok[i]);
		c = parse_ok(line);
		cr_assert_str_eq(config_node_by_index(c, 0)->address, ok[i]);
		config_free(c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), RES "[node a]\naddress = %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 FNAME ":5: bad address '%s' (expected HOST:PORT or [IPV6]:PORT, port "
			       "1-65535)",
			 bad[i]);
		parse_fails(line, want);
	}
}

Test(config, address_split)
{
	char host[64];
	uint16_t port = 0;

	cr_assert_eq(config_address_split("127.0.0.1:7789", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "127.0.0.1");
	cr_assert_eq(port, 7789);
	cr_assert_eq(config_address_split("[fe80::1%eth0]:65535", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "fe80::1%eth0");
	cr_assert_eq(port, 65535);
	cr_assert_eq(config_address_split("example.org:1", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "example.org");
	cr_assert_eq(port, 1);
	/* Host too long for the caller's buffer. */
	cr_assert_eq(config_address_split("example.org:1", host, 11, &port), -1);
	cr_assert_eq(config_address_split("example.org:1", host, 12, &port), 0);
}

Test(config, same_address_twice)
{
	parse_fails(RES "[node a]\naddress = 127.0.0.1:1\nbacking = /a\n"
			"[node b]\naddress = 127.0.0.1:1\nbacking = /b\n",
		    FNAME ":7: nodes a and b have the same address 127.0.0.1:1");
}

Test(config, paths)
{
	struct config *c;

	parse_fails(RES "[node a]\nbacking = r0.img\n",
		    FNAME ":5: bad backing 'r0.img' (expected an absolute path)");
	parse_fails(RES "[node a]\nbacking =\n",
		    FNAME ":5: bad backing '' (expected an absolute path)");
	node_key_fails("meta = md.img",
		       "bad meta 'md.img' (expected internal or an absolute path)");
	node_key_fails("meta = Internal",
		       "bad meta 'Internal' (expected internal or an absolute path)");
	c = node_key_ok("meta = /var/lib/blkrep/b.md");
	cr_assert_str_eq(config_node_by_index(c, 1)->meta, "/var/lib/blkrep/b.md");
	config_free(c);
	c = node_key_ok("meta = internal");
	cr_assert_null(config_node_by_index(c, 1)->meta);
	config_free(c);
}

Test(config, nbd_endpoint)
{
	static const char *const bad[] = {
		"unix:",
		"unix:r0.nbd",
		"r0.nbd",
		"tcp:1.2.3.4:5",
		"127.0.0.1",
		/* a path of 108 bytes: sun_path has no room for its NUL */
		"unix:/run/blkrep/"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	char line[256], want[512];
	struct config *c;
	size_t i;

	c = node_key_ok("nbd = unix:/run/blkrep/r0.nbd");
	cr_assert_str_eq(config_node_by_index(c, 1)->nbd, "unix:/run/blkrep/r0.nbd");
	config_free(c);
	c = node_key_ok("nbd = 0.0.0.0:10809");
	cr_assert_str_eq(config_node_by_index(c, 1)->nbd, "0.0.0.0:10809");
	config_free(c);
	c = node_key_ok("nbd = [::]:10809");
	config_free(c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "nbd = %s", bad[i]);
		snprintf(want, sizeof(want),
			 "bad nbd '%s' (expected unix:/ABSOLUTE/PATH shorter than 108 bytes, or "
			 "HOST:PORT)",
			 bad[i]);
		node_key_fails(line, want);
	}
}

/* After a value (or a header), '#' or ';' with a blank before it starts a
 * comment, as in DRBD's configs and the README's example; without one it
 * is part of the value. */
Test(config, comments_after_values)
{
	struct config *c = parse_ok("[resource]   # the resource\n"
				    "name = r0 ; its name\n"
				    "secret-file = /etc/blkrep/r0#1.secret\t# chmod 600\n"
				    "mode = async\t;comment\n"
				    "max-lag = 64M #\n"
				    "[node alpha] ; first\n"
				    "address = 127.0.0.1:7789   # a comment: with # and ; inside\n"
				    "backing = /var/lib/blkrep/a;b.img\n"
				    "[node beta]\n"
				    "address = 127.0.0.1:7790\n"
				    "backing = /var/lib/blkrep/b.img # \"quoted\" # twice\r\n");

	cr_assert_str_eq(config_resource_name(c), "r0");
	cr_assert_str_eq(config_secret_file(c), "/etc/blkrep/r0#1.secret");
	cr_assert_eq(config_mode(c), CONFIG_ASYNC);
	cr_assert_eq(config_max_lag(c), 64ULL << 20);
	cr_assert_str_eq(config_node_by_index(c, 0)->address, "127.0.0.1:7789");
	cr_assert_str_eq(config_node_by_index(c, 0)->backing, "/var/lib/blkrep/a;b.img");
	cr_assert_str_eq(config_node_by_index(c, 1)->backing, "/var/lib/blkrep/b.img");
	config_free(c);
	res_key_fails("mode = # nothing but a comment",
		      "bad mode '' (expected sync or async)");
}

Test(config, comment_at)
{
	cr_assert_eq(config_value_comment_at("a = b # c", 9), 6);
	cr_assert_eq(config_value_comment_at("a = b\t;c", 8), 6);
	cr_assert_eq(config_value_comment_at("a = b#c;d", 9), 9);
	cr_assert_eq(config_value_comment_at("# whole", 7), 7, "a whole-line comment stays one");
	cr_assert_eq(config_value_comment_at("# a ; b", 7), 4, "and what is cut leaves one");
	cr_assert_eq(config_value_comment_at("", 0), 0);
}

Test(config, syntax_errors)
{
	parse_fails(RES "this is not a key\n" NODES,
		    FNAME ":4: expected 'key = value', '[section]' or a comment");
	parse_fails(RES "[node alpha\n", FNAME ":4: no ']' closing the section header");
	parse_fails(RES "[node alpha] extra\n", FNAME ":4: text after the section header's ']'");
	parse_fails(RES "[node alpha] ;comment\n" "address = x\n",
		    FNAME ":5: bad address 'x' (expected HOST:PORT or [IPV6]:PORT, port 1-65535)");
	/* inih's complaint about an earlier line wins over ours about a later. */
	parse_fails("junk\n" RES "mode = bogus\n", FNAME ":1: expected 'key = value', "
							 "'[section]' or a comment");
	/* Ours about an earlier line wins over inih's about a later one. */
	parse_fails(RES "mode = bogus\njunk\n",
		    FNAME ":4: bad mode 'bogus' (expected sync or async)");
}

Test(config, long_lines)
{
	char text[1024], want[128];
	char path[300];

	/* 198 characters is the most a line may hold. */
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	snprintf(text, sizeof(text), RES NODES "meta = %.*s\n", 198 - 7, path);
	config_free(parse_ok(text));
	snprintf(text, sizeof(text), RES NODES "meta = %.*s\n", 199 - 7, path);
	snprintf(want, sizeof(want), FNAME ":10: line longer than 198 characters");
	parse_fails(text, want);
}

/* Indentation would make inih glue the line to the previous value. */
Test(config, indented_key_is_not_a_continuation)
{
	struct config *c = parse_ok(RES "[node alpha]\n"
					"address = 127.0.0.1:1\n"
					"        backing = /a\n"
					"[node beta]\n"
					"address = 127.0.0.1:2\n"
					"\tbacking = /b\n");

	cr_assert_str_eq(config_node_by_index(c, 0)->address, "127.0.0.1:1");
	cr_assert_str_eq(config_node_by_index(c, 0)->backing, "/a");
	config_free(c);
}

Test(config, small_error_buffer)
{
	struct config *c = NULL;
	char err[16];

	memset(err, 'x', sizeof(err));
	cr_assert_eq(config_parse_string("[bogus]\n", FNAME, &c, err, 8), -1);
	cr_assert_str_eq(err, "/etc/bl");
	cr_assert_eq(err[8], 'x');
	cr_assert_eq(config_parse_string("[bogus]\n", FNAME, &c, NULL, 0), -1);
	cr_assert_null(c);
}

Test(config, local_node_by_name)
{
	struct config *c = parse_ok(RES NODES);
	char err[256] = "";

	cr_assert_eq(config_local_node(c, "alpha", err, sizeof(err)), config_node_by_index(c, 0));
	cr_assert_eq(config_local_node(c, "beta", err, sizeof(err)), config_node_by_index(c, 1));
	cr_assert_null(config_local_node(c, "gamma", err, sizeof(err)));
	cr_assert_str_eq(err, "no node gamma in " FNAME " (nodes: alpha, beta)");
	cr_assert_null(config_local_node(c, "Alpha", err, sizeof(err)));
	cr_assert_null(config_peer_node(c, NULL));
	config_free(c);
}

Test(config, local_node_by_host_name)
{
	struct config *c = parse_ok(RES NODES);
	char err[256] = "";

	cr_assert_eq(config_node_for_host(c, "alpha", err, sizeof(err)),
		     config_node_by_index(c, 0));
	cr_assert_eq(config_node_for_host(c, "beta.example.com", err, sizeof(err)),
		     config_node_by_index(c, 1));
	cr_assert_null(config_node_for_host(c, "alphabet", err, sizeof(err)));
	cr_assert_null(config_node_for_host(c, "gamma.example.com", err, sizeof(err)));
	cr_assert_str_eq(err, "this host (gamma.example.com) is not a node in " FNAME
			      " (nodes: alpha, beta): use --node NAME");
	config_free(c);

	/* The whole host name beats its first label. */
	c = parse_ok(RES "[node db]\naddress = 127.0.0.1:1\nbacking = /a\n"
			 "[node db.example.com]\naddress = 127.0.0.1:2\nbacking = /b\n");
	cr_assert_eq(config_node_for_host(c, "db.example.com", err, sizeof(err)),
		     config_node_by_index(c, 1));
	cr_assert_eq(config_node_for_host(c, "db.example.org", err, sizeof(err)),
		     config_node_by_index(c, 0));
	config_free(c);
}

/* config_local_node(NULL) asks the system: a node named like this host's
 * first label is found, and a config without one says to use --node. */
Test(config, local_node_from_gethostname)
{
	char host[256], shortname[64], text[512], err[256] = "";
	const struct config_node *n;
	struct config *c;
	size_t len;

	cr_assert_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	len = strcspn(host, ".");
	if (len == 0 || len > 63 ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") < len)
		cr_skip_test("host name '%s' cannot be a node name", host);
	snprintf(shortname, sizeof(shortname), "%.*s", (int)len, host);
	snprintf(text, sizeof(text),
		 RES "[node zz-other]\naddress = 127.0.0.1:1\nbacking = /a\n"
		     "[node %s]\naddress = 127.0.0.1:2\nbacking = /b\n",
		 shortname);
	c = parse_ok(text);
	n = config_local_node(c, NULL, err, sizeof(err));
	cr_assert_not_null(n, "%s", err);
	cr_assert_str_eq(n->name, shortname);
	cr_assert_str_eq(config_peer_node(c, n)->name, "zz-other");
	config_free(c);

	c = parse_ok(RES "[node zz-no-such-host-1]\naddress = 127.0.0.1:1\nbacking = /a\n"
			 "[node zz-no-such-host-2]\naddress = 127.0.0.1:2\nbacking = /b\n");
	cr_assert_null(config_local_node(c, NULL, err, sizeof(err)));
	cr_assert(strstr(err, "use --node NAME"), "%s", err);
	cr_assert(strstr(err, "(nodes: zz-no-such-host-1, zz-no-such-host-2)"), "%s", err);
	config_free(c);
}

Test(config, names_for_status)
{
	cr_assert_str_eq(config_mode_name(CONFIG_SYNC), "sync");
	cr_assert_str_eq(config_mode_name(CONFIG_ASYNC), "async");
	cr_assert_str_eq(config_peer_loss_name(CONFIG_PEER_LOSS_CONTINUE), "continue");
	cr_assert_str_eq(config_peer_loss_name(CONFIG_PEER_LOSS_FREEZE), "freeze");
	cr_assert_str_eq(config_split_brain_name(CONFIG_SB_DISCONNECT), "disconnect");
	cr_assert_str_eq(config_split_brain_name(CONFIG_SB_DISCARD_ZERO_CHANGES),
			 "discard-zero-changes");
}

/* Files: a scratch directory per test, removed by the fini. */
static char tmpdir[64];

static void make_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/blkrep-test-config.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)!system(cmd);
}

/* Writes len bytes to tmpdir/name with exactly this mode; returns the path. */
static const char *write_file(const char *name, const void *data, size_t len, mode_t mode)
{
	static char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0); /* the umask does not apply */
	close(fd);
	return path;
}

TestSuite(config_files, .init = make_tmpdir, .fini = remove_tmpdir);

Test(config_files, load_reads_and_reports_the_path)
{
	const char *text = RES NODES "colour = blue\n";
	const char *path = write_file("r0.conf", text, strlen(text), 0644);
	char err[512], want[512];
	struct config *c = NULL;

	snprintf(want, sizeof(want), "%s:10: unknown key 'colour' in [node beta]", path);
	cr_assert_eq(config_load(path, &c, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);

	text = "[resource]\nname = r0\nsecret-file = r0.secret\n" NODES;
	path = write_file("r0.conf", text, strlen(text), 0644);
	cr_assert_eq(config_load(path, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(config_path(c), path);
	snprintf(want, sizeof(want), "%s/r0.secret", tmpdir);
	cr_assert_str_eq(config_secret_file(c), want);
	config_free(c);
}

Test(config_files, load_refuses_missing_and_binary)
{
	char err[512], want[512], missing[128];
	struct config *c = NULL;
	const char *path;

	snprintf(missing, sizeof(missing), "%s/none.conf", tmpdir);
	snprintf(want, sizeof(want), "%s: No such file or directory", missing);
	cr_assert_eq(config_load(missing, &c, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);
	path = write_file("nul.conf", "[resource]\0x", 12, 0644);
	snprintf(want, sizeof(want), "%s: contains a NUL byte: not a config file", path);
	cr_assert_eq(config_load(path, &c, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);
	snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
	cr_assert_eq(config_load(tmpdir, &c, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);
	cr_assert_null(c);
}

Test(config_files, secret_0600_accepted_newlines_stripped)
{
	const char *path = write_file("s", "hunter2\n\n", 9, 0600);
	uint8_t secret[CONFIG_SECRET_MAX];
	size_t len = 0;
	char err[256] = "";

	cr_assert_eq(config_load_secret(path, true, secret, &len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(len, 7);
	cr_assert_eq(memcmp(secret, "hunter2", 7), 0);
	/* Inner newlines and binary bytes are part of the secret. */
	path = write_file("s", "a\nb\0c\r\n", 7, 0400);
	cr_assert_eq(config_load_secret(path, true, secret, &len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(secret, "a\nb\0c", 5), 0);
}

Test(config_files, secret_open_to_group_or_others_refused)
{
	static const mode_t modes[] = { 0644, 0640, 0604, 0620, 0602, 0660, 0610 };
	uint8_t secret[CONFIG_SECRET_MAX];
	char err[256], want[256];
	size_t i, len = 0;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		const char *path = write_file("s", "hunter2", 7, modes[i]);

		snprintf(want, sizeof(want),
			 "%s: secret file is accessible by group or others (chmod 600 it)", path);
		cr_assert_eq(config_load_secret(path, true, secret, &len, err, sizeof(err)), -1,
			     "mode %o accepted", (unsigned int)modes[i]);
		cr_assert_str_eq(err, want);
		cr_assert_eq(secret[0], 0, "secret left in the buffer");
	}
}

Test(config_files, secret_empty_missing_large_refused)
{
	uint8_t secret[CONFIG_SECRET_MAX];
	static uint8_t big[CONFIG_SECRET_MAX + 1];
	char err[256], want[256], missing[128];
	const char *path;
	size_t len = 0;

	path = write_file("s", "", 0, 0600);
	snprintf(want, sizeof(want), "%s: secret file is empty", path);
	cr_assert_eq(config_load_secret(path, true, secret, &len, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);

	path = write_file("s", "\n\r\n", 3, 0600);
	cr_assert_eq(config_load_secret(path, true, secret, &len, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);

	memset(big, 'k', sizeof(big));
	path = write_file("s", big, CONFIG_SECRET_MAX, 0600);
	cr_assert_eq(config_load_secret(path, true, secret, &len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(len, CONFIG_SECRET_MAX);
	path = write_file("s", big, CONFIG_SECRET_MAX + 1, 0600);
	snprintf(want, sizeof(want), "%s: secret file is larger than 4096 bytes", path);
	cr_assert_eq(config_load_secret(path, true, secret, &len, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);

	snprintf(missing, sizeof(missing), "%s/none", tmpdir);
	snprintf(want, sizeof(want), "%s: secret file: No such file or directory", missing);
	cr_assert_eq(config_load_secret(missing, true, secret, &len, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);

	snprintf(want, sizeof(want), "%s: secret file is not a regular file", tmpdir);
	cr_assert_eq(config_load_secret(tmpdir, true, secret, &len, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);
}

/* 128 bits: 32 characters of text (counted as hex), 16 bytes of binary. */
Test(config, secret_strength_rule)
{
	static const char text[] = "0123456789abcdef0123456789abcdef";
	uint8_t bin[16];

	cr_assert(config_secret_strong((const uint8_t *)text, 32));
	cr_assert_not(config_secret_strong((const uint8_t *)text, 31));
	memset(bin, 'x', sizeof(bin));
	bin[7] = 0x80;
	cr_assert(config_secret_strong(bin, 16));
	cr_assert_not(config_secret_strong(bin, 15));
	bin[7] = '\n'; /* an inner newline is not printable: binary */
	cr_assert(config_secret_strong(bin, 16));
	cr_assert_not(config_secret_strong((const uint8_t *)"pair-secret", 11));
}

Test(config, allow_weak_secret_and_nbd_user_keys)
{
	struct config *c = parse_ok(RES "allow-weak-secret = yes\nnbd-user = alice\n" NODES);

	cr_assert(config_allow_weak_secret(c));
	cr_assert_eq(config_nbd_uid(c), (uid_t)-1, "only config_load() resolves nbd-user");
	config_free(c);
	c = parse_ok(RES NODES);
	cr_assert_not(config_allow_weak_secret(c));
	cr_assert_eq(config_nbd_uid(c), (uid_t)-1);
	config_free(c);
	parse_fails(RES "allow-weak-secret = maybe\n" NODES,
		    FNAME ":4: bad allow-weak-secret 'maybe' (expected no or yes)");
	parse_fails(RES "nbd-user = a b\n" NODES,
		    FNAME ":4: bad nbd-user 'a b' (expected a user name)");
	parse_fails(RES "nbd-user = -x\n" NODES,
		    FNAME ":4: bad nbd-user '-x' (expected a user name)");
}

Test(config_files, nbd_user_resolved_at_load)
{
	const char *text = RES "nbd-user = root\n" NODES;
	const char *path = write_file("r0.conf", text, strlen(text), 0644);
	char err[512], want[512];
	struct config *c = NULL;

	cr_assert_eq(config_load(path, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(config_nbd_uid(c), 0);
	config_free(c);
	c = NULL;
	text = RES "nbd-user = no-such-user-blkrep\n" NODES;
	path = write_file("r0.conf", text, strlen(text), 0644);
	snprintf(want, sizeof(want),
		 "%s:4: unknown nbd-user 'no-such-user-blkrep' (no such user on this host)", path);
	cr_assert_eq(config_load(path, &c, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);
	cr_assert_null(c);
}

Test(config_files, weak_secret_refused_unless_allowed)
{
	const char *path = write_file("s", "hunter2\n", 8, 0600);
	uint8_t secret[CONFIG_SECRET_MAX];
	size_t len = 0;
	char err[512] = "";

	cr_assert_eq(config_load_secret(path, false, secret, &len, err, sizeof(err)), -1);
	cr_assert(strstr(err, "secret is too weak: 128 bits are needed"), "%s", err);
	cr_assert(strstr(err, "openssl rand -hex 32"), "%s", err);
	cr_assert(strstr(err, "allow-weak-secret = yes"), "%s", err);
	cr_assert_eq(secret[0], 0, "secret left in the buffer");
	cr_assert_eq(config_load_secret(path, true, secret, &len, err, sizeof(err)), 0, "%s", err);
	path = write_file("s", "0123456789abcdef0123456789abcdef\n", 33, 0600);
	cr_assert_eq(config_load_secret(path, false, secret, &len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(len, 32);
}

Test(config_files, secret_of_another_user_refused)
{
	const char *path = write_file("s", "0123456789abcdef0123456789abcdef", 32, 0600);
	uint8_t secret[CONFIG_SECRET_MAX];
	char err[512], want[512];
	size_t len = 0;

	if (geteuid() != 0)
		cr_skip_test("needs root to give the file to another user");
	cr_assert_eq(chown(path, 65534, (gid_t)-1), 0);
	snprintf(want, sizeof(want),
		 "%s: secret file is owned by uid 65534, not by this daemon's user (uid 0): "
		 "chown it",
		 path);
	cr_assert_eq(config_load_secret(path, true, secret, &len, err, sizeof(err)), -1);
	cr_assert_str_eq(err, want);
}

/* TLS is the default: certificates (tls-ca with each node's certificate
 * and key), or a key derived from the secret; plain TCP only when asked. */
Test(config, tls_keys)
{
	struct config *c = parse_ok("[resource]\nname = r0\ntls-ca = ca.pem\npeer-address-only = yes\n"
				    "[node alpha]\naddress = 127.0.0.1:7789\nbacking = /a\n"
				    "tls-certificate = alpha.crt\ntls-key = /k/alpha.key\n"
				    "[node beta]\naddress = 127.0.0.1:7790\nbacking = /b\n"
				    "tls-certificate = /c/beta.crt\ntls-key = beta.key\n");

	cr_assert_str_eq(config_tls_ca(c), "/etc/blkrep/ca.pem");
	cr_assert_str_eq(config_node_by_index(c, 0)->tls_certificate, "/etc/blkrep/alpha.crt");
	cr_assert_str_eq(config_node_by_index(c, 0)->tls_key, "/k/alpha.key");
	cr_assert_str_eq(config_node_by_index(c, 1)->tls_key, "/etc/blkrep/beta.key");
	cr_assert(config_peer_address_only(c));
	cr_assert(!config_allow_unencrypted(c));
	cr_assert_null(config_secret_file(c));
	config_free(c);
	c = parse_ok(RES NODES);
	cr_assert_null(config_tls_ca(c));
	cr_assert(!config_allow_unencrypted(c) && !config_peer_address_only(c));
	config_free(c);
}

Test(config, tls_refusals)
{
	parse_fails("[resource]\nname = r0\ntls-ca = /ca\n" NODES,
		    FNAME ":4: [node alpha] has no tls-certificate, which tls-ca needs");
	parse_fails(RES "[node alpha]\naddress = 127.0.0.1:7789\nbacking = /a\ntls-key = /k\n"
			"[node beta]\naddress = 127.0.0.1:7790\nbacking = /b\n",
		    FNAME ":4: [node alpha] has a TLS certificate or key but [resource] has no tls-ca");
	parse_fails("[resource]\nname = r0\nallow-unauthenticated = yes\n" NODES,
		    FNAME ":3: allow-unauthenticated = yes needs allow-unencrypted = yes too: TLS "
			  "needs a secret-file or certificates (tls-ca)");
	parse_fails(RES "tls-ca = /ca\nallow-unencrypted = yes\n" NODES,
		    FNAME ":4: both tls-ca and allow-unencrypted = yes: choose one");
	parse_fails(RES "allow-unencrypted = maybe\n" NODES,
		    FNAME ":4: bad allow-unencrypted 'maybe' (expected no or yes)");
	parse_fails(RES "tls-ca =\n" NODES, FNAME ":4: empty tls-ca");
}

Test(config, metrics_address)
{
	struct config *c = node_key_ok("metrics = 127.0.0.1:9942");

	cr_assert_null(config_node_by_index(c, 0)->metrics);
	cr_assert_str_eq(config_node_by_index(c, 1)->metrics, "127.0.0.1:9942");
	config_free(c);
	config_free(node_key_ok("metrics = [::1]:9100"));
	node_key_fails("metrics = 9942",
		       "bad metrics '9942' (expected HOST:PORT or [IPV6]:PORT, port 1-65535)");
	node_key_fails("metrics = 127.0.0.1:0",
		       "bad metrics '127.0.0.1:0' (expected HOST:PORT or [IPV6]:PORT, port 1-65535)");
	res_key_fails("metrics = 127.0.0.1:9942", "unknown key 'metrics' in [resource]");
}
