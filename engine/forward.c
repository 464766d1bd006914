/* forward.c — the fast forward pass, written once against the backend contract.
 *
 * One step processes n rows, each a token of some sequence at some position (a prompt
 * batch, one token when generating, or both for several sequences at once: backend.h
 * mf_step). Every line below treats the rows alike — each weight is read once for all of
 * them — except the cache write and attention, where each row uses its own sequence's
 * cache at its own position. The sequence of operations is the Llama / gpt-oss block of docs/forward.md §2
 * (docs/forward.md §2, docs/moe.md §1):
 *
 *   x = embed(tokens)
 *   for each layer l:
 *       h = RMSNorm(x) ⊙ attn_norm
 *       q, k, v = W_q h (+b), W_k h (+b), W_v h (+b)
 *       rotate q, k (RoPE); append k, v to the cache
 *       o = attention(q, cache)                     causal, GQA, window and sinks per layer
 *       x = x + W_o o (+b)
 *       h = RMSNorm(x) ⊙ ffn_norm
 *       x = x + FFN(h)           dense SwiGLU (llama) or mixture of experts (gpt-oss)
 *   logits = W_out (RMSNorm(x) ⊙ output_norm)
 *
 * The backend decides how each line runs (threads and SIMD, or CUDA kernels); the plain
 * scalar version of the same math, one token at a time, is ref_forward.c.
 */
#include "forward.h"

int mf_forward_step(const mf_forward *f, const mf_step *s, mf_err *err)
{
    mf_backend *be = f->be;
    mf_bstate *st = f->st;
    const mf_model *m = f->m;
    const mf_hparams *hp = &m->hp;
    const mf_fwd_bufs *b = &f->buf;
    int d = hp->n_embd, n = s->n;

    /* a backend that captured this step's shape replays it and issues nothing here; a layer
     * hook reads x between the ops, so with a hook the step runs eagerly (never replayed) */
    mf_err hook_err;
    int hook_rc = 0;
    if (!be->step_begin(be, st, s, f->hook != NULL)) {
        be->embed(be, st, &m->tok_embd, b->x);
        if (f->hook) hook_rc = f->hook(f->hook_user, -1, n, &hook_err);
        for (int l = 0; l < hp->n_layers; l++) {
            const mf_layer *L = &m->layers[l];
            if (L->skip) continue; /* --skip-layers: x passes through unchanged (prune.h) */
            const mf_weight *wqkv[3] = {&L->wq, &L->wk, &L->wv}, *bqkv[3] = {&L->bq, &L->bk, &L->bv};
            be->rmsnorm(be, st, b->x, &L->attn_norm, hp->eps, b->h, n);
            be->qkv(be, st, wqkv, bqkv, b->h, b->q, b->k, b->v);
            be->rope_kv(be, st, l, b->q, b->k, b->v);
            be->attention(be, st, l, &L->sinks, b->q, b->attn_out);
            be->matmul(be, st, &L->wo, &L->bo, b->attn_out, b->x, n, 1);
            be->rmsnorm(be, st, b->x, &L->ffn_norm, hp->eps, b->h, n);
            if (hp->n_experts) {
                const mf_weight *w[3] = {&L->gate_exps, &L->up_exps, &L->down_exps};
                const mf_weight *bias[3] = {&L->gate_exps_b, &L->up_exps_b, &L->down_exps_b};
                be->moe(be, st, &L->router, &L->router_b, w, bias, b->h, b->x);
            } else {
                const mf_weight *w[3] = {&L->ffn_gate, &L->ffn_up, &L->ffn_down};
                be->ffn(be, st, w, b->h, b->x);
            }
            if (f->hook && !hook_rc) hook_rc = f->hook(f->hook_user, l, n, &hook_err);
        }
        /* logits of the rows asked for (the last row of each sequence that samples next, or
         * every row): their normed rows side by side in h, a run of adjacent rows at once */
        for (int i = 0, j; i < s->n_out; i = j) {
            for (j = i + 1; j < s->n_out && s->out[j] == s->out[j - 1] + 1;) j++;
            be->rmsnorm(be, st, b->x + (size_t)s->out[i] * d, &m->output_norm, hp->eps, b->h + (size_t)i * d, j - i);
        }
        if (s->n_out) be->matmul(be, st, &m->output, NULL, b->h, b->logits, s->n_out, 0);
    }
    if (be->step_end(be, st, err)) return -1;
    if (hook_rc) return mf_errf(err, "layer hook: %s", hook_err.msg);
    return 0;
}
