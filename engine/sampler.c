/* sampler.c — from logits to the next token (contract: sampler.h).
 *
 * Order of the steps (llama.cpp's default chain):
 *   1. repetition penalty: for each distinct token among the last repeat_last_n, its logit
 *      is divided by the penalty when positive, multiplied when negative (CTRL, Keskar 2019)
 *   2. temp <= 0: argmax
 *   3. top-k: keep the k largest logits
 *   4. temperature: p_i = softmax(l_i / T)
 *   5. top-p: keep the smallest prefix (by descending p) whose mass reaches top_p
 *   6. min-p: drop tokens with p_i < min_p · p_max
 *   7. renormalize and draw with a seeded xorshift64* generator
 * Candidates are kept sorted by logit so that 3, 5 and 6 are prefix cuts.
 *
 * Any input is safe: a logit of -inf is a token that cannot be drawn (probability 0) and is
 * never a candidate, so every step above works on finite numbers and keeps at least one
 * candidate (the largest); a NaN or +inf logit, or no logit above -inf, leaves no
 * distribution to draw from and gives -1 (the caller reports broken logits).
 */
#include "sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mf_sampler {
    mf_sampler_params p;
    int n_vocab;
    uint64_t rng;
    int32_t *idx; /* candidate ids */
    float *prob;
    uint8_t *seen; /* penalty bookkeeping, one flag per id */
};

mf_sampler_params mf_sampler_defaults(void)
{
    mf_sampler_params p = {.temp = 0.8f,
                           .top_k = 40,
                           .top_p = 0.95f,
                           .min_p = 0.05f,
                           .repeat_penalty = 1.0f,
                           .repeat_last_n = 64,
                           .seed = 0};
    return p;
}

mf_sampler *mf_sampler_new(const mf_sampler_params *p, int n_vocab)
{
    mf_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    s->n_vocab = n_vocab > 0 ? n_vocab : 1;
    /* seed 0 would leave xorshift stuck at zero: mix the seed through splitmix64 first */
    uint64_t z = p->seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    s->rng = (z ^ (z >> 31)) | 1;
    s->idx = malloc(sizeof(int32_t) * (size_t)s->n_vocab);
    s->prob = malloc(sizeof(float) * (size_t)s->n_vocab);
    s->seen = calloc((size_t)s->n_vocab, 1);
    if (!s->idx || !s->prob || !s->seen) {
        mf_sampler_free(s);
        return NULL;
    }
    return s;
}

void mf_sampler_free(mf_sampler *s)
{
    if (!s) return;
    free(s->idx);
    free(s->prob);
    free(s->seen);
    free(s);
}

int mf_sampler_is_greedy(const mf_sampler *s) { return s->p.temp <= 0.0f && s->p.repeat_penalty == 1.0f; }

static double next_uniform(mf_sampler *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* first index of the largest of the n logits; the caller made sure one is above -inf */
static int argmax(const float *l, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

/* Hoare quickselect: the value that would be at index k of a[0..n) sorted descending
 * (a is permuted) */
static float kth_largest(float *a, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = a[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] > pivot) i++;
            while (a[j] < pivot) j--;
            if (i <= j) {
                float t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return a[k];
}

/* sort candidate ids by descending logit (ties: lower id first, for determinism) */
static int by_logit(const void *a, const void *b, void *ctx)
{
    const float *l = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (l[x] != l[y]) return l[x] > l[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

int32_t mf_sampler_sample(mf_sampler *s, float *logits, const int32_t *history, int n_hist)
{
    int V = s->n_vocab;
    const mf_sampler_params *p = &s->p;

    /* a penalty that is not a positive number, or a window of no tokens, is off (the driver
     * validates its options; the library takes any) */
    if (p->repeat_penalty != 1.0f && p->repeat_penalty > 0 && isfinite(p->repeat_penalty) && p->repeat_last_n > 0 &&
        n_hist > 0) {
        int from = n_hist > p->repeat_last_n ? n_hist - p->repeat_last_n : 0;
        for (int i = from; i < n_hist; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= V || s->seen[t]) continue;
            s->seen[t] = 1;
            logits[t] = logits[t] > 0 ? logits[t] / p->repeat_penalty : logits[t] * p->repeat_penalty;
        }
        for (int i = from; i < n_hist; i++)
            if (history[i] >= 0 && history[i] < V) s->seen[history[i]] = 0;
    }
    /* the candidates: every id whose logit is a finite number */
    int n = 0;
    for (int i = 0; i < V; i++) {
        float l = logits[i];
        if (isnan(l) || l == INFINITY) return -1;
        if (l != -INFINITY) s->idx[n++] = i;
    }
    if (n == 0) return -1;
    if (!(p->temp > 0.0f)) return argmax(logits, V);

    if (p->top_k > 0 && p->top_k < n) {
        /* a full sort of 200k ids per token would dominate small models: select first */
        for (int i = 0; i < n; i++) s->prob[i] = logits[s->idx[i]];
        float kth = kth_largest(s->prob, n, p->top_k - 1);
        int k = 0;
        for (int i = 0; i < n; i++)
            if (logits[s->idx[i]] >= kth) s->idx[k++] = s->idx[i];
        n = k;
    }
    qsort_r(s->idx, (size_t)n, sizeof(int32_t), by_logit, logits);
    if (p->top_k > 0 && n > p->top_k) n = p->top_k;

    /* softmax with temperature over the candidates (sorted, so idx[0] holds the max). In
     * double, l - max cannot overflow, so each term is exp of a number <= 0 (or -inf for a
     * tiny temperature): the first is 1, none is NaN, and z >= 1. An infinite temperature
     * is the uniform limit. */
    double z = 0.0, mx = logits[s->idx[0]], T = isinf(p->temp) ? DBL_MAX : p->temp;
    for (int i = 0; i < n; i++) {
        s->prob[i] = (float)exp(((double)logits[s->idx[i]] - mx) / T);
        z += s->prob[i];
    }
    for (int i = 0; i < n; i++) s->prob[i] = (float)(s->prob[i] / z);

    if (p->top_p < 1.0f) {
        double cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i];
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p->min_p > 0.0f) {
        float cut = p->min_p * s->prob[0];
        int keep = 1;
        while (keep < n && s->prob[keep] >= cut) keep++;
        n = keep;
    }

    double mass = 0.0;
    for (int i = 0; i < n; i++) mass += s->prob[i];
    double u = next_uniform(s) * mass, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += s->prob[i];
        if (u < acc) return s->idx[i];
    }
    return s->idx[n - 1];
}
