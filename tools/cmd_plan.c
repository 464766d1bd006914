/* cmd_plan.c — `minfer plan`: will this model fit on that device, and how fast can it
 * decode at best?
 *
 *   minfer plan [-m MODEL] [--ctx N] [--gpu NAME | --mem GB --bandwidth GB/s]
 *               [--cpu-bandwidth GB/s] [--kv-f16 | --kv-f32] [--results FILE] [--json]
 *
 * Reads only the GGUF header (engine/plan.h does the arithmetic): weight bytes per type,
 * bytes read per decoded token, KV cache, scratch; then, for every device of the built-in
 * table (or the one named by --gpu, or a custom one), whether weights + KV + scratch fit in
 * its memory minus a headroom, and the bandwidth bound on decode speed at context 0 and at
 * the requested context. The "this CPU" row measures this machine's read bandwidth with the
 * probe `minfer bench` uses (or takes --cpu-bandwidth). Measured generation speeds of the same file on the same kind of
 * device are taken from a `minfer bench --save` results file and shown next to the bound.
 * Keys of --json: docs/plan.md. Bad input: one line on stderr, exit code 1.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "plan.h"
#include "plan_devices.h"
#include "plan_records.h"
#include "sha256.h"

#define MAX_ROWS 32

typedef struct plan_args {
    const char *model, *gpu, *results;
    int ctx;              /* 0: the default */
    float mem_gb, bw_gbs; /* custom device, 0 = not given */
    float cpu_bw_gbs;     /* this CPU's bandwidth, 0 = measure it */
    int kv_elem;          /* 0: backend default */
    int json;
} plan_args;

static void usage(FILE *f)
{
    fprintf(f, "usage: minfer plan [-m MODEL] [options]\n"
               "  --ctx N          context length (default: the training context, at most 4096)\n"
               "  --gpu NAME       only the devices whose name contains NAME (case-insensitive;\n"
               "                   'cpu' selects this machine's CPU)\n"
               "  --mem GB --bandwidth GB/s   a custom device (GB = 1e9 bytes, no headroom)\n"
               "  --cpu-bandwidth GB/s        this CPU's bandwidth instead of measuring it\n"
               "  --kv-f16         binary16 KV cache on every device\n"
               "  --kv-f32         float32 KV cache on every device\n"
               "                   (default: binary16 on every device, as the sessions)\n"
               "  --results FILE   `minfer bench --save` records to compare with\n"
               "                   (default: docs/bench-results.jsonl when present)\n"
               "  --json           one JSON object on stdout (keys: docs/plan.md)\n");
}

static int parse(int argc, char **argv, plan_args *a)
{
    memset(a, 0, sizeof *a);
    const char *C = "plan";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
#define VAL()                                              \
    do {                                                   \
        if (!(v = drv_next(C, argc, argv, &i))) return -1; \
    } while (0)
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            VAL();
            a->model = v;
        } else if (!strcmp(o, "--ctx")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 24, &a->ctx)) return -1;
        } else if (!strcmp(o, "--gpu")) {
            VAL();
            a->gpu = v;
        } else if (!strcmp(o, "--mem")) {
            VAL();
            if (drv_float(C, o, v, 1e-3, 1e6, &a->mem_gb)) return -1;
        } else if (!strcmp(o, "--bandwidth")) {
            VAL();
            if (drv_float(C, o, v, 1e-3, 1e6, &a->bw_gbs)) return -1;
        } else if (!strcmp(o, "--cpu-bandwidth")) {
            VAL();
            if (drv_float(C, o, v, 1e-3, 1e6, &a->cpu_bw_gbs)) return -1;
        } else if (!strcmp(o, "--kv-f16")) a->kv_elem = 2;
        else if (!strcmp(o, "--kv-f32")) a->kv_elem = 4;
        else if (!strcmp(o, "--results")) {
            VAL();
            a->results = v;
        } else if (!strcmp(o, "--json")) a->json = 1;
        else {
            fprintf(stderr, "minfer plan: unknown option '%s' (see minfer plan --help)\n", o);
            return -1;
        }
#undef VAL
    }
    if ((a->mem_gb > 0) != (a->bw_gbs > 0)) {
        fprintf(stderr, "minfer plan: a custom device needs both --mem GB and --bandwidth GB/s\n");
        return -1;
    }
    if (a->gpu && a->mem_gb > 0) {
        fprintf(stderr, "minfer plan: --gpu and --mem/--bandwidth exclude each other\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ formatting */

/* decimal units, three significant digits: "256 B", "3.06 KB", "12.1 GB" */
static const char *fmt_bytes(double b, char *buf, size_t cap)
{
    const char *unit[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    double a = b < 0 ? -b : b;
    while (a >= 1000 && u < 4) {
        a /= 1000;
        b /= 1000;
        u++;
    }
    if (u == 0) snprintf(buf, cap, "%.0f B", b);
    else snprintf(buf, cap, a >= 100 ? "%.0f %s" : a >= 10 ? "%.1f %s" : "%.2f %s", b, unit[u]);
    return buf;
}

static const char *fmt_rate(double t, char *buf, size_t cap)
{
    if (t <= 0) snprintf(buf, cap, "?");
    else snprintf(buf, cap, t >= 100 ? "%.0f" : "%.1f", t);
    return buf;
}

/* JSON string: RFC 8259 escapes; bytes outside well-formed UTF-8 become U+FFFD */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    for (size_t i = 1; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    /* overlong 3- and 4-byte forms, surrogates, beyond U+10FFFF */
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

static void json_str(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    putchar('"');
    while (*s) {
        unsigned c = *s;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
            s++;
        } else if (c == '\n') {
            printf("\\n");
            s++;
        } else if (c < 0x20) {
            printf("\\u%04x", c);
            s++;
        } else if (c < 0x80) {
            putchar((int)c);
            s++;
        } else {
            size_t n = utf8_seq(s);
            if (n) {
                fwrite(s, 1, n, stdout);
                s += n;
            } else {
                printf("\\ufffd");
                s++;
            }
        }
    }
    putchar('"');
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case MF_PLAN_CUDA: return "cuda";
    case MF_PLAN_APPLE: return "apple";
    case MF_PLAN_HOST: return "cpu";
    default: return "custom";
    }
}

/* ------------------------------------------------------------------ inputs */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* docs/bench-results.jsonl in the current directory, then in the checkout holding the
 * binary (build/minfer -> ../docs); NULL when neither exists */
static const char *default_results(char *buf, size_t cap)
{
    const char *rel = "docs/bench-results.jsonl";
    if (access(rel, R_OK) == 0) return rel;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
    }
    snprintf(buf, cap, "%s/%s", exe, rel);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

/* The CPU model as `minfer bench` records it: the CPU backend's device name up to " (" */
static void cpu_model(char *out, size_t cap)
{
    mf_err err;
    out[0] = 0;
    mf_backend *be = mf_backend_cpu_new(1, &err);
    if (!be) return;
    const char *paren = strstr(be->device_name, " (");
    size_t k = paren ? (size_t)(paren - be->device_name) : strlen(be->device_name);
    snprintf(out, cap, "%.*s", (int)k, be->device_name);
    be->free(be);
}

typedef struct row {
    mf_plan_device dev;
    mf_plan_fit fit;
    int measured;
    plan_record rec;
    int64_t rec_ctx; /* context at which the record's tokens were decoded, on average */
    double rec_bound;
} row;

/* ------------------------------------------------------------------ output */

/* the CPU backend's thread count by default: one per core (the host row's) */
static int host_threads(void) { return plan_host_device(0.0).threads; }

static void print_text(const char *path, const mf_plan_model *pm, int ctx, int ctx_default, const row *rows, int n,
                       const char *results, int n_bad)
{
    const mf_hparams *hp = &pm->hp;
    char b1[32], b2[32], b3[32];
    printf("model      %s: %s, %d layers, d %d, %d heads (%d KV) of %d, ", base_name(path), hp->arch_name, hp->n_layers,
           hp->n_embd, hp->n_heads, hp->n_kv_heads, hp->head_dim);
    if (hp->n_experts) printf("%d experts (%d used) of width %d", hp->n_experts, hp->n_experts_used, hp->n_ff_exp);
    else printf("FFN %d", hp->n_ff);
    printf(", vocab %d, trained context %d\n", hp->n_vocab, hp->n_ctx_train);
    printf("weights    %s in %llu tensors (%.2f%s params):", fmt_bytes((double)pm->weight_bytes, b1, sizeof b1),
           (unsigned long long)pm->n_tensors, pm->n_params >= 1e9 ? pm->n_params / 1e9 : pm->n_params / 1e6,
           pm->n_params >= 1e9 ? "B" : "M");
    for (int t = 0; t < MF_TYPE_COUNT; t++) {
        if (!pm->type_tensors[t]) continue;
        char tb[32];
        printf(" %s %s (%.1f%%)", mf_type_name((uint32_t)t, tb), fmt_bytes((double)pm->type_bytes[t], b1, sizeof b1),
               100.0 * (double)pm->type_bytes[t] / (double)(pm->weight_bytes ? pm->weight_bytes : 1));
    }
    printf("\n");
    if (pm->n_unsupported)
        printf("           note: %d tensor%s of types minfer cannot compute (%s): the plan holds for any engine\n"
               "           that reads these bytes, but `minfer run` refuses this file\n",
               pm->n_unsupported, pm->n_unsupported > 1 ? "s" : "", pm->unsupported);

    uint64_t per_tok = mf_plan_bytes_per_token(pm);
    if (hp->n_experts) {
        printf("per token  %s read = %s shared (every non-expert tensor, token_embd as one %s row)\n",
               fmt_bytes((double)per_tok, b1, sizeof b1), fmt_bytes((double)pm->per_token.dense, b2, sizeof b2),
               fmt_bytes((double)pm->per_token.embd_row, b3, sizeof b3));
        printf("           + %s experts (%d of %d selected: %d/%d of %s)\n",
               fmt_bytes((double)pm->per_token.experts, b1, sizeof b1), hp->n_experts_used, hp->n_experts,
               hp->n_experts_used, hp->n_experts, fmt_bytes((double)pm->per_token.experts_all, b2, sizeof b2));
    } else {
        printf("per token  %s read: every tensor once, token_embd as one %s row%s\n",
               fmt_bytes((double)per_tok, b1, sizeof b1), fmt_bytes((double)pm->per_token.embd_row, b2, sizeof b2),
               pm->per_token.tied_output ? " (and whole, as the tied output matrix)" : "");
    }

    printf("KV cache   %s per position in float32, %s in binary16 (%d layers x 2 x %d KV heads x %d)\n",
           fmt_bytes((double)mf_mem_kv_per_position(hp, 4), b1, sizeof b1),
           fmt_bytes((double)mf_mem_kv_per_position(hp, 2), b2, sizeof b2), hp->n_layers, hp->n_kv_heads, hp->head_dim);
    printf("           at context %d: %s float32, %s binary16\n", ctx,
           fmt_bytes((double)mf_mem_kv_bytes(hp, ctx, 1, 4), b1, sizeof b1),
           fmt_bytes((double)mf_mem_kv_bytes(hp, ctx, 1, 2), b2, sizeof b2));
    if (hp->window > 0) {
        int n_slide = 0;
        for (int l = 0; l < hp->n_layers; l++) n_slide += l % hp->swa_pattern < hp->swa_pattern - 1;
        uint64_t with = mf_mem_kv_bytes(hp, ctx, 1, 2), without = (uint64_t)ctx * mf_mem_kv_per_position(hp, 2);
        printf("           sliding window %d on %d of %d layers: binary16 at context %d takes %s instead of %s",
               hp->window, n_slide, hp->n_layers, ctx, fmt_bytes((double)with, b1, sizeof b1),
               fmt_bytes((double)without, b2, sizeof b2));
        if (without > with)
            printf(" (saves %s, %.1f%%)", fmt_bytes((double)(without - with), b3, sizeof b3),
                   100.0 * (double)(without - with) / (double)without);
        printf("\n");
    }
    printf("scratch    %s on the CPU, %s with CUDA (prompt batch %d, logits, RoPE tables; formula in docs/plan.md)\n",
           fmt_bytes((double)mf_plan_scratch_bytes(pm, ctx, MF_PLAN_BATCH, 0, host_threads()), b1, sizeof b1),
           fmt_bytes((double)mf_plan_scratch_bytes(pm, ctx, MF_PLAN_BATCH, 1, 0), b2, sizeof b2), MF_PLAN_BATCH);
    printf("context    %d%s\n", ctx,
           ctx_default             ? " (default: the training context, at most 4096; --ctx N)"
           : ctx > hp->n_ctx_train ? " (beyond the training context: quality is not the file's)"
                                   : "");

    char hdr[32];
    snprintf(hdr, sizeof hdr, "tok/s ctx %d", ctx);
    printf("\n%-19s %9s %9s %10s %4s %9s %10s %4s %11s %*s\n", "device", "memory", "usable", "bandwidth", "KV", "needs",
           "spare", "fits", "tok/s ctx 0", (int)strlen(hdr) > 11 ? (int)strlen(hdr) : 11, hdr);
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        char bw[32], sp[40], mem[32], use[32], need[32], t0[32], tc[32];
        if (r->dev.bandwidth_gbs <= 0) snprintf(bw, sizeof bw, "?");
        else snprintf(bw, sizeof bw, r->dev.bandwidth_gbs >= 100 ? "%.0f GB/s" : "%.1f GB/s", r->dev.bandwidth_gbs);
        fmt_bytes((double)r->fit.spare, b1, sizeof b1);
        snprintf(sp, sizeof sp, "%s%s", r->fit.spare >= 0 ? "+" : "", b1);
        printf("%-19s %9s %9s %10s %4s %9s %10s %4s %11s %*s\n", r->dev.name,
               fmt_bytes((double)r->dev.mem_bytes, mem, sizeof mem), fmt_bytes((double)r->fit.usable, use, sizeof use),
               bw, r->fit.kv_elem == 2 ? "f16" : "f32", fmt_bytes((double)r->fit.need, need, sizeof need), sp,
               r->fit.fits ? "yes" : "no", fmt_rate(r->fit.tok_s_ctx0, t0, sizeof t0),
               (int)strlen(hdr) > 11 ? (int)strlen(hdr) : 11, fmt_rate(r->fit.tok_s_ctx, tc, sizeof tc));
    }
    printf("\nneeds  = weights + KV cache for the context (sliding layers: a ring of window + batch - 1\n"
           "         slots) + scratch\n"
           "usable = memory - headroom: 1 GiB on CUDA cards (driver reserve, CUDA context), 2 GiB on this\n"
           "         CPU (the OS), on Apple what lies beyond the GPU working-set limit\n"
           "tok/s  = bandwidth / (weight bytes per token + KV bytes read at that context): an upper bound\n");

    if (!results) {
        printf("measured   no results file (minfer bench --save docs/bench-results.jsonl records one)\n");
        return;
    }
    int any = 0;
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        if (!r->measured) continue;
        printf("%s%-19s %s %.1f tok/s (%s, %s, line %d) = %.1f%% of the bound %s tok/s at context %lld\n",
               any ? "           " : "measured   ", r->dev.name, r->rec.test, r->rec.tok_s, r->rec.date,
               r->rec.commit[0] ? r->rec.commit : "no commit", r->rec.line,
               r->rec_bound > 0 ? 100.0 * r->rec.tok_s / r->rec_bound : 0.0, fmt_rate(r->rec_bound, b1, sizeof b1),
               (long long)r->rec_ctx);
        if (r->rec.bandwidth_gbs > 0)
            printf("           %-19s (the bench's own probe measured %.1f GB/s then; this row uses %.1f)\n", "",
                   r->rec.bandwidth_gbs, r->dev.bandwidth_gbs);
        any = 1;
    }
    if (!any) printf("measured   no generation record of this file on these devices in %s\n", results);
    if (n_bad)
        printf("           (%d line%s of %s are not bench records and were skipped)\n", n_bad, n_bad > 1 ? "s" : "",
               results);
}

static void print_json(const char *path, const char *sha, const mf_plan_model *pm, int ctx, const row *rows, int n,
                       const char *results, int n_bad)
{
    const mf_hparams *hp = &pm->hp;
    printf("{\"model\":");
    json_str(base_name(path));
    printf(",\"path\":");
    json_str(path);
    printf(",\"header_sha256\":\"%s\",\"arch\":", sha);
    json_str(hp->arch_name);
    printf(",\"file_bytes\":%llu,\"tensors\":%llu,\"params\":%llu,\"weight_bytes\":%llu,\"types\":[",
           (unsigned long long)pm->file_bytes, (unsigned long long)pm->n_tensors, (unsigned long long)pm->n_params,
           (unsigned long long)pm->weight_bytes);
    int first = 1;
    for (int t = 0; t < MF_TYPE_COUNT; t++) {
        if (!pm->type_tensors[t]) continue;
        char tb[32];
        printf("%s{\"type\":\"%s\",\"tensors\":%u,\"bytes\":%llu,\"supported\":%s}", first ? "" : ",",
               mf_type_name((uint32_t)t, tb), pm->type_tensors[t], (unsigned long long)pm->type_bytes[t],
               mf_type_supported((uint32_t)t) ? "true" : "false");
        first = 0;
    }
    printf("],\"runnable_types\":%s,\"ctx\":%d,\"ctx_train\":%d,\"batch\":%d,", pm->n_unsupported ? "false" : "true",
           ctx, hp->n_ctx_train, MF_PLAN_BATCH);
    printf("\"bytes_per_token\":{\"total\":%llu,\"dense\":%llu,\"embedding_row\":%llu,\"tied_output\":%s,"
           "\"experts\":%llu,\"experts_all\":%llu,\"experts_used\":%d,\"experts_count\":%d},",
           (unsigned long long)mf_plan_bytes_per_token(pm), (unsigned long long)pm->per_token.dense,
           (unsigned long long)pm->per_token.embd_row, pm->per_token.tied_output ? "true" : "false",
           (unsigned long long)pm->per_token.experts, (unsigned long long)pm->per_token.experts_all, hp->n_experts_used,
           hp->n_experts);
    printf("\"kv\":{\"per_position_f32\":%llu,\"per_position_f16\":%llu,\"at_ctx_f32\":%llu,\"at_ctx_f16\":%llu,"
           "\"at_ctx_no_window_f16\":%llu,\"window\":%d},",
           (unsigned long long)mf_mem_kv_per_position(hp, 4), (unsigned long long)mf_mem_kv_per_position(hp, 2),
           (unsigned long long)mf_mem_kv_bytes(hp, ctx, 1, 4), (unsigned long long)mf_mem_kv_bytes(hp, ctx, 1, 2),
           (unsigned long long)((uint64_t)ctx * mf_mem_kv_per_position(hp, 2)), hp->window);
    printf("\"scratch\":{\"cpu\":%llu,\"cuda\":%llu},\"devices\":[",
           (unsigned long long)mf_plan_scratch_bytes(pm, ctx, MF_PLAN_BATCH, 0, host_threads()),
           (unsigned long long)mf_plan_scratch_bytes(pm, ctx, MF_PLAN_BATCH, 1, 0));
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        const mf_plan_fit *f = &r->fit;
        printf("%s{\"name\":", i ? "," : "");
        json_str(r->dev.name);
        printf(",\"kind\":\"%s\",\"memory_bytes\":%llu,\"headroom_bytes\":%llu,\"usable_bytes\":%llu,"
               "\"bandwidth_gbs\":%.3f,\"kv_type\":\"%s\",\"weights_bytes\":%llu,\"kv_bytes\":%llu,"
               "\"scratch_bytes\":%llu,\"need_bytes\":%llu,\"spare_bytes\":%lld,\"fits\":%s,"
               "\"bytes_per_token_ctx0\":%llu,\"bytes_per_token_ctx\":%llu,\"tok_s_ctx0\":%.3f,\"tok_s_ctx\":%.3f,"
               "\"measured\":",
               kind_name(r->dev.kind), (unsigned long long)r->dev.mem_bytes, (unsigned long long)r->dev.headroom_bytes,
               (unsigned long long)f->usable, r->dev.bandwidth_gbs, f->kv_elem == 2 ? "f16" : "f32",
               (unsigned long long)f->weights, (unsigned long long)f->kv, (unsigned long long)f->scratch,
               (unsigned long long)f->need, (long long)f->spare, f->fits ? "true" : "false",
               (unsigned long long)f->bytes_ctx0, (unsigned long long)f->bytes_ctx, f->tok_s_ctx0, f->tok_s_ctx);
        if (!r->measured) {
            printf("null}");
            continue;
        }
        printf("{\"test\":");
        json_str(r->rec.test);
        printf(",\"date\":");
        json_str(r->rec.date);
        printf(",\"commit\":");
        json_str(r->rec.commit);
        printf(",\"device\":");
        json_str(r->rec.device);
        printf(",\"line\":%d,\"tok_s\":%.3f,\"ctx\":%lld,\"bound_tok_s\":%.3f,\"ratio\":%.4f,"
               "\"record_bandwidth_gbs\":%.3f}}",
               r->rec.line, r->rec.tok_s, (long long)r->rec_ctx, r->rec_bound,
               r->rec_bound > 0 ? r->rec.tok_s / r->rec_bound : 0.0, r->rec.bandwidth_gbs);
    }
    printf("],\"results\":");
    if (results) json_str(results);
    else printf("null");
    printf(",\"results_skipped_lines\":%d,\"unsupported_types\":", n_bad);
    json_str(pm->unsupported);
    printf("}\n");
}

/* ------------------------------------------------------------------ main */

int mf_cmd_plan(int argc, char **argv)
{
    plan_args a;
    if (parse(argc, argv, &a)) return 1;
    const char *path = a.model ? a.model : drv_default_model();
    if (!path) return 1;

    int rc = 1;
    mf_err err;
    char *text = NULL;
    row *rows = NULL;
    mf_gguf *g = mf_gguf_open(path, &err);
    mf_plan_model pm;
    if (!g || mf_plan_model_read(g, &pm, &err)) {
        fprintf(stderr, "minfer plan: %s\n", err.msg);
        goto done;
    }
    int ctx_default = a.ctx == 0;
    int ctx = ctx_default ? (pm.hp.n_ctx_train < 4096 ? pm.hp.n_ctx_train : 4096) : a.ctx;

    /* the devices: a custom one, or the table plus this CPU, filtered by --gpu */
    rows = calloc(MAX_ROWS, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "minfer plan: out of memory\n");
        goto done;
    }
    int n = 0;
    if (a.mem_gb > 0) {
        mf_plan_device d = {"custom", MF_PLAN_CUSTOM, (uint64_t)((double)a.mem_gb * 1e9), 0, a.bw_gbs, NULL, 0};
        rows[n++].dev = d;
    } else {
        mf_plan_device all[MAX_ROWS];
        int n_all = 0;
        for (size_t i = 0; i < plan_n_devices() && n_all < MAX_ROWS - 1; i++) all[n_all++] = *plan_device_at(i);
        all[n_all++] = plan_host_device(0.0);
        int idx[MAX_ROWS];
        int found = a.gpu ? plan_find_devices(all, n_all, a.gpu, idx, MAX_ROWS) : n_all;
        if (found == 0) {
            fprintf(stderr, "minfer plan: unknown device '%s' (known:", a.gpu);
            for (int i = 0; i < n_all; i++) fprintf(stderr, "%s %s", i ? "," : "", all[i].name);
            fprintf(stderr, ")\n");
            goto done;
        }
        for (int i = 0; i < found && i < MAX_ROWS; i++) rows[n++].dev = all[a.gpu ? idx[i] : i];
    }
    for (int i = 0; i < n; i++)
        if (rows[i].dev.kind == MF_PLAN_HOST) {
            /* the same probe as `minfer bench --bandwidth`: 1 GiB streamed, median of 5 */
            double bw = a.cpu_bw_gbs > 0 ? a.cpu_bw_gbs : mf_cpu_read_bandwidth(0, (size_t)1 << 30, 5);
            rows[i].dev.bandwidth_gbs = bw > 0 ? bw : 0.0;
        }
    for (int i = 0; i < n; i++) mf_plan_evaluate(&pm, &rows[i].dev, ctx, a.kv_elem, &rows[i].fit);

    char sha[65] = "", rbuf[PATH_MAX + 32];
    drv_header_sha256(g, sha);

    /* measurements */
    const char *results = a.results ? a.results : default_results(rbuf, sizeof rbuf);
    int n_bad = 0;
    if (results) {
        text = drv_read_file("plan", results, NULL);
        if (!text) goto done;
        char cpu[128] = "";
        for (int i = 0; i < n; i++)
            if (rows[i].dev.kind == MF_PLAN_HOST) cpu_model(cpu, sizeof cpu);
        for (int i = 0; i < n; i++) {
            row *r = &rows[i];
            r->measured = plan_find_measurement(text, base_name(path), sha, &r->dev, cpu, &r->rec, &n_bad);
            if (!r->measured) continue;
            /* the bench's tokens sit at depth .. depth + N: on average depth + N/2 */
            r->rec_ctx = (int64_t)r->rec.depth + r->rec.n_gen / 2;
            r->rec_bound = mf_plan_bound(r->dev.bandwidth_gbs,
                                         r->fit.bytes_ctx0 + mf_mem_kv_bytes(&pm.hp, r->rec_ctx, 1, r->fit.kv_elem));
        }
    }

    if (a.json) print_json(path, sha, &pm, ctx, rows, n, results, n_bad);
    else print_text(path, &pm, ctx, ctx_default, rows, n, results, n_bad);
    rc = 0;
done:
    free(text);
    free(rows);
    mf_gguf_close(g);
    return rc;
}
