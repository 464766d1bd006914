/* gguf.h — reading and writing GGUF files (docs/gguf.md).
 *
 * Reader contract
 *   - The file is mapped read-only (mmap). Tensor data pointers and array payloads point
 *     into the mapping: nothing is copied at open, so a 12 GB model opens in milliseconds
 *     and costs no RAM until its pages are touched.
 *   - The file is untrusted input. mf_gguf_open() validates every field before using it
 *     (docs/gguf.md §3: bounds of every read, counts vs remaining bytes, overflow-checked sizes,
 *     names, duplicates, alignment, offsets, overlaps). On failure it returns NULL and one
 *     line "FILE: offset N: what is wrong" in err.
 *   - Tensor type ids that the format does not define (>= 43 or removed) are rejected at
 *     open; valid types without a minfer kernel are accepted here and rejected by the model
 *     loader (so `minfer inspect` can still show them).
 *   - Versions 2 and 3, little-endian only.
 *
 * Writer contract
 *   - Build a file in memory (metadata of any type, tensor descriptions), then write it:
 *     header, metadata, tensor infos, padding, tensor data, each tensor aligned.
 *   - Tensor bytes come either from a caller pointer (kept, not copied: it must stay valid
 *     until the write) or from a fill callback invoked once per tensor at write time, so a
 *     multi-GB synthetic model is streamed through one tensor-sized buffer.
 *   - Never a partial file under the final name: the file is written to a temporary name
 *     beside it (PATH.partPID-N), flushed to disk (fsync) and renamed over PATH only when
 *     complete; on any failure (full disk, file-size limit, a fill error) the temporary
 *     file is removed and an existing PATH is left as it was. (An existing PATH that is not
 *     a regular file, e.g. /dev/null or a FIFO, is written in place.)
 */
#ifndef MF_GGUF_H
#define MF_GGUF_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* metadata value types (docs/gguf.md §2) */
enum mf_gguf_vtype {
    MF_GGUF_U8 = 0,
    MF_GGUF_I8 = 1,
    MF_GGUF_U16 = 2,
    MF_GGUF_I16 = 3,
    MF_GGUF_U32 = 4,
    MF_GGUF_I32 = 5,
    MF_GGUF_F32 = 6,
    MF_GGUF_BOOL = 7,
    MF_GGUF_STR = 8,
    MF_GGUF_ARR = 9,
    MF_GGUF_U64 = 10,
    MF_GGUF_I64 = 11,
    MF_GGUF_F64 = 12,
    MF_GGUF_VTYPE_COUNT = 13
};

#define MF_GGUF_DEFAULT_ALIGNMENT 32
#define MF_GGUF_MAX_NAME 64            /* tensor names are < 64 bytes */
#define MF_GGUF_MAX_ARRAY (1ull << 30) /* llama.cpp's caps, adopted (docs/gguf.md §3) */
#define MF_GGUF_MAX_STRING (1ull << 30)

/* A string inside the mapping: not NUL-terminated. */
typedef struct mf_str {
    const char *ptr;
    uint64_t len;
} mf_str;

typedef struct mf_gguf_kv {
    const char *key; /* NUL-terminated copy */
    uint32_t type;   /* enum mf_gguf_vtype */
    uint64_t offset; /* file offset of the record (for messages) */
    /* scalars: the value, widened */
    union {
        uint64_t u;
        int64_t i;
        double f;
    } v;
    /* STR: NUL-terminated copy of the value (str_len bytes, may contain NULs) */
    const char *str;
    uint64_t str_len;
    /* ARR: element type, count, raw little-endian payload (fixed-size elements, possibly
     * unaligned: read with the accessors below), and for string arrays one mf_str each */
    uint32_t arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;
    mf_str *arr_str;
} mf_gguf_kv;

typedef struct mf_gguf_tensor {
    char name[MF_GGUF_MAX_NAME];
    uint32_t type; /* ggml type id (types.h) */
    uint32_t n_dims;
    int64_t ne[4]; /* ne[0] fastest; missing dims are 1 */
    uint64_t n_elements;
    uint64_t nbytes;
    uint64_t offset;      /* relative to the data section, as stored */
    uint64_t info_offset; /* file offset of the tensor-info record (for messages) */
    const void *data;     /* into the mapping */
} mf_gguf_tensor;

typedef struct mf_gguf mf_gguf;

/* Open and validate. NULL on error (err names the file, the offset and the problem). */
mf_gguf *mf_gguf_open(const char *path, mf_err *err);
/* Same over a caller-owned buffer (tests, fuzzing). `name` is used in messages. The buffer
 * must outlive the returned handle. */
mf_gguf *mf_gguf_open_memory(const void *data, size_t size, const char *name, mf_err *err);
void mf_gguf_close(mf_gguf *g);

const char *mf_gguf_path(const mf_gguf *g);
uint32_t mf_gguf_version(const mf_gguf *g);
uint64_t mf_gguf_file_size(const mf_gguf *g);
uint64_t mf_gguf_data_offset(const mf_gguf *g);
/* 1 when the bytes are a file mapping (mf_gguf_open), 0 for a caller's buffer (a page of
 * the mapping may be dropped with MADV_DONTNEED and reads back the file; a buffer may not). */
int mf_gguf_mapped(const mf_gguf *g);
uint32_t mf_gguf_alignment(const mf_gguf *g);
/* The file's bytes (the mapping, or the buffer of mf_gguf_open_memory), file_size of them. */
const uint8_t *mf_gguf_bytes(const mf_gguf *g);

/* metadata */
uint64_t mf_gguf_n_kv(const mf_gguf *g);
const mf_gguf_kv *mf_gguf_kv_at(const mf_gguf *g, uint64_t i);
const mf_gguf_kv *mf_gguf_find_kv(const mf_gguf *g, const char *key);
const char *mf_gguf_vtype_name(uint32_t type);

/* Typed lookups. mf_gguf_get_*: missing key or wrong type -> -1 with a message naming the
 * key, the expected and the found type. mf_gguf_opt_*: a missing key leaves *out = def and
 * returns 0; a wrong type is still an error. Integer getters accept any integer type whose
 * value fits (a UINT32 key written as INT32 by some converter is still read), floats accept
 * F32/F64. */
int mf_gguf_get_u32(const mf_gguf *g, const char *key, uint32_t *out, mf_err *err);
int mf_gguf_get_f32(const mf_gguf *g, const char *key, float *out, mf_err *err);
int mf_gguf_get_str(const mf_gguf *g, const char *key, const char **out, mf_err *err);
int mf_gguf_opt_u32(const mf_gguf *g, const char *key, uint32_t def, uint32_t *out, mf_err *err);
int mf_gguf_opt_f32(const mf_gguf *g, const char *key, float def, float *out, mf_err *err);
int mf_gguf_opt_bool(const mf_gguf *g, const char *key, int def, int *out, mf_err *err);
int mf_gguf_opt_str(const mf_gguf *g, const char *key, const char *def, const char **out, mf_err *err);
/* An array of elem_type (any count); -1 if missing, not an array, or of another type. */
int mf_gguf_get_arr(const mf_gguf *g, const char *key, uint32_t elem_type, const mf_gguf_kv **out, mf_err *err);

/* element accessors for fixed-size arrays (index must be < arr_n) */
float mf_gguf_arr_f32(const mf_gguf_kv *kv, uint64_t i);
int32_t mf_gguf_arr_i32(const mf_gguf_kv *kv, uint64_t i);
uint32_t mf_gguf_arr_u32(const mf_gguf_kv *kv, uint64_t i);

/* tensors */
uint64_t mf_gguf_n_tensors(const mf_gguf *g);
const mf_gguf_tensor *mf_gguf_tensor_at(const mf_gguf *g, uint64_t i);
const mf_gguf_tensor *mf_gguf_find_tensor(const mf_gguf *g, const char *name);

/* ------------------------------------------------------------------ writer */

typedef struct mf_gguf_writer mf_gguf_writer;

/* Called once per tensor whose data pointer was NULL, at write time, to fill `buf`
 * (nbytes long) with the tensor's bytes. Return 0, or -1 with a message in err. */
typedef int (*mf_gguf_fill_fn)(void *user, uint64_t index, const mf_gguf_tensor *t, void *buf, mf_err *err);

mf_gguf_writer *mf_gguf_writer_new(void);
void mf_gguf_writer_free(mf_gguf_writer *w);
/* Version written in the header (default 3). */
void mf_gguf_w_set_version(mf_gguf_writer *w, uint32_t version);
/* Sparse mode: the header is complete and the file has its full size, but the tensor bytes
 * are left as holes (they read as zeros and take no disk space): a real-shaped file for
 * `inspect` and `plan` without generating gigabytes of weights. */
void mf_gguf_w_set_sparse(mf_gguf_writer *w, int on);
/* Cancellation: when *flag becomes non-zero (a driver's SIGINT/SIGTERM handler sets it) the
 * write stops before the next tensor and fails like any other write: the temporary file
 * is removed and nothing appears under the final name. flag may be NULL. */
void mf_gguf_w_set_cancel(mf_gguf_writer *w, const volatile sig_atomic_t *flag);

/* Scalars and strings. Keys are copied. general.alignment written with mf_gguf_w_u32 also
 * sets the alignment used for the data layout. Return 0 or -1 (out of memory). */
int mf_gguf_w_u8(mf_gguf_writer *w, const char *key, uint8_t v);
int mf_gguf_w_i8(mf_gguf_writer *w, const char *key, int8_t v);
int mf_gguf_w_u16(mf_gguf_writer *w, const char *key, uint16_t v);
int mf_gguf_w_i16(mf_gguf_writer *w, const char *key, int16_t v);
int mf_gguf_w_u32(mf_gguf_writer *w, const char *key, uint32_t v);
int mf_gguf_w_i32(mf_gguf_writer *w, const char *key, int32_t v);
int mf_gguf_w_f32(mf_gguf_writer *w, const char *key, float v);
int mf_gguf_w_bool(mf_gguf_writer *w, const char *key, int v);
int mf_gguf_w_str(mf_gguf_writer *w, const char *key, const char *v);
int mf_gguf_w_strn(mf_gguf_writer *w, const char *key, const char *v, uint64_t len);
int mf_gguf_w_u64(mf_gguf_writer *w, const char *key, uint64_t v);
int mf_gguf_w_i64(mf_gguf_writer *w, const char *key, int64_t v);
int mf_gguf_w_f64(mf_gguf_writer *w, const char *key, double v);
/* Bytes of one value of a fixed-size type (1 for BOOL); 0 for STR, ARR and invalid ids. */
size_t mf_gguf_vtype_size(uint32_t type);
/* Array of fixed-size elements: n elements of elem_type taken (copied) from data, which
 * holds them in host order (little-endian on every machine minfer targets). */
int mf_gguf_w_arr(mf_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n);
/* Array of strings (copied). lens may be NULL for NUL-terminated strings. */
int mf_gguf_w_arr_str(mf_gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens, uint64_t n);
/* Copy one key/value record verbatim from an open file (e.g. the tokenizer of another
 * model, `mkmodel --vocab-from`). */
int mf_gguf_w_copy_kv(mf_gguf_writer *w, const mf_gguf_kv *kv);

/* Describe a tensor; ne has n_dims entries. data may be NULL (then the fill callback
 * supplies it). Returns the tensor's index or -1 (bad name/type/shape, with err). */
int64_t mf_gguf_w_tensor(mf_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                         const void *data, mf_err *err);

/* Write the whole file. Returns 0 or -1 with err naming the path. */
int mf_gguf_w_write(mf_gguf_writer *w, const char *path, mf_gguf_fill_fn fill, void *user, mf_err *err);

#endif
