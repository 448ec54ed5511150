/* The control socket's text format.  See ctlparse.h. */
#include "ctlparse.h"

#include <string.h>

#define STR_(x)	#x
#define STR(x)	STR_(x)

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Below 0x20 or DEL: the tab separates words and is not one of these. */
static bool is_control(char c)
{
	unsigned char u = (unsigned char)c;

	return (u < 0x20 && c != '\t') || u == 0x7f;
}

static int refuse(const char *reason, const char **why)
{
	*why = reason;
	return -1;
}

/* Splits line (NUL-terminated, already checked) in place. */
static int split_words(char *line, char **argv, int *argc, const char **why)
{
	int n = 0;

	for (char *p = line; *p;) {
		while (is_blank(*p))
			*p++ = '\0';
		if (!*p)
			break;
		if (n == CONTROL_WORDS_MAX)
			return refuse("too many words (at most " STR(CONTROL_WORDS_MAX) ")", why);
		argv[n++] = p;
		while (*p && !is_blank(*p))
			p++;
	}
	argv[n] = NULL;
	*argc = n;
	return n ? 1 : refuse("empty request", why);
}

int ctlparse_request(char *buf, size_t len, char *argv[CONTROL_WORDS_MAX + 1], int *argc,
		     const char **why)
{
	char *nl = memchr(buf, '\n', len);

	if (!nl)
		return len >= CONTROL_LINE_MAX ? refuse("request too long", why) : 0;
	len = (size_t)(nl - buf);
	if (len && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (memchr(buf, '\0', len))
		return refuse("request holds a NUL byte", why);
	for (size_t i = 0; i < len; i++)
		if (is_control(buf[i]))
			return refuse("request holds a control character", why);
	return split_words(buf, argv, argc, why);
}

static const char *bad_word(const char *w)
{
	if (!*w)
		return "an empty argument cannot be sent to the daemon";
	for (; *w; w++)
		if (is_blank(*w) || is_control(*w))
			return "an argument holding a space, a tab or a control character cannot "
			       "be sent to the daemon";
	return NULL;
}

int ctlparse_join(char *const *words, int n, char *line, size_t size, const char **why)
{
	size_t len = 0, wl, need;

	if (n < 1 || n > CONTROL_WORDS_MAX)
		return refuse("a request has 1 to " STR(CONTROL_WORDS_MAX) " words", why);
	for (int i = 0; i < n; i++) {
		if ((*why = bad_word(words[i])))
			return -1;
		wl = strlen(words[i]);
		/* the space before it, and the '\n' (on the wire) or the NUL
		 * (in line) after it */
		need = (i > 0) + wl + 1;
		if (need > CONTROL_LINE_MAX - len || need > size - len)
			return refuse("request too long", why);
		if (i)
			line[len++] = ' ';
		memcpy(line + len, words[i], wl);
		len += wl;
	}
	line[len] = '\0';
	return (int)len;
}

int ctlparse_answer(const char *ans, size_t len, bool *ok, size_t *body_off, size_t *body_len)
{
	const char *nl = memchr(ans, '\n', len);
	size_t head = nl ? (size_t)(nl - ans) : len;

	if (head == 2 && !memcmp(ans, "ok", 2))
		*ok = true;
	else if (head == 5 && !memcmp(ans, "error", 5))
		*ok = false;
	else
		return -1;
	*body_off = nl ? head + 1 : len;
	*body_len = len - *body_off;
	if (*body_len && ans[len - 1] == '\n')
		(*body_len)--;
	return 0;
}
