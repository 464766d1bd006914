/* generate.h — one answer being generated: the token-level state machine between logits and
 * text (choosing the token, incremental UTF-8-safe text, end tokens, max_tokens, the
 * finish reason). It evaluates nothing: a driver (batch.h mf_batcher, one sequence or many)
 * gives it the logits after each evaluated token and evaluates the token it returns.
 *
 * The declarations are the library's generation contract (issue 14, shared with the server
 * of issue 15). STAND-IN: engine/gen_standin.c implements mf_gen with the sampler, end
 * tokens, max_tokens, the context, UTF-8-safe deltas and the harmony channels only, until
 * the library's generation loop (engine/generate.c: stop strings, logprobs, tool calls)
 * replaces it together with this header.
 */
#ifndef MF_GENERATE_H
#define MF_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "sampler.h"

/* A tool call of an answer (harmony). */
typedef struct mf_tool_call {
    char *id;        /* "call_..." (the library makes one for generated calls) */
    char *name;      /* function name */
    char *arguments; /* JSON text as generated (not re-serialized) */
} mf_tool_call;

enum mf_finish {
    MF_FINISH_NONE = 0,
    MF_FINISH_STOP,
    MF_FINISH_LENGTH,
    MF_FINISH_TOOL_CALLS,
    MF_FINISH_CONTEXT,
    MF_FINISH_CANCELLED,
    MF_FINISH_ERROR
};
/* "stop", "length", "tool_calls", "context", "cancelled", "error", "none" */
const char *mf_finish_name(int f);

enum mf_delta_kind { MF_DELTA_CONTENT, MF_DELTA_REASONING, MF_DELTA_TOOL_CALL };

typedef struct mf_token_logprob {
    int32_t id;
    float logprob;
    int n_top;
    const int32_t *top_id;
    const float *top_logprob;
} mf_token_logprob;

/* A piece of output, streamed as soon as it is safe: never a split UTF-8 character. */
typedef struct mf_delta {
    int kind; /* enum mf_delta_kind */
    const char *text;
    size_t len;            /* content / reasoning text, or tool arguments piece */
    int tool_index;        /* MF_DELTA_TOOL_CALL: 0, 1, ... in this answer */
    const char *tool_id;   /* set on the first delta of a call, else NULL */
    const char *tool_name; /* set on the first delta of a call, else NULL */
    int n_lp;
    const mf_token_logprob *lp; /* the tokens behind this text (when asked) */
} mf_delta;

/* Return non-zero to cancel the generation (client gone, Ctrl-C). */
typedef int (*mf_delta_fn)(void *user, const mf_delta *d);

typedef struct mf_gen_params {
    mf_sampler_params sampler;
    int max_tokens; /* < 0: until an end token or the context */
    const char *const *stop;
    int n_stop;
    int format; /* enum mf_chat_format: how to read the output (harmony: channels) */
    int logprobs, top_logprobs;
} mf_gen_params;

typedef struct mf_gen_result {
    int finish; /* enum mf_finish */
    int n_prompt;
    int n_cached; /* of the prompt's tokens, reused from the cache */
    int n_generated;
    char *content, *reasoning; /* whole texts (malloc'd, NUL-terminated, may be NULL) */
    mf_tool_call *calls;
    int n_calls;
    double t_prompt_s, t_gen_s;
    char error[256]; /* MF_FINISH_ERROR: the one-line reason */
} mf_gen_result;
/* Frees what a result owns (for results the caller owns). */
void mf_gen_result_free(mf_gen_result *r);

typedef struct mf_gen mf_gen;

/* A generation; NULL with err when the parameters ask for what it cannot do. */
mf_gen *mf_gen_new(const mf_model *m, const mf_gen_params *p, mf_delta_fn on_delta, void *user, mf_err *err);
void mf_gen_free(mf_gen *g);
/* Given the logits after the last evaluated token (n_vocab floats, finite; may be modified)
 * and the number of free context positions left, pick the next token, emit the text that
 * became safe, and return the token to evaluate next, or -1 when the answer is finished
 * (mf_gen_finish says why). history: the sequence's tokens so far (penalties). */
int32_t mf_gen_next(mf_gen *g, float *logits, const int32_t *history, int n_hist, int ctx_left);
/* 0 when the token is the plain argmax of the logits (greedy, no penalty): the caller may
 * then pass the argmax to mf_gen_next_token instead of copying logits from a GPU. */
int mf_gen_wants_logits(const mf_gen *g);
int32_t mf_gen_next_token(mf_gen *g, int32_t token, int ctx_left);
/* Flush held-back text and finalize; finish_if_none is the reason when none was set. The
 * result belongs to g. */
const mf_gen_result *mf_gen_finish(mf_gen *g, int finish_if_none);

#endif
