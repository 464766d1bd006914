/* cmd_inspect.c — `minfer inspect MODEL [--json]`: what is in a GGUF file.
 *
 * Prints, never computes model math: the container (version, counts, alignment, data offset),
 * the architecture and every hyperparameter minfer reads for it (mf_hparams_read), the
 * tokenizer (model, vocabulary size, special ids, chat template), every metadata key, a table
 * of the tensors with their types, shapes and bytes, totals per type, parameter count, average
 * bits per weight, and the memory the weights and the KV cache take (memory.h mf_mem_kv_bytes).
 *
 * It works on any file the GGUF reader accepts: for an architecture minfer does not run, the
 * generic parts are printed and the architecture is marked unsupported; tensor types without a
 * minfer kernel are listed by name and marked unsupported. A file the reader rejects gives the
 * reader's one-line error and exit code 1.
 *
 * --json prints the same as one JSON object (keys: docs/gguf.md). Strings from the file can hold
 * anything: quotes, newlines, control bytes, invalid UTF-8. JSON strings are escaped per RFC 8259
 * (\" \\ \n \r \t \b \f, \u00XX for other control bytes) and every byte that is not part of a
 * well-formed UTF-8 sequence is written as U+FFFD, so the output is always valid JSON.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "memory.h"
#include "types.h"

/* ------------------------------------------------------------------ strings */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), 0 if malformed
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

static void json_str(const char *p, uint64_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    putchar('"');
    for (uint64_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = utf8_len(s + i, (size_t)(n - i));
        if (len == 0) {
            fputs("\\ufffd", stdout);
            i++;
            continue;
        }
        if (len > 1) {
            fwrite(s + i, 1, len, stdout);
            i += len;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\b': fputs("\\b", stdout); break;
        case '\f': fputs("\\f", stdout); break;
        default:
            if (c < 0x20 || c == 0x7F) printf("\\u%04x", c);
            else putchar((int)c);
        }
        i++;
    }
    putchar('"');
}

/* Text mode: C-style escapes (\" \\ \n \t, \xNN for other control bytes, DEL and bytes that are
 * not well-formed UTF-8) of at most `max` bytes of the string, cut on a character boundary,
 * written into out (cap >= 4 * max + 1). Returns the number of input bytes shown. */
static uint64_t text_esc(char *out, size_t cap, const char *p, uint64_t n, uint64_t max)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t k = 0;
    uint64_t i = 0;
    while (i < n && i < max && k + 5 < cap) {
        unsigned c = s[i];
        size_t len = utf8_len(s + i, (size_t)(n - i));
        if (len > 1) {
            memcpy(out + k, s + i, len);
            k += len;
            i += len;
            continue;
        }
        if (c == '"' || c == '\\') k += (size_t)snprintf(out + k, cap - k, "\\%c", c);
        else if (c == '\n') k += (size_t)snprintf(out + k, cap - k, "\\n");
        else if (c == '\t') k += (size_t)snprintf(out + k, cap - k, "\\t");
        else if (c < 0x20 || c >= 0x7F) k += (size_t)snprintf(out + k, cap - k, "\\x%02x", c);
        else out[k++] = (char)c;
        i++;
    }
    out[k] = 0;
    return i;
}

/* a quoted, escaped string value, then "... (N bytes)" when it was cut */
static void text_str(const char *p, uint64_t n, uint64_t max)
{
    char buf[4 * 128 + 1];
    uint64_t shown = text_esc(buf, sizeof buf, p, n, max < 128 ? max : 128);
    printf("\"%s\"", buf);
    if (shown < n) printf("... (%" PRIu64 " bytes)", n);
}

static void json_num(double v)
{
    if (isfinite(v)) printf("%.9g", v);
    else fputs("null", stdout); /* JSON has no NaN or infinity */
}

static const char *human(uint64_t b, char buf[32])
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    if (i == 0) snprintf(buf, 32, "%" PRIu64 " B", b);
    else snprintf(buf, 32, "%.2f %s", v, u[i]);
    return buf;
}

/* ------------------------------------------------------------------ hyperparameters */

/* One printed hyperparameter: both output formats walk the same list. */
typedef struct hfield {
    const char *name;
    int is_float;
    double v;
} hfield;

static int hfields(const mf_hparams *hp, hfield *f)
{
    int n = 0;
#define I(nm, x) (f[n++] = (hfield){nm, 0, (double)(x)})
#define F(nm, x) (f[n++] = (hfield){nm, 1, (double)(x)})
    I("context_length", hp->n_ctx_train);
    I("embedding_length", hp->n_embd);
    I("block_count", hp->n_layers);
    I("head_count", hp->n_heads);
    I("head_count_kv", hp->n_kv_heads);
    I("head_dim", hp->head_dim);
    I("vocab_size", hp->n_vocab);
    F("rms_norm_eps", hp->eps);
    if (hp->arch == MF_ARCH_LLAMA) I("feed_forward_length", hp->n_ff);
    I("rope_neox", hp->rope_neox);
    I("rope_dimension_count", hp->n_rot);
    F("rope_freq_base", hp->rope_base);
    F("rope_freq_scale", hp->rope_freq_scale);
    I("rope_yarn", hp->rope_yarn);
    if (hp->rope_yarn) {
        I("yarn_original_context", hp->n_ctx_orig);
        F("yarn_attn_factor", hp->yarn_attn_factor);
        F("yarn_beta_fast", hp->yarn_beta_fast);
        F("yarn_beta_slow", hp->yarn_beta_slow);
    }
    F("attn_scale", hp->attn_scale);
    if (hp->arch == MF_ARCH_GPT_OSS) {
        I("sliding_window", hp->window);
        I("sliding_window_pattern", hp->swa_pattern);
        I("attention_sinks", hp->has_sinks);
        I("expert_count", hp->n_experts);
        I("expert_used_count", hp->n_experts_used);
        I("expert_feed_forward_length", hp->n_ff_exp);
        F("swiglu_limit", hp->swiglu_limit);
        F("swiglu_alpha", hp->swiglu_alpha);
    }
#undef I
#undef F
    return n;
}

/* ------------------------------------------------------------------ tokenizer keys */

static const struct {
    const char *label, *key;
} SPECIAL[] = {
    {"bos", "tokenizer.ggml.bos_token_id"},
    {"eos", "tokenizer.ggml.eos_token_id"},
    {"unk", "tokenizer.ggml.unknown_token_id"},
    {"pad", "tokenizer.ggml.padding_token_id"},
    /* llama.cpp's key is spelled "seperator"; accept the correct spelling too */
    {"sep", "tokenizer.ggml.seperator_token_id"},
    {"sep", "tokenizer.ggml.separator_token_id"},
};
#define N_SPECIAL (sizeof SPECIAL / sizeof SPECIAL[0])

static int is_int_type(uint32_t t) { return t <= MF_GGUF_I32 || t == MF_GGUF_U64 || t == MF_GGUF_I64; }

static int64_t int_value(const mf_gguf_kv *kv)
{
    int sign = kv->type == MF_GGUF_I8 || kv->type == MF_GGUF_I16 || kv->type == MF_GGUF_I32 || kv->type == MF_GGUF_I64;
    return sign ? kv->v.i : (int64_t)kv->v.u;
}

/* The record to show for SPECIAL[i]: present with an integer value, and no earlier entry with
 * the same label shown (both spellings of "sep" may be present; a label appears once). */
static const mf_gguf_kv *special_kv(const mf_gguf *g, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (!strcmp(SPECIAL[j].label, SPECIAL[i].label) && special_kv(g, j)) return NULL;
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, SPECIAL[i].key);
    return kv && is_int_type(kv->type) ? kv : NULL;
}

static const mf_gguf_kv *str_kv(const mf_gguf *g, const char *key)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    return kv && kv->type == MF_GGUF_STR ? kv : NULL;
}

/* ------------------------------------------------------------------ metadata values */

/* elements of an array shown in a summary */
#define ARR_HEAD 8

static void arr_elem(const mf_gguf_kv *kv, uint64_t i, int json)
{
    static const uint8_t size[MF_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (kv->arr_type == MF_GGUF_STR) {
        if (json) json_str(kv->arr_str[i].ptr, kv->arr_str[i].len);
        else text_str(kv->arr_str[i].ptr, kv->arr_str[i].len, 24);
        return;
    }
    const uint8_t *p = kv->arr_data + i * size[kv->arr_type];
    uint64_t raw = 0;
    for (int b = size[kv->arr_type] - 1; b >= 0; b--) raw = (raw << 8) | p[b];
    switch (kv->arr_type) {
    case MF_GGUF_I8: printf("%d", (int8_t)raw); break;
    case MF_GGUF_I16: printf("%d", (int16_t)raw); break;
    case MF_GGUF_I32: printf("%" PRId32, (int32_t)raw); break;
    case MF_GGUF_I64: printf("%" PRId64, (int64_t)raw); break;
    case MF_GGUF_F32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        json_num(f);
        break;
    }
    case MF_GGUF_F64: {
        double d;
        memcpy(&d, &raw, 8);
        json ? json_num(d) : (void)printf("%.17g", d);
        break;
    }
    case MF_GGUF_BOOL: fputs(raw ? "true" : "false", stdout); break;
    default: printf("%" PRIu64, raw); break;
    }
}

static void kv_value(const mf_gguf_kv *kv, int json)
{
    switch (kv->type) {
    case MF_GGUF_STR:
        if (json) json_str(kv->str, kv->str_len);
        else text_str(kv->str, kv->str_len, 80);
        return;
    case MF_GGUF_F32: json_num(kv->v.f); return;
    case MF_GGUF_F64: json ? json_num(kv->v.f) : (void)printf("%.17g", kv->v.f); return;
    case MF_GGUF_BOOL: fputs(kv->v.u ? "true" : "false", stdout); return;
    case MF_GGUF_ARR: {
        uint64_t n = kv->arr_n < ARR_HEAD ? kv->arr_n : ARR_HEAD;
        if (json) {
            printf("{\"array\": \"%s\", \"count\": %" PRIu64 ", \"head\": [", mf_gguf_vtype_name(kv->arr_type),
                   kv->arr_n);
        } else {
            printf("[%" PRIu64 "] ", kv->arr_n);
            putchar('[');
        }
        for (uint64_t i = 0; i < n; i++) {
            if (i) fputs(", ", stdout);
            arr_elem(kv, i, json);
        }
        if (!json && kv->arr_n > n) fputs(", ...", stdout);
        fputs(json ? "]}" : "]", stdout);
        return;
    }
    case MF_GGUF_U64: printf("%" PRIu64, kv->v.u); return; /* may exceed INT64_MAX */
    default: printf("%" PRId64, int_value(kv)); return;
    }
}

/* ------------------------------------------------------------------ per-type totals */

typedef struct tstat {
    uint64_t count, bytes, params;
} tstat;

typedef struct summary {
    tstat by_type[MF_TYPE_COUNT];
    uint64_t bytes, params;
    int n_unsupported;
} summary;

static void summarize(const mf_gguf *g, summary *s)
{
    memset(s, 0, sizeof *s);
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        tstat *ts = &s->by_type[t->type]; /* the reader accepted only ids < MF_TYPE_COUNT */
        ts->count++;
        ts->bytes += t->nbytes;
        ts->params += t->n_elements;
        s->bytes += t->nbytes;
        s->params += t->n_elements;
        if (!mf_type_supported(t->type)) s->n_unsupported++;
    }
}

/* ------------------------------------------------------------------ text output */

static void shape_text(const mf_gguf_tensor *t, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (uint32_t j = 0; j < t->n_dims && k < n; j++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, j ? " x " : "", t->ne[j]);
    if (t->n_dims == 0) snprintf(buf, n, "scalar");
}

static void print_text(const mf_gguf *g, const mf_hparams *hp, int hp_ok, const char *hp_err)
{
    char h[32], tb[32];
    summary s;
    summarize(g, &s);
    const mf_gguf_kv *arch = str_kv(g, "general.architecture");
    printf("file:          %s\n", mf_gguf_path(g));
    printf("size:          %" PRIu64 " bytes (%s)\n", mf_gguf_file_size(g), human(mf_gguf_file_size(g), h));
    printf("gguf:          version %u, %" PRIu64 " metadata keys, %" PRIu64
           " tensors, alignment %u, data at offset %" PRIu64 "\n",
           mf_gguf_version(g), mf_gguf_n_kv(g), mf_gguf_n_tensors(g), mf_gguf_alignment(g), mf_gguf_data_offset(g));
    printf("architecture:  ");
    if (arch) text_str(arch->str, arch->str_len, 64);
    else fputs("(none: no general.architecture key)", stdout);
    /* the reason is mf_hparams_read's message: "unsupported architecture 'x' (...)" for one
     * minfer does not run, or the missing/invalid key of one it does */
    if (!hp_ok) {
        char why[4 * 1024 + 1];
        text_esc(why, sizeof why, hp_err, strlen(hp_err), 1024);
        printf("\n  minfer cannot run this file: %s", why);
    }
    putchar('\n');

    if (hp_ok) {
        hfield f[40];
        int n = hfields(hp, f);
        printf("hyperparameters:\n");
        for (int i = 0; i < n; i++) {
            printf("  %-28s ", f[i].name);
            if (f[i].is_float) printf("%g\n", f[i].v);
            else printf("%.0f\n", f[i].v);
        }
    }

    const mf_gguf_kv *model = str_kv(g, "tokenizer.ggml.model");
    const mf_gguf_kv *toks = mf_gguf_find_kv(g, "tokenizer.ggml.tokens");
    printf("tokenizer:     ");
    if (model) text_str(model->str, model->str_len, 32);
    else fputs("(none)", stdout);
    if (toks && toks->type == MF_GGUF_ARR) printf(", %" PRIu64 " tokens", toks->arr_n);
    putchar('\n');
    printf("special ids:  ");
    int any = 0;
    for (size_t i = 0; i < N_SPECIAL; i++) {
        const mf_gguf_kv *kv = special_kv(g, i);
        if (!kv) continue;
        int64_t v = int_value(kv);
        int none = toks && toks->type == MF_GGUF_ARR && (v < 0 || (uint64_t)v >= toks->arr_n);
        printf(" %s %" PRId64 "%s", SPECIAL[i].label, v, none ? " (none: outside the vocabulary)" : "");
        any = 1;
    }
    printf("%s\n", any ? "" : " (none)");
    const mf_gguf_kv *tmpl = str_kv(g, "tokenizer.chat_template");
    if (tmpl) printf("chat template: present, %" PRIu64 " bytes\n", tmpl->str_len);
    else printf("chat template: absent\n");

    printf("metadata:\n");
    for (uint64_t i = 0; i < mf_gguf_n_kv(g); i++) {
        const mf_gguf_kv *kv = mf_gguf_kv_at(g, i);
        char type[32];
        if (kv->type == MF_GGUF_ARR) snprintf(type, sizeof type, "ARRAY<%s>", mf_gguf_vtype_name(kv->arr_type));
        else snprintf(type, sizeof type, "%s", mf_gguf_vtype_name(kv->type));
        char key[4 * 128 + 1];
        text_esc(key, sizeof key, kv->key, strlen(kv->key), 128);
        printf("  %-40s %-15s ", key, type);
        kv_value(kv, 0);
        putchar('\n');
    }

    /* names are at most 63 bytes: escaped, at most 4 * 63 */
    char tname[4 * MF_GGUF_MAX_NAME + 1];
    int w = 4;
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const char *nm = mf_gguf_tensor_at(g, i)->name;
        text_esc(tname, sizeof tname, nm, strlen(nm), MF_GGUF_MAX_NAME);
        if ((int)strlen(tname) > w) w = (int)strlen(tname);
    }
    printf("tensors:\n  %5s  %-*s  %-8s %-22s %14s %14s\n", "#", w, "name", "type", "shape", "bytes", "file offset");
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        char shape[96];
        shape_text(t, shape, sizeof shape);
        text_esc(tname, sizeof tname, t->name, strlen(t->name), MF_GGUF_MAX_NAME);
        printf("  %5" PRIu64 "  %-*s  %-8s %-22s %14" PRIu64 " %14" PRIu64 "%s\n", i, w, tname,
               mf_type_name(t->type, tb), shape, t->nbytes, mf_gguf_data_offset(g) + t->offset,
               mf_type_supported(t->type) ? "" : "  (unsupported type)");
    }
    printf("totals by type:\n");
    for (uint32_t ty = 0; ty < MF_TYPE_COUNT; ty++) {
        const tstat *ts = &s.by_type[ty];
        if (!ts->count) continue;
        printf("  %-8s %6" PRIu64 " tensors %16" PRIu64 " bytes %16" PRIu64 " parameters%s\n", mf_type_name(ty, tb),
               ts->count, ts->bytes, ts->params, mf_type_supported(ty) ? "" : "  (unsupported type)");
    }
    printf("parameters:    %" PRIu64 " (%.3f M)\n", s.params, (double)s.params / 1e6);
    if (s.params) printf("bits/weight:   %.3f\n", 8.0 * (double)s.bytes / (double)s.params);
    printf("weights:       %" PRIu64 " bytes (%s)\n", s.bytes, human(s.bytes, h));
    if (s.n_unsupported)
        printf("note:          %d tensor(s) of a type minfer has no kernel for: the file cannot be run\n",
               s.n_unsupported);
    if (hp_ok) {
        int64_t ctx[2] = {hp->n_ctx_train, 4096};
        for (int i = 0; i < (ctx[0] == ctx[1] ? 1 : 2); i++) {
            char h2[32];
            uint64_t f16 = mf_mem_kv_bytes(hp, ctx[i], 1, 2), f32 = mf_mem_kv_bytes(hp, ctx[i], 1, 4);
            printf("kv cache:      %" PRId64 " tokens%s: f16 %" PRIu64 " bytes (%s), f32 %" PRIu64 " bytes (%s)\n",
                   ctx[i], i == 0 ? " (context_length)" : "", f16, human(f16, h), f32, human(f32, h2));
        }
    }
}

/* ------------------------------------------------------------------ JSON output */

static void print_json(const mf_gguf *g, const mf_hparams *hp, int hp_ok, const char *hp_err)
{
    char tb[32];
    summary s;
    summarize(g, &s);
    const mf_gguf_kv *arch = str_kv(g, "general.architecture");
    const mf_gguf_kv *name = str_kv(g, "general.name");
    fputs("{\"file\": ", stdout);
    json_str(mf_gguf_path(g), strlen(mf_gguf_path(g)));
    printf(", \"file_size\": %" PRIu64 ", \"gguf_version\": %u, \"n_kv\": %" PRIu64 ", \"n_tensors\": %" PRIu64
           ", \"alignment\": %u, \"data_offset\": %" PRIu64,
           mf_gguf_file_size(g), mf_gguf_version(g), mf_gguf_n_kv(g), mf_gguf_n_tensors(g), mf_gguf_alignment(g),
           mf_gguf_data_offset(g));
    fputs(",\n \"architecture\": ", stdout);
    if (arch) json_str(arch->str, arch->str_len);
    else fputs("null", stdout);
    fputs(", \"name\": ", stdout);
    if (name) json_str(name->str, name->str_len);
    else fputs("null", stdout);
    printf(", \"supported\": %s, \"unsupported_reason\": ", hp_ok ? "true" : "false");
    if (hp_ok) fputs("null", stdout);
    else json_str(hp_err, strlen(hp_err));

    fputs(",\n \"hparams\": ", stdout);
    if (hp_ok) {
        hfield f[40];
        int n = hfields(hp, f);
        putchar('{');
        for (int i = 0; i < n; i++) {
            printf("%s\"%s\": ", i ? ", " : "", f[i].name);
            if (f[i].is_float) json_num(f[i].v);
            else printf("%.0f", f[i].v);
        }
        putchar('}');
    } else {
        fputs("null", stdout);
    }

    const mf_gguf_kv *model = str_kv(g, "tokenizer.ggml.model");
    const mf_gguf_kv *toks = mf_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const mf_gguf_kv *tmpl = str_kv(g, "tokenizer.chat_template");
    fputs(",\n \"tokenizer\": {\"model\": ", stdout);
    if (model) json_str(model->str, model->str_len);
    else fputs("null", stdout);
    fputs(", \"vocab_size\": ", stdout);
    if (toks && toks->type == MF_GGUF_ARR) printf("%" PRIu64, toks->arr_n);
    else fputs("null", stdout);
    fputs(", \"special\": {", stdout);
    int first = 1;
    for (size_t i = 0; i < N_SPECIAL; i++) {
        const mf_gguf_kv *kv = special_kv(g, i);
        if (!kv) continue;
        printf("%s\"%s\": %" PRId64, first ? "" : ", ", SPECIAL[i].label, int_value(kv));
        first = 0;
    }
    printf("}, \"chat_template\": %s, \"chat_template_bytes\": ", tmpl ? "true" : "false");
    if (tmpl) printf("%" PRIu64, tmpl->str_len);
    else fputs("null", stdout);
    putchar('}');

    fputs(",\n \"metadata\": {", stdout);
    for (uint64_t i = 0; i < mf_gguf_n_kv(g); i++) {
        const mf_gguf_kv *kv = mf_gguf_kv_at(g, i);
        fputs(i ? ",\n   " : "\n   ", stdout);
        json_str(kv->key, strlen(kv->key));
        printf(": {\"type\": \"%s\", \"value\": ", mf_gguf_vtype_name(kv->type));
        kv_value(kv, 1);
        putchar('}');
    }
    fputs("},\n \"tensors\": [", stdout);
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        fputs(i ? ",\n   " : "\n   ", stdout);
        fputs("{\"name\": ", stdout);
        json_str(t->name, strlen(t->name));
        printf(", \"type\": \"%s\", \"supported\": %s, \"shape\": [", mf_type_name(t->type, tb),
               mf_type_supported(t->type) ? "true" : "false");
        for (uint32_t j = 0; j < t->n_dims; j++) printf("%s%" PRId64, j ? ", " : "", t->ne[j]);
        printf("], \"params\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"offset\": %" PRIu64 "}", t->n_elements, t->nbytes,
               mf_gguf_data_offset(g) + t->offset);
    }
    fputs("],\n \"types\": {", stdout);
    first = 1;
    for (uint32_t ty = 0; ty < MF_TYPE_COUNT; ty++) {
        const tstat *ts = &s.by_type[ty];
        if (!ts->count) continue;
        printf("%s\"%s\": {\"tensors\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"params\": %" PRIu64
               ", \"supported\": %s}",
               first ? "" : ", ", mf_type_name(ty, tb), ts->count, ts->bytes, ts->params,
               mf_type_supported(ty) ? "true" : "false");
        first = 0;
    }
    printf("},\n \"params\": %" PRIu64 ", \"weight_bytes\": %" PRIu64 ", \"bits_per_weight\": ", s.params, s.bytes);
    if (s.params) json_num(8.0 * (double)s.bytes / (double)s.params);
    else fputs("null", stdout);
    printf(", \"unsupported_tensors\": %d", s.n_unsupported);
    fputs(",\n \"kv_cache\": ", stdout);
    if (hp_ok) {
        int64_t ctx[2] = {hp->n_ctx_train, 4096};
        putchar('[');
        for (int i = 0; i < (ctx[0] == ctx[1] ? 1 : 2); i++)
            printf("%s{\"n_ctx\": %" PRId64 ", \"f16_bytes\": %" PRIu64 ", \"f32_bytes\": %" PRIu64 "}", i ? ", " : "",
                   ctx[i], mf_mem_kv_bytes(hp, ctx[i], 1, 2), mf_mem_kv_bytes(hp, ctx[i], 1, 4));
        putchar(']');
    } else {
        fputs("null", stdout);
    }
    fputs("}\n", stdout);
}

/* ------------------------------------------------------------------ command */

int mf_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!(path = drv_next("inspect", argc, argv, &i))) return 2;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: minfer inspect MODEL [--json]\n"
                   "  describe a GGUF file: architecture, hyperparameters, tokenizer, metadata,\n"
                   "  tensors, totals per type, parameters, bits per weight, weight and KV memory\n"
                   "  --json     the same as one JSON object (keys: docs/gguf.md)\n"
                   "  -m MODEL   the file (or give it as the first argument)\n");
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "minfer inspect: unknown option '%s' (see minfer inspect --help)\n", argv[i]);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "minfer inspect: more than one file given ('%s' and '%s')\n", path, argv[i]);
            return 2;
        }
    }
    if (!path && !(path = drv_default_model())) return 1;

    mf_err err;
    mf_gguf *g = mf_gguf_open(path, &err);
    if (!g) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    mf_hparams hp;
    mf_err hp_err;
    int hp_ok = mf_hparams_read(g, &hp, &hp_err) == 0;
    if (json) print_json(g, &hp, hp_ok, hp_err.msg);
    else print_text(g, &hp, hp_ok, hp_err.msg);
    mf_gguf_close(g);
    return 0;
}
