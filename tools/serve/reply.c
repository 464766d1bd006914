/* reply.c — OpenAI reply objects built with jansson (reply.h says which and their shapes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "tokenizer_impl.h" /* mf_utf8_decode */

json_t *srv_json_text(const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = mf_utf8_decode(u + i, n - i, &cp);
        bad += cp == MF_UTF8_INVALID || cp == 0;
        i += l;
    }
    if (!bad) return json_stringn(s ? s : "", n);
    /* each invalid byte (and NUL, which jansson refuses) becomes U+FFFD (3 bytes) */
    char *t = malloc(n + 2 * bad + 1);
    if (!t) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = mf_utf8_decode(u + i, n - i, &cp);
        if (cp == MF_UTF8_INVALID || cp == 0) {
            memcpy(t + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(t + o, s + i, l);
            o += l;
        }
        i += l;
    }
    json_t *j = json_stringn(t, o);
    free(t);
    return j;
}

const char *srv_finish_reason(int finish)
{
    switch (finish) {
    case MF_FINISH_STOP: return "stop";
    case MF_FINISH_LENGTH:
    case MF_FINISH_CONTEXT: return "length";
    case MF_FINISH_TOOL_CALLS: return "tool_calls";
    default: return NULL;
    }
}

int srv_lp_append(srv_lp_list *l, const mf_token_logprob *lp, int n)
{
    if (l->n + n > l->cap) {
        int cap = l->cap ? l->cap : 16;
        while (cap < l->n + n) cap *= 2;
        mf_token_logprob *v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    for (int i = 0; i < n; i++) {
        mf_token_logprob c = lp[i];
        int32_t *ids = c.n_top > 0 ? malloc(sizeof *ids * (size_t)c.n_top) : NULL;
        float *lps = c.n_top > 0 ? malloc(sizeof *lps * (size_t)c.n_top) : NULL;
        if (c.n_top > 0 && (!ids || !lps)) {
            free(ids);
            free(lps);
            return -1;
        }
        if (c.n_top > 0) {
            memcpy(ids, lp[i].top_id, sizeof *ids * (size_t)c.n_top);
            memcpy(lps, lp[i].top_logprob, sizeof *lps * (size_t)c.n_top);
        }
        c.top_id = ids;
        c.top_logprob = lps;
        l->v[l->n++] = c;
    }
    return 0;
}

void srv_lp_free(srv_lp_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free((void *)l->v[i].top_id);
        free((void *)l->v[i].top_logprob);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---------------------------------------------------------------- pieces */

/* A new reference set into o (jansson's *_new steals it); a NULL value (out of memory)
 * makes the whole object fail at the end (json_dumps of an incomplete object is avoided by
 * the callers checking `ok`). */
static void put(json_t *o, const char *key, json_t *v, int *ok)
{
    if (!v || json_object_set_new(o, key, v)) *ok = 0;
}

static void push(json_t *a, json_t *v, int *ok)
{
    if (!v || json_array_append_new(a, v)) *ok = 0;
}

static char *dump(json_t *o, int ok)
{
    char *s = ok && o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static const char *error_type(int status) { return status >= 500 ? "server_error" : "invalid_request_error"; }

static json_t *error_obj(const srv_error *e, int *ok)
{
    json_t *in = json_object(), *o = json_object();
    put(in, "message", json_string(e->message), ok);
    put(in, "type", json_string(error_type(e->status)), ok);
    put(in, "param", e->param[0] ? json_string(e->param) : json_null(), ok);
    put(in, "code", e->code ? json_string(e->code) : json_null(), ok);
    put(o, "error", in, ok);
    return o;
}

char *srv_reply_error(const srv_error *e)
{
    int ok = 1;
    json_t *o = error_obj(e, &ok);
    return dump(o, ok);
}

char *srv_reply_models(const char *model_id, long long created)
{
    int ok = 1;
    json_t *o = json_object(), *data = json_array(), *m = json_object();
    put(m, "id", json_string(model_id), &ok);
    put(m, "object", json_string("model"), &ok);
    put(m, "created", json_integer(created), &ok);
    put(m, "owned_by", json_string("minfer"), &ok);
    push(data, m, &ok);
    put(o, "object", json_string("list"), &ok);
    put(o, "data", data, &ok);
    return dump(o, ok);
}

/* The text of a token as the output shows it (special tokens by their text). */
static json_t *token_text(const mf_tokenizer *t, int32_t id, json_t **bytes, int *ok)
{
    char buf[256];
    size_t n = mf_tok_piece(t, id, 1, buf, sizeof buf);
    if (n > sizeof buf) n = sizeof buf; /* a piece longer than 256 bytes is cut here */
    if (bytes) {
        *bytes = json_array();
        for (size_t i = 0; i < n; i++) push(*bytes, json_integer((unsigned char)buf[i]), ok);
    }
    return srv_json_text(buf, n);
}

/* chat: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]} */
static json_t *chat_logprobs(const srv_reply_info *ri, const mf_token_logprob *v, int n, int *ok)
{
    json_t *o = json_object(), *content = json_array();
    for (int i = 0; i < n; i++) {
        json_t *e = json_object(), *bytes = NULL, *top = json_array();
        put(e, "token", token_text(ri->tok, v[i].id, &bytes, ok), ok);
        put(e, "logprob", json_real(v[i].logprob), ok);
        put(e, "bytes", bytes, ok);
        for (int k = 0; k < v[i].n_top; k++) {
            json_t *t = json_object(), *tb = NULL;
            put(t, "token", token_text(ri->tok, v[i].top_id[k], &tb, ok), ok);
            put(t, "logprob", json_real(v[i].top_logprob[k]), ok);
            put(t, "bytes", tb, ok);
            push(top, t, ok);
        }
        put(e, "top_logprobs", top, ok);
        push(content, e, ok);
    }
    put(o, "content", content, ok);
    return o;
}

/* completions: {tokens, token_logprobs, top_logprobs: [{text: logprob}], text_offset};
 * offsets count bytes from the start of this answer's text (*offset carries them across
 * chunks). */
static json_t *completion_logprobs(const srv_reply_info *ri, const mf_token_logprob *v, int n, long long *offset,
                                   int *ok)
{
    json_t *o = json_object(), *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    for (int i = 0; i < n; i++) {
        json_t *bytes = NULL, *t = token_text(ri->tok, v[i].id, &bytes, ok);
        push(offs, json_integer(*offset), ok);
        *offset += bytes ? (long long)json_array_size(bytes) : 0;
        json_decref(bytes);
        push(toks, t, ok);
        push(lps, json_real(v[i].logprob), ok);
        json_t *top = json_object();
        for (int k = 0; k < v[i].n_top; k++) {
            json_t *tt = token_text(ri->tok, v[i].top_id[k], NULL, ok);
            if (tt) put(top, json_string_value(tt), json_real(v[i].top_logprob[k]), ok);
            json_decref(tt);
        }
        push(tops, top, ok);
    }
    put(o, "tokens", toks, ok);
    put(o, "token_logprobs", lps, ok);
    put(o, "top_logprobs", tops, ok);
    put(o, "text_offset", offs, ok);
    return o;
}

static json_t *usage_obj(const mf_gen_result *r, int *ok)
{
    json_t *u = json_object(), *d = json_object();
    put(u, "prompt_tokens", json_integer(r->n_prompt), ok);
    put(u, "completion_tokens", json_integer(r->n_generated), ok);
    put(u, "total_tokens", json_integer((json_int_t)r->n_prompt + r->n_generated), ok);
    put(d, "cached_tokens", json_integer(r->n_cached), ok);
    put(u, "prompt_tokens_details", d, ok);
    return u;
}

static json_t *envelope(const srv_reply_info *ri, int chunk, int *ok)
{
    json_t *o = json_object();
    put(o, "id", json_string(ri->id), ok);
    put(o, "object",
        json_string(ri->kind == SRV_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"),
        ok);
    put(o, "created", json_integer(ri->created), ok);
    put(o, "model", json_string(ri->model), ok);
    return o;
}

static json_t *finish_json(int finish)
{
    const char *f = srv_finish_reason(finish);
    return f ? json_string(f) : json_null();
}

static json_t *tool_call_obj(const char *id, const char *name, const char *args, size_t args_len, int index, int *ok)
{
    json_t *c = json_object(), *f = json_object();
    if (index >= 0) put(c, "index", json_integer(index), ok);
    if (id) put(c, "id", json_string(id), ok);
    if (id || name) put(c, "type", json_string("function"), ok);
    if (name) put(f, "name", json_string(name), ok);
    put(f, "arguments", srv_json_text(args, args_len), ok);
    put(c, "function", f, ok);
    return c;
}

char *srv_reply_final(const srv_reply_info *ri, const mf_gen_result *r, const srv_lp_list *lp)
{
    int ok = 1;
    json_t *o = envelope(ri, 0, &ok), *choices = json_array(), *ch = json_object();
    const char *content = r->content ? r->content : "";
    put(ch, "index", json_integer(0), &ok);
    if (ri->kind == SRV_CHAT) {
        json_t *msg = json_object();
        put(msg, "role", json_string("assistant"), &ok);
        put(msg, "content", !*content && r->n_calls ? json_null() : srv_json_text(content, strlen(content)), &ok);
        if (r->reasoning && *r->reasoning)
            put(msg, "reasoning_content", srv_json_text(r->reasoning, strlen(r->reasoning)), &ok);
        if (r->n_calls) {
            json_t *calls = json_array();
            for (int i = 0; i < r->n_calls; i++) {
                const mf_tool_call *c = &r->calls[i];
                push(calls, tool_call_obj(c->id, c->name, c->arguments, strlen(c->arguments), -1, &ok), &ok);
            }
            put(msg, "tool_calls", calls, &ok);
        }
        put(ch, "message", msg, &ok);
        put(ch, "logprobs", lp ? chat_logprobs(ri, lp->v, lp->n, &ok) : json_null(), &ok);
    } else {
        long long off = 0;
        put(ch, "text", srv_json_text(content, strlen(content)), &ok);
        put(ch, "logprobs", lp ? completion_logprobs(ri, lp->v, lp->n, &off, &ok) : json_null(), &ok);
    }
    put(ch, "finish_reason", finish_json(r->finish), &ok);
    push(choices, ch, &ok);
    put(o, "choices", choices, &ok);
    put(o, "usage", usage_obj(r, &ok), &ok);
    return dump(o, ok);
}

/* ---------------------------------------------------------------- events */

static char *event(json_t *o, int ok)
{
    char *s = dump(o, ok);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *e = malloc(n + 9);
    if (e) {
        memcpy(e, "data: ", 6);
        memcpy(e + 6, s, n);
        memcpy(e + 6 + n, "\n\n", 3);
    }
    free(s);
    return e;
}

/* A chunk with one choice: its delta (chat) or text (completions) set by the caller. */
static json_t *chunk(const srv_reply_info *ri, json_t **choice, int *ok)
{
    json_t *o = envelope(ri, 1, ok), *choices = json_array();
    *choice = json_object();
    put(*choice, "index", json_integer(0), ok);
    json_incref(*choice);
    push(choices, *choice, ok);
    put(o, "choices", choices, ok);
    if (ri->include_usage) put(o, "usage", json_null(), ok);
    return o;
}

char *srv_event_start(const srv_reply_info *ri)
{
    int ok = 1;
    json_t *ch, *o = chunk(ri, &ch, &ok), *d = json_object();
    put(d, "role", json_string("assistant"), &ok);
    put(d, "content", json_string(""), &ok);
    put(ch, "delta", d, &ok);
    put(ch, "logprobs", json_null(), &ok);
    put(ch, "finish_reason", json_null(), &ok);
    json_decref(ch);
    return event(o, ok);
}

char *srv_event_delta(const srv_reply_info *ri, const mf_delta *d)
{
    int ok = 1;
    json_t *ch, *o = chunk(ri, &ch, &ok);
    if (ri->kind == SRV_CHAT) {
        json_t *delta = json_object();
        if (d->kind == MF_DELTA_TOOL_CALL) {
            json_t *calls = json_array();
            push(calls, tool_call_obj(d->tool_id, d->tool_name, d->text, d->len, d->tool_index, &ok), &ok);
            put(delta, "tool_calls", calls, &ok);
        } else {
            put(delta, d->kind == MF_DELTA_REASONING ? "reasoning_content" : "content", srv_json_text(d->text, d->len),
                &ok);
        }
        put(ch, "delta", delta, &ok);
        put(ch, "logprobs", d->n_lp ? chat_logprobs(ri, d->lp, d->n_lp, &ok) : json_null(), &ok);
    } else {
        long long off = 0; /* a chunk's offsets start at its own text */
        put(ch, "text", srv_json_text(d->text, d->len), &ok);
        put(ch, "logprobs", d->n_lp ? completion_logprobs(ri, d->lp, d->n_lp, &off, &ok) : json_null(), &ok);
    }
    put(ch, "finish_reason", json_null(), &ok);
    json_decref(ch);
    return event(o, ok);
}

char *srv_event_finish(const srv_reply_info *ri, const mf_gen_result *r)
{
    int ok = 1;
    json_t *ch, *o = chunk(ri, &ch, &ok);
    if (ri->kind == SRV_CHAT) put(ch, "delta", json_object(), &ok);
    else put(ch, "text", json_string(""), &ok);
    put(ch, "logprobs", json_null(), &ok);
    put(ch, "finish_reason", finish_json(r->finish), &ok);
    json_decref(ch);
    char *fin = event(o, ok), *use = NULL;
    if (ri->include_usage) {
        ok = 1;
        json_t *u = envelope(ri, 1, &ok);
        put(u, "choices", json_array(), &ok);
        put(u, "usage", usage_obj(r, &ok), &ok);
        use = event(u, ok);
    }
    static const char done[] = "data: [DONE]\n\n";
    size_t nf = fin ? strlen(fin) : 0, nu = use ? strlen(use) : 0;
    char *s = fin && (use || !ri->include_usage) ? malloc(nf + nu + sizeof done) : NULL;
    if (s) {
        memcpy(s, fin, nf);
        if (use) memcpy(s + nf, use, nu);
        memcpy(s + nf + nu, done, sizeof done);
    }
    free(fin);
    free(use);
    return s;
}

char *srv_event_error(const srv_error *e)
{
    int ok = 1;
    json_t *o = error_obj(e, &ok);
    return event(o, ok);
}
