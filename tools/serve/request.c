/* request.c — OpenAI request bodies into srv_request (request.h says what is accepted).
 * JSON is parsed by jansson (strict: valid UTF-8, no NUL in strings, no duplicate keys,
 * nesting at most JSON_PARSER_MAX_DEPTH deep); this file only checks shapes and ranges. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

int srv_err(srv_error *e, int status, const char *code, const char *param, const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---------------------------------------------------------------- typed fields
 * Each getter leaves *out alone when the field is absent or null and returns 0, or fills
 * e (400) and returns -1. */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int bad_type(srv_error *e, const char *name, const char *want, const json_t *v)
{
    return srv_err(e, 400, "invalid_type", name, "'%s' must be %s, not %s", name, want, type_name(v));
}

static json_t *field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int get_number(json_t *o, const char *key, double lo, double hi, double *out, srv_error *e)
{
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_number(v)) return bad_type(e, key, "a number", v);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return srv_err(e, 400, "invalid_value", key, "'%s' must be between %g and %g, not %g", key, lo, hi, x);
    *out = x;
    return 0;
}

static int get_float(json_t *o, const char *key, double lo, double hi, float *out, srv_error *e)
{
    double x = *out;
    if (get_number(o, key, lo, hi, &x, e)) return -1;
    *out = (float)x;
    return 0;
}

static int get_int(json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *out, srv_error *e)
{
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_integer(v)) return bad_type(e, key, "an integer", v);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return srv_err(e, 400, "invalid_value", key, "'%s' must be between %lld and %lld, not %lld", key, (long long)lo,
                       (long long)hi, (long long)x);
    *out = x;
    return 0;
}

static int get_bool(json_t *o, const char *key, int *out, srv_error *e)
{
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return bad_type(e, key, "a boolean", v);
    *out = json_is_true(v);
    return 0;
}

static int get_string(json_t *o, const char *key, const char **out, srv_error *e)
{
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_string(v)) return bad_type(e, key, "a string", v);
    *out = json_string_value(v);
    return 0;
}

static int unsupported(srv_error *e, const char *param, const char *why)
{
    return srv_err(e, 400, "unsupported_parameter", param, "%s", why);
}

/* ---------------------------------------------------------------- shared fields */

static int parse_stop(json_t *root, srv_request *rq, srv_error *e)
{
    json_t *v = field(root, "stop");
    if (!v) return 0;
    enum { MAX_STOP = 64 };
    size_t n = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_string(v) && !json_is_array(v)) return bad_type(e, "stop", "a string or an array of strings", v);
    if (n > MAX_STOP)
        return srv_err(e, 400, "invalid_value", "stop", "'stop' has %zu strings, at most %d are accepted", n, MAX_STOP);
    if (!n) return 0;
    rq->stop = calloc(n, sizeof *rq->stop);
    if (!rq->stop) return srv_err(e, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_string(v) ? v : json_array_get(v, i);
        if (!json_is_string(s))
            return srv_err(e, 400, "invalid_type", "stop", "'stop[%zu]' must be a string, not %s", i, type_name(s));
        if (!json_string_length(s)) return srv_err(e, 400, "invalid_value", "stop", "'stop' strings must not be empty");
        rq->stop[i] = json_string_value(s);
    }
    rq->gen.stop = rq->stop;
    rq->gen.n_stop = (int)n;
    return 0;
}

/* The sampling and length fields both endpoints share. */
static int parse_common(json_t *root, srv_request *rq, srv_error *e)
{
    mf_sampler_params *sp = &rq->gen.sampler;
    const char *model = NULL;
    json_int_t k = sp->top_k, seed = -1, n = 1, mt = -1, mct = -1;
    double pen = 0;
    if (get_string(root, "model", &model, e) || get_float(root, "temperature", 0, 2, &sp->temp, e) ||
        get_float(root, "top_p", 0, 1, &sp->top_p, e) || get_int(root, "top_k", 0, 1 << 30, &k, e) ||
        get_float(root, "min_p", 0, 1, &sp->min_p, e) || get_int(root, "seed", -1, INT64_MAX, &seed, e) ||
        get_int(root, "n", -1000000, 1000000, &n, e) || get_bool(root, "stream", &rq->stream, e) ||
        get_int(root, "max_tokens", 1, 1 << 30, &mt, e) ||
        get_int(root, "max_completion_tokens", 1, 1 << 30, &mct, e) || parse_stop(root, rq, e))
        return -1;
    sp->top_k = (int)k;
    if (seed >= 0) {
        sp->seed = (uint64_t)seed;
        rq->seed_given = 1;
    }
    if (n != 1) return unsupported(e, "n", "'n' must be 1: this server returns one choice per request");
    if (mt >= 0 && mct >= 0 && mt != mct)
        return srv_err(e, 400, "invalid_value", "max_tokens",
                       "'max_tokens' (%lld) and 'max_completion_tokens' (%lld) disagree", (long long)mt,
                       (long long)mct);
    if (mct >= 0) rq->gen.max_tokens = (int)mct;
    else if (mt >= 0) rq->gen.max_tokens = (int)mt;
    static const char *const penalties[] = {"frequency_penalty", "presence_penalty"};
    for (int i = 0; i < 2; i++) {
        if (get_number(root, penalties[i], -2, 2, &pen, e)) return -1;
        if (pen != 0)
            return unsupported(e, penalties[i],
                               "frequency and presence penalties are not supported (give 0 or leave them out)");
    }
    json_t *bias = field(root, "logit_bias");
    if (bias && !json_is_object(bias)) return bad_type(e, "logit_bias", "an object", bias);
    if (bias && json_object_size(bias)) return unsupported(e, "logit_bias", "'logit_bias' is not supported");
    json_t *so = field(root, "stream_options");
    if (so && !json_is_object(so)) return bad_type(e, "stream_options", "an object", so);
    if (so && get_bool(so, "include_usage", &rq->include_usage, e)) return -1;
    return 0;
}

/* ---------------------------------------------------------------- chat */

static int role_of(const char *s)
{
    static const char *const names[] = {"system", "developer", "user", "assistant", "tool"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return i; /* enum mf_role order */
    return -1;
}

/* content: a string, an array of text parts, or null. *out stays NULL for null. */
static int parse_content(json_t *m, size_t i, srv_request *rq, const char **out, srv_error *e)
{
    json_t *c = field(m, "content");
    if (!c) return 0;
    if (json_is_string(c)) {
        *out = json_string_value(c);
        return 0;
    }
    if (!json_is_array(c))
        return srv_err(e, 400, "invalid_type", "messages",
                       "'messages[%zu].content' must be a string or an array of parts, not %s", i, type_name(c));
    size_t total = 0;
    for (size_t k = 0; k < json_array_size(c); k++) {
        json_t *p = json_array_get(c, k);
        const char *type = NULL;
        json_t *t = json_is_object(p) ? json_object_get(p, "type") : NULL;
        if (!json_is_object(p) || !json_is_string(t))
            return srv_err(e, 400, "invalid_type", "messages",
                           "'messages[%zu].content[%zu]' must be an object with a 'type'", i, k);
        type = json_string_value(t);
        if (strcmp(type, "text"))
            return srv_err(e, 400, "unsupported_parameter", "messages",
                           "'messages[%zu].content[%zu]' is of type '%.40s': only text parts are supported", i, k,
                           type);
        json_t *x = json_object_get(p, "text");
        if (!json_is_string(x))
            return srv_err(e, 400, "invalid_type", "messages", "'messages[%zu].content[%zu].text' must be a string", i,
                           k);
        total += json_string_length(x);
    }
    char *s = malloc(total + 1), **j = realloc(rq->joined, sizeof *j * (size_t)(rq->n_joined + 1));
    if (j) rq->joined = j;
    if (!s || !j) {
        free(s);
        return srv_err(e, 500, NULL, NULL, "out of memory");
    }
    rq->joined[rq->n_joined++] = s;
    size_t off = 0;
    for (size_t k = 0; k < json_array_size(c); k++) {
        json_t *x = json_object_get(json_array_get(c, k), "text");
        memcpy(s + off, json_string_value(x), json_string_length(x));
        off += json_string_length(x);
    }
    s[off] = 0;
    *out = s;
    return 0;
}

static int parse_tool_calls(json_t *m, size_t i, srv_request *rq, mf_chat_msg *msg, size_t *used, srv_error *e)
{
    json_t *tc = field(m, "tool_calls");
    if (!tc) return 0;
    if (!json_is_array(tc))
        return srv_err(e, 400, "invalid_type", "messages", "'messages[%zu].tool_calls' must be an array, not %s", i,
                       type_name(tc));
    if (msg->role != MF_ROLE_ASSISTANT)
        return srv_err(e, 400, "invalid_value", "messages",
                       "'messages[%zu]' has tool_calls but is not an assistant message", i);
    msg->tool_calls = rq->calls + *used;
    msg->n_tool_calls = (int)json_array_size(tc);
    for (size_t k = 0; k < json_array_size(tc); k++) {
        json_t *c = json_array_get(tc, k), *f = json_is_object(c) ? json_object_get(c, "function") : NULL;
        json_t *id = json_is_object(c) ? json_object_get(c, "id") : NULL,
               *type = json_is_object(c) ? json_object_get(c, "type") : NULL;
        json_t *name = json_is_object(f) ? json_object_get(f, "name") : NULL;
        json_t *args = json_is_object(f) ? json_object_get(f, "arguments") : NULL;
        if (!json_is_string(id) || !json_is_string(name) || !json_is_string(args) || (type && !json_is_string(type)))
            return srv_err(e, 400, "invalid_type", "messages",
                           "'messages[%zu].tool_calls[%zu]' must be {\"id\": string, \"type\": \"function\", "
                           "\"function\": {\"name\": string, \"arguments\": string}}",
                           i, k);
        if (type && strcmp(json_string_value(type), "function"))
            return srv_err(e, 400, "unsupported_parameter", "messages",
                           "'messages[%zu].tool_calls[%zu].type' must be \"function\"", i, k);
        mf_tool_call *call = &rq->calls[(*used)++];
        call->id = (char *)json_string_value(id);
        call->name = (char *)json_string_value(name);
        call->arguments = (char *)json_string_value(args);
    }
    return 0;
}

static int parse_messages(json_t *root, srv_request *rq, srv_error *e)
{
    json_t *ms = json_object_get(root, "messages");
    if (!ms || json_is_null(ms)) return srv_err(e, 400, "missing_field", "messages", "'messages' is required");
    if (!json_is_array(ms)) return bad_type(e, "messages", "an array", ms);
    size_t n = json_array_size(ms), n_calls = 0;
    if (!n) return srv_err(e, 400, "invalid_value", "messages", "'messages' is empty");
    for (size_t i = 0; i < n; i++) {
        json_t *tc = json_object_get(json_array_get(ms, i), "tool_calls");
        if (json_is_array(tc)) n_calls += json_array_size(tc);
    }
    rq->msgs = calloc(n, sizeof *rq->msgs);
    rq->calls = calloc(n_calls ? n_calls : 1, sizeof *rq->calls);
    if (!rq->msgs || !rq->calls) return srv_err(e, 500, NULL, NULL, "out of memory");
    rq->n_msgs = (int)n;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(ms, i);
        mf_chat_msg *msg = &rq->msgs[i];
        if (!json_is_object(m))
            return srv_err(e, 400, "invalid_type", "messages", "'messages[%zu]' must be an object, not %s", i,
                           type_name(m));
        json_t *r = json_object_get(m, "role");
        if (!json_is_string(r))
            return srv_err(e, 400, "invalid_type", "messages", "'messages[%zu].role' must be a string", i);
        msg->role = role_of(json_string_value(r));
        if (msg->role < 0)
            return srv_err(e, 400, "invalid_value", "messages",
                           "'messages[%zu].role' is '%.40s' (expected system, developer, user, assistant or tool)", i,
                           json_string_value(r));
        if (parse_content(m, i, rq, &msg->content, e) || parse_tool_calls(m, i, rq, msg, &used, e)) return -1;
        const char *name = NULL, *call_id = NULL, *reasoning = NULL;
        if (get_string(m, "name", &name, e) || get_string(m, "tool_call_id", &call_id, e) ||
            get_string(m, "reasoning_content", &reasoning, e)) {
            snprintf(e->message + strlen(e->message), sizeof e->message - strlen(e->message), " (in messages[%zu])", i);
            return -1;
        }
        if (msg->role == MF_ROLE_TOOL) {
            if (!call_id)
                return srv_err(e, 400, "missing_field", "messages",
                               "'messages[%zu]' is a tool message without 'tool_call_id'", i);
            msg->tool_call_id = call_id;
            msg->name = name;
        }
        if (msg->role == MF_ROLE_ASSISTANT) msg->reasoning = reasoning;
        if (!msg->content && !(msg->role == MF_ROLE_ASSISTANT && msg->n_tool_calls))
            return srv_err(e, 400, "missing_field", "messages", "'messages[%zu]' has no content", i);
    }
    return 0;
}

static int parse_tools(json_t *root, srv_request *rq, srv_error *e)
{
    json_t *tools = field(root, "tools"), *choice = field(root, "tool_choice");
    if (tools && !json_is_array(tools)) return bad_type(e, "tools", "an array", tools);
    for (size_t i = 0; tools && i < json_array_size(tools); i++) {
        json_t *t = json_array_get(tools, i), *f = json_is_object(t) ? json_object_get(t, "function") : NULL;
        json_t *type = json_is_object(t) ? json_object_get(t, "type") : NULL;
        if (!json_is_string(type) || strcmp(json_string_value(type), "function") || !json_is_object(f) ||
            !json_is_string(json_object_get(f, "name")))
            return srv_err(e, 400, "invalid_type", "tools",
                           "'tools[%zu]' must be {\"type\": \"function\", \"function\": {\"name\": string, ...}}", i);
        json_t *params = json_object_get(f, "parameters"), *desc = json_object_get(f, "description");
        if (params && !json_is_null(params) && !json_is_object(params))
            return srv_err(e, 400, "invalid_type", "tools",
                           "'tools[%zu].function.parameters' must be an object (a JSON schema)", i);
        if (desc && !json_is_null(desc) && !json_is_string(desc))
            return srv_err(e, 400, "invalid_type", "tools", "'tools[%zu].function.description' must be a string", i);
    }
    int render = tools && json_array_size(tools) > 0;
    if (choice) {
        if (json_is_string(choice)) {
            const char *c = json_string_value(choice);
            if (!strcmp(c, "none")) render = 0;
            else if (!strcmp(c, "required"))
                return unsupported(
                    e, "tool_choice",
                    "tool_choice 'required' is not supported (the model is not forced to call a tool): use 'auto'");
            else if (strcmp(c, "auto"))
                return srv_err(e, 400, "invalid_value", "tool_choice",
                               "'tool_choice' is '%.40s' (expected none, auto or required)", c);
        } else if (json_is_object(choice)) {
            return unsupported(
                e, "tool_choice",
                "a named tool_choice is not supported (the model is not forced to call a tool): use 'auto'");
        } else {
            return bad_type(e, "tool_choice", "a string or an object", choice);
        }
    }
    if (render) {
        rq->tools_json = json_dumps(tools, JSON_COMPACT);
        if (!rq->tools_json) return srv_err(e, 500, NULL, NULL, "out of memory");
    }
    return 0;
}

static int parse_chat(json_t *root, srv_request *rq, srv_error *e)
{
    if (parse_messages(root, rq, e) || parse_tools(root, rq, e)) return -1;
    if (get_string(root, "reasoning_effort", &rq->reasoning_effort, e)) return -1;
    const char *re = rq->reasoning_effort;
    if (re && strcmp(re, "low") && strcmp(re, "medium") && strcmp(re, "high"))
        return srv_err(e, 400, "invalid_value", "reasoning_effort",
                       "'reasoning_effort' is '%.40s' (expected low, medium or high)", re);
    json_int_t top = 0;
    if (get_bool(root, "logprobs", &rq->gen.logprobs, e) || get_int(root, "top_logprobs", 0, 20, &top, e)) return -1;
    if (top > 0 && !rq->gen.logprobs)
        return srv_err(e, 400, "invalid_value", "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    rq->gen.top_logprobs = (int)top;
    json_t *rf = field(root, "response_format");
    if (rf) {
        json_t *t = json_is_object(rf) ? json_object_get(rf, "type") : NULL;
        if (!json_is_string(t))
            return srv_err(e, 400, "invalid_type", "response_format",
                           "'response_format' must be an object with a string 'type'");
        if (strcmp(json_string_value(t), "text"))
            return srv_err(e, 400, "unsupported_parameter", "response_format",
                           "response_format '%.40s' is not supported yet (only 'text')", json_string_value(t));
    }
    return 0;
}

/* ---------------------------------------------------------------- completions */

static int parse_completion(json_t *root, srv_request *rq, srv_error *e)
{
    json_t *p = json_object_get(root, "prompt");
    if (!p || json_is_null(p)) return srv_err(e, 400, "missing_field", "prompt", "'prompt' is required");
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
    else if (json_is_array(p)) return unsupported(e, "prompt", "'prompt' must be a string or an array of one string");
    if (!json_is_string(p)) return bad_type(e, "prompt", "a string", p);
    rq->prompt = json_string_value(p);
    int echo = 0;
    json_int_t best_of = 1, lp = -1;
    const char *suffix = NULL;
    if (get_bool(root, "echo", &echo, e) || get_int(root, "best_of", -1000000, 1000000, &best_of, e) ||
        get_string(root, "suffix", &suffix, e) || get_int(root, "logprobs", 0, 5, &lp, e))
        return -1;
    if (echo) return unsupported(e, "echo", "'echo' is not supported");
    if (best_of != 1) return unsupported(e, "best_of", "'best_of' must be 1");
    if (suffix && *suffix) return unsupported(e, "suffix", "'suffix' is not supported");
    if (lp >= 0) {
        rq->gen.logprobs = 1;
        rq->gen.top_logprobs = (int)lp;
    }
    return 0;
}

static int parse_all(int kind, const char *body, size_t len, srv_request *rq, srv_error *e)
{
    memset(rq, 0, sizeof *rq);
    rq->kind = kind;
    rq->gen.sampler = mf_sampler_defaults();
    rq->gen.max_tokens = kind == SRV_COMPLETION ? 16 : -1;
    json_error_t je;
    rq->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!rq->root)
        return srv_err(e, 400, "invalid_json", NULL, "malformed JSON: %s (line %d, column %d)", je.text, je.line,
                       je.column);
    if (!json_is_object(rq->root))
        return srv_err(e, 400, "invalid_type", NULL, "the request body must be a JSON object, not %s",
                       type_name(rq->root));
    if (parse_common(rq->root, rq, e)) return -1;
    return kind == SRV_CHAT ? parse_chat(rq->root, rq, e) : parse_completion(rq->root, rq, e);
}

int srv_request_parse(int kind, const char *body, size_t len, srv_request *rq, srv_error *e)
{
    if (!parse_all(kind, body, len, rq, e)) return 0;
    srv_request_free(rq);
    return -1;
}

void srv_request_free(srv_request *rq)
{
    if (!rq) return;
    for (int i = 0; i < rq->n_joined; i++) free(rq->joined[i]);
    free(rq->joined);
    free(rq->msgs);
    free(rq->calls);
    free(rq->stop);
    free(rq->tools_json);
    json_decref(rq->root);
    memset(rq, 0, sizeof *rq);
}
