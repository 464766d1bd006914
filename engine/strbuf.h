/* strbuf.h — a growing byte string for the text the library builds (rendered prompts, tool
 * sections, generated answers). Appending never fails loudly: an allocation failure sets
 * `oom` and later appends do nothing, so a caller checks once at the end. The bytes are
 * always NUL-terminated once anything was added (p stays NULL while empty). */
#ifndef MF_STRBUF_H
#define MF_STRBUF_H

#include <stddef.h>

typedef struct mf_sb {
    char *p;
    size_t n, cap;
    int oom;
} mf_sb;

void mf_sb_add_n(mf_sb *b, const char *s, size_t n);
void mf_sb_add(mf_sb *b, const char *s);
void mf_sb_addf(mf_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keep the first n bytes (n <= b->n). */
void mf_sb_truncate(mf_sb *b, size_t n);
/* The text (malloc'd, NUL-terminated, "" when empty) handed to the caller; the buffer is
 * left empty. NULL when an allocation failed (the buffer is freed then too). */
char *mf_sb_take(mf_sb *b);
void mf_sb_free(mf_sb *b);

#endif
