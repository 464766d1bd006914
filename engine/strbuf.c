/* strbuf.c — the growing byte string of strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(mf_sb *b, size_t extra)
{
    if (b->oom) return -1;
    if (extra > (size_t)-1 / 2 - b->n) {
        b->oom = 1;
        return -1;
    }
    if (b->n + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void mf_sb_add_n(mf_sb *b, const char *s, size_t n)
{
    if (reserve(b, n)) return;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void mf_sb_add(mf_sb *b, const char *s) { mf_sb_add_n(b, s, strlen(s)); }

void mf_sb_addf(mf_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || reserve(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void mf_sb_truncate(mf_sb *b, size_t n)
{
    if (n >= b->n) return;
    b->n = n;
    b->p[n] = 0;
}

char *mf_sb_take(mf_sb *b)
{
    if (!b->oom && !b->p) mf_sb_add_n(b, "", 0);
    char *p = b->oom ? NULL : b->p;
    if (b->oom) free(b->p);
    *b = (mf_sb){0};
    return p;
}

void mf_sb_free(mf_sb *b)
{
    free(b->p);
    *b = (mf_sb){0};
}
