/* forward.c — the fast forward pass, written once against the backend contract.
 *
 * One step processes n tokens at positions pos0 .. pos0+n-1 (a prompt batch, or n = 1 when
 * generating). The sequence of operations is the Llama / gpt-oss block of the specs
 * (llama-arch.md §4.1, gpt-oss-arch.md §3.2):
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
#include "session.h"

int mf_forward_step(mf_session *s, const int32_t *tokens, int n, int pos0, int all_logits, mf_err *err)
{
    mf_backend *be = s->be;
    mf_bstate *st = s->bst;
    const mf_model *m = s->m;
    const mf_hparams *hp = &m->hp;
    int d = hp->n_embd;

    /* a backend that captured this step's shape replays it and issues nothing here; a layer
     * hook reads x between the ops, so with a hook the step runs eagerly (never replayed) */
    mf_err hook_err;
    int hook_rc = 0;
    if (!be->step_begin(be, st, tokens, n, pos0, s->hook != NULL)) {
        be->embed(be, st, &m->tok_embd, s->x);
        if (s->hook) hook_rc = mf_session_call_hook(s, -1, n, &hook_err);
        for (int l = 0; l < hp->n_layers; l++) {
            const mf_layer *L = &m->layers[l];
            if (L->skip) continue;  /* --skip-layers: x passes through unchanged (prune.h) */
            be->rmsnorm(be, st, s->x, &L->attn_norm, hp->eps, s->h, n);
            be->qkv(be, st, l, s->h, s->q, s->k, s->v);
            be->rope_kv(be, st, l, s->q, s->k, s->v);
            be->attention(be, st, l, s->q, s->att);
            be->matmul(be, st, &L->wo, &L->bo, s->att, s->x, n, 1);
            be->rmsnorm(be, st, s->x, &L->ffn_norm, hp->eps, s->h, n);
            if (hp->n_experts)
                be->moe(be, st, l, s->h, s->x);
            else
                be->ffn(be, st, l, s->h, s->x);
            if (s->hook && !hook_rc) hook_rc = mf_session_call_hook(s, l, n, &hook_err);
        }
        /* logits of every row, or of the last only (all that generation needs) */
        int r0 = all_logits ? 0 : n - 1;
        be->rmsnorm(be, st, s->x + (size_t)r0 * d, &m->output_norm, hp->eps, s->h, n - r0);
        be->matmul(be, st, &m->output, NULL, s->h, s->logits, n - r0, 0);
    }
    if (be->step_end(be, st, err)) return -1;
    if (hook_rc) return mf_errf(err, "layer hook: %s", hook_err.msg);
    return 0;
}
