/* http.h — the HTTP server (libmicrohttpd, one thread per connection) in front of the queue.
 *
 * Routes:
 *   POST /v1/chat/completions   chat (request.h); JSON reply or text/event-stream (reply.h)
 *   POST /v1/completions        raw prompt, same
 *   GET  /v1/models             the one model
 *   GET  /health                200 {"status":"ok"} when ready, 503 {"status":"loading"}
 *   GET  /metrics               Prometheus text (metrics.h)
 * Errors are OpenAI error objects: 400 (malformed JSON, wrong types or values, a prompt that
 * does not fit the context: the message gives both lengths), 401 (with an API key: a missing
 * or wrong "Authorization: Bearer KEY" on /v1/ routes; /health and /metrics stay open for probes
 * and scrapers), 404, 405 (with Allow), 413 (a body over the limit), 503 (queue full,
 * loading, stopping), 500 (the engine failed).
 *
 * A request's thread renders and tokenizes the prompt, queues the job and waits for it,
 * checking every 100 ms whether the client is still there (a closed connection, including
 * one closed only for sending, counts as gone): a client that leaves cancels its job and
 * frees its sequence. A stream starts (status 200) only once its job runs, so refusals still
 * get their status. One access-log line per request on stderr.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stddef.h>

#include "queue.h"

typedef struct srv_http_opts {
    const char *host;    /* address to bind (numeric or a name) */
    int port;            /* 0: any free port (srv_http_port tells which) */
    const char *api_key; /* NULL: no authentication */
    size_t max_body;     /* bytes */
    int timeout_s;       /* idle connection timeout */
    int max_connections;
    const char *model_id; /* the name /v1/models and replies give */
} srv_http_opts;

typedef struct srv_http srv_http;

srv_http *srv_http_start(const srv_http_opts *o, srv_queue *q, mf_err *err);
int srv_http_port(const srv_http *h);
/* Stops accepting connections (in-flight requests go on). */
void srv_http_quiesce(srv_http *h);
/* Closes every connection, waits for their threads, frees. */
void srv_http_stop(srv_http *h);

#endif
