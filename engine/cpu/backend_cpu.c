/* backend_cpu.c — the CPU backend: thread pool, session state, and the small ops
 * (embedding, RMSNorm, RoPE + KV write, argmax). The matrix product, attention and MoE are
 * in matmul.c, attention.c and moe.c. Contract: backend.h; memory plan: cpu.h.
 */
#include "cpu.h"
#include "quant.h"
#include "rope.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#ifdef MF_HAVE_BLAS
#include <cblas.h>
#endif

/* ------------------------------------------------------------------ buffers */

static float *cpu_alloc(mf_backend *be, size_t n)
{
    (void)be;
    /* 64-byte alignment: whole cache lines, aligned SIMD loads */
    void *p = NULL;
    size_t bytes = (n ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes)) return NULL;
    return p;
}

static void cpu_release(mf_backend *be, float *p)
{
    (void)be;
    free(p);
}

static int cpu_read(mf_backend *be, const float *buf, size_t n, float *host, mf_err *err)
{
    (void)be;
    (void)err;
    if (host != buf) memcpy(host, buf, n * sizeof(float));
    return 0;
}

/* ------------------------------------------------------------------ state */

static void cpu_state_free(mf_backend *be, mf_bstate *st)
{
    (void)be;
    if (!st) return;
    int L = st->m->hp.n_layers;
    for (int l = 0; l < L; l++) {
        if (st->kc) free(st->kc[l]);
        if (st->vc) free(st->vc[l]);
    }
    free(st->kc);
    free(st->vc);
    free(st->slots);
    free(st->rcos);
    free(st->rsin);
    for (int i = 0; i < 4; i++) free(st->tables[i]);
    free(st->tokens);
    free(st->krow);
    free(st->qx);
    free(st->tmp);
    free(st->ff_g);
    free(st->ff_u);
    free(st->scores);
    free(st->deq);
    free(st->router);
    free(st->sel);
    free(st->selw);
    free(st->ex_tok);
    free(st->ex_slot);
    free(st->ex_in);
    free(st->ex_out);
    free(st->ex_acc);
    free(st);
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static mf_bstate *cpu_state_new(mf_backend *be, const mf_model *m, const mf_state_opts *o, mf_err *err)
{
    cpu_backend *cb = be->impl;
    const mf_hparams *hp = &m->hp;
    mf_bstate *st = calloc(1, sizeof *st);
    if (!st) { mf_errf(err, "out of memory"); return NULL; }
    st->m = m;
    st->o = *o;
    if (!o->no_pack) mf_cpu_pack_model(cb, m);
    int L = hp->n_layers, B = o->max_batch, half = hp->n_rot / 2;
    int64_t d = hp->n_embd, qw = (int64_t)hp->n_heads * hp->head_dim;
    st->kv_width = hp->n_kv_heads * hp->head_dim;
    size_t esz = o->kv_f16 ? 2 : 4;

    /* the widest matrix input and output over every weight the forward pass multiplies */
    int64_t F = max64(hp->n_ff, hp->n_ff_exp);
    int64_t max_in = max64(max64(d, qw), F);
    int64_t max_out = max64(max64(max64(d, qw), F), max64(hp->n_vocab, hp->n_experts));
    /* grouped products (q+k+v, gate+up) keep their results side by side in tmp */
    max_out = max64(max_out, max64(qw + 2 * (int64_t)hp->n_kv_heads * hp->head_dim, 2 * F));

    st->tokens = malloc(sizeof(int32_t) * (size_t)B);
    st->krow = malloc(sizeof(float) * (size_t)cb->n_threads * (size_t)st->kv_width);
    st->kc = calloc((size_t)L + 1, sizeof(void *));
    st->vc = calloc((size_t)L + 1, sizeof(void *));
    st->slots = calloc((size_t)L + 1, sizeof(int));
    st->rcos = calloc((size_t)L + 1, sizeof(float *));
    st->rsin = calloc((size_t)L + 1, sizeof(float *));
    st->qx_cap = (size_t)B * (size_t)(4 * max_in + 256);  /* float activations: 4 bytes, 8-bit blocks: fewer */
    st->qx = aligned_alloc(64, (st->qx_cap + 63) / 64 * 64);  /* whole cache lines for the SIMD kernels */
    st->tmp = malloc(sizeof(float) * (size_t)cb->n_threads * 2 * MF_CPU_TOK_BLOCK * 16);
    st->ff_g = malloc(sizeof(float) * (size_t)B * (size_t)F);
    st->ff_u = malloc(sizeof(float) * (size_t)B * (size_t)F);
    st->scores = malloc(sizeof(float) * (size_t)cb->n_threads * (size_t)(hp->n_heads / hp->n_kv_heads) * (size_t)o->n_ctx);
    st->deq = malloc(sizeof(float) * (size_t)cb->n_threads * MF_CPU_TILE_ROWS * (size_t)max_in);
    if (!st->tokens || !st->krow || !st->kc || !st->vc || !st->slots || !st->rcos || !st->rsin || !st->qx ||
        !st->tmp || !st->ff_g || !st->ff_u || !st->scores || !st->deq)
        goto oom;
    if (hp->n_experts) {
        size_t K = (size_t)B * (size_t)hp->n_experts_used;
        st->router = malloc(sizeof(float) * (size_t)B * (size_t)hp->n_experts);
        st->sel = malloc(sizeof(int) * K);
        st->selw = malloc(sizeof(float) * K);
        st->ex_tok = malloc(sizeof(int) * K);
        st->ex_slot = malloc(sizeof(int) * K);
        st->ex_in = malloc(sizeof(float) * (size_t)B * (size_t)d);
        st->ex_out = malloc(sizeof(float) * (size_t)B * (size_t)d);
        st->ex_acc = malloc(sizeof(float) * K * (size_t)d);
        if (!st->router || !st->sel || !st->selw || !st->ex_tok || !st->ex_slot || !st->ex_in ||
            !st->ex_out || !st->ex_acc)
            goto oom;
    }

    /* KV cache */
    for (int l = 0; l < L; l++) {
        int slots = mf_kv_slots(hp, m->layers[l].sliding, o->n_ctx, B);
        st->slots[l] = (slots + MF_KV_TILE - 1) / MF_KV_TILE * MF_KV_TILE;  /* whole K tiles */
        size_t bytes = (size_t)st->slots[l] * (size_t)st->kv_width * esz;
        /* 64-byte aligned: a K tile's rows are whole halves or wholes of cache lines
         * (attention.c); zeroed, so that no slot is ever read uninitialized */
        if (posix_memalign(&st->kc[l], 64, bytes ? bytes : 64)) st->kc[l] = NULL;
        if (posix_memalign(&st->vc[l], 64, bytes ? bytes : 64)) st->vc[l] = NULL;
        if (st->kc[l]) memset(st->kc[l], 0, bytes);
        if (st->vc[l]) memset(st->vc[l], 0, bytes);
        if (!st->kc[l] || !st->vc[l]) {
            mf_errf(err, "out of memory for the KV cache (%zu bytes per layer)", 2 * bytes);
            cpu_state_free(be, st);
            return NULL;
        }
    }

    /* RoPE tables: one per distinct frequency set (layers share it when their freqs match) */
    int nt = 0;
    for (int l = 0; l < L; l++) {
        int same = -1;
        for (int p = 0; p < l && same < 0; p++)
            if (!memcmp(m->rope_freq[p], m->rope_freq[l], sizeof(float) * (size_t)half)) same = p;
        if (same >= 0) {
            st->rcos[l] = st->rcos[same];
            st->rsin[l] = st->rsin[same];
            continue;
        }
        if (nt + 2 > 4) { mf_errf(err, "more than two RoPE frequency sets"); cpu_state_free(be, st); return NULL; }
        float *c = malloc(sizeof(float) * (size_t)o->n_ctx * (size_t)half);
        float *s = malloc(sizeof(float) * (size_t)o->n_ctx * (size_t)half);
        st->tables[nt++] = c;
        st->tables[nt++] = s;
        if (!c || !s) goto oom;
        for (int p = 0; p < o->n_ctx; p++) mf_rope_cos_sin(m, l, p, c + (size_t)p * half, s + (size_t)p * half);
        st->rcos[l] = c;
        st->rsin[l] = s;
    }
    return st;
oom:
    mf_errf(err, "out of memory for the session scratch buffers");
    cpu_state_free(be, st);
    return NULL;
}

/* ------------------------------------------------------------------ step + small ops */

static int cpu_step_begin(mf_backend *be, mf_bstate *st, const int32_t *tokens, int n, int pos0)
{
    (void)be;
    memcpy(st->tokens, tokens, sizeof(int32_t) * (size_t)n);
    st->n = n;
    st->pos0 = pos0;
    return 0;
}

static int cpu_step_end(mf_backend *be, mf_bstate *st, mf_err *err)
{
    (void)be;
    (void)st;
    (void)err;
    return 0;
}

static void cpu_embed(mf_backend *be, mf_bstate *st, const mf_weight *emb, float *x)
{
    (void)be;
    int64_t d = emb->ne[0];
    for (int r = 0; r < st->n; r++)
        mf_dequantize_row(emb->type, (const uint8_t *)emb->data + (size_t)st->tokens[r] * emb->row_bytes,
                          x + (size_t)r * d, d);
}

/* Rows of a step that make an elementwise op worth running on the pool */
#define PAR_ROWS 16

/* out = x / sqrt(mean(x²) + eps) ⊙ w for one row of d (llama-arch.md §4.2): the sum of
 * squares in double, as 8 partial sums (element i into sum i mod 8) combined pairwise —
 * the order of the vector code and of the scalar tail alike, so every row gets the same
 * operations whatever the batch; the scale in float. */
static void rmsnorm_row(const float *x, const float *w, float eps, float *o, int64_t d)
{
    double z[8] = {0};
    int64_t i = 0;
#if defined(__AVX512F__)
    __m512d s = _mm512_setzero_pd();
    for (; i + 8 <= d; i += 8) {
        __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
        s = _mm512_fmadd_pd(v, v, s);
    }
    _mm512_storeu_pd(z, s);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (; i + 8 <= d; i += 8) {
        __m256d v0 = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), v1 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        s0 = _mm256_fmadd_pd(v0, v0, s0);
        s1 = _mm256_fmadd_pd(v1, v1, s1);
    }
    _mm256_storeu_pd(z, s0);
    _mm256_storeu_pd(z + 4, s1);
#endif
    for (; i < d; i++) z[i % 8] = fma((double)x[i], (double)x[i], z[i % 8]);
    double ss = ((z[0] + z[4]) + (z[2] + z[6])) + ((z[1] + z[5]) + (z[3] + z[7]));
    float scale = 1.0f / sqrtf((float)(ss / (double)d) + eps);
    for (i = 0; i < d; i++) o[i] = x[i] * scale * w[i];
}

typedef struct norm_job { const float *x, *w; float eps, *out; int64_t d; } norm_job;

static void norm_task(void *ctx, int task, int thread)
{
    (void)thread;
    const norm_job *j = ctx;
    rmsnorm_row(j->x + (size_t)task * j->d, j->w, j->eps, j->out + (size_t)task * j->d, j->d);
}

static void cpu_rmsnorm(mf_backend *be, mf_bstate *st, const float *x, const mf_weight *g, float eps,
                        float *out, int rows)
{
    (void)st;
    cpu_backend *cb = be->impl;
    norm_job j = {x, g->data, eps, out, g->ne[0]};
    if (rows < PAR_ROWS) {
        for (int r = 0; r < rows; r++) norm_task(&j, r, 0);
        return;
    }
    mf_pool_run(cb->pool, norm_task, &j, rows);
}

typedef struct rope_job { mf_bstate *st; int l; float *q; const float *k, *v; } rope_job;

/* row r: RoPE on its query heads, its key heads rotated into this thread's row buffer, then
 * key and value stored at the position's slot */
static void rope_task(void *ctx, int r, int thread)
{
    const rope_job *j = ctx;
    mf_bstate *st = j->st;
    const mf_hparams *hp = &st->m->hp;
    int H = hp->n_heads, Hkv = hp->n_kv_heads, hd = hp->head_dim, half = hp->n_rot / 2, l = j->l;
    int p = st->pos0 + r;
    const float *c = st->rcos[l] + (size_t)p * half, *s = st->rsin[l] + (size_t)p * half;
    for (int h = 0; h < H; h++) mf_rope_apply(j->q + ((size_t)r * H + h) * hd, c, s, hp->n_rot, hp->rope_neox);
    float *kr = st->krow + (size_t)thread * st->kv_width;
    for (int h = 0; h < Hkv; h++) {
        memcpy(kr + (size_t)h * hd, j->k + ((size_t)r * Hkv + h) * hd, sizeof(float) * (size_t)hd);
        mf_rope_apply(kr + (size_t)h * hd, c, s, hp->n_rot, hp->rope_neox);
    }
    mf_cpu_kv_store(st, l, p % st->slots[l], kr, j->v + (size_t)r * st->kv_width);
}

static void cpu_rope_kv(mf_backend *be, mf_bstate *st, int l, float *q, const float *k, const float *v)
{
    cpu_backend *cb = be->impl;
    rope_job j = {st, l, q, k, v};
    if (st->n < PAR_ROWS) {
        for (int r = 0; r < st->n; r++) rope_task(&j, r, 0);
        return;
    }
    mf_pool_run(cb->pool, rope_task, &j, st->n);
}

static int cpu_argmax(mf_backend *be, mf_bstate *st, const float *buf, int n)
{
    (void)be;
    (void)st;
    int best = 0;
    for (int i = 1; i < n; i++)
        if (buf[i] > buf[best]) best = i;
    return best;
}

/* ------------------------------------------------------------------ lifetime */

static int cpu_prepare(mf_backend *be, mf_model *m, mf_err *err)
{
    (void)be;
    (void)m;
    (void)err;
    return 0;  /* weights stay in the file mapping */
}

static void cpu_unprepare(mf_backend *be, mf_model *m)
{
    (void)be;
    (void)m;
}

static void cpu_free(mf_backend *be)
{
    if (!be) return;
    cpu_backend *cb = be->impl;
    if (cb) mf_cpu_pack_free(cb);
    if (cb) mf_pool_free(cb->pool);
    free(cb);
    free(be);
}

static void cpu_name(char *out, size_t cap, int threads)
{
    char model[96] = "CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    c += 1 + (c[1] == ' ');
                    c[strcspn(c, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", c);
                }
                break;
            }
        fclose(f);
    }
    snprintf(out, cap, "%s (%d thread%s)", model, threads, threads == 1 ? "" : "s");
}

#ifdef MF_HAVE_BLAS
/* OpenBLAS picks its kernels by CPU model at load time; on a CPU it does not know (seen on
 * this project's VMs: a Sapphire Rapids reported as "Prescott") it falls back to SSE3 code,
 * and its sgemm runs at a third of our integer kernels. Use it only with a kernel family
 * that has AVX2 or AVX-512 code (OPENBLAS_CORETYPE=SkylakeX or Haswell forces one). */
static int blas_has_vector_kernels(void)
{
    static const char *const vec[] = {"Haswell", "Skylake", "SkylakeX", "Cooperlake", "SapphireRapids",
                                      "Zen", "Zen4", "Excavator"};
    const char *name = openblas_get_corename();
    for (size_t i = 0; name && i < sizeof vec / sizeof *vec; i++)
        if (!strcasecmp(name, vec[i])) return 1;
    return 0;
}
#endif

mf_backend *mf_backend_cpu_new(int n_threads, mf_err *err)
{
    mf_backend *be = calloc(1, sizeof *be);
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!be || !cb) {
        free(be);
        free(cb);
        mf_errf(err, "out of memory");
        return NULL;
    }
    cb->pool = mf_pool_new(n_threads);
    if (!cb->pool) {
        free(be);
        free(cb);
        mf_errf(err, "cannot start %d CPU threads", n_threads);
        return NULL;
    }
    cb->n_threads = mf_pool_threads(cb->pool);
#ifdef MF_HAVE_BLAS
    /* sgemm runs inside our pool's threads, one tile each: OpenBLAS must not start its own */
    openblas_set_num_threads(1);
    cb->blas_ok = blas_has_vector_kernels();
#endif
    be->name = "cpu";
    cpu_name(be->device_name, sizeof be->device_name, cb->n_threads);
#ifdef MF_HAVE_BLAS
    size_t dl = strlen(be->device_name);
    snprintf(be->device_name + dl, sizeof be->device_name - dl, ", OpenBLAS %s%s", openblas_get_corename(),
             cb->blas_ok ? "" : " unused");
#endif
    be->impl = cb;
    be->prepare = cpu_prepare;
    be->unprepare = cpu_unprepare;
    be->state_new = cpu_state_new;
    be->state_free = cpu_state_free;
    be->free = cpu_free;
    be->alloc = cpu_alloc;
    be->release = cpu_release;
    be->read = cpu_read;
    be->step_begin = cpu_step_begin;
    be->step_end = cpu_step_end;
    be->embed = cpu_embed;
    be->rmsnorm = cpu_rmsnorm;
    be->matmul = mf_cpu_matmul_op;
    be->qkv = mf_cpu_qkv;
    be->rope_kv = cpu_rope_kv;
    be->attention = mf_cpu_attention;
    be->ffn = mf_cpu_ffn;
    be->moe = mf_cpu_moe;
    be->argmax = cpu_argmax;
    return be;
}
