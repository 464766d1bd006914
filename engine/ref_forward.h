/* ref_forward.h — the plain forward pass: scalar C, one token at a time, float32 KV cache.
 *
 * The teaching path (read it beside docs/forward.md: every step is a loop you can map to a
 * formula) and the ground truth of the tests: the fast CPU path and the CUDA path are
 * compared with it. It uses only the scalar reference of quant.c (mf_dot_ref,
 * mf_dequantize_row), never the optimized kernels.
 */
#ifndef MF_REF_FORWARD_H
#define MF_REF_FORWARD_H

#include "backend.h"
#include "model.h"

typedef struct mf_ref mf_ref;

mf_ref *mf_ref_new(const mf_model *m, int n_ctx, mf_err *err);
void mf_ref_free(mf_ref *r);
/* Off by default (exact float activations). On: before every product with a quantized
 * matrix the input vector is rounded to the 8-bit blocks the fast path uses (quant.h
 * mf_quantize_act / mf_act_dequantize), the way llama.cpp computes. The fast CPU path then
 * differs from the reference only by the order of float additions, which makes its tests
 * tight; the default mode measures the cost of that rounding. */
void mf_ref_round_activations(mf_ref *r, int on);
/* Call fn with the exact input of every matrix product (one row), as the CPU backend's
 * observe does for the fast path (backend.h); fn NULL stops. */
void mf_ref_observe(mf_ref *r, mf_matmul_observer fn, void *user);

/* Run token `token` at position `pos` (positions must be fed in order 0, 1, 2, ...) and
 * write the n_vocab logits. If `hidden` is non-NULL it receives the residual stream after
 * each layer: hidden[l * n_embd ...] for l < n_layers. */
int mf_ref_forward(mf_ref *r, int32_t token, int pos, float *logits, float *hidden, mf_err *err);

#endif
