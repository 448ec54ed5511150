/* The resource's secret file (the key of the peers' HMAC authentication),
 * read with the checks ssh makes of a private key.  Errors: -1 with one
 * line in err; nothing here prints or exits. */
#ifndef BLKREP_CONFIG_SECRET_H
#define BLKREP_CONFIG_SECRET_H

#include <stddef.h>
#include <stdint.h>

/* Reads a secret file into secret[CONFIG_SECRET_MAX] and sets *len.
 * Refuses, as ssh does for keys, a file with any permission bit for group
 * or others ("chmod 600 it"); also a missing, empty (after trailing
 * newlines are stripped) or non-regular file, or one over
 * CONFIG_SECRET_MAX bytes. */
int config_load_secret(const char *path, uint8_t *secret, size_t *len, char *err, size_t errlen);

#endif
