/* moepager status codes.
 *
 * Every function that can fail for a reason other than a programmer error
 * returns an int: MP_OK (0) or one of the negative codes below. Programmer
 * errors (NULL where a pointer is required, out-of-range indices the caller
 * computed) are asserts, not statuses. */
#ifndef MOEPAGER_STATUS_H
#define MOEPAGER_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description) */
#define MP_STATUS_LIST(X)                                                     \
    X(MP_OK, 0, "ok")                                                         \
    X(MP_E_INVAL, -1, "invalid argument")                                     \
    X(MP_E_IO, -2, "I/O error")                                               \
    X(MP_E_CORRUPT, -3, "corrupt or malformed file")                          \
    X(MP_E_CHECKSUM, -4, "checksum mismatch")                                 \
    X(MP_E_NOMEM, -5, "out of memory")                                        \
    X(MP_E_BUDGET, -6, "memory budget too small")                             \
    X(MP_E_UNSUPPORTED, -7, "unsupported")                                    \
    X(MP_E_NOTFOUND, -8, "not found")                                         \
    X(MP_E_RANGE, -9, "value out of range")                                   \
    X(MP_E_AGAIN, -10, "resource temporarily unavailable")

typedef enum mp_status {
#define MP_X_ENUM(name, value, desc) name = value,
    MP_STATUS_LIST(MP_X_ENUM)
#undef MP_X_ENUM
} mp_status;

/* Returns a static, human-readable description of a status code; never NULL
 * (unknown codes give "unknown status"). */
const char *mp_strerror(int status);

/* Returns the enum's name ("MP_E_IO"), or "MP_E_?" for unknown codes. */
const char *mp_status_name(int status);

/* An error report: the status plus one line that names the file, tensor,
 * layer/expert and byte offset involved ("model.gguf: layer 3 expert 7: read
 * of 1048576 bytes at offset 123 failed: Input/output error"). Functions that
 * can fail take an `mp_err *err` (may be NULL) and, on failure, fill it with
 * the first (innermost) failure; the caller owns it, usually on its stack:
 *     mp_err err = {0};
 *     if (mp_engine_open(&e, path, &p, &err) != MP_OK) fprintf(stderr, "error: %s\n", err.msg);
 * The message never ends with a newline and never contains "error:". Clear
 * it (or zero it) before reusing it for a new call: a failure is only
 * recorded when err holds none yet. */
#define MP_ERR_MSG_MAX 512

typedef struct mp_err {
    int status;                 /* MP_OK or a negative mp_status */
    char msg[MP_ERR_MSG_MAX];   /* NUL-terminated; "" when status == MP_OK */
} mp_err;

#ifdef __cplusplus
}
#endif
#endif
