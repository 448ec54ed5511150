/* Checking a command line against its command's spec.  See cmdspec.h. */
#include "daemon/cli/cmdspec.h"

#include <stdio.h>
#include <string.h>

#include "daemon/cli/commands.h"

const struct command_opt *cmdspec_opt(const struct command *c, const char *name)
{
	for (int i = 0; i < COMMAND_OPTS_MAX && c->opts[i].name; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			return &c->opts[i];
	return NULL;
}

bool cmdspec_has_flag(int argc, char *const *argv, const char *flag)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], flag) == 0)
			return true;
	return false;
}

static bool is_option(const char *word)
{
	return word[0] == '-' && word[1] != '\0';
}

bool cmdspec_arg_name(const struct command *c, int i, char *buf, size_t len)
{
	const char *s = c->args ? c->args : "ARG", *end;

	if (i >= c->max_args)
		return false;
	for (;;) {
		end = strchr(s, ' ');
		if (!end || i-- == 0)
			break;
		s = end + 1;
	}
	snprintf(buf, len, "%.*s", end ? (int)(end - s) : (int)strlen(s), s);
	return true;
}

/* Whether word is one of the choices "a|b|c" in name (true when name
 * lists none). */
static bool is_choice(const char *name, const char *word)
{
	size_t n = strlen(word);
	const char *s = name;

	if (!strchr(name, '|'))
		return true;
	for (;;) {
		if (strncmp(s, word, n) == 0 && (s[n] == '|' || s[n] == '\0'))
			return true;
		s = strchr(s, '|');
		if (!s)
			return false;
		s++;
	}
}

static enum cmdspec_verdict check_arg(const struct command *c, int nargs, const char *word,
				      char *why, size_t len)
{
	char name[64];

	if (!cmdspec_arg_name(c, nargs, name, sizeof(name))) {
		snprintf(why, len, "unexpected argument '%s'", word);
		return CMDSPEC_BAD;
	}
	if (!is_choice(name, word)) {
		snprintf(why, len, "'%s' is not one of %s", word, name);
		return CMDSPEC_BAD;
	}
	return CMDSPEC_OK;
}

enum cmdspec_verdict cmdspec_check(const struct command *c, int argc, char *const *argv,
				   char *why, size_t len)
{
	const struct command_opt *o;
	char name[64];
	int nargs = 0;

	if (cmdspec_has_flag(argc, argv, "--help") || cmdspec_has_flag(argc, argv, "-h"))
		return CMDSPEC_HELP;
	for (int i = 1; i < argc; i++) {
		if (!is_option(argv[i])) {
			if (check_arg(c, nargs++, argv[i], why, len) != CMDSPEC_OK)
				return CMDSPEC_BAD;
			continue;
		}
		o = cmdspec_opt(c, argv[i]);
		if (!o) {
			snprintf(why, len, "unknown option '%s'", argv[i]);
			return CMDSPEC_BAD;
		}
		if (o->value && (i + 1 >= argc || !argv[i + 1][0])) {
			snprintf(why, len, "%s needs a value (%s)", o->name, o->value);
			return CMDSPEC_BAD;
		}
		i += o->value ? 1 : 0;
	}
	if (nargs < c->min_args) {
		(void)cmdspec_arg_name(c, nargs, name, sizeof(name));
		snprintf(why, len, "missing argument %s", name);
		return CMDSPEC_BAD;
	}
	return CMDSPEC_OK;
}

int cmdspec_split_values(const struct command *c, int argc, char **argv, char **out)
{
	const struct command_opt *o;
	int n = 0;

	for (int i = 0; i < argc; i++) {
		char *eq = i && strncmp(argv[i], "--", 2) == 0 ? strchr(argv[i], '=') : NULL;

		if (eq) {
			*eq = '\0';
			o = cmdspec_opt(c, argv[i]);
			if (o && o->value) {
				out[n++] = argv[i];
				out[n++] = eq + 1;
				continue;
			}
			*eq = '=';
		}
		out[n++] = argv[i];
	}
	out[n] = NULL;
	return n;
}
