// fuzz-sources: daemon/config.c daemon/config_get.c daemon/config_value.c daemon/config_secret.c
/* libFuzzer harness for the config parser.
 *
 * The input is a config file's text (up to its first NUL byte).  A refusal
 * must read "fuzz.conf:LINE: reason" with LINE a line of the input.  An
 * accepted config must hold every rule of config.h, and writing it back
 * out as key=value lines must parse to the very same config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/config.h"
#include "tests/fuzz/check.h"

#define FNAME	  "fuzz.conf"
#define MAX_INPUT (64U << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long count_lines(const char *text)
{
	unsigned long n = 0;
	const char *s;

	for (s = text; *s; s++)
		if (*s == '\n')
			n++;
	if (s > text && s[-1] != '\n')
		n++;
	return n ? n : 1;
}

/* "fuzz.conf:LINE: something", LINE in 1..nlines. */
static void check_refusal(const char *err, unsigned long nlines)
{
	unsigned long line;
	char *end;

	FUZZ_CHECK(strncmp(err, FNAME ":", strlen(FNAME ":")) == 0);
	line = strtoul(err + strlen(FNAME ":"), &end, 10);
	FUZZ_CHECK(end != err + strlen(FNAME ":"));
	FUZZ_CHECK(line >= 1 && line <= nlines);
	FUZZ_CHECK(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
}

static int is_name(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= CONFIG_NAME_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static void check_node(const struct config *c, const struct config_node *n)
{
	char host[256], err[256];
	uint16_t port;

	FUZZ_CHECK(n && is_name(n->name));
	FUZZ_CHECK(config_address_split(n->address, host, sizeof(host), &port) == 0);
	FUZZ_CHECK(port > 0);
	/* A witness keeps no data; its state file is its alone. */
	FUZZ_CHECK(n->witness ? !n->backing && !n->nbd && !n->meta && !n->auto_attach &&
					n->priority == CONFIG_DEFAULT_PRIORITY && n->state_file &&
					n->state_file[0] == '/'
			      : n->backing[0] == '/' && !n->state_file);
	FUZZ_CHECK(n->priority <= CONFIG_MAX_PRIORITY);
	FUZZ_CHECK(!n->auto_attach || config_value_attach_ok(n->auto_attach));
	FUZZ_CHECK(!n->meta || n->meta[0] == '/');
	FUZZ_CHECK(!n->nbd || (strncmp(n->nbd, "unix:/", 6) == 0 ||
			       config_address_split(n->nbd, host, sizeof(host), &port) == 0));
	FUZZ_CHECK(!n->metrics ||
		   (config_address_split(n->metrics, host, sizeof(host), &port) == 0 && port > 0));
	FUZZ_CHECK(config_local_node(c, n->name, err, sizeof(err)) == n);
	FUZZ_CHECK(config_node_for_host(c, n->name, err, sizeof(err)) == n);
	FUZZ_CHECK(config_node_mode(c, n) == CONFIG_SYNC || config_node_mode(c, n) == CONFIG_ASYNC);
	FUZZ_CHECK(config_node_max_lag(c, n) > 0);
}

/* 2 to 8 nodes, sorted by name, no two at one host and port, 2 data nodes
 * at least; the only other data node of two, none among more. */
/* The other data node when there are exactly two, walking the list. */
static const struct config_node *other_data_node(const struct config *c,
						 const struct config_node *me)
{
	const struct config_node *other = NULL;

	if (me->witness || config_data_node_count(c) != 2)
		return NULL;
	for (unsigned int i = 0; i < config_node_count(c); i++)
		if (config_node_by_index(c, i) != me && !config_node_by_index(c, i)->witness)
			other = config_node_by_index(c, i);
	return other;
}

static void check_nodes(const struct config *c)
{
	unsigned int count = config_node_count(c), i, j;
	char ha[256], hb[256];
	uint16_t pa, pb;

	unsigned int data = config_data_node_count(c);

	FUZZ_CHECK(count >= CONFIG_NODES_MIN && count <= CONFIG_NODES_MAX);
	FUZZ_CHECK(data >= CONFIG_NODES_MIN && data <= count);
	FUZZ_CHECK(config_node_by_index(c, count) == NULL);
	for (i = 0; i < count; i++) {
		const struct config_node *a = config_node_by_index(c, i);

		check_node(c, a);
		FUZZ_CHECK(!config_tls_ca(c) == !a->tls_certificate);
		FUZZ_CHECK(!config_tls_ca(c) == !a->tls_key);
		FUZZ_CHECK(config_peer_node(c, a) == other_data_node(c, a));
		for (j = i + 1; j < count; j++) {
			const struct config_node *b = config_node_by_index(c, j);

			FUZZ_CHECK(strcmp(a->name, b->name) < 0);
			FUZZ_CHECK(config_address_split(a->address, ha, sizeof(ha), &pa) == 0);
			FUZZ_CHECK(config_address_split(b->address, hb, sizeof(hb), &pb) == 0);
			FUZZ_CHECK(pa != pb || strcasecmp(ha, hb) != 0);
		}
	}
}

static void check_accepted(const struct config *c)
{
	uint32_t g = config_bitmap_granularity(c);

	FUZZ_CHECK(strcmp(config_path(c), FNAME) == 0);
	FUZZ_CHECK(is_name(config_resource_name(c)));
	FUZZ_CHECK(config_mode(c) == CONFIG_SYNC || config_mode(c) == CONFIG_ASYNC);
	/* A way to authenticate, one only of secret and no secret; TLS
	 * (the default) needs a key: the secret's or certificates. */
	FUZZ_CHECK(config_secret_file(c) || config_allow_unauthenticated(c) || config_tls_ca(c));
	FUZZ_CHECK(!(config_secret_file(c) && config_allow_unauthenticated(c)));
	FUZZ_CHECK(!(config_tls_ca(c) && config_allow_unencrypted(c)));
	FUZZ_CHECK(!config_allow_unauthenticated(c) || config_allow_unencrypted(c) ||
		   config_tls_ca(c));
	FUZZ_CHECK(!config_secret_file(c) || config_secret_file(c)[0] != '\0');
	FUZZ_CHECK(config_max_lag(c) > 0);
	FUZZ_CHECK(config_nbd_uid(c) == (uid_t)-1); /* resolved by config_load() only */
	FUZZ_CHECK(g >= CONFIG_MIN_GRANULARITY && g <= CONFIG_MAX_GRANULARITY && !(g & (g - 1)));
	FUZZ_CHECK(config_al_extents(c) >= CONFIG_MIN_AL_EXTENTS &&
		   config_al_extents(c) <= CONFIG_MAX_AL_EXTENTS);
	FUZZ_CHECK(config_timeout_s(c) >= 1 && config_timeout_s(c) <= CONFIG_MAX_TIMEOUT_S);
	FUZZ_CHECK(config_dead_conn_timeout_s(c) >= 1 &&
		   config_dead_conn_timeout_s(c) <= CONFIG_MAX_TIMEOUT_S);
	/* quorum: majority by default from 3 voters; auto-failover needs it. */
	FUZZ_CHECK(config_quorum(c) == CONFIG_QUORUM_OFF ||
		   config_quorum(c) == CONFIG_QUORUM_MAJORITY);
	FUZZ_CHECK(config_on_no_quorum(c) == CONFIG_NOQ_SUSPEND ||
		   config_on_no_quorum(c) == CONFIG_NOQ_IO_ERROR);
	FUZZ_CHECK(!config_auto_failover(c) || config_quorum(c) == CONFIG_QUORUM_MAJORITY);
	FUZZ_CHECK(!config_promote_command(c) || config_promote_command(c)[0] != '\0');
	check_nodes(c);
}

static void put_node(FILE *f, const struct config *c, const struct config_node *n)
{
	fprintf(f, "[node %s]\naddress=%s\n", n->name, n->address);
	if (n->witness) {
		fprintf(f, "witness=yes\nstate-file=%s\n", n->state_file);
	} else {
		fprintf(f, "backing=%s\nmode=%s\nmax-lag=%llu\npriority=%u\n", n->backing,
			config_mode_name(config_node_mode(c, n)),
			(unsigned long long)config_node_max_lag(c, n), n->priority);
		fprintf(f, "meta=%s\n", n->meta ? n->meta : "internal");
	}
	if (n->nbd)
		fprintf(f, "nbd=%s\n", n->nbd);
	if (n->auto_attach)
		fprintf(f, "auto-attach=%s\n", n->auto_attach);
	if (n->tls_certificate)
		fprintf(f, "tls-certificate=%s\ntls-key=%s\n", n->tls_certificate, n->tls_key);
	if (n->metrics)
		fprintf(f, "metrics=%s\n", n->metrics);
}

/* Every value spelled out, in the shortest line form. */
static char *write_back(const struct config *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	FUZZ_CHECK(f != NULL);
	fprintf(f, "[resource]\nname=%s\nmode=%s\non-peer-loss=%s\n", config_resource_name(c),
		config_mode_name(config_mode(c)), config_peer_loss_name(config_on_peer_loss(c)));
	if (config_secret_file(c))
		fprintf(f, "secret-file=%s\n", config_secret_file(c));
	fprintf(f, "allow-unauthenticated=%s\nallow-unencrypted=%s\npeer-address-only=%s\n",
		config_allow_unauthenticated(c) ? "yes" : "no",
		config_allow_unencrypted(c) ? "yes" : "no",
		config_peer_address_only(c) ? "yes" : "no");
	if (config_tls_ca(c))
		fprintf(f, "tls-ca=%s\n", config_tls_ca(c));
	fprintf(f, "allow-weak-secret=%s\n", config_allow_weak_secret(c) ? "yes" : "no");
	fprintf(f, "resync-rate=%llu\nmax-lag=%llu\nafter-split-brain=%s\n",
		(unsigned long long)config_resync_rate(c), (unsigned long long)config_max_lag(c),
		config_split_brain_name(config_after_split_brain(c)));
	fprintf(f, "bitmap-granularity=%u\nal-extents=%u\ntimeout=%u\ndead-conn-timeout=%u\n",
		config_bitmap_granularity(c), config_al_extents(c), config_timeout_s(c),
		config_dead_conn_timeout_s(c));
	fprintf(f, "quorum=%s\non-no-quorum=%s\nauto-failover=%s\n",
		config_quorum_name(config_quorum(c)), config_no_quorum_name(config_on_no_quorum(c)),
		config_auto_failover(c) ? "yes" : "no");
	if (config_promote_command(c))
		fprintf(f, "promote-command=%s\n", config_promote_command(c));
	for (unsigned int i = 0; i < config_node_count(c); i++)
		put_node(f, c, config_node_by_index(c, i));
	FUZZ_CHECK(fclose(f) == 0);
	return text;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_same(const struct config *x, const struct config *y)
{
	unsigned int i;

	FUZZ_CHECK(strcmp(config_resource_name(x), config_resource_name(y)) == 0);
	FUZZ_CHECK(config_mode(x) == config_mode(y));
	FUZZ_CHECK(config_on_peer_loss(x) == config_on_peer_loss(y));
	FUZZ_CHECK(same_str(config_secret_file(x), config_secret_file(y)));
	FUZZ_CHECK(config_allow_unauthenticated(x) == config_allow_unauthenticated(y));
	FUZZ_CHECK(config_allow_unencrypted(x) == config_allow_unencrypted(y));
	FUZZ_CHECK(config_peer_address_only(x) == config_peer_address_only(y));
	FUZZ_CHECK(same_str(config_tls_ca(x), config_tls_ca(y)));
	FUZZ_CHECK(config_allow_weak_secret(x) == config_allow_weak_secret(y));
	FUZZ_CHECK(config_resync_rate(x) == config_resync_rate(y));
	FUZZ_CHECK(config_max_lag(x) == config_max_lag(y));
	FUZZ_CHECK(config_after_split_brain(x) == config_after_split_brain(y));
	FUZZ_CHECK(config_bitmap_granularity(x) == config_bitmap_granularity(y));
	FUZZ_CHECK(config_al_extents(x) == config_al_extents(y));
	FUZZ_CHECK(config_timeout_s(x) == config_timeout_s(y));
	FUZZ_CHECK(config_dead_conn_timeout_s(x) == config_dead_conn_timeout_s(y));
	FUZZ_CHECK(config_quorum(x) == config_quorum(y));
	FUZZ_CHECK(config_on_no_quorum(x) == config_on_no_quorum(y));
	FUZZ_CHECK(config_auto_failover(x) == config_auto_failover(y));
	FUZZ_CHECK(same_str(config_promote_command(x), config_promote_command(y)));
	FUZZ_CHECK(config_node_count(x) == config_node_count(y));
	for (i = 0; i < config_node_count(x); i++) {
		const struct config_node *a = config_node_by_index(x, i);
		const struct config_node *b = config_node_by_index(y, i);

		FUZZ_CHECK(config_node_mode(x, a) == config_node_mode(y, b));
		FUZZ_CHECK(config_node_max_lag(x, a) == config_node_max_lag(y, b));
		FUZZ_CHECK(strcmp(a->name, b->name) == 0);
		FUZZ_CHECK(strcmp(a->address, b->address) == 0);
		FUZZ_CHECK(same_str(a->backing, b->backing));
		FUZZ_CHECK(a->witness == b->witness && a->priority == b->priority);
		FUZZ_CHECK(same_str(a->state_file, b->state_file));
		FUZZ_CHECK(same_str(a->auto_attach, b->auto_attach));
		FUZZ_CHECK(same_str(a->nbd, b->nbd));
		FUZZ_CHECK(same_str(a->meta, b->meta));
		FUZZ_CHECK(same_str(a->tls_certificate, b->tls_certificate));
		FUZZ_CHECK(same_str(a->tls_key, b->tls_key));
		FUZZ_CHECK(same_str(a->metrics, b->metrics));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL, *again = NULL;
	char err[512];
	char *text, *back;
	int ret;

	if (size > MAX_INPUT)
		return 0;
	text = malloc(size + 1);
	FUZZ_CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';

	ret = config_parse_string(text, FNAME, &c, err, sizeof(err));
	FUZZ_CHECK(ret == 0 || ret == -1);
	if (ret < 0) {
		FUZZ_CHECK(c == NULL);
		check_refusal(err, count_lines(text));
		free(text);
		return 0;
	}
	check_accepted(c);
	back = write_back(c);
	ret = config_parse_string(back, FNAME, &again, err, sizeof(err));
	if (ret != 0)
		fprintf(stderr, "written back config refused: %s\n--- text:\n%s", err, back);
	FUZZ_CHECK(ret == 0);
	check_same(c, again);
	config_free(again);
	free(back);
	config_free(c);
	free(text);
	return 0;
}
