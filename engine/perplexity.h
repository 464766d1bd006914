/* perplexity.h — how well a model predicts a text, and how far its predictions are from a
 * base model's (`minfer perplexity`; the math: docs/perplexity.md).
 *
 * The text is tokenized (a BOS first, as the vocabulary asks) and cut into chunks of n_ctx
 * tokens (the last, incomplete one is dropped); the first token of every chunk is replaced
 * by BOS (when the vocabulary has one and adds it), so each chunk starts like a document.
 * Each chunk is evaluated from an empty cache, and only its second half is scored: the
 * logits at positions j = n_ctx/2 .. n_ctx-2 predict tokens j+1, so every scored token
 * has at least n_ctx/2 tokens of context (the method of llama.cpp's perplexity tool, whose
 * numbers are then comparable).
 *
 * Per scored token, with log-softmax lq of the model's logits and t the actual next token:
 *   NLL = -lq[t];  perplexity = exp(mean NLL)
 *   its standard error: SE(mean NLL) = sqrt((mean(NLL²) - mean(NLL)²) / (N - 1)), through
 *   exp to first order: SE(ppl) = ppl · SE(mean NLL). (This treats tokens as independent,
 *   which neighbouring tokens are not: read it as a lower bound of the uncertainty.)
 * Against a base (log-probs lp saved by an earlier run on the same chunks):
 *   KL(P_base || Q) = Σ_i p_i (lp_i - lq_i), its mean ± standard error (same formula as
 *   NLL's), its 99th percentile (nearest rank: the ceil(0.99 N)-th smallest), top-1
 *   agreement (argmax of both equal; ± sqrt(f(1-f)/(N-1))), and the mean |Δp| of the base's
 *   top token, |q(top) - p(top)|.
 *
 * The base file (--save-logits) is GGUF: keys minfer.logits.{version = 1, model, n_ctx,
 * n_chunks, n_vocab, first}, a tensor "tokens" (I32 [n_ctx, n_chunks]: the chunks exactly
 * as evaluated) and per chunk k a tensor "logp.<k>" (F16 [n_vocab, n_ctx - 1 - first]: the
 * log-softmax of every scored position). F16 halves the size of float32; the KL computed
 * from it renormalizes the stored values (so the tiny rounding of each log-prob cannot add
 * a bias of its own) and differs from the exact KL by a relative 1e-4 or less on the tests'
 * models (tests/test_perplexity.c measures it).
 */
#ifndef MF_PERPLEXITY_H
#define MF_PERPLEXITY_H

#include <stdint.h>

#include "minfer.h"

typedef struct mf_ppl mf_ppl;

typedef struct mf_ppl_stats {
    int n_ctx, n_chunks, chunks_done;
    int64_t n; /* scored tokens so far */
    double nll, nll_se, ppl, ppl_se;
    /* against a base (has_base) */
    int has_base;
    double base_ppl; /* exp(mean base NLL) over the same tokens */
    double kld, kld_se, kld_p99, kld_max;
    double top1, top1_se; /* fraction, 0..1 */
    double dp_top;        /* mean |q(top) - p(top)| */
} mf_ppl_stats;

/* Called after each chunk with the statistics so far. */
typedef void (*mf_ppl_progress)(void *user, const mf_ppl_stats *st);

/* The chunks of a text for model m: *tokens (malloc'd, n_chunks * n_ctx ids). Fails when
 * the text has fewer than n_ctx tokens (the message gives the count). */
int mf_ppl_chunks(const mf_model *m, const char *text, size_t len, int n_ctx, int32_t **tokens, int *n_chunks,
                  mf_err *err);

/* A run over chunks of n_ctx tokens, on a session opened here with the options o (its
 * n_ctx is set to the chunk size). With base (a file written by --save-logits) the chunks
 * and n_ctx come from the file; tokens, if given too, must be the same (same text and
 * tokenizer), else an error says so. Without base, tokens and n_ctx are required. */
mf_ppl *mf_ppl_new(mf_model *m, const mf_session_opts *o, const int32_t *tokens, int n_chunks, int n_ctx,
                   const char *base, mf_err *err);
/* Evaluate every chunk; with save (a path) also write the log-probs file described above. */
int mf_ppl_run(mf_ppl *p, const char *save, mf_ppl_progress progress, void *user, mf_err *err);
void mf_ppl_result(const mf_ppl *p, mf_ppl_stats *st);
const mf_session *mf_ppl_session(const mf_ppl *p);
void mf_ppl_free(mf_ppl *p);

#endif
