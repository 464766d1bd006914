/* rope.c — rotary position embedding frequencies (plain and YaRN) and the rotation itself.
 * Formulas: rope.h, docs/forward.md §3, docs/moe.md §4 */
#include "rope.h"

#include <math.h>

/* YaRN correction dimension: the pair index whose wavelength spans n_ctx_orig / β turns
 * (docs/moe.md §4: corr(β) = n_rot · ln(n_ctx_orig / (2π β)) / (2 ln base)). */
static double yarn_corr(double n_rot, double n_ctx_orig, double beta, double base)
{
    return n_rot * log(n_ctx_orig / (beta * 2.0 * M_PI)) / (2.0 * log(base));
}

float mf_rope_freqs(const mf_hparams *hp, float base, float *freq)
{
    int half = hp->n_rot / 2;
    double s = hp->rope_freq_scale;
    if (!hp->rope_yarn) {
        for (int i = 0; i < half; i++) freq[i] = (float)(s * pow(base, -2.0 * i / hp->n_rot));
        return 1.0f;
    }
    /* llama.cpp rounds the ramp ends (floor/ceil); the OpenAI reference does not. We follow
     * llama.cpp so that files behave as they do there (docs/moe.md §4). */
    double low = floor(yarn_corr(hp->n_rot, hp->n_ctx_orig, hp->yarn_beta_fast, base));
    double high = ceil(yarn_corr(hp->n_rot, hp->n_ctx_orig, hp->yarn_beta_slow, base));
    if (low < 0) low = 0;
    if (high > hp->n_rot - 1) high = hp->n_rot - 1;
    for (int i = 0; i < half; i++) {
        double omega = pow(base, -2.0 * i / hp->n_rot);
        double y = (i - low) / fmax(0.001, high - low);
        double ramp = 1.0 - fmin(1.0, fmax(0.0, y));
        /* θ = θ_interp·(1 − ramp) + θ_extrap·ramp with θ_interp = s·θ_extrap */
        freq[i] = (float)(omega * (s * (1.0 - ramp) + ramp));
    }
    return (float)(hp->yarn_attn_factor * (1.0 + 0.1 * log(1.0 / s)));
}

void mf_rope_cos_sin(const mf_model *m, int layer, int pos, float *cos_out, float *sin_out)
{
    const float *f = m->rope_freq[layer];
    double ms = m->rope_mscale;
    for (int i = 0; i < m->hp.n_rot / 2; i++) {
        double th = (double)pos * (double)f[i];
        cos_out[i] = (float)(cos(th) * ms);
        sin_out[i] = (float)(sin(th) * ms);
    }
}

void mf_rope_apply(float *u, const float *c, const float *s, int n_rot, int neox)
{
    int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        /* pair (a, b): adjacent values for llama, the two halves for NeoX (gpt-oss) */
        int ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
        float a = u[ia], b = u[ib];
        u[ia] = a * c[i] - b * s[i];
        u[ib] = a * s[i] + b * c[i];
    }
}
