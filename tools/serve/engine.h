/* engine.h — the server's only door to the model: the library's conversation and generation
 * API (conversations rendered to a prompt, one generation streamed through a callback,
 * several generations driven by a single-threaded batcher), as agreed for issue 14.
 *
 * The conversations (engine/chat.h) and the generation of one answer (engine/generate.h:
 * stop strings, logprobs, tool calls, prefix reuse) are the library's. The batcher is still
 * a STAND-IN until issue 14's several-sequence batcher (engine/batch.h) lands: this header
 * declares its types and engine.c implements it over one session and mf_gen, one sequence
 * at a time. Then the block of batcher types below goes and engine.c goes. Nothing else in
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

/* ---------------------------------------------------------------- the batcher's types
 * (stand-in: these move to engine/batch.h with issue 14's batcher; the conversation and
 * generation types are the library's: engine/chat.h and engine/generate.h) */

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
 * 0, or -1 with err when the list is not one the library can render (mf_chat_tools_check). */
int srv_chat_opts_set_tools(mf_chat_opts *o, const char *tools_json, mf_err *err);

/* Sequences the engine really decodes together for a requested --parallel (the stand-in: 1). */
int srv_engine_n_seq(int requested);
/* Context positions of each sequence (the prompt and its answer must fit). */
int srv_engine_n_ctx(const mf_batcher *b);

#endif
