// fuzz-sources: daemon/ctl/ctlparse.c
/* libFuzzer harness for the control socket's text format (daemon/ctlparse:
 * what control.c does with a client's bytes, and with the daemon's answer).
 *
 * Input: a chunk size u8, then bytes used three ways.
 *  - As a client's request, received in chunks (as recv() hands them to
 *    control.c; at most CONTROL_LINE_MAX bytes).  The verdict must be the
 *    one an independent statement of the format gives: the same words, or
 *    the same reason.  Accepted words must join back (ctlparse_join) into
 *    a line that splits into the same words.  A refusal is one line, and
 *    the answer the daemon makes of it reads back as that line.
 *  - As NUL-separated words for ctlparse_join(): whatever it joins must
 *    split back into the same words; a refusal must name a real problem.
 *  - As a daemon's answer for ctlparse_answer(), judged by a restatement. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl/ctlparse.h"
#include "tests/fuzz/oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct words {
	int n;
	const char *why;		/* when refused */
	char *w[CONTROL_WORDS_MAX + 1];
	size_t len[CONTROL_WORDS_MAX + 1];
};

static bool ctl_char(uint8_t c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* The request format, restated over the raw bytes.  Returns 0 (need
 * more), 1 (words in *out, pointing into b) or -1 (reason in out->why). */
static int oracle_request(const uint8_t *b, size_t len, struct words *out)
{
	const uint8_t *nl = memchr(b, '\n', len);
	size_t end, i = 0;

	out->n = 0;
	if (!nl) {
		out->why = "request too long";
		return len >= CONTROL_LINE_MAX ? -1 : 0;
	}
	end = (size_t)(nl - b);
	if (end && b[end - 1] == '\r')
		end--;
	out->why = "request holds a NUL byte";
	if (memchr(b, 0, end))
		return -1;
	out->why = "request holds a control character";
	for (size_t k = 0; k < end; k++)
		if (ctl_char(b[k]))
			return -1;
	while (i < end) {
		size_t start;

		if (b[i] == ' ' || b[i] == '\t') {
			i++;
			continue;
		}
		for (start = i; i < end && b[i] != ' ' && b[i] != '\t'; i++)
			;
		if (out->n == CONTROL_WORDS_MAX) {
			out->why = "too many words (at most 32)";
			return -1;
		}
		out->w[out->n] = (char *)(uintptr_t)(b + start);
		out->len[out->n++] = i - start;
	}
	out->why = "empty request";
	return out->n ? 1 : -1;
}

/* A refusal as the daemon sends it must read back as one line. */
static void check_refusal(const char *why)
{
	char ans[256];
	size_t off, len;
	bool ok = true;
	int n;

	FUZZ_CHECK(why && *why && !strchr(why, '\n') && !strchr(why, '\r'));
	n = snprintf(ans, sizeof(ans), "error\n%s\n", why);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(ans));
	FUZZ_CHECK(ctlparse_answer(ans, (size_t)n, &ok, &off, &len) == 0 && !ok);
	FUZZ_CHECK(len == strlen(why) && !memcmp(ans + off, why, len));
}

/* Joining argv and splitting the line again gives argv back. */
static void check_roundtrip(char *const *argv, int argc)
{
	char line[CONTROL_LINE_MAX + 1], *again[CONTROL_WORDS_MAX + 1];
	const char *why = NULL;
	int n, len;

	len = ctlparse_join(argv, argc, line, sizeof(line) - 1, &why);
	FUZZ_CHECK(len >= 0);
	FUZZ_CHECK((size_t)len == strlen(line) && len + 1 <= CONTROL_LINE_MAX);
	line[len] = '\n';
	FUZZ_CHECK(ctlparse_request(line, (size_t)len + 1, again, &n, &why) == 1);
	FUZZ_CHECK(n == argc && again[n] == NULL);
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(!strcmp(again[i], argv[i]));
}

static void check_request(const uint8_t *in, size_t size, size_t chunk)
{
	static char buf[CONTROL_LINE_MAX + 1];
	char *argv[CONTROL_WORDS_MAX + 1];
	const char *why = NULL;
	struct words want;
	size_t got = 0;
	int argc = -1, rc = 0, expect;

	if (size > CONTROL_LINE_MAX)
		size = CONTROL_LINE_MAX;	/* recv never reads past it */
	memcpy(buf, in, size);
	while (got < size && rc == 0) {
		got += chunk < size - got ? chunk : size - got;
		rc = ctlparse_request(buf, got, argv, &argc, &why);
		if (rc == 0) {
			FUZZ_CHECK(!memcmp(buf, in, got));	/* untouched */
			FUZZ_CHECK(oracle_request(in, got, &want) == 0);
		}
	}
	expect = oracle_request(in, got, &want);
	FUZZ_CHECK(rc == expect);
	if (rc < 0) {
		FUZZ_CHECK(!strcmp(why, want.why));
		check_refusal(why);
	}
	if (rc <= 0)
		return;
	FUZZ_CHECK(argc == want.n && argv[argc] == NULL);
	for (int i = 0; i < argc; i++) {
		FUZZ_CHECK(strlen(argv[i]) == want.len[i]);
		FUZZ_CHECK(!memcmp(argv[i], want.w[i], want.len[i]));
	}
	check_roundtrip(argv, argc);
}

/* NUL-separated words (the last one may end without its NUL). */
static void check_join(const uint8_t *in, size_t size)
{
	static char copy[2 * CONTROL_LINE_MAX + 2], line[CONTROL_LINE_MAX + 1];
	char *w[CONTROL_WORDS_MAX + 2];
	const char *why = NULL;
	bool bad = false;
	size_t total = 0;
	int n = 0, len;

	if (size > 2 * CONTROL_LINE_MAX)
		size = 2 * CONTROL_LINE_MAX;
	memcpy(copy, in, size);
	copy[size] = '\0';
	for (size_t i = 0; i <= size && n < CONTROL_WORDS_MAX + 1; n++) {
		w[n] = copy + i;
		i += strlen(copy + i) + 1;
	}
	for (int i = 0; i < n; i++) {
		total += strlen(w[i]) + 1;
		bad |= !*w[i];
		for (const char *p = w[i]; *p; p++)
			bad |= *p == ' ' || *p == '\t' || ctl_char((uint8_t)*p);
	}
	len = ctlparse_join(w, n, line, sizeof(line), &why);
	if (len < 0) {
		FUZZ_CHECK(bad || n > CONTROL_WORDS_MAX || total > CONTROL_LINE_MAX);
		check_refusal(why);
		return;
	}
	FUZZ_CHECK(!bad && n <= CONTROL_WORDS_MAX && total <= CONTROL_LINE_MAX);
	check_roundtrip(w, n);
}

static void check_answer(const uint8_t *in, size_t size)
{
	const char *a = (const char *)in, *nl = memchr(in, '\n', size);
	size_t head = nl ? (size_t)(nl - a) : size, off = 0, len = 0, want;
	bool ok = false;
	int rc = ctlparse_answer(a, size, &ok, &off, &len);

	if ((head == 2 && !memcmp(a, "ok", 2)) || (head == 5 && !memcmp(a, "error", 5))) {
		FUZZ_CHECK(rc == 0 && ok == (head == 2));
		want = nl ? size - head - 1 : 0;
		if (want && a[size - 1] == '\n')
			want--;
		FUZZ_CHECK(len == want && off + len <= size);
		FUZZ_CHECK(!nl || off == head + 1);
	} else {
		FUZZ_CHECK(rc < 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk;

	if (size < 1)
		return 0;
	chunk = data[0] & 0x80 ? CONTROL_LINE_MAX : (size_t)data[0] + 1;
	check_request(data + 1, size - 1, chunk);
	check_join(data + 1, size - 1);
	check_answer(data + 1, size - 1);
	return 0;
}
