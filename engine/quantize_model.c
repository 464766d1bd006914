/* quantize_model.c — a quantized copy of a model file (contract: quantize_model.h; the
 * rules in words: docs/quantize.md §2).
 *
 * Planning decides each tensor's type in four steps, the later ones winning:
 *   1. the target: a plain type for every weight matrix, or a recipe (below);
 *   2. --tensor-type PATTERN=TYPE overrides (the first matching pattern);
 *   3. --keep-output: the output matrix keeps its source type;
 *   4. a fallback where the chosen type's block does not divide the row length.
 * Writing then streams every converted tensor through the GGUF writer's fill callback:
 * rows are dequantized from the source (mf_dequantize_row), quantized (mf_quantize_row_imp)
 * by the thread pool, and optionally dequantized again for the error report.
 */
#include "quantize_model.h"
#include "cpu/threadpool.h"
#include "model.h"
#include "quant.h"
#include "quantize.h"
#include "types.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ================================================================ targets */

enum recipe { R_PLAIN, R_Q3_K_M, R_Q4_K_M, R_Q5_K_M, R_MXFP4 };

/* Every name `quantize` accepts, its base type, recipe, and llama.cpp's llama_ftype number
 * (include/llama.h) for general.file_type; the plain K types count as their _S variants. */
static const struct target {
    const char *name;
    uint32_t type;
    int recipe;
    uint32_t ftype;
} TARGETS[] = {
    {"F32", MF_TYPE_F32, R_PLAIN, 0},       {"F16", MF_TYPE_F16, R_PLAIN, 1},
    {"BF16", MF_TYPE_BF16, R_PLAIN, 32},    {"Q4_0", MF_TYPE_Q4_0, R_PLAIN, 2},
    {"Q4_1", MF_TYPE_Q4_1, R_PLAIN, 3},     {"Q5_0", MF_TYPE_Q5_0, R_PLAIN, 8},
    {"Q5_1", MF_TYPE_Q5_1, R_PLAIN, 9},     {"Q8_0", MF_TYPE_Q8_0, R_PLAIN, 7},
    {"Q2_K", MF_TYPE_Q2_K, R_PLAIN, 10},    {"Q3_K", MF_TYPE_Q3_K, R_PLAIN, 11},
    {"Q4_K", MF_TYPE_Q4_K, R_PLAIN, 14},    {"Q5_K", MF_TYPE_Q5_K, R_PLAIN, 16},
    {"Q6_K", MF_TYPE_Q6_K, R_PLAIN, 18},    {"MXFP4", MF_TYPE_MXFP4, R_MXFP4, 38},
    {"Q3_K_M", MF_TYPE_Q3_K, R_Q3_K_M, 12}, {"Q4_K_M", MF_TYPE_Q4_K, R_Q4_K_M, 15},
    {"Q5_K_M", MF_TYPE_Q5_K, R_Q5_K_M, 17},
};
#define N_TARGETS (sizeof TARGETS / sizeof TARGETS[0])

static const struct target *find_target(const char *name)
{
    for (size_t i = 0; i < N_TARGETS; i++)
        if (!strcasecmp(name, TARGETS[i].name)) return &TARGETS[i];
    return NULL;
}

uint32_t mf_quant_file_type(const char *target)
{
    const struct target *t = find_target(target);
    return t ? t->ftype : 0;
}

/* A type name for --tensor-type (any target but the _M recipes), or -1. */
static int64_t plain_type(const char *name)
{
    const struct target *t = find_target(name);
    if (!t || t->recipe == R_Q3_K_M || t->recipe == R_Q4_K_M || t->recipe == R_Q5_K_M) return -1;
    return t->type;
}

/* ================================================================ tensor roles */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* The weight matrices: ".weight" tensors of two or more dimensions, except the MoE router
 * (its top-k choice flips on small errors, and it is a tiny matrix). */
static int is_matrix(const mf_gguf_tensor *t)
{
    return t->n_dims >= 2 && ends_with(t->name, ".weight") && !ends_with(t->name, "ffn_gate_inp.weight");
}

static int is_expert(const char *name) { return ends_with(name, "_exps.weight"); }

/* Layers where the _M recipes spend more bits on attn_v and ffn_down: the first and the
 * last eighth of the stack, and every third layer in between. The ends of the stack are
 * the most sensitive (the first layers shape every later representation, the last ones
 * feed the output directly), and attn_v / ffn_down write straight into the residual
 * stream. This is the layer rule of llama.cpp's _M recipes (src/llama-quant.cpp), kept so
 * that files and measurements compare with llama.cpp's. */
static int more_bits(int l, int L) { return l < L / 8 || l >= 7 * L / 8 || (l - L / 8) % 3 == 2; }

/* The type a recipe gives a weight matrix (output: the output matrix, or the tied
 * embedding). */
static uint32_t recipe_type(const struct target *tg, const char *name, int output, int L)
{
    int l = mf_tensor_layer(name, NULL);
    int attn_v = ends_with(name, ".attn_v.weight");
    int ffn_down = ends_with(name, ".ffn_down.weight") || ends_with(name, ".ffn_down_exps.weight");
    switch (tg->recipe) {
    case R_Q4_K_M:
    case R_Q5_K_M:
        if (output) return MF_TYPE_Q6_K;
        if ((attn_v || ffn_down) && l >= 0 && more_bits(l, L)) return MF_TYPE_Q6_K;
        return tg->type;
    case R_Q3_K_M:
        if (output) return MF_TYPE_Q6_K;
        if (attn_v) return l >= 0 && l < 2 ? MF_TYPE_Q5_K : MF_TYPE_Q4_K;
        if (ends_with(name, ".attn_output.weight")) return MF_TYPE_Q4_K;
        if (ffn_down) return l >= 0 && l < L / 16 ? MF_TYPE_Q5_K : MF_TYPE_Q4_K;
        return tg->type;
    case R_MXFP4:
        /* the gpt-oss release: experts in MXFP4, the rest at 8 bits */
        return is_expert(name) ? MF_TYPE_MXFP4 : MF_TYPE_Q8_0;
    default: return tg->type;
    }
}

/* A type whose block divides a row of n: the wanted one, else for a K-quant the 32-element
 * type of at least its precision, else F16 (BF16 for BF16 sources, whose range F16 lacks). */
static uint32_t fitting_type(uint32_t want, int64_t n, uint32_t src_type)
{
    if (n % mf_type_get(want)->blck == 0) return want;
    uint32_t alt = 0;
    switch (want) {
    case MF_TYPE_Q2_K:
    case MF_TYPE_Q3_K: alt = MF_TYPE_Q4_0; break;
    case MF_TYPE_Q4_K: alt = MF_TYPE_Q5_0; break;
    case MF_TYPE_Q5_K: alt = MF_TYPE_Q5_1; break;
    case MF_TYPE_Q6_K: alt = MF_TYPE_Q8_0; break;
    }
    if (alt && n % 32 == 0) return alt;
    return src_type == MF_TYPE_BF16 ? MF_TYPE_BF16 : MF_TYPE_F16;
}

static int readable_source(uint32_t t)
{
    return t == MF_TYPE_F32 || t == MF_TYPE_F16 || t == MF_TYPE_BF16 || t == MF_TYPE_Q8_0;
}

/* ================================================================ plan */

static int note(mf_qplan *p, mf_err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int note(mf_qplan *p, mf_err *err, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **n = realloc(p->notes, sizeof *n * (size_t)(p->n_notes + 1));
    if (!n) return mf_errf(err, "out of memory");
    p->notes = n;
    if (!(p->notes[p->n_notes] = strdup(line))) return mf_errf(err, "out of memory");
    p->n_notes++;
    return 0;
}

void mf_qplan_free(mf_qplan *p)
{
    if (!p) return;
    for (int64_t i = 0; i < p->n; i++) free((void *)p->t[i].imp);
    free(p->t);
    for (int i = 0; i < p->n_notes; i++) free(p->notes[i]);
    free(p->notes);
    mf_gguf_close(p->imat);
    mf_gguf_close(p->in);
    free(p);
}

typedef struct override {
    regex_t re;
    uint32_t type;
    int used;
} override;

/* Parse and compile the overrides; -1 with a message naming the bad one. */
static int compile_overrides(const mf_quant_opts *o, override *ov, int *n_ok, mf_err *err)
{
    *n_ok = 0;
    for (int i = 0; i < o->n_overrides; i++) {
        const char *s = o->overrides[i], *eq = strrchr(s, '=');
        if (!eq || eq == s || !eq[1]) return mf_errf(err, "--tensor-type '%s': expected PATTERN=TYPE", s);
        int64_t ty = plain_type(eq + 1);
        if (ty < 0)
            return mf_errf(
                err,
                "--tensor-type '%s': unknown type '%s' (expected one of F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, MXFP4)",
                s, eq + 1);
        char pat[256];
        if ((size_t)(eq - s) >= sizeof pat) return mf_errf(err, "--tensor-type '%s': pattern too long", s);
        memcpy(pat, s, (size_t)(eq - s));
        pat[eq - s] = 0;
        int rc = regcomp(&ov[i].re, pat, REG_EXTENDED | REG_NOSUB);
        if (rc) {
            char why[128];
            regerror(rc, &ov[i].re, why, sizeof why);
            return mf_errf(err, "--tensor-type '%s': bad pattern '%s': %s", s, pat, why);
        }
        ov[i].type = (uint32_t)ty;
        ov[i].used = 0;
        (*n_ok)++;
    }
    return 0;
}

/* The importance of tensor q (from the imatrix file), as weights for the quantizer:
 * w_j = a_j + mean(a)/100 per matrix, so that a column the calibration text never
 * activated still counts a little; a matrix that saw no token at all gets uniform weights. */
static int load_importance(mf_qplan *p, mf_qtensor *q, mf_err *err)
{
    const mf_gguf_tensor *it = mf_gguf_find_tensor(p->imat, q->src->name);
    if (!it) return 1; /* no entry */
    int64_t n_in = q->src->ne[0], n_mat = q->src->ne[2] * q->src->ne[3];
    if (it->type != MF_TYPE_F32 || it->ne[0] != n_in || it->ne[1] != n_mat || it->ne[2] != 1 || it->ne[3] != 1)
        return mf_errf(
            err,
            "%s: entry '%s' has shape [%lld, %lld] %s, expected [%lld, %lld] F32 (an importance file of another model?)",
            mf_gguf_path(p->imat), it->name, (long long)it->ne[0], (long long)it->ne[1],
            mf_type_get(it->type) ? mf_type_get(it->type)->name : "?", (long long)n_in, (long long)n_mat);
    float *w = malloc(sizeof *w * (size_t)(n_in * n_mat));
    if (!w) return mf_errf(err, "out of memory");
    for (int64_t e = 0; e < n_mat; e++) {
        const uint8_t *a = (const uint8_t *)it->data + (size_t)(e * n_in) * 4;
        double sum = 0;
        for (int64_t j = 0; j < n_in; j++) {
            float v;
            memcpy(&v, a + 4 * j, 4);
            if (!(v >= 0) || !isfinite(v)) {
                free(w);
                return mf_errf(err, "%s: entry '%s' holds %g at %lld: importance values must be finite and >= 0",
                               mf_gguf_path(p->imat), it->name, v, (long long)(e * n_in + j));
            }
            w[e * n_in + j] = v;
            sum += v;
        }
        float floor_w = (float)(sum / (double)n_in / 100.0);
        for (int64_t j = 0; j < n_in; j++) w[e * n_in + j] = sum > 0 ? w[e * n_in + j] + floor_w : 1.0f;
    }
    q->imp = w;
    return 0;
}

/* Importance weights change the result of these types only (quantize.h). */
static int uses_importance(uint32_t t)
{
    return t != MF_TYPE_F32 && t != MF_TYPE_F16 && t != MF_TYPE_BF16 && t != MF_TYPE_Q8_0;
}

/* One note per kind of fallback (row length, wanted type, type written), with the number
 * of matrices and the first of them; --report and --dry-run list each tensor. */
static int same_fallback(const mf_qtensor *a, const mf_qtensor *b)
{
    return b->type != b->wanted && a->type == b->type && a->wanted == b->wanted && a->src->ne[0] == b->src->ne[0];
}

static int fallback_notes(mf_qplan *p, mf_err *err)
{
    for (int64_t i = 0; i < p->n; i++) {
        const mf_qtensor *q = &p->t[i];
        int first = q->type != q->wanted, count = 0;
        for (int64_t j = 0; j < i && first; j++) first = !same_fallback(q, &p->t[j]);
        if (!first) continue;
        for (int64_t j = i; j < p->n; j++) count += same_fallback(q, &p->t[j]);
        char tb[32];
        if (note(p, err, "rows of %lld do not fit %s's %u-element blocks: %s instead (%d matri%s, e.g. %s)",
                 (long long)q->src->ne[0], mf_type_get(q->wanted)->name, mf_type_get(q->wanted)->blck,
                 mf_type_name(q->type, tb), count, count > 1 ? "ces" : "x", q->src->name))
            return -1;
    }
    return 0;
}

mf_qplan *mf_qplan_new(const char *in, const mf_quant_opts *o, mf_err *err)
{
    const struct target *tg = o->target ? find_target(o->target) : NULL;
    if (!tg) {
        mf_errf(err,
                "unknown target type '%s' (expected F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, "
                "Q4_K, Q5_K, Q6_K, MXFP4 or a recipe: Q3_K_M, Q4_K_M, Q5_K_M)",
                o->target ? o->target : "");
        return NULL;
    }
    mf_qplan *p = calloc(1, sizeof *p);
    override *ov = calloc((size_t)(o->n_overrides + 1), sizeof *ov);
    int n_ov = 0;
    if (!p || !ov) {
        mf_errf(err, "out of memory");
        free(ov);
        free(p);
        return NULL;
    }
    p->o = *o;
    p->file_type = tg->ftype;
    if (compile_overrides(o, ov, &n_ov, err)) goto fail;
    if (!(p->in = mf_gguf_open(in, err))) goto fail;
    if (o->imatrix) {
        uint32_t v;
        if (!(p->imat = mf_gguf_open(o->imatrix, err))) goto fail;
        if (mf_gguf_get_u32(p->imat, "minfer.imatrix.version", &v, err) || v != 1) {
            mf_errf(err, "%s: not a minfer imatrix file (version 1 written by `minfer imatrix`)", o->imatrix);
            goto fail;
        }
    }
    mf_hparams hp;
    if (mf_hparams_read(p->in, &hp, err)) goto fail;
    p->n = (int64_t)mf_gguf_n_tensors(p->in);
    p->t = calloc((size_t)(p->n ? p->n : 1), sizeof *p->t);
    if (!p->t) {
        mf_errf(err, "out of memory");
        goto fail;
    }
    int tied = !mf_gguf_find_tensor(p->in, "output.weight"), any_expert = 0, q8_src = 0, n_imp = 0, n_no_imp = 0;
    const char *first_no_imp = NULL;
    for (int64_t i = 0; i < p->n; i++) any_expert |= is_expert(mf_gguf_tensor_at(p->in, (uint64_t)i)->name);
    if (tg->recipe == R_MXFP4 && !any_expert) {
        mf_errf(err,
                "%s: MXFP4 is for expert tensors (*_exps.weight) and this model has none; to put MXFP4 on other "
                "matrices anyway, give another target and --tensor-type PATTERN=MXFP4",
                in);
        goto fail;
    }

    for (int64_t i = 0; i < p->n; i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(p->in, (uint64_t)i);
        mf_qtensor *q = &p->t[i];
        q->src = t;
        q->type = q->wanted = t->type;
        q->rule = ends_with(t->name, "ffn_gate_inp.weight") ? "kept (MoE router)" : "kept (norm, bias or 1-D)";
        p->in_bytes += t->nbytes;
        p->n_elements += t->n_elements;
        if (is_matrix(t)) {
            int output = !strcmp(t->name, "output.weight") || (tied && !strcmp(t->name, "token_embd.weight"));
            q->wanted = recipe_type(tg, t->name, output, hp.n_layers);
            q->rule = tg->recipe == R_PLAIN ? "target" : "recipe";
            for (int k = 0; k < n_ov; k++)
                if (regexec(&ov[k].re, t->name, 0, NULL, 0) == 0) {
                    q->wanted = ov[k].type;
                    q->rule = o->overrides[k];
                    ov[k].used = 1;
                    break;
                }
            if (output && o->keep_output) {
                q->wanted = t->type;
                q->rule = "--keep-output";
            }
            q->type = q->wanted == t->type ? t->type : fitting_type(q->wanted, t->ne[0], t->type);
            q->convert = q->type != t->type;
        }
        if (q->convert && !readable_source(t->type)) {
            char tb[32];
            mf_errf(err,
                    "%s: tensor '%s' is stored as %s, which minfer cannot quantize further (sources: F32, F16, "
                    "BF16, Q8_0); start from an unquantized file",
                    in, t->name, mf_type_name(t->type, tb));
            goto fail;
        }
        q8_src |= q->convert && t->type == MF_TYPE_Q8_0;
        if (q->convert && p->imat && uses_importance(q->type)) {
            int r = load_importance(p, q, err);
            if (r < 0) goto fail;
            if (r == 0) n_imp++;
            else if (!n_no_imp++) first_no_imp = t->name;
        }
        p->out_bytes +=
            q->convert ? t->n_elements / mf_type_get(q->type)->blck * mf_type_get(q->type)->size : t->nbytes;
    }
    if (fallback_notes(p, err)) goto fail;
    for (int k = 0; k < n_ov; k++)
        if (!ov[k].used) {
            mf_errf(err,
                    "--tensor-type '%s': the pattern matches no weight matrix of %s (norms, biases and 1-D "
                    "tensors are never converted)",
                    o->overrides[k], in);
            goto fail;
        }
    if (q8_src && note(p, err,
                       "warning: some source tensors are Q8_0: their rounding error adds to the new type's "
                       "(quantize from F32, F16 or BF16 when you can)"))
        goto fail;
    if (p->imat && n_imp == 0 && n_no_imp > 0) {
        mf_errf(err, "%s: no entry matches a tensor of %s (an importance file of another model?)", o->imatrix, in);
        goto fail;
    }
    if (n_no_imp && note(p, err, "%d matri%s without importance data (e.g. %s): quantized unweighted", n_no_imp,
                         n_no_imp > 1 ? "ces" : "x", first_no_imp))
        goto fail;
    for (int k = 0; k < n_ov; k++) regfree(&ov[k].re);
    free(ov);
    return p;
fail:
    for (int k = 0; k < n_ov; k++) regfree(&ov[k].re);
    free(ov);
    mf_qplan_free(p);
    return NULL;
}

/* ================================================================ write */

typedef struct conv {
    const mf_qtensor *q;
    int64_t n_in, rows, rows_per_mat, chunk;
    size_t src_rb, dst_rb;
    uint8_t *dst;
    float *scratch;    /* [threads][2 * n_in] */
    double *sse, *ssx; /* [threads] */
    int64_t *bad_row;  /* [threads]: a row with a non-finite value (-1: none) */
    int64_t *overflow; /* [threads]: values beyond the F16 range */
    int report;
} conv;

static void conv_task(void *ctx, int task, int thread)
{
    conv *c = ctx;
    const mf_qtensor *q = c->q;
    float *x = c->scratch + (size_t)thread * 2 * (size_t)c->n_in, *y = x + c->n_in;
    int64_t r1 = (task + 1) * c->chunk < c->rows ? (task + 1) * c->chunk : c->rows;
    for (int64_t r = task * c->chunk; r < r1; r++) {
        mf_dequantize_row(q->src->type, (const uint8_t *)q->src->data + (size_t)r * c->src_rb, x, c->n_in);
        for (int64_t j = 0; j < c->n_in; j++) {
            if (!isfinite(x[j])) {
                c->bad_row[thread] = r;
                return;
            }
            if (q->type == MF_TYPE_F16 && fabsf(x[j]) >= 65520.0f) c->overflow[thread]++;
        }
        uint8_t *dst = c->dst + (size_t)r * c->dst_rb;
        mf_quantize_row_imp(q->type, x, dst, c->n_in, q->imp ? q->imp + (r / c->rows_per_mat) * c->n_in : NULL);
        if (c->report) {
            mf_dequantize_row(q->type, dst, y, c->n_in);
            double e = 0, s = 0;
            for (int64_t j = 0; j < c->n_in; j++) {
                double d = (double)x[j] - y[j];
                e += d * d;
                s += (double)x[j] * x[j];
            }
            c->sse[thread] += e;
            c->ssx[thread] += s;
        }
    }
}

typedef struct wctx {
    mf_qplan *p;
    mf_pool *pool;
    int64_t *index; /* writer tensor index -> plan index */
} wctx;

static int fill(void *user, uint64_t index, const mf_gguf_tensor *info, void *buf, mf_err *err)
{
    wctx *w = user;
    mf_qplan *p = w->p;
    mf_qtensor *q = &p->t[w->index[index]];
    int nt = mf_pool_threads(w->pool);
    conv c = {.q = q, .n_in = q->src->ne[0], .dst = buf, .report = p->o.report};
    c.rows = (int64_t)(q->src->n_elements / (uint64_t)c.n_in);
    c.rows_per_mat = q->src->ne[1];
    c.src_rb = mf_type_row_bytes(q->src->type, c.n_in);
    c.dst_rb = mf_type_row_bytes(q->type, c.n_in);
    c.chunk = c.rows / (8 * nt) > 1 ? c.rows / (8 * nt) : 1;
    c.scratch = malloc(sizeof(float) * 2 * (size_t)c.n_in * (size_t)nt);
    c.sse = calloc((size_t)nt, sizeof *c.sse);
    c.ssx = calloc((size_t)nt, sizeof *c.ssx);
    c.bad_row = malloc(sizeof *c.bad_row * (size_t)nt);
    c.overflow = calloc((size_t)nt, sizeof *c.overflow);
    int rc = -1;
    if (!c.scratch || !c.sse || !c.ssx || !c.bad_row || !c.overflow) {
        mf_errf(err, "out of memory converting '%s'", info->name);
        goto done;
    }
    for (int i = 0; i < nt; i++) c.bad_row[i] = -1;
    mf_pool_run(w->pool, conv_task, &c, (int)((c.rows + c.chunk - 1) / c.chunk));
    double sse = 0, ssx = 0;
    int64_t over = 0;
    for (int i = 0; i < nt; i++) {
        if (c.bad_row[i] >= 0) {
            mf_errf(err, "tensor '%s' has a non-finite value in row %lld: refusing to quantize it", info->name,
                    (long long)c.bad_row[i]);
            goto done;
        }
        sse += c.sse[i], ssx += c.ssx[i], over += c.overflow[i];
    }
    if (over) {
        mf_errf(err, "tensor '%s' has %lld values beyond the F16 range (|x| >= 65520): use BF16 or a block type for it",
                info->name, (long long)over);
        goto done;
    }
    q->rel_rms = ssx > 0 ? sqrt(sse / ssx) : 0;
    if (p->o.progress) p->o.progress(p->o.user, p, w->index[index]);
    rc = 0;
done:
    free(c.scratch), free(c.sse), free(c.ssx), free(c.bad_row), free(c.overflow);
    return rc;
}

static int any_block_type(const mf_qplan *p)
{
    for (int64_t i = 0; i < p->n; i++)
        if (mf_type_get(p->t[i].type)->blck > 1) return 1;
    return 0;
}

int mf_qplan_write(mf_qplan *p, const char *out, mf_err *err)
{
    mf_gguf_writer *w = mf_gguf_writer_new();
    if (w) mf_gguf_w_set_cancel(w, p->o.cancel);
    mf_pool *pool = mf_pool_new(p->o.n_threads);
    int64_t *index = malloc(sizeof *index * (size_t)(p->n ? p->n : 1));
    int rc = -1, have_ft = 0, have_qv = 0, qv = any_block_type(p);
    if (!w || !pool || !index) {
        mf_errf(err, "out of memory");
        goto done;
    }
    mf_gguf_w_set_version(w, mf_gguf_version(p->in));
    for (uint64_t i = 0; i < mf_gguf_n_kv(p->in); i++) {
        const mf_gguf_kv *kv = mf_gguf_kv_at(p->in, i);
        int r;
        if (!strcmp(kv->key, "general.file_type")) r = mf_gguf_w_u32(w, kv->key, p->file_type), have_ft = 1;
        else if (!strcmp(kv->key, "general.quantization_version") && qv) r = mf_gguf_w_u32(w, kv->key, 2), have_qv = 1;
        else r = mf_gguf_w_copy_kv(w, kv);
        if (r) {
            mf_errf(err, "out of memory copying metadata");
            goto done;
        }
    }
    if ((!have_ft && mf_gguf_w_u32(w, "general.file_type", p->file_type)) ||
        (qv && !have_qv && mf_gguf_w_u32(w, "general.quantization_version", 2))) {
        mf_errf(err, "out of memory copying metadata");
        goto done;
    }
    for (int64_t i = 0; i < p->n; i++) {
        const mf_qtensor *q = &p->t[i];
        int64_t k = mf_gguf_w_tensor(w, q->src->name, q->type, q->src->n_dims, q->src->ne,
                                     q->convert ? NULL : q->src->data, err);
        if (k < 0) goto done;
        index[k] = i;
    }
    wctx c = {p, pool, index};
    rc = mf_gguf_w_write(w, out, fill, &c, err);
done:
    free(index);
    mf_pool_free(pool);
    mf_gguf_writer_free(w);
    return rc;
}
