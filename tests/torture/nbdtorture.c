/* nbdtorture: the workload-and-verify tool of the torture tests.
 *
 *   nbdtorture write ...   writes checkable blocks over NBD and logs every
 *                          issue and reply (twriter.h, tlog.h)
 *   nbdtorture check ...   reads a replica (an image file or an NBD export)
 *                          and judges it against the log (tcheck.h)
 *
 * Exit status: write 0 when it ran (a lost connection is an expected end),
 * 2 on bad usage or when it cannot start; check 0 ok, 1 violations, 2 bad
 * usage or an I/O error. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nbd/client.h"
#include "nbd/wire.h"
#include "tblock.h"
#include "tcheck.h"
#include "tlog.h"
#include "tnbd.h"
#include "twriter.h"

#define READ_CHUNK	  (4U << 20)
#define MAX_REPORTED	  10
#define DEFAULT_MAX_LAG	  (64ULL << 20)

static const char usage_text[] =
	"usage: nbdtorture write (--socket PATH | --connect HOST:PORT) [--export NAME] --log FILE\n"
	"                        [--conns 4] [--qd 8] [--block 4096] [--max-blocks 8]\n"
	"                        [--area-blocks N] [--area-offset BYTES] [--seconds S]\n"
	"                        [--writes N] [--seed S]\n"
	"                        [--writer W] [--flush-prob 0.02] [--fua-prob 0.05] [--quiet]\n"
	"       nbdtorture check (--image FILE [--image-offset BYTES] | --socket PATH |\n"
	"                         --connect HOST:PORT [--export NAME]) --log FILE\n"
	"                        --mode sync|durable|async [--max-lag BYTES] [--json] [--quiet]\n";

static volatile sig_atomic_t stop_signals;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (stop_signals < 100)
		stop_signals++;
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "nbdtorture: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

/* A number with an optional K/M/G/T suffix (powers of 1024). */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long n;
	int shift = 0;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: break;
	}
	if (*end || (shift && n > (UINT64_MAX >> shift)))
		return -1;
	*v = (uint64_t)n << shift;
	return 0;
}

static int parse_range(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
	return parse_u64(s, v) < 0 || *v < lo || *v > hi ? -1 : 0;
}

static int parse_double(const char *s, double lo, double hi, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return errno || end == s || *end || !(*v >= lo && *v <= hi) ? -1 : 0;
}

enum opt_id {
	O_SOCKET = 256, O_CONNECT, O_EXPORT, O_LOG, O_CONNS, O_QD, O_BLOCK, O_MAX_BLOCKS,
	O_AREA_BLOCKS, O_SECONDS, O_WRITES, O_SEED, O_WRITER, O_FLUSH_PROB, O_FUA_PROB, O_QUIET,
	O_IMAGE, O_IMAGE_OFFSET, O_MODE, O_MAX_LAG, O_JSON, O_AREA_OFFSET,
};

static const struct option write_opts[] = {
	{ "socket", required_argument, NULL, O_SOCKET },
	{ "connect", required_argument, NULL, O_CONNECT },
	{ "export", required_argument, NULL, O_EXPORT },
	{ "log", required_argument, NULL, O_LOG },
	{ "conns", required_argument, NULL, O_CONNS },
	{ "qd", required_argument, NULL, O_QD },
	{ "block", required_argument, NULL, O_BLOCK },
	{ "max-blocks", required_argument, NULL, O_MAX_BLOCKS },
	{ "area-blocks", required_argument, NULL, O_AREA_BLOCKS },
	{ "area-offset", required_argument, NULL, O_AREA_OFFSET },
	{ "seconds", required_argument, NULL, O_SECONDS },
	{ "writes", required_argument, NULL, O_WRITES },
	{ "seed", required_argument, NULL, O_SEED },
	{ "writer", required_argument, NULL, O_WRITER },
	{ "flush-prob", required_argument, NULL, O_FLUSH_PROB },
	{ "fua-prob", required_argument, NULL, O_FUA_PROB },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ NULL, 0, NULL, 0 },
};

static const struct option check_opts[] = {
	{ "image", required_argument, NULL, O_IMAGE },
	{ "image-offset", required_argument, NULL, O_IMAGE_OFFSET },
	{ "socket", required_argument, NULL, O_SOCKET },
	{ "connect", required_argument, NULL, O_CONNECT },
	{ "export", required_argument, NULL, O_EXPORT },
	{ "log", required_argument, NULL, O_LOG },
	{ "mode", required_argument, NULL, O_MODE },
	{ "max-lag", required_argument, NULL, O_MAX_LAG },
	{ "json", no_argument, NULL, O_JSON },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ NULL, 0, NULL, 0 },
};

static bool is_power_of_two(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* One write option; 0, or the exit status of a usage error. */
static int write_opt(struct twriter_opts *o, int id, const char *arg)
{
	uint64_t v = 0;

	switch (id) {
	case O_SOCKET: o->target.socket_path = arg; return 0;
	case O_CONNECT: o->target.hostport = arg; return 0;
	case O_EXPORT: o->target.export_name = arg; return 0;
	case O_LOG: o->log_path = arg; return 0;
	case O_QUIET: o->quiet = true; return 0;
	case O_CONNS:
		if (parse_range(arg, 1, 64, &v) < 0)
			return usage_error("--conns: expects 1 to 64, got '%s'", arg);
		o->conns = (uint32_t)v;
		return 0;
	case O_QD:
		if (parse_range(arg, 1, 128, &v) < 0)
			return usage_error("--qd: expects 1 to 128, got '%s'", arg);
		o->qd = (uint32_t)v;
		return 0;
	case O_BLOCK:
		if (parse_range(arg, TBLOCK_MIN_SIZE, TBLOCK_MAX_SIZE, &v) < 0 ||
		    !is_power_of_two(v))
			return usage_error("--block: expects a power of two from 512 to 1M, got '%s'", arg);
		o->block_size = (uint32_t)v;
		return 0;
	case O_MAX_BLOCKS:
		if (parse_range(arg, 1, 65536, &v) < 0)
			return usage_error("--max-blocks: expects 1 to 65536, got '%s'", arg);
		o->max_blocks = (uint32_t)v;
		return 0;
	case O_AREA_BLOCKS:
		if (parse_range(arg, 1, INT32_MAX, &o->area_blocks) < 0)
			return usage_error("--area-blocks: expects 1 to 2^31-1, got '%s'", arg);
		return 0;
	case O_AREA_OFFSET:
		if (parse_u64(arg, &o->area_offset) < 0)
			return usage_error("--area-offset: expects a byte count, got '%s'", arg);
		return 0;
	case O_SECONDS:
		if (parse_double(arg, 0.001, 1e7, &o->seconds) < 0)
			return usage_error("--seconds: expects a positive number, got '%s'", arg);
		return 0;
	case O_WRITES:
		if (parse_range(arg, 1, UINT32_MAX, &o->max_writes) < 0)
			return usage_error("--writes: expects a positive count, got '%s'", arg);
		return 0;
	case O_SEED:
		if (parse_u64(arg, &o->seed) < 0)
			return usage_error("--seed: expects a number, got '%s'", arg);
		return 0;
	case O_WRITER:
		if (parse_range(arg, 0, UINT32_MAX, &v) < 0)
			return usage_error("--writer: expects a 32-bit number, got '%s'", arg);
		o->writer = (uint32_t)v;
		return 0;
	case O_FLUSH_PROB:
		if (parse_double(arg, 0, 1, &o->flush_prob) < 0)
			return usage_error("--flush-prob: expects 0 to 1, got '%s'", arg);
		return 0;
	case O_FUA_PROB:
		if (parse_double(arg, 0, 1, &o->fua_prob) < 0)
			return usage_error("--fua-prob: expects 0 to 1, got '%s'", arg);
		return 0;
	}
	return usage_error("%s: unknown option", arg ? arg : "?");
}

static int parse_write(int argc, char **argv, struct twriter_opts *o)
{
	int id, rc;

	*o = (struct twriter_opts){ .conns = 4, .qd = 8, .block_size = 4096, .max_blocks = 8,
				    .writer = 1, .flush_prob = 0.02, .fua_prob = 0.05,
				    .stop_signals = &stop_signals };
	o->seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	while ((id = getopt_long(argc, argv, "", write_opts, NULL)) != -1) {
		if (id == '?' || id == ':')
			return usage_error("write: bad option %s", argv[optind - 1]);
		rc = write_opt(o, id, optarg);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return usage_error("write: unexpected argument '%s'", argv[optind]);
	if (!o->target.socket_path == !o->target.hostport)
		return usage_error("write: give exactly one of --socket and --connect%s", "");
	if (!o->log_path)
		return usage_error("write: --log FILE is required%s", "");
	if ((uint64_t)o->max_blocks * o->block_size > NBD_MAX_PAYLOAD)
		return usage_error("write: --max-blocks x --block exceeds 32 MiB%s", "");
	return 0;
}

static int cmd_write(int argc, char **argv)
{
	struct twriter_opts o;
	struct twriter_stats st;
	char err[256] = "";
	int rc = parse_write(argc, argv, &o);

	if (rc)
		return rc;
	if (twriter_run(&o, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "nbdtorture write: %s\n", err);
		return 2;
	}
	printf("nbdtorture write: writes issued %" PRIu64 " acked %" PRIu64 " failed %" PRIu64
	       ", flushes %" PRIu64 " acked %" PRIu64 " failed %" PRIu64 ", bytes %" PRIu64
	       ", IOPS %.0f, seconds %.2f, seed %" PRIu64 ", stopped: %s\n",
	       st.writes_issued, st.writes_acked, st.writes_failed, st.flushes_issued,
	       st.flushes_acked, st.flushes_failed, st.bytes_acked,
	       st.seconds > 0 ? (double)st.writes_acked / st.seconds : 0.0, st.seconds, o.seed,
	       twriter_stop_name(st.stop));
	return 0;
}

struct check_opts {
	const char *image;
	uint64_t image_offset;
	struct tnbd_target target;
	const char *log_path;
	int mode; /* enum tcheck_mode, -1 unset */
	uint64_t max_lag;
	bool json, quiet;
};

static int check_opt(struct check_opts *o, int id, const char *arg)
{
	switch (id) {
	case O_IMAGE: o->image = arg; return 0;
	case O_SOCKET: o->target.socket_path = arg; return 0;
	case O_CONNECT: o->target.hostport = arg; return 0;
	case O_EXPORT: o->target.export_name = arg; return 0;
	case O_LOG: o->log_path = arg; return 0;
	case O_JSON: o->json = true; return 0;
	case O_QUIET: o->quiet = true; return 0;
	case O_IMAGE_OFFSET:
		if (parse_u64(arg, &o->image_offset) < 0)
			return usage_error("--image-offset: expects a byte count, got '%s'", arg);
		return 0;
	case O_MAX_LAG:
		if (parse_u64(arg, &o->max_lag) < 0)
			return usage_error("--max-lag: expects a byte count, got '%s'", arg);
		return 0;
	case O_MODE:
		if (!strcmp(arg, "sync"))
			o->mode = TCHECK_SYNC;
		else if (!strcmp(arg, "durable"))
			o->mode = TCHECK_DURABLE;
		else if (!strcmp(arg, "async"))
			o->mode = TCHECK_ASYNC;
		else
			return usage_error("--mode: expects sync, durable or async, got '%s'", arg);
		return 0;
	}
	return usage_error("%s: unknown option", arg ? arg : "?");
}

static int parse_check(int argc, char **argv, struct check_opts *o)
{
	int id, rc, sources;

	*o = (struct check_opts){ .mode = -1, .max_lag = DEFAULT_MAX_LAG };
	while ((id = getopt_long(argc, argv, "", check_opts, NULL)) != -1) {
		if (id == '?' || id == ':')
			return usage_error("check: bad option %s", argv[optind - 1]);
		rc = check_opt(o, id, optarg);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return usage_error("check: unexpected argument '%s'", argv[optind]);
	sources = !!o->image + !!o->target.socket_path + !!o->target.hostport;
	if (sources != 1)
		return usage_error("check: give exactly one of --image, --socket and --connect%s", "");
	if (!o->log_path)
		return usage_error("check: --log FILE is required%s", "");
	if (o->mode < 0)
		return usage_error("check: --mode sync|durable|async is required%s", "");
	return 0;
}

/* Feeds the whole log to a new checker; NULL (after a message) on error. */
static struct tcheck *load_log(const char *path, struct tlog_header *hp)
{
	struct tlog_header h;
	struct tlog_reader *r = tlog_reader_open(path, &h);
	struct tcheck *tc = NULL;
	struct tlog_rec rec;
	uint64_t n = 0;
	int rc = 0;

	if (!r) {
		fprintf(stderr, "nbdtorture check: %s: %s\n", path,
			errno == EINVAL ? "not an nbdtorture log" : strerror(errno));
		return NULL;
	}
	tc = tcheck_new(&(struct tcheck_run){ .block_size = h.block_size,
					      .area_blocks = h.area_blocks, .seed = h.seed,
					      .writer = h.writer });
	while (tc && rc >= 0 && (rc = tlog_reader_next(r, &rec)) > 0) {
		n++;
		if (rec.type == TLOG_WRITE)
			rc = tcheck_log_write(tc, rec.clock, rec.conn, rec.x, rec.arg,
					      rec.flags & TLOG_FUA);
		else if (rec.type == TLOG_FLUSH)
			rc = tcheck_log_flush(tc, rec.clock);
		else if (rec.type == TLOG_REPLY)
			rc = tcheck_log_reply(tc, rec.clock, rec.x, rec.arg);
		else if (rec.type != TLOG_STOP)
			rc = -EINVAL;
	}
	tlog_reader_close(r);
	if (!tc || rc < 0 || tcheck_log_end(tc) < 0) {
		fprintf(stderr, "nbdtorture check: %s: %s at record %" PRIu64 "\n", path,
			!tc ? "bad header or no memory" : "inconsistent or truncated log", n);
		tcheck_free(tc);
		return NULL;
	}
	*hp = h;
	return tc;
}

/* The replica: an image file (pread) or an NBD export (READ). */
struct source {
	int fd;
	bool nbd;
	uint64_t base; /* image offset */
	uint64_t cookie;
};

static int source_open(const struct check_opts *o, uint64_t need, struct source *s)
{
	char err[256];
	uint64_t size;
	uint16_t flags;

	*s = (struct source){ .fd = -1, .base = o->image_offset };
	if (o->image) {
		s->fd = open(o->image, O_RDONLY | O_CLOEXEC);
		if (s->fd < 0) {
			fprintf(stderr, "nbdtorture check: %s: %s\n", o->image, strerror(errno));
			return -1;
		}
		off_t end = lseek(s->fd, 0, SEEK_END);

		size = end < 0 || (uint64_t)end < o->image_offset ? 0 : (uint64_t)end - o->image_offset;
	} else {
		s->nbd = true;
		s->base = 0;
		s->fd = tnbd_open(&o->target, &size, &flags, err, sizeof(err));
		if (s->fd < 0) {
			fprintf(stderr, "nbdtorture check: %s\n", err);
			return -1;
		}
	}
	if (size < need) {
		fprintf(stderr, "nbdtorture check: the replica holds %" PRIu64
				" bytes, the log's area needs %" PRIu64 "\n", size, need);
		close(s->fd);
		return -1;
	}
	return 0;
}

static int source_read(struct source *s, uint64_t off, uint32_t len, uint8_t *buf)
{
	if (s->nbd)
		return nbd_client_call(s->fd, &s->cookie, NBD_CMD_READ, 0, off, len, NULL, buf);
	for (uint32_t got = 0; got < len;) {
		ssize_t n = pread(s->fd, buf + got, len - got, (off_t)(s->base + off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (uint32_t)n;
	}
	return 0;
}

static void source_close(struct source *s)
{
	if (s->nbd) {
		uint8_t hdr[NBD_REQUEST_SIZE];
		struct nbd_request r = { .type = NBD_CMD_DISC, .cookie = ++s->cookie };

		nbd_request_encode(hdr, &r);
		(void)!write(s->fd, hdr, sizeof(hdr));
	}
	close(s->fd);
}

static void report_block(const struct check_opts *o, uint64_t b, enum tcheck_found f,
			 unsigned *reported)
{
	static const char *const names[] = { "zero", "write", "stale", "torn", "garbage" };

	if (f == TCHECK_FOUND_ZERO || f == TCHECK_FOUND_WRITE || o->quiet)
		return;
	if (++*reported <= MAX_REPORTED)
		fprintf(stderr, "nbdtorture check: block %" PRIu64 ": %s\n", b, names[f]);
}

/* Reads every block of the area and feeds it to the checker. */
static int read_area(const struct check_opts *o, struct tcheck *tc, const struct tcheck_run *run)
{
	uint64_t need = run->area_blocks * run->block_size;
	uint32_t chunk = READ_CHUNK < need ? READ_CHUNK : (uint32_t)need;
	unsigned reported = 0;
	struct source s;
	uint8_t *buf;
	int rc = -1;

	if (source_open(o, need, &s) < 0)
		return -1;
	buf = malloc(chunk);
	for (uint64_t off = 0; buf && off < need; off += chunk) {
		uint32_t len = need - off < chunk ? (uint32_t)(need - off) : chunk;

		if (source_read(&s, off, len, buf) < 0) {
			fprintf(stderr, "nbdtorture check: read at %" PRIu64 " failed\n", off);
			goto out;
		}
		for (uint32_t k = 0; k < len / run->block_size; k++) {
			uint64_t b = off / run->block_size + k;

			report_block(o, b, tcheck_block(tc, b, buf + (size_t)k * run->block_size),
				     &reported);
		}
	}
	rc = buf ? 0 : -1;
out:
	free(buf);
	source_close(&s);
	return rc;
}

static void report_missing(const struct tcheck *tc, enum tcheck_mode mode)
{
	struct tcheck_missing ex[MAX_REPORTED];
	size_t n = tcheck_missing_examples(tc, mode, ex, MAX_REPORTED);

	for (size_t i = 0; i < n; i++) {
		char found[48] = "zeros";

		if (ex[i].found_seq)
			snprintf(found, sizeof(found), "write %" PRIu64, ex[i].found_seq);
		fprintf(stderr, "nbdtorture check: block %" PRIu64 ": acked write %" PRIu64
				" missing, it holds %s\n", ex[i].block, ex[i].lost_seq, found);
	}
}

static void print_result(const struct check_opts *o, const struct tcheck_result *r, FILE *human)
{
	if (!o->quiet)
		fprintf(human,
			"nbdtorture check: mode %s, writes checked %" PRIu64 ", blocks checked %" PRIu64
			", lost %" PRIu64 " (%" PRIu64 " blocks), stale %" PRIu64 ", torn %" PRIu64
			", garbage %" PRIu64 ", hb_violations %" PRIu64 ", acked_missing_bytes %" PRIu64
			"%s: %s\n",
			tcheck_mode_name(r->mode), r->writes_checked, r->blocks_checked, r->lost,
			r->lost_blocks, r->stale, r->torn, r->garbage, r->hb_violations,
			r->acked_missing_bytes, r->mode == TCHECK_ASYNC ? " (max-lag applies)" : "",
			r->ok ? "ok" : "VIOLATIONS");
	if (o->json)
		printf("{\"mode\": \"%s\", \"writes_checked\": %" PRIu64 ", \"blocks_checked\": %" PRIu64
		       ", \"lost\": %" PRIu64 ", \"lost_blocks\": %" PRIu64 ", \"stale\": %" PRIu64
		       ", \"torn\": %" PRIu64 ", \"garbage\": %" PRIu64 ", \"hb_violations\": %" PRIu64
		       ", \"acked_missing_bytes\": %" PRIu64 ", \"max_lag\": %" PRIu64
		       ", \"ok\": %s}\n",
		       tcheck_mode_name(r->mode), r->writes_checked, r->blocks_checked, r->lost,
		       r->lost_blocks, r->stale, r->torn, r->garbage, r->hb_violations,
		       r->acked_missing_bytes, r->max_lag, r->ok ? "true" : "false");
}

static int cmd_check(int argc, char **argv)
{
	struct check_opts o;
	struct tcheck_result r;
	struct tlog_header h;
	struct tcheck *tc;
	int rc = parse_check(argc, argv, &o);

	if (rc)
		return rc;
	tc = load_log(o.log_path, &h);
	if (!tc)
		return 2;
	if (read_area(&o, tc, &(struct tcheck_run){ .block_size = h.block_size,
							   .area_blocks = h.area_blocks }) < 0) {
		tcheck_free(tc);
		return 2;
	}
	tcheck_result(tc, (enum tcheck_mode)o.mode, o.max_lag, &r);
	if (!o.quiet)
		report_missing(tc, (enum tcheck_mode)o.mode);
	tcheck_free(tc);
	print_result(&o, &r, o.json ? stderr : stdout);
	return r.ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	opterr = 0; /* our own one-line errors */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return usage_error("a command is required: write or check%s", "");
	if (!strcmp(argv[1], "write")) {
		/* the first signal drains the requests in flight, the second stops */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		return cmd_write(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	return usage_error("unknown command '%s' (write or check)", argv[1]);
}
