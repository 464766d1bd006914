/* reply.h — the OpenAI objects the server sends, as JSON text (malloc'd, NUL-terminated;
 * NULL only when out of memory).
 *
 *   chat.completion        choices[0].message {role, content (null when the answer is only
 *                          tool calls), reasoning_content (when the model reasoned),
 *                          tool_calls [{id, type "function", function {name, arguments}}]},
 *                          logprobs, finish_reason; usage
 *   chat.completion.chunk  the first chunk's delta is {role, content ""}; then content,
 *                          reasoning_content and tool_calls deltas ({index, and on a call's
 *                          first delta id, type, function.name}, arguments pieces); a last
 *                          chunk with an empty delta and the finish_reason; with
 *                          stream_options.include_usage every chunk has "usage": null and a
 *                          final chunk with no choices carries the usage
 *   text_completion        choices[0] {text, index, logprobs, finish_reason}; usage (the
 *                          chunks are the same object with pieces of text)
 *   error                  {"error": {"message", "type", "param", "code"}}
 *
 * finish_reason: stop, length (max_tokens, or the context is full: OpenAI has no separate
 * reason for that), tool_calls. Usage counts tokens: prompt_tokens (the rendered prompt as
 * tokenized, special tokens included), completion_tokens (tokens generated, the end token
 * included), prompt_tokens_details.cached_tokens (reused from a cache).
 *
 * Text goes into JSON strings, which hold Unicode only: a byte sequence that is not UTF-8
 * (a model can emit a lone byte token) is sent as U+FFFD, each invalid byte one U+FFFD.
 */
#ifndef SRV_REPLY_H
#define SRV_REPLY_H

#include <jansson.h>

#include "engine.h"
#include "request.h"

/* What every object of one request shares. */
typedef struct srv_reply_info {
    int kind;       /* enum srv_kind */
    const char *id; /* "chatcmpl-..." / "cmpl-..." */
    const char *model;
    long long created;       /* Unix seconds */
    int include_usage;       /* streaming: usage: null in chunks + a usage chunk */
    const mf_tokenizer *tok; /* for logprobs: token texts */
} srv_reply_info;

/* The logprobs of the tokens behind an answer, gathered from its deltas. */
typedef struct srv_lp_list {
    mf_token_logprob *v; /* top_id / top_logprob arrays owned */
    int n, cap;
} srv_lp_list;
int srv_lp_append(srv_lp_list *l, const mf_token_logprob *lp, int n);
void srv_lp_free(srv_lp_list *l);

/* JSON string of n bytes (invalid UTF-8 as U+FFFD). */
json_t *srv_json_text(const char *s, size_t n);
/* OpenAI's finish_reason for an mf_finish, NULL when it has none (cancelled, error). */
const char *srv_finish_reason(int finish);

char *srv_reply_error(const srv_error *e);
char *srv_reply_models(const char *model_id, long long created);
/* The whole answer (non-streamed). lp may be NULL (no logprobs asked). */
char *srv_reply_final(const srv_reply_info *ri, const mf_gen_result *r, const srv_lp_list *lp);

/* Streaming: the "data: {...}\n\n" events. */
char *srv_event_start(const srv_reply_info *ri); /* chat: the role chunk */
char *srv_event_delta(const srv_reply_info *ri, const mf_delta *d);
/* the finish chunk, the usage chunk when asked, and "data: [DONE]" */
char *srv_event_finish(const srv_reply_info *ri, const mf_gen_result *r);
char *srv_event_error(const srv_error *e); /* an error after the start */

#endif
