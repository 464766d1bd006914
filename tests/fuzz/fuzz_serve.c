/* fuzz_serve.c — libFuzzer entry point: the server's request parser (tools/serve/request.c)
 * and the reply text encoder on any bytes.
 *
 * Input layout: byte 0 picks the endpoint (even: chat, odd: completions); the rest is the
 * request body. Checked: a refusal has status 400 (or 500 out of memory), a message, and
 * an error object that is valid JSON; an accepted chat request has at least one message,
 * roles in range, and tool calls with id, name and arguments; every accepted request's
 * numbers are in the documented ranges; any bytes become a valid JSON string. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "reply.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int kind = data[0] & 1 ? SRV_COMPLETION : SRV_CHAT;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    srv_request rq;
    srv_error e;
    if (srv_request_parse(kind, body, n, &rq, &e)) {
        if ((e.status != 400 && e.status != 500) || !e.message[0]) abort();
        char *s = srv_reply_error(&e);
        json_t *j = s ? json_loads(s, 0, NULL) : NULL;
        if (s && !j) abort();
        json_decref(j);
        free(s);
    } else {
        if (kind == SRV_CHAT && rq.n_msgs < 1) abort();
        if (kind == SRV_COMPLETION && !rq.prompt) abort();
        for (int i = 0; i < rq.n_msgs; i++) {
            const mf_chat_msg *m = &rq.msgs[i];
            if (m->role < MF_ROLE_SYSTEM || m->role > MF_ROLE_TOOL) abort();
            if (m->content) (void)strlen(m->content);
            for (int k = 0; k < m->n_tool_calls; k++)
                if (!m->tool_calls[k].id || !m->tool_calls[k].name || !m->tool_calls[k].arguments) abort();
        }
        const mf_sampler_params *sp = &rq.gen.sampler;
        if (!(sp->temp >= 0 && sp->temp <= 2) || !(sp->top_p >= 0 && sp->top_p <= 1) || sp->top_k < 0) abort();
        if (rq.gen.max_tokens == 0 || rq.gen.max_tokens < -1 || rq.gen.top_logprobs < 0 || rq.gen.top_logprobs > 20)
            abort();
        for (int i = 0; i < rq.gen.n_stop; i++)
            if (!rq.gen.stop[i][0]) abort();
        srv_request_free(&rq);
    }
    json_t *t = srv_json_text(body, n);
    if (t) {
        char *s = json_dumps(t, JSON_ENCODE_ANY);
        if (!s) abort();
        free(s);
        json_decref(t);
    }
    return 0;
}
