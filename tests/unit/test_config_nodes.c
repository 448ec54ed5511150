/* Unit tests for daemon/config with more than two nodes: 2 to 8 [node]
 * sections, sorted by name; what is refused among them (one too many, a
 * name or an address twice, a missing key), with the exact "FILE:LINE:
 * reason"; a node's own mode and max-lag; picking the local node. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"
#include "tests/unit/config_parse.h"

/* Lines 1-4. */
#define RES "[resource]\nname = r0\nsecret-file = /etc/blkrep/r0.secret\nmode = sync\n"

/* The README's shape, in file order gamma (lines 5-9), alpha (10-12),
 * beta (13-16). */
#define THREE                                                                                      \
	RES "[node gamma]\n"                                                                       \
	    "address = 198.51.100.7:7789\n"                                                        \
	    "backing = /dev/vg0/r0\n"                                                              \
	    "mode = async\n"                                                                       \
	    "max-lag = 64M\n"                                                                      \
	    "[node alpha]\n"                                                                       \
	    "address = 192.0.2.1:7789\n"                                                           \
	    "backing = /var/lib/blkrep/r0.img\n"                                                   \
	    "[node beta]\n"                                                                        \
	    "address = 192.0.2.2:7789\n"                                                           \
	    "backing = /var/lib/blkrep/r0.img\n"                                                   \
	    "mode = sync\n"

/* RES and n nodes n0, n1, ... (three lines each, from line 5), at ports
 * 7001, 7002, ...; extra follows. */
static const char *nodes_text(char *buf, size_t len, unsigned int n, const char *extra)
{
	size_t used = (size_t)snprintf(buf, len, "%s", RES);

	for (unsigned int i = 0; i < n; i++)
		used += (size_t)snprintf(buf + used, len - used,
					 "[node n%u]\naddress = 127.0.0.1:%u\nbacking = /n%u\n", i,
					 7001 + i, i);
	snprintf(buf + used, len - used, "%s", extra);
	return buf;
}

/* nodes_text() of three nodes and extra must be refused with want. */
static void three_fail(const char *extra, const char *want)
{
	char text[2048];

	parse_fails(nodes_text(text, sizeof(text), 3, extra), want);
}

Test(config_nodes, three_sorted_by_name_whatever_the_file_order)
{
	struct config *c = parse_ok(THREE);
	const char *want[] = { "alpha", "beta", "gamma" };

	cr_assert_eq(config_node_count(c), 3);
	for (unsigned int i = 0; i < 3; i++)
		cr_assert_str_eq(config_node_by_index(c, i)->name, want[i]);
	cr_assert_null(config_node_by_index(c, 3));
	cr_assert_str_eq(config_node_by_index(c, 0)->address, "192.0.2.1:7789");
	cr_assert_str_eq(config_node_by_index(c, 2)->backing, "/dev/vg0/r0");
	config_free(c);
}

Test(config_nodes, two_nodes_keep_their_count_and_peer)
{
	char text[2048];
	struct config *c = parse_ok(nodes_text(text, sizeof(text), 2, ""));
	const struct config_node *a = config_node_by_index(c, 0), *b = config_node_by_index(c, 1);

	cr_assert_eq(config_node_count(c), 2);
	cr_assert_eq(config_peer_node(c, a), b);
	cr_assert_eq(config_peer_node(c, b), a);
	config_free(c);
}

/* "The only peer" has no answer with three: callers walk the nodes. */
Test(config_nodes, no_single_peer_among_three)
{
	struct config *c = parse_ok(THREE);

	for (unsigned int i = 0; i < 3; i++)
		cr_assert_null(config_peer_node(c, config_node_by_index(c, i)));
	config_free(c);
}

Test(config_nodes, up_to_eight_then_refused)
{
	char text[4096];
	struct config *c = parse_ok(nodes_text(text, sizeof(text), 8, ""));

	cr_assert_eq(config_node_count(c), 8);
	cr_assert_str_eq(config_node_by_index(c, 7)->name, "n7");
	cr_assert_null(config_node_by_index(c, 8));
	config_free(c);
	/* The ninth header is on line 5 + 8 * 3; refused even when empty. */
	parse_fails(nodes_text(text, sizeof(text), 8, "[node n8]\n"),
		    FNAME ":29: [node n8] is node 9: a resource has at most 8 nodes");
	parse_fails(nodes_text(text, sizeof(text), 9, ""),
		    FNAME ":29: [node n8] is node 9: a resource has at most 8 nodes");
}

Test(config_nodes, a_name_twice_is_refused)
{
	three_fail("[node n1]\naddress = 127.0.0.1:9\n",
		   FNAME ":14: duplicate [node n1] (first at line 8)");
}

Test(config_nodes, an_address_twice_is_refused)
{
	char text[2048];

	/* The third node at the first's address: named at the later one. */
	three_fail("[node n3]\naddress = 127.0.0.1:7001\nbacking = /n3\n",
		   FNAME ":14: nodes n0 and n3 have the same address 127.0.0.1:7001");
	/* The same host and port, spelled apart. */
	three_fail("[node n3]\naddress = 127.0.0.1:07002\nbacking = /n3\n",
		   FNAME ":14: nodes n1 and n3 have the same address 127.0.0.1:07002");
	parse_fails(RES "[node a]\naddress = DB.example.com:1\nbacking = /a\n"
			"[node b]\naddress = db.example.com:1\nbacking = /b\n",
		    FNAME ":8: nodes a and b have the same address db.example.com:1");
	parse_fails(RES "[node a]\naddress = [::1]:7789\nbacking = /a\n"
			"[node b]\naddress = [::1]:7789\nbacking = /b\n",
		    FNAME ":8: nodes a and b have the same address [::1]:7789");
	/* One host, another port: two nodes on one machine. */
	config_free(parse_ok(nodes_text(text, sizeof(text), 3,
					"[node n3]\naddress = 127.0.0.1:7789\nbacking = /n3\n")));
}

Test(config_nodes, every_node_needs_its_keys)
{
	three_fail("[node n3]\nbacking = /n3\n", FNAME ":14: [node n3] has no address");
	three_fail("[node n3]\naddress = 127.0.0.1:9\n", FNAME ":14: [node n3] has no backing");
	three_fail("[node n3]\naddress = 127.0.0.1:9\nbacking = /n3\nsize = 1G\n",
		   FNAME ":17: unknown key 'size' in [node n3]");
}

/* tls-ca needs every node's certificate, the third's too. */
Test(config_nodes, tls_needs_every_nodes_certificate)
{
	char text[4096];
	size_t used = (size_t)snprintf(text, sizeof(text),
				       "[resource]\nname = r0\ntls-ca = /etc/blkrep/ca.pem\n");

	for (unsigned int i = 0; i < 2; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used,
					 "[node n%u]\naddress = 127.0.0.1:%u\nbacking = /n%u\n"
					 "tls-certificate = /n%u.pem\ntls-key = /n%u.key\n",
					 i, 7001 + i, i, i, i);
	snprintf(text + used, sizeof(text) - used,
		 "[node n2]\naddress = 127.0.0.1:7003\nbacking = /n2\ntls-key = /n2.key\n");
	parse_fails(text, FNAME ":14: [node n2] has no tls-certificate, which tls-ca needs");
}

Test(config_nodes, mode_and_max_lag_per_node)
{
	struct config *c = parse_ok(THREE);
	const struct config_node *alpha = config_node_by_index(c, 0);
	const struct config_node *beta = config_node_by_index(c, 1);
	const struct config_node *gamma = config_node_by_index(c, 2);

	/* The resource's, where the node says nothing. */
	cr_assert_eq(config_mode(c), CONFIG_SYNC);
	cr_assert_eq(config_max_lag(c), CONFIG_DEFAULT_MAX_LAG);
	cr_assert_eq(config_node_mode(c, alpha), CONFIG_SYNC);
	cr_assert_eq(config_node_max_lag(c, alpha), CONFIG_DEFAULT_MAX_LAG);
	cr_assert_eq(config_node_mode(c, beta), CONFIG_SYNC);
	cr_assert_eq(config_node_mode(c, gamma), CONFIG_ASYNC);
	cr_assert_eq(config_node_max_lag(c, gamma), 64ULL << 20);
	config_free(c);

	/* An async resource with one sync replica; a node's max-lag. */
	c = parse_ok("[resource]\nname = r0\nsecret-file = /s\nmode = async\nmax-lag = 1G\n"
		     "[node a]\naddress = 127.0.0.1:1\nbacking = /a\n"
		     "[node b]\naddress = 127.0.0.1:2\nbacking = /b\nmode = sync\n"
		     "[node c]\naddress = 127.0.0.1:3\nbacking = /c\nmax-lag = 8M\n");
	cr_assert_eq(config_node_mode(c, config_node_by_index(c, 0)), CONFIG_ASYNC);
	cr_assert_eq(config_node_mode(c, config_node_by_index(c, 1)), CONFIG_SYNC);
	cr_assert_eq(config_node_max_lag(c, config_node_by_index(c, 1)), 1ULL << 30);
	cr_assert_eq(config_node_mode(c, config_node_by_index(c, 2)), CONFIG_ASYNC);
	cr_assert_eq(config_node_max_lag(c, config_node_by_index(c, 2)), 8ULL << 20);
	cr_assert_eq(config_max_lag(c), 1ULL << 30);
	config_free(c);
}

Test(config_nodes, bad_mode_and_max_lag_in_a_node)
{
	char text[2048];

	three_fail("mode = fast\n", FNAME ":14: bad mode 'fast' (expected sync or async)");
	three_fail("max-lag = 0\n", FNAME ":14: bad max-lag '0' (must be more than 0)");
	three_fail("max-lag = lots\n",
		   FNAME ":14: bad max-lag 'lots' (expected a size like 4096, 64K or 1G)");
	three_fail("mode = sync\nmode = async\n",
		   FNAME ":15: duplicate key 'mode' (first set at line 14)");
	/* The same key in two nodes is no duplicate. */
	config_free(parse_ok(nodes_text(text, sizeof(text), 3,
					"mode = async\n[node n3]\naddress = 127.0.0.1:9\n"
					"backing = /n3\nmode = async\n")));
}

Test(config_nodes, the_local_node_among_three)
{
	struct config *c = parse_ok(THREE);
	char err[512] = "";

	cr_assert_str_eq(config_local_node(c, "gamma", err, sizeof(err))->name, "gamma");
	cr_assert_eq(config_local_node(c, "beta", err, sizeof(err)), config_node_by_index(c, 1));
	cr_assert_null(config_local_node(c, "delta", err, sizeof(err)));
	cr_assert_str_eq(err, "no node delta in " FNAME " (nodes: alpha, beta, gamma)");
	cr_assert_str_eq(config_node_for_host(c, "gamma.example.com", err, sizeof(err))->name,
			 "gamma");
	cr_assert_null(config_node_for_host(c, "delta.example.com", err, sizeof(err)));
	cr_assert_str_eq(err, "this host (delta.example.com) is not a node in " FNAME
			      " (nodes: alpha, beta, gamma): use --node NAME");
	config_free(c);
}
