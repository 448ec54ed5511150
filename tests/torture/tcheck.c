/* The torture tool's checker.  See tcheck.h. */
#include "tcheck.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tblock.h"

enum req_state { REQ_PENDING, REQ_ACKED, REQ_FAILED };

struct twrite {
	uint64_t seq;
	uint64_t first;
	uint64_t ack_clock;
	uint32_t nblocks;
	uint32_t conn;
	uint8_t fua;
	uint8_t state;
};

struct tflush {
	uint64_t id;
	uint8_t state;
};

/* What was found in a block: a position in its history, or one of these. */
#define POS_ZERO   (-1)
#define POS_BAD	   (-2)
#define POS_UNREAD (-3)

struct tcheck {
	struct tcheck_run run;
	uint64_t last_clock;
	struct twrite *writes;
	size_t nwrites, cap_writes;
	struct tflush *flushes;
	size_t nflushes, cap_flushes;
	/* per-block history, CSR: writes hist[hoff[b]..hoff[b+1]) in issue order */
	uint64_t *hoff;
	uint32_t *hist;
	int32_t *pos;
	uint64_t stale, torn, garbage;
};

static bool power_of_two(uint32_t v)
{
	return v && !(v & (v - 1));
}

struct tcheck *tcheck_new(const struct tcheck_run *run)
{
	struct tcheck *tc;

	if (!power_of_two(run->block_size) || run->block_size < TBLOCK_MIN_SIZE ||
	    run->block_size > TBLOCK_MAX_SIZE || run->area_blocks == 0 ||
	    run->area_blocks > INT32_MAX)
		return NULL;
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return NULL;
	tc->run = *run;
	tc->pos = malloc(run->area_blocks * sizeof(*tc->pos));
	if (!tc->pos) {
		free(tc);
		return NULL;
	}
	for (uint64_t b = 0; b < run->area_blocks; b++)
		tc->pos[b] = POS_UNREAD;
	return tc;
}

void tcheck_free(struct tcheck *tc)
{
	if (!tc)
		return;
	free(tc->writes);
	free(tc->flushes);
	free(tc->hoff);
	free(tc->hist);
	free(tc->pos);
	free(tc);
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 1024;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* Every event takes the next value of the writer's one clock. */
static int advance_clock(struct tcheck *tc, uint64_t clock)
{
	if (clock <= tc->last_clock || tc->hoff)
		return -EINVAL;
	tc->last_clock = clock;
	return 0;
}

int tcheck_log_write(struct tcheck *tc, uint64_t seq, uint32_t conn, uint64_t first_block,
		     uint32_t nblocks, bool fua)
{
	struct twrite *w;

	if (nblocks == 0 || first_block >= tc->run.area_blocks ||
	    nblocks > tc->run.area_blocks - first_block)
		return -EINVAL;
	if (advance_clock(tc, seq) < 0)
		return -EINVAL;
	if (grow((void **)&tc->writes, &tc->cap_writes, tc->nwrites, sizeof(*w)) < 0)
		return -ENOMEM;
	w = &tc->writes[tc->nwrites++];
	*w = (struct twrite){ .seq = seq, .first = first_block, .nblocks = nblocks,
			      .conn = conn, .fua = fua, .state = REQ_PENDING };
	return 0;
}

int tcheck_log_flush(struct tcheck *tc, uint64_t id)
{
	if (advance_clock(tc, id) < 0)
		return -EINVAL;
	if (grow((void **)&tc->flushes, &tc->cap_flushes, tc->nflushes, sizeof(struct tflush)) < 0)
		return -ENOMEM;
	tc->flushes[tc->nflushes++] = (struct tflush){ .id = id, .state = REQ_PENDING };
	return 0;
}

/* Index of the write issued at clock seq, or -1.  Writes are logged in
 * increasing seq, so the array is sorted. */
static ptrdiff_t find_write(const struct tcheck *tc, uint64_t seq)
{
	size_t lo = 0, hi = tc->nwrites;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tc->writes[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < tc->nwrites && tc->writes[lo].seq == seq ? (ptrdiff_t)lo : -1;
}

static ptrdiff_t find_flush(const struct tcheck *tc, uint64_t id)
{
	size_t lo = 0, hi = tc->nflushes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tc->flushes[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < tc->nflushes && tc->flushes[lo].id == id ? (ptrdiff_t)lo : -1;
}

int tcheck_log_reply(struct tcheck *tc, uint64_t clock, uint64_t id, uint32_t error)
{
	ptrdiff_t i;
	uint8_t state = error ? REQ_FAILED : REQ_ACKED;

	if (advance_clock(tc, clock) < 0)
		return -EINVAL;
	i = find_write(tc, id);
	if (i >= 0) {
		if (tc->writes[i].state != REQ_PENDING)
			return -EINVAL;
		tc->writes[i].state = state;
		tc->writes[i].ack_clock = clock;
		return 0;
	}
	i = find_flush(tc, id);
	if (i < 0 || tc->flushes[i].state != REQ_PENDING)
		return -EINVAL;
	tc->flushes[i].state = state;
	return 0;
}

int tcheck_log_end(struct tcheck *tc)
{
	uint64_t nb = tc->run.area_blocks, total = 0;
	uint64_t *fill;

	tc->hoff = calloc(nb + 1, sizeof(*tc->hoff));
	if (!tc->hoff)
		return -ENOMEM;
	for (size_t i = 0; i < tc->nwrites; i++)
		for (uint32_t k = 0; k < tc->writes[i].nblocks; k++)
			tc->hoff[tc->writes[i].first + k + 1]++;
	for (uint64_t b = 0; b < nb; b++)
		tc->hoff[b + 1] += tc->hoff[b];
	total = tc->hoff[nb];
	tc->hist = malloc((total ? total : 1) * sizeof(*tc->hist));
	fill = malloc(nb * sizeof(*fill));
	if (!tc->hist || !fill) {
		free(fill);
		return -ENOMEM;
	}
	memcpy(fill, tc->hoff, nb * sizeof(*fill));
	for (size_t i = 0; i < tc->nwrites; i++)
		for (uint32_t k = 0; k < tc->writes[i].nblocks; k++)
			tc->hist[fill[tc->writes[i].first + k]++] = (uint32_t)i;
	free(fill);
	return 0;
}

/* Position of the write issued at seq in block b's history, or -1. */
static int32_t history_pos(const struct tcheck *tc, uint64_t b, uint64_t seq)
{
	uint64_t lo = tc->hoff[b], hi = tc->hoff[b + 1], start = lo;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (tc->writes[tc->hist[mid]].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < tc->hoff[b + 1] && tc->writes[tc->hist[lo]].seq == seq)
		return (int32_t)(lo - start);
	return -1;
}

/* A valid block belongs here if this run's writer issued exactly this
 * write (seq, connection) to exactly this block. */
static int32_t own_write_pos(const struct tcheck *tc, uint64_t b, const struct tblock_hdr *h)
{
	int32_t p;

	if (h->seed != tc->run.seed || h->writer != tc->run.writer || h->block != b)
		return -1;
	p = history_pos(tc, b, h->seq);
	if (p < 0 || tc->writes[tc->hist[tc->hoff[b] + (uint64_t)p]].conn != h->conn)
		return -1;
	return p;
}

enum tcheck_found tcheck_block(struct tcheck *tc, uint64_t blockno, const void *data)
{
	struct tblock_hdr h;
	int32_t p;

	if (!tc->hoff || blockno >= tc->run.area_blocks)
		return TCHECK_FOUND_GARBAGE;
	switch (tblock_decode(data, tc->run.block_size, &h)) {
	case TBLOCK_ZERO:
		tc->pos[blockno] = POS_ZERO;
		return TCHECK_FOUND_ZERO;
	case TBLOCK_TORN:
		tc->pos[blockno] = POS_BAD;
		tc->torn++;
		return TCHECK_FOUND_TORN;
	case TBLOCK_GARBAGE:
		tc->pos[blockno] = POS_BAD;
		tc->garbage++;
		return TCHECK_FOUND_GARBAGE;
	case TBLOCK_VALID:
		break;
	}
	p = own_write_pos(tc, blockno, &h);
	if (p < 0) {
		tc->pos[blockno] = POS_BAD;
		tc->stale++;
		return TCHECK_FOUND_STALE;
	}
	tc->pos[blockno] = p;
	return TCHECK_FOUND_WRITE;
}

/* The largest issue clock of any write found present (0: none). */
static uint64_t newest_present(const struct tcheck *tc)
{
	uint64_t t = 0;

	for (uint64_t b = 0; b < tc->run.area_blocks; b++) {
		if (tc->pos[b] < 0)
			continue;
		uint64_t s = tc->writes[tc->hist[tc->hoff[b] + (uint64_t)tc->pos[b]]].seq;

		if (s > t)
			t = s;
	}
	return t;
}

/* The issue clock of the last acknowledged FLUSH (0: none): it covers
 * every write acknowledged before it was issued. */
static uint64_t last_acked_flush(const struct tcheck *tc)
{
	for (size_t i = tc->nflushes; i-- > 0;)
		if (tc->flushes[i].state == REQ_ACKED)
			return tc->flushes[i].id;
	return 0;
}

/* missing[w]: how many of write w's blocks hold neither it nor a later
 * write (judged blocks only). */
static uint32_t *count_missing(const struct tcheck *tc, uint64_t *blocks_checked)
{
	uint32_t *missing = calloc(tc->nwrites ? tc->nwrites : 1, sizeof(*missing));

	*blocks_checked = 0;
	if (!missing)
		return NULL;
	for (uint64_t b = 0; b < tc->run.area_blocks; b++) {
		int32_t p = tc->pos[b];

		if (p != POS_UNREAD)
			(*blocks_checked)++;
		if (p == POS_UNREAD || p == POS_BAD)
			continue;
		for (uint64_t k = tc->hoff[b] + (uint64_t)(p + 1); k < tc->hoff[b + 1]; k++)
			missing[tc->hist[k]]++;
	}
	return missing;
}

static bool promised(const struct twrite *w, enum tcheck_mode mode, uint64_t flush_clock)
{
	if (w->state != REQ_ACKED)
		return false;
	if (mode == TCHECK_DURABLE)
		return w->fua || w->ack_clock < flush_clock;
	return true;
}

void tcheck_result(const struct tcheck *tc, enum tcheck_mode mode, uint64_t max_lag,
		   struct tcheck_result *r)
{
	uint64_t flush_clock = last_acked_flush(tc);
	uint32_t *missing;

	memset(r, 0, sizeof(*r));
	r->mode = mode;
	r->max_lag = max_lag;
	r->stale = tc->stale;
	r->torn = tc->torn;
	r->garbage = tc->garbage;
	r->newest_present_seq = tc->hoff ? newest_present(tc) : 0;
	missing = tc->hoff ? count_missing(tc, &r->blocks_checked) : NULL;
	if (!missing) {
		r->ok = false;
		return;
	}
	for (size_t i = 0; i < tc->nwrites; i++) {
		const struct twrite *w = &tc->writes[i];

		if (w->state == REQ_ACKED)
			r->acked_missing_bytes += (uint64_t)missing[i] * tc->run.block_size;
		if (mode == TCHECK_ASYNC && w->state == REQ_ACKED &&
		    w->ack_clock < r->newest_present_seq && missing[i])
			r->hb_violations++;
		if (!promised(w, mode, flush_clock))
			continue;
		r->writes_checked++;
		if (missing[i]) {
			r->lost++;
			r->lost_blocks += missing[i];
		}
	}
	free(missing);
	r->ok = r->stale == 0 && r->torn == 0 && r->garbage == 0;
	if (mode == TCHECK_ASYNC)
		r->ok = r->ok && r->hb_violations == 0 && r->acked_missing_bytes <= max_lag;
	else
		r->ok = r->ok && r->lost == 0;
}

size_t tcheck_missing_examples(const struct tcheck *tc, enum tcheck_mode mode,
			       struct tcheck_missing *out, size_t max)
{
	uint64_t flush_clock = last_acked_flush(tc);
	size_t n = 0;

	for (uint64_t b = 0; tc->hoff && b < tc->run.area_blocks && n < max; b++) {
		int32_t p = tc->pos[b];
		uint64_t found;

		if (p == POS_UNREAD || p == POS_BAD)
			continue;
		found = p >= 0 ? tc->writes[tc->hist[tc->hoff[b] + (uint64_t)p]].seq : 0;
		for (uint64_t k = tc->hoff[b] + (uint64_t)(p + 1); k < tc->hoff[b + 1] && n < max;
		     k++) {
			const struct twrite *w = &tc->writes[tc->hist[k]];

			if (promised(w, mode, flush_clock))
				out[n++] = (struct tcheck_missing){ .block = b, .lost_seq = w->seq,
								    .found_seq = found };
		}
	}
	return n;
}

uint64_t tcheck_writes_logged(const struct tcheck *tc)
{
	return tc->nwrites;
}

uint64_t tcheck_writes_acked(const struct tcheck *tc)
{
	uint64_t n = 0;

	for (size_t i = 0; i < tc->nwrites; i++)
		n += tc->writes[i].state == REQ_ACKED;
	return n;
}

const char *tcheck_mode_name(enum tcheck_mode mode)
{
	switch (mode) {
	case TCHECK_SYNC:
		return "sync";
	case TCHECK_DURABLE:
		return "durable";
	case TCHECK_ASYNC:
		return "async";
	}
	return "unknown";
}
