/* engine.h — the server's only door to the model: the library's conversation and generation
 * API (conversations rendered to a prompt: engine/chat.h; one answer's generation:
 * engine/generate.h; several generations decoded together by the single-threaded batcher:
 * engine/batch.h), as agreed for issue 14, and the few adapters below.
 *
 * Threads: mf_batcher_* are single-threaded (the server's engine thread calls them);
 * mf_chat_render_conv and the tokenizer may be called from any thread.
 */
#ifndef SRV_ENGINE_H
#define SRV_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "minfer.h"

/* Puts the request's tools (OpenAI "tools" array as JSON text) into the render options:
 * 0, or -1 with err when the list is not one the library can render (mf_chat_tools_check). */
int srv_chat_opts_set_tools(mf_chat_opts *o, const char *tools_json, mf_err *err);

/* Sequences the engine decodes together for a requested --parallel. */
int srv_engine_n_seq(int requested);
/* Context positions of each sequence (the prompt and its answer must fit). */
int srv_engine_n_ctx(const mf_batcher *b);

#endif
