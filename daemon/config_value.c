/* Single config values: sizes, numbers, names, addresses.  See
 * config_value.h. */
#include "daemon/config_value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "daemon/config.h"

bool config_value_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int config_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int shift = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	switch (tolower((unsigned char)*s)) {
	case 'k':
		shift = 10;
		break;
	case 'm':
		shift = 20;
		break;
	case 'g':
		shift = 30;
		break;
	case 't':
		shift = 40;
		break;
	}
	if (shift) {
		s++;
		if (tolower((unsigned char)*s) == 'i') {
			s++;
			if (tolower((unsigned char)*s) != 'b')
				return -1;
		}
	}
	if (tolower((unsigned char)*s) == 'b')
		s++;
	if (*s != '\0' || v > UINT64_MAX >> shift)
		return -1;
	*out = v << shift;
	return 0;
}

/* A plain decimal in [min, max]. */
int config_value_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return -1;
	}
	if (v < min)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* Host names and IPv4 literals; a name made of digits and dots must be a
 * valid IPv4 address, so 127.0.0.300 is caught here. */
static bool valid_host(const char *h)
{
	size_t n = strlen(h);
	struct in_addr a4;

	if (n == 0 || n > 253)
		return false;
	if (strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n)
		return false;
	if (strspn(h, "0123456789.") == n)
		return inet_pton(AF_INET, h, &a4) == 1;
	return true;
}

/* The inside of [...]: an IPv6 literal, optionally with a %zone. */
static bool valid_ipv6(const char *h)
{
	char addr[INET6_ADDRSTRLEN];
	struct in6_addr a6;
	const char *zone = strchr(h, '%');
	size_t n = zone ? (size_t)(zone - h) : strlen(h);

	if (n == 0 || n >= sizeof(addr))
		return false;
	if (zone && (zone[1] == '\0' || !config_value_name_ok(zone + 1)))
		return false;
	memcpy(addr, h, n);
	addr[n] = '\0';
	return inet_pton(AF_INET6, addr, &a6) == 1;
}

int config_address_split(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
	const char *h = addr, *colon;
	size_t n;
	unsigned int p;
	char buf[256];

	if (*addr == '[') {
		const char *close = strchr(addr, ']');

		if (!close || close[1] != ':')
			return -1;
		h = addr + 1;
		n = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strchr(addr, ':');
		if (!colon || strchr(colon + 1, ':'))
			return -1;
		n = (size_t)(colon - addr);
	}
	if (n >= sizeof(buf) || n >= hostlen)
		return -1;
	memcpy(buf, h, n);
	buf[n] = '\0';
	if (!(*addr == '[' ? valid_ipv6(buf) : valid_host(buf)))
		return -1;
	if (strlen(colon + 1) > 5 || config_value_uint(colon + 1, 1, 65535, &p) < 0)
		return -1;
	memcpy(host, buf, n + 1);
	*port = (uint16_t)p;
	return 0;
}

bool config_value_address_ok(const char *v)
{
	char host[256];
	uint16_t port;

	return config_address_split(v, host, sizeof(host), &port) == 0;
}

/* Index of v in a NULL-terminated list of spellings, or -1. */
int config_value_choice(const char *v, const char *const *list)
{
	int i;

	for (i = 0; list[i]; i++)
		if (strcmp(v, list[i]) == 0)
			return i;
	return -1;
}

int config_value_user(const char *name, uid_t *uid, char *err, size_t errlen, const char *fname,
		      int line)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		snprintf(err, errlen, "%s:%d: unknown nbd-user '%s' (%s)", fname, line, name,
			 errno ? strerror(errno) : "no such user on this host");
		return -1;
	}
	*uid = pw->pw_uid;
	return 0;
}

const char *config_mode_name(enum config_mode m)
{
	return m == CONFIG_ASYNC ? "async" : "sync";
}

const char *config_peer_loss_name(enum config_peer_loss pl)
{
	return pl == CONFIG_PEER_LOSS_FREEZE ? "freeze" : "continue";
}

const char *config_split_brain_name(enum config_split_brain s)
{
	return s == CONFIG_SB_DISCARD_ZERO_CHANGES ? "discard-zero-changes" : "disconnect";
}

const char *config_quorum_name(enum config_quorum q)
{
	return q == CONFIG_QUORUM_MAJORITY ? "majority" : "off";
}

const char *config_no_quorum_name(enum config_no_quorum q)
{
	return q == CONFIG_NOQ_IO_ERROR ? "io-error" : "suspend-io";
}

size_t config_value_comment_at(const char *s, size_t len)
{
	for (size_t i = 1; i < len; i++)
		if ((s[i] == '#' || s[i] == ';') && (s[i - 1] == ' ' || s[i - 1] == '\t'))
			return i;
	return len;
}

int config_address_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
			   char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char host[320]; /* the peer link's addresses are shorter than 300 bytes */
	uint16_t port;
	int rc;

	if (config_address_split(addr, host, sizeof(host), &port) < 0) {
		snprintf(err, errlen, "expected HOST:PORT or [IPV6]:PORT");
		return -1;
	}
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "%s", gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	return 0;
}

bool config_value_nbd_ok(const char *v)
{
	if (strncmp(v, "unix:", 5) == 0)
		return v[5] == '/' && strlen(v + 5) < sizeof(((struct sockaddr_un *)0)->sun_path);
	return config_value_address_ok(v);
}

bool config_value_same_address(const char *a, const char *b)
{
	char ha[256], hb[256];
	uint16_t pa, pb;

	if (config_address_split(a, ha, sizeof(ha), &pa) < 0 ||
	    config_address_split(b, hb, sizeof(hb), &pb) < 0)
		return strcmp(a, b) == 0;
	return pa == pb && strcasecmp(ha, hb) == 0;
}

bool config_value_attach_ok(const char *v)
{
	const char *d = v + strlen("/dev/nbd");

	if (strcmp(v, "loop") == 0)
		return true;
	if (strncmp(v, "/dev/nbd", strlen("/dev/nbd")) != 0 || *d == '\0' || strlen(d) > 4)
		return false;
	for (; *d; d++)
		if (!isdigit((unsigned char)*d))
			return false;
	return true;
}

int config_value_rate(const char *s, uint64_t *out)
{
	char buf[64];
	size_t n = strlen(s);

	if (strcmp(s, "adaptive") == 0) {
		*out = 0;
		return 0;
	}
	if (n >= 2 && strcmp(s + n - 2, "/s") == 0)
		n -= 2;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return config_parse_size(buf, out);
}
