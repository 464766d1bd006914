/* minfer.h — the public interface of the minfer library.
 *
 * Load a model, open a session on a device, evaluate tokens, sample, free:
 *
 *     mf_err err;
 *     mf_model *m = mf_model_load("model.gguf", &err);           // mmap + validate
 *     mf_session_opts o = mf_session_defaults();
 *     mf_session *s = mf_session_new(m, &o, &err);               // KV cache, device
 *     int32_t ids[512];
 *     int64_t n = mf_tokenize(m->tok, text, strlen(text), 1, 0, ids, 512, &err);
 *     mf_session_eval(s, ids, (int)n, NULL, &err);               // prompt, in batches
 *     int32_t next = mf_session_argmax(s);                       // or mf_sampler_sample
 *     ...
 *     mf_session_free(s); mf_model_free(m);
 *
 * Rules (engine-wide): the library never prints and never exits; every fallible call
 * returns NULL / a negative value and leaves one line in mf_err. Memory is owned by
 * whoever allocated it; the weights stay in the file mapping (CPU) or in one device copy.
 */
#ifndef MINFER_H
#define MINFER_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "chat.h"
#include "err.h"
#include "generate.h"
#include "gguf.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"
#include "types.h"

#define MF_VERSION "0.1.0"

typedef struct mf_session_opts {
    const char *device;      /* "auto" (default: cuda when a GPU is present), "cpu", "cuda" */
    int n_threads;           /* CPU threads, <= 0: one per core */
    int n_ctx;               /* KV cache positions (of each sequence); <= 0: the model's
                                training context, capped at 4096 */
    int max_batch;           /* tokens (rows) per forward step (512) */
    int n_seq;               /* sequences, each with its own KV cache and position, that
                                steps may evaluate together (<= 0: 1; mf_session_step) */
    int kv_f16;              /* 1: binary16 KV cache, 0: float32, -1 (default): the
                                default of model.h (binary16) */
    int no_graph;            /* 1: no CUDA graph capture */
    int no_pack;             /* 1: the CPU keeps no packed copy of the weights (half the
                                memory, slower; docs/cpu.md §3) */
    mf_progress_fn progress; /* when set, the backend reports how it makes the weights
                                usable (backend.h prepare): the CPU reads the model file into
                                memory in order, reporting each 64 MiB (otherwise the first
                                forward pass faults the pages in as it goes); a GPU reports
                                its upload */
    void *progress_user;
} mf_session_opts;

mf_session_opts mf_session_defaults(void);

typedef struct mf_session mf_session;

/* Called after each layer (and once before the first, layer = -1) with the hidden state of
 * every row of the step, copied to the host. For `minfer check`. While a hook is set, every
 * step runs its operations as issued (no CUDA graph is captured or replayed), so the hook
 * sees every layer of every step; a failed copy fails the step. */
typedef void (*mf_layer_hook)(void *user, int layer, const float *x, int rows, int width);

mf_session *mf_session_new(mf_model *m, const mf_session_opts *o, mf_err *err);
void mf_session_free(mf_session *s);

/* Evaluate n tokens at the current position (batches of max_batch). Afterwards the logits of
 * the last token are available. all_logits, if non-NULL, receives n * n_vocab floats (the
 * logits of every position, row-major). Fails if the context would overflow (the message
 * gives both lengths). */
int mf_session_eval(mf_session *s, const int32_t *tokens, int n, float *all_logits, mf_err *err);
/* Logits of the last evaluated token: the session's host copy (n_vocab floats, valid until
 * the next eval), which the caller may modify (the sampler penalizes in place). */
float *mf_session_logits(mf_session *s, mf_err *err);
/* Argmax of the last logits, computed where they live (no copy from a GPU); -1 when one
 * of them is not finite (NaN, ±inf), which mf_session_explain_nonfinite then explains. */
int32_t mf_session_argmax(mf_session *s);
/* After logits that are not finite: say where they came from. Evaluates again the n tokens
 * of the last mf_session_eval (they end at the current position) with a layer hook that
 * finds the first stage whose output holds a NaN or an infinity — the token embeddings, a
 * layer, or the output norm and matrix — and writes one line into err naming it (layer,
 * position, element, value). The cache entries of those positions are rewritten with the
 * same values. Always returns -1: it is the error path, paid only when the logits are bad;
 * the per-step cost of the check itself is one scan of the logits (or the argmax's). */
int mf_session_explain_nonfinite(mf_session *s, const int32_t *tokens, int n, mf_err *err);
int mf_session_pos(const mf_session *s);
/* 1 when the session's KV cache is binary16, 0 for float32 (the default resolved). */
int mf_session_kv_f16(const mf_session *s);
int mf_session_n_ctx(const mf_session *s);
const mf_model *mf_session_model(const mf_session *s);
void mf_session_reset(mf_session *s);
/* Prefix reuse (docs/generate.md §5). The ids of the tokens the cache holds, in order:
 * mf_session_pos(s) of them, valid until the session changes. */
const int32_t *mf_session_tokens(const mf_session *s);
/* How many leading tokens of toks[0..n) the cache can keep: their common prefix with
 * mf_session_tokens — or 0 when a sliding-window layer's ring no longer holds the keys that
 * evaluating from the end of that prefix would need (the caller then evaluates from the
 * start). */
int mf_session_reusable(const mf_session *s, const int32_t *toks, int n);
/* Keep the first n tokens of the cache (0 <= n <= pos): the next eval continues at position
 * n. -1 with err for an n out of range or one mf_session_reusable would not give. */
int mf_session_truncate(mf_session *s, int n, mf_err *err);
/* 1 when the logits of the cache's last token are available (an eval ended there; not
 * after a truncation, a reset, or a step of other sequences). */
int mf_session_has_logits(const mf_session *s);
const mf_backend *mf_session_backend(const mf_session *s);
/* A one-line note about the device choice (e.g. "no CUDA device (...); using the CPU"),
 * NULL when there is nothing to say. */
const char *mf_session_note(const mf_session *s);
void mf_session_set_hook(mf_session *s, mf_layer_hook hook, void *user);
/* Call fn with the float input of every matrix product of the following evaluations
 * (backend.h observe; fn NULL stops). -1 with a message on a backend without it (CUDA). */
int mf_session_observe(mf_session *s, mf_matmul_observer fn, void *user, mf_err *err);

/* ---- several sequences in one session (mf_session_opts.n_seq; docs/batching.md) ----
 * Each sequence has its own KV cache (n_ctx positions) and position; one step evaluates
 * tokens of several of them together — the decode token of some, a prompt chunk of others —
 * reading each weight once for all rows. The functions above work on sequence 0
 * (mf_session_reset: on all of them). */

/* The next tokens of one sequence, at its current position on. */
typedef struct mf_seq_chunk {
    int seq;               /* 0 .. n_seq − 1; each sequence at most once per step */
    const int32_t *tokens; /* n >= 1 of them */
    int n;
    int logits; /* 1: compute the logits of the last one (mf_session_seq_logits/argmax) */
} mf_seq_chunk;

/* One forward step over the chunks (at most max_batch tokens in all). Errors (nothing is
 * evaluated): a sequence out of range or given twice, a token outside the vocabulary, a
 * chunk that overflows its sequence's context (both lengths in the message), too many
 * tokens for one step. Afterwards the logits of the chunks that asked for them are
 * available until the next step (or eval). */
int mf_session_step(mf_session *s, const mf_seq_chunk *chunks, int n_chunks, mf_err *err);
/* The logits of sequence seq's last token of the last step (it asked for them): the
 * session's host copy, valid until the next call of this function or the next step; NULL
 * with err when it has none. */
float *mf_session_seq_logits(mf_session *s, int seq, mf_err *err);
/* The argmax of them, computed where they live; -1 when one is not finite, -2 when the
 * sequence has no logits from the last step. */
int32_t mf_session_seq_argmax(mf_session *s, int seq);
int mf_session_n_seq(const mf_session *s);
int mf_session_max_batch(const mf_session *s);
/* The tokens sequence seq's cache holds (mf_session_seq_pos of them), valid until its next
 * step, keep or reset. */
const int32_t *mf_session_seq_tokens(const mf_session *s, int seq);
int mf_session_seq_pos(const mf_session *s, int seq);
/* mf_session_reusable and mf_session_truncate for sequence seq. */
int mf_session_seq_reusable(const mf_session *s, int seq, const int32_t *toks, int n);
int mf_session_seq_truncate(mf_session *s, int seq, int n, mf_err *err);
/* mf_session_explain_nonfinite for sequence seq: its last n tokens are evaluated again,
 * alone. Always -1. */
int mf_session_seq_explain_nonfinite(mf_session *s, int seq, int n, mf_err *err);

/* Peak resident memory of this process in bytes (for the driver's statistics). */
uint64_t mf_peak_rss(void);

/* several generations decoded together over a session of several sequences */
#include "batch.h"

#endif
