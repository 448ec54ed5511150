/* Simulated files and sockets, and the system calls on them.  See simfd.h.
 * The calls defined here replace libc's for the daemon's objects: keep
 * their prototypes exactly as <unistd.h>, <sys/socket.h>... declare them. */
#include "simfd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "simrt.h"

#define MAX_FILES	64	/* two backings, then save files */
#define SECTOR		512U
#define EPOCH_S		1700000000ULL /* the wall clock at simulated time 0 */

enum fd_kind { FD_FREE, FD_FILE, FD_SOCK, FD_INERT };

struct file {
	char path[128];
	int node;
	uint64_t size, cap;
	uint8_t *media, *cache, *dirty; /* dirty: one byte per page */
};

struct sock {
	int node;
	int rnode;		/* a TCP stream's other end: the node it reaches */
	int fd;			/* -1 once its descriptor is closed */
	uint64_t id;
	bool listening, tcp;
	bool closed;		/* by its owner: no more bytes go to it */
	struct sock *peer;
	/* a stream's receive side */
	uint8_t *rx;
	size_t rx_off, rx_len, rx_cap;
	bool rx_eof, wr_shut;
	int err;
	uint64_t last_arrival;	/* keeps this direction FIFO */
	simfd_ready_fn *ready;	/* a driver socket */
	void *ready_arg;
	/* a listener */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint16_t port;
	struct sock *backlog[16];
	unsigned nbacklog;
	struct sock *all_next;
};

struct fdent {
	enum fd_kind kind;
	int node;
	uint64_t pos;		/* a file's, for read() and write() */
	struct file *f;
	struct sock *s;
};

struct packet {
	struct sock *dst;
	bool eof;
	size_t len;
	struct packet *prev, *next;
	uint8_t data[];
};

static struct {
	struct file files[MAX_FILES];
	unsigned nfiles;
	struct fdent *fds;
	size_t nfds, capfds;
	struct sock *socks;
	uint64_t sock_ids, op_ids;
	struct simop *wait_head, *wait_tail;
	struct packet *packets;
	unsigned parted;	/* bit pair_bit(a, b): a and b are partitioned */
	bool slow_zero;
	unsigned eio_pm[SIM_NODES], slow_pct[SIM_NODES];
	bool enospc[SIM_NODES];	/* failed writes say ENOSPC, not EIO */
} fs;

/* ---- descriptors ---- */

static bool is_sim(int fd)
{
	return fd >= SIMFD_BASE && (size_t)(fd - SIMFD_BASE) < fs.nfds &&
	       fs.fds[fd - SIMFD_BASE].kind != FD_FREE;
}

static struct fdent *ent(int fd)
{
	return is_sim(fd) ? &fs.fds[fd - SIMFD_BASE] : NULL;
}

/* Descriptors are never reused within a run: a stale one fails EBADF. */
static int fd_new(enum fd_kind kind, struct file *f, struct sock *s)
{
	if (fs.nfds == fs.capfds) {
		fs.capfds = fs.capfds ? fs.capfds * 2 : 256;
		fs.fds = realloc(fs.fds, fs.capfds * sizeof(*fs.fds));
		if (!fs.fds)
			abort();
	}
	fs.fds[fs.nfds] = (struct fdent){ kind, sim_current(), 0, f, s };
	return SIMFD_BASE + (int)fs.nfds++;
}

static struct sock *sock_new(int node)
{
	struct sock *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	s->node = node;
	s->fd = -1;
	s->id = ++fs.sock_ids;
	s->all_next = fs.socks;
	fs.socks = s;
	return s;
}

static void free_packets(void)
{
	while (fs.packets) {
		struct packet *p = fs.packets;

		fs.packets = p->next;
		free(p);
	}
}

void simfd_reset(void)
{
	for (unsigned i = 0; i < fs.nfiles; i++) {
		free(fs.files[i].media);
		free(fs.files[i].cache);
		free(fs.files[i].dirty);
	}
	while (fs.socks) {
		struct sock *s = fs.socks;

		fs.socks = s->all_next;
		free(s->rx);
		free(s);
	}
	free_packets();
	free(fs.fds);
	memset(&fs, 0, sizeof(fs));
}

/* ---- files ---- */

static void file_grow(struct file *f, uint64_t end)
{
	uint64_t cap = f->cap ? f->cap : SIMFD_PAGE;

	if (end <= f->cap)
		return;
	while (cap < end)
		cap *= 2;
	f->media = realloc(f->media, cap);
	f->cache = realloc(f->cache, cap);
	f->dirty = realloc(f->dirty, cap / SIMFD_PAGE);
	if (!f->media || !f->cache || !f->dirty)
		abort();
	memset(f->media + f->cap, 0, cap - f->cap);
	memset(f->cache + f->cap, 0, cap - f->cap);
	memset(f->dirty + f->cap / SIMFD_PAGE, 0, (cap - f->cap) / SIMFD_PAGE);
	f->cap = cap;
}

static struct file *file_find(const char *path)
{
	for (unsigned i = 0; i < fs.nfiles; i++)
		if (!strcmp(fs.files[i].path, path))
			return &fs.files[i];
	return NULL;
}

static struct file *file_add(const char *path, int node)
{
	struct file *f;

	if (fs.nfiles == MAX_FILES)
		return NULL;
	f = &fs.files[fs.nfiles++];
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->node = node;
	return f;
}

void simfd_file_create(const char *path, uint64_t size, int node)
{
	struct file *f = file_add(path, node);

	if (!f)
		abort();
	file_grow(f, size);
	f->size = size;
}

/* Reads what the page cache, else the media, holds. */
static void file_read(struct file *f, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;

	while (len) {
		uint64_t pg = off / SIMFD_PAGE, in = off % SIMFD_PAGE;
		size_t n = SIMFD_PAGE - in < len ? SIMFD_PAGE - in : len;
		const uint8_t *src = off >= f->cap ? NULL :
				     f->dirty[pg] ? f->cache : f->media;

		if (src)
			memcpy(out, src + off, n);
		else
			memset(out, 0, n);
		out += n;
		off += n;
		len -= n;
	}
}

/* Into the page cache: a page first dirtied takes the media's bytes. */
static void file_write(struct file *f, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *in = buf;

	file_grow(f, off + len);
	if (off + len > f->size)
		f->size = off + len;
	while (len) {
		uint64_t pg = off / SIMFD_PAGE, po = off % SIMFD_PAGE;
		size_t n = SIMFD_PAGE - po < len ? SIMFD_PAGE - po : len;

		if (!f->dirty[pg]) {
			memcpy(f->cache + pg * SIMFD_PAGE, f->media + pg * SIMFD_PAGE, SIMFD_PAGE);
			f->dirty[pg] = 1;
		}
		if (in)
			memcpy(f->cache + off, in, n);
		else
			memset(f->cache + off, 0, n);
		if (in)
			in += n;
		off += n;
		len -= n;
	}
}

static void page_flush(struct file *f, uint64_t pg)
{
	if (!f->dirty[pg])
		return;
	memcpy(f->media + pg * SIMFD_PAGE, f->cache + pg * SIMFD_PAGE, SIMFD_PAGE);
	f->dirty[pg] = 0;
}

static void file_sync(struct file *f)
{
	for (uint64_t pg = 0; pg < f->cap / SIMFD_PAGE; pg++)
		page_flush(f, pg);
}

static void file_sync_range(struct file *f, uint64_t off, uint64_t len)
{
	for (uint64_t pg = off / SIMFD_PAGE; len && pg <= (off + len - 1) / SIMFD_PAGE; pg++)
		if (pg < f->cap / SIMFD_PAGE)
			page_flush(f, pg);
}

/* Power lost: each dirty page may have reached the media, whole, torn at
 * sector granularity, or not at all. */
static void file_lose_cache(struct file *f)
{
	for (uint64_t pg = 0; pg < f->cap / SIMFD_PAGE; pg++) {
		unsigned how = (unsigned)sim_below(3);

		if (!f->dirty[pg])
			continue;
		for (unsigned s = 0; s < SIMFD_PAGE / SECTOR; s++) {
			uint64_t o = pg * SIMFD_PAGE + s * SECTOR;

			if (how == 1 || (how == 2 && sim_chance(50)))
				memcpy(f->media + o, f->cache + o, SECTOR);
		}
		f->dirty[pg] = 0;
	}
}

void simfd_file_peek(const char *path, uint64_t off, void *buf, size_t len)
{
	struct file *f = file_find(path);

	if (f)
		file_read(f, off, buf, len);
	else
		memset(buf, 0, len);
}

void simfd_file_peek_media(const char *path, uint64_t off, void *buf, size_t len)
{
	struct file *f = file_find(path);

	if (f && off + len <= f->cap)
		memcpy(buf, f->media + off, len);
	else
		memset(buf, 0, len);
}

void simfd_set_slow_zero(bool on)
{
	fs.slow_zero = on;
}

void simfd_set_faults(int node, unsigned eio_per_mille, unsigned slow_pct)
{
	fs.eio_pm[node] = eio_per_mille;
	fs.slow_pct[node] = slow_pct;
}

void simfd_set_enospc(int node, bool on)
{
	fs.enospc[node] = on;
}

void simfd_files(const char *prefix, void (*each)(void *arg, const char *path, int node),
		 void *arg)
{
	for (unsigned i = 0; i < fs.nfiles; i++)
		if (!strncmp(fs.files[i].path, prefix, strlen(prefix)))
			each(arg, fs.files[i].path, fs.files[i].node);
}

uint64_t simfd_file_size(const char *path)
{
	struct file *f = file_find(path);

	return f ? f->size : 0;
}

/* ---- waiting operations ---- */

static void wait_add(struct simop *op, void *obj)
{
	op->obj = obj;
	op->waiting = true;
	op->next = NULL;
	op->prev = fs.wait_tail;
	if (fs.wait_tail)
		fs.wait_tail->next = op;
	else
		fs.wait_head = op;
	fs.wait_tail = op;
}

static void wait_del(struct simop *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		fs.wait_head = op->next;
	if (op->next)
		op->next->prev = op->prev;
	else
		fs.wait_tail = op->prev;
	op->waiting = false;
}

static void complete_ev(void *arg, uint64_t tag)
{
	struct simop *op = arg;

	op->done(op, (int)(int64_t)tag);
}

static void complete(struct simop *op, int res, uint64_t delay_ns)
{
	sim_at(delay_ns, op->node, complete_ev, op, (uint64_t)(int64_t)res);
}

void simfd_forget_node(int node)
{
	for (struct simop *op = fs.wait_head, *nx; op; op = nx) {
		nx = op->next;
		if (op->node == node)
			wait_del(op);
	}
}

int simfd_op_cancel(int node, uint64_t target)
{
	for (struct simop *op = fs.wait_head; op; op = op->next) {
		if (op->node == node && op->user_data == target) {
			wait_del(op);
			complete(op, -ECANCELED, 1000);
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- streams ---- */

static uint64_t net_delay(const struct sock *s)
{
	if (!s->tcp)
		return 5000 + sim_below(50000);
	if (sim_chance(3))
		return 1000000 + sim_below(30000000);
	return 30000 + sim_below(1000000);
}

static size_t rx_take(struct sock *s, void *buf, size_t len)
{
	size_t n = s->rx_len < len ? s->rx_len : len;

	memcpy(buf, s->rx + s->rx_off, n);
	s->rx_off += n;
	s->rx_len -= n;
	if (!s->rx_len)
		s->rx_off = 0;
	return n;
}

/* Completes the recv operations waiting on s that can complete now, in
 * the order they were queued; a driver socket hears its callback. */
static void sock_wake(struct sock *s)
{
	if (s->ready) {
		if (s->rx_len || s->rx_eof || s->err)
			s->ready(s->ready_arg);
		return;
	}
	for (struct simop *op = fs.wait_head, *nx; op; op = nx) {
		nx = op->next;
		if (op->obj != s || op->opcode != IORING_OP_RECV)
			continue;
		if (s->rx_len) {
			wait_del(op);
			complete(op, (int)rx_take(s, (void *)(uintptr_t)op->addr, op->len), 1000);
		} else if (s->rx_eof || s->err) {
			wait_del(op);
			complete(op, s->err ? -s->err : 0, 1000);
		} else {
			break;
		}
	}
}

static void packet_ev(void *arg, uint64_t tag)
{
	struct packet *p = arg;
	struct sock *s = p->dst;

	(void)tag;
	if (p->prev)
		p->prev->next = p->next;
	else
		fs.packets = p->next;
	if (p->next)
		p->next->prev = p->prev;
	if (!s->err && !s->rx_eof) {
		if (s->rx_off + s->rx_len + p->len > s->rx_cap) {
			memmove(s->rx, s->rx + s->rx_off, s->rx_len);
			s->rx_off = 0;
			if (s->rx_len + p->len > s->rx_cap) {
				s->rx_cap = (s->rx_len + p->len) * 2;
				s->rx = realloc(s->rx, s->rx_cap);
				if (!s->rx)
					abort();
			}
		}
		memcpy(s->rx + s->rx_off + s->rx_len, p->data, p->len);
		s->rx_len += p->len;
		s->rx_eof = p->eof;
	}
	free(p);
	sock_wake(s);
}

/* Bytes (or the end of the stream) from s to its peer, after the link's
 * delay and never before what s sent earlier. */
static void sock_transmit(struct sock *s, const struct iovec *iov, int iovcnt, bool eof)
{
	size_t len = 0, o = 0;
	struct packet *p;
	uint64_t at;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	p = malloc(sizeof(*p) + len);
	if (!p)
		abort();
	for (int i = 0; i < iovcnt; i++) {
		memcpy(p->data + o, iov[i].iov_base, iov[i].iov_len);
		o += iov[i].iov_len;
	}
	p->dst = s->peer;
	p->len = len;
	p->eof = eof;
	p->prev = NULL;
	p->next = fs.packets;
	if (fs.packets)
		fs.packets->prev = p;
	fs.packets = p;
	at = sim_now_ns() + net_delay(s);
	if (at < s->last_arrival)
		at = s->last_arrival;
	s->last_arrival = at;
	sim_at(at - sim_now_ns(), SIM_DRIVER, packet_ev, p, 0);
}

static void sock_shut_wr(struct sock *s)
{
	if (s->wr_shut || !s->peer)
		return;
	s->wr_shut = true;
	sock_transmit(s, NULL, 0, true);
}

static void sock_reset(struct sock *s)
{
	if (!s->err)
		s->err = ECONNRESET;
	s->wr_shut = true;
	sock_wake(s);
}

static ssize_t sock_send(struct sock *s, const struct iovec *iov, int iovcnt)
{
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (s->err)
		return -s->err;
	if (!s->peer || s->wr_shut || s->peer->closed)
		return -EPIPE;
	sock_transmit(s, iov, iovcnt, false);
	return (ssize_t)len;
}

static void sock_close(struct sock *s)
{
	s->fd = -1;
	s->closed = true;
	if (s->listening) {
		/* Connections never accepted are reset. */
		for (unsigned i = 0; i < s->nbacklog; i++)
			if (s->backlog[i]->peer)
				sock_reset(s->backlog[i]->peer);
		s->nbacklog = 0;
		s->listening = false;
		s->port = 0;
		return;
	}
	sock_shut_wr(s);
}

/* A listener by Unix path or TCP port; NULL if none listens. */
static struct sock *listener_find(const struct sockaddr *sa)
{
	for (struct sock *s = fs.socks; s; s = s->all_next) {
		if (!s->listening || s->closed)
			continue;
		if (sa->sa_family == AF_UNIX &&
		    !strcmp(s->path, ((const struct sockaddr_un *)(const void *)sa)->sun_path))
			return s;
		if (sa->sa_family == AF_INET &&
		    s->port == ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port))
			return s;
	}
	return NULL;
}

static void accept_wake(struct sock *l);

/* Connects c to whoever listens at sa: 0 or -errno. */
static int sock_connect(struct sock *c, const struct sockaddr *sa)
{
	struct sock *l = listener_find(sa), *srv;

	if (!l || l->nbacklog == sizeof(l->backlog) / sizeof(l->backlog[0]))
		return -ECONNREFUSED;
	c->tcp = sa->sa_family == AF_INET && c->node != l->node;
	if (c->tcp && simfd_pair_partitioned(c->node, l->node))
		return -EHOSTUNREACH;
	srv = sock_new(l->node);
	srv->tcp = c->tcp;
	c->rnode = l->node;
	srv->rnode = c->node;
	srv->peer = c;
	c->peer = srv;
	l->backlog[l->nbacklog++] = srv;
	accept_wake(l);
	return 0;
}

static void accept_fill(struct simop *op, struct sock *srv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(40000) };
	socklen_t *lenp = (socklen_t *)(uintptr_t)op->addr2;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (op->addr && lenp) {
		memcpy((void *)(uintptr_t)op->addr, &sin,
		       *lenp < sizeof(sin) ? *lenp : sizeof(sin));
		*lenp = sizeof(sin);
	}
	(void)srv;
}

static void accept_wake(struct sock *l)
{
	for (struct simop *op = fs.wait_head, *nx; op && l->nbacklog; op = nx) {
		struct sock *srv;
		int prev;

		nx = op->next;
		if (op->obj != l || op->opcode != IORING_OP_ACCEPT)
			continue;
		wait_del(op);
		srv = l->backlog[0];
		memmove(l->backlog, l->backlog + 1, --l->nbacklog * sizeof(l->backlog[0]));
		prev = sim_current();
		sim_set_current(op->node);
		srv->fd = fd_new(FD_SOCK, NULL, srv);
		sim_set_current(prev);
		accept_fill(op, srv);
		complete(op, srv->fd, 2000);
	}
}

static unsigned pair_bit(int a, int b)
{
	return 1U << (a < b ? a * SIM_NODES + b : b * SIM_NODES + a);
}

void simfd_cut_pair(int a, int b)
{
	for (struct sock *s = fs.socks; s; s = s->all_next)
		if (s->tcp && ((s->node == a && s->rnode == b) || (s->node == b && s->rnode == a)))
			sock_reset(s);
}

void simfd_partition_pair(int a, int b, bool on)
{
	if (on) {
		fs.parted |= pair_bit(a, b);
		simfd_cut_pair(a, b);
	} else {
		fs.parted &= ~pair_bit(a, b);
	}
}

bool simfd_pair_partitioned(int a, int b)
{
	return (fs.parted & pair_bit(a, b)) != 0;
}

void simfd_cut_link(void)
{
	for (struct sock *s = fs.socks; s; s = s->all_next)
		if (s->tcp)
			sock_reset(s);
}

void simfd_partition(bool on)
{
	fs.parted = on ? ~0U : 0;
	if (on)
		simfd_cut_link();
}

bool simfd_partitioned(void)
{
	return fs.parted != 0;
}

void simfd_crash(int node, bool power_loss)
{
	simfd_forget_node(node);
	for (size_t i = 0; i < fs.nfds; i++) {
		struct fdent *e = &fs.fds[i];

		if (e->kind == FD_FREE || e->node != node)
			continue;
		if (e->kind == FD_SOCK)
			sock_close(e->s);
		e->kind = FD_FREE;
	}
	for (unsigned i = 0; i < fs.nfiles; i++) {
		if (fs.files[i].node != node)
			continue;
		if (power_loss)
			file_lose_cache(&fs.files[i]);
		else
			file_sync(&fs.files[i]); /* the kernel still writes it back */
	}
}

/* ---- the driver's sockets ---- */

int simfd_dial(const char *unix_path, simfd_ready_fn *ready, void *arg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sock *c = sock_new(SIM_DRIVER);
	int prev = sim_current();

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", unix_path);
	c->ready = ready;
	c->ready_arg = arg;
	if (sock_connect(c, (struct sockaddr *)&sun) < 0)
		return -1;
	sim_set_current(SIM_DRIVER);
	c->fd = fd_new(FD_SOCK, NULL, c);
	sim_set_current(prev);
	return c->fd;
}

int simfd_send(int fd, const void *buf, size_t len)
{
	struct fdent *e = ent(fd);
	struct iovec iov = { (void *)(uintptr_t)buf, len };

	return e && e->kind == FD_SOCK && sock_send(e->s, &iov, 1) >= 0 ? 0 : -1;
}

size_t simfd_take(int fd, void *buf, size_t len, bool *eof)
{
	struct fdent *e = ent(fd);

	*eof = !e || ((e->s->rx_eof || e->s->err) && !e->s->rx_len);
	return e ? rx_take(e->s, buf, len) : 0;
}

size_t simfd_avail(int fd)
{
	struct fdent *e = ent(fd);

	return e ? e->s->rx_len : 0;
}

void simfd_close(int fd)
{
	struct fdent *e = ent(fd);

	if (!e)
		return;
	sock_close(e->s);
	e->kind = FD_FREE;
}

/* ---- io_uring operations ---- */

static uint64_t disk_delay(int node)
{
	if (node >= 0 && fs.slow_pct[node] && sim_chance(fs.slow_pct[node]))
		return 1000000 + sim_below(50000000);
	return 10000 + sim_below(300000);
}

static bool disk_fails(int node)
{
	return node >= 0 && fs.eio_pm[node] && sim_below(1000) < fs.eio_pm[node];
}

/* A write's or a zeroing's failure: EIO, or ENOSPC on a node whose
 * seed says so (a thin volume or a full file system under the backing
 * store).  Nothing of a failed write reaches the file. */
static int write_fails(int node)
{
	if (!disk_fails(node))
		return 0;
	return fs.enospc[node] ? -ENOSPC : -EIO;
}

/* A disk operation runs when it completes: reads see what is there then. */
static void disk_ev(void *arg, uint64_t tag)
{
	struct simop *op = arg;
	struct fdent *e = ent(op->fd);
	struct file *f = op->obj;
	int res = (int)op->len;

	(void)tag;
	(void)e;
	switch (op->opcode) {
	case IORING_OP_READ:
		if (disk_fails(op->node)) {
			res = -EIO;
			break;
		}
		if (op->off >= f->size)
			res = 0;
		else if (op->off + op->len > f->size)
			res = (int)(f->size - op->off);
		file_read(f, op->off, (void *)(uintptr_t)op->addr, (size_t)res);
		break;
	case IORING_OP_WRITE:
		if ((res = write_fails(op->node)) < 0)
			break;
		res = (int)op->len;
		file_write(f, op->off, (void *)(uintptr_t)op->addr, op->len);
		if (op->op_flags & RWF_DSYNC)
			file_sync_range(f, op->off, op->len);
		break;
	case IORING_OP_FSYNC:
		/* A failed writeback: the pages stay dirty (a later sync may
		 * still write them, a crash loses them). */
		if (disk_fails(op->node)) {
			res = -EIO;
			break;
		}
		file_sync(f);
		res = 0;
		break;
	case IORING_OP_FALLOCATE:
		/* addr is the length, len the mode */
		if ((res = write_fails(op->node)) < 0)
			break;
		if (op->off + op->addr > f->size)
			res = -EINVAL;
		else
			file_write(f, op->off, NULL, op->addr);
		res = res < 0 ? res : 0;
		break;
	default:
		res = 0;
	}
	op->done(op, res);
}

static void timeout_ev(void *arg, uint64_t id)
{
	(void)arg;
	for (struct simop *op = fs.wait_head; op; op = op->next) {
		if (op->id == id) {
			wait_del(op);
			op->done(op, -ETIME);
			return;
		}
	}
}

static void start_disk(struct simop *op, struct fdent *e)
{
	uint64_t delay = disk_delay(op->node);

	if (op->opcode == IORING_OP_FALLOCATE && fs.slow_zero)
		delay = 20000000 + sim_below(280000000);
	op->obj = e->f;
	sim_at(delay, op->node, disk_ev, op, 0);
}

static void start_sendmsg(struct simop *op, struct sock *s)
{
	const struct msghdr *m = (const struct msghdr *)(uintptr_t)op->addr;
	struct iovec one = { (void *)(uintptr_t)op->addr, op->len };
	ssize_t n = op->opcode == IORING_OP_SEND ? sock_send(s, &one, 1) :
						      sock_send(s, m->msg_iov, (int)m->msg_iovlen);

	complete(op, (int)n, 3000);
}

static void start_sock(struct simop *op, struct sock *s)
{
	int rc;

	switch (op->opcode) {
	case IORING_OP_RECV:
		wait_add(op, s);
		sock_wake(s);
		break;
	case IORING_OP_SEND:
	case IORING_OP_SENDMSG:
		start_sendmsg(op, s);
		break;
	case IORING_OP_ACCEPT:
		wait_add(op, s);
		accept_wake(s);
		break;
	case IORING_OP_CONNECT:
		rc = sock_connect(s, (const struct sockaddr *)(uintptr_t)op->addr);
		complete(op, rc, rc == -EHOSTUNREACH ? 1000000000 : net_delay(s));
		break;
	default:
		wait_add(op, s); /* POLL_ADD and the like: never ready */
	}
}

void simfd_op_start(struct simop *op)
{
	struct fdent *e;

	op->id = ++fs.op_ids;
	if (op->opcode == IORING_OP_NOP)
		return complete(op, 0, 1000);
	if (op->opcode == IORING_OP_TIMEOUT) {
		const struct __kernel_timespec *ts = (const void *)(uintptr_t)op->addr;

		wait_add(op, NULL);
		sim_at((uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec, op->node,
		       timeout_ev, NULL, op->id);
		return;
	}
	e = ent(op->fd);
	if (!e)
		return complete(op, -EBADF, 1000);
	if (e->kind == FD_FILE && op->opcode == IORING_OP_FADVISE)
		return complete(op, 0, 1000);
	if (e->kind == FD_FILE)
		return start_disk(op, e);
	if (e->kind == FD_SOCK)
		return start_sock(op, e->s);
	wait_add(op, NULL); /* a signalfd or eventfd: nothing ever arrives */
}

/* ---- the system calls ---- *
 * Each returns -1 with errno, as libc does.  Below SIMFD_BASE, and for
 * paths outside SIMFD_PREFIX that no simulated socket holds, the kernel's
 * own call runs. */

static long fail(int err)
{
	errno = err;
	return -1;
}

static long ret(long rc)
{
	return rc < 0 ? fail((int)-rc) : rc;
}

static bool sim_path(const char *path)
{
	return !strncmp(path, SIMFD_PREFIX, strlen(SIMFD_PREFIX));
}

static struct sock *sock_by_path(const char *path)
{
	for (struct sock *s = fs.socks; s; s = s->all_next)
		if (s->path[0] && !strcmp(s->path, path))
			return s;
	return NULL;
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	struct file *f;
	va_list ap;

	va_start(ap, flags);
	if (flags & (O_CREAT | O_TMPFILE))
		mode = va_arg(ap, mode_t);
	va_end(ap);
	if (!sim_path(path))
		return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	f = file_find(path);
	if (f && (flags & O_CREAT) && (flags & O_EXCL))
		return (int)fail(EEXIST);
	if (!f && !(flags & O_CREAT))
		return (int)fail(ENOENT);
	if (!f && !(f = file_add(path, sim_current())))
		return (int)fail(ENOSPC);
	return fd_new(FD_FILE, f, NULL);
}

int close(int fd)
{
	struct fdent *e = ent(fd);

	if (fd >= SIMFD_BASE && !e)
		return (int)fail(EBADF);
	if (!e)
		return (int)syscall(SYS_close, fd);
	if (e->kind == FD_SOCK)
		sock_close(e->s);
	e->kind = FD_FREE;
	return 0;
}

static struct file *file_of(int fd)
{
	struct fdent *e = ent(fd);

	return e && e->kind == FD_FILE ? e->f : NULL;
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	struct file *f = file_of(fd);

	if (!f)
		return fd < SIMFD_BASE ? syscall(SYS_pread64, fd, buf, len, off) : fail(EBADF);
	if (disk_fails(ent(fd)->node))
		return fail(EIO);
	if ((uint64_t)off >= f->size)
		return 0;
	if ((uint64_t)off + len > f->size)
		len = f->size - (uint64_t)off;
	file_read(f, (uint64_t)off, buf, len);
	return (ssize_t)len;
}

static ssize_t file_pwrite(int fd, const void *buf, size_t len, off_t off, bool dsync)
{
	struct file *f = file_of(fd);

	int err;

	if (!f)
		return fail(EBADF);
	if ((err = write_fails(ent(fd)->node)) < 0)
		return fail(-err);
	file_write(f, (uint64_t)off, buf, len);
	if (dsync)
		file_sync_range(f, (uint64_t)off, len);
	return (ssize_t)len;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (fd < SIMFD_BASE)
		return syscall(SYS_pwrite64, fd, buf, len, off);
	return file_pwrite(fd, buf, len, off, false);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
	ssize_t total = 0;

	if (fd < SIMFD_BASE)
		return fail(ENOSYS);
	for (int i = 0; i < iovcnt; i++) {
		ssize_t n = file_pwrite(fd, iov[i].iov_base, iov[i].iov_len, off + total,
					(flags & RWF_DSYNC) != 0);

		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

int fdatasync(int fd)
{
	struct file *f = file_of(fd);

	if (!f)
		return fd < SIMFD_BASE ? (int)syscall(SYS_fdatasync, fd) : (int)fail(EBADF);
	if (disk_fails(ent(fd)->node))
		return (int)fail(EIO);
	file_sync(f);
	return 0;
}

int fsync(int fd)
{
	return fdatasync(fd);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	struct file *f = file_of(fd);

	(void)mode;
	if (!f)
		return (int)fail(fd < SIMFD_BASE ? EOPNOTSUPP : EBADF);
	if ((uint64_t)(off + len) > f->size)
		return (int)fail(EINVAL);
	file_write(f, (uint64_t)off, NULL, (size_t)len);
	return 0;
}

int ftruncate(int fd, off_t len)
{
	struct file *f = file_of(fd);

	if (!f)
		return (int)fail(EBADF);
	file_grow(f, (uint64_t)len);
	f->size = (uint64_t)len;
	return 0;
}

off_t lseek(int fd, off_t off, int whence)
{
	struct file *f = file_of(fd);

	if (!f)
		return fd < SIMFD_BASE ? syscall(SYS_lseek, fd, off, whence) : fail(EBADF);
	/* No holes: everything is data. */
	if (whence == SEEK_DATA)
		return (uint64_t)off < f->size ? off : fail(ENXIO);
	if (whence == SEEK_HOLE)
		return (off_t)f->size;
	if (whence == SEEK_CUR)
		off += (off_t)ent(fd)->pos;
	else if (whence == SEEK_END)
		off += (off_t)f->size;
	ent(fd)->pos = (uint64_t)off;
	return off;
}

static void stat_of(struct stat *st, mode_t mode, uint64_t size, uint64_t ino)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = mode;
	st->st_size = (off_t)size;
	st->st_dev = 0x51;
	st->st_ino = ino;
	st->st_blksize = SIMFD_PAGE;
}

int fstat(int fd, struct stat *st)
{
	struct fdent *e = ent(fd);

	if (!e)
		return fd < SIMFD_BASE ? (int)syscall(SYS_fstat, fd, st) : (int)fail(EBADF);
	if (e->kind == FD_FILE)
		stat_of(st, S_IFREG | 0600, e->f->size, (uint64_t)(e->f - fs.files) + 1);
	else
		stat_of(st, S_IFSOCK | 0600, 0, 1000);
	return 0;
}

static int path_stat(const char *path, struct stat *st, int flags)
{
	struct sock *s = sock_by_path(path);
	struct file *f;

	if (s) {
		stat_of(st, S_IFSOCK | 0600, 0, 100000 + s->id);
		return 0;
	}
	if (!sim_path(path))
		return (int)syscall(SYS_newfstatat, AT_FDCWD, path, st, flags);
	f = file_find(path);
	if (!f)
		return (int)fail(ENOENT);
	stat_of(st, S_IFREG | 0600, f->size, (uint64_t)(f - fs.files) + 1);
	return 0;
}

int stat(const char *path, struct stat *st)
{
	return path_stat(path, st, 0);
}

int lstat(const char *path, struct stat *st)
{
	return path_stat(path, st, AT_SYMLINK_NOFOLLOW);
}

int unlink(const char *path)
{
	struct sock *s = sock_by_path(path);

	if (s) {
		s->path[0] = '\0';
		return 0;
	}
	if (sim_path(path))
		return (int)fail(EPERM); /* files are never removed in a run */
	return (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
}

/* Within /sim/ the target takes the source's bytes, media and page cache
 * alike (as durable as what was written and synced: the witness's state
 * file is written, fsynced, renamed); the source stays, emptied (files are
 * never removed in a run). */
int rename(const char *from, const char *to)
{
	struct file *s, *d;

	if (!sim_path(from) && !sim_path(to))
		return (int)syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to);
	if (!sim_path(from) || !sim_path(to))
		return (int)fail(EXDEV);
	if (!(s = file_find(from)))
		return (int)fail(ENOENT);
	if (!(d = file_find(to)) && !(d = file_add(to, s->node)))
		return (int)fail(ENOSPC);
	file_grow(d, s->cap);
	memcpy(d->media, s->media, s->cap);
	memcpy(d->cache, s->cache, s->cap);
	memcpy(d->dirty, s->dirty, s->cap / SIMFD_PAGE);
	memset(d->media + s->cap, 0, d->cap - s->cap);
	memset(d->cache + s->cap, 0, d->cap - s->cap);
	memset(d->dirty + s->cap / SIMFD_PAGE, 0, (d->cap - s->cap) / SIMFD_PAGE);
	d->size = s->size;
	s->size = 0;
	return 0;
}

int mkdir(const char *path, mode_t mode)
{
	if (sim_path(path))
		return (int)fail(EEXIST);
	return (int)syscall(SYS_mkdirat, AT_FDCWD, path, mode);
}

int chmod(const char *path, mode_t mode)
{
	if (sock_by_path(path) || sim_path(path))
		return 0;
	return (int)syscall(SYS_fchmodat, AT_FDCWD, path, mode);
}

int socket(int domain, int type, int protocol)
{
	struct sock *s;

	(void)protocol;
	if ((domain != AF_UNIX && domain != AF_INET) || (type & 0xf) != SOCK_STREAM)
		return (int)fail(EAFNOSUPPORT);
	s = sock_new(sim_current());
	s->fd = fd_new(FD_SOCK, NULL, s);
	return s->fd;
}

static struct sock *sock_of(int fd)
{
	struct fdent *e = ent(fd);

	return e && e->kind == FD_SOCK ? e->s : NULL;
}

/* nbd/listen.c narrows a Unix socket's mode before it binds it. */
int fchmod(int fd, mode_t mode)
{
	if (sock_of(fd))
		return 0;
	return fd < SIMFD_BASE ? (int)syscall(SYS_fchmod, fd, mode) : (int)fail(EBADF);
}

int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	const struct sockaddr *sa = addr.__sockaddr__;
	struct sock *s = sock_of(fd);

	(void)len;
	if (!s)
		return (int)fail(EBADF);
	if (sa->sa_family == AF_UNIX) {
		const char *p = ((const struct sockaddr_un *)(const void *)sa)->sun_path;

		if (sock_by_path(p))
			return (int)fail(EADDRINUSE);
		snprintf(s->path, sizeof(s->path), "%s", p);
		return 0;
	}
	if (listener_find(sa))
		return (int)fail(EADDRINUSE);
	s->port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	return 0;
}

int listen(int fd, int backlog)
{
	struct sock *s = sock_of(fd);

	(void)backlog;
	if (!s)
		return (int)fail(EBADF);
	s->listening = true;
	return 0;
}

int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	struct sock *s = sock_of(fd);

	(void)len;
	if (!s)
		return (int)fail(EBADF);
	return (int)ret(sock_connect(s, addr.__sockaddr__));
}

/* Options are accepted and ignored, except the kernel's TLS: simulated
 * sockets have none (as this host's kernel), so the link's TLS runs in
 * userspace, its own records under the simulated network's faults.  With
 * SIM_KTLS=1 they take it, and the records are the (simulated) kernel's:
 * plaintext on the simulated wire. */
int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	(void)val;
	(void)len;
	if (!sock_of(fd))
		return (int)fail(EBADF);
	if (level == IPPROTO_TCP && name == TCP_ULP && !getenv("SIM_KTLS"))
		return (int)fail(ENOENT);
	return 0;
}

int shutdown(int fd, int how)
{
	struct sock *s = sock_of(fd);

	if (!s)
		return (int)fail(EBADF);
	if (how != SHUT_RD)
		sock_shut_wr(s);
	if (how != SHUT_WR) {
		s->rx_eof = true;
		sock_wake(s);
	}
	return 0;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct sock *s = sock_of(fd);
	struct iovec iov = { (void *)(uintptr_t)buf, len };

	(void)flags;
	return s ? ret(sock_send(s, &iov, 1)) : fail(EBADF);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct sock *s = sock_of(fd);

	(void)flags;
	if (!s)
		return fail(EBADF);
	if (s->rx_len)
		return (ssize_t)rx_take(s, buf, len);
	if (s->err)
		return fail(s->err);
	return s->rx_eof ? 0 : fail(EAGAIN);
}

/* read() and write() on a file move its position (save files are
 * written and read this way). */
ssize_t read(int fd, void *buf, size_t len)
{
	ssize_t n;

	if (fd < SIMFD_BASE)
		return syscall(SYS_read, fd, buf, len);
	if (!file_of(fd))
		return sock_of(fd) ? recv(fd, buf, len, 0) : fail(EAGAIN);
	n = pread(fd, buf, len, (off_t)ent(fd)->pos);
	if (n > 0)
		ent(fd)->pos += (uint64_t)n;
	return n;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	ssize_t n;

	if (fd < SIMFD_BASE)
		return syscall(SYS_write, fd, buf, len);
	if (!file_of(fd))
		return sock_of(fd) ? send(fd, buf, len, 0) : (ssize_t)len;
	n = file_pwrite(fd, buf, len, (off_t)ent(fd)->pos, false);
	if (n > 0)
		ent(fd)->pos += (uint64_t)n;
	return n;
}

int signalfd(int fd, const sigset_t *mask, int flags)
{
	(void)fd;
	(void)mask;
	(void)flags;
	return fd_new(FD_INERT, NULL, NULL);
}

int eventfd(unsigned int count, int flags)
{
	(void)count;
	(void)flags;
	return fd_new(FD_INERT, NULL, NULL);
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	uint8_t *p = buf;

	(void)flags;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)sim_rand();
	return (ssize_t)len;
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	uint64_t ns = sim_now_ns();

	if (clk == CLOCK_REALTIME)
		ns += EPOCH_S * 1000000000ULL;
	ts->tv_sec = (time_t)(ns / 1000000000ULL);
	ts->tv_nsec = (long)(ns % 1000000000ULL);
	return 0;
}

time_t time(time_t *t)
{
	time_t now = (time_t)(EPOCH_S + sim_now_ns() / 1000000000ULL);

	if (t)
		*t = now;
	return now;
}
