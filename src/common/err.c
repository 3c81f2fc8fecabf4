#include "err.h"

#include <stdio.h>
#include <string.h>

const char *mp_strerror(int status)
{
    switch (status) {
#define MP_X_CASE(name, value, desc) case value: return desc;
        MP_STATUS_LIST(MP_X_CASE)
#undef MP_X_CASE
    default: return "unknown status";
    }
}

const char *mp_status_name(int status)
{
    switch (status) {
#define MP_X_CASE(name, value, desc) case value: return #name;
        MP_STATUS_LIST(MP_X_CASE)
#undef MP_X_CASE
    default: return "MP_E_?";
    }
}

void mp_err_clear(mp_err *err)
{
    if (!err) return;
    err->status = MP_OK;
    err->msg[0] = '\0';
}

int mp_err_setv(mp_err *err, int status, const char *fmt, va_list ap)
{
    if (!err || err->status != MP_OK) return status;
    err->status = status;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return status;
}

int mp_err_set(mp_err *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mp_err_setv(err, status, fmt, ap);
    va_end(ap);
    return status;
}

int mp_err_reset(mp_err *err, int status, const char *fmt, ...)
{
    if (!err) return status;
    err->status = MP_OK;
    va_list ap;
    va_start(ap, fmt);
    mp_err_setv(err, status, fmt, ap);
    va_end(ap);
    return status;
}

void mp_note_add(char *note, size_t cap, const char *fmt, ...)
{
    if (!note || cap == 0) return;
    size_t len = strlen(note);
    if (len && len + 1 < cap) note[len++] = '\n', note[len] = '\0';
    if (len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note + len, cap - len, fmt, ap);
    va_end(ap);
}
