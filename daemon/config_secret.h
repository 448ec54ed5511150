/* The resource's secret file (the key of the peers' HMAC authentication),
 * read with the checks ssh makes of a private key.  Errors: -1 with one
 * line in err; nothing here prints or exits. */
#ifndef BLKREP_CONFIG_SECRET_H
#define BLKREP_CONFIG_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes a secret needs to hold 128 bits: binary (any byte outside
 * printable ASCII) at 8 bits a byte, text at 4 bits a character, as if it
 * were hex: `openssl rand -hex 32` and `head -c 32 /dev/urandom` pass. */
#define CONFIG_SECRET_MIN_BINARY 16
#define CONFIG_SECRET_MIN_TEXT	 32

/* Whether secret[len] (trailing newlines cut) holds 128 bits by that rule. */
bool config_secret_strong(const uint8_t *secret, size_t len);

/* Reads a secret file into secret[CONFIG_SECRET_MAX] and sets *len.
 * Refuses, as ssh does for keys, a file with any permission bit for group
 * or others ("chmod 600 it") or owned by another user than the process's
 * effective one ("chown it"); also a missing, empty (after trailing
 * newlines are stripped) or non-regular file, or one over
 * CONFIG_SECRET_MAX bytes; and, unless allow_weak, a secret that is not
 * config_secret_strong() (the message says how to make one). */
int config_load_secret(const char *path, bool allow_weak, uint8_t *secret, size_t *len, char *err,
		       size_t errlen);

#endif
