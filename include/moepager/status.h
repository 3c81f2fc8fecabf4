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

#ifdef __cplusplus
}
#endif
#endif
