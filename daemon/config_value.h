/* Single config values, pure: the spellings a config file may use for a
 * size, a number, a name or an address.  The config parser (config.c) and
 * whoever reads an address later (the peer link) share them, so a value
 * the parser accepted splits the same way everywhere. */
#ifndef BLKREP_CONFIG_VALUE_H
#define BLKREP_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* A size: decimal bytes, optionally followed by K, M, G or T (powers of
 * 1024, any case) and then B or iB; a bare trailing B is allowed too.
 * Returns -1 on garbage or overflow of 64 bits. */
int config_parse_size(const char *s, uint64_t *out);
/* A resync rate: "adaptive" (*out = 0) or a size per second (100M, 100M/s,
 * 100MB/s).  0, or -1 for a bad value (the caller reports it). */
int config_value_rate(const char *s, uint64_t *out);

/* Splits a validated address (HOST:PORT, or [IPV6]:PORT, brackets removed
 * from the host).  Returns -1 if it is malformed or host does not fit. */
int config_address_split(const char *addr, char *host, size_t hostlen, uint16_t *port);

/* 1-63 (CONFIG_NAME_MAX) characters of [A-Za-z0-9_.-]: safe in file names
 * and JSON. */
bool config_value_name_ok(const char *s);

/* A plain decimal in [min, max]: 0 and *out, or -1. */
int config_value_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out);

/* Whether v is an address config_address_split() accepts. */
bool config_value_address_ok(const char *v);

struct sockaddr_storage;
/* addr (as config_address_split() takes it) as a socket address: its
 * host's first address (getaddrinfo: the resolver, for a name), with the
 * port.  For the peer link and the metrics endpoint.  0, or -1 with the
 * reason in err ("expected HOST:PORT or [IPV6]:PORT", or the resolver's). */
int config_address_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
			   char *err, size_t errlen);

/* The uid of user name (getpwnam: the one lookup here that asks the
 * system; config_load() alone calls it).  -1 with "FNAME:LINE: unknown
 * nbd-user ..." in err when there is no such user. */
int config_value_user(const char *name, uid_t *uid, char *err, size_t errlen, const char *fname,
		      int line);

/* Where a comment after a value starts in the line s[0..len): at the first
 * '#' or ';' that a blank (space, tab) precedes, as in DRBD's configs;
 * len when there is none.  One with no blank before it is part of the
 * value ("abc#def"). */
size_t config_value_comment_at(const char *s, size_t len);

/* An nbd export: "unix:/ABSOLUTE/PATH" that fits a sockaddr_un, or an
 * address config_address_split() accepts. */
bool config_value_nbd_ok(const char *v);

/* Whether two validated addresses name the same host (any case) and port. */
bool config_value_same_address(const char *a, const char *b);

/* An auto-attach value: "loop" or "/dev/nbdN" (N: 1-4 digits). */
bool config_value_attach_ok(const char *v);

/* Index of v in a NULL-terminated list of spellings, or -1. */
int config_value_choice(const char *v, const char *const *list);

#endif
