/* Simulated files and sockets, and the system calls the daemon makes on
 * them.  simfd.c defines open, pread, send, bind... with libc's names: in
 * the simulator's executable those take precedence over libc's for the
 * daemon's objects.  Descriptors from SIMFD_BASE up are simulated; the
 * calls pass anything below (stdout, the config file) to the kernel.
 *
 * Files live under SIMFD_PREFIX, each with its durable media and a page
 * cache of 4 KiB pages; fdatasync makes the cache durable, a crash of the
 * owning node drops it (keeping a random subset, torn at 512 bytes).
 * Sockets are TCP-like streams with per-connection FIFO delivery after a
 * random delay; Unix socket paths and TCP ports name listeners.
 *
 * The io_uring side (simloop.c) queues operations here with simfd_op_*; the
 * driver (the NBD client, the operator) uses simfd_dial/simfd_send/
 * simfd_take on sockets of its own. */
#ifndef BLKREP_SIMFD_H
#define BLKREP_SIMFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIMFD_BASE	1000
#define SIMFD_PREFIX	"/sim/"
#define SIMFD_PAGE	4096U

/* Forgets every descriptor, socket and file (start of a seed). */
void simfd_reset(void);

/* A file of size bytes, all zero and durable, belonging to node. */
void simfd_file_create(const char *path, uint64_t size, int node);
/* What a read of [off, off+len) would return now (cache over media). */
void simfd_file_peek(const char *path, uint64_t off, void *buf, size_t len);
/* What a power loss now could leave at least: the media alone. */
void simfd_file_peek_media(const char *path, uint64_t off, void *buf, size_t len);

/* Faults on node's files: eio_per_mille of reads, writes, zeroings and
 * fsyncs (io_uring's and the system calls: data, metadata, save files)
 * fail with EIO (0: none); slow_pct of operations take up to 50 ms. */
void simfd_set_faults(int node, unsigned eio_per_mille, unsigned slow_pct);
/* Failed writes of node's (data, metadata, save files) say ENOSPC
 * instead of EIO; fsyncs still fail EIO. */
void simfd_set_enospc(int node, bool on);
/* each(arg, path, node) for every file whose path starts with prefix;
 * node is the one that created it. */
void simfd_files(const char *prefix, void (*each)(void *arg, const char *path, int node),
		 void *arg);
uint64_t simfd_file_size(const char *path);
/* Zeroing (fallocate) takes 20..300 ms on every node. */
void simfd_set_slow_zero(bool on);

/* The node died: its descriptors close (peers see end of file), its
 * pending operations are forgotten, its files lose their page cache. */
void simfd_crash(int node, bool power_loss);

/* Network between the nodes: cut closes every connection between them;
 * while partitioned no new one connects. */
void simfd_cut_link(void);
void simfd_partition(bool on);
/* Any pair partitioned. */
bool simfd_partitioned(void);
/* The same for the link of one pair of nodes (three-node seeds): each
 * pair is cut, partitioned and healed on its own. */
void simfd_cut_pair(int a, int b);
void simfd_partition_pair(int a, int b, bool on);
bool simfd_pair_partitioned(int a, int b);

/* --- the driver's sockets --- */

typedef void simfd_ready_fn(void *arg);

/* Connects a driver socket to a listening Unix path; ready(arg) runs
 * whenever bytes or end of file arrive.  -1 if nothing listens there. */
int simfd_dial(const char *unix_path, simfd_ready_fn *ready, void *arg);
/* Queues len bytes towards the peer; -1 if the connection is gone. */
int simfd_send(int fd, const void *buf, size_t len);
/* Takes up to len received bytes; 0 with *eof set at the end. */
size_t simfd_take(int fd, void *buf, size_t len, bool *eof);
size_t simfd_avail(int fd);
void simfd_close(int fd);

/* --- the io_uring side --- */

struct simop;

/* How a queued operation ends: done(op, res) runs as an event of the
 * op's node (never if the node crashes first). */
typedef void simop_done_fn(struct simop *op, int res);

struct simop {
	int node;
	uint8_t opcode;
	int fd;
	uint64_t addr, addr2;
	uint32_t len;
	uint64_t off;
	uint32_t op_flags;	/* rw_flags, fsync_flags, msg_flags, mode */
	uint64_t user_data;
	simop_done_fn *done;
	/* simfd's own */
	uint64_t id;
	void *obj;		/* the socket or file it works on */
	struct simop *prev, *next; /* in the list of waiting operations */
	bool waiting;
};

/* Node's operations still waiting go: its loop is being freed. */
void simfd_forget_node(int node);

/* Starts op (an io_uring sqe decoded by simloop.c).  Completion comes
 * through op->done, exactly once, unless cancelled. */
void simfd_op_start(struct simop *op);
/* Cancels a waiting operation of node's whose user_data is target (recv,
 * accept, timeout, a read of a signalfd): it completes with -ECANCELED.
 * Returns 0, -ENOENT, or -EALREADY for one already running (disk I/O). */
int simfd_op_cancel(int node, uint64_t target);

#endif
