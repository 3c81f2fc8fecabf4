/* Reading byte ranges of one file into caller buffers, with several reads
 * in flight: the path every routed expert takes from disk into the cache.
 *
 * An mp_io is one open file plus one backend:
 *   io_uring  liburing; O_DIRECT; the file registered as a fixed file and the
 *             caller's slab (mp_io_register_buffers) as fixed buffers;
 *             batched submits; up to `depth` reads in flight.
 *   pread     a small thread pool calling pread(2); the fallback when
 *             io_uring is unavailable, or on request (--io pread).
 *   fault     wraps either of them and injects EIO, short reads, EAGAIN and
 *             delays, deterministically from a seed (tests, --io-fault).
 *
 * Contract common to every backend (implemented once, in io.c, above the
 * backends, so the fault backend exercises the same recovery code):
 *  - a request completes exactly once, with res == len or res == -errno;
 *  - short reads are resubmitted for the rest (for O_DIRECT from the last
 *    aligned position, rereading a few bytes into the same place);
 *  - -EAGAIN/-EINTR are retried (MP_IO_MAX_RETRIES times without progress,
 *    then the request completes with that error: never a hang);
 *  - bytes past the end of the file read as zeros (the rounded-out tail of
 *    the last tensor); a file that ends before its size at open time
 *    completes with -ENODATA;
 *  - other errors complete the request with -errno; the caller names the
 *    file, layer, expert and offset in its message;
 *  - every blocking wait ends after opts.timeout_ms without a completed
 *    read (a stalled device): the io then FAILS, like when a backend
 *    cannot start reads (a failed or partial io_uring_submit).
 *
 * A failed io (mp_io_failure) hands nothing back any more: submit and reap
 * return the failure, and the requests not yet reaped stay the io's, with
 * their buffers: some of their reads may still be in the kernel and write.
 * mp_io_free cancels them and waits (bounded) for them to end; only when
 * it returns true may those buffers be reused or freed.
 *
 * Alignment: every request's buf, offset and len are multiples of
 * mp_io_align(io) (4096, or the file's O_DIRECT alignment if larger), even
 * when the file is read buffered, so callers have one code path: round the
 * range out, read, and locate the bytes inside the buffer.
 *
 * Threads: an mp_io is used by one thread at a time (the cache's). The
 * pread backend's workers are internal; completions are handed back only
 * through mp_io_reap, in the caller's thread. */
#ifndef MP_IO_H
#define MP_IO_H

#include "common/defaults.h"
#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct mp_io mp_io;

typedef enum mp_io_kind {
    MP_IO_AUTO = 0, /* io_uring, else pread with a note saying why */
    MP_IO_URING = 1,
    MP_IO_PREAD = 2,
} mp_io_kind;

/* Retries of -EAGAIN / -EINTR / zero-progress short reads per request
 * before it completes with the error. */
#define MP_IO_MAX_RETRIES 64
#define MP_IO_DEFAULT_DEPTH MP_DEFAULT_IO_DEPTH
#define MP_IO_MAX_DEPTH 1024
/* A blocking wait that sees no read complete for this long fails the io. */
#define MP_IO_DEFAULT_TIMEOUT_MS 30000u

typedef struct mp_io_opts {
    unsigned depth;         /* reads in flight, 1..MP_IO_MAX_DEPTH; 0: 16 */
    unsigned n_threads;     /* pread workers; 0: min(depth, 8) */
    bool buffered;          /* never try O_DIRECT */
    uint32_t timeout_ms;    /* no completion for this long fails the io; 0: 30000 */
    /* Fault injection (tests; see io_fault.c), NULL or "" for none:
     * comma-separated key=value items, e.g. "seed=7,short=0.3,eagain=0.2".
     *   eio=P          each read fails with EIO with probability P
     *   eio_nth=N      the Nth read (1-based, counting resubmissions) fails
     *   eio_from=N     every read from the Nth on fails (a permanent fault)
     *   eio_off=O      every read that covers file offset O fails
     *   short=P        a read returns about half its bytes (aligned)
     *   eagain=P       a read fails with EAGAIN
     *   delay=P        a read completes delay_us later (default P=1 once
     *   delay_us=U     delay_us is given)
     *   seed=S         the generator's seed (default 1)
     *   refuse_direct  open behaves as if O_DIRECT gave EINVAL (tmpfs)
     *   no_uring       io_uring setup behaves as if it gave ENOSYS
     *   no_fixed       buffer registration behaves as if it gave ENOMEM
     *                  (RLIMIT_MEMLOCK)
     *   submit_fail[=N] the Nth batch submit (default 1st) starts the first
     *                  half of its reads, then fails (a partial
     *                  io_uring_submit); the io fails
     *   submit_zero[=N] the Nth batch submit starts none of its reads
     *                  (io_uring_submit returned 0; with io_uring they
     *                  stay in the ring); the io fails
     *   stall[=N]      the Nth read (default 1st) never completes
     *   stall_from=N   every read from the Nth on never completes
     *   stall_ms=D     a stalled read starts D ms late instead of never,
     *                  so it writes its buffer D ms after its submit
     *   align=A        mp_io_align is at least A (a power of two; a device
     *                  whose O_DIRECT alignment is larger than a page) */
    const char *fault_spec;
} mp_io_opts;

/* One read. buf, offset and len are multiples of mp_io_align(io); buf
 * stays owned by the caller and must stay valid until the completion is
 * reaped. user is returned unchanged in the completion. */
typedef struct mp_io_req {
    void *buf;
    uint64_t offset;
    uint64_t len;
    uint64_t user;
    int prio; /* MP_IO_PRIO_*: queued HIGH requests go before LOW ones, and a LOW
               * one starts only while no HIGH read is queued and at most
               * MP_IO_LOW_BESIDE bytes of HIGH reads are in flight */
} mp_io_req;

enum { MP_IO_PRIO_HIGH = 0, MP_IO_PRIO_LOW = 1 };
/* A LOW read may start beside HIGH reads in flight of at most this many
 * bytes in all (small reads are latency-bound: a prefetch beside them
 * costs the demand little); beside more, it waits. */
#define MP_IO_LOW_BESIDE (256u * 1024u)

typedef struct mp_io_done {
    uint64_t user;
    int64_t res; /* len on success, or -errno */
} mp_io_done;

/* Counters since open (or the last reset), for statistics and tests. */
typedef struct mp_io_counters {
    uint64_t reqs;          /* requests completed */
    uint64_t reads;         /* reads handed to the backend, resubmits included */
    uint64_t bytes;         /* bytes the backend returned */
    uint64_t short_reads;   /* partial results resubmitted for the rest */
    uint64_t retries;       /* EAGAIN / EINTR / no-progress resubmits */
    uint64_t zero_filled;   /* bytes past end of file filled with zeros */
    uint64_t errors;        /* requests completed with an error */
    /* Wall time (CLOCK_MONOTONIC, ns) during which at least one read was
     * in the backend. An interval ends when its last completion is reaped,
     * so time a finished read waits for mp_io_reap counts as busy: busy_ns
     * is an upper bound and bytes / busy_ns a lower bound of the
     * throughput the device gave while it had work. */
    uint64_t busy_ns;
} mp_io_counters;

/* Parses "auto", "io_uring" (or "uring"), "pread". MP_E_INVAL otherwise. */
int mp_io_kind_parse(const char *s, mp_io_kind *out);

/* Opens path read-only with the chosen backend. opts may be NULL.
 *
 * Fallbacks: if O_DIRECT is refused (EINVAL), the file is opened buffered;
 * with MP_IO_AUTO, if io_uring cannot be set up (ENOSYS: old kernel, EPERM:
 * seccomp or kernel.io_uring_disabled), the pread pool is used. Each
 * fallback appends one line to note[note_cap] ("\n"-separated, no trailing
 * newline; note may be NULL) that the caller prints; note is "" when
 * nothing fell back.
 *
 * Returns MP_OK and *out; MP_E_UNSUPPORTED when MP_IO_URING was asked for
 * and io_uring is unavailable (err says why); MP_E_IO when the file cannot
 * be opened; MP_E_INVAL for a bad fault spec or depth; MP_E_NOMEM. */
int mp_io_open(mp_io_kind kind, const char *path, const mp_io_opts *opts, mp_io **out,
               char *note, size_t note_cap, mp_err *err);

/* Closes the file and frees everything (NULL-safe). Waits for reads still
 * in flight (cancelling them first when the io failed), at most the
 * timeout. Returns true when no read can write into a caller buffer any
 * more, so the buffers can be freed; false when a read is still stuck in
 * the kernel (or a pread thread in its system call; that thread is
 * detached and exits when the call returns): the caller must then leave
 * the buffers mapped (leak them) rather than free or reuse them. */
bool mp_io_free(mp_io *io);

/* Registers caller memory as fixed buffers (io_uring; no-op for pread).
 * Each iovec must be <= 1 GiB; at most one registration per mp_io, kept
 * until mp_io_free. Requests whose buffers lie inside a registered iovec
 * then use fixed-buffer reads, the others plain reads. Returns MP_OK, or
 * MP_E_UNSUPPORTED (e.g. RLIMIT_MEMLOCK) with err saying why: reads still
 * work, unregistered. */
int mp_io_register_buffers(mp_io *io, const struct iovec *iov, unsigned n, mp_err *err);

/* Queues n requests and starts as many as the depth allows, in one batch.
 * Never blocks on I/O. Returns MP_OK; MP_E_NOMEM (no request queued); or,
 * when the io has failed (now, the backend refusing to start the reads, or
 * earlier), that failure with err filled: see mp_io_failure. */
int mp_io_submit(mp_io *io, const mp_io_req *reqs, unsigned n, mp_err *err);

/* Moves a still-queued LOW request (by user) ahead of the other LOW ones,
 * as HIGH. A LOW read already in flight counts as HIGH from then on, so no
 * new LOW read starts beside it. Returns true if it was found queued (not
 * yet started). */
bool mp_io_promote(mp_io *io, uint64_t user);

/* Hands back up to max completed requests in out[]. With wait, blocks
 * until at least one completes, unless nothing is outstanding, but no
 * longer than the timeout without any read completing. Returns the number
 * written (0: nothing completed, or nothing outstanding), or a negative
 * status when the io has failed (a timeout: "FILE: no read completed for
 * 30 s (offset N)"; the backend broke); requests are then still
 * outstanding and the io should be freed. */
int mp_io_reap(mp_io *io, mp_io_done *out, unsigned max, bool wait, mp_err *err);

/* Why an io failed. */
typedef struct mp_io_failure_info {
    int status;          /* MP_OK while the io works, else MP_E_IO */
    bool timed_out;      /* a wait ran out; else a submit failed */
    uint32_t timeout_ms; /* the timeout in effect */
    uint64_t user;       /* the request involved: the oldest read in flight at */
    uint64_t offset;     /* a timeout, the first of the batch at a failed submit; */
                         /* offset: the file offset that read started at */
    const char *reason;  /* "no read completed for 30 s", "cannot start it: ..."; */
                         /* valid until mp_io_free */
} mp_io_failure_info;

/* Fills *out (see above) and returns out->status. */
int mp_io_failure(const mp_io *io, mp_io_failure_info *out);

/* Requests submitted and not yet reaped. */
unsigned mp_io_outstanding(const mp_io *io);

const char *mp_io_name(const mp_io *io);   /* "io_uring", "pread", "fault(io_uring)" */
const char *mp_io_path(const mp_io *io);
size_t mp_io_align(const mp_io *io);
/* The alignment mp_io_open will use for path (and fault_spec, which may
 * raise it; NULL: none), without opening an io: 4096, or what statx says
 * the file's O_DIRECT reads need if more. For the planner, so that the slot
 * size it counts is the one the cache will use. */
size_t mp_io_file_align(const char *path, const char *fault_spec);
bool mp_io_is_direct(const mp_io *io);     /* opened with O_DIRECT */
bool mp_io_has_fixed_buffers(const mp_io *io);
uint64_t mp_io_file_size(const mp_io *io); /* at open time */
unsigned mp_io_depth(const mp_io *io);
uint32_t mp_io_timeout_ms(const mp_io *io);

/* Copies the counters into *out (may be NULL) and, with reset, zeroes them.
 * busy_ns includes the busy interval still open at the call. */
void mp_io_get_counters(mp_io *io, mp_io_counters *out, bool reset);

/* Rounds [offset, offset+len) out to multiples of align (a power of two). */
static inline void mp_io_round_out(uint64_t offset, uint64_t len, size_t align,
                                   uint64_t *start, uint64_t *rlen)
{
    uint64_t a = align;
    uint64_t s = offset & ~(a - 1);
    uint64_t e = (offset + len + a - 1) & ~(a - 1);
    *start = s;
    *rlen = e - s;
}

#endif
