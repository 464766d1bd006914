/* testapi.cu — the GPU test entry points of testapi.h: upload host arrays, run one kernel
 * path through the same launchers the backend calls, download the result. */
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ctx.cuh"
#include "testapi.h"

struct mf_cuda_test {
    mf_cu_ctx c;
};

namespace
{

/* device allocations of one call, freed when it returns */
struct arena {
    mf_cu_ctx *c;
    void *p[64];
    int n = 0;
    explicit arena(mf_cu_ctx *ctx) : c(ctx) {}
    ~arena()
    {
        for (int i = 0; i < n; i++) cudaFree(p[i]);
    }
    void *alloc(size_t bytes)
    {
        void *q = nullptr;
        if (c->failed) return nullptr;
        if (n == 64) return mf_cu_fail(c, "testapi: too many buffers"), nullptr;
        if (!mf_cu_check(c, cudaMalloc(&q, bytes ? bytes : 4), "testapi: cudaMalloc")) return nullptr;
        return p[n++] = q;
    }
    void *up(const void *host, size_t bytes)
    {
        void *q = alloc(bytes);
        if (q && !mf_cu_check(c, cudaMemcpy(q, host, bytes, cudaMemcpyHostToDevice), "testapi: upload")) return nullptr;
        return q;
    }
    /* all bits set: a NaN in every float lane */
    void *poison(size_t bytes)
    {
        void *q = alloc(bytes);
        if (q && !mf_cu_check(c, cudaMemset(q, 0xFF, bytes ? bytes : 4), "testapi: poison")) return nullptr;
        return q;
    }
    bool down(void *host, const void *dev, size_t bytes)
    {
        return !c->failed && mf_cu_check(c, cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost), "testapi: download");
    }
};

size_t row_bytes(const mf_cuda_test_mat *m) { return mf_type_row_bytes(m->type, m->n_in); }

/* device copy of a matrix (and its bias) as the kernels take it */
bool up_mat(arena &A, const mf_cuda_test_mat *h, int64_t n_mats_stacked, mf_cu_mat *d)
{
    size_t rb = row_bytes(h);
    if (!rb)
        return mf_cu_fail(A.c, "testapi: %lld elements are not whole blocks of type %u", (long long)h->n_in, h->type);
    d->type = h->type;
    d->n_in = h->n_in;
    d->n_out = h->n_out;
    d->row_bytes = rb;
    d->w = (const uint8_t *)A.up(h->w, rb * (size_t)h->n_out * (size_t)n_mats_stacked);
    d->bias =
        h->bias ? (const float *)A.up(h->bias, sizeof(float) * (size_t)h->n_out * (size_t)n_mats_stacked) : nullptr;
    return d->w && (!h->bias || d->bias);
}

int finish(mf_cuda_test *t, mf_err *err)
{
    mf_cu_ctx *c = &t->c;
    if (!c->failed) mf_cu_check(c, cudaStreamSynchronize(c->stream), "testapi: synchronize");
    if (!c->failed) mf_cu_launched(c, "testapi kernels");
    if (c->failed) {
        mf_errf(err, "%s", c->msg);
        c->failed = 0;
        cudaGetLastError();
        return -1;
    }
    return 0;
}

}  // namespace

extern "C" mf_cuda_test *mf_cuda_test_new(size_t gemm_elems, mf_err *err)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        if (e != cudaSuccess) mf_cu_err(err, e, "cudaGetDeviceCount");
        else mf_errf(err, "no CUDA device");
        return nullptr;
    }
    if ((e = cudaSetDevice(0)) != cudaSuccess) return mf_cu_err(err, e, "cudaSetDevice"), nullptr;
    mf_cuda_test *t = (mf_cuda_test *)calloc(1, sizeof *t);
    if (!t) return mf_errf(err, "out of memory"), nullptr;
    if (mf_cu_ctx_init(&t->c, gemm_elems, gemm_elems, err)) {
        free(t);
        return nullptr;
    }
    return t;
}

extern "C" void mf_cuda_test_free(mf_cuda_test *t)
{
    if (!t) return;
    mf_cu_ctx_free(&t->c);
    free(t);
}

extern "C" int mf_cuda_test_matmul(mf_cuda_test *t, const mf_cuda_test_mat *m, int n_mats, const float *x, int rows,
                                   float *const *out, int accumulate, int path, mf_err *err)
{
    arena A(&t->c);
    mf_cu_mat dm[3];
    float *dout[3];
    int64_t ldo[3];
    if (n_mats < 1 || n_mats > 3) return mf_errf(err, "testapi: %d matrices", n_mats);
    const float *dx = (const float *)A.up(x, sizeof(float) * (size_t)rows * (size_t)m[0].n_in);
    for (int j = 0; j < n_mats && !t->c.failed; j++) {
        size_t ob = sizeof(float) * (size_t)rows * (size_t)m[j].n_out;
        if (!up_mat(A, &m[j], 1, &dm[j])) break;
        dout[j] = (float *)(accumulate ? A.up(out[j], ob) : A.poison(ob));
        ldo[j] = m[j].n_out;
    }
    if (!t->c.failed) {
        if (path == 1) mf_cu_gemv(&t->c, dm, dout, ldo, n_mats, dx, m[0].n_in, rows, accumulate);
        else if (path == 2) mf_cu_gemm(&t->c, dm, dout, ldo, n_mats, dx, m[0].n_in, rows, accumulate);
        else mf_cu_matmul(&t->c, dm, dout, ldo, n_mats, dx, m[0].n_in, rows, accumulate);
    }
    for (int j = 0; j < n_mats && !t->c.failed; j++)
        A.down(out[j], dout[j], sizeof(float) * (size_t)rows * (size_t)m[j].n_out);
    return finish(t, err);
}

extern "C" int mf_cuda_test_gemv_swiglu(mf_cuda_test *t, const mf_cuda_test_mat *gate, const mf_cuda_test_mat *up,
                                        const float *x, int rows, float *act, mf_err *err)
{
    arena A(&t->c);
    mf_cu_mat g, u;
    const float *dx = (const float *)A.up(x, sizeof(float) * (size_t)rows * (size_t)gate->n_in);
    size_t ob = sizeof(float) * (size_t)rows * (size_t)gate->n_out;
    float *da = (float *)A.poison(ob);
    if (up_mat(A, gate, 1, &g) && up_mat(A, up, 1, &u) && dx && da) {
        mf_cu_gemv_swiglu(&t->c, &g, &u, dx, gate->n_in, rows, da, gate->n_out);
        A.down(act, da, ob);
    }
    return finish(t, err);
}

extern "C" int mf_cuda_test_embed(mf_cuda_test *t, const mf_cuda_test_mat *emb, const int32_t *tokens, int n, float *x,
                                  mf_err *err)
{
    arena A(&t->c);
    mf_cu_mat e;
    const int32_t *dt = (const int32_t *)A.up(tokens, sizeof(int32_t) * (size_t)n);
    size_t ob = sizeof(float) * (size_t)n * (size_t)emb->n_in;
    float *dx = (float *)A.poison(ob);
    if (up_mat(A, emb, 1, &e) && dt && dx) {
        mf_cu_embed(&t->c, &e, dt, n, dx);
        A.down(x, dx, ob);
    }
    return finish(t, err);
}

extern "C" int mf_cuda_test_rmsnorm(mf_cuda_test *t, const float *x, const float *g, float eps, int rows, int d,
                                    float *out, mf_err *err)
{
    arena A(&t->c);
    size_t b = sizeof(float) * (size_t)rows * (size_t)d;
    const float *dx = (const float *)A.up(x, b), *dg = (const float *)A.up(g, sizeof(float) * (size_t)d);
    float *dout = (float *)A.poison(b);
    if (dx && dg && dout) {
        mf_cu_rmsnorm(&t->c, dx, dg, eps, dout, rows, d);
        A.down(out, dout, b);
    }
    return finish(t, err);
}

extern "C" int mf_cuda_test_rope_kv(mf_cuda_test *t, const mf_cuda_test_rope *a, mf_err *err)
{
    arena A(&t->c);
    size_t qb = sizeof(float) * (size_t)a->n * (size_t)a->H * (size_t)a->hd;
    size_t kb = sizeof(float) * (size_t)a->n * (size_t)a->Hkv * (size_t)a->hd;
    const int n_seq = a->n_seq > 1 ? a->n_seq : 1;
    const int64_t stride = (int64_t)a->Hkv * a->slots * a->hd;
    size_t cb = (a->kv_f16 ? 2 : 4) * (size_t)n_seq * (size_t)stride;
    size_t tb = sizeof(float) * (size_t)a->n_ctx * (size_t)(a->n_rot / 2);
    int32_t *pos = (int32_t *)malloc(sizeof(int32_t) * 2 * (size_t)a->n), *seq = pos + a->n;
    if (!pos) return mf_errf(err, "out of memory");
    for (int i = 0; i < a->n; i++) {
        pos[i] = a->pos ? a->pos[i] : a->pos0 + i;
        seq[i] = a->seq ? a->seq[i] : 0;
    }
    mf_cu_rope_args r;
    r.q = (float *)A.up(a->q, qb);
    r.k = (const float *)A.up(a->k, kb);
    r.v = (const float *)A.up(a->v, kb);
    r.kc = A.up(a->kc, cb);
    r.vc = A.up(a->vc, cb);
    r.cos_t = (const float *)A.up(a->cos_t, tb);
    r.sin_t = (const float *)A.up(a->sin_t, tb);
    r.pos = (const int32_t *)A.up(pos, sizeof(int32_t) * (size_t)a->n);
    r.seq = (const int32_t *)A.up(seq, sizeof(int32_t) * (size_t)a->n);
    free(pos);
    r.kv_f16 = a->kv_f16;
    r.slots = a->slots;
    r.seq_stride = stride;
    r.n_ctx = a->n_ctx;
    r.n = a->n;
    r.H = a->H;
    r.Hkv = a->Hkv;
    r.hd = a->hd;
    r.n_rot = a->n_rot;
    r.neox = a->neox;
    if (!t->c.failed) {
        mf_cu_rope_kv(&t->c, &r);
        A.down(a->q, r.q, qb);
        A.down(a->kc, r.kc, cb);
        A.down(a->vc, r.vc, cb);
    }
    return finish(t, err);
}

extern "C" int mf_cuda_test_attention(mf_cuda_test *t, const mf_cuda_test_attn *a, mf_err *err)
{
    if (mf_cu_attn_configure(a->hd, a->kv_f16, t->c.smem_optin, err)) return -1;
    arena A(&t->c);
    size_t qb = sizeof(float) * (size_t)a->n * (size_t)a->H * (size_t)a->hd;
    const int64_t stride = (int64_t)a->Hkv * a->slots * a->hd;
    size_t cb = (a->kv_f16 ? 2 : 4) * (size_t)(a->n_seq > 1 ? a->n_seq : 1) * (size_t)stride;
    mf_cu_attn_args r;
    r.q = (const float *)A.up(a->q, qb);
    r.out = (float *)A.poison(qb);
    r.kc = A.up(a->kc, cb);
    r.vc = A.up(a->vc, cb);
    r.kv_f16 = a->kv_f16;
    r.slots = a->slots;
    r.pos0 = (const int32_t *)A.up(&a->pos0, sizeof(int32_t));
    r.seq = (const int32_t *)A.up(&a->seq, sizeof(int32_t));
    r.seq_stride = stride;
    r.n = a->n;
    r.H = a->H;
    r.Hkv = a->Hkv;
    r.hd = a->hd;
    r.window = a->window;
    r.scale = a->scale;
    r.sinks = a->sinks ? (const float *)A.up(a->sinks, sizeof(float) * (size_t)a->H) : nullptr;
    r.chunk = 0;
    r.nsplit = 1;
    r.part_o = r.part_ml = nullptr;
    if (a->split) {
        int span = a->window > 0 && a->window < a->n_ctx ? a->window : a->n_ctx;
        mf_cu_attn_split(span, a->Hkv, t->c.sm_count, &r.chunk, &r.nsplit);
        r.part_o = (float *)A.poison(sizeof(float) * (size_t)r.nsplit * (size_t)a->H * (size_t)a->hd);
        r.part_ml = (float *)A.poison(sizeof(float) * 2 * (size_t)r.nsplit * (size_t)a->H);
    }
    if (!t->c.failed) {
        mf_cu_attention(&t->c, &r);
        A.down(a->out, r.out, qb);
    }
    return finish(t, err);
}

extern "C" int mf_cuda_test_moe_run(mf_cuda_test *t, const mf_cuda_test_moe *a, mf_err *err)
{
    arena A(&t->c);
    mf_cu_moe_args r;
    size_t K = (size_t)a->n * (size_t)a->k, xb = sizeof(float) * (size_t)a->n * (size_t)a->d;
    r.h = (const float *)A.up(a->h, xb);
    r.x = (float *)A.up(a->x, xb);
    r.n = a->n;
    r.d = a->d;
    r.F = a->F;
    r.E = a->E;
    r.k = a->k;
    r.limit = a->limit;
    r.alpha = a->alpha;
    up_mat(A, &a->router, 1, &r.router);
    up_mat(A, &a->gate, a->E, &r.gate);
    up_mat(A, &a->up, a->E, &r.up);
    up_mat(A, &a->down, a->E, &r.down);
    r.logits = (float *)A.poison(sizeof(float) * (size_t)a->n * (size_t)a->E);
    r.sel = (int32_t *)A.poison(sizeof(int32_t) * K);
    r.selw = (float *)A.poison(sizeof(float) * K);
    r.g = (float *)A.poison(sizeof(float) * K * (size_t)a->F);
    r.u = (float *)A.poison(sizeof(float) * K * (size_t)a->F);
    r.hg = (float *)A.poison(sizeof(float) * K * (size_t)a->d);
    r.y = (float *)A.poison(sizeof(float) * K * (size_t)a->d);
    r.counts = (int32_t *)A.poison(sizeof(int32_t) * 2 * (size_t)(a->E + 1));
    r.perm = (int32_t *)A.poison(sizeof(int32_t) * K);
    r.inv = (int32_t *)A.poison(sizeof(int32_t) * K);
    r.counts_host = nullptr;
    if (!t->c.failed && mf_cu_check(&t->c,
                                    cudaHostAlloc((void **)&r.counts_host, sizeof(int32_t) * 2 * (size_t)(a->E + 1),
                                                  cudaHostAllocDefault),
                                    "testapi: cudaHostAlloc")) {
        mf_cu_moe(&t->c, &r);
        A.down(a->x, r.x, xb);
        A.down(a->sel, r.sel, sizeof(int32_t) * K);
        A.down(a->selw, r.selw, sizeof(float) * K);
        A.down(a->logits, r.logits, sizeof(float) * (size_t)a->n * (size_t)a->E);
    }
    if (r.counts_host) {
        cudaStreamSynchronize(t->c.stream);
        cudaFreeHost(r.counts_host);
    }
    return finish(t, err);
}

extern "C" int mf_cuda_test_argmax(mf_cuda_test *t, const float *buf, int n, int32_t *idx, mf_err *err)
{
    arena A(&t->c);
    const float *db = (const float *)A.up(buf, sizeof(float) * (size_t)n);
    int32_t *di = (int32_t *)A.poison(sizeof(int32_t));
    if (db && di) {
        mf_cu_argmax(&t->c, db, n, di);
        A.down(idx, di, sizeof(int32_t));
    }
    return finish(t, err);
}
