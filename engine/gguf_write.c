/* gguf_write.c — a small GGUF writer (docs/gguf.md). Used by the tests to build valid and
 * deliberately broken files, and by mkmodel to stream multi-GB synthetic models.
 *
 * Metadata records are serialized into one growing byte buffer as they are added; tensor
 * infos are kept as descriptions and laid out at write time the way every known writer does
 * it (docs/gguf.md §2): in record order, each at the previous offset plus its size rounded up
 * to the alignment.
 */
#include "gguf.h"
#include "types.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct wtensor {
    mf_gguf_tensor info;
    const void *data;
} wtensor;

struct mf_gguf_writer {
    uint32_t version, alignment;
    uint8_t *kv; /* serialized metadata records */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    wtensor *t;
    uint64_t n_t, t_cap;
    int oom;                             /* sticky allocation failure */
    int sparse;                          /* leave tensor data as holes (mf_gguf_w_set_sparse) */
    const volatile sig_atomic_t *cancel; /* mf_gguf_w_set_cancel, may be NULL */
};

mf_gguf_writer *mf_gguf_writer_new(void)
{
    mf_gguf_writer *w = calloc(1, sizeof *w);
    if (w) {
        w->version = 3;
        w->alignment = MF_GGUF_DEFAULT_ALIGNMENT;
    }
    return w;
}

void mf_gguf_writer_free(mf_gguf_writer *w)
{
    if (!w) return;
    free(w->kv);
    free(w->t);
    free(w);
}

void mf_gguf_w_set_version(mf_gguf_writer *w, uint32_t version) { w->version = version; }
void mf_gguf_w_set_sparse(mf_gguf_writer *w, int on) { w->sparse = on; }
void mf_gguf_w_set_cancel(mf_gguf_writer *w, const volatile sig_atomic_t *flag) { w->cancel = flag; }

static int put(mf_gguf_writer *w, const void *p, size_t n)
{
    if (w->oom) return -1;
    if (n == 0) return 0; /* an empty array or string may come with a NULL pointer */
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n) cap *= 2;
        uint8_t *b = realloc(w->kv, cap);
        if (!b) {
            w->oom = 1;
            return -1;
        }
        w->kv = b;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return 0;
}

/* little-endian integer of n bytes */
static int put_le(mf_gguf_writer *w, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    return put(w, b, (size_t)n);
}

static int put_str(mf_gguf_writer *w, const char *s, uint64_t len)
{
    return put_le(w, len, 8) || put(w, s, (size_t)len) ? -1 : 0;
}

static int begin(mf_gguf_writer *w, const char *key, uint32_t type)
{
    w->n_kv++;
    return put_str(w, key, strlen(key)) || put_le(w, type, 4) ? -1 : 0;
}

#define W_SCALAR(fn, ctype, vt, nbytes)                               \
    int fn(mf_gguf_writer *w, const char *key, ctype v)               \
    {                                                                 \
        uint64_t bits = 0;                                            \
        memcpy(&bits, &v, sizeof v);                                  \
        return begin(w, key, vt) || put_le(w, bits, nbytes) ? -1 : 0; \
    }
W_SCALAR(mf_gguf_w_u8, uint8_t, MF_GGUF_U8, 1)
W_SCALAR(mf_gguf_w_i8, int8_t, MF_GGUF_I8, 1)
W_SCALAR(mf_gguf_w_u16, uint16_t, MF_GGUF_U16, 2)
W_SCALAR(mf_gguf_w_i16, int16_t, MF_GGUF_I16, 2)
W_SCALAR(mf_gguf_w_i32, int32_t, MF_GGUF_I32, 4)
W_SCALAR(mf_gguf_w_f32, float, MF_GGUF_F32, 4)
W_SCALAR(mf_gguf_w_u64, uint64_t, MF_GGUF_U64, 8)
W_SCALAR(mf_gguf_w_i64, int64_t, MF_GGUF_I64, 8)
W_SCALAR(mf_gguf_w_f64, double, MF_GGUF_F64, 8)
#undef W_SCALAR

int mf_gguf_w_u32(mf_gguf_writer *w, const char *key, uint32_t v)
{
    /* a valid general.alignment also governs the layout written below */
    if (strcmp(key, "general.alignment") == 0 && v && !(v & (v - 1))) w->alignment = v;
    return begin(w, key, MF_GGUF_U32) || put_le(w, v, 4) ? -1 : 0;
}

int mf_gguf_w_bool(mf_gguf_writer *w, const char *key, int v)
{
    return begin(w, key, MF_GGUF_BOOL) || put_le(w, v ? 1 : 0, 1) ? -1 : 0;
}

int mf_gguf_w_strn(mf_gguf_writer *w, const char *key, const char *v, uint64_t len)
{
    return begin(w, key, MF_GGUF_STR) || put_str(w, v, len) ? -1 : 0;
}

int mf_gguf_w_str(mf_gguf_writer *w, const char *key, const char *v) { return mf_gguf_w_strn(w, key, v, strlen(v)); }

static const uint8_t ELEM_SIZE[MF_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

size_t mf_gguf_vtype_size(uint32_t type) { return type < MF_GGUF_VTYPE_COUNT ? ELEM_SIZE[type] : 0; }

int mf_gguf_w_arr(mf_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n)
{
    if (elem_type >= MF_GGUF_VTYPE_COUNT || ELEM_SIZE[elem_type] == 0) return -1;
    if (begin(w, key, MF_GGUF_ARR) || put_le(w, elem_type, 4) || put_le(w, n, 8)) return -1;
    return put(w, data, (size_t)(n * ELEM_SIZE[elem_type]));
}

int mf_gguf_w_arr_str(mf_gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens, uint64_t n)
{
    if (begin(w, key, MF_GGUF_ARR) || put_le(w, MF_GGUF_STR, 4) || put_le(w, n, 8)) return -1;
    for (uint64_t i = 0; i < n; i++)
        if (put_str(w, strs[i], lens ? lens[i] : strlen(strs[i]))) return -1;
    return 0;
}

int mf_gguf_w_copy_kv(mf_gguf_writer *w, const mf_gguf_kv *kv)
{
    if (kv->type == MF_GGUF_STR) return mf_gguf_w_strn(w, kv->key, kv->str, kv->str_len);
    if (kv->type == MF_GGUF_ARR) {
        if (kv->arr_type != MF_GGUF_STR) return mf_gguf_w_arr(w, kv->key, kv->arr_type, kv->arr_data, kv->arr_n);
        if (begin(w, kv->key, MF_GGUF_ARR) || put_le(w, MF_GGUF_STR, 4) || put_le(w, kv->arr_n, 8)) return -1;
        for (uint64_t i = 0; i < kv->arr_n; i++)
            if (put_str(w, kv->arr_str[i].ptr, kv->arr_str[i].len)) return -1;
        return 0;
    }
    if (kv->type == MF_GGUF_U32) return mf_gguf_w_u32(w, kv->key, (uint32_t)kv->v.u);
    uint64_t bits = kv->v.u;
    if (kv->type == MF_GGUF_F32) {
        float f = (float)kv->v.f;
        uint32_t b;
        memcpy(&b, &f, 4);
        bits = b;
    }
    return begin(w, kv->key, kv->type) || put_le(w, bits, ELEM_SIZE[kv->type]) ? -1 : 0;
}

int64_t mf_gguf_w_tensor(mf_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                         const void *data, mf_err *err)
{
    size_t len = strlen(name);
    const mf_type_info *ti = mf_type_get(type);
    char tb[32];
    if (len == 0 || len >= MF_GGUF_MAX_NAME)
        return mf_errf(err, "tensor name '%s' must have 1..%d bytes", name, MF_GGUF_MAX_NAME - 1);
    if (!ti) return mf_errf(err, "tensor '%s': invalid type %s", name, mf_type_name(type, tb));
    if (n_dims < 1 || n_dims > 4) return mf_errf(err, "tensor '%s': %u dimensions", name, n_dims);
    if (w->n_t == w->t_cap) {
        uint64_t cap = w->t_cap ? 2 * w->t_cap : 64;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return mf_errf(err, "out of memory");
        w->t = t;
        w->t_cap = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    memcpy(t->info.name, name, len + 1);
    t->info.type = type;
    t->info.n_dims = n_dims;
    uint64_t n_el = 1;
    for (uint32_t j = 0; j < 4; j++) {
        t->info.ne[j] = j < n_dims ? ne[j] : 1;
        if (t->info.ne[j] <= 0)
            return mf_errf(err, "tensor '%s': dimension %u is %lld", name, j, (long long)t->info.ne[j]);
        if (n_el > (uint64_t)INT64_MAX / (uint64_t)t->info.ne[j]) /* what the reader demands */
            return mf_errf(err, "tensor '%s': element count overflows", name);
        n_el *= (uint64_t)t->info.ne[j];
    }
    if (t->info.ne[0] % ti->blck)
        return mf_errf(err, "tensor '%s': row of %lld is not a multiple of the %s block %u", name,
                       (long long)t->info.ne[0], ti->name, ti->blck);
    t->info.n_elements = n_el;
    if (n_el / ti->blck > (uint64_t)INT64_MAX / ti->size) /* what the reader demands */
        return mf_errf(err, "tensor '%s': byte size overflows", name);
    t->info.nbytes = n_el / ti->blck * ti->size;
    t->data = data;
    return (int64_t)w->n_t++;
}

static int wr(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1; }

static int wr_le(FILE *f, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    return wr(f, b, (size_t)n);
}

static int pad_to(FILE *f, uint64_t *pos, uint64_t align)
{
    static const uint8_t zeros[256];
    uint64_t target = (*pos + align - 1) / align * align;
    while (*pos < target) {
        size_t n = target - *pos > sizeof zeros ? sizeof zeros : (size_t)(target - *pos);
        if (wr(f, zeros, n)) return -1;
        *pos += n;
    }
    return 0;
}

/* The data layout: each tensor's offset in record order, each rounded up to the alignment.
 * -1 when the data section would not fit in an off_t (huge shapes: the reader would reject
 * the wrapped offsets, and the file system could not hold the file). */
static int layout(mf_gguf_writer *w, const char *path, mf_err *err)
{
    uint64_t off = 0, a = w->alignment, lim = (uint64_t)INT64_MAX;
    for (uint64_t i = 0; i < w->n_t; i++) {
        mf_gguf_tensor *t = &w->t[i].info;
        uint64_t padded = t->nbytes / a * a + (t->nbytes % a ? a : 0);
        if (t->nbytes > lim - a || off > lim - padded)
            return mf_errf(err, "%s: tensor '%s' does not fit: the data section would exceed %llu bytes", path, t->name,
                           (unsigned long long)lim);
        t->offset = off;
        off += padded;
    }
    return 0;
}

/* Header, metadata, tensor infos (offsets from layout()) and data into an open stream;
 * err names `path`. */
static int write_stream(mf_gguf_writer *w, FILE *f, const char *path, mf_gguf_fill_fn fill, void *user, mf_err *err)
{
    int rc = -1;
    void *buf = NULL;
    uint64_t pos = 0;

    /* header + metadata */
    if (wr(f, "GGUF", 4) || wr_le(f, w->version, 4) || wr_le(f, w->n_t, 8) || wr_le(f, w->n_kv, 8) ||
        wr(f, w->kv, w->kv_len))
        goto io_error;
    pos = 24 + w->kv_len;

    /* tensor infos, with the offsets of layout() */
    for (uint64_t i = 0; i < w->n_t; i++) {
        mf_gguf_tensor *t = &w->t[i].info;
        size_t nl = strlen(t->name);
        if (wr_le(f, nl, 8) || wr(f, t->name, nl) || wr_le(f, t->n_dims, 4)) goto io_error;
        for (uint32_t j = 0; j < t->n_dims; j++)
            if (wr_le(f, (uint64_t)t->ne[j], 8)) goto io_error;
        if (wr_le(f, t->type, 4) || wr_le(f, t->offset, 8)) goto io_error;
        pos += 8 + nl + 4 + 8 * t->n_dims + 4 + 8;
    }
    if (w->n_t && pad_to(f, &pos, w->alignment)) goto io_error;

    /* data, each tensor padded to the alignment */
    for (uint64_t i = 0; i < w->n_t; i++) {
        mf_gguf_tensor *t = &w->t[i].info;
        const void *src = w->t[i].data;
        if (w->cancel && *w->cancel) {
            mf_errf(err, "%s: interrupted before tensor '%s'; nothing was written", path, t->name);
            goto done;
        }
        if (w->sparse) {
            /* a hole the size of the tensor: the file system stores no blocks for it */
            if (fseeko(f, (off_t)t->nbytes, SEEK_CUR) != 0) goto io_error;
            pos += t->nbytes;
            if (i + 1 < w->n_t &&
                fseeko(f, (off_t)((pos + w->alignment - 1) / w->alignment * w->alignment - pos), SEEK_CUR) != 0)
                goto io_error;
            if (i + 1 < w->n_t) pos = (pos + w->alignment - 1) / w->alignment * w->alignment;
            continue;
        }
        if (!src) {
            if (!fill) {
                mf_errf(err, "%s: tensor '%s' has no data and no fill callback", path, t->name);
                goto done;
            }
            free(buf);
            buf = malloc(t->nbytes ? t->nbytes : 1);
            if (!buf) {
                mf_errf(err, "%s: out of memory for tensor '%s' (%llu bytes)", path, t->name,
                        (unsigned long long)t->nbytes);
                goto done;
            }
            if (fill(user, i, t, buf, err)) goto done;
            src = buf;
        }
        if (wr(f, src, t->nbytes)) goto io_error;
        pos += t->nbytes;
        if (i + 1 < w->n_t && pad_to(f, &pos, w->alignment)) goto io_error;
    }
    /* a file that ends in a hole needs its length set explicitly */
    if (w->sparse && (fflush(f) != 0 || ftruncate(fileno(f), (off_t)pos) != 0)) goto io_error;
    if (fflush(f) != 0) goto io_error;
    rc = 0;
    goto done;
io_error:
    mf_errf(err, "%s: write failed: %s", path, strerror(errno));
done:
    free(buf);
    return rc;
}

int mf_gguf_w_write(mf_gguf_writer *w, const char *path, mf_gguf_fill_fn fill, void *user, mf_err *err)
{
    if (w->oom) return mf_errf(err, "%s: out of memory while building metadata", path);
    if (layout(w, path, err)) return -1;
    /* an existing device or pipe (/dev/null, a FIFO) is written in place: it cannot be
     * replaced by a rename (and must not be: a temporary file beside /dev/null renamed over
     * it would replace the device), and holds no earlier file to protect */
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        FILE *f = fopen(path, "wb");
        if (!f) return mf_errf(err, "%s: cannot create: %s", path, strerror(errno));
        int rc = write_stream(w, f, path, fill, user, err);
        if (fclose(f) != 0 && rc == 0) rc = mf_errf(err, "%s: write failed: %s", path, strerror(errno));
        return rc;
    }
    /* written under a temporary name beside the target, flushed to disk and renamed when
     * complete: a failed write (full disk, file-size limit, a fill error) never leaves a
     * partial file under the final name, nor the temporary one */
    char *tmp = malloc(strlen(path) + 32);
    if (!tmp) return mf_errf(err, "%s: out of memory", path);
    int fd = -1;
    for (int k = 0; k < 100 && fd < 0; k++) {
        sprintf(tmp, "%s.part%ld-%d", path, (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        mf_errf(err, "%s: cannot create: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return -1;
    }
    int rc = write_stream(w, f, path, fill, user, err);
    if (rc == 0 && fsync(fd) != 0) rc = mf_errf(err, "%s: write failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && rc == 0) rc = mf_errf(err, "%s: write failed: %s", path, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = mf_errf(err, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}
