/* ffn.c — the dense SwiGLU feed-forward block of llama on the CPU, beside moe.c (the experts
 * of gpt-oss):
 *
 *   x += W_down · (silu(W_gate·h) ⊙ (W_up·h)),   silu(z) = z · σ(z)
 *
 * The gate and up products and the gated activation run in one parallel region
 * (mf_cpu_gated, matmul.c: each chunk of rows applies the activation to its own results, so
 * the FFN's middle needs no region of its own); the down product adds into x (the residual
 * connection).
 */
#include "cpu.h"
#include "vecf.h"

/* y = silu(g) · u, silu(g) = g / (1 + e^-g), with vecf.h's exp (the vector form and the
 * scalar tail give the same bits) */
static void swiglu(float *y, const float *g, const float *u, int64_t n, const void *params)
{
    (void)params;
    int64_t i = 0;
#ifdef MF_VECF
    for (; i + AW <= n; i += AW) {
        av gv = av_load(g + i);
        av s = av_div(gv, av_add(av_set1(1.0f), av_expf(av_sub(av_zero(), gv))));
        av_store(y + i, av_mul(s, av_load(u + i)));
    }
#endif
    for (; i < n; i++) y[i] = g[i] / (1.0f + mf_expf(-g[i])) * u[i];
}

void mf_cpu_ffn(mf_backend *be, mf_bstate *st, const mf_weight *const W[3], const float *h, float *x)
{
    int n = st->n;
    /* x += W_down · (silu(W_gate·h) ⊙ (W_up·h))   (docs/forward.md §2) */
    mf_cpu_gated(be, st, W[0], NULL, W[1], NULL, 0, h, n, st->ff_g, st->ff_u, swiglu, NULL);
    mf_cpu_matmul_op(be, st, W[2], NULL, st->ff_g, x, n, 1);
}
