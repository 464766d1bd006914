/* engine.h — the server's only door to the model: the library's conversation and generation
 * API (conversations rendered to a prompt; generations driven by the single-threaded
 * batcher of engine/batch.h, several sequences decoded together), as agreed for issue 14.
 *
 * PARTLY A STAND-IN. The generations and the batcher are the library's (minfer.h includes
 * generate.h and batch.h). The conversation types below and mf_chat_render_conv (engine.c)
 * stand in for the library's conversation rendering (engine/chat.h, issue 14) until it
 * lands: a system (or developer) message and one user turn, no tools. When it lands, the
 * block of types below and mf_chat_render_conv go, and srv_chat_opts_set_tools sets
 * mf_chat_opts.tools_json. Nothing else in tools/serve/ depends on the stand-in.
 *
 * Threads: mf_batcher_* are single-threaded (the server's engine thread calls them);
 * mf_chat_render_conv and the tokenizer may be called from any thread.
 */
#ifndef SRV_ENGINE_H
#define SRV_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "minfer.h"

/* ---------------------------------------------------------------- conversations
 * (stand-in: these move to engine/chat.h with issue 14) */

enum mf_role { MF_ROLE_SYSTEM, MF_ROLE_DEVELOPER, MF_ROLE_USER, MF_ROLE_ASSISTANT, MF_ROLE_TOOL };

typedef struct mf_chat_msg {
    int role;                       /* enum mf_role */
    const char *content;            /* may be NULL (assistant with only tool calls) */
    const char *reasoning;          /* assistant: analysis text (harmony), may be NULL */
    const mf_tool_call *tool_calls; /* assistant */
    int n_tool_calls;
    const char *tool_call_id; /* tool: the call this message answers */
    const char *name;         /* tool: function name; NULL: found from tool_call_id */
} mf_chat_msg;

/* The conversation rendered as the prompt, ending with the assistant's generation prompt
 * when add_generation_prompt. malloc'd; NULL with err (unknown role for the format, an
 * empty conversation, and in the stand-in anything but [system|developer] user). */
char *mf_chat_render_conv(int fmt, const mf_chat_msg *msgs, int n, const mf_chat_opts *o, int add_generation_prompt,
                          mf_err *err);

/* ---------------------------------------------------------------- adapter */

/* Puts the request's tools (OpenAI "tools" array as JSON text) into the render options:
 * 0, or -1 with err when this build cannot render tools (the stand-in). */
int srv_chat_opts_set_tools(mf_chat_opts *o, const char *tools_json, mf_err *err);

/* Sequences the engine really decodes together for a requested --parallel. */
int srv_engine_n_seq(int requested);
/* Context positions of each sequence (the prompt and its answer must fit). */
int srv_engine_n_ctx(const mf_batcher *b);

#endif
