/* request.h — an OpenAI request body (JSON) read into the library's structs, or an error
 * the client can act on.
 *
 * POST /v1/chat/completions: model (any string), messages (roles system, developer, user,
 * assistant, tool; content a string or an array of {"type":"text","text":...} parts, joined
 * as they are; assistant tool_calls and reasoning_content; tool_call_id and name of a tool
 * message), temperature [0, 2], top_p [0, 1], top_k >= 0, min_p [0, 1], max_tokens /
 * max_completion_tokens >= 1, stop (a string or an array of non-empty strings), seed (>= 0;
 * -1 or none: a random seed), stream, stream_options.include_usage, tools + tool_choice
 * ("auto", or "none": the tools are then not rendered), reasoning_effort (low, medium,
 * high), logprobs + top_logprobs [0, 20], response_format {"type":"text"}, n = 1.
 * POST /v1/completions: prompt (a string, or an array of one string), the sampling fields
 * above, max_tokens (default 16, as OpenAI documents), logprobs [0, 5].
 *
 * Every field is type-checked; null means "not given". Unknown fields are ignored. Known
 * OpenAI fields whose meaning the server cannot honour (n > 1, other response formats,
 * non-zero frequency/presence penalties, a logit_bias, tool_choice "required" or a named
 * function, echo, suffix, best_of > 1, non-text content parts) are refused with 400 and
 * code "unsupported_parameter" instead of being dropped silently.
 *
 * The parsed request points into the parsed JSON document it owns: free it with
 * srv_request_free. Parsing is pure (no model needed) and thread-safe.
 */
#ifndef SRV_REQUEST_H
#define SRV_REQUEST_H

#include <jansson.h>

#include "engine.h"

enum srv_kind { SRV_CHAT, SRV_COMPLETION };

/* An error for the client: HTTP status, OpenAI's code (may be NULL), the offending field
 * (may be empty) and a one-line message. The type follows from the status. */
typedef struct srv_error {
    int status;
    const char *code;
    char param[64];
    char message[512];
} srv_error;

/* Fills e and returns -1. */
int srv_err(srv_error *e, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

typedef struct srv_request {
    int kind;          /* enum srv_kind */
    json_t *root;      /* the document: every string below points into it */
    mf_chat_msg *msgs; /* chat */
    int n_msgs;
    mf_tool_call *calls; /* the history's assistant tool calls, msgs point here */
    char **joined;       /* contents given as parts, joined (owned) */
    int n_joined;
    const char *prompt;           /* completion */
    char *tools_json;             /* the "tools" array (compact JSON, owned), NULL: none */
    const char *reasoning_effort; /* NULL: the model's default */
    const char **stop;            /* gen.stop points here */
    mf_gen_params gen;            /* sampler, max_tokens, stop, logprobs; format is the
                                     server's to set */
    int seed_given;               /* 0: the caller picks a random seed */
    int stream, include_usage;
} srv_request;

/* 0, or -1 with e (400; 'code' names the kind of problem: invalid_json, invalid_type,
 * invalid_value, missing_field, unsupported_parameter) and nothing left to free. */
int srv_request_parse(int kind, const char *body, size_t len, srv_request *rq, srv_error *e);
void srv_request_free(srv_request *rq);

#endif
