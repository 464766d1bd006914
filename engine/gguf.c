/* gguf.c — GGUF reader: mmap the file, validate everything, index metadata and tensors.
 *
 * The format: the GGUF specification, https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
 * (in minfer's words, with the checks this reader makes: docs/gguf.md). The file is hostile until proven otherwise: every read goes
 * through rd_need(), which checks `pos + n <= size` without overflow before a single byte is
 * touched, and every size derived from the file is computed with explicit overflow checks
 * (docs/gguf.md §3). Errors carry the file name and the byte offset of the offending field.
 *
 * Layout of the file (docs/gguf.md §1):
 *   header (24 B) | n_kv metadata records | n_tensors tensor infos | pad | data section
 */
#include "gguf.h"
#include "types.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct mf_gguf {
    char *path;
    const uint8_t *base;
    uint64_t size;
    int mapped; /* 1: base came from mmap and is unmapped at close */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    uint64_t n_kv;
    mf_gguf_kv *kv;
    uint64_t n_tensors;
    mf_gguf_tensor *tensors;
    /* record indices sorted by name: duplicates become neighbours (found in O(n log n) even
     * for names crafted to collide, which a hash table cannot promise) and a lookup is a
     * binary search */
    uint64_t *kv_sorted;
    uint64_t *t_sorted;
};

/* ------------------------------------------------------------------ cursor */

typedef struct rd {
    const uint8_t *p;
    uint64_t size, pos;
    const char *name;
    mf_err *err;
} rd;

/* Every message of this file goes through gerr(): keys and names come from the file and may
 * hold any byte, and the caller prints the message on a terminal, so control bytes (escape
 * sequences included) become '?'. */
static int gerr(mf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int gerr(mf_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mf_verrf(err, fmt, ap);
    va_end(ap);
    if (err)
        for (char *c = err->msg; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return -1;
}

static int fail(rd *r, uint64_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(rd *r, uint64_t at, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gerr(r->err, "%s: offset %llu: %s", r->name, (unsigned long long)at, what);
}

static int rd_need(rd *r, uint64_t n, const char *what)
{
    if (n > r->size - r->pos)
        return fail(r, r->pos, "%s needs %llu bytes but only %llu remain (file truncated?)", what,
                    (unsigned long long)n, (unsigned long long)(r->size - r->pos));
    return 0;
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int rd_uint(rd *r, int n, uint64_t *out, const char *what)
{
    if (rd_need(r, (uint64_t)n, what)) return -1;
    *out = le(r->p + r->pos, n);
    r->pos += (uint64_t)n;
    return 0;
}

static int rd_u32(rd *r, uint32_t *out, const char *what)
{
    uint64_t v;
    if (rd_uint(r, 4, &v, what)) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* gguf_string: u64 length + bytes, bounds- and cap-checked */
static int rd_str(rd *r, mf_str *s, const char *what)
{
    uint64_t at = r->pos, len;
    if (rd_uint(r, 8, &len, what)) return -1;
    if (len > MF_GGUF_MAX_STRING)
        return fail(r, at, "%s length %llu exceeds the limit of %llu bytes", what, (unsigned long long)len,
                    (unsigned long long)MF_GGUF_MAX_STRING);
    if (len > r->size - r->pos)
        return fail(r, at, "%s length %llu runs past end of file (%llu bytes remain)", what, (unsigned long long)len,
                    (unsigned long long)(r->size - r->pos));
    s->ptr = (const char *)r->p + r->pos;
    s->len = len;
    r->pos += len;
    return 0;
}

/* ------------------------------------------------------------------ name index */

/* Names are NUL-free C strings (checked at parse time), so strcmp orders them by bytes. */
typedef const char *(*name_of_fn)(const mf_gguf *g, uint64_t i);
static const char *kv_name(const mf_gguf *g, uint64_t i) { return g->kv[i].key; }
static const char *t_name(const mf_gguf *g, uint64_t i) { return g->tensors[i].name; }

typedef struct sort_ctx {
    const mf_gguf *g;
    name_of_fn nm;
} sort_ctx;

static int cmp_by_name(const void *a, const void *b, void *ctx)
{
    const sort_ctx *c = ctx;
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    int d = strcmp(c->nm(c->g, x), c->nm(c->g, y));
    if (d) return d;
    return x < y ? -1 : x > y; /* equal names: file order, so the later one is reported */
}

/* Sort the indices 0..n-1 by name into *out. If two records share a name, *dup_first and
 * *dup_later receive their indices (dup_later > dup_first) and 1 is returned; 0 when all
 * names differ; -1 when out of memory. */
static int index_names(const mf_gguf *g, uint64_t n, name_of_fn nm, uint64_t **out, uint64_t *dup_first,
                       uint64_t *dup_later)
{
    uint64_t *ix = malloc((n ? n : 1) * sizeof *ix);
    if (!ix) return -1;
    for (uint64_t i = 0; i < n; i++) ix[i] = i;
    sort_ctx c = {g, nm};
    qsort_r(ix, n, sizeof *ix, cmp_by_name, &c);
    *out = ix;
    for (uint64_t i = 0; i + 1 < n; i++)
        if (strcmp(nm(g, ix[i]), nm(g, ix[i + 1])) == 0) {
            *dup_first = ix[i];
            *dup_later = ix[i + 1];
            return 1;
        }
    return 0;
}

/* Binary search of the sorted index; -1 if absent (or before the index exists). */
static int64_t find_name(const mf_gguf *g, const uint64_t *ix, uint64_t n, name_of_fn nm, const char *name)
{
    if (!ix) return -1;
    uint64_t lo = 0, hi = n; /* the answer, if any, is in ix[lo, hi) */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int d = strcmp(nm(g, ix[mid]), name);
        if (d == 0) return (int64_t)ix[mid];
        if (d < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* ------------------------------------------------------------------ metadata */

static const uint8_t SCALAR_SIZE[MF_GGUF_VTYPE_COUNT] = {
    [MF_GGUF_U8] = 1,  [MF_GGUF_I8] = 1,   [MF_GGUF_U16] = 2, [MF_GGUF_I16] = 2, [MF_GGUF_U32] = 4, [MF_GGUF_I32] = 4,
    [MF_GGUF_F32] = 4, [MF_GGUF_BOOL] = 1, [MF_GGUF_U64] = 8, [MF_GGUF_I64] = 8, [MF_GGUF_F64] = 8,
};

const char *mf_gguf_vtype_name(uint32_t t)
{
    static const char *const N[MF_GGUF_VTYPE_COUNT] = {"UINT8",  "INT8",    "UINT16", "INT16",  "UINT32",
                                                       "INT32",  "FLOAT32", "BOOL",   "STRING", "ARRAY",
                                                       "UINT64", "INT64",   "FLOAT64"};
    return t < MF_GGUF_VTYPE_COUNT ? N[t] : "INVALID";
}

/* widen a scalar of type t stored at p into kv->v */
static void decode_scalar(mf_gguf_kv *kv, uint32_t t, const uint8_t *p)
{
    uint64_t raw = le(p, SCALAR_SIZE[t]);
    switch (t) {
    case MF_GGUF_I8: kv->v.i = (int8_t)raw; break;
    case MF_GGUF_I16: kv->v.i = (int16_t)raw; break;
    case MF_GGUF_I32: kv->v.i = (int32_t)raw; break;
    case MF_GGUF_I64: kv->v.i = (int64_t)raw; break;
    case MF_GGUF_F32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        kv->v.f = f;
        break;
    }
    case MF_GGUF_F64: {
        double d;
        memcpy(&d, &raw, 8);
        kv->v.f = d;
        break;
    }
    case MF_GGUF_BOOL: kv->v.u = raw != 0; break; /* llama.cpp: any non-zero byte is true */
    default: kv->v.u = raw; break;
    }
}

static int parse_kv(rd *r, mf_gguf_kv *kv)
{
    mf_str key;
    kv->offset = r->pos;
    if (rd_str(r, &key, "metadata key")) return -1;
    if (key.len == 0) return fail(r, kv->offset, "empty metadata key");
    if (memchr(key.ptr, 0, key.len)) return fail(r, kv->offset, "metadata key contains a NUL byte");
    char *k = malloc(key.len + 1);
    if (!k) return fail(r, kv->offset, "out of memory");
    memcpy(k, key.ptr, key.len);
    k[key.len] = 0;
    kv->key = k;

    uint64_t at = r->pos;
    if (rd_u32(r, &kv->type, "metadata value type")) return -1;
    if (kv->type >= MF_GGUF_VTYPE_COUNT) return fail(r, at, "key '%s': unknown value type %u", k, kv->type);

    at = r->pos;
    if (kv->type == MF_GGUF_STR) {
        mf_str s;
        if (rd_str(r, &s, "string value")) return -1;
        char *c = malloc(s.len + 1);
        if (!c) return fail(r, at, "out of memory");
        memcpy(c, s.ptr, s.len);
        c[s.len] = 0;
        kv->str = c;
        kv->str_len = s.len;
    } else if (kv->type == MF_GGUF_ARR) {
        uint64_t n;
        if (rd_u32(r, &kv->arr_type, "array element type")) return -1;
        if (kv->arr_type >= MF_GGUF_VTYPE_COUNT)
            return fail(r, at, "key '%s': unknown array element type %u", k, kv->arr_type);
        if (kv->arr_type == MF_GGUF_ARR) return fail(r, at, "key '%s': nested arrays are not supported", k);
        at = r->pos;
        if (rd_uint(r, 8, &n, "array count")) return -1;
        uint64_t remain = r->size - r->pos;
        uint64_t esize = kv->arr_type == MF_GGUF_STR ? 8 : SCALAR_SIZE[kv->arr_type];
        if (n > MF_GGUF_MAX_ARRAY)
            return fail(r, at, "key '%s': array count %llu exceeds the limit of %llu elements", k,
                        (unsigned long long)n, (unsigned long long)MF_GGUF_MAX_ARRAY);
        if (n > remain / esize) /* a string element needs at least its 8-byte length */
            return fail(r, at, "key '%s': array of %llu %s elements runs past end of file (%llu bytes remain)", k,
                        (unsigned long long)n, mf_gguf_vtype_name(kv->arr_type), (unsigned long long)remain);
        kv->arr_n = n;
        kv->arr_data = r->p + r->pos;
        if (kv->arr_type == MF_GGUF_STR) {
            kv->arr_str = malloc((n ? n : 1) * sizeof(mf_str));
            if (!kv->arr_str) return fail(r, at, "out of memory");
            for (uint64_t i = 0; i < n; i++)
                if (rd_str(r, &kv->arr_str[i], "array string")) return -1;
        } else {
            r->pos += n * esize; /* checked above: n * esize <= remain */
        }
    } else {
        if (rd_need(r, SCALAR_SIZE[kv->type], "metadata value")) return -1;
        decode_scalar(kv, kv->type, r->p + r->pos);
        r->pos += SCALAR_SIZE[kv->type];
    }
    return 0;
}

/* ------------------------------------------------------------------ tensors */

static int parse_tensor_info(mf_gguf *g, rd *r, mf_gguf_tensor *t)
{
    mf_str name;
    t->info_offset = r->pos;
    if (rd_str(r, &name, "tensor name")) return -1;
    if (name.len == 0) return fail(r, t->info_offset, "empty tensor name");
    if (name.len >= MF_GGUF_MAX_NAME)
        return fail(r, t->info_offset, "tensor name of %llu bytes is too long (max %d)", (unsigned long long)name.len,
                    MF_GGUF_MAX_NAME - 1);
    if (memchr(name.ptr, 0, name.len)) return fail(r, t->info_offset, "tensor name contains a NUL byte");
    memcpy(t->name, name.ptr, name.len);
    t->name[name.len] = 0;

    uint64_t at = r->pos;
    if (rd_u32(r, &t->n_dims, "tensor n_dims")) return -1;
    if (t->n_dims > 4) return fail(r, at, "tensor '%s' has %u dimensions (max 4)", t->name, t->n_dims);
    uint64_t n_el = 1;
    for (int j = 0; j < 4; j++) {
        t->ne[j] = 1;
        if ((uint32_t)j >= t->n_dims) continue;
        uint64_t d;
        at = r->pos;
        if (rd_uint(r, 8, &d, "tensor dimension")) return -1;
        if (d == 0) return fail(r, at, "tensor '%s' dimension %d is zero", t->name, j);
        if (d > (uint64_t)INT64_MAX) /* docs/gguf.md §3: stored as i64 by llama.cpp */
            return fail(r, at, "tensor '%s' dimension %d is negative (%lld)", t->name, j, (long long)(int64_t)d);
        if (n_el > (uint64_t)INT64_MAX / d) /* docs/gguf.md §3: the product must fit in i64 */
            return fail(r, at, "tensor '%s' element count overflows (dimension %d is %llu)", t->name, j,
                        (unsigned long long)d);
        n_el *= d;
        t->ne[j] = (int64_t)d;
    }
    t->n_elements = n_el;

    at = r->pos;
    if (rd_u32(r, &t->type, "tensor type")) return -1;
    char tb[32];
    const mf_type_info *ti = mf_type_get(t->type);
    if (!ti)
        return fail(r, at, "tensor '%s' has invalid type id %u (%s)", t->name, t->type,
                    t->type < MF_TYPE_COUNT ? "removed from the format" : "not defined by the format");
    if ((uint64_t)t->ne[0] % ti->blck)
        return fail(r, at, "tensor '%s': row of %lld elements is not a multiple of the %s block size %u", t->name,
                    (long long)t->ne[0], mf_type_name(t->type, tb), ti->blck);
    uint64_t blocks = n_el / ti->blck;  /* exact: ne[0] is a multiple of blck */
    if (blocks > UINT64_MAX / ti->size) /* docs/gguf.md §3 */
        return fail(r, at, "tensor '%s' byte size overflows (%llu blocks of %u bytes)", t->name,
                    (unsigned long long)blocks, ti->size);
    t->nbytes = blocks * ti->size;

    at = r->pos;
    if (rd_uint(r, 8, &t->offset, "tensor offset")) return -1;
    if (t->offset % g->alignment)
        return fail(r, at, "tensor '%s' offset %llu is not a multiple of the alignment %u", t->name,
                    (unsigned long long)t->offset, g->alignment);
    return 0;
}

static int cmp_by_offset(const void *a, const void *b, void *ctx)
{
    const mf_gguf_tensor *t = ctx;
    uint64_t i = *(const uint64_t *)a, j = *(const uint64_t *)b;
    if (t[i].offset != t[j].offset) return t[i].offset < t[j].offset ? -1 : 1;
    return i < j ? -1 : i > j; /* ties in file order: the message names the later record */
}

/* docs/gguf.md §3: every tensor's bytes lie inside the file, and no two tensors share a
 * byte. Errors point at the tensor-info record whose offset is wrong. */

static int check_tensor_data(mf_gguf *g, rd *r)
{
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        mf_gguf_tensor *t = &g->tensors[i];
        /* data_offset <= size is checked by the caller; offset and nbytes are each checked
         * against the space left so the sums cannot overflow */
        uint64_t room = g->size - g->data_offset;
        if (t->offset > room || t->nbytes > room - t->offset)
            return fail(r, t->info_offset,
                        "tensor '%s' data (%llu bytes at data offset %llu) ends past end of file (size %llu)", t->name,
                        (unsigned long long)t->nbytes, (unsigned long long)t->offset, (unsigned long long)g->size);
        t->data = g->base + g->data_offset + t->offset;
    }
    if (g->n_tensors < 2) return 0;
    uint64_t *ord = malloc(g->n_tensors * sizeof *ord);
    if (!ord) return fail(r, g->data_offset, "out of memory sorting %llu tensors", (unsigned long long)g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++) ord[i] = i;
    qsort_r(ord, g->n_tensors, sizeof *ord, cmp_by_offset, g->tensors);
    for (uint64_t i = 0; i + 1 < g->n_tensors; i++) {
        const mf_gguf_tensor *a = &g->tensors[ord[i]], *b = &g->tensors[ord[i + 1]];
        if (a->offset + a->nbytes > b->offset) { /* both <= size: no overflow */
            int rc = fail(r, b->info_offset,
                          "tensor '%s' (data offset %llu) overlaps tensor '%s' (%llu bytes at data offset %llu)",
                          b->name, (unsigned long long)b->offset, a->name, (unsigned long long)a->nbytes,
                          (unsigned long long)a->offset);
            free(ord);
            return rc;
        }
    }
    free(ord);
    return 0;
}

/* ------------------------------------------------------------------ open */

/* Build a sorted name index and reject the file if a name occurs twice (docs/gguf.md §3).
 * `offset_of` gives the file offset of a record for the message. */
static int index_or_fail(mf_gguf *g, rd *r, uint64_t n, name_of_fn nm, uint64_t **out, const char *what,
                         uint64_t (*offset_of)(const mf_gguf *, uint64_t))
{
    uint64_t first = 0, later = 0;
    int rc = index_names(g, n, nm, out, &first, &later);
    if (rc < 0) return fail(r, 0, "out of memory indexing %llu names", (unsigned long long)n);
    if (rc > 0)
        return fail(r, offset_of(g, later), "duplicate %s '%s' (first defined at offset %llu)", what, nm(g, later),
                    (unsigned long long)offset_of(g, first));
    return 0;
}

static uint64_t kv_off(const mf_gguf *g, uint64_t i) { return g->kv[i].offset; }
static uint64_t t_off(const mf_gguf *g, uint64_t i) { return g->tensors[i].info_offset; }

static int parse(mf_gguf *g, mf_err *err)
{
    rd r = {g->base, g->size, 0, g->path, err};
    /* header (docs/gguf.md §2) */
    if (g->size < 24)
        return fail(&r, 0, "file of %llu bytes is too small to be GGUF (header is 24 bytes)",
                    (unsigned long long)g->size);
    if (memcmp(g->base, "GGUF", 4) != 0)
        return fail(&r, 0, "bad magic %02x %02x %02x %02x (expected 'GGUF')", g->base[0], g->base[1], g->base[2],
                    g->base[3]);
    r.pos = 4;
    uint64_t n_t, n_kv;
    if (rd_u32(&r, &g->version, "version") || rd_uint(&r, 8, &n_t, "tensor count") ||
        rd_uint(&r, 8, &n_kv, "metadata count"))
        return -1;
    /* version 0 is tested first: its low 16 bits are zero too, but it is not a swapped file */
    if (g->version == 0) return fail(&r, 4, "unsupported GGUF version 0");
    if ((g->version & 0xFFFF) == 0) /* docs/gguf.md §2: a byte-swapped 2 or 3 */
        return fail(&r, 4, "big-endian GGUF not supported (version field 0x%08x)", g->version);
    if (g->version == 1) return fail(&r, 4, "GGUF version 1 is obsolete and not supported (re-convert the model)");
    if (g->version != 2 && g->version != 3)
        return fail(&r, 4, "unsupported GGUF version %u (minfer reads versions 2 and 3)", g->version);
    /* docs/gguf.md §3: a KV record takes >= 14 bytes and a tensor info >= 25, so counts the rest of the
     * file cannot hold are rejected before anything is allocated from them */
    uint64_t remain = g->size - 24;
    if (n_t > (uint64_t)INT64_MAX || n_t > remain / 25)
        return fail(&r, 8, "tensor count %llu is impossible for a file of %llu bytes", (unsigned long long)n_t,
                    (unsigned long long)g->size);
    if (n_kv > (uint64_t)INT64_MAX || n_kv > (remain - n_t * 25) / 14)
        return fail(&r, 16, "metadata count %llu is impossible for a file of %llu bytes", (unsigned long long)n_kv,
                    (unsigned long long)g->size);

    /* metadata (docs/gguf.md §2) */
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    if (!g->kv) return fail(&r, 16, "out of memory for %llu metadata records", (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = i + 1; /* so close() frees what was parsed */
        if (parse_kv(&r, &g->kv[i])) return -1;
    }
    if (index_or_fail(g, &r, n_kv, kv_name, &g->kv_sorted, "metadata key", kv_off)) return -1;

    /* docs/gguf.md §2: general.alignment, when present, must be a UINT32 power of two */
    g->alignment = MF_GGUF_DEFAULT_ALIGNMENT;
    const mf_gguf_kv *al = mf_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != MF_GGUF_U32)
            return fail(&r, al->offset, "general.alignment has type %s (must be UINT32)", mf_gguf_vtype_name(al->type));
        if (al->v.u == 0 || (al->v.u & (al->v.u - 1)))
            return fail(&r, al->offset, "general.alignment %llu is not a non-zero power of two",
                        (unsigned long long)al->v.u);
        g->alignment = (uint32_t)al->v.u;
    }

    /* tensor infos (docs/gguf.md §2) */
    g->tensors = calloc(n_t ? n_t : 1, sizeof *g->tensors);
    if (!g->tensors) return fail(&r, 8, "out of memory for %llu tensor infos", (unsigned long long)n_t);
    for (uint64_t i = 0; i < n_t; i++) {
        g->n_tensors = i + 1;
        if (parse_tensor_info(g, &r, &g->tensors[i])) return -1;
    }
    if (index_or_fail(g, &r, n_t, t_name, &g->t_sorted, "tensor name", t_off)) return -1;

    /* data section (docs/gguf.md §2): aligned only when there are tensors, as llama.cpp does. p <= size
     * and the alignment is at most 2^31, so p + a - 1 cannot overflow. */
    uint64_t p = r.pos;
    g->data_offset = p;
    if (n_t > 0) {
        uint64_t a = g->alignment;
        g->data_offset = (p + a - 1) & ~(a - 1);
        if (g->data_offset > g->size)
            return fail(&r, p, "data section (aligned to %u at offset %llu) starts past end of file (size %llu)",
                        g->alignment, (unsigned long long)g->data_offset, (unsigned long long)g->size);
    }
    return check_tensor_data(g, &r);
}

static mf_gguf *open_common(mf_gguf *g, const char *name, mf_err *err)
{
    g->path = strdup(name);
    if (!g->path || parse(g, err)) {
        if (!g->path) gerr(err, "%s: out of memory", name);
        mf_gguf_close(g);
        return NULL;
    }
    return g;
}

mf_gguf *mf_gguf_open_memory(const void *data, size_t size, const char *name, mf_err *err)
{
    mf_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        gerr(err, "%s: out of memory", name);
        return NULL;
    }
    g->base = data;
    g->size = size;
    return open_common(g, name, err);
}

mf_gguf *mf_gguf_open(const char *path, mf_err *err)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. The
     * type check is on the opened descriptor (fstat), so the file cannot be swapped between
     * the check and the mapping; for a regular file the flag changes nothing. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        gerr(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        gerr(err, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        gerr(err, "%s: not a regular file (%s)", path,
             S_ISDIR(st.st_mode)    ? "a directory"
             : S_ISFIFO(st.st_mode) ? "a FIFO"
             : S_ISCHR(st.st_mode)  ? "a character device"
             : S_ISBLK(st.st_mode)  ? "a block device"
             : S_ISSOCK(st.st_mode) ? "a socket"
                                    : "a special file");
        close(fd);
        return NULL;
    }
    mf_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        close(fd);
        gerr(err, "%s: out of memory", path);
        return NULL;
    }
    g->size = (uint64_t)st.st_size;
    if (g->size > 0) {
        void *m = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            gerr(err, "%s: mmap of %llu bytes failed: %s", path, (unsigned long long)g->size, strerror(errno));
            close(fd);
            free(g);
            return NULL;
        }
        g->base = m;
        g->mapped = 1;
    } else {
        g->base = (const uint8_t *)"";
    }
    close(fd); /* the mapping keeps the file alive */
    return open_common(g, path, err);
}

void mf_gguf_close(mf_gguf *g)
{
    if (!g) return;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        free((void *)g->kv[i].key);
        free((void *)g->kv[i].str);
        free(g->kv[i].arr_str);
    }
    free(g->kv);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->t_sorted);
    if (g->mapped) munmap((void *)g->base, (size_t)g->size);
    free(g->path);
    free(g);
}

/* ------------------------------------------------------------------ accessors */

const char *mf_gguf_path(const mf_gguf *g) { return g->path; }
uint32_t mf_gguf_version(const mf_gguf *g) { return g->version; }
uint64_t mf_gguf_file_size(const mf_gguf *g) { return g->size; }
uint64_t mf_gguf_data_offset(const mf_gguf *g) { return g->data_offset; }
int mf_gguf_mapped(const mf_gguf *g) { return g->mapped; }
uint32_t mf_gguf_alignment(const mf_gguf *g) { return g->alignment; }
const uint8_t *mf_gguf_bytes(const mf_gguf *g) { return g->base; }
uint64_t mf_gguf_n_kv(const mf_gguf *g) { return g->n_kv; }
uint64_t mf_gguf_n_tensors(const mf_gguf *g) { return g->n_tensors; }

const mf_gguf_kv *mf_gguf_kv_at(const mf_gguf *g, uint64_t i) { return i < g->n_kv ? &g->kv[i] : NULL; }

const mf_gguf_kv *mf_gguf_find_kv(const mf_gguf *g, const char *key)
{
    int64_t i = find_name(g, g->kv_sorted, g->n_kv, kv_name, key);
    return i >= 0 ? &g->kv[i] : NULL;
}

const mf_gguf_tensor *mf_gguf_tensor_at(const mf_gguf *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const mf_gguf_tensor *mf_gguf_find_tensor(const mf_gguf *g, const char *name)
{
    int64_t i = find_name(g, g->t_sorted, g->n_tensors, t_name, name);
    return i >= 0 ? &g->tensors[i] : NULL;
}

static int is_int(uint32_t t)
{
    return t == MF_GGUF_U8 || t == MF_GGUF_I8 || t == MF_GGUF_U16 || t == MF_GGUF_I16 || t == MF_GGUF_U32 ||
           t == MF_GGUF_I32 || t == MF_GGUF_U64 || t == MF_GGUF_I64;
}
static int is_signed(uint32_t t) { return t == MF_GGUF_I8 || t == MF_GGUF_I16 || t == MF_GGUF_I32 || t == MF_GGUF_I64; }

static int wrong_type(const mf_gguf *g, const mf_gguf_kv *kv, const char *want, mf_err *err)
{
    return gerr(err, "%s: offset %llu: key '%s' has type %s, expected %s", g->path, (unsigned long long)kv->offset,
                kv->key, mf_gguf_vtype_name(kv->type), want);
}

static int missing(const mf_gguf *g, const char *key, mf_err *err)
{
    return gerr(err, "%s: required metadata key '%s' is missing", g->path, key);
}

static int kv_u32(const mf_gguf *g, const mf_gguf_kv *kv, uint32_t *out, mf_err *err)
{
    if (!is_int(kv->type)) return wrong_type(g, kv, "UINT32", err);
    if (is_signed(kv->type) ? (kv->v.i < 0 || kv->v.i > (int64_t)UINT32_MAX) : kv->v.u > UINT32_MAX)
        return gerr(err, "%s: offset %llu: key '%s' value out of range for UINT32", g->path,
                    (unsigned long long)kv->offset, kv->key);
    *out = (uint32_t)(is_signed(kv->type) ? (uint64_t)kv->v.i : kv->v.u);
    return 0;
}

static int kv_f32(const mf_gguf *g, const mf_gguf_kv *kv, float *out, mf_err *err)
{
    if (kv->type != MF_GGUF_F32 && kv->type != MF_GGUF_F64) return wrong_type(g, kv, "FLOAT32", err);
    *out = (float)kv->v.f;
    return 0;
}

int mf_gguf_get_u32(const mf_gguf *g, const char *key, uint32_t *out, mf_err *err)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    return kv ? kv_u32(g, kv, out, err) : missing(g, key, err);
}

int mf_gguf_get_f32(const mf_gguf *g, const char *key, float *out, mf_err *err)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    return kv ? kv_f32(g, kv, out, err) : missing(g, key, err);
}

int mf_gguf_get_str(const mf_gguf *g, const char *key, const char **out, mf_err *err)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) return missing(g, key, err);
    if (kv->type != MF_GGUF_STR) return wrong_type(g, kv, "STRING", err);
    *out = kv->str;
    return 0;
}

int mf_gguf_opt_u32(const mf_gguf *g, const char *key, uint32_t def, uint32_t *out, mf_err *err)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    return kv_u32(g, kv, out, err);
}

int mf_gguf_opt_f32(const mf_gguf *g, const char *key, float def, float *out, mf_err *err)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    return kv_f32(g, kv, out, err);
}

int mf_gguf_opt_bool(const mf_gguf *g, const char *key, int def, int *out, mf_err *err)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    if (kv->type != MF_GGUF_BOOL) return wrong_type(g, kv, "BOOL", err);
    *out = (int)kv->v.u;
    return 0;
}

int mf_gguf_opt_str(const mf_gguf *g, const char *key, const char *def, const char **out, mf_err *err)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    if (kv->type != MF_GGUF_STR) return wrong_type(g, kv, "STRING", err);
    *out = kv->str;
    return 0;
}

int mf_gguf_get_arr(const mf_gguf *g, const char *key, uint32_t elem_type, const mf_gguf_kv **out, mf_err *err)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) return missing(g, key, err);
    if (kv->type != MF_GGUF_ARR || kv->arr_type != elem_type) {
        char want[64];
        snprintf(want, sizeof want, "ARRAY of %s", mf_gguf_vtype_name(elem_type));
        if (kv->type == MF_GGUF_ARR)
            return gerr(err, "%s: offset %llu: key '%s' is an ARRAY of %s, expected %s", g->path,
                        (unsigned long long)kv->offset, key, mf_gguf_vtype_name(kv->arr_type), want);
        return wrong_type(g, kv, want, err);
    }
    *out = kv;
    return 0;
}

float mf_gguf_arr_f32(const mf_gguf_kv *kv, uint64_t i)
{
    float f;
    memcpy(&f, kv->arr_data + 4 * i, 4);
    return f;
}

int32_t mf_gguf_arr_i32(const mf_gguf_kv *kv, uint64_t i)
{
    int32_t v;
    memcpy(&v, kv->arr_data + 4 * i, 4);
    return v;
}

uint32_t mf_gguf_arr_u32(const mf_gguf_kv *kv, uint64_t i)
{
    uint32_t v;
    memcpy(&v, kv->arr_data + 4 * i, 4);
    return v;
}
