/* backend_cpu.c — the CPU backend: thread pool, session state, and the small ops
 * (embedding, RMSNorm, RoPE + KV write, argmax). The matrix product, attention and MoE are
 * in matmul.c, attention.c and moe.c. Contract: backend.h; memory plan: cpu.h.
 */
#include "cpu.h"
#include "memory.h"
#include "quant.h"
#include "rope.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
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

/* Every buffer of a state comes from here, zeroed (no slot of the cache is ever read
 * uninitialized), 64-byte aligned (whole cache lines for the SIMD kernels; the rows of a K
 * tile are whole halves or wholes of cache lines, attention.c), and counted: state_bytes()
 * reports the count, and tests/test_memory.c checks it against mf_mem_cpu_state. The
 * memory comes from calloc, which leaves the pages of a large buffer (a long context's
 * cache) untouched until they are used; the aligned start is rounded up inside it and the
 * pointer calloc gave is kept just below (buf_free). */
static void *state_buf(mf_bstate *st, size_t bytes)
{
    uint8_t *raw = calloc(1, bytes + 64 + sizeof(void *));
    if (!raw) return NULL;
    void **p = (void **)(((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63);
    p[-1] = raw;
    st->allocated += bytes;
    return p;
}

static void buf_free(void *p)
{
    if (p) free(((void **)p)[-1]);
}

static void cpu_state_free(mf_backend *be, mf_bstate *st)
{
    (void)be;
    if (!st) return;
    int L = st->m->hp.n_layers;
    for (int l = 0; l < L; l++) {
        if (st->kc) buf_free(st->kc[l]);
        if (st->vc) buf_free(st->vc[l]);
    }
    free(st->kc);
    free(st->vc);
    free(st->slots);
    free(st->rcos);
    free(st->rsin);
    for (int i = 0; i < 4; i++) buf_free(st->tables[i]);
    void *bufs[] = {st->tokens, st->seq,    st->pos,     st->krow,  st->qx,     st->tmp,
                    st->ff_g,   st->ff_u,   st->scores,  st->deq,   st->router, st->sel,
                    st->selw,   st->ex_tok, st->ex_slot, st->ex_in, st->ex_out, st->ex_acc};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) buf_free(bufs[i]);
    free(st);
}

static mf_bstate *cpu_state_new(mf_backend *be, mf_bmodel *bm, const mf_state_opts *o, mf_err *err)
{
    cpu_backend *cb = be->impl;
    const mf_model *m = bm->m;
    const mf_hparams *hp = &m->hp;
    int L = hp->n_layers, half = hp->n_rot / 2;
    mf_mem_cpu mem;
    mf_mem_cpu_state(hp, o, cb->n_threads, &mem);

    /* the host's memory, before any large allocation: the weights are mapped, or packed into
     * a copy that replaces the file's pages (repack.c), so they count once, but they must
     * fit in RAM to run at memory speed; so must the cache, the scratch and
     * the session's activation buffers */
    mf_mem_acts acts;
    mf_mem_acts_of(hp, o->max_batch, mf_mem_n_seq(o), &acts);
    uint64_t scratch = mf_add_sat(mf_add_sat(mem.sum.rope, mem.sum.scratch), acts.bytes);
    uint64_t need = mf_add_sat(mf_add_sat(m->weight_bytes, mem.sum.kv), scratch), have = mf_mem_host_total();
    if (have && need > have) {
        mf_errf(
            err,
            "model needs %.2f GB (weights %.2f GB + KV cache %.2f GB + scratch %.2f GB) but this machine has %.2f GB of RAM",
            need / 1e9, m->weight_bytes / 1e9, mem.sum.kv / 1e9, scratch / 1e9, have / 1e9);
        return NULL;
    }

    mf_bstate *st = calloc(1, sizeof *st);
    if (!st) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    st->m = m;
    st->o = *o;
    st->bm = bm;
    /* the packed copies of the model's matrices, made once by the first state that uses
     * them (repack.c) */
    if (!o->no_pack) mf_cpu_pack_model(cb, bm);
    st->kv_width = hp->n_kv_heads * hp->head_dim;

    st->kc = calloc((size_t)L + 1, sizeof(void *));
    st->vc = calloc((size_t)L + 1, sizeof(void *));
    st->slots = calloc((size_t)L + 1, sizeof(int));
    st->rcos = calloc((size_t)L + 1, sizeof(float *));
    st->rsin = calloc((size_t)L + 1, sizeof(float *));
    st->tokens = state_buf(st, mem.rows);
    st->seq = state_buf(st, mem.rows);
    st->pos = state_buf(st, mem.rows);
    st->krow = state_buf(st, mem.krow);
    st->qx = state_buf(st, mem.qx);
    st->tmp = state_buf(st, mem.tmp);
    st->ff_g = state_buf(st, mem.ff);
    st->ff_u = state_buf(st, mem.ff);
    st->scores = state_buf(st, mem.scores);
    st->deq = state_buf(st, mem.deq);
    if (!st->tokens || !st->seq || !st->pos || !st->krow || !st->kc || !st->vc || !st->slots || !st->rcos ||
        !st->rsin || !st->qx || !st->tmp || !st->ff_g || !st->ff_u || !st->scores || !st->deq)
        goto oom;
    if (hp->n_experts) {
        st->router = state_buf(st, mem.router);
        st->sel = state_buf(st, mem.sel);
        st->selw = state_buf(st, mem.sel);
        st->ex_tok = state_buf(st, mem.sel);
        st->ex_slot = state_buf(st, mem.sel);
        st->ex_in = state_buf(st, mem.ex_io);
        st->ex_out = state_buf(st, mem.ex_io);
        st->ex_acc = state_buf(st, mem.ex_acc);
        if (!st->router || !st->sel || !st->selw || !st->ex_tok || !st->ex_slot || !st->ex_in || !st->ex_out ||
            !st->ex_acc)
            goto oom;
    }

    /* KV cache, one per sequence side by side, zeroed so that no slot is ever read
     * uninitialized; the slots of a sliding layer are a ring (memory.h mf_mem_kv_slots),
     * both rounded up to whole K tiles (mf_mem_cpu_kv_slots; the layout: attention.c) */
    for (int l = 0; l < L; l++) {
        st->slots[l] = mf_mem_cpu_kv_slots(hp, l, o);
        size_t bytes = (size_t)mf_mem_cpu_kv_layer_bytes(hp, l, o) * (size_t)mf_mem_n_seq(o);
        st->kc[l] = state_buf(st, bytes);
        st->vc[l] = state_buf(st, bytes);
        if (!st->kc[l] || !st->vc[l]) {
            mf_errf(err, "out of memory for the KV cache (%zu bytes per layer)", 2 * bytes);
            cpu_state_free(be, st);
            return NULL;
        }
    }

    /* RoPE tables: one per distinct frequency set (memory.h mf_mem_rope_table) */
    for (int l = 0; l < L; l++) {
        int t = mf_mem_rope_table(hp, l);
        if (!st->tables[2 * t]) {
            float *c = st->tables[2 * t] = state_buf(st, mem.rope_table);
            float *s = st->tables[2 * t + 1] = state_buf(st, mem.rope_table);
            if (!c || !s) goto oom;
            for (int p = 0; p < o->n_ctx; p++) mf_rope_cos_sin(m, l, p, c + (size_t)p * half, s + (size_t)p * half);
        }
        st->rcos[l] = st->tables[2 * t];
        st->rsin[l] = st->tables[2 * t + 1];
    }
    return st;
oom:
    mf_errf(err, "out of memory for the session scratch buffers");
    cpu_state_free(be, st);
    return NULL;
}

static uint64_t cpu_state_bytes(mf_backend *be, const mf_bstate *st)
{
    (void)be;
    return st->allocated;
}

/* ------------------------------------------------------------------ step + small ops */

static int cpu_step_begin(mf_backend *be, mf_bstate *st, const mf_step *s, int eager)
{
    (void)be;
    (void)eager; /* every CPU step runs as issued */
    size_t bytes = sizeof(int32_t) * (size_t)s->n;
    memcpy(st->tokens, s->tokens, bytes);
    memcpy(st->seq, s->seq, bytes);
    memcpy(st->pos, s->pos, bytes);
    st->n = s->n;
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

/* out = x / sqrt(mean(x²) + eps) ⊙ w for one row of d (docs/forward.md §2): the sum of
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

typedef struct norm_job {
    const float *x, *w;
    float eps, *out;
    int64_t d;
} norm_job;

static void norm_task(void *ctx, int task, int thread)
{
    (void)thread;
    const norm_job *j = ctx;
    rmsnorm_row(j->x + (size_t)task * j->d, j->w, j->eps, j->out + (size_t)task * j->d, j->d);
}

static void cpu_rmsnorm(mf_backend *be, mf_bstate *st, const float *x, const mf_weight *g, float eps, float *out,
                        int rows)
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

typedef struct rope_job {
    mf_bstate *st;
    int l;
    float *q;
    const float *k, *v;
} rope_job;

/* row r: RoPE on its query heads, its key heads rotated into this thread's row buffer, then
 * key and value stored at the position's slot of its sequence's cache */
static void rope_task(void *ctx, int r, int thread)
{
    const rope_job *j = ctx;
    mf_bstate *st = j->st;
    const mf_hparams *hp = &st->m->hp;
    int H = hp->n_heads, Hkv = hp->n_kv_heads, hd = hp->head_dim, half = hp->n_rot / 2, l = j->l;
    int p = st->pos[r];
    const float *c = st->rcos[l] + (size_t)p * half, *s = st->rsin[l] + (size_t)p * half;
    for (int h = 0; h < H; h++) mf_rope_apply(j->q + ((size_t)r * H + h) * hd, c, s, hp->n_rot, hp->rope_neox);
    float *kr = st->krow + (size_t)thread * st->kv_width;
    for (int h = 0; h < Hkv; h++) {
        memcpy(kr + (size_t)h * hd, j->k + ((size_t)r * Hkv + h) * hd, sizeof(float) * (size_t)hd);
        mf_rope_apply(kr + (size_t)h * hd, c, s, hp->n_rot, hp->rope_neox);
    }
    mf_cpu_kv_store(st, l, st->seq[r], p % st->slots[l], kr, j->v + (size_t)r * st->kv_width);
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
    for (int i = 0; i < n; i++) {
        if (!isfinite(buf[i])) return -1;
        if (buf[i] > buf[best]) best = i;
    }
    return best;
}

/* ------------------------------------------------------------------ lifetime */

static void cpu_observe(mf_backend *be, mf_bstate *st, mf_matmul_observer fn, void *user)
{
    (void)be;
    st->obs = fn;
    st->obs_user = user;
}

/* Reads the model file's pages in order, 64 MiB at a time, reporting progress. Without it
 * the first forward pass faults the weights in page by page with nothing to show for it,
 * which on a big file on a slow disk looks like a hang. The mapping is read-only and shared
 * with the page cache: this costs no memory the weights would not take anyway once they are
 * used (cpu_prepare has checked that they fit). */
static void prefetch(const mf_model *m, mf_progress_fn fn, void *user)
{
    const uint8_t *base = mf_gguf_bytes(m->gguf);
    uint64_t size = mf_gguf_file_size(m->gguf), chunk = 64ull << 20;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    volatile uint8_t sink = 0;
    for (uint64_t off = 0; off < size; off += chunk) {
        uint64_t n = size - off < chunk ? size - off : chunk;
        /* a hint for read-ahead; it fails harmlessly where base is not a mapping */
        madvise((void *)(uintptr_t)(base + off), (size_t)n, MADV_WILLNEED);
        for (uint64_t i = 0; i < n; i += (uint64_t)page) sink ^= base[off + i];
        fn(user, off + n, size);
    }
    (void)sink;
}

static mf_bmodel *cpu_prepare(mf_backend *be, const mf_model *m, mf_progress_fn progress, void *user, mf_err *err)
{
    cpu_backend *cb = be->impl;
    for (mf_bmodel *bm = cb->models; bm; bm = bm->next)
        if (bm->m == m) {
            bm->refs++;
            return bm;
        }
    /* the weights alone, before reading them (state_new checks them with the cache and the
     * scratch of a session) */
    uint64_t have = mf_mem_host_total();
    if (have && m->weight_bytes > have) {
        mf_errf(err, "the weights need %.2f GB but this machine has %.2f GB of RAM", m->weight_bytes / 1e9, have / 1e9);
        return NULL;
    }
    if (progress) prefetch(m, progress, user);
    mf_bmodel *bm = calloc(1, sizeof *bm);
    if (!bm) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    bm->m = m; /* the weights stay in the file mapping; packed copies come with the first state */
    bm->refs = 1;
    bm->next = cb->models;
    cb->models = bm;
    return bm;
}

static void cpu_unprepare(mf_backend *be, mf_bmodel *bm)
{
    cpu_backend *cb = be->impl;
    if (!bm || --bm->refs > 0) return;
    for (mf_bmodel **p = &cb->models; *p; p = &(*p)->next)
        if (*p == bm) {
            *p = bm->next;
            break;
        }
    mf_cpu_pack_free(bm);
    free(bm);
}

static void cpu_free(mf_backend *be)
{
    if (!be) return;
    cpu_backend *cb = be->impl;
    if (cb) mf_pool_free(cb->pool);
    while (cb && cb->models) { /* prepares without their unprepare */
        mf_bmodel *next = cb->models->next;
        mf_cpu_pack_free(cb->models);
        free(cb->models);
        cb->models = next;
    }
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
    static const char *const vec[] = {"Haswell",        "Skylake", "SkylakeX", "Cooperlake",
                                      "SapphireRapids", "Zen",     "Zen4",     "Excavator"};
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
    be->kv_f16_default = 1; /* binary16, chosen by measurement (docs/cpu.md §4) */
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
    be->state_bytes = cpu_state_bytes;
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
    be->observe = cpu_observe;
    be->moe = mf_cpu_moe;
    be->argmax = cpu_argmax;
    return be;
}
