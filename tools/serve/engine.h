/* engine.h — the server's only door to the model: the library's conversation and generation
 * API (conversations rendered to a prompt, one generation streamed through a callback,
 * several generations driven by a single-threaded batcher), as agreed for issue 14.
 *
 * STAND-IN. Issue 14 puts this API in the library (engine/chat.h, generate.h, batch.h).
 * Until it lands, this header declares its types and engine.c implements its functions
 * with what the library has today (sessions, the sampler, the one-turn chat renderer, the
 * harmony channel parser): a real generator, but one sequence at a time, no prefix reuse,
 * no stop strings, no tool-call parsing, no logprobs, conversations of one user turn.
 * Requests that need more are refused with a one-line reason that names issue 14. When the
 * library has the API, the block of types below goes (the library's headers replace it),
 * engine.c goes, and srv_chat_opts_set_tools sets mf_chat_opts.tools_json. Nothing else in
 * tools/serve/ depends on the stand-in.
 *
 * Threads: mf_batcher_* are single-threaded (the server's engine thread calls them);
 * mf_chat_render_conv and the tokenizer may be called from any thread.
 */
#ifndef SRV_ENGINE_H
#define SRV_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "minfer.h"

/* ---------------------------------------------------------------- the API's types
 * (stand-in: these move to engine/chat.h, generate.h and batch.h with issue 14) */

enum mf_role { MF_ROLE_SYSTEM, MF_ROLE_DEVELOPER, MF_ROLE_USER, MF_ROLE_ASSISTANT, MF_ROLE_TOOL };

typedef struct mf_tool_call {
    char *id;        /* "call_..." */
    char *name;      /* function name */
    char *arguments; /* JSON text as generated (not re-serialized) */
} mf_tool_call;

typedef struct mf_chat_msg {
    int role;                       /* enum mf_role */
    const char *content;            /* may be NULL (assistant with only tool calls) */
    const char *reasoning;          /* assistant: analysis text (harmony), may be NULL */
    const mf_tool_call *tool_calls; /* assistant */
    int n_tool_calls;
    const char *tool_call_id; /* tool: the call this message answers */
    const char *name;         /* tool: function name; NULL: found from tool_call_id */
} mf_chat_msg;

enum mf_finish {
    MF_FINISH_NONE = 0,
    MF_FINISH_STOP,
    MF_FINISH_LENGTH,
    MF_FINISH_TOOL_CALLS,
    MF_FINISH_CONTEXT,
    MF_FINISH_CANCELLED,
    MF_FINISH_ERROR
};
const char *mf_finish_name(int f);

enum mf_delta_kind { MF_DELTA_CONTENT, MF_DELTA_REASONING, MF_DELTA_TOOL_CALL };

typedef struct mf_token_logprob {
    int32_t id;
    float logprob;
    int n_top;
    const int32_t *top_id;
    const float *top_logprob;
} mf_token_logprob;

/* A piece of output, streamed as soon as it is safe (never a split UTF-8 character, never
 * text that could still begin a stop string, never text past one). */
typedef struct mf_delta {
    int kind; /* enum mf_delta_kind */
    const char *text;
    size_t len;            /* content / reasoning text, or a piece of arguments */
    int tool_index;        /* MF_DELTA_TOOL_CALL: 0, 1, ... in this answer */
    const char *tool_id;   /* first delta of a call, else NULL */
    const char *tool_name; /* first delta of a call, else NULL */
    int n_lp;
    const mf_token_logprob *lp; /* the tokens behind this text (when asked) */
} mf_delta;

/* Return non-zero to cancel the generation. */
typedef int (*mf_delta_fn)(void *user, const mf_delta *d);

typedef struct mf_gen_params {
    mf_sampler_params sampler;
    int max_tokens; /* < 0: until an end token or the context */
    const char *const *stop;
    int n_stop;
    int format; /* enum mf_chat_format: how to read the output */
    int logprobs, top_logprobs;
} mf_gen_params;

typedef struct mf_gen_result {
    int finish; /* enum mf_finish */
    int n_prompt, n_cached, n_generated;
    char *content, *reasoning; /* whole texts (malloc'd, NUL-terminated, may be NULL) */
    mf_tool_call *calls;
    int n_calls;
    double t_prompt_s, t_gen_s;
    char error[256]; /* MF_FINISH_ERROR: the one-line reason */
} mf_gen_result;
void mf_gen_result_free(mf_gen_result *r);

typedef struct mf_batcher mf_batcher;

typedef struct mf_batcher_opts {
    mf_session_opts session; /* device, threads, n_ctx (per sequence) */
    int n_seq;               /* sequences decoded together (--parallel) */
} mf_batcher_opts;

typedef void (*mf_done_fn)(void *user, const mf_gen_result *r);

typedef struct mf_batcher_stats {
    uint64_t prompt_tokens, cached_tokens, generated_tokens, steps;
    double decode_tok_s;
    int active, n_seq;
} mf_batcher_stats;

/* ---------------------------------------------------------------- the API's functions */

/* The conversation rendered as the prompt, ending with the assistant's generation prompt
 * when add_generation_prompt. malloc'd; NULL with err (unknown role for the format, an
 * empty conversation, and in the stand-in anything but [system|developer] user). */
char *mf_chat_render_conv(int fmt, const mf_chat_msg *msgs, int n, const mf_chat_opts *o, int add_generation_prompt,
                          mf_err *err);

mf_batcher *mf_batcher_new(mf_model *m, const mf_batcher_opts *o, mf_err *err);
void mf_batcher_free(mf_batcher *b);
/* Start a generation: a request id >= 0; -1 with err (the prompt does not fit the context:
 * the message gives both lengths; the stand-in also refuses here what it cannot do);
 * -2 when every sequence is busy (the caller queues). on_done runs once, at the end. */
int mf_batcher_submit(mf_batcher *b, const int32_t *prompt, int n, const mf_gen_params *p, mf_delta_fn on_delta,
                      mf_done_fn on_done, void *user, mf_err *err);
/* The sequence is freed at once; its done callback runs with MF_FINISH_CANCELLED. */
void mf_batcher_cancel(mf_batcher *b, int id);
/* One forward step over every active sequence; delivers deltas and done callbacks.
 * Returns the number of sequences still active, -1 on a device error. */
int mf_batcher_step(mf_batcher *b, mf_err *err);
int mf_batcher_active(const mf_batcher *b);
void mf_batcher_stats_get(const mf_batcher *b, mf_batcher_stats *s);
const mf_model *mf_batcher_model(const mf_batcher *b);

/* ---------------------------------------------------------------- adapter */

/* Puts the request's tools (OpenAI "tools" array as JSON text) into the render options:
 * 0, or -1 with err when this build cannot render tools (the stand-in). */
int srv_chat_opts_set_tools(mf_chat_opts *o, const char *tools_json, mf_err *err);

/* Sequences the engine really decodes together for a requested --parallel (the stand-in: 1). */
int srv_engine_n_seq(int requested);
/* Context positions of each sequence (the prompt and its answer must fit). */
int srv_engine_n_ctx(const mf_batcher *b);

#endif
