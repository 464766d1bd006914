/* test_gguf_corrupt.c — the reader against malformed files (docs/gguf.md §3).
 *
 * Every malformed file is made here: most byte by byte with the small builder below (written
 * from docs/gguf.md, independent of engine/gguf_write.c, so that a shared misunderstanding of the
 * layout cannot hide), the truncation series from a valid file made by the writer, and a few
 * mutations of stories260K.gguf when it is present.
 *
 * Each case asserts three things: the file is rejected; the message carries the key phrase of
 * the check that should fire (so a file rejected for the wrong reason fails the test); and the
 * message starts with "NAME: offset N: " where N is the byte offset of the offending field,
 * computed while the file was built. A last group of odd-but-valid files must open.
 * Every rejected case is also kept, and the last test gives each one, written to a file, to
 * `minfer run`: the program must refuse it with the reader's message on one line and exit 1
 * — the whole corpus through the driver, not only through the reader.
 * Everything runs under ASan+UBSan in the sanitizer build.
 */
#include "harness.h"
#include "gguf.h"
#include "types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------------ byte builder */

typedef struct bb {
    uint8_t *p;
    size_t n, cap;
} bb;

static void bb_raw(bb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void bb_le(bb *b, uint64_t v, int n)
{
    uint8_t t[8];
    for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    bb_raw(b, t, (size_t)n);
}
static void bb_u8(bb *b, uint8_t v) { bb_le(b, v, 1); }
static void bb_u32(bb *b, uint32_t v) { bb_le(b, v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_le(b, v, 8); }
static void bb_zeros(bb *b, size_t n)
{
    while (n--) bb_u8(b, 0);
}
/* gguf_string (docs/gguf.md §1): u64 length, then the bytes */
static void bb_str(bb *b, const char *s)
{
    bb_u64(b, strlen(s));
    bb_raw(b, s, strlen(s));
}
static uint64_t at(const bb *b) { return b->n; }

static void hdr(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    bb_raw(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

/* KV records; each returns the offset of its value-type field (the record starts earlier) */
static uint64_t kv_u32(bb *b, const char *key, uint32_t v)
{
    bb_str(b, key);
    uint64_t o = at(b);
    bb_u32(b, MF_GGUF_U32);
    bb_u32(b, v);
    return o;
}

static uint64_t kv_str(bb *b, const char *key, const char *v)
{
    bb_str(b, key);
    uint64_t o = at(b);
    bb_u32(b, MF_GGUF_STR);
    bb_str(b, v);
    return o;
}

/* tensor info (docs/gguf.md §2); returns the offset of the record */
static uint64_t tinfo(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset)
{
    uint64_t o = at(b);
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t j = 0; j < n_dims; j++) bb_u64(b, ne[j]);
    bb_u32(b, type);
    bb_u64(b, offset);
    return o;
}

/* zero padding to the alignment, then n bytes of tensor data */
static void data(bb *b, uint32_t align, size_t n)
{
    while (b->n % align) bb_u8(b, 0);
    for (size_t i = 0; i < n; i++) bb_u8(b, (uint8_t)(0x5a ^ i));
}

/* ------------------------------------------------------------------ expectations */

/* Every case expect_reject_mem saw, for minfer_run_refuses_the_corpus (the last test). */
typedef struct corpus_case {
    uint8_t *bytes;
    size_t n;
    uint64_t off;
    char *phrase;
} corpus_case;
static corpus_case *corpus;
static size_t n_corpus, cap_corpus;

static void keep_case(const void *d, size_t n, uint64_t off, const char *phrase)
{
    /* the 2^30 caps are tested in a 1 GiB mapping that costs nothing until written: a copy
     * of it (and a 1 GiB file per case) would; those two stay memory-only */
    if (n > (16u << 20)) return;
    if (n_corpus == cap_corpus) {
        cap_corpus = cap_corpus ? 2 * cap_corpus : 256;
        corpus = realloc(corpus, cap_corpus * sizeof *corpus);
        assert_non_null(corpus);
    }
    corpus_case *c = &corpus[n_corpus++];
    c->bytes = malloc(n ? n : 1);
    c->phrase = strdup(phrase);
    assert_true(c->bytes && c->phrase);
    if (n) memcpy(c->bytes, d, n);
    c->n = n;
    c->off = off;
}

/* Reject `d`, with `phrase` in the message, which must begin "NAME: offset OFF: ". */
static void expect_reject_mem(const void *d, size_t n, const char *name, uint64_t off, const char *phrase)
{
    mf_err err;
    memset(&err, 0, sizeof err);
    mf_gguf *g = mf_gguf_open_memory(d, n, name, &err);
    if (g) {
        mf_gguf_close(g);
        fail_msg("%s: accepted, expected rejection with '%s'", name, phrase);
    }
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s: offset %llu: ", name, (unsigned long long)off);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
        fail_msg("%s: message '%s' does not start with '%s'", name, err.msg, prefix);
    if (!strstr(err.msg, phrase)) fail_msg("%s: message '%s' lacks '%s'", name, err.msg, phrase);
    if (strchr(err.msg, '\n')) fail_msg("%s: message has a newline", name);
    keep_case(d, n, off, phrase);
}

static void expect_reject(bb *b, uint64_t off, const char *phrase)
{
    expect_reject_mem(b->p, b->n, "case.gguf", off, phrase);
    free(b->p);
    *b = (bb){0}; /* ready for the next case */
}

static mf_gguf *expect_open(bb *b)
{
    mf_err err;
    mf_gguf *g = mf_gguf_open_memory(b->p, b->n, "ok.gguf", &err);
    if (!g) fail_msg("rejected a valid file: %s", err.msg);
    return g;
}

/* the one-tensor file most tensor cases patch: header, one KV, one tensor info, data */
static uint64_t one_tensor(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset,
                           size_t data_bytes)
{
    hdr(b, 3, 1, 1);
    kv_str(b, "general.architecture", "llama");
    uint64_t o = tinfo(b, name, n_dims, ne, type, offset);
    data(b, 32, data_bytes);
    return o;
}

/* offsets inside a tensor-info record whose name has `name_len` bytes and n_dims dims */
static uint64_t ti_ndims(uint64_t rec, size_t name_len) { return rec + 8 + name_len; }
static uint64_t ti_dim(uint64_t rec, size_t name_len, int j) { return rec + 8 + name_len + 4 + 8 * (uint64_t)j; }
static uint64_t ti_type(uint64_t rec, size_t name_len, uint32_t n_dims)
{
    return rec + 8 + name_len + 4 + 8 * (uint64_t)n_dims;
}
static uint64_t ti_offset(uint64_t rec, size_t name_len, uint32_t n_dims) { return ti_type(rec, name_len, n_dims) + 4; }

#define TEST(name) static void name(void **state)

/* ------------------------------------------------------------------ header */

TEST(empty_file_on_disk)
{
    (void)state;
    const char *p = mf_tmp_path("empty.gguf");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fclose(f);
    mf_err err;
    assert_null(mf_gguf_open(p, &err));
    char want[1024];
    snprintf(want, sizeof want, "%s: offset 0: file of 0 bytes is too small", p);
    assert_non_null(strstr(err.msg, want));
    unlink(p);
}

TEST(short_file_on_disk)
{
    (void)state;
    const char *p = mf_tmp_path("short.gguf");
    bb b = {0};
    hdr(&b, 3, 0, 0);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.p, 1, 23, f), 23);
    fclose(f);
    mf_err err;
    assert_null(mf_gguf_open(p, &err));
    char want[1024];
    snprintf(want, sizeof want, "%s: offset 0: file of 23 bytes is too small", p);
    assert_non_null(strstr(err.msg, want));
    free(b.p);
    unlink(p);
}

TEST(not_a_file)
{
    (void)state;
    mf_err err;
    assert_null(mf_gguf_open("/", &err));
    assert_non_null(strstr(err.msg, "/: not a regular file"));
    assert_null(mf_gguf_open("/nonexistent/model.gguf", &err));
    assert_non_null(strstr(err.msg, "/nonexistent/model.gguf: cannot open"));
}

TEST(short_in_memory)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 0);
    for (size_t n = 0; n < 24; n++) expect_reject_mem(b.p, n, "short.gguf", 0, "too small");
    expect_reject_mem(NULL, 0, "null.gguf", 0, "too small");
    free(b.p);
}

TEST(bad_magic)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 0);
    memcpy(b.p, "GGML", 4);
    expect_reject(&b, 0, "bad magic 47 47 4d 4c");
    hdr(&b, 3, 0, 0);
    memcpy(b.p, "gguf", 4);
    expect_reject(&b, 0, "bad magic");
}

TEST(bad_versions)
{
    (void)state;
    bb b = {0};
    hdr(&b, 0, 0, 0);
    expect_reject(&b, 4, "unsupported GGUF version 0");
    hdr(&b, 1, 0, 0);
    expect_reject(&b, 4, "version 1 is obsolete");
    hdr(&b, 4, 0, 0);
    expect_reject(&b, 4, "unsupported GGUF version 4");
    hdr(&b, 0xFFFFFFFFu, 0, 0);
    expect_reject(&b, 4, "unsupported GGUF version 4294967295");
}

TEST(big_endian)
{
    (void)state;
    bb b = {0};
    hdr(&b, 0x03000000u, 0, 0); /* a v3 file written big-endian, read little-endian (docs/gguf.md §2) */
    expect_reject(&b, 4, "big-endian GGUF not supported (version field 0x03000000)");
    hdr(&b, 0x02000000u, 0, 0);
    expect_reject(&b, 4, "big-endian");
}

TEST(huge_counts)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 1ull << 63, 0);
    expect_reject(&b, 8, "tensor count 9223372036854775808 is impossible");
    hdr(&b, 3, UINT64_MAX, 0);
    expect_reject(&b, 8, "tensor count 18446744073709551615 is impossible");
    hdr(&b, 3, 0, 1ull << 63);
    expect_reject(&b, 16, "metadata count 9223372036854775808 is impossible");
    hdr(&b, 3, 0, UINT64_MAX);
    expect_reject(&b, 16, "metadata count 18446744073709551615 is impossible");
}

/* docs/gguf.md §3: counts just beyond what the bytes can hold (14 per KV, 25 per tensor info) */
TEST(counts_past_file)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 3);
    bb_zeros(&b, 2 * 14 + 13);
    expect_reject(&b, 16, "metadata count 3 is impossible for a file of 65 bytes");
    hdr(&b, 3, 2, 0);
    bb_zeros(&b, 49);
    expect_reject(&b, 8, "tensor count 2 is impossible");
    hdr(&b, 3, 1, 1); /* 25 + 14 = 39 needed, 38 there */
    bb_zeros(&b, 38);
    expect_reject(&b, 16, "metadata count 1 is impossible");
}

/* ------------------------------------------------------------------ strings */

TEST(key_length_past_eof)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_u64(&b, 1000);
    bb_raw(&b, "general.name", 12);
    expect_reject(&b, 24, "metadata key length 1000 runs past end of file (12 bytes remain)");
}

TEST(key_length_huge)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_u64(&b, 1ull << 63);
    bb_zeros(&b, 16);
    expect_reject(&b, 24, "metadata key length 9223372036854775808 exceeds the limit");
    hdr(&b, 3, 0, 1);
    bb_u64(&b, UINT64_MAX);
    bb_zeros(&b, 16);
    expect_reject(&b, 24, "metadata key length 18446744073709551615 exceeds the limit");
}

TEST(string_value_past_eof)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    uint64_t o = kv_str(&b, "general.name", "x");
    b.n -= 9; /* drop the value, then write a length with too few bytes after it */
    bb_u64(&b, 100);
    bb_raw(&b, "abc", 3);
    expect_reject(&b, o + 4, "string value length 100 runs past end of file (3 bytes remain)");
    hdr(&b, 3, 0, 1);
    o = kv_str(&b, "general.name", "x");
    b.n -= 9;
    bb_u64(&b, UINT64_MAX);
    expect_reject(&b, o + 4, "string value length 18446744073709551615 exceeds the limit");
}

TEST(array_string_past_eof)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "tokenizer.ggml.tokens");
    bb_u32(&b, MF_GGUF_ARR);
    bb_u32(&b, MF_GGUF_STR);
    bb_u64(&b, 3);
    bb_str(&b, "<unk>");
    uint64_t o = at(&b);
    bb_u64(&b, 1ull << 40); /* second string: 1 TiB */
    bb_zeros(&b, 8);
    expect_reject(&b, o, "array string length 1099511627776 exceeds the limit");
    hdr(&b, 3, 0, 1);
    bb_str(&b, "tokenizer.ggml.tokens");
    bb_u32(&b, MF_GGUF_ARR);
    bb_u32(&b, MF_GGUF_STR);
    bb_u64(&b, 2);
    o = at(&b);
    bb_u64(&b, 20);
    bb_raw(&b, "short", 5);
    bb_zeros(&b, 3);
    expect_reject(&b, o, "array string length 20 runs past end of file (8 bytes remain)");
}

TEST(tensor_name_past_eof)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 1, 0);
    bb_u64(&b, 64);
    bb_zeros(&b, 30);
    expect_reject(&b, 24, "tensor name length 64 runs past end of file");
    hdr(&b, 3, 1, 0);
    bb_u64(&b, UINT64_MAX);
    bb_zeros(&b, 30);
    expect_reject(&b, 24, "tensor name length 18446744073709551615 exceeds the limit");
}

/* The 2^30 caps (docs/gguf.md §3) can only fire on a file larger than 1 GiB: map 1 GiB + a page of
 * untouched anonymous memory (free until written) and put the record at its start. */
TEST(caps_need_a_gigabyte)
{
    (void)state;
    size_t n = (1ull << 30) + 4096;
    uint8_t *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        mf_skip("cannot map 1 GiB of address space");
        return;
    }
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_u64(&b, MF_GGUF_MAX_STRING + 1);
    memcpy(m, b.p, b.n);
    expect_reject_mem(m, n, "big.gguf", 24, "metadata key length 1073741825 exceeds the limit of 1073741824 bytes");
    free(b.p);
    b = (bb){0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, MF_GGUF_ARR);
    bb_u32(&b, MF_GGUF_U8);
    uint64_t o = at(&b);
    bb_u64(&b, MF_GGUF_MAX_ARRAY + 1);
    memcpy(m, b.p, b.n);
    expect_reject_mem(m, n, "big.gguf", o, "array count 1073741825 exceeds the limit of 1073741824 elements");
    free(b.p);
    munmap(m, n);
}

/* ------------------------------------------------------------------ arrays and value types */

TEST(array_count_past_eof)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "tokenizer.ggml.scores");
    bb_u32(&b, MF_GGUF_ARR);
    bb_u32(&b, MF_GGUF_F32);
    uint64_t o = at(&b);
    bb_u64(&b, 1000);
    bb_zeros(&b, 40);
    expect_reject(&b, o, "array of 1000 FLOAT32 elements runs past end of file (40 bytes remain)");
}

TEST(array_count_huge)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "a");
    bb_u32(&b, MF_GGUF_ARR);
    bb_u32(&b, MF_GGUF_U64);
    uint64_t o = at(&b);
    bb_u64(&b, 1ull << 63); /* times 8 bytes: 2^66, would wrap to 0 unchecked */
    bb_zeros(&b, 8);
    expect_reject(&b, o, "array count 9223372036854775808 exceeds the limit");
    hdr(&b, 3, 0, 1);
    bb_str(&b, "a");
    bb_u32(&b, MF_GGUF_ARR);
    bb_u32(&b, MF_GGUF_U8);
    bb_u64(&b, UINT64_MAX);
    bb_zeros(&b, 8);
    expect_reject(&b, o, "array count 18446744073709551615 exceeds the limit");
}

TEST(string_array_count_past_eof)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "tokenizer.ggml.tokens");
    bb_u32(&b, MF_GGUF_ARR);
    bb_u32(&b, MF_GGUF_STR);
    uint64_t o = at(&b);
    bb_u64(&b, 100); /* 100 strings need >= 800 bytes of lengths */
    bb_zeros(&b, 799);
    expect_reject(&b, o, "array of 100 STRING elements runs past end of file (799 bytes remain)");
}

TEST(nested_array)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "nested");
    bb_u32(&b, MF_GGUF_ARR);
    uint64_t o = at(&b);
    bb_u32(&b, MF_GGUF_ARR);
    bb_u64(&b, 1);
    bb_u32(&b, MF_GGUF_U8);
    bb_u64(&b, 1);
    bb_u8(&b, 7);
    expect_reject(&b, o, "key 'nested': nested arrays are not supported");
}

TEST(unknown_array_element_type)
{
    (void)state;
    uint32_t bad[] = {13, 0xFFFFFFFFu};
    for (int i = 0; i < 2; i++) {
        bb b = {0};
        hdr(&b, 3, 0, 1);
        bb_str(&b, "arr");
        bb_u32(&b, MF_GGUF_ARR);
        uint64_t o = at(&b);
        bb_u32(&b, bad[i]);
        bb_u64(&b, 0);
        char want[96];
        snprintf(want, sizeof want, "key 'arr': unknown array element type %u", bad[i]);
        expect_reject(&b, o, want);
    }
}

TEST(unknown_value_type)
{
    (void)state;
    uint32_t bad[] = {13, 14, 0x80000000u, 0xFFFFFFFFu};
    for (int i = 0; i < 4; i++) {
        bb b = {0};
        hdr(&b, 3, 0, 1);
        bb_str(&b, "general.weird");
        uint64_t o = at(&b);
        bb_u32(&b, bad[i]);
        bb_zeros(&b, 8);
        char want[96];
        snprintf(want, sizeof want, "key 'general.weird': unknown value type %u", bad[i]);
        expect_reject(&b, o, want);
    }
}

TEST(truncated_scalar_value)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "general.size");
    bb_u32(&b, MF_GGUF_U64);
    uint64_t o = at(&b);
    bb_zeros(&b, 3);
    expect_reject(&b, o, "metadata value needs 8 bytes but only 3 remain");
}

/* ------------------------------------------------------------------ keys */

TEST(empty_key)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "");
    bb_u32(&b, MF_GGUF_U8);
    bb_u8(&b, 1);
    bb_zeros(&b, 4);
    expect_reject(&b, 24, "empty metadata key");
}

TEST(key_with_nul)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_u64(&b, 5);
    bb_raw(&b, "ab\0cd", 5);
    bb_u32(&b, MF_GGUF_U8);
    bb_u8(&b, 1);
    expect_reject(&b, 24, "metadata key contains a NUL byte");
}

TEST(duplicate_key)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 3);
    kv_u32(&b, "llama.block_count", 5);
    kv_str(&b, "general.architecture", "llama");
    uint64_t second = at(&b);
    kv_u32(&b, "llama.block_count", 6);
    expect_reject(&b, second, "duplicate metadata key 'llama.block_count' (first defined at offset 24)");
}

/* A key full of control bytes (an ANSI escape sequence, a bell): the message keeps one
 * printable line, with '?' for each control byte. */
TEST(control_bytes_in_messages)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "k\x1b[31m\x07\tx");
    uint64_t o = at(&b);
    bb_u32(&b, 99);
    bb_zeros(&b, 8);
    expect_reject(&b, o, "key 'k?[31m??x': unknown value type 99");
}

/* ------------------------------------------------------------------ general.alignment */

TEST(alignment_wrong_type)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "general.alignment");
    bb_u32(&b, MF_GGUF_U64);
    bb_u64(&b, 32);
    expect_reject(&b, 24, "general.alignment has type UINT64 (must be UINT32)");
    hdr(&b, 3, 0, 2);
    kv_u32(&b, "general.file_type", 1);
    uint64_t o = at(&b);
    kv_str(&b, "general.alignment", "32");
    expect_reject(&b, o, "general.alignment has type STRING");
}

TEST(alignment_bad_values)
{
    (void)state;
    uint32_t bad[] = {0, 48, 3, 0xFFFFFFFFu};
    for (int i = 0; i < 4; i++) {
        bb b = {0};
        hdr(&b, 3, 0, 1);
        kv_u32(&b, "general.alignment", bad[i]);
        char want[96];
        snprintf(want, sizeof want, "general.alignment %u is not a non-zero power of two", bad[i]);
        expect_reject(&b, 24, want);
    }
}

/* a custom alignment governs the offset check: 32 is aligned by default but not to 64 */
TEST(alignment_custom_misaligned)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 2, 1);
    kv_u32(&b, "general.alignment", 64);
    const uint64_t ne[1] = {8};
    tinfo(&b, "a", 1, ne, MF_TYPE_F32, 0);
    uint64_t r = tinfo(&b, "b", 1, ne, MF_TYPE_F32, 32);
    data(&b, 64, 128);
    expect_reject(&b, ti_offset(r, 1, 1), "tensor 'b' offset 32 is not a multiple of the alignment 64");
}

/* ------------------------------------------------------------------ tensor infos */

TEST(empty_tensor_name)
{
    (void)state;
    bb b = {0};
    const uint64_t ne[1] = {8};
    uint64_t r = one_tensor(&b, "", 1, ne, MF_TYPE_F32, 0, 32);
    expect_reject(&b, r, "empty tensor name");
}

TEST(tensor_name_too_long)
{
    (void)state;
    char name[65];
    memset(name, 'w', 64);
    name[64] = 0;
    bb b = {0};
    const uint64_t ne[1] = {8};
    uint64_t r = one_tensor(&b, name, 1, ne, MF_TYPE_F32, 0, 32);
    expect_reject(&b, r, "tensor name of 64 bytes is too long (max 63)");
    char huge[300];
    memset(huge, 'x', 299);
    huge[299] = 0;
    r = one_tensor(&b, huge, 1, ne, MF_TYPE_F32, 0, 32);
    expect_reject(&b, r, "tensor name of 299 bytes is too long");
}

TEST(tensor_name_with_nul)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 1, 0);
    bb_u64(&b, 3);
    bb_raw(&b, "a\0b", 3);
    bb_u32(&b, 1);
    bb_u64(&b, 8);
    bb_u32(&b, MF_TYPE_F32);
    bb_u64(&b, 0);
    data(&b, 32, 32);
    expect_reject(&b, 24, "tensor name contains a NUL byte");
}

TEST(too_many_dims)
{
    (void)state;
    uint32_t bad[] = {5, 64, 0xFFFFFFFFu};
    for (int i = 0; i < 3; i++) {
        bb b = {0};
        hdr(&b, 3, 1, 0);
        uint64_t r = at(&b);
        bb_str(&b, "w");
        bb_u32(&b, bad[i]);
        bb_zeros(&b, 60);
        char want[96];
        snprintf(want, sizeof want, "tensor 'w' has %u dimensions (max 4)", bad[i]);
        expect_reject(&b, ti_ndims(r, 1), want);
    }
}

TEST(zero_dimension)
{
    (void)state;
    bb b = {0};
    const uint64_t ne[2] = {8, 0};
    uint64_t r = one_tensor(&b, "w", 2, ne, MF_TYPE_F32, 0, 32);
    expect_reject(&b, ti_dim(r, 1, 1), "tensor 'w' dimension 1 is zero");
}

TEST(negative_dimension)
{
    (void)state;
    bb b = {0};
    const uint64_t ne1[2] = {1ull << 63, 1};
    uint64_t r = one_tensor(&b, "w", 2, ne1, MF_TYPE_F32, 0, 32);
    expect_reject(&b, ti_dim(r, 1, 0), "tensor 'w' dimension 0 is negative (-9223372036854775808)");
    const uint64_t ne2[3] = {8, 2, UINT64_MAX};
    r = one_tensor(&b, "w", 3, ne2, MF_TYPE_F32, 0, 32);
    expect_reject(&b, ti_dim(r, 1, 2), "tensor 'w' dimension 2 is negative (-1)");
}

TEST(element_count_overflow)
{
    (void)state;
    bb b = {0};
    const uint64_t ne1[2] = {1ull << 32, 1ull << 32}; /* 2^64 */
    uint64_t r = one_tensor(&b, "w", 2, ne1, MF_TYPE_F32, 0, 32);
    expect_reject(&b, ti_dim(r, 1, 1), "tensor 'w' element count overflows");
    const uint64_t ne2[4] = {1ull << 21, 1ull << 21, 1ull << 21, 1}; /* exactly 2^63 > INT64_MAX */
    r = one_tensor(&b, "w", 4, ne2, MF_TYPE_F32, 0, 32);
    expect_reject(&b, ti_dim(r, 1, 2), "element count overflows (dimension 2 is 2097152)");
    const uint64_t ne3[2] = {3, (uint64_t)INT64_MAX / 2}; /* just past INT64_MAX */
    r = one_tensor(&b, "w", 2, ne3, MF_TYPE_F32, 0, 32);
    expect_reject(&b, ti_dim(r, 1, 1), "element count overflows");
}

/* n_elements fits in i64 but the byte size does not fit in u64 (docs/gguf.md §3) */
TEST(byte_size_overflow)
{
    (void)state;
    bb b = {0};
    const uint64_t ne[2] = {1ull << 31, 1ull << 30}; /* 2^61 elements of 8 bytes = 2^64 */
    uint64_t r = one_tensor(&b, "w", 2, ne, MF_TYPE_F64, 0, 32);
    expect_reject(&b, ti_type(r, 1, 2), "tensor 'w' byte size overflows");
}

TEST(invalid_type_ids)
{
    (void)state;
    struct {
        uint32_t id;
        const char *why;
    } bad[] = {
        {4, "invalid type id 4 (removed from the format)"},
        {5, "invalid type id 5 (removed"},
        {31, "invalid type id 31 (removed"},
        {38, "invalid type id 38 (removed"},
        {43, "invalid type id 43 (not defined by the format)"},
        {1000, "invalid type id 1000 (not defined"},
        {0xFFFFFFFFu, "invalid type id 4294967295"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bb b = {0};
        const uint64_t ne[1] = {256};
        uint64_t r = one_tensor(&b, "w", 1, ne, bad[i].id, 0, 1024);
        expect_reject(&b, ti_type(r, 1, 1), bad[i].why);
    }
}

TEST(row_not_multiple_of_block)
{
    (void)state;
    struct {
        uint32_t type;
        uint64_t ne0;
        const char *why;
    } bad[] = {
        {MF_TYPE_Q4_0, 33, "row of 33 elements is not a multiple of the Q4_0 block size 32"},
        {MF_TYPE_Q4_K, 100, "row of 100 elements is not a multiple of the Q4_K block size 256"},
        {MF_TYPE_MXFP4, 16, "MXFP4 block size 32"},
        {MF_TYPE_IQ2_XXS, 255, "IQ2_XXS block size 256"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bb b = {0};
        const uint64_t ne[2] = {bad[i].ne0, 2};
        uint64_t r = one_tensor(&b, "w", 2, ne, bad[i].type, 0, 1024);
        expect_reject(&b, ti_type(r, 1, 2), bad[i].why);
    }
    /* n_dims 0 means ne[0] = 1, which a block type cannot hold either */
    bb b = {0};
    uint64_t r = one_tensor(&b, "s", 0, NULL, MF_TYPE_Q8_0, 0, 64);
    expect_reject(&b, ti_type(r, 1, 0), "row of 1 elements is not a multiple of the Q8_0 block size 32");
}

TEST(misaligned_offset)
{
    (void)state;
    bb b = {0};
    const uint64_t ne[1] = {8};
    uint64_t r = one_tensor(&b, "w", 1, ne, MF_TYPE_F32, 4, 64);
    expect_reject(&b, ti_offset(r, 1, 1), "tensor 'w' offset 4 is not a multiple of the alignment 32");
    r = one_tensor(&b, "w", 1, ne, MF_TYPE_F32, UINT64_MAX, 64);
    expect_reject(&b, ti_offset(r, 1, 1), "offset 18446744073709551615 is not a multiple");
}

TEST(offset_past_eof)
{
    (void)state;
    bb b = {0};
    const uint64_t ne[1] = {8};
    uint64_t r = one_tensor(&b, "w", 1, ne, MF_TYPE_F32, 1u << 20, 32);
    expect_reject(&b, r, "tensor 'w' data (32 bytes at data offset 1048576) ends past end of file");
    /* the largest aligned offset: offset + nbytes would wrap around unchecked */
    r = one_tensor(&b, "w", 1, ne, MF_TYPE_F32, UINT64_MAX - 31, 32);
    expect_reject(&b, r, "ends past end of file");
}

TEST(data_past_eof)
{
    (void)state;
    bb b = {0};
    const uint64_t ne[2] = {16, 4}; /* 256 bytes, only 255 present */
    uint64_t r = one_tensor(&b, "w", 2, ne, MF_TYPE_F32, 0, 255);
    expect_reject(&b, r, "tensor 'w' data (256 bytes at data offset 0) ends past end of file");
    /* huge but valid shapes: 2^62 bytes of F32 */
    const uint64_t big[2] = {1ull << 30, 1ull << 30};
    r = one_tensor(&b, "w", 2, big, MF_TYPE_F32, 0, 64);
    expect_reject(&b, r, "tensor 'w' data (4611686018427387904 bytes");
}

TEST(data_section_past_eof)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 1, 0);
    const uint64_t ne[1] = {1};
    tinfo(&b, "w", 1, ne, MF_TYPE_F32, 0); /* 33 bytes: ends at 57, data would start at 64 */
    uint64_t p = at(&b);
    assert_int_equal(p, 57);
    bb_zeros(&b, 3);
    expect_reject(&b, p, "data section (aligned to 32 at offset 64) starts past end of file (size 60)");
}

TEST(overlapping_tensors)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 2, 0);
    const uint64_t ne[1] = {16}; /* 64 bytes each */
    uint64_t ra = tinfo(&b, "a", 1, ne, MF_TYPE_F32, 0);
    uint64_t rb = tinfo(&b, "b", 1, ne, MF_TYPE_F32, 32);
    data(&b, 32, 128);
    (void)ra;
    expect_reject(&b, rb, "tensor 'b' (data offset 32) overlaps tensor 'a' (64 bytes at data offset 0)");
    /* the same offset twice, the overlap found after sorting by offset (records out of order) */
    hdr(&b, 3, 3, 0);
    tinfo(&b, "x", 1, ne, MF_TYPE_F32, 128);
    tinfo(&b, "y", 1, ne, MF_TYPE_F32, 0);
    uint64_t rz = tinfo(&b, "z", 1, ne, MF_TYPE_F32, 128);
    data(&b, 32, 256);
    expect_reject(&b, rz, "tensor 'z' (data offset 128) overlaps tensor 'x'");
}

TEST(duplicate_tensor_name)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 3, 0);
    const uint64_t ne[1] = {8};
    uint64_t r0 = tinfo(&b, "blk.0.attn_q.weight", 1, ne, MF_TYPE_F32, 0);
    tinfo(&b, "blk.0.attn_k.weight", 1, ne, MF_TYPE_F32, 32);
    uint64_t r2 = tinfo(&b, "blk.0.attn_q.weight", 1, ne, MF_TYPE_F32, 64);
    data(&b, 32, 96);
    char want[128];
    snprintf(want, sizeof want, "duplicate tensor name 'blk.0.attn_q.weight' (first defined at offset %llu)",
             (unsigned long long)r0);
    expect_reject(&b, r2, want);
}

TEST(truncated_tensor_info)
{
    (void)state;
    bb b = {0};
    hdr(&b, 3, 1, 0);
    const uint64_t ne[2] = {8, 8};
    uint64_t r = tinfo(&b, "weight", 2, ne, MF_TYPE_F32, 0);
    b.n -= 10; /* cut inside the type field */
    expect_reject(&b, ti_type(r, 6, 2), "tensor type needs 4 bytes but only 2 remain");
}

/* ------------------------------------------------------------------ truncation series */

/* A valid file from the writer: a few KVs of several types and three tensors. */
static uint8_t *writer_file(size_t *n)
{
    const char *path = mf_tmp_path("base.gguf");
    mf_err err;
    mf_gguf_writer *w = mf_gguf_writer_new();
    mf_gguf_w_str(w, "general.architecture", "llama");
    mf_gguf_w_u32(w, "llama.block_count", 1);
    const char *toks[] = {"<unk>", "<s>", "</s>", "a"};
    mf_gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 4);
    const float sc[] = {0, 0, 0, -1};
    mf_gguf_w_arr(w, "tokenizer.ggml.scores", MF_GGUF_F32, sc, 4);
    mf_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1);
    static uint8_t bytes[1024];
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 7);
    const int64_t e1[2] = {8, 4}, e2[1] = {64}, e3[2] = {32, 3};
    mf_gguf_w_tensor(w, "a.weight", MF_TYPE_F32, 2, e1, bytes, &err);
    mf_gguf_w_tensor(w, "b.weight", MF_TYPE_F16, 1, e2, bytes, &err);
    mf_gguf_w_tensor(w, "c.weight", MF_TYPE_Q8_0, 2, e3, bytes, &err);
    if (mf_gguf_w_write(w, path, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    uint8_t *b = mf_read_file(path, n);
    assert_non_null(b);
    unlink(path);
    return b;
}

/* Parse the error offset N out of "NAME: offset N: ..." */
static uint64_t err_offset(const char *msg, const char *name)
{
    size_t k = strlen(name);
    if (strncmp(msg, name, k) != 0 || strncmp(msg + k, ": offset ", 9) != 0)
        fail_msg("message '%s' does not start with '%s: offset '", msg, name);
    return strtoull(msg + k + 9, NULL, 10);
}

/* Every proper prefix of a valid file is rejected, the message names the file and an offset
 * at or before the cut, and says why in one of the truncation phrases. */
static void every_prefix_rejected(const uint8_t *f, size_t n, size_t step)
{
    for (size_t cut = 0; cut < n; cut += (cut < 24 || step == 1) ? 1 : step) {
        mf_err err;
        mf_gguf *g = mf_gguf_open_memory(f, cut, "cut.gguf", &err);
        if (g) {
            mf_gguf_close(g);
            fail_msg("prefix of %zu bytes accepted", cut);
        }
        uint64_t off = err_offset(err.msg, "cut.gguf");
        if (off > cut)
            fail_msg("cut at %zu: error offset %llu lies past the cut: %s", cut, (unsigned long long)off, err.msg);
        if (!strstr(err.msg, "too small") && !strstr(err.msg, "truncated") && !strstr(err.msg, "past end of file") &&
            !strstr(err.msg, "impossible"))
            fail_msg("cut at %zu: unexpected reason: %s", cut, err.msg);
    }
}

TEST(truncate_writer_file_everywhere)
{
    (void)state;
    size_t n;
    uint8_t *f = writer_file(&n);
    mf_gguf *g = mf_gguf_open_memory(f, n, "base.gguf", NULL);
    assert_non_null(g);
    mf_gguf_close(g);
    every_prefix_rejected(f, n, 1);
    free(f);
}

/* Cuts exactly at the field boundaries, with the precise message for each. */
TEST(truncate_writer_file_at_boundaries)
{
    (void)state;
    size_t n;
    uint8_t *f = writer_file(&n);
    mf_gguf *g = mf_gguf_open_memory(f, n, "base.gguf", NULL);
    assert_non_null(g);
    /* header fields: a file shorter than the header */
    expect_reject_mem(f, 4, "cut.gguf", 0, "too small");
    expect_reject_mem(f, 8, "cut.gguf", 0, "too small");
    expect_reject_mem(f, 16, "cut.gguf", 0, "too small");
    /* the tensor infos: cut at the start of each record's name, type and offset fields.
     * (KV boundaries of this small file fall inside the counts check; see the series above.) */
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        size_t nl = strlen(t->name);
        struct {
            uint64_t cut;
            const char *what;
        } c[] = {
            {t->info_offset, "tensor name needs 8 bytes"},
            {ti_ndims(t->info_offset, nl), "tensor n_dims needs 4 bytes"},
            {ti_dim(t->info_offset, nl, 0), "tensor dimension needs 8 bytes"},
            {ti_type(t->info_offset, nl, t->n_dims), "tensor type needs 4 bytes"},
            {ti_offset(t->info_offset, nl, t->n_dims), "tensor offset needs 8 bytes"},
        };
        for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
            mf_err err;
            assert_null(mf_gguf_open_memory(f, c[k].cut, "cut.gguf", &err));
            /* a cut that leaves too few bytes for the counts is caught by the count check */
            if (strstr(err.msg, "impossible")) continue;
            char pre[64];
            snprintf(pre, sizeof pre, "cut.gguf: offset %llu: ", (unsigned long long)c[k].cut);
            if (strncmp(err.msg, pre, strlen(pre)) || !strstr(err.msg, c[k].what))
                fail_msg("cut at %llu: '%s', expected '%s%s'", (unsigned long long)c[k].cut, err.msg, pre, c[k].what);
        }
    }
    /* the data section: before it, inside each tensor, one byte short of the end */
    uint64_t d = mf_gguf_data_offset(g);
    const mf_gguf_tensor *last = mf_gguf_tensor_at(g, 2);
    uint64_t p = ti_offset(last->info_offset, strlen(last->name), last->n_dims) + 8;
    assert_true(p < d); /* this file has padding before its data (asserted so the next line runs) */
    expect_reject_mem(f, d - 1, "cut.gguf", p, "data section (aligned to 32");
    expect_reject_mem(f, d, "cut.gguf", mf_gguf_tensor_at(g, 0)->info_offset, "tensor 'a.weight' data");
    /* a.weight has its 128 bytes, b.weight (offset 128) only 50 of its 128 */
    expect_reject_mem(f, d + 178, "cut.gguf", mf_gguf_tensor_at(g, 1)->info_offset, "tensor 'b.weight' data");
    expect_reject_mem(f, n - 1, "cut.gguf", last->info_offset, "tensor 'c.weight' data (102 bytes");
    mf_gguf_close(g);
    free(f);
}

/* ------------------------------------------------------------------ stories260K.gguf */

static uint8_t *stories(size_t *n)
{
    const char *p = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(p);
    uint8_t *f = mf_read_file(p, n);
    assert_non_null(f);
    return f;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Cuts at every record boundary of a real file and a sweep through its data section. */
TEST(truncate_stories)
{
    (void)state;
    size_t n;
    uint8_t *f = stories(&n);
    mf_gguf *g = mf_gguf_open_memory(f, n, "stories", NULL);
    assert_non_null(g);
    for (uint64_t i = 0; i < mf_gguf_n_kv(g); i++) {
        uint64_t o = mf_gguf_kv_at(g, i)->offset;
        if (i == 0) /* nothing after the header: 48 tensor infos cannot fit */
            expect_reject_mem(f, o, "cut.gguf", 8, "tensor count 48 is impossible for a file of 24 bytes");
        else expect_reject_mem(f, o, "cut.gguf", o, "metadata key needs 8 bytes but only 0 remain");
        /* a cut through the middle of the record */
        mf_err err;
        assert_null(mf_gguf_open_memory(f, o + 11, "cut.gguf", &err));
        assert_true(err_offset(err.msg, "cut.gguf") <= o + 11);
    }
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        uint64_t o = mf_gguf_tensor_at(g, i)->info_offset;
        /* the count check catches cuts in the last records: 25 bytes per missing record */
        mf_err err;
        assert_null(mf_gguf_open_memory(f, o, "cut.gguf", &err));
        if (!strstr(err.msg, "impossible")) {
            char pre[64];
            snprintf(pre, sizeof pre, "cut.gguf: offset %llu: tensor name needs 8", (unsigned long long)o);
            if (strncmp(err.msg, pre, strlen(pre))) fail_msg("'%s' vs '%s'", err.msg, pre);
        }
    }
    every_prefix_rejected(f, n, 4099);
    mf_gguf_close(g);
    free(f);
}

/* Single-field corruptions of the real file at the offsets docs/gguf.md §2 documents. */
TEST(mutate_stories)
{
    (void)state;
    size_t n;
    uint8_t *f = stories(&n);
    uint8_t *m = malloc(n);
    assert_non_null(m);
    const uint64_t T0 = 11347; /* token_embd.weight record: name 17 bytes, 2 dims */
#define MUTATE(off, val, width, at_, phrase)                          \
    do {                                                              \
        memcpy(m, f, n);                                              \
        put_le(m + (off), (val), (width));                            \
        expect_reject_mem(m, n, "stories-mut.gguf", (at_), (phrase)); \
    } while (0)
    MUTATE(0, 0x4c4d4747, 4, 0, "bad magic");
    MUTATE(4, 1, 4, 4, "version 1 is obsolete");
    MUTATE(4, 0x03000000, 4, 4, "big-endian");
    MUTATE(8, 1ull << 40, 8, 8, "tensor count 1099511627776 is impossible");
    MUTATE(24, UINT64_MAX, 8, 24, "metadata key length 18446744073709551615 exceeds the limit");
    MUTATE(53, 13, 4, 53, "unknown value type 13");
    MUTATE(57, 9, 4, 57, "nested arrays");
    MUTATE(61, 1ull << 40, 8, 61, "array count 1099511627776 exceeds the limit");
    MUTATE(69, 1ull << 21, 8, 69, "array string length 2097152 runs past end of file");
    MUTATE(T0 + 25, 5, 4, T0 + 25, "tensor 'token_embd.weight' has 5 dimensions");
    MUTATE(T0 + 29, 0, 8, T0 + 29, "dimension 0 is zero");
    MUTATE(T0 + 37, UINT64_MAX, 8, T0 + 37, "dimension 1 is negative");
    MUTATE(T0 + 45, 4, 4, T0 + 45, "invalid type id 4");
    MUTATE(T0 + 45, 43, 4, T0 + 45, "invalid type id 43");
    MUTATE(T0 + 45, MF_TYPE_Q4_K, 4, T0 + 45, "row of 64 elements is not a multiple of the Q4_K block size 256");
    MUTATE(T0 + 49, 16, 8, T0 + 49, "not a multiple of the alignment 32");
    MUTATE(T0 + 49, 131072, 8, 11404,
           "tensor 'output_norm.weight' (data offset 131072) overlaps tensor 'token_embd.weight'");
    MUTATE(T0 + 49, 1ull << 40, 8, T0, "ends past end of file");
    /* a second "blk.1.attn_q.weight": rename blk.0's record (same length) */
    memcpy(m, f, n);
    m[11507 + 8 + 4] = '1';
    expect_reject_mem(m, n, "stories-mut.gguf", 12036,
                      "duplicate tensor name 'blk.1.attn_q.weight' (first defined at offset 11507)");
#undef MUTATE
    free(m);
    free(f);
}

/* ------------------------------------------------------------------ odd but valid */

TEST(valid_unsupported_types_open)
{
    (void)state;
    bb b = {0};
    uint32_t types[] = {MF_TYPE_IQ2_XXS, MF_TYPE_TQ1_0, MF_TYPE_NVFP4, MF_TYPE_Q1_0, MF_TYPE_Q8_K, MF_TYPE_I64};
    hdr(&b, 3, 6, 0);
    uint64_t off = 0;
    for (int i = 0; i < 6; i++) {
        const mf_type_info *ti = mf_type_get(types[i]);
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        const uint64_t ne[2] = {ti->blck * 2, 3};
        tinfo(&b, name, 2, ne, types[i], off);
        off += (6ull * ti->size + 31) / 32 * 32;
    }
    data(&b, 32, off);
    mf_gguf *g = expect_open(&b);
    for (int i = 0; i < 6; i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, (uint64_t)i);
        assert_int_equal(t->type, types[i]);
        assert_int_equal(t->nbytes, 6ull * mf_type_get(types[i])->size);
        assert_false(mf_type_supported(types[i]));
    }
    mf_gguf_close(g);
    free(b.p);
}

TEST(odd_but_valid_files_open)
{
    (void)state;
    const uint64_t ne[1] = {8};
    /* trailing bytes after the last tensor, non-zero padding, records out of offset order */
    bb b = {0};
    hdr(&b, 3, 2, 2);
    kv_u32(&b, "general.alignment", 16);
    bb_str(&b, "flag");
    bb_u32(&b, MF_GGUF_BOOL);
    bb_u8(&b, 2); /* not 0/1: accepted as true, like llama.cpp (docs/gguf.md §1) */
    tinfo(&b, "late", 1, ne, MF_TYPE_F32, 32);
    tinfo(&b, "early", 1, ne, MF_TYPE_F32, 0);
    while (b.n % 16) bb_u8(&b, 0xEE);
    data(&b, 16, 64);
    bb_zeros(&b, 100);
    mf_gguf *g = expect_open(&b);
    assert_int_equal(mf_gguf_alignment(g), 16);
    assert_int_equal(mf_gguf_find_kv(g, "flag")->v.u, 1);
    assert_int_equal(mf_gguf_find_tensor(g, "late")->offset, 32);
    mf_gguf_close(g);
    free(b.p);

    /* n_dims 0: a one-element scalar; a 63-byte name; version 2 */
    b = (bb){0};
    char name[64];
    memset(name, 'n', 63);
    name[63] = 0;
    hdr(&b, 2, 2, 0);
    tinfo(&b, "scalar", 0, NULL, MF_TYPE_F32, 0);
    tinfo(&b, name, 1, ne, MF_TYPE_F32, 32);
    data(&b, 32, 64);
    g = expect_open(&b);
    const mf_gguf_tensor *t = mf_gguf_find_tensor(g, "scalar");
    assert_int_equal(t->n_elements, 1);
    assert_int_equal(t->nbytes, 4);
    assert_non_null(mf_gguf_find_tensor(g, name));
    mf_gguf_close(g);
    free(b.p);

    /* no tensors: the data section starts right after the metadata, unpadded */
    b = (bb){0};
    hdr(&b, 3, 0, 1);
    kv_str(&b, "general.architecture", "mamba");
    size_t p = b.n;
    bb_zeros(&b, 5);
    g = expect_open(&b);
    assert_int_equal(mf_gguf_data_offset(g), p);
    mf_gguf_close(g);
    free(b.p);
}

/* ------------------------------------------------------------------ the driver */

/* Every rejected case above, written to a file and given to `minfer run`: exit 1, no signal
 * (no crash, no sanitizer report, no hang within the bound), and exactly one line on
 * stderr, "minfer run: FILE: offset N: ..." with the offset and the phrase the reader gave
 * in memory. */
TEST(minfer_run_refuses_the_corpus)
{
    (void)state;
    if (n_corpus < 50) fail_msg("only %zu cases were collected: run the whole group", n_corpus);
    const char *path = mf_tmp_path("corpus-case.gguf");
    for (size_t i = 0; i < n_corpus; i++) {
        const corpus_case *c = &corpus[i];
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(c->bytes, 1, c->n, f), c->n);
        assert_int_equal(fclose(f), 0);
        const char *args[] = {"run", "-m", path, "-p", "hi", "--device", "cpu", NULL};
        mf_proc p = mf_run_tool_timeout("minfer", args, 60);
        char want[4200];
        snprintf(want, sizeof want, "minfer run: %s: offset %llu: ", path, (unsigned long long)c->off);
        const char *nl = strchr(p.err, '\n');
        if (p.sig || p.rc != 1 || strncmp(p.err, want, strlen(want)) || !strstr(p.err, c->phrase) || !nl || nl[1])
            fail_msg("case %zu ('%s'): exit %d, signal %d, stderr: %s", i, c->phrase, p.rc, p.sig, p.err);
        mf_proc_free(&p);
        free(c->bytes);
        free(c->phrase);
    }
    print_message("minfer run refused all %zu malformed files\n", n_corpus);
    free(corpus);
    corpus = NULL;
    n_corpus = cap_corpus = 0;
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_file_on_disk),
        cmocka_unit_test(short_file_on_disk),
        cmocka_unit_test(not_a_file),
        cmocka_unit_test(short_in_memory),
        cmocka_unit_test(bad_magic),
        cmocka_unit_test(bad_versions),
        cmocka_unit_test(big_endian),
        cmocka_unit_test(huge_counts),
        cmocka_unit_test(counts_past_file),
        cmocka_unit_test(key_length_past_eof),
        cmocka_unit_test(key_length_huge),
        cmocka_unit_test(string_value_past_eof),
        cmocka_unit_test(array_string_past_eof),
        cmocka_unit_test(tensor_name_past_eof),
        cmocka_unit_test(caps_need_a_gigabyte),
        cmocka_unit_test(array_count_past_eof),
        cmocka_unit_test(array_count_huge),
        cmocka_unit_test(string_array_count_past_eof),
        cmocka_unit_test(nested_array),
        cmocka_unit_test(unknown_array_element_type),
        cmocka_unit_test(unknown_value_type),
        cmocka_unit_test(truncated_scalar_value),
        cmocka_unit_test(empty_key),
        cmocka_unit_test(key_with_nul),
        cmocka_unit_test(duplicate_key),
        cmocka_unit_test(control_bytes_in_messages),
        cmocka_unit_test(alignment_wrong_type),
        cmocka_unit_test(alignment_bad_values),
        cmocka_unit_test(alignment_custom_misaligned),
        cmocka_unit_test(empty_tensor_name),
        cmocka_unit_test(tensor_name_too_long),
        cmocka_unit_test(tensor_name_with_nul),
        cmocka_unit_test(too_many_dims),
        cmocka_unit_test(zero_dimension),
        cmocka_unit_test(negative_dimension),
        cmocka_unit_test(element_count_overflow),
        cmocka_unit_test(byte_size_overflow),
        cmocka_unit_test(invalid_type_ids),
        cmocka_unit_test(row_not_multiple_of_block),
        cmocka_unit_test(misaligned_offset),
        cmocka_unit_test(offset_past_eof),
        cmocka_unit_test(data_past_eof),
        cmocka_unit_test(data_section_past_eof),
        cmocka_unit_test(overlapping_tensors),
        cmocka_unit_test(duplicate_tensor_name),
        cmocka_unit_test(truncated_tensor_info),
        cmocka_unit_test(truncate_writer_file_everywhere),
        cmocka_unit_test(truncate_writer_file_at_boundaries),
        cmocka_unit_test(truncate_stories),
        cmocka_unit_test(mutate_stories),
        cmocka_unit_test(valid_unsupported_types_open),
        cmocka_unit_test(odd_but_valid_files_open),
        cmocka_unit_test(minfer_run_refuses_the_corpus),
    };
    return MF_RUN("gguf_corrupt", tests);
}
