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
    free(st->seq);
    free(st->pos);
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

/* Every buffer of a state comes from here, zeroed (no slot of the cache is ever read
 * uninitialized), and is counted: state_bytes() reports the count, and tests/test_memory.c
 * checks it against mf_mem_cpu_state. calloc leaves the pages of a large buffer (a long
 * context's cache) untouched until they are used; `aligned` asks for whole cache lines
 * (the converted activations the SIMD kernels read). */
static void *state_buf(mf_bstate *st, size_t bytes, int aligned)
{
    void *p = NULL;
    if (!aligned) {
        p = calloc(1, bytes ? bytes : 1);
    } else if (!posix_memalign(&p, 64, bytes ? bytes : 64)) {
        memset(p, 0, bytes);
    }
    if (p) st->allocated += bytes;
    return p;
}

static mf_bstate *cpu_state_new(mf_backend *be, mf_bmodel *bm, const mf_state_opts *o, mf_err *err)
{
    cpu_backend *cb = be->impl;
    const mf_model *m = bm->m;
    const mf_hparams *hp = &m->hp;
    int L = hp->n_layers, half = hp->n_rot / 2;
    mf_mem_cpu mem;
    mf_mem_cpu_state(hp, o, cb->n_threads, &mem);

    /* the host's memory, before any large allocation: the weights are mapped, not copied,
     * but they must fit in RAM to run at memory speed; so must the cache, the scratch and
     * the session's activation buffers */
    mf_mem_acts acts;
    mf_mem_acts_of(hp, o->max_batch, mf_mem_n_seq(o), &acts);
    uint64_t scratch = mf_add_sat(mf_add_sat(mem.sum.rope, mem.sum.scratch), acts.bytes);
    uint64_t need = mf_add_sat(mf_add_sat(m->weight_bytes, mem.sum.kv), scratch), have = mf_mem_host_total();
    if (have && need > have) {
        mf_errf(err, "model needs %.2f GB (weights %.2f GB + KV cache %.2f GB + scratch %.2f GB) but this machine has %.2f GB of RAM",
                need / 1e9, m->weight_bytes / 1e9, mem.sum.kv / 1e9, scratch / 1e9, have / 1e9);
        return NULL;
    }

    mf_bstate *st = calloc(1, sizeof *st);
    if (!st) { mf_errf(err, "out of memory"); return NULL; }
    st->m = m;
    st->o = *o;
    st->kv_width = hp->n_kv_heads * hp->head_dim;
    st->kc = calloc((size_t)L + 1, sizeof(void *));
    st->vc = calloc((size_t)L + 1, sizeof(void *));
    st->slots = calloc((size_t)L + 1, sizeof(int));
    st->rcos = calloc((size_t)L + 1, sizeof(float *));
    st->rsin = calloc((size_t)L + 1, sizeof(float *));
    st->tokens = state_buf(st, mem.rows, 0);
    st->seq = state_buf(st, mem.rows, 0);
    st->pos = state_buf(st, mem.rows, 0);
    st->krow = state_buf(st, mem.krow, 0);
    st->qx = state_buf(st, mem.qx, 1);
    st->tmp = state_buf(st, mem.tmp, 0);
    st->ff_g = state_buf(st, mem.ff, 0);
    st->ff_u = state_buf(st, mem.ff, 0);
    st->scores = state_buf(st, mem.scores, 0);
    st->deq = state_buf(st, mem.deq, 0);
    if (!st->tokens || !st->seq || !st->pos || !st->krow || !st->kc || !st->vc || !st->slots || !st->rcos || !st->rsin || !st->qx ||
        !st->tmp || !st->ff_g || !st->ff_u || !st->scores || !st->deq)
        goto oom;
    if (hp->n_experts) {
        st->router = state_buf(st, mem.router, 0);
        st->sel = state_buf(st, mem.sel, 0);
        st->selw = state_buf(st, mem.sel, 0);
        st->ex_tok = state_buf(st, mem.sel, 0);
        st->ex_slot = state_buf(st, mem.sel, 0);
        st->ex_in = state_buf(st, mem.ex_io, 0);
        st->ex_out = state_buf(st, mem.ex_io, 0);
        st->ex_acc = state_buf(st, mem.ex_acc, 0);
        if (!st->router || !st->sel || !st->selw || !st->ex_tok || !st->ex_slot || !st->ex_in ||
            !st->ex_out || !st->ex_acc)
            goto oom;
    }

    /* KV cache, one per sequence side by side, zeroed so that no slot is ever read
     * uninitialized; the slots of a sliding layer are a ring (memory.h mf_mem_kv_slots) */
    for (int l = 0; l < L; l++) {
        st->slots[l] = mf_mem_kv_slots(hp, l, o->n_ctx, o->max_batch);
        size_t bytes = (size_t)mf_mem_kv_layer_bytes(hp, l, o) * (size_t)mf_mem_n_seq(o);
        st->kc[l] = state_buf(st, bytes, 0);
        st->vc[l] = state_buf(st, bytes, 0);
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
            float *c = st->tables[2 * t] = state_buf(st, mem.rope_table, 0);
            float *s = st->tables[2 * t + 1] = state_buf(st, mem.rope_table, 0);
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
    (void)eager;  /* every CPU step runs as issued */
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

static void cpu_rmsnorm(mf_backend *be, mf_bstate *st, const float *x, const mf_weight *g, float eps,
                        float *out, int rows)
{
    (void)be;
    (void)st;
    int64_t d = g->ne[0];
    const float *w = g->data;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d;
        float *o = out + (size_t)r * d;
        /* sum of squares in double, scale in float (docs/forward.md §2) */
        double ss = 0.0;
        for (int64_t i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
        float scale = 1.0f / sqrtf((float)(ss / (double)d) + eps);
        for (int64_t i = 0; i < d; i++) o[i] = xr[i] * scale * w[i];
    }
}

static void cpu_rope_kv(mf_backend *be, mf_bstate *st, int l, float *q, const float *k, const float *v)
{
    (void)be;
    const mf_hparams *hp = &st->m->hp;
    int H = hp->n_heads, Hkv = hp->n_kv_heads, hd = hp->head_dim, half = hp->n_rot / 2;
    int slots = st->slots[l], kvw = st->kv_width;
    for (int r = 0; r < st->n; r++) {
        int p = st->pos[r];
        const float *c = st->rcos[l] + (size_t)p * half, *s = st->rsin[l] + (size_t)p * half;
        for (int j = 0; j < H; j++) mf_rope_apply(q + ((size_t)r * H + j) * hd, c, s, hp->n_rot, hp->rope_neox);
        /* rotate k into a row buffer, then store k and v at the position's slot */
        size_t slot = (size_t)(p % slots);
        float *kr = st->krow;
        for (int j = 0; j < Hkv; j++) {
            memcpy(kr + (size_t)j * hd, k + ((size_t)r * Hkv + j) * hd, sizeof(float) * (size_t)hd);
            mf_rope_apply(kr + (size_t)j * hd, c, s, hp->n_rot, hp->rope_neox);
        }
        const float *vr = v + (size_t)r * kvw;
        /* the caches of the row's own sequence */
        void *kc = mf_cpu_kv(st, 0, st->seq[r], l), *vc = mf_cpu_kv(st, 1, st->seq[r], l);
        if (st->o.kv_f16) {
            uint16_t *kd = (uint16_t *)kc + slot * kvw, *vd = (uint16_t *)vc + slot * kvw;
            for (int i = 0; i < kvw; i++) {
                kd[i] = mf_f32_to_fp16(kr[i]);
                vd[i] = mf_f32_to_fp16(vr[i]);
            }
        } else {
            memcpy((float *)kc + slot * kvw, kr, sizeof(float) * (size_t)kvw);
            memcpy((float *)vc + slot * kvw, vr, sizeof(float) * (size_t)kvw);
        }
    }
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
    if (!bm) { mf_errf(err, "out of memory"); return NULL; }
    bm->m = m;  /* the weights stay in the file mapping */
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
    free(bm);
}

static void cpu_free(mf_backend *be)
{
    if (!be) return;
    cpu_backend *cb = be->impl;
    if (cb) mf_pool_free(cb->pool);
    while (cb && cb->models) {  /* prepares without their unprepare */
        mf_bmodel *next = cb->models->next;
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
    be->kv_f16_default = 0;  /* exact float32 */
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
