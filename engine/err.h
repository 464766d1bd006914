/* err.h — how the library reports failure.
 *
 * Contract: every fallible library function takes an `mf_err *` as its last argument,
 * returns an error value (NULL or a negative int) on failure, and leaves exactly one
 * human-readable line in err->msg (no trailing newline). The library never prints and
 * never exits; the caller decides what to do with the message. `err` may be NULL when the
 * caller does not care about the text.
 */
#ifndef MF_ERR_H
#define MF_ERR_H

#include <stdarg.h>

typedef struct mf_err {
    char msg[1024];
} mf_err;

/* Format a message into err (if non-NULL). Always returns -1 so that callers can write
 * `return mf_errf(err, "...", ...);`. */
int mf_errf(mf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mf_verrf(mf_err *err, const char *fmt, va_list ap);

/* Prepend "prefix: " to the message already in err (used to add a file name or context
 * on the way up). Returns -1. */
int mf_err_prefix(mf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
