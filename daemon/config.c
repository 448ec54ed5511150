/* The resource configuration.  See config.h.
 *
 * libinih splits lines into sections and key = value pairs, but in Debian's
 * build its handler is not told the line number and is not called for a
 * section without keys.  So the text reaches inih through our own reader,
 * which hands over one line per call (as inih asks for them): it counts the
 * lines, notes every section header with its line itself, and strips
 * indentation, which inih would otherwise take for a multi-line
 * continuation of the previous key. */
#include "config.h"
#include "daemon/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1U << 20)

enum section { SEC_NONE, SEC_RESOURCE, SEC_NODE };

enum res_key {
	RK_NAME,
	RK_MODE,
	RK_PEER_LOSS,
	RK_SECRET,
	RK_ALLOW_UNAUTH,
	RK_RESYNC_RATE,
	RK_MAX_LAG,
	RK_SPLIT_BRAIN,
	RK_GRANULARITY,
	RK_AL_EXTENTS,
	RK_TIMEOUT,
	RK_DEAD_CONN,
	RK_ALLOW_UNENC,
	RK_PEER_ADDR_ONLY,
	RK_TLS_CA,
	RK_ALLOW_WEAK,
	RK_NBD_USER,
	RK_QUORUM,
	RK_NO_QUORUM,
	RK_AUTO_FAILOVER,
	RK_PROMOTE_CMD,
	RK_FENCE_PEER,
	RK_UNFENCE_PEER,
	RK_COUNT
};

enum node_key {
	NK_ADDRESS,
	NK_BACKING,
	NK_NBD,
	NK_META,
	NK_TLS_CERT,
	NK_TLS_KEY,
	NK_METRICS,
	NK_MODE,
	NK_MAX_LAG,
	NK_AUTO_ATTACH,
	NK_PRIORITY,
	NK_WITNESS,
	NK_STATE_FILE,
	NK_COUNT
};

static const char *const res_keys[RK_COUNT] = {
	[RK_NAME] = "name",
	[RK_MODE] = "mode",
	[RK_PEER_LOSS] = "on-peer-loss",
	[RK_SECRET] = "secret-file",
	[RK_ALLOW_UNAUTH] = "allow-unauthenticated",
	[RK_RESYNC_RATE] = "resync-rate",
	[RK_MAX_LAG] = "max-lag",
	[RK_SPLIT_BRAIN] = "after-split-brain",
	[RK_GRANULARITY] = "bitmap-granularity",
	[RK_AL_EXTENTS] = "al-extents",
	[RK_TIMEOUT] = "timeout",
	[RK_DEAD_CONN] = "dead-conn-timeout",
	[RK_ALLOW_UNENC] = "allow-unencrypted",
	[RK_PEER_ADDR_ONLY] = "peer-address-only",
	[RK_TLS_CA] = "tls-ca",
	[RK_ALLOW_WEAK] = "allow-weak-secret",
	[RK_NBD_USER] = "nbd-user",
	[RK_QUORUM] = "quorum",
	[RK_NO_QUORUM] = "on-no-quorum",
	[RK_AUTO_FAILOVER] = "auto-failover",
	[RK_PROMOTE_CMD] = "promote-command",
	[RK_FENCE_PEER] = "fence-peer",
	[RK_UNFENCE_PEER] = "unfence-peer",
};

static const char *const node_keys[NK_COUNT] = {
	[NK_ADDRESS] = "address",
	[NK_BACKING] = "backing",
	[NK_NBD] = "nbd",
	[NK_META] = "meta",
	[NK_TLS_CERT] = "tls-certificate",
	[NK_TLS_KEY] = "tls-key",
	[NK_METRICS] = "metrics",
	[NK_MODE] = "mode",
	[NK_MAX_LAG] = "max-lag",
	[NK_AUTO_ATTACH] = "auto-attach",
	[NK_PRIORITY] = "priority",
	[NK_WITNESS] = "witness",
	[NK_STATE_FILE] = "state-file",
};

/* The state of one parse.  Line numbers start at 1; 0 means "not seen". */
struct parse {
	struct config *c;
	const char *fname;
	const char *pos; /* text not yet handed to inih */
	int lineno;
	enum section sec;
	struct node_priv *node; /* current [node], if sec == SEC_NODE */
	int resource_line;
	int res_lines[RK_COUNT];
	int node_lines[CONFIG_NODES_MAX][NK_COUNT];
	int err_line;
	bool failed;
	char *err;
	size_t errlen;
};

static void perr(struct parse *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Keeps the first error only: later ones are often its consequences. */
static void perr(struct parse *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return;
	p->failed = true;
	p->err_line = line;
	if (p->errlen == 0)
		return;
	n = snprintf(p->err, p->errlen, "%s:%d: ", p->fname, line);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static const char *const mode_names[] = { "sync", "async", NULL };
static const char *const peer_loss_names[] = { "continue", "freeze", NULL };
static const char *const split_brain_names[] = { "disconnect", "discard-zero-changes", NULL };
static const char *const yes_no[] = { "no", "yes", NULL };
static const char *const quorum_names[] = { "off", "majority", NULL };
static const char *const no_quorum_names[] = { "suspend-io", "io-error", NULL };

/* The [resource] keys that take one of a list of spellings, and the int
 * in struct config each sets (to the spelling's index). */
static const struct {
	const char *const *list;
	size_t off;
} res_choices[RK_COUNT] = {
	[RK_MODE] = { mode_names, offsetof(struct config, mode) },
	[RK_PEER_LOSS] = { peer_loss_names, offsetof(struct config, on_peer_loss) },
	[RK_ALLOW_UNAUTH] = { yes_no, offsetof(struct config, allow_unauthenticated) },
	[RK_ALLOW_UNENC] = { yes_no, offsetof(struct config, allow_unencrypted) },
	[RK_PEER_ADDR_ONLY] = { yes_no, offsetof(struct config, peer_address_only) },
	[RK_SPLIT_BRAIN] = { split_brain_names, offsetof(struct config, after_split_brain) },
	[RK_ALLOW_WEAK] = { yes_no, offsetof(struct config, allow_weak_secret) },
	[RK_QUORUM] = { quorum_names, offsetof(struct config, quorum) },
	[RK_NO_QUORUM] = { no_quorum_names, offsetof(struct config, no_quorum) },
	[RK_AUTO_FAILOVER] = { yes_no, offsetof(struct config, auto_failover) },
};

static int set_string(struct parse *p, char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s) {
		perr(p, p->lineno, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = s;
	return 0;
}

static int set_choice(struct parse *p, const char *key, const char *v, const char *const *list,
		      int *out)
{
	int i = config_value_choice(v, list);

	if (i < 0) {
		perr(p, p->lineno, "bad %s '%s' (expected %s or %s)", key, v, list[0], list[1]);
		return -1;
	}
	*out = i;
	return 0;
}

static int set_size(struct parse *p, const char *key, const char *v, uint64_t *out)
{
	if (config_parse_size(v, out) < 0) {
		perr(p, p->lineno, "bad %s '%s' (expected a size like 4096, 64K or 1G)", key, v);
		return -1;
	}
	return 0;
}

/* max-lag, in [resource] or a [node]: a size above 0. */
static int set_max_lag(struct parse *p, const char *v, uint64_t *out)
{
	if (set_size(p, "max-lag", v, out) < 0)
		return -1;
	if (*out == 0) {
		perr(p, p->lineno, "bad max-lag '%s' (must be more than 0)", v);
		return -1;
	}
	return 0;
}

/* "adaptive" (0), or a size per second: 100M, 100M/s, 100MB/s. */
static int set_rate(struct parse *p, const char *v)
{
	if (config_value_rate(v, &p->c->resync_rate) == 0)
		return 0;
	perr(p, p->lineno,
	     "bad resync-rate '%s' (expected adaptive or a size per second like 100M)", v);
	return -1;
}

static int set_granularity(struct parse *p, const char *v)
{
	uint64_t g;

	if (set_size(p, "bitmap-granularity", v, &g) < 0)
		return -1;
	if (g < CONFIG_MIN_GRANULARITY || g > CONFIG_MAX_GRANULARITY || (g & (g - 1))) {
		perr(p, p->lineno,
		     "bad bitmap-granularity '%s' (expected a power of two from 4K to 1M)", v);
		return -1;
	}
	p->c->granularity = (uint32_t)g;
	return 0;
}

static int set_uint(struct parse *p, const char *key, const char *v, unsigned int min,
		    unsigned int max, unsigned int *out)
{
	if (config_value_uint(v, min, max, out) < 0) {
		perr(p, p->lineno, "bad %s '%s' (expected an integer from %u to %u)", key, v, min,
		     max);
		return -1;
	}
	return 0;
}

/* A file the daemon reads: absolute, or relative to the config file's
 * directory (as secret-file), so the daemon finds it whatever its working
 * directory.  Replaces *dst. */
static int set_path(struct parse *p, const char *key, const char *v, char **dst)
{
	const char *slash = strrchr(p->fname, '/');
	char *abs;

	if (*v == '\0') {
		perr(p, p->lineno, "empty %s", key);
		return -1;
	}
	if (v[0] == '/' || !slash)
		return set_string(p, dst, v);
	if (asprintf(&abs, "%.*s/%s", (int)(slash - p->fname), p->fname, v) < 0) {
		perr(p, p->lineno, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = abs;
	return 0;
}

/* A path as written, absolute (backing, meta, state-file); or, in the
 * message, what else the key takes ("internal or "). */
static int set_abs_path(struct parse *p, const char *key, const char *or, const char *v,
			char **dst)
{
	if (v[0] == '/')
		return set_string(p, dst, v);
	perr(p, p->lineno, "bad %s '%s' (expected %san absolute path)", key, v, or);
	return -1;
}

/* A shell command (promote-command, fence-peer, unfence-peer). */
static int set_command(struct parse *p, const char *key, const char *v, char **dst)
{
	if (*v == '\0') {
		perr(p, p->lineno, "empty %s", key);
		return -1;
	}
	return set_string(p, dst, v);
}

static int set_resource_key(struct parse *p, enum res_key k, const char *v)
{
	struct config *c = p->c;

	if (res_choices[k].list)
		return set_choice(p, res_keys[k], v, res_choices[k].list,
				  (int *)((char *)c + res_choices[k].off));
	switch (k) {
	case RK_NAME:
		if (!config_value_name_ok(v)) {
			perr(p, p->lineno,
			     "bad name '%s' (expected 1-63 characters of A-Z a-z 0-9 _ . -)", v);
			return -1;
		}
		return set_string(p, &c->name, v);
	case RK_SECRET:
		return set_path(p, "secret-file", v, &c->secret_file);
	case RK_TLS_CA:
		return set_path(p, "tls-ca", v, &c->tls_ca);
	case RK_RESYNC_RATE:
		return set_rate(p, v);
	case RK_MAX_LAG:
		return set_max_lag(p, v, &c->max_lag);
	case RK_GRANULARITY:
		return set_granularity(p, v);
	case RK_AL_EXTENTS:
		return set_uint(p, "al-extents", v, CONFIG_MIN_AL_EXTENTS, CONFIG_MAX_AL_EXTENTS,
				&c->al_extents);
	case RK_TIMEOUT:
		return set_uint(p, "timeout", v, 1, CONFIG_MAX_TIMEOUT_S, &c->timeout_s);
	case RK_DEAD_CONN:
		return set_uint(p, "dead-conn-timeout", v, 1, CONFIG_MAX_TIMEOUT_S,
				&c->dead_conn_s);
	case RK_NBD_USER:
		if (!config_value_name_ok(v) || *v == '-') {
			perr(p, p->lineno, "bad nbd-user '%s' (expected a user name)", v);
			return -1;
		}
		c->nbd_user_line = p->lineno;
		return set_string(p, &c->nbd_user, v);
	case RK_PROMOTE_CMD:
		return set_command(p, res_keys[k], v, &c->promote_command);
	case RK_FENCE_PEER:
		return set_command(p, res_keys[k], v, &c->fence_peer);
	case RK_UNFENCE_PEER:
		return set_command(p, res_keys[k], v, &c->unfence_peer);
	default:
		return -1;
	}
}

/* A TCP address key (address, metrics). */
static int set_address(struct parse *p, const char *key, const char *v, char **dst)
{
	if (!config_value_address_ok(v)) {
		perr(p, p->lineno, "bad %s '%s' (expected HOST:PORT or [IPV6]:PORT, port 1-65535)",
		     key, v);
		return -1;
	}
	return set_string(p, dst, v);
}

static int set_node_key(struct parse *p, enum node_key k, const char *v)
{
	struct node_priv *n = p->node;

	switch (k) {
	case NK_ADDRESS:
		return set_address(p, "address", v, &n->address);
	case NK_BACKING:
		return set_abs_path(p, "backing", "", v, &n->backing);
	case NK_NBD:
		if (!config_value_nbd_ok(v)) {
			perr(p, p->lineno,
			     "bad nbd '%s' (expected unix:/ABSOLUTE/PATH shorter than 108 bytes, "
			     "or HOST:PORT)",
			     v);
			return -1;
		}
		return set_string(p, &n->nbd, v);
	case NK_METRICS:
		return set_address(p, "metrics", v, &n->metrics);
	case NK_TLS_CERT:
		return set_path(p, "tls-certificate", v, &n->tls_certificate);
	case NK_TLS_KEY:
		return set_path(p, "tls-key", v, &n->tls_key);
	case NK_MODE:
		return set_choice(p, "mode", v, mode_names, &n->mode);
	case NK_MAX_LAG:
		return set_max_lag(p, v, &n->max_lag);
	case NK_META:
		return strcmp(v, "internal") == 0 ? 0 : set_abs_path(p, "meta", "internal or ", v, &n->meta);
	case NK_AUTO_ATTACH:
		if (!config_value_attach_ok(v)) {
			perr(p, p->lineno, "bad auto-attach '%s' (expected loop or /dev/nbdN)", v);
			return -1;
		}
		return set_string(p, &n->auto_attach, v);
	case NK_PRIORITY:
		return set_uint(p, "priority", v, 0, CONFIG_MAX_PRIORITY, &n->priority);
	case NK_WITNESS:
		return set_choice(p, "witness", v, yes_no, &n->witness);
	case NK_STATE_FILE:
		return set_abs_path(p, "state-file", "", v, &n->state_file);
	default:
		return -1;
	}
}

/* Finds key in names[count]; refuses unknown and repeated keys. */
static int lookup_key(struct parse *p, const char *key, const char *const *names, int count,
		      int *lines, const char *where)
{
	int i;

	for (i = 0; i < count; i++)
		if (strcmp(key, names[i]) == 0)
			break;
	if (i == count) {
		perr(p, p->lineno, "unknown key '%s' in %s", key, where);
		return -1;
	}
	if (lines[i]) {
		perr(p, p->lineno, "duplicate key '%s' (first set at line %d)", key, lines[i]);
		return -1;
	}
	lines[i] = p->lineno;
	return i;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	char where[CONFIG_NAME_MAX + 16];
	int k;

	(void)section; /* tracked by the reader, with its line */
	if (p->failed)
		return 0;
	switch (p->sec) {
	case SEC_RESOURCE:
		k = lookup_key(p, key, res_keys, RK_COUNT, p->res_lines, "[resource]");
		if (k < 0 || set_resource_key(p, (enum res_key)k, value) < 0)
			return 0;
		return 1;
	case SEC_NODE:
		snprintf(where, sizeof(where), "[node %s]", p->node->name);
		k = lookup_key(p, key, node_keys, NK_COUNT, p->node_lines[p->node - p->c->priv],
			       where);
		if (k < 0 || set_node_key(p, (enum node_key)k, value) < 0)
			return 0;
		return 1;
	default:
		perr(p, p->lineno,
		     "'%s' is outside any section (expected [resource] or [node NAME])", key);
		return 0;
	}
}

static void begin_node(struct parse *p, const char *name)
{
	struct config *c = p->c;
	unsigned int i;

	if (!config_value_name_ok(name)) {
		perr(p, p->lineno,
		     "bad node name '%s' (expected 1-63 characters of A-Z a-z 0-9 _ . -)", name);
		return;
	}
	for (i = 0; i < c->nnodes; i++) {
		if (strcmp(c->priv[i].name, name) == 0) {
			perr(p, p->lineno, "duplicate [node %s] (first at line %d)", name,
			     c->priv[i].line);
			return;
		}
	}
	if (c->nnodes == CONFIG_NODES_MAX) {
		perr(p, p->lineno, "[node %s] is node %u: a resource has at most %d nodes", name,
		     c->nnodes + 1, CONFIG_NODES_MAX);
		return;
	}
	p->node = &c->priv[c->nnodes];
	p->node->line = p->lineno;
	p->node->mode = -1;
	p->node->priority = CONFIG_DEFAULT_PRIORITY;
	if (set_string(p, &p->node->name, name) < 0)
		return;
	c->nnodes++;
	p->sec = SEC_NODE;
}

/* A "[...]" line: inner is what lies between the brackets, trimmed. */
static void begin_section(struct parse *p, const char *inner)
{
	if (strcmp(inner, "resource") == 0) {
		if (p->resource_line) {
			perr(p, p->lineno, "duplicate [resource] (first at line %d)",
			     p->resource_line);
			return;
		}
		p->resource_line = p->lineno;
		p->sec = SEC_RESOURCE;
		return;
	}
	if (strncmp(inner, "node", 4) == 0 && isspace((unsigned char)inner[4])) {
		inner += 4;
		while (isspace((unsigned char)*inner))
			inner++;
		begin_node(p, inner);
		return;
	}
	perr(p, p->lineno, "unknown section [%s] (expected [resource] or [node NAME])", inner);
}

/* Section headers are ours to see: inih says nothing of a section that
 * holds no keys, and nothing of any header's line. */
static void scan_header(struct parse *p, const char *line)
{
	const char *close, *rest;
	char *inner;

	if (p->lineno == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0)
		line += 3; /* a UTF-8 byte order mark, which inih skips */
	if (*line != '[')
		return;
	close = strchr(line, ']');
	if (!close) {
		perr(p, p->lineno, "no ']' closing the section header");
		return;
	}
	for (rest = close + 1; *rest; rest++) {
		if (!isspace((unsigned char)*rest)) {
			perr(p, p->lineno, "text after the section header's ']'");
			return;
		}
	}
	/* A copy: inih has yet to parse the line in buf. */
	for (line++; line < close && isspace((unsigned char)*line); line++)
		;
	while (close > line && isspace((unsigned char)close[-1]))
		close--;
	inner = strndup(line, (size_t)(close - line));
	if (!inner) {
		perr(p, p->lineno, "out of memory");
		return;
	}
	begin_section(p, inner);
	free(inner);
}

/* inih's fgets: one line per call, so p->lineno is the line inih is on. */
static char *read_line(char *buf, int num, void *stream)
{
	struct parse *p = stream;
	const char *s = p->pos, *nl;
	size_t len, text_len;

	if (p->failed || *s == '\0' || num < 3)
		return NULL;
	nl = strchr(s, '\n');
	len = nl ? (size_t)(nl - s) + 1 : strlen(s);
	p->pos = s + len;
	p->lineno++;
	/* A line starting with a blank would continue the previous value. */
	while (len > 0 && *s != '\n' && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	/* A comment after a value or a header is cut here: inih would cut
	 * only "; text", and keep "# text" in the value. */
	text_len = config_value_comment_at(s, len - (nl ? 1 : 0));
	if (text_len > (size_t)num - 2) {
		perr(p, p->lineno, "line longer than %d characters", num - 2);
		return NULL;
	}
	memcpy(buf, s, text_len);
	if (nl)
		buf[text_len++] = '\n';
	buf[text_len] = '\0';
	scan_header(p, buf);
	return p->failed ? NULL : buf;
}

/* TLS (the default) needs a key: the secret's, or certificates. */
static int check_tls(struct parse *p)
{
	struct config *c = p->c;

	if (c->tls_ca && c->allow_unencrypted) {
		perr(p, p->res_lines[RK_TLS_CA],
		     "both tls-ca and allow-unencrypted = yes: choose one");
		return -1;
	}
	if (c->allow_unauthenticated && !c->allow_unencrypted && !c->tls_ca) {
		perr(p, p->res_lines[RK_ALLOW_UNAUTH],
		     "allow-unauthenticated = yes needs allow-unencrypted = yes too: TLS needs "
		     "a secret-file or certificates (tls-ca)");
		return -1;
	}
	for (unsigned int i = 0; i < c->nnodes; i++) {
		const struct node_priv *n = &c->priv[i];

		if (c->tls_ca && (!n->tls_certificate || !n->tls_key)) {
			perr(p, n->line, "[node %s] has no %s, which tls-ca needs", n->name,
			     !n->tls_certificate ? "tls-certificate" : "tls-key");
			return -1;
		}
		if (!c->tls_ca && (n->tls_certificate || n->tls_key)) {
			perr(p, n->line, "[node %s] has a TLS certificate or key but [resource] has "
					 "no tls-ca",
			     n->name);
			return -1;
		}
	}
	return 0;
}

/* A witness keeps no data: no key about data in its section; state-file
 * is a witness's alone. */
static int check_witness(struct parse *p, const struct node_priv *n)
{
	static const enum node_key data_keys[] = { NK_BACKING, NK_NBD,	       NK_META,	   NK_MODE,
						   NK_MAX_LAG, NK_AUTO_ATTACH, NK_PRIORITY };
	const int *lines = p->node_lines[n - p->c->priv];

	if (!n->witness) {
		if (lines[NK_STATE_FILE])
			perr(p, lines[NK_STATE_FILE],
			     "[node %s] has a state-file but is no witness (witness = yes)",
			     n->name);
		return lines[NK_STATE_FILE] ? -1 : 0;
	}
	for (size_t k = 0; k < sizeof(data_keys) / sizeof(data_keys[0]); k++) {
		if (lines[data_keys[k]]) {
			perr(p, lines[data_keys[k]],
			     "[node %s] is a witness (witness = yes): it keeps no data, so no %s",
			     n->name, node_keys[data_keys[k]]);
			return -1;
		}
	}
	return 0;
}

/* Voters: quorum defaults to majority with 3 nodes or more, witnesses
 * included; auto-failover needs it; at least 2 data nodes. */
static void check_quorum(struct parse *p, int last)
{
	struct config *c = p->c;
	unsigned int data = 0;

	for (unsigned int i = 0; i < c->nnodes; i++)
		data += !c->priv[i].witness;
	if (data < CONFIG_NODES_MIN) {
		perr(p, last,
		     "%u data node%s: a resource needs at least %d nodes without witness = yes",
		     data, data == 1 ? "" : "s", CONFIG_NODES_MIN);
		return;
	}
	if (c->quorum < 0)
		c->quorum = c->nnodes >= 3 ? CONFIG_QUORUM_MAJORITY : CONFIG_QUORUM_OFF;
	if (c->auto_failover && c->quorum != CONFIG_QUORUM_MAJORITY)
		perr(p, p->res_lines[RK_AUTO_FAILOVER],
		     "auto-failover = yes needs quorum = majority (quorum is off%s)",
		     p->res_lines[RK_QUORUM] ? "" : " by default with 2 nodes");
}

/* A witness's state file, by default /var/lib/blkrep/RESOURCE.witness. */
static void default_state_files(struct parse *p)
{
	for (unsigned int i = 0; i < p->c->nnodes; i++) {
		struct node_priv *n = &p->c->priv[i];

		if (n->witness && !n->state_file &&
		    asprintf(&n->state_file, "%s/%s.witness", CONFIG_STATE_DIR, p->c->name) < 0) {
			n->state_file = NULL;
			perr(p, n->line, "out of memory");
		}
	}
}

/* 2 to CONFIG_NODES_MAX nodes, each with an address and a backing store
 * (but a witness), no two at one address. */
static void check_nodes(struct parse *p, int last)
{
	struct config *c = p->c;
	unsigned int i, j;

	if (c->nnodes < CONFIG_NODES_MIN) {
		perr(p, last, "%u [node NAME] section%s: a resource has %d to %d nodes", c->nnodes,
		     c->nnodes == 1 ? "" : "s", CONFIG_NODES_MIN, CONFIG_NODES_MAX);
		return;
	}
	for (i = 0; i < c->nnodes; i++) {
		const struct node_priv *n = &c->priv[i];

		if (!n->address || (!n->backing && !n->witness)) {
			perr(p, n->line, "[node %s] has no %s", n->name,
			     !n->address ? "address" : "backing");
			return;
		}
		if (check_witness(p, n) < 0)
			return;
	}
	for (j = 1; j < c->nnodes; j++)
		for (i = 0; i < j; i++)
			if (config_value_same_address(c->priv[i].address, c->priv[j].address)) {
				perr(p, c->priv[j].line, "nodes %s and %s have the same address %s",
				     c->priv[i].name, c->priv[j].name, c->priv[j].address);
				return;
			}
}

/* What only the whole file can tell: required keys and sections, one of
 * the two ways to authenticate, distinct nodes. */
static void check_complete(struct parse *p)
{
	struct config *c = p->c;
	int last = p->lineno > 0 ? p->lineno : 1;

	if (!p->resource_line) {
		perr(p, last, "no [resource] section");
		return;
	}
	if (!c->name) {
		perr(p, p->resource_line, "[resource] has no name");
		return;
	}
	if (!c->secret_file && !c->allow_unauthenticated && !c->tls_ca) {
		perr(p, p->resource_line,
		     "no secret-file, tls-ca nor allow-unauthenticated = yes: "
		     "refusing to run unauthenticated");
		return;
	}
	if (c->secret_file && c->allow_unauthenticated) {
		int l = p->res_lines[RK_SECRET];

		if (p->res_lines[RK_ALLOW_UNAUTH] > l)
			l = p->res_lines[RK_ALLOW_UNAUTH];
		perr(p, l, "both secret-file and allow-unauthenticated = yes: choose one");
		return;
	}
	if (check_tls(p) < 0)
		return;
	check_nodes(p, last);
	if (!p->failed)
		check_quorum(p, last);
	if (!p->failed)
		default_state_files(p);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct node_priv *)a)->name, ((const struct node_priv *)b)->name);
}

/* The nodes sorted by name, so every node numbers them alike, and their
 * public views. */
static void fill_views(struct config *c)
{
	unsigned int i;

	qsort(c->priv, c->nnodes, sizeof(c->priv[0]), by_name);
	for (i = 0; i < c->nnodes; i++) {
		c->nodes[i].name = c->priv[i].name;
		c->nodes[i].address = c->priv[i].address;
		c->nodes[i].backing = c->priv[i].backing;
		c->nodes[i].nbd = c->priv[i].nbd;
		c->nodes[i].meta = c->priv[i].meta;
		c->nodes[i].tls_certificate = c->priv[i].tls_certificate;
		c->nodes[i].tls_key = c->priv[i].tls_key;
		c->nodes[i].metrics = c->priv[i].metrics;
		c->nodes[i].witness = c->priv[i].witness;
		c->nodes[i].state_file = c->priv[i].state_file;
		c->nodes[i].priority = c->priv[i].priority;
		c->nodes[i].auto_attach = c->priv[i].auto_attach;
	}
}

int config_parse_string(const char *text, const char *fname, struct config **out, char *err,
			size_t errlen)
{
	struct parse p = { .fname = fname, .pos = text, .err = err, .errlen = errlen };
	int ret;

	if (errlen)
		err[0] = '\0';
	p.c = calloc(1, sizeof(*p.c));
	if (!p.c) {
		snprintf(err, errlen, "%s: out of memory", fname);
		return -1;
	}
	p.c->mode = CONFIG_SYNC;
	p.c->on_peer_loss = CONFIG_PEER_LOSS_CONTINUE;
	p.c->max_lag = CONFIG_DEFAULT_MAX_LAG;
	p.c->after_split_brain = CONFIG_SB_DISCONNECT;
	p.c->granularity = CONFIG_DEFAULT_GRANULARITY;
	p.c->al_extents = CONFIG_DEFAULT_AL_EXTENTS;
	p.c->timeout_s = CONFIG_DEFAULT_TIMEOUT_S;
	p.c->dead_conn_s = CONFIG_DEFAULT_DEAD_CONN_S;
	p.c->nbd_uid = (uid_t)-1;
	p.c->quorum = -1; /* by the node count, once known */
	p.c->path = strdup(fname);
	if (!p.c->path) {
		snprintf(err, errlen, "%s: out of memory", fname);
		goto fail;
	}

	ret = ini_parse_stream(read_line, &p, on_key, &p);
	/* inih's own complaint (a line that is neither a header, a comment nor
	 * key = value) counts if it comes before ours. */
	if (ret > 0 && (!p.failed || ret < p.err_line)) {
		p.failed = false;
		perr(&p, ret, "expected 'key = value', '[section]' or a comment");
	} else if (ret < 0 && !p.failed) {
		perr(&p, p.lineno, "out of memory");
	}
	if (!p.failed)
		check_complete(&p);
	if (p.failed)
		goto fail;
	fill_views(p.c);
	*out = p.c;
	return 0;
fail:
	config_free(p.c);
	return -1;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	struct config *c;
	struct stat sb;
	char *text = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)sb.st_size > CONFIG_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %u bytes: not a config file", path,
			 CONFIG_FILE_MAX);
		goto out;
	}
	text = malloc((size_t)sb.st_size + 1);
	if (!text) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	/* Read what fstat promised, no more: a growing file is cut there. */
	while (len < (size_t)sb.st_size) {
		n = read(fd, text + len, (size_t)sb.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	text[len] = '\0';
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "%s: contains a NUL byte: not a config file", path);
		goto out;
	}
	ret = config_parse_string(text, path, &c, err, errlen);
	if (ret == 0 && c->nbd_user &&
	    config_value_user(c->nbd_user, &c->nbd_uid, err, errlen, path, c->nbd_user_line) < 0) {
		config_free(c);
		ret = -1;
	}
	if (ret == 0)
		*out = c;
out:
	free(text);
	close(fd);
	return ret;
}
