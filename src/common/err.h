/* Error reports: a status plus one line that names the file, tensor,
 * layer/expert and byte offset involved.
 *
 * Functions that can fail take an `mp_err *err` (may be NULL) and return a
 * status; on failure they fill err with the first (innermost) failure.
 * The message never ends with a newline and never contains "error:". */
#ifndef MP_ERR_H
#define MP_ERR_H

#include "moepager/status.h"
#include <stdarg.h>
#include <stddef.h>

/* mp_err itself (status + message) is public: include/moepager/status.h. */

/* Clears err (NULL-safe). */
void mp_err_clear(mp_err *err);

/* Records status and a printf-style message in err (NULL-safe) unless err
 * already holds a failure, so the innermost cause wins. Returns status, so
 * `return mp_err_set(err, MP_E_CORRUPT, "...");` reads naturally. */
int mp_err_set(mp_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int mp_err_setv(mp_err *err, int status, const char *fmt, va_list ap);

/* Like mp_err_set, but overwrites any earlier message. */
int mp_err_reset(mp_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Announcements (fallbacks a caller should print): appends one line to
 * note[cap] ("\n"-separated, no trailing newline; note may be NULL).
 * Silently truncates when full. */
void mp_note_add(char *note, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
