/* test_inspect.c — `minfer inspect` run as a program ($MINFER_BIN/minfer).
 *
 * The text output is checked line by line on stories260K.gguf against numbers from the
 * file's own keys and shapes (worked out by hand in the comments). The JSON output is parsed
 * by the strict little parser below (RFC 8259 grammar, escapes, no raw control bytes, valid
 * UTF-8 only), so a missing comma or a badly escaped string fails the test; values are then
 * looked up by path and compared. A file written here with hostile strings (quotes, newlines,
 * every control byte, invalid UTF-8, an embedded NUL) must still give valid JSON whose decoded
 * strings equal the originals, with U+FFFD in place of each invalid byte.
 */
#include "harness.h"
#include "gguf.h"
#include "types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ running minfer */

/* argv of `minfer inspect ...`, run with stdout and stderr captured */
static mf_proc run_inspect(const char *a1, const char *a2)
{
    const char *args[] = {"inspect", a1, a2, NULL};
    return mf_run_tool("minfer", args);
}

/* The rest of the line that starts with `prefix`, spaces trimmed; fails if there is none. */
static const char *line_after(const char *text, const char *prefix, char *buf, size_t n)
{
    size_t k = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, k) != 0) continue;
        p += k;
        while (*p == ' ') p++;
        size_t len = strcspn(p, "\n");
        if (len >= n) len = n - 1;
        memcpy(buf, p, len);
        buf[len] = 0;
        return buf;
    }
    fail_msg("no line starting with '%s' in:\n%s", prefix, text);
    return NULL;
}

/* ------------------------------------------------------------------ a strict JSON parser */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv jv;
struct jv {
    int kind;
    double num;
    int b;
    char *str; /* decoded UTF-8 (J_STR), length str_len */
    size_t str_len;
    char **keys; /* J_OBJ */
    jv **items;  /* J_ARR and J_OBJ values */
    size_t n;
};

typedef struct jp {
    const unsigned char *s;
    size_t n, i;
    const char *why;
} jp;

static void ws(jp *p)
{
    while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) && p->s[p->i]) p->i++;
}

static jv *jnew(int kind)
{
    jv *v = calloc(1, sizeof *v);
    assert_non_null(v);
    v->kind = kind;
    return v;
}

static void jfree(jv *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        jfree(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

static void put_utf8(char **b, size_t *len, size_t *cap, uint32_t c)
{
    if (*len + 4 >= *cap) {
        *cap = *cap * 2 + 16;
        *b = realloc(*b, *cap);
        assert_non_null(*b);
    }
    char *o = *b + *len;
    if (c < 0x80) {
        o[0] = (char)c;
        *len += 1;
    } else if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6);
        o[1] = (char)(0x80 | (c & 63));
        *len += 2;
    } else if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12);
        o[1] = (char)(0x80 | ((c >> 6) & 63));
        o[2] = (char)(0x80 | (c & 63));
        *len += 3;
    } else {
        o[0] = (char)(0xF0 | c >> 18);
        o[1] = (char)(0x80 | ((c >> 12) & 63));
        o[2] = (char)(0x80 | ((c >> 6) & 63));
        o[3] = (char)(0x80 | (c & 63));
        *len += 4;
    }
}

static int hex4(jp *p, uint32_t *c)
{
    if (p->n - p->i < 4) return 0;
    *c = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char h = p->s[p->i++];
        *c <<= 4;
        if (h >= '0' && h <= '9') *c |= h - '0';
        else if (h >= 'a' && h <= 'f') *c |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F') *c |= h - 'A' + 10;
        else return 0;
    }
    return 1;
}

/* a string; the raw bytes must be well-formed UTF-8 with no control characters */
static char *jstring(jp *p, size_t *out_len)
{
    if (p->i >= p->n || p->s[p->i] != '"') {
        p->why = "expected a string";
        return NULL;
    }
    p->i++;
    char *b = NULL;
    size_t len = 0, cap = 0;
    put_utf8(&b, &len, &cap, 0);
    len = 0;
    while (p->i < p->n) {
        unsigned char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            b[len] = 0;
            *out_len = len;
            return b;
        }
        if (c < 0x20) {
            p->why = "raw control character in a string";
            break;
        }
        if (c == '\\') {
            p->i++;
            if (p->i >= p->n) break;
            unsigned char e = p->s[p->i++];
            uint32_t u;
            switch (e) {
            case '"':
            case '\\':
            case '/': put_utf8(&b, &len, &cap, e); break;
            case 'n': put_utf8(&b, &len, &cap, '\n'); break;
            case 'r': put_utf8(&b, &len, &cap, '\r'); break;
            case 't': put_utf8(&b, &len, &cap, '\t'); break;
            case 'b': put_utf8(&b, &len, &cap, '\b'); break;
            case 'f': put_utf8(&b, &len, &cap, '\f'); break;
            case 'u':
                if (!hex4(p, &u) || (u >= 0xD800 && u <= 0xDFFF)) {
                    p->why = "bad \\u escape";
                    goto bad;
                }
                put_utf8(&b, &len, &cap, u);
                break;
            default: p->why = "bad escape"; goto bad;
            }
            continue;
        }
        if (c < 0x80) {
            put_utf8(&b, &len, &cap, c);
            p->i++;
            continue;
        }
        /* a multi-byte sequence: decode strictly */
        int k = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
        if (!k || c > 0xF4 || p->n - p->i < (size_t)k) {
            p->why = "invalid UTF-8";
            goto bad;
        }
        uint32_t u = c & (0xFF >> (k + 1));
        for (int j = 1; j < k; j++) {
            unsigned char t = p->s[p->i + (size_t)j];
            if ((t & 0xC0) != 0x80) {
                p->why = "invalid UTF-8";
                goto bad;
            }
            u = u << 6 | (t & 63);
        }
        if ((k == 3 && (u < 0x800 || (u >= 0xD800 && u <= 0xDFFF))) || (k == 4 && (u < 0x10000 || u > 0x10FFFF))) {
            p->why = "overlong or out-of-range UTF-8";
            goto bad;
        }
        put_utf8(&b, &len, &cap, u);
        p->i += (size_t)k;
    }
    if (!p->why) p->why = "unterminated string";
bad:
    free(b);
    return NULL;
}

static jv *jvalue(jp *p, int depth);

static int jpush(jv *v, char *key, jv *item)
{
    v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
    assert_non_null(v->items);
    if (v->kind == J_OBJ) {
        v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
        assert_non_null(v->keys);
        v->keys[v->n] = key;
    }
    v->items[v->n++] = item;
    return 1;
}

static jv *jvalue(jp *p, int depth)
{
    ws(p);
    if (depth > 32 || p->i >= p->n) {
        p->why = "unexpected end";
        return NULL;
    }
    unsigned char c = p->s[p->i];
    if (c == '{' || c == '[') {
        jv *v = jnew(c == '{' ? J_OBJ : J_ARR);
        p->i++;
        ws(p);
        if (p->i < p->n && p->s[p->i] == (c == '{' ? '}' : ']')) {
            p->i++;
            return v;
        }
        for (;;) {
            char *key = NULL;
            ws(p);
            if (v->kind == J_OBJ) {
                size_t kl;
                if (!(key = jstring(p, &kl))) break;
                ws(p);
                if (p->i >= p->n || p->s[p->i] != ':') {
                    p->why = "expected ':'";
                    free(key);
                    break;
                }
                p->i++;
            }
            jv *item = jvalue(p, depth + 1);
            if (!item) {
                free(key);
                break;
            }
            jpush(v, key, item);
            ws(p);
            if (p->i < p->n && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->n && p->s[p->i] == (c == '{' ? '}' : ']')) {
                p->i++;
                return v;
            }
            p->why = "expected ',' or a closing bracket";
            break;
        }
        jfree(v);
        return NULL;
    }
    if (c == '"') {
        jv *v = jnew(J_STR);
        if (!(v->str = jstring(p, &v->str_len))) {
            jfree(v);
            return NULL;
        }
        return v;
    }
    if (!strncmp((const char *)p->s + p->i, "null", 4)) {
        p->i += 4;
        return jnew(J_NULL);
    }
    if (!strncmp((const char *)p->s + p->i, "true", 4)) {
        p->i += 4;
        jv *v = jnew(J_BOOL);
        v->b = 1;
        return v;
    }
    if (!strncmp((const char *)p->s + p->i, "false", 5)) {
        p->i += 5;
        return jnew(J_BOOL);
    }
    /* number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    size_t st = p->i;
    if (p->s[p->i] == '-') p->i++;
    if (p->i < p->n && p->s[p->i] == '0') p->i++;
    else if (p->i < p->n && p->s[p->i] >= '1' && p->s[p->i] <= '9')
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    else {
        p->why = "bad value";
        return NULL;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') {
            p->why = "bad fraction";
            return NULL;
        }
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') {
            p->why = "bad exponent";
            return NULL;
        }
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    jv *v = jnew(J_NUM);
    char tmp[64];
    size_t l = p->i - st < 63 ? p->i - st : 63;
    memcpy(tmp, p->s + st, l);
    tmp[l] = 0;
    v->num = strtod(tmp, NULL);
    return v;
}

/* Parse a whole document (one value, then only whitespace); fails the test if malformed. */
static jv *jparse(const char *s, size_t n)
{
    jp p = {(const unsigned char *)s, n, 0, NULL};
    jv *v = jvalue(&p, 0);
    ws(&p);
    if (!v || p.i != n) {
        size_t at = p.i < n ? p.i : n;
        fail_msg("invalid JSON at byte %zu (%s): ...%.60s", at, p.why ? p.why : "trailing data", s + at);
    }
    return v;
}

/* Look up a dotted path of object keys and array indices ("tensors.0.name"); NULL if absent. */
static const jv *jget(const jv *v, const char *path)
{
    char seg[128];
    while (v && *path) {
        size_t k = strcspn(path, ".");
        snprintf(seg, sizeof seg, "%.*s", (int)k, path);
        path += k + (path[k] == '.');
        const jv *next = NULL;
        if (v->kind == J_OBJ) {
            for (size_t i = 0; i < v->n; i++)
                if (!strcmp(v->keys[i], seg)) next = v->items[i];
        } else if (v->kind == J_ARR) {
            size_t i = strtoul(seg, NULL, 10);
            if (i < v->n) next = v->items[i];
        }
        v = next;
    }
    return v;
}

static double jnum(const jv *root, const char *path)
{
    const jv *v = jget(root, path);
    if (!v || v->kind != J_NUM) fail_msg("JSON path '%s' is not a number", path);
    return v->num;
}

static const char *jstr(const jv *root, const char *path)
{
    const jv *v = jget(root, path);
    if (!v || v->kind != J_STR) fail_msg("JSON path '%s' is not a string", path);
    return v->str;
}

static int jbool(const jv *root, const char *path)
{
    const jv *v = jget(root, path);
    if (!v || v->kind != J_BOOL) fail_msg("JSON path '%s' is not a boolean", path);
    return v->b;
}

/* ------------------------------------------------------------------ tests */

/* The parser itself must reject what it should, or the tests below prove nothing. */
static void json_parser_self_check(void **state)
{
    (void)state;
    const char *good = "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\n\"], \"b\": {}}";
    jv *v = jparse(good, strlen(good));
    assert_true(jnum(v, "a.1") == -2500.0);
    assert_string_equal(jstr(v, "a.4"), "x\xc3\xa9\n");
    jfree(v);
    const char *bad[] = {"{\"a\": 1,}", "[1 2]", "\"raw\nnewline\"", "\"\xff\"",   "{a: 1}", "[01]",
                         "\"\\x41\"",   "[1] x", "\"\xc0\xaf\"",     "\"\\ud800\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jp p = {(const unsigned char *)bad[i], strlen(bad[i]), 0, NULL};
        jv *w = jvalue(&p, 0);
        ws(&p);
        int ok = w && p.i == p.n;
        jfree(w);
        if (ok) fail_msg("accepted invalid JSON: %s", bad[i]);
    }
}

static void stories_text(void **state)
{
    (void)state;
    MF_REQUIRE_FILE(mf_model_path("stories260K.gguf"));
    mf_proc r = run_inspect(mf_model_path("stories260K.gguf"), NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    char b[256];
    assert_string_equal(line_after(r.out, "size:", b, sizeof b), "1185376 bytes (1.13 MiB)");
    assert_string_equal(line_after(r.out, "gguf:", b, sizeof b),
                        "version 3, 19 metadata keys, 48 tensors, alignment 32, data at offset 14176");
    assert_string_equal(line_after(r.out, "architecture:", b, sizeof b), "\"llama\"");
    assert_null(strstr(r.out, "cannot run"));
    assert_string_equal(line_after(r.out, "  context_length", b, sizeof b), "2048");
    assert_string_equal(line_after(r.out, "  embedding_length", b, sizeof b), "64");
    assert_string_equal(line_after(r.out, "  block_count", b, sizeof b), "5");
    assert_string_equal(line_after(r.out, "  head_count_kv", b, sizeof b), "4");
    assert_string_equal(line_after(r.out, "  head_dim", b, sizeof b), "8"); /* 64 / 8 heads */
    assert_string_equal(line_after(r.out, "  feed_forward_length", b, sizeof b), "172");
    assert_string_equal(line_after(r.out, "  vocab_size", b, sizeof b), "512");
    assert_string_equal(line_after(r.out, "tokenizer:", b, sizeof b), "\"llama\", 512 tokens");
    line_after(r.out, "special ids:", b, sizeof b);
    assert_non_null(strstr(b, "bos 1 eos 2 unk 0 pad 4294967295 (none"));
    assert_string_equal(line_after(r.out, "chat template:", b, sizeof b), "absent");
    /* tensor 1: output_norm.weight, 64 floats at 14176 + 131072 (docs/gguf.md §2) */
    line_after(r.out, "      1  output_norm.weight", b, sizeof b);
    assert_non_null(strstr(b, "F32"));
    assert_non_null(strstr(b, " 256 "));
    assert_non_null(strstr(b, "145248"));
    line_after(r.out, "      9  blk.0.ffn_down.weight", b, sizeof b);
    assert_non_null(strstr(b, "172 x 64"));
    line_after(r.out, "  F32", b, sizeof b);
    assert_non_null(strstr(b, "48 tensors"));
    assert_non_null(strstr(b, "1171200 bytes"));
    assert_string_equal(line_after(r.out, "parameters:", b, sizeof b), "292800 (0.293 M)");
    assert_string_equal(line_after(r.out, "bits/weight:", b, sizeof b), "32.000");
    /* KV cache: 2 (K,V) x 4 kv heads x 8 dims x 2 bytes x 5 layers = 640 bytes per position;
     * x 2048 = 1310720 */
    line_after(r.out, "kv cache:      2048", b, sizeof b);
    assert_non_null(strstr(b, "f16 1310720 bytes"));
    assert_non_null(strstr(b, "f32 2621440 bytes"));
    line_after(r.out, "kv cache:      4096", b, sizeof b);
    assert_non_null(strstr(b, "f16 2621440 bytes"));
    mf_proc_free(&r);
}

static void stories_json(void **state)
{
    (void)state;
    MF_REQUIRE_FILE(mf_model_path("stories260K.gguf"));
    mf_proc r = run_inspect(mf_model_path("stories260K.gguf"), "--json");
    assert_int_equal(r.rc, 0);
    jv *v = jparse(r.out, r.out_len);
    assert_string_equal(jstr(v, "file"), mf_model_path("stories260K.gguf"));
    assert_true(jnum(v, "file_size") == 1185376);
    assert_true(jnum(v, "gguf_version") == 3);
    assert_true(jnum(v, "n_kv") == 19);
    assert_true(jnum(v, "n_tensors") == 48);
    assert_true(jnum(v, "alignment") == 32);
    assert_true(jnum(v, "data_offset") == 14176);
    assert_string_equal(jstr(v, "architecture"), "llama");
    assert_true(jbool(v, "supported"));
    assert_int_equal(jget(v, "unsupported_reason")->kind, J_NULL);
    assert_true(jnum(v, "hparams.block_count") == 5);
    assert_true(jnum(v, "hparams.context_length") == 2048);
    /* floats are printed with 9 significant digits: enough to give back the exact f32 */
    assert_true((float)jnum(v, "hparams.rms_norm_eps") == 1e-5f);
    assert_string_equal(jstr(v, "tokenizer.model"), "llama");
    assert_true(jnum(v, "tokenizer.vocab_size") == 512);
    assert_true(jnum(v, "tokenizer.special.bos") == 1);
    assert_true(jnum(v, "tokenizer.special.eos") == 2);
    assert_false(jbool(v, "tokenizer.chat_template"));
    mf_proc_free(&r);
    jfree(v);
}

static void stories_json_tables(void **state)
{
    (void)state;
    MF_REQUIRE_FILE(mf_model_path("stories260K.gguf"));
    mf_proc r = run_inspect(mf_model_path("stories260K.gguf"), "--json");
    jv *v = jparse(r.out, r.out_len);
    /* metadata keys contain dots, so look them up directly in the object */
    const jv *md = jget(v, "metadata");
    assert_non_null(md);
    assert_int_equal(md->n, 19);
    assert_string_equal(md->keys[0], "tokenizer.ggml.tokens");
    assert_string_equal(jstr(md->items[0], "type"), "ARRAY");
    assert_string_equal(jstr(md->items[0], "value.array"), "STRING");
    assert_true(jnum(md->items[0], "value.count") == 512);
    assert_string_equal(jstr(md->items[0], "value.head.0"), "<unk>");
    assert_string_equal(md->keys[18], "llama.attention.layer_norm_rms_epsilon");
    assert_true((float)jnum(md->items[18], "value") == 1e-5f);
    const jv *ts = jget(v, "tensors");
    assert_int_equal(ts->n, 48);
    assert_string_equal(jstr(v, "tensors.0.name"), "token_embd.weight");
    assert_string_equal(jstr(v, "tensors.0.type"), "F32");
    assert_true(jnum(v, "tensors.0.shape.0") == 64);
    assert_true(jnum(v, "tensors.0.shape.1") == 512);
    assert_true(jnum(v, "tensors.0.bytes") == 131072);
    assert_true(jnum(v, "tensors.1.offset") == 145248);
    assert_true(jnum(v, "types.F32.tensors") == 48);
    assert_true(jnum(v, "types.F32.params") == 292800);
    assert_true(jnum(v, "params") == 292800);
    assert_true(jnum(v, "weight_bytes") == 1171200);
    assert_true(jnum(v, "bits_per_weight") == 32);
    assert_true(jnum(v, "kv_cache.0.n_ctx") == 2048);
    assert_true(jnum(v, "kv_cache.0.f16_bytes") == 1310720);
    assert_true(jnum(v, "kv_cache.1.n_ctx") == 4096);
    assert_true(jnum(v, "kv_cache.1.f32_bytes") == 5242880);
    mf_proc_free(&r);
    jfree(v);
}

/* Every byte value in strings, an unknown architecture, an unsupported tensor type. */
static void hostile_strings(void **state)
{
    (void)state;
    const char *path = mf_tmp_path("hostile.gguf");
    char all[256];
    for (int i = 0; i < 256; i++) all[i] = (char)i; /* NUL, controls, DEL, bytes >= 0x80 */
    const char *weird = "quote\" back\\slash\nnew\rline\ttab \xe2\x96\x81 \xf0\x9f\x98\x80 \xc3";
    const char *toks[] = {"\"", "\\", "\n", "\x01\x1f\x7f", "\xff\xfe", "\xe2\x96\x81ok", weird};
    const char *tmpl = "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' }}{{ m[\"content\"] }}{% endfor %}\n";
    mf_err err;
    mf_gguf_writer *w = mf_gguf_writer_new();
    mf_gguf_w_str(w, "general.architecture", "mamba\"\n");
    mf_gguf_w_strn(w, "general.name", all, sizeof all);
    mf_gguf_w_str(w, "tokenizer.ggml.model", weird);
    mf_gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 7);
    mf_gguf_w_str(w, "tokenizer.chat_template", tmpl);
    mf_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1);
    mf_gguf_w_u32(w, "tokenizer.ggml.seperator_token_id", 5); /* llama.cpp's spelling ... */
    mf_gguf_w_u32(w, "tokenizer.ggml.separator_token_id", 6); /* ... and the right one */
    mf_gguf_w_str(w, "key \"with\" quotes\n", "v");
    mf_gguf_w_f32(w, "nan", 0.0f / 0.0f);
    mf_gguf_w_u64(w, "big", UINT64_MAX);
    static uint8_t zeros[66 + 16];
    const int64_t ne[1] = {256}, ne2[1] = {4};
    assert_true(mf_gguf_w_tensor(w, "iq.weight", MF_TYPE_IQ2_XXS, 1, ne, zeros, &err) >= 0);
    assert_true(mf_gguf_w_tensor(w, "tab\there", MF_TYPE_F32, 1, ne2, zeros, &err) >= 0);
    if (mf_gguf_w_write(w, path, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);

    mf_proc r = run_inspect(path, "--json");
    assert_int_equal(r.rc, 0);
    jv *v = jparse(r.out, r.out_len);
    assert_string_equal(jstr(v, "architecture"), "mamba\"\n");
    assert_false(jbool(v, "supported"));
    assert_non_null(strstr(jstr(v, "unsupported_reason"), "unsupported architecture"));
    assert_int_equal(jget(v, "hparams")->kind, J_NULL);
    assert_int_equal(jget(v, "kv_cache")->kind, J_NULL);
    /* general.name: bytes 0..0x7f come back as themselves (NUL included), each byte 0x80..0xff
     * is a lone invalid byte and comes back as U+FFFD (EF BF BD) */
    const jv *name = jget(v, "name");
    assert_int_equal(name->str_len, 128 + 128 * 3);
    assert_memory_equal(name->str, all, 128);
    for (int i = 0; i < 128; i++) assert_memory_equal(name->str + 128 + 3 * i, "\xef\xbf\xbd", 3);
    /* the model string: valid multi-byte characters kept, the truncated final 0xC3 replaced */
    const char *want_model = "quote\" back\\slash\nnew\rline\ttab \xe2\x96\x81 \xf0\x9f\x98\x80 \xef\xbf\xbd";
    assert_string_equal(jstr(v, "tokenizer.model"), want_model);
    assert_true(jnum(v, "tokenizer.vocab_size") == 7);
    /* one "sep" (the first spelling), never a duplicate key in one object */
    const jv *sp = jget(v, "tokenizer.special");
    assert_int_equal(sp->n, 2);
    assert_true(jnum(v, "tokenizer.special.bos") == 1);
    assert_true(jnum(v, "tokenizer.special.sep") == 5);
    assert_true(jbool(v, "tokenizer.chat_template"));
    assert_true(jnum(v, "tokenizer.chat_template_bytes") == strlen(tmpl));
    const jv *md = jget(v, "metadata");
    int seen_tmpl = 0, seen_key = 0, seen_nan = 0, seen_big = 0;
    for (size_t i = 0; i < md->n; i++) {
        if (!strcmp(md->keys[i], "tokenizer.chat_template")) {
            assert_string_equal(jstr(md->items[i], "value"), tmpl);
            seen_tmpl = 1;
        }
        if (!strcmp(md->keys[i], "key \"with\" quotes\n")) seen_key = 1;
        if (!strcmp(md->keys[i], "nan")) {
            assert_int_equal(jget(md->items[i], "value")->kind, J_NULL); /* no NaN in JSON */
            seen_nan = 1;
        }
        if (!strcmp(md->keys[i], "big")) {
            assert_true(jnum(md->items[i], "value") == 18446744073709551615.0);
            seen_big = 1;
        }
        if (!strcmp(md->keys[i], "tokenizer.ggml.tokens")) {
            assert_string_equal(jstr(md->items[i], "value.head.3"), "\x01\x1f\x7f");
            assert_string_equal(jstr(md->items[i], "value.head.4"), "\xef\xbf\xbd\xef\xbf\xbd");
        }
    }
    assert_true(seen_tmpl && seen_key && seen_nan && seen_big);
    assert_string_equal(jstr(v, "tensors.0.type"), "IQ2_XXS");
    assert_false(jbool(v, "tensors.0.supported"));
    assert_true(jnum(v, "tensors.0.bytes") == 66);
    assert_string_equal(jstr(v, "tensors.1.name"), "tab\there");
    assert_false(jbool(v, "types.IQ2_XXS.supported"));
    assert_true(jnum(v, "unsupported_tensors") == 1);
    mf_proc_free(&r);
    jfree(v);

    /* the text output of the same file: marks, and no raw control bytes from the file */
    r = run_inspect(path, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "minfer cannot run this file"));
    assert_non_null(strstr(r.out, "unsupported architecture"));
    assert_non_null(strstr(r.out, "(unsupported type)"));
    assert_non_null(strstr(r.out, "chat template: present, "));
    for (size_t i = 0; i < r.out_len; i++) {
        unsigned char c = (unsigned char)r.out[i];
        if ((c < 0x20 && c != '\n') || c == 0x7f) fail_msg("raw control byte 0x%02x at %zu of the text output", c, i);
    }
    mf_proc_free(&r);
    unlink(path);
}

static void bad_file(void **state)
{
    (void)state;
    const char *path = mf_tmp_path("bad.gguf");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("GGUF\x01\0\0\0", 1, 8, f);
    fwrite("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 1, 16, f);
    fclose(f);
    for (int json = 0; json < 2; json++) {
        mf_proc r = run_inspect(path, json ? "--json" : NULL);
        assert_int_equal(r.rc, 1);
        assert_string_equal(r.out, "");
        /* exactly the reader's line */
        char want[1024];
        snprintf(want, sizeof want,
                 "%s: offset 4: GGUF version 1 is obsolete and not supported (re-convert the model)\n", path);
        assert_string_equal(r.err, want);
        mf_proc_free(&r);
    }
    unlink(path);
    mf_proc r = run_inspect("/nonexistent/model.gguf", NULL);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "/nonexistent/model.gguf: cannot open"));
    mf_proc_free(&r);
}

static void options(void **state)
{
    (void)state;
    mf_proc r = run_inspect("--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: minfer inspect MODEL [--json]"));
    mf_proc_free(&r);
    r = run_inspect("--frobnicate", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "unknown option '--frobnicate'"));
    mf_proc_free(&r);
    r = run_inspect("a.gguf", "b.gguf");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "more than one file"));
    mf_proc_free(&r);
}

/* ------------------------------------------------------------------ absurd shapes */

/* The memory estimates are products of sizes the file gives (issue 11: 4 million heads of
 * 1024 printed a wrapped KV size). Attention widths beyond 2^20 are refused by name by every
 * command that reads the hyperparameters; at the largest accepted shape the KV cache is
 * printed exactly: gpt-oss tiny rewritten with 1024 heads (and KV heads) of 1024, 4096
 * layers and a context of 2^22. Every second layer slides over a window of 8 (pattern 2):
 * per layer and position K and V take 2 * 2^20 * 4 = 2^23 bytes in float32, so
 * 2048 * 2^23 * 2^22 + 2048 * 2^23 * 8 = 2^56 + 2^37 = 72057731476881408 bytes. */
static void absurd_shapes(void **state)
{
    (void)state;
    const char *src = mf_tmp_path("shape-src.gguf"), *dst = mf_tmp_path("shape.gguf");
    const char *mk[] = {"-o", src, "--arch", "gpt-oss", NULL};
    mf_proc p = mf_run_tool("mkmodel", mk);
    assert_int_equal(p.rc, 0);
    mf_proc_free(&p);
    mf_key_edit e[] = {{"gpt-oss.attention.head_count", MF_GGUF_U32, 1024, 0, NULL},
                       {"gpt-oss.attention.head_count_kv", MF_GGUF_U32, 1024, 0, NULL},
                       {"gpt-oss.attention.key_length", MF_GGUF_U32, 1024, 0, NULL},
                       {"gpt-oss.attention.value_length", MF_GGUF_U32, 1024, 0, NULL},
                       {"gpt-oss.block_count", MF_GGUF_U32, 4096, 0, NULL},
                       {"gpt-oss.context_length", MF_GGUF_U32, 1u << 22, 0, NULL}};
    mf_copy_gguf(src, dst, e, 6);
    p = run_inspect(dst, NULL);
    assert_int_equal(p.rc, 0);
    if (!strstr(p.out, "kv cache:      4194304 tokens (context_length): f16 36028865738440704 bytes") ||
        !strstr(p.out, "f32 72057731476881408 bytes"))
        fail_msg("exact KV sizes expected in: %s", p.out);
    mf_proc_free(&p);
    /* one more head: the width 1025 * 1024 exceeds 2^20, refused by inspect (which still
     * shows the file), plan and run alike */
    e[0].u = e[1].u = 1025;
    mf_copy_gguf(src, dst, e, 6);
    const char *phrase = "attention width head_count 1025 x head size 1024 = 1049600 (KV: 1025 x 1024) exceeds 1048576";
    p = run_inspect(dst, NULL);
    assert_int_equal(p.rc, 0);
    if (!strstr(p.out, phrase) || strstr(p.out, "kv cache:")) fail_msg("inspect: %s", p.out);
    mf_proc_free(&p);
    const char *plan[] = {"plan", "-m", dst, NULL}, *run[] = {"run", "-m", dst, "-p", "hi", NULL};
    const char *const *cmds[] = {plan, run};
    for (int c = 0; c < 2; c++) {
        p = mf_run_tool("minfer", cmds[c]);
        assert_int_equal(p.rc, 1);
        if (!strstr(p.err, phrase)) fail_msg("%s: %s", cmds[c][0], p.err);
        mf_proc_free(&p);
    }
    unlink(src);
    unlink(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_parser_self_check),
        cmocka_unit_test(stories_text),
        cmocka_unit_test(stories_json),
        cmocka_unit_test(stories_json_tables),
        cmocka_unit_test(hostile_strings),
        cmocka_unit_test(bad_file),
        cmocka_unit_test(options),
        cmocka_unit_test(absurd_shapes),
    };
    return MF_RUN("inspect", tests);
}
