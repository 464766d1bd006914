/* err.c — formatting of the one-line error messages (see err.h). */
#include "err.h"

#include <stdio.h>
#include <string.h>

int mf_verrf(mf_err *err, const char *fmt, va_list ap)
{
    if (err) {
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        /* one line: a message must never carry a newline into the caller's output, nor a
         * control byte (an escape sequence in a tensor name read from a hostile file) */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
            else if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    }
    return -1;
}

int mf_errf(mf_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mf_verrf(err, fmt, ap);
    va_end(ap);
    return -1;
}

int mf_err_prefix(mf_err *err, const char *fmt, ...)
{
    if (!err) return -1;
    char prefix[256], old[sizeof err->msg - sizeof prefix - 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t n = strnlen(err->msg, sizeof old - 1);
    memcpy(old, err->msg, n);
    old[n] = 0;
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return -1;
}
