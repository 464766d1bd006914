/* math.cuh — the scalar formulas of the CUDA kernels, host+device, so that the CPU-only
 * test (tests/test_cuda_host.c through host_twins.cu) checks exactly what the GPU runs:
 *
 *   RoPE rotation of one pair                   rope.h / mf_rope_apply (engine/rope.c)
 *   SiLU and the SwiGLU product                 docs/forward.md §2
 *   clamped SwiGLU of gpt-oss                   docs/moe.md §1
 *   the online-softmax state and its merge      flash attention, docs/cuda.md
 *   top-k order of router logits                docs/moe.md §1
 */
#ifndef MF_CUDA_MATH_CUH
#define MF_CUDA_MATH_CUH

#include "common.cuh"

/* ---------------------------------------------------------------- RoPE
 * (a, b) -> (a·c − b·s, a·s + b·c), with c, s = cos θ·mscale, sin θ·mscale from the table
 * the host computed with mf_rope_cos_sin(). Rounded product by product, as the C code in
 * mf_rope_apply (ISO C: no contraction), so GPU and CPU rotations are bit-identical. */
MF_HD void mf_rope_pair(float *a, float *b, float c, float s)
{
    float x = *a, y = *b;
    *a = mf_sub(mf_mul(x, c), mf_mul(y, s));
    *b = mf_add(mf_mul(x, s), mf_mul(y, c));
}

/* indices of rotated pair i within a head: adjacent (llama) or the two halves (NeoX) */
MF_HD void mf_rope_idx(int i, int n_rot, int neox, int *ia, int *ib)
{
    *ia = neox ? i : 2 * i;
    *ib = neox ? i + n_rot / 2 : 2 * i + 1;
}

/* ---------------------------------------------------------------- activations */

/* silu(g)·u, silu(z) = z / (1 + e^−z) */
MF_HD float mf_swiglu(float g, float u) { return g / (1.0f + expf(-g)) * u; }

/* gpt-oss: gc = min(g, L), uc = clamp(u, −L, L), gc·σ(α·gc)·(uc + 1) */
MF_HD float mf_swiglu_oai(float g, float u, float limit, float alpha)
{
    float gc = g < limit ? g : limit;
    float uc = u < -limit ? -limit : (u > limit ? limit : u);
    return gc / (1.0f + expf(-alpha * gc)) * (uc + 1.0f);
}

/* ---------------------------------------------------------------- online softmax
 *
 * Softmax-weighted sums over a sequence of scores seen in pieces (flash attention):
 * the state after scores s_1..s_n is
 *     m = max_t s_t,     l = Σ_t e^(s_t − m),     o = Σ_t e^(s_t − m) · v_t
 * and the final output is o / l. Adding a piece with maximum m' rescales the old sums by
 * e^(m − max(m, m')) — mf_sm_rescale gives that factor — and two states (from two blocks of
 * flash-decoding) merge the same way. −∞ means "nothing seen yet"; it must not produce
 * e^(−∞ − (−∞)) = NaN, hence the guard. */
MF_HD float mf_sm_rescale(float m_old, float m_new) { return m_old == -INFINITY ? 0.0f : expf(m_old - m_new); }

/* weight of one score s in a state whose running maximum is m (masked: s = −∞ → 0) */
MF_HD float mf_sm_weight(float s, float m) { return s == -INFINITY ? 0.0f : expf(s - m); }

/* Finish a state with an attention sink S (docs/moe.md §2): the sink joins the
 * maximum and the denominator only. Returns the factor that turns o into the output:
 * out = o · f, with f = e^(m − M) / (l·e^(m − M) + e^(S − M)), M = max(m, S).
 * Without a sink (has_sink = 0): f = 1 / l. */
MF_HD float mf_sm_finish(float m, float l, int has_sink, float S)
{
    if (!has_sink) return l > 0.0f ? 1.0f / l : 0.0f;
    float M = m > S ? m : S;
    float a = mf_sm_rescale(m, M);
    return a / (l * a + expf(S - M));
}

/* ---------------------------------------------------------------- top-k order
 * Router selection: larger logit first, equal logits by lower expert index (the CPU's
 * scan order). A NaN logit ranks below every number. e < 0 means "no candidate yet". */
MF_HD bool mf_topk_better(float va, int ea, float vb, int eb)
{
    if (eb < 0) return ea >= 0;
    if (ea < 0) return false;
    bool na = va != va, nb = vb != vb;
    if (na || nb) return na == nb ? ea < eb : nb;
    if (va != vb) return va > vb;
    return ea < eb;
}

#endif
