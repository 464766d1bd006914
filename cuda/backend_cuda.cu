/* backend_cuda.cu — the CUDA backend: the function table of backend.h, the session state on
 * the device, the step protocol with CUDA graphs. The kernels are in the other cuda/ files;
 * what each op computes is backend.h's contract, identical to engine/cpu/.
 *
 * Memory plan of a session (all device memory, sized once in state_new by memory.h's
 * mf_mem_cuda_state and checked against cudaMemGetInfo before the first allocation — one
 * error naming both numbers):
 *   KV cache        per layer K and V, [n_seq][Hkv][slots][hd]: one cache per sequence,
 *                   binary16 or float32; slots from mf_mem_kv_slots (ring buffer of
 *                   window + max_batch − 1 on sliding layers)
 *   RoPE tables     cos/sin [n_ctx][n_rot/2] per distinct frequency set, from
 *                   mf_rope_cos_sin on the host (double, mscale included): the CPU's numbers
 *   step params     [3][max_batch] int32: the step's tokens, sequences and positions
 *                   (kernels read them here, so a captured graph is valid for every token,
 *                   sequence and position)
 *   attention       flash-decoding partials [nsplit][H][hd + 2]
 *   FFN / MoE       gate and up outputs; router logits, selections, grouped buffers
 *   prompt GEMM     F16 weight tile (≤ 64 MiB) and F16 activations [max_batch][widest input]
 * The weights are uploaded once per model by prepare() (upload.cu) into the backend's
 * per-model state (mf_bmodel: one allocation and a table of device addresses by weight
 * slot), which every state on that model shares.
 *
 * A step. step_begin copies the rows' tokens, sequences and positions from pinned host
 * memory into the step params (cudaMemcpyAsync; an event guards the pinned buffer against
 * being overwritten before the copy ran), and finds the runs of rows of one sequence:
 * attention is launched once per run, over that sequence's cache (a run of one row, a
 * decoded token, takes the flash-decoding split). For a decode step of n rows (backend.h:
 * one row per sequence, every row's logits) without no_graph: the first one of n rows starts
 * a stream capture and returns 0 — the forward pass issues its ops into the capture — and
 * step_end instantiates the graph and launches it; every later decode step of n rows
 * launches that graph and returns 1, so the forward pass issues nothing. So there is one
 * graph per number of sequences decoding together (at most n_seq), each captured the first
 * time that many decode together. Steps with prompt rows run as issued (their shapes change
 * from step to step). A step begun with eager = 1 (a layer hook is set: it reads x between
 * the ops) is neither captured nor replayed; its ops run as issued, and existing graphs stay
 * valid for later steps. All launch shapes of a decode step of n rows depend only on the
 * model, the session (n_ctx) and n, never on the sequences or positions: each row's
 * attention reads its sequence and position from the step params.
 * Launches per decoded token (TinyLlama, 22 layers): embed 1, per layer 9 (rmsnorm, qkv,
 * rope_kv, attention split + combine, wo, rmsnorm, gate/up/SwiGLU, down), final rmsnorm 1,
 * output 1: 201 kernels in one graph launch, plus the token copy and, for greedy decoding,
 * argmax and one int copied back. gpt-oss: 11 per layer (MoE: router, top-k, gate/up,
 * down), 267 for 24 layers.
 *
 * Errors: ops record the first failure in the state's context (ctx.cuh) and skip what
 * follows; step_end reports it (and keeps reporting it: a failed CUDA context is not
 * recovered). argmax returns 0 when it fails, with the error kept for the next step_end.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ctx.cuh"

extern "C" {
#include "backend.h"
#include "memory.h"
#include "model.h"
#include "rope.h"
}

/* What the backend keeps per model (backend.h): the device copy of its weights, one
 * allocation (upload.cu), and where each tensor of the model's weight list is in it, by slot
 * (mf_weight.slot). Shared by every state on the model; counted. */
struct mf_bmodel {
    const mf_model *m;
    void *base;
    const uint8_t **dev; /* [mf_model_n_weights] device address of each weight, or NULL */
    int refs;
    mf_bmodel *next;
};

namespace
{

struct cu_backend {
    int device;
    mf_bmodel *models; /* prepared models */
    int capturing;     /* states of this backend inside a stream capture */
};

struct cu_state {
    mf_cu_ctx c;
    cu_backend *cb;
    const mf_bmodel *bm;
    const mf_model *m;
    mf_state_opts o;
    /* KV cache */
    void **kc, **vc;
    int *slots;
    /* RoPE: per-layer pointers into the distinct tables */
    float **tabs;
    int n_tabs;
    const float **rcos, **rsin;
    /* the step: d_params/h_params [tokens | sequences | positions], max_batch each */
    int32_t *d_params, *h_params;
    cudaEvent_t params_copied;
    int n;
    int *run0, n_runs; /* [max_batch + 1] the runs of rows of one sequence: run i is rows
                          run0[i] .. run0[i + 1] − 1 */
    /* attention */
    int chunk_full, nsplit_full, chunk_swa, nsplit_swa;
    float *part_o, *part_ml;
    /* dense FFN */
    float *ff_g, *ff_u;
    /* MoE */
    float *logits, *selw, *eg, *eu, *hg, *ey;
    int32_t *sel, *counts, *perm, *inv, *counts_host;
    /* greedy sampling */
    int32_t *d_arg, *h_arg;
    /* CUDA graphs of decode steps, by row count: [n_seq + 1], NULL until captured */
    cudaGraph_t *graph;
    cudaGraphExec_t *exec;
    int capture_n;  /* the row count being captured, 0: none */
    uint64_t bytes; /* device memory allocated (memory.h mf_mem_cuda_state) */
};

cu_backend *impl(mf_backend *be) { return (cu_backend *)be->impl; }
cu_state *S(mf_bstate *st) { return (cu_state *)st; }

/* the device copy of a weight: its slot in the prepared model's table */
const uint8_t *dev_of(const cu_state *st, const mf_weight *w) { return st->bm->dev[w->slot]; }
const float *vec_of(const cu_state *st, const mf_weight *w)
{
    return w && w->name ? (const float *)dev_of(st, w) : nullptr;
}

mf_cu_mat mat_of(const cu_state *st, const mf_weight *w, const mf_weight *b)
{
    mf_cu_mat m;
    m.type = w->type;
    m.w = dev_of(st, w);
    m.n_in = w->ne[0];
    m.n_out = w->ne[1];
    m.row_bytes = w->row_bytes;
    m.bias = vec_of(st, b);
    return m;
}

/* elements of layer l's cache of one sequence: the stride from one sequence's to the next */
int64_t seq_stride(const cu_state *st, int l)
{
    return (int64_t)st->slots[l] * st->m->hp.n_kv_heads * st->m->hp.head_dim;
}

/* ------------------------------------------------------------------ buffers */

float *cu_alloc(mf_backend *be, size_t n)
{
    (void)be;
    void *p = nullptr;
    if (cudaMalloc(&p, (n ? n : 1) * sizeof(float)) != cudaSuccess) {
        cudaGetLastError();
        return nullptr;
    }
    return (float *)p;
}

void cu_release(mf_backend *be, float *p)
{
    (void)be;
    if (p) cudaFree(p);
}

int cu_read(mf_backend *be, const float *buf, size_t n, float *host, mf_err *err)
{
    if (impl(be)->capturing)
        return mf_errf(err, "CUDA backend: read() during a graph capture (set no_graph to copy buffers mid-step)");
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) return mf_cu_err(err, e, "CUDA backend: synchronize before read");
    e = cudaMemcpy(host, buf, n * sizeof(float), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) return mf_cu_err(err, e, "CUDA backend: copy of a buffer to the host");
    return 0;
}

/* ------------------------------------------------------------------ weights */

mf_bmodel *cu_prepare(mf_backend *be, const mf_model *m, mf_progress_fn progress, void *user, mf_err *err)
{
    cu_backend *cb = impl(be);
    for (mf_bmodel *bm = cb->models; bm; bm = bm->next)
        if (bm->m == m) {
            bm->refs++;
            return bm;
        }
    mf_bmodel *bm = (mf_bmodel *)calloc(1, sizeof *bm);
    const uint8_t **dev = (const uint8_t **)calloc((size_t)mf_model_n_weights(m), sizeof *dev);
    if (!bm || !dev) {
        free(bm);
        free(dev);
        return (mf_errf(err, "out of memory"), nullptr);
    }
    /* norms, biases and sinks are F32 (the loader refuses anything else: MF_W_VECTOR) */
    size_t bytes = 0;
    if (mf_cu_upload_model(m, &bm->base, dev, &bytes, progress, user, err)) {
        free(bm);
        free(dev);
        return nullptr;
    }
    bm->m = m;
    bm->dev = dev;
    bm->refs = 1;
    bm->next = cb->models;
    cb->models = bm;
    return bm;
}

void free_bmodel(mf_bmodel *bm)
{
    cudaFree(bm->base);
    free(bm->dev);
    free(bm);
}

void cu_unprepare(mf_backend *be, mf_bmodel *bm)
{
    cu_backend *cb = impl(be);
    if (!bm || --bm->refs > 0) return;
    for (mf_bmodel **p = &cb->models; *p; p = &(*p)->next)
        if (*p == bm) {
            *p = bm->next;
            break;
        }
    free_bmodel(bm);
}

/* ------------------------------------------------------------------ state */

void cu_state_free(mf_backend *be, mf_bstate *bst)
{
    (void)be;
    cu_state *st = S(bst);
    if (!st) return;
    for (int i = 0; st->exec && st->graph && i <= mf_mem_n_seq(&st->o); i++) {
        if (st->exec[i]) cudaGraphExecDestroy(st->exec[i]);
        if (st->graph[i]) cudaGraphDestroy(st->graph[i]);
    }
    free(st->exec);
    free(st->graph);
    free(st->run0);
    int L = st->m->hp.n_layers;
    for (int l = 0; l < L; l++) {
        if (st->kc && st->kc[l]) cudaFree(st->kc[l]);
        if (st->vc && st->vc[l]) cudaFree(st->vc[l]);
    }
    for (int i = 0; i < st->n_tabs; i++) cudaFree(st->tabs[i]);
    void *dev[] = {st->d_params, st->part_o, st->part_ml, st->ff_g, st->ff_u,   st->logits, st->selw, st->eg,
                   st->eu,       st->hg,     st->ey,      st->sel,  st->counts, st->perm,   st->inv,  st->d_arg};
    for (void *p : dev)
        if (p) cudaFree(p);
    void *pinned[] = {st->h_params, st->counts_host, st->h_arg};
    for (void *p : pinned)
        if (p) cudaFreeHost(p);
    if (st->params_copied) cudaEventDestroy(st->params_copied);
    mf_cu_ctx_free(&st->c);
    free(st->kc);
    free(st->vc);
    free(st->slots);
    free(st->tabs);
    free(st->rcos);
    free(st->rsin);
    free(st);
}

struct dev_req {
    void **p;
    size_t bytes;
};

mf_bstate *cu_state_new(mf_backend *be, mf_bmodel *bm, const mf_state_opts *o, mf_err *err)
{
    const mf_model *m = bm->m;
    const mf_hparams *hp = &m->hp;
    if (hp->n_kv_heads <= 0 || hp->n_heads % hp->n_kv_heads)
        return (mf_errf(err, "CUDA backend: %d heads are not a multiple of %d KV heads", hp->n_heads, hp->n_kv_heads),
                nullptr);
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return (mf_errf(err, "CUDA backend: %d rotated dims for head dim %d", hp->n_rot, hp->head_dim), nullptr);
    if (o->n_ctx <= 0 || o->max_batch <= 0)
        return (mf_errf(err, "CUDA backend: n_ctx %d, max_batch %d", o->n_ctx, o->max_batch), nullptr);

    cu_state *st = (cu_state *)calloc(1, sizeof *st);
    if (!st) return (mf_errf(err, "out of memory"), nullptr);
    st->cb = impl(be);
    st->bm = bm;
    st->m = m;
    st->o = *o;
    const int L = hp->n_layers, B = o->max_batch, npair = hp->n_rot / 2, hd = hp->head_dim;
    st->kc = (void **)calloc((size_t)L + 1, sizeof(void *));
    st->vc = (void **)calloc((size_t)L + 1, sizeof(void *));
    st->slots = (int *)calloc((size_t)L + 1, sizeof(int));
    st->tabs = (float **)calloc(4, sizeof(float *));
    st->rcos = (const float **)calloc((size_t)L + 1, sizeof(float *));
    st->rsin = (const float **)calloc((size_t)L + 1, sizeof(float *));
    st->run0 = (int *)calloc((size_t)B + 1, sizeof(int));
    st->exec = (cudaGraphExec_t *)calloc((size_t)mf_mem_n_seq(o) + 1, sizeof(cudaGraphExec_t));
    st->graph = (cudaGraph_t *)calloc((size_t)mf_mem_n_seq(o) + 1, sizeof(cudaGraph_t));
    float *host_tab = (float *)malloc(sizeof(float) * 2 * (size_t)o->n_ctx * (size_t)(npair ? npair : 1));
    dev_req *req = (dev_req *)calloc(2 * (size_t)L + 64, sizeof *req);
    int nreq = 0;
    size_t free_b = 0, total_b = 0;
    cudaError_t e;
    mf_mem_cuda mem;
    if (!st->kc || !st->vc || !st->slots || !st->tabs || !st->rcos || !st->rsin || !st->run0 || !st->exec ||
        !st->graph || !host_tab || !req) {
        mf_errf(err, "out of memory");
        goto fail;
    }
    if (mf_cu_ctx_init(&st->c, 0, 0, err)) goto fail; /* stream, cuBLAS, device limits */
    {
        /* flash-decoding splits: full layers see up to n_ctx keys, sliding ones the window */
        int span_swa = hp->window > 0 && hp->window < o->n_ctx ? hp->window : o->n_ctx;
        mf_cu_attn_split(o->n_ctx, hp->n_kv_heads, st->c.sm_count, &st->chunk_full, &st->nsplit_full);
        mf_cu_attn_split(span_swa, hp->n_kv_heads, st->c.sm_count, &st->chunk_swa, &st->nsplit_swa);
    }
    if (mf_cu_attn_configure(hd, o->kv_f16, st->c.smem_optin, err)) goto fail;

    /* ---- what the session needs on the device: memory.h's formula, buffer by buffer */
    mf_mem_cuda_state(hp, o, st->nsplit_full > st->nsplit_swa ? st->nsplit_full : st->nsplit_swa, &mem);
    for (int l = 0; l < L; l++) {
        st->slots[l] = mf_mem_kv_slots(hp, l, o->n_ctx, B);
        size_t bytes = (size_t)mf_mem_kv_layer_bytes(hp, l, o) * (size_t)mf_mem_n_seq(o);
        req[nreq++] = {&st->kc[l], bytes};
        req[nreq++] = {&st->vc[l], bytes};
    }
    for (int t = 0; t < mf_mem_rope_tables(hp); t++) {
        req[nreq++] = {(void **)&st->tabs[2 * t], mem.rope_table};
        req[nreq++] = {(void **)&st->tabs[2 * t + 1], mem.rope_table};
    }
    st->n_tabs = 2 * mf_mem_rope_tables(hp);
    req[nreq++] = {(void **)&st->d_params, mem.params};
    req[nreq++] = {(void **)&st->d_arg, mem.arg};
    req[nreq++] = {(void **)&st->part_o, mem.part_o};
    req[nreq++] = {(void **)&st->part_ml, mem.part_ml};
    if (mem.ff) {
        req[nreq++] = {(void **)&st->ff_g, mem.ff};
        req[nreq++] = {(void **)&st->ff_u, mem.ff};
    }
    if (hp->n_experts > 0) {
        req[nreq++] = {(void **)&st->logits, mem.logits};
        req[nreq++] = {(void **)&st->sel, mem.sel};
        req[nreq++] = {(void **)&st->selw, mem.sel};
        req[nreq++] = {(void **)&st->eg, mem.eg};
        req[nreq++] = {(void **)&st->eu, mem.eg};
        req[nreq++] = {(void **)&st->hg, mem.hg};
        req[nreq++] = {(void **)&st->ey, mem.hg};
        req[nreq++] = {(void **)&st->counts, mem.counts};
        req[nreq++] = {(void **)&st->perm, mem.sel};
        req[nreq++] = {(void **)&st->inv, mem.sel};
    }
    if (mem.wh) {
        req[nreq++] = {(void **)&st->c.wh, mem.wh};
        req[nreq++] = {(void **)&st->c.xh, mem.xh};
        st->c.wh_cap = mem.wh / sizeof(__half);
        st->c.xh_cap = mem.xh / sizeof(__half);
    }
    st->bytes = mem.sum.total;
    if ((e = cudaMemGetInfo(&free_b, &total_b)) != cudaSuccess) {
        mf_cu_err(err, e, "cudaMemGetInfo");
        goto fail;
    }
    if (mem.sum.total > free_b) {
        mf_errf(err,
                "CUDA backend: the session (KV cache, %d positions, and scratch) needs %.1f MiB of GPU memory "
                "but only %.1f MiB of %.1f MiB are free",
                o->n_ctx, mem.sum.total / 1048576.0, free_b / 1048576.0, total_b / 1048576.0);
        goto fail;
    }

    /* ---- allocate */
    for (int i = 0; i < nreq; i++)
        if ((e = cudaMalloc(req[i].p, req[i].bytes ? req[i].bytes : 4)) != cudaSuccess) {
            *req[i].p = nullptr;
            char what[96];
            snprintf(what, sizeof what, "cudaMalloc of %zu bytes of session state", req[i].bytes);
            mf_cu_err(err, e, what);
            goto fail;
        }
    if ((e = cudaHostAlloc((void **)&st->h_params, mem.params, cudaHostAllocDefault)) != cudaSuccess ||
        (e = cudaHostAlloc((void **)&st->h_arg, sizeof(int32_t), cudaHostAllocDefault)) != cudaSuccess ||
        (hp->n_experts > 0 &&
         (e = cudaHostAlloc((void **)&st->counts_host, sizeof(int32_t) * 2 * (size_t)(hp->n_experts + 1),
                            cudaHostAllocDefault)) != cudaSuccess)) {
        mf_cu_err(err, e, "cudaHostAlloc of the step buffers");
        goto fail;
    }
    if ((e = cudaEventCreateWithFlags(&st->params_copied, cudaEventDisableTiming)) != cudaSuccess) {
        mf_cu_err(err, e, "cudaEventCreate");
        goto fail;
    }

    /* ---- zeroed KV cache (no slot is ever read uninitialized), RoPE tables */
    for (int l = 0; l < L; l++) {
        size_t bytes = (size_t)mf_mem_kv_layer_bytes(hp, l, o) * (size_t)mf_mem_n_seq(o);
        if ((e = cudaMemset(st->kc[l], 0, bytes)) != cudaSuccess ||
            (e = cudaMemset(st->vc[l], 0, bytes)) != cudaSuccess) {
            mf_cu_err(err, e, "cudaMemset of the KV cache");
            goto fail;
        }
    }
    for (int l = 0, filled[2] = {0, 0}; l < L; l++) { /* each table from the first layer that uses it */
        int t = mf_mem_rope_table(hp, l);
        st->rcos[l] = st->tabs[2 * t];
        st->rsin[l] = st->tabs[2 * t + 1];
        if (filled[t]) continue;
        filled[t] = 1;
        float *hc = host_tab, *hs = host_tab + (size_t)o->n_ctx * (size_t)npair;
        for (int p = 0; p < o->n_ctx; p++) mf_rope_cos_sin(m, l, p, hc + (size_t)p * npair, hs + (size_t)p * npair);
        size_t bytes = sizeof(float) * (size_t)o->n_ctx * (size_t)npair;
        if (bytes && ((e = cudaMemcpy(st->tabs[2 * t], hc, bytes, cudaMemcpyHostToDevice)) != cudaSuccess ||
                      (e = cudaMemcpy(st->tabs[2 * t + 1], hs, bytes, cudaMemcpyHostToDevice)) != cudaSuccess)) {
            mf_cu_err(err, e, "upload of the RoPE tables");
            goto fail;
        }
    }
    free(host_tab);
    free(req);
    return (mf_bstate *)st;
fail:
    free(host_tab);
    free(req);
    cu_state_free(be, (mf_bstate *)st);
    return nullptr;
}

uint64_t cu_state_bytes(mf_backend *be, const mf_bstate *bst)
{
    (void)be;
    return ((const cu_state *)bst)->bytes;
}

/* ------------------------------------------------------------------ a step */

int cu_step_begin(mf_backend *be, mf_bstate *bst, const mf_step *s, int eager)
{
    cu_state *st = S(bst);
    mf_cu_ctx *c = &st->c;
    const int n = s->n, B = st->o.max_batch, n_seq = mf_mem_n_seq(&st->o);
    st->n = n;
    st->n_runs = 0;
    if (c->failed) return 0;
    if (n < 1 || n > B) {
        mf_cu_fail(c, "CUDA backend: a step of %d rows (max_batch %d)", n, B);
        return 0;
    }
    for (int r = 0; r < n; r++) {
        if (s->seq[r] < 0 || s->seq[r] >= n_seq || s->pos[r] < 0 || s->pos[r] >= st->o.n_ctx) {
            mf_cu_fail(c, "CUDA backend: row %d is position %d of sequence %d (n_ctx %d, %d sequences)", r, s->pos[r],
                       s->seq[r], st->o.n_ctx, n_seq);
            return 0;
        }
        /* a run: rows of one sequence at consecutive positions (backend.h) */
        if (!r || s->seq[r] != s->seq[r - 1]) st->run0[st->n_runs++] = r;
    }
    st->run0[st->n_runs] = n;
    /* the pinned buffer is reused: wait until the previous step's copy has read it */
    if (!mf_cu_check(c, cudaEventSynchronize(st->params_copied), "CUDA backend: wait for the step copy")) return 0;
    size_t bytes = sizeof(int32_t) * (size_t)n;
    memcpy(st->h_params, s->tokens, bytes);
    memcpy(st->h_params + B, s->seq, bytes);
    memcpy(st->h_params + 2 * B, s->pos, bytes);
    if (!mf_cu_check(c,
                     cudaMemcpyAsync(st->d_params, st->h_params, sizeof(int32_t) * 3 * (size_t)B,
                                     cudaMemcpyHostToDevice, c->stream),
                     "CUDA backend: copy of the step") ||
        !mf_cu_check(c, cudaEventRecord(st->params_copied, c->stream), "CUDA backend: cudaEventRecord"))
        return 0;
    if (!mf_step_is_decode(s, n_seq) || st->o.no_graph || eager) return 0;
    if (st->exec[n]) {
        mf_cu_check(c, cudaGraphLaunch(st->exec[n], c->stream), "CUDA backend: cudaGraphLaunch");
        return 1;
    }
    if (!mf_cu_check(c, cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal),
                     "CUDA backend: cudaStreamBeginCapture"))
        return 0;
    c->capturing = 1;
    st->capture_n = n;
    st->cb->capturing++;
    return 0;
}

int cu_step_end(mf_backend *be, mf_bstate *bst, mf_err *err)
{
    (void)be;
    cu_state *st = S(bst);
    mf_cu_ctx *c = &st->c;
    if (c->capturing) {
        const int n = st->capture_n;
        cudaGraph_t g = nullptr;
        cudaError_t e = cudaStreamEndCapture(c->stream, &g);
        c->capturing = 0;
        st->capture_n = 0;
        st->cb->capturing--;
        if (e != cudaSuccess || c->failed) {
            mf_cu_check(c, e, "CUDA backend: cudaStreamEndCapture");
            if (g) cudaGraphDestroy(g);
        } else if (mf_cu_check(c, cudaGraphInstantiate(&st->exec[n], g, 0), "CUDA backend: cudaGraphInstantiate")) {
            st->graph[n] = g;
            mf_cu_check(c, cudaGraphLaunch(st->exec[n], c->stream), "CUDA backend: cudaGraphLaunch");
        } else {
            st->exec[n] = nullptr;
            cudaGraphDestroy(g);
        }
    }
    if (!c->failed) mf_cu_launched(c, "the step's kernels");
    if (c->failed) return mf_errf(err, "%s", c->msg);
    return 0;
}

/* ------------------------------------------------------------------ operations */

void cu_embed(mf_backend *be, mf_bstate *bst, const mf_weight *emb, float *x)
{
    (void)be;
    cu_state *st = S(bst);
    mf_cu_mat e = mat_of(st, emb, nullptr);
    mf_cu_embed(&st->c, &e, st->d_params, st->n, x);
}

void cu_rmsnorm(mf_backend *be, mf_bstate *bst, const float *x, const mf_weight *g, float eps, float *out, int rows)
{
    (void)be;
    mf_cu_rmsnorm(&S(bst)->c, x, vec_of(S(bst), g), eps, out, rows, (int)g->ne[0]);
}

void cu_matmul(mf_backend *be, mf_bstate *bst, const mf_weight *W, const mf_weight *b, const float *in, float *out,
               int rows, int accumulate)
{
    (void)be;
    mf_cu_mat m = mat_of(S(bst), W, b);
    int64_t ldo = W->ne[1];
    mf_cu_matmul(&S(bst)->c, &m, &out, &ldo, 1, in, W->ne[0], rows, accumulate);
}

void cu_qkv(mf_backend *be, mf_bstate *bst, const mf_weight *const W[3], const mf_weight *const b[3], const float *h,
            float *q, float *k, float *v)
{
    (void)be;
    cu_state *st = S(bst);
    mf_cu_mat m[3] = {mat_of(st, W[0], b[0]), mat_of(st, W[1], b[1]), mat_of(st, W[2], b[2])};
    float *outs[3] = {q, k, v};
    int64_t ldo[3] = {W[0]->ne[1], W[1]->ne[1], W[2]->ne[1]};
    mf_cu_matmul(&st->c, m, outs, ldo, 3, h, W[0]->ne[0], st->n, 0);
}

void cu_rope_kv(mf_backend *be, mf_bstate *bst, int l, float *q, const float *k, const float *v)
{
    (void)be;
    cu_state *st = S(bst);
    const mf_hparams *hp = &st->m->hp;
    mf_cu_rope_args a;
    a.q = q;
    a.k = k;
    a.v = v;
    a.kc = st->kc[l];
    a.vc = st->vc[l];
    a.kv_f16 = st->o.kv_f16;
    a.slots = st->slots[l];
    a.seq_stride = seq_stride(st, l);
    a.cos_t = st->rcos[l];
    a.sin_t = st->rsin[l];
    a.n_ctx = st->o.n_ctx;
    a.seq = st->d_params + st->o.max_batch;
    a.pos = st->d_params + 2 * st->o.max_batch;
    a.n = st->n;
    a.H = hp->n_heads;
    a.Hkv = hp->n_kv_heads;
    a.hd = hp->head_dim;
    a.n_rot = hp->n_rot;
    a.neox = hp->rope_neox;
    mf_cu_rope_kv(&st->c, &a);
}

void cu_attention(mf_backend *be, mf_bstate *bst, int l, const mf_weight *sinks, const float *q, float *out)
{
    (void)be;
    cu_state *st = S(bst);
    const mf_hparams *hp = &st->m->hp;
    const mf_layer *L = &st->m->layers[l];
    const int sliding = L->sliding && hp->window > 0, B = st->o.max_batch;
    const int64_t qw = (int64_t)hp->n_heads * hp->head_dim;
    mf_cu_attn_args a;
    a.kc = st->kc[l];
    a.vc = st->vc[l];
    a.kv_f16 = st->o.kv_f16;
    a.slots = st->slots[l];
    a.seq_stride = seq_stride(st, l);
    a.H = hp->n_heads;
    a.Hkv = hp->n_kv_heads;
    a.hd = hp->head_dim;
    a.window = sliding ? hp->window : 0;
    a.scale = hp->attn_scale;
    a.sinks = vec_of(st, sinks);
    a.nsplit = sliding ? st->nsplit_swa : st->nsplit_full;
    a.part_o = st->part_o;
    a.part_ml = st->part_ml;
    /* one launch per run of rows of one sequence, over its cache; a single row (a decoded
     * token) takes the flash-decoding split. The partials are reused from launch to launch:
     * the stream orders them. */
    for (int i = 0; i < st->n_runs; i++) {
        const int r0 = st->run0[i];
        a.n = st->run0[i + 1] - r0;
        a.q = q + r0 * qw;
        a.out = out + r0 * qw;
        a.seq = st->d_params + B + r0;
        a.pos0 = st->d_params + 2 * B + r0;
        a.chunk = a.n == 1 ? (sliding ? st->chunk_swa : st->chunk_full) : 0;
        mf_cu_attention(&st->c, &a);
    }
}

void cu_ffn(mf_backend *be, mf_bstate *bst, const mf_weight *const W[3], const float *h, float *x)
{
    (void)be;
    cu_state *st = S(bst);
    mf_cu_ctx *c = &st->c;
    const int n = st->n;
    const int64_t d = W[0]->ne[0], F = W[0]->ne[1];
    mf_cu_mat gate = mat_of(st, W[0], nullptr), up = mat_of(st, W[1], nullptr);
    if (n < MF_GEMM_MIN_ROWS && gate.type == up.type) {
        mf_cu_gemv_swiglu(c, &gate, &up, h, d, n, st->ff_g, F);
    } else {
        mf_cu_mat gu[2] = {gate, up};
        float *outs[2] = {st->ff_g, st->ff_u};
        int64_t ldo[2] = {F, F};
        mf_cu_matmul(c, gu, outs, ldo, 2, h, d, n, 0);
        mf_cu_swiglu(c, st->ff_g, st->ff_u, (int64_t)n * F);
    }
    mf_cu_mat down = mat_of(st, W[2], nullptr);
    int64_t ldo = W[2]->ne[1];
    mf_cu_matmul(c, &down, &x, &ldo, 1, st->ff_g, F, n, 1);
}

void cu_moe(mf_backend *be, mf_bstate *bst, const mf_weight *router, const mf_weight *router_b,
            const mf_weight *const W[3], const mf_weight *const b[3], const float *h, float *x)
{
    (void)be;
    cu_state *st = S(bst);
    const mf_hparams *hp = &st->m->hp;
    mf_cu_moe_args a;
    a.h = h;
    a.x = x;
    a.n = st->n;
    a.d = hp->n_embd;
    a.F = hp->n_ff_exp;
    a.E = hp->n_experts;
    a.k = hp->n_experts_used;
    a.limit = hp->swiglu_limit;
    a.alpha = hp->swiglu_alpha;
    a.router = mat_of(st, router, router_b);
    a.gate = mat_of(st, W[0], b[0]);
    a.up = mat_of(st, W[1], b[1]);
    a.down = mat_of(st, W[2], b[2]);
    a.logits = st->logits;
    a.sel = st->sel;
    a.selw = st->selw;
    a.g = st->eg;
    a.u = st->eu;
    a.hg = st->hg;
    a.y = st->ey;
    a.counts = st->counts;
    a.perm = st->perm;
    a.inv = st->inv;
    a.counts_host = st->counts_host;
    mf_cu_moe(&st->c, &a);
}

int cu_argmax(mf_backend *be, mf_bstate *bst, const float *buf, int n)
{
    (void)be;
    cu_state *st = S(bst);
    mf_cu_ctx *c = &st->c;
    if (c->capturing) {
        mf_cu_fail(c, "CUDA backend: argmax() inside a graph capture");
        return 0;
    }
    mf_cu_argmax(c, buf, n, st->d_arg);
    if (c->failed ||
        !mf_cu_check(c, cudaMemcpyAsync(st->h_arg, st->d_arg, sizeof(int32_t), cudaMemcpyDeviceToHost, c->stream),
                     "CUDA backend: copy of the argmax") ||
        !mf_cu_check(c, cudaStreamSynchronize(c->stream), "CUDA backend: wait for the argmax"))
        return 0;
    return *st->h_arg;
}

/* ------------------------------------------------------------------ lifetime */

void cu_free(mf_backend *be)
{
    if (!be) return;
    cu_backend *cb = impl(be);
    if (cb) {
        while (cb->models) { /* prepares without their unprepare */
            mf_bmodel *next = cb->models->next;
            free_bmodel(cb->models);
            cb->models = next;
        }
        free(cb);
    }
    free(be);
}

}  // namespace

extern "C" mf_backend *mf_backend_cuda_new(int device, mf_err *err)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return (mf_cu_err(err, e, "no usable CUDA device (cudaGetDeviceCount)"), nullptr);
    if (device < 0 || device >= n)
        return (mf_errf(err, "CUDA device %d does not exist (%d device%s present)", device, n, n == 1 ? "" : "s"),
                nullptr);
    if ((e = cudaSetDevice(device)) != cudaSuccess) return (mf_cu_err(err, e, "cudaSetDevice"), nullptr);
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, device)) != cudaSuccess)
        return (mf_cu_err(err, e, "cudaGetDeviceProperties"), nullptr);
    mf_backend *be = (mf_backend *)calloc(1, sizeof *be);
    cu_backend *cb = (cu_backend *)calloc(1, sizeof *cb);
    if (!be || !cb) {
        free(be);
        free(cb);
        return (mf_errf(err, "out of memory"), nullptr);
    }
    cb->device = device;
    be->name = "cuda";
    be->kv_f16_default = 1; /* half the cache traffic */
    snprintf(be->device_name, sizeof be->device_name, "%.80s (sm_%d%d, %d SMs)", p.name, p.major, p.minor,
             p.multiProcessorCount);
    be->impl = cb;
    be->prepare = cu_prepare;
    be->unprepare = cu_unprepare;
    be->state_new = cu_state_new;
    be->state_free = cu_state_free;
    be->state_bytes = cu_state_bytes;
    be->free = cu_free;
    be->alloc = cu_alloc;
    be->release = cu_release;
    be->read = cu_read;
    be->step_begin = cu_step_begin;
    be->step_end = cu_step_end;
    be->embed = cu_embed;
    be->rmsnorm = cu_rmsnorm;
    be->matmul = cu_matmul;
    be->qkv = cu_qkv;
    be->rope_kv = cu_rope_kv;
    be->attention = cu_attention;
    be->ffn = cu_ffn;
    be->moe = cu_moe;
    be->argmax = cu_argmax;
    return be;
}
