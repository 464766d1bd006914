/* generate.h — one answer generated from a prompt (docs/generate.md).
 *
 * Two layers:
 *   mf_gen       the token-level state machine of one answer: it picks each next token
 *                (sampler), turns tokens into text safely (never a split UTF-8 character),
 *                watches for the model's end tokens, max_tokens, the context's end and stop
 *                strings (text that could still begin one is held back; nothing past one is
 *                ever delivered), reads harmony output into content, reasoning and tool
 *                calls, and streams the text through a callback as deltas, with logprobs
 *                when asked. It never runs the model: its caller evaluates the tokens it
 *                returns, so one loop serves `minfer run`, `minfer chat` and a batcher that
 *                steps several sequences together.
 *   mf_generate  the single-sequence driver over a session: reuses the cached prefix of
 *                the prompt (mf_session_reusable), evaluates the rest, then asks mf_gen for
 *                token after token until the answer ends.
 *
 *     mf_gen_params p = mf_gen_defaults();
 *     p.max_tokens = 100;
 *     mf_gen_result r;
 *     if (mf_generate(s, ids, n, &p, on_delta, user, &r, &err) == 0) {
 *         ... r.content, r.finish ...
 *         mf_gen_result_free(&r);
 *     }
 */
#ifndef MF_GENERATE_H
#define MF_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "err.h"
#include "model.h"
#include "sampler.h"

typedef struct mf_session mf_session;

enum mf_finish {
    MF_FINISH_NONE = 0, /* still generating */
    MF_FINISH_STOP,     /* an end token of the model, or a stop string */
    MF_FINISH_LENGTH,   /* max_tokens */
    MF_FINISH_TOOL_CALLS,
    MF_FINISH_CONTEXT, /* the context is full */
    MF_FINISH_CANCELLED,
    MF_FINISH_ERROR
};
/* "stop", "length", "tool_calls", "context", "cancelled", "error"; "none" otherwise. */
const char *mf_finish_name(int f);

enum mf_delta_kind { MF_DELTA_CONTENT, MF_DELTA_REASONING, MF_DELTA_TOOL_CALL };

#define MF_TOP_LOGPROBS_MAX 20 /* top_logprobs at most (OpenAI's limit) */

/* A generated token's log-probability under the model (log-softmax of its logits, before
 * penalties and temperature) and the most likely alternatives, best first. */
typedef struct mf_token_logprob {
    int32_t id;
    float logprob;
    int n_top;
    const int32_t *top_id;
    const float *top_logprob;
} mf_token_logprob;

/* A piece of output, delivered as soon as it is safe: never a split UTF-8 character, never
 * text that could still be the start of a stop string, never text past a stop string. The
 * pointers are valid during the callback only. */
typedef struct mf_delta {
    int kind;         /* enum mf_delta_kind */
    const char *text; /* content / reasoning text, or a piece of a call's arguments */
    size_t len;
    int tool_index;        /* MF_DELTA_TOOL_CALL: 0, 1, ... in this answer */
    const char *tool_id;   /* the first delta of a call (len 0, when the call starts), else NULL */
    const char *tool_name; /* likewise */
    int n_lp;              /* logprobs: the generated tokens this delta reports, in order */
    const mf_token_logprob *lp;
} mf_delta;

/* Return non-zero to cancel the generation (client gone, Ctrl-C). */
typedef int (*mf_delta_fn)(void *user, const mf_delta *d);

typedef struct mf_gen_params {
    mf_sampler_params sampler;
    int max_tokens;          /* < 0: until an end token or the context */
    const char *const *stop; /* stop strings: any number, each non-empty and at most as many
                                tokens as the context */
    int n_stop;
    int format;       /* enum mf_chat_format: how to read the output (harmony: channels and calls) */
    int logprobs;     /* 1: each generated token's logprob in the deltas */
    int top_logprobs; /* with logprobs: 0 .. MF_TOP_LOGPROBS_MAX alternatives per token */
} mf_gen_params;

/* The sampler's defaults, no token limit, no stop strings, plain text, no logprobs. */
mf_gen_params mf_gen_defaults(void);

typedef struct mf_gen_result {
    int finish;      /* enum mf_finish */
    int stop_index;  /* MF_FINISH_STOP: the stop string that ended the answer, -1 for an
                        end token */
    int n_prompt;    /* tokens of the prompt */
    int n_cached;    /* of which were reused from the cache (not evaluated) */
    int n_generated; /* tokens chosen (an end token included) */
    int n_decode;    /* single-token evaluations of generated tokens */
    char *content;   /* the answer's text as delivered (malloc'd, NUL-terminated; "" if none) */
    char *reasoning; /* harmony analysis text, NULL if none */
    mf_tool_call *calls;
    int n_calls;
    double t_prompt_s, t_gen_s; /* prompt evaluation; the decode steps */
    char error[1024];           /* MF_FINISH_ERROR: the one-line reason */
} mf_gen_result;
void mf_gen_result_free(mf_gen_result *r);

/* Checks p against the model and a context of n_ctx positions (n_ctx <= 0: no context
 * check): stop strings (none empty; none needing more tokens than the context), the logprob
 * counts, the format (harmony needs a harmony vocabulary). -1 with err naming the problem. */
int mf_gen_check(const mf_model *m, const mf_gen_params *p, int n_ctx, mf_err *err);

typedef struct mf_gen mf_gen;

/* One answer about to be generated (mf_gen_check's checks without the context, then the
 * sampler and buffers). on_delta may be NULL (the result alone). NULL with err. */
mf_gen *mf_gen_new(const mf_model *m, const mf_gen_params *p, mf_delta_fn on_delta, void *user, mf_err *err);
void mf_gen_free(mf_gen *g);

/* Given the logits after the last evaluated token (n_vocab floats; modified) and the free
 * context positions left, pick the next token, deliver what text became safe, and return
 * the token to evaluate next, or -1 when the answer is finished (mf_gen_status says why).
 * history: the sequence's tokens so far (the repetition penalty). A chosen token that
 * finds no free position (ctx_left <= 0) is part of the answer, then the answer ends
 * (MF_FINISH_CONTEXT). Logits the sampler cannot draw from (NaN, +inf, all -inf) end it
 * with MF_FINISH_ERROR. */
int32_t mf_gen_next(mf_gen *g, float *logits, const int32_t *history, int n_hist, int ctx_left);
/* 1 when mf_gen_next needs the logits: sampling, a penalty, or logprobs. 0: greedy, and
 * the caller may pass the argmax to mf_gen_next_token instead (a GPU's argmax, no copy). */
int mf_gen_wants_logits(const mf_gen *g);
int32_t mf_gen_next_token(mf_gen *g, int32_t token, int ctx_left);
/* The answer so far: finish is MF_FINISH_NONE while it goes on. Valid until mf_gen_free. */
const mf_gen_result *mf_gen_status(const mf_gen *g);
/* The driver's bookkeeping, reported in the result: the prompt's length, how many of its
 * tokens the cache held, the seconds its evaluation took; the seconds of one decode step
 * (a generated token evaluated). */
void mf_gen_count_prompt(mf_gen *g, int n_prompt, int n_cached, double seconds);
void mf_gen_count_decode(mf_gen *g, double seconds);
/* End the answer with an error (a device error, non-finite logits): held-back text is
 * delivered first. No effect on a finished answer. */
void mf_gen_fail(mf_gen *g, const char *msg);
/* Finalize: an answer still going on ends with finish_if_none (held-back text delivered,
 * except for MF_FINISH_CANCELLED, which delivers nothing more). Returns the result, owned
 * by g (valid until mf_gen_free). */
const mf_gen_result *mf_gen_finish(mf_gen *g, int finish_if_none);

/* One answer on a session: prefix reuse against the tokens the cache holds (the longest
 * common prefix the sliding-window rings allow; the whole prompt when the session's logits
 * are still those of its last token), evaluation of the rest of the prompt, then token
 * after token until the answer ends. Returns 0 with *out filled (the caller frees it with
 * mf_gen_result_free; an error after the prompt, e.g. non-finite logits, is
 * out->finish == MF_FINISH_ERROR with out->error), or -1 with err and nothing generated
 * (an empty prompt, one longer than the context, bad parameters, a failed prompt
 * evaluation). Afterwards the cache holds the prompt and every generated token that was
 * evaluated (all but the last). */
int mf_generate(mf_session *s, const int32_t *prompt, int n, const mf_gen_params *p, mf_delta_fn on_delta, void *user,
                mf_gen_result *out, mf_err *err);

#endif
