/* The backend table behind mp_io (io.h). A backend does single-shot reads:
 * each raw read completes once with the byte count the kernel returned
 * (possibly short) or -errno. Retries, short-read resubmission, zero fill
 * past end of file and queueing beyond the depth live in io.c, above every
 * backend, so the fault backend (which sits between io.c and a real
 * backend) drives the same recovery code the kernel would. */
#ifndef MP_IO_INTERNAL_H
#define MP_IO_INTERNAL_H

#include "common/sysinfo.h"
#include "io/io.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

/* Every deadline below is on mp_time_ns's clock (CLOCK_MONOTONIC, ns). */

/* Largest single raw read; longer requests proceed as short reads do. */
#define MP_IO_MAX_RAW (1u << 30)

typedef struct mp_io_raw {
    void *buf;
    uint64_t offset;
    uint32_t len;      /* 1..MP_IO_MAX_RAW */
    int buf_index;     /* registered buffer holding [buf, buf+len), or -1 */
    uint32_t tag;      /* returned in the completion */
} mp_io_raw;

typedef struct mp_io_raw_done {
    uint32_t tag;
    int32_t res;       /* bytes read (0: end of file) or -errno */
} mp_io_raw_done;

typedef struct mp_io_backend mp_io_backend;

/* What a submit is asked to pretend (the fault backend's submit_fail and
 * submit_zero), at the point where the backend hands reads to the kernel,
 * so the real backend's own failure handling runs. */
enum {
    MP_IO_SIM_NONE = 0,
    MP_IO_SIM_SUBMIT_FAIL = 1, /* the first half of the reads start, then the submit fails */
    MP_IO_SIM_SUBMIT_ZERO = 2, /* the submit starts none of them (io_uring_submit returned 0) */
};

typedef struct mp_io_ops {
    const char *name;
    /* Starts n reads. io.c never has more than the backend's depth reads
     * in flight. Returns MP_OK (all n in flight), or a negative status with
     * err filled, in which case ANY of the n reads may be in flight, now
     * or later (io_uring cannot take back an SQE it has put in the ring):
     * io.c then fails the io and keeps their buffers until free. */
    int (*submit)(mp_io_backend *be, const mp_io_raw *r, unsigned n, int sim, mp_err *err);
    /* Writes up to max completions. deadline_ns == 0: never blocks; else
     * blocks until at least one completes or CLOCK_MONOTONIC reaches
     * deadline_ns (then returns 0). Returns the count or a negative
     * status. */
    int (*reap)(mp_io_backend *be, mp_io_raw_done *out, unsigned max, uint64_t deadline_ns,
                mp_err *err);
    /* Returns 0 or -errno. NULL: nothing to register (pread). */
    int (*register_buffers)(mp_io_backend *be, const struct iovec *iov, unsigned n);
    /* Frees be (the fd is not closed). With cancel (the io failed), first
     * asks for the reads in flight to be cancelled; then waits for them,
     * but never past deadline_ns. Returns true when no read can write into
     * a caller buffer any more; false when one still may (a read stuck in
     * the kernel): the caller must then never free or reuse the buffers. */
    bool (*free)(mp_io_backend *be, bool cancel, uint64_t deadline_ns);
} mp_io_ops;

struct mp_io_backend {
    const mp_io_ops *ops;
    char name[32];
};

/* Each returns MP_OK and *out, or a negative status with err filled.
 * mp_io_uring_create returns MP_E_UNSUPPORTED (and *sys_errno) when the
 * ring cannot be set up; simulate_enosys makes it do so (fault spec
 * no_uring). */
int mp_io_uring_create(int fd, unsigned depth, bool simulate_enosys, mp_io_backend **out,
                       int *sys_errno, mp_err *err);
int mp_io_pread_create(int fd, unsigned depth, unsigned n_threads, mp_io_backend **out,
                       mp_err *err);

/* Parsed fault spec (see mp_io_opts.fault_spec). */
typedef struct mp_io_fault_spec {
    double p_eio, p_short, p_eagain, p_delay;
    uint64_t eio_nth, eio_from;   /* 0: off */
    uint64_t eio_off;
    bool has_eio_off;
    uint64_t delay_us;
    uint64_t seed;
    uint64_t submit_fail, submit_zero; /* the Nth batch submit fails / starts nothing; 0: off */
    uint64_t stall_nth, stall_from;    /* the Nth read / every read from the Nth on stalls */
    uint64_t stall_ms;                 /* a stalled read starts this late; 0: never */
    uint64_t align;                    /* raise mp_io_align to this (a power of two); 0: off */
    bool refuse_direct, no_uring, no_fixed;
    bool any_read_fault;          /* a read-time fault is configured */
} mp_io_fault_spec;

/* Parses spec; MP_E_INVAL with err naming the bad item. */
int mp_io_fault_parse(const char *spec, mp_io_fault_spec *out, mp_err *err);

/* Wraps inner (ownership passes to the wrapper, also on failure). Short
 * reads are cut to multiples of short_align. */
int mp_io_fault_create(mp_io_backend *inner, const mp_io_fault_spec *spec, size_t short_align,
                       mp_io_backend **out, mp_err *err);

#endif
