/* rope.h — rotary position embedding: the frequencies of each rotated pair, with the YaRN
 * correction, computed once per model; cos/sin for a position computed in double.
 *
 * Angle of pair i at position p:  θ_i(p) = p · freq_i, and the rotated pair is multiplied by
 * mscale (1 without YaRN). Plain RoPE (docs/forward.md §3):
 *     freq_i = freq_scale · base^(−2i/n_rot)
 * YaRN (docs/moe.md §4), with ω_i = base^(−2i/n_rot), s = freq_scale:
 *     ramp_i = 1 − clamp((i − low) / max(0.001, high − low), 0, 1)
 *     freq_i = ω_i · (s · (1 − ramp_i) + ramp_i)          (ext_factor = 1)
 *     mscale = attn_factor · (1 + 0.1 · ln(1/s))
 * with low = floor(corr(beta_fast)), high = ceil(corr(beta_slow)),
 *     corr(β) = n_rot · ln(n_ctx_orig / (2π β)) / (2 ln base).
 */
#ifndef MF_ROPE_H
#define MF_ROPE_H

#include "model.h"

/* Fill freq[0 .. n_rot/2) for a given base; returns mscale. */
float mf_rope_freqs(const mf_hparams *hp, float base, float *freq);

/* cos and sin (times mscale) of every pair of layer l at position pos, computed in double
 * then rounded to float: the numbers every backend uses, so CPU and GPU agree exactly. */
void mf_rope_cos_sin(const mf_model *m, int layer, int pos, float *cos_out, float *sin_out);

/* Rotate one head vector u (n_rot first values; the rest untouched) in place. */
void mf_rope_apply(float *u, const float *cos_v, const float *sin_v, int n_rot, int neox);

#endif
