/* sampler.h — choosing the next token from logits.
 *
 * Pipeline, in llama.cpp's order: repetition penalty over the last `repeat_last_n` tokens
 * -> greedy if temp <= 0 -> top-k -> softmax with temperature -> top-p (nucleus) -> min-p ->
 * draw with a seeded xorshift RNG. The same seed and inputs give the same tokens.
 */
#ifndef MF_SAMPLER_H
#define MF_SAMPLER_H

#include <stdint.h>

typedef struct mf_sampler_params {
    float temp;           /* <= 0: greedy (argmax) */
    int top_k;            /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* tokens of history the penalty looks at */
    uint64_t seed;
} mf_sampler_params;

mf_sampler_params mf_sampler_defaults(void);

typedef struct mf_sampler mf_sampler;

mf_sampler *mf_sampler_new(const mf_sampler_params *p, int n_vocab);
void mf_sampler_free(mf_sampler *s);
/* 1 when the result is the plain argmax of the logits (no penalty, temp <= 0): the caller
 * may then skip copying logits from a GPU. */
int mf_sampler_is_greedy(const mf_sampler *s);
/* Pick a token. logits (n_vocab floats) are modified in place. history: the tokens so far.
 * Safe for any logits: -inf is a token that cannot be drawn; a NaN or +inf logit, or none
 * above -inf, gives -1 (no distribution to draw from: the caller reports broken logits).
 * Otherwise the result is an id in [0, n_vocab) whose logit is finite. */
int32_t mf_sampler_sample(mf_sampler *s, float *logits, const int32_t *history, int n_hist);

#endif
