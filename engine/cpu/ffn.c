/* ffn.c — the dense SwiGLU feed-forward block of llama on the CPU, beside moe.c (the experts
 * of gpt-oss):
 *
 *   x += W_down · (silu(W_gate·h) ⊙ (W_up·h)),   silu(z) = z · σ(z)
 *
 * The gate and up products share their input and run as one group (matmul.c); the gated
 * activation runs on the pool in chunks of 4096 values; the down product adds into x (the
 * residual connection).
 */
#include "cpu.h"

#include <math.h>

static float silu(float z) { return z / (1.0f + expf(-z)); }

/* g[i] = silu(g[i]) · u[i], on the pool: cheap, but not free for a 512-row prompt */
typedef struct swiglu_job { float *g; const float *u; int64_t n; } swiglu_job;

static void swiglu_task(void *ctx, int task, int thread)
{
    (void)thread;
    swiglu_job *j = ctx;
    int64_t i0 = (int64_t)task * 4096, i1 = i0 + 4096;
    if (i1 > j->n) i1 = j->n;
    for (int64_t i = i0; i < i1; i++) j->g[i] = silu(j->g[i]) * j->u[i];
}

void mf_cpu_ffn(mf_backend *be, mf_bstate *st, const mf_weight *const W[3], const float *h, float *x)
{
    cpu_backend *cb = be->impl;
    int n = st->n;
    int64_t F = W[0]->ne[1];
    /* x += W_down · (silu(W_gate·h) ⊙ (W_up·h))   (docs/forward.md §2) */
    const mf_weight *b[2] = {NULL, NULL};
    float *out[2] = {st->ff_g, st->ff_u};
    mf_cpu_matmul_group(be, st, 2, W, b, out, h, n);
    swiglu_job j = {st->ff_g, st->ff_u, (int64_t)n * F};
    mf_pool_run(cb->pool, swiglu_task, &j, (int)((j.n + 4095) / 4096));
    mf_cpu_matmul_op(be, st, W[2], NULL, st->ff_g, x, n, 1);
}
