/* fuzz_sampler.c — libFuzzer entry point: the sampler (engine/sampler.c) on any parameters,
 * logits and history, NaN, infinities and denormals included.
 *
 * Input layout (little-endian; a short input is padded with zeros):
 *   byte 0          n_vocab - 1 (1..256 ids)
 *   bytes 1..28     temp, top_p, min_p, repeat_penalty (4 floats, any bits), top_k,
 *                   repeat_last_n (2 int32), seed (u32)
 *   then            n_vocab float logits, then the history as int32 ids (any values)
 * The contract checked (sampler.h): the result is -1 or an id in [0, n_vocab); -1 exactly
 * when, after the penalty, a logit is NaN or +inf or none is above -inf; otherwise the
 * chosen id's logit is finite, and with temp <= 0 it is the largest one. The same input
 * and seed give the same id (the run is repeated on a copy). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const uint8_t *d, size_t size, size_t at)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)(at + i < size ? d[at + i] : 0) << (8 * i);
    return v;
}

static float rdf(const uint8_t *d, size_t size, size_t at)
{
    uint32_t u = rd32(d, size, at);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int V = data[0] + 1;
    mf_sampler_params p = {.temp = rdf(data, size, 1),
                           .top_p = rdf(data, size, 5),
                           .min_p = rdf(data, size, 9),
                           .repeat_penalty = rdf(data, size, 13),
                           .top_k = (int32_t)rd32(data, size, 17),
                           .repeat_last_n = (int32_t)rd32(data, size, 21),
                           .seed = rd32(data, size, 25)};
    size_t at = 29;
    float *logits = malloc(sizeof(float) * (size_t)V), *copy = malloc(sizeof(float) * (size_t)V);
    size_t n_hist = size > at + 4 * (size_t)V ? (size - at - 4 * (size_t)V) / 4 : 0;
    if (n_hist > 4096) n_hist = 4096;
    int32_t *hist = malloc(sizeof(int32_t) * (n_hist ? n_hist : 1));
    mf_sampler *s = mf_sampler_new(&p, V), *s2 = mf_sampler_new(&p, V);
    if (!logits || !copy || !hist || !s || !s2) __builtin_trap();
    for (int i = 0; i < V; i++) logits[i] = rdf(data, size, at + 4 * (size_t)i);
    for (size_t i = 0; i < n_hist; i++) hist[i] = (int32_t)rd32(data, size, at + 4 * (size_t)V + 4 * i);
    memcpy(copy, logits, sizeof(float) * (size_t)V);

    int32_t id = mf_sampler_sample(s, logits, hist, (int)n_hist);
    /* logits now hold the penalized values the choice was made from */
    int bad = 0, any = 0;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        bad |= isnan(logits[i]) || logits[i] == INFINITY;
        any |= logits[i] > -INFINITY;
        if (logits[i] > mx) mx = logits[i];
    }
    if (id < -1 || id >= V) __builtin_trap();
    if ((id == -1) != (bad || !any)) __builtin_trap();
    if (id >= 0 && !isfinite(logits[id])) __builtin_trap();
    if (id >= 0 && !(p.temp > 0) && logits[id] != mx) __builtin_trap();
    if (mf_sampler_sample(s2, copy, hist, (int)n_hist) != id) __builtin_trap();

    mf_sampler_free(s);
    mf_sampler_free(s2);
    free(logits);
    free(copy);
    free(hist);
    return 0;
}
