/* http.c — routes, bodies, authentication, answers and streams over libmicrohttpd
 * (http.h says what each route does). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"

struct srv_http {
    srv_http_opts o;
    srv_queue *q;
    struct MHD_Daemon *d;
    int port;
};

enum route { R_NONE, R_CHAT, R_COMPLETIONS, R_MODELS, R_HEALTH, R_METRICS };

/* One request (MHD's per-request pointer). */
typedef struct conn {
    srv_http *h;
    struct MHD_Connection *mc;
    int route;
    char method[16], path[96]; /* for the log, cut and with controls replaced */
    double t0;
    char *body;
    size_t n_body, cap_body;
    int too_large, answered;
    int status;     /* of the answer queued, for the log and metrics */
    char note[160]; /* the log's tail: tokens and finish, or the error code */
    srv_job *job;
    /* streaming */
    srv_reply_info ri;
    char id[48], *out;
    size_t n_out, off_out;
    int phase; /* 0 nothing sent, 1 streaming, 2 end sent */
} conn;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void copy_printable(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < cap; i++)
        dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7F || s[i] == '"' ? '?' : s[i];
    dst[i] = 0;
}

/* ---------------------------------------------------------------- answers */

static enum MHD_Result answer(conn *c, int status, char *body, const char *type)
{
    if (!body) {
        status = 500;
        body = strdup(
            "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
    }
    if (!body) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 405)
        MHD_add_response_header(r, "Allow", c->route == R_CHAT || c->route == R_COMPLETIONS ? "POST" : "GET, HEAD");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result ret = MHD_queue_response(c->mc, (unsigned)status, r);
    MHD_destroy_response(r);
    c->status = status;
    c->answered = 1;
    return ret;
}

static enum MHD_Result answer_error(conn *c, const srv_error *e)
{
    if (!c->note[0]) snprintf(c->note, sizeof c->note, "error=%s", e->code ? e->code : "-");
    return answer(c, e->status, srv_reply_error(e), "application/json");
}

static enum MHD_Result fail(conn *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result fail(conn *c, int status, const char *code, const char *fmt, ...)
{
    srv_error e = {.status = status, .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return answer_error(c, &e);
}

/* ---------------------------------------------------------------- the client */

/* 1 when the peer has closed the connection (or its sending side): a read would give EOF. */
static int client_gone(conn *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return 1;
    char b;
    ssize_t r = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void random_id(char *out, size_t cap, const char *prefix)
{
    unsigned char r[12];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) { /* never expected: fall back to the clock */
        double t = now_s();
        memcpy(r, &t, sizeof t);
        memset(r + sizeof t, 0x5A, sizeof r - sizeof t);
    }
    int o = snprintf(out, cap, "%s", prefix);
    for (size_t i = 0; i < sizeof r && o + 2 < (int)cap; i++) o += snprintf(out + o, cap - (size_t)o, "%02x", r[i]);
}

/* ---------------------------------------------------------------- generation requests */

/* Renders and tokenizes; 0 with j->prompt set, or -1 with e. */
static int make_prompt(srv_http *h, const srv_request *rq, srv_job *j, srv_error *e)
{
    srv_queue *q = h->q;
    const mf_model *m = srv_queue_model(q);
    int fmt = srv_queue_format(q);
    mf_err err;
    char *text = NULL;
    const char *prompt;
    int parse_special = 0;
    if (rq->kind == SRV_CHAT) {
        char date[16];
        time_t now = time(NULL);
        struct tm tmv;
        strftime(date, sizeof date, "%Y-%m-%d", localtime_r(&now, &tmv));
        mf_chat_opts co = {.reasoning = rq->reasoning_effort, .date = date};
        if (srv_chat_opts_set_tools(&co, rq->tools_json, &err))
            return srv_err(e, 400, "unsupported_parameter", "tools", "%s", err.msg);
        text = mf_chat_render_conv(fmt, rq->msgs, rq->n_msgs, &co, 1, &err);
        if (!text) return srv_err(e, 400, "invalid_value", "messages", "%s", err.msg);
        prompt = text;
        parse_special = fmt != MF_CHAT_NONE; /* a template's special tokens are markup */
    } else {
        prompt = rq->prompt;
    }
    size_t len = strlen(prompt);
    int64_t n = mf_tokenize(m->tok, prompt, len, 1, parse_special, NULL, 0, &err);
    int n_ctx = srv_queue_n_ctx(q);
    int rc = 0;
    if (n < 0) rc = srv_err(e, 400, "invalid_value", NULL, "%s", err.msg);
    else if (n > n_ctx)
        rc = srv_err(e, 400, "context_length_exceeded", rq->kind == SRV_CHAT ? "messages" : "prompt",
                     "the prompt has %lld tokens but the context holds %d (--ctx)", (long long)n, n_ctx);
    else if (!(j->prompt = malloc(sizeof(int32_t) * (size_t)(n ? n : 1))))
        rc = srv_err(e, 500, NULL, NULL, "out of memory");
    else if (mf_tokenize(m->tok, prompt, len, 1, parse_special, j->prompt, n, &err) != n)
        rc = srv_err(e, 500, NULL, NULL, "tokenizing the prompt twice gave different counts");
    else j->n_prompt = (int)n;
    free(text);
    return rc;
}

static void note_result(conn *c, const mf_gen_result *r)
{
    snprintf(c->note, sizeof c->note, "prompt=%d cached=%d completion=%d finish=%s", r->n_prompt, r->n_cached,
             r->n_generated, mf_finish_name(r->finish));
}

/* The error of a job that ended without an answer, or with an engine error. */
static void job_error(const srv_job *j, srv_error *e)
{
    if (j->refused) *e = j->error;
    else if (j->shutdown) srv_err(e, 503, "shutting_down", NULL, "the server is shutting down");
    else srv_err(e, 500, "engine_error", NULL, "%s", j->result.error[0] ? j->result.error : "the generation failed");
}

/* Waits until the job runs (wait_done: ends), giving up when the client leaves. Returns
 * the job's state, or -1 when the client went away (the job is then cancelled). */
static int wait_job(conn *c, int wait_done)
{
    srv_queue *q = c->h->q;
    for (;;) {
        int st = srv_job_wait(q, c->job, 100, wait_done, NULL, NULL);
        if (st == SRV_DONE || (st == SRV_RUNNING && !wait_done)) return st;
        if (client_gone(c)) {
            srv_queue_cancel(q, c->job);
            return -1;
        }
    }
}

/* Streaming: fills c->out with the next events; 0, or -1 when the stream must end now
 * (the client left). */
static int refill(conn *c)
{
    srv_queue *q = c->h->q;
    free(c->out);
    c->out = NULL;
    c->n_out = c->off_out = 0;
    if (c->phase == 0) {
        c->phase = 1;
        if (c->ri.kind == SRV_CHAT) {
            c->out = srv_event_start(&c->ri);
            c->n_out = c->out ? strlen(c->out) : 0;
            return 0;
        }
    }
    for (;;) {
        srv_piece *p = NULL;
        int n = 0;
        int st = srv_job_wait(q, c->job, 100, 0, &p, &n);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        for (int i = 0; f && i < n; i++) {
            char *ev = srv_event_delta(&c->ri, &p[i].d);
            if (ev) fputs(ev, f);
            free(ev);
        }
        srv_pieces_free(p, n);
        if (st == SRV_DONE && f) {
            const mf_gen_result *r = &c->job->result;
            char *ev;
            srv_error e;
            if (!c->job->refused && !c->job->shutdown && r->finish != MF_FINISH_ERROR &&
                r->finish != MF_FINISH_CANCELLED) {
                ev = srv_event_finish(&c->ri, r);
                note_result(c, r);
            } else {
                job_error(c->job, &e);
                ev = srv_event_error(&e);
                snprintf(c->note, sizeof c->note, "error=%s (after the stream started)", e.code ? e.code : "-");
            }
            if (ev) fputs(ev, f);
            free(ev);
            c->phase = 2;
        }
        if (!f || fclose(f)) {
            free(buf);
            return -1;
        }
        if (len || c->phase == 2) {
            c->out = buf;
            c->n_out = len;
            return 0;
        }
        free(buf);
        if (client_gone(c)) {
            srv_queue_cancel(q, c->job);
            return -1;
        }
    }
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    conn *c = cls;
    (void)pos;
    while (c->off_out == c->n_out) {
        if (c->phase == 2) return MHD_CONTENT_READER_END_OF_STREAM;
        if (refill(c)) {
            snprintf(c->note, sizeof c->note, "client gone");
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    size_t k = c->n_out - c->off_out < max ? c->n_out - c->off_out : max;
    memcpy(buf, c->out + c->off_out, k);
    c->off_out += k;
    return (ssize_t)k;
}

static enum MHD_Result generate(conn *c, int kind)
{
    srv_http *h = c->h;
    int ready = srv_queue_ready(h->q);
    if (ready == 0) return fail(c, 503, "model_loading", "the model is still loading");
    if (ready < 0) return fail(c, 503, "model_failed", "the model failed to load");
    srv_request rq;
    srv_error e;
    c->job = srv_job_new();
    if (!c->job) return fail(c, 500, NULL, "out of memory");
    if (srv_request_parse(kind, c->body ? c->body : "", c->n_body, &rq, &e) || make_prompt(h, &rq, c->job, &e)) {
        srv_request_free(&rq);
        return answer_error(c, &e);
    }
    srv_job *j = c->job;
    j->gen = rq.gen;
    j->gen.stop = NULL; /* the request is freed before the job ends: the stop strings are copied */
    j->gen.format = kind == SRV_CHAT ? srv_queue_format(h->q) : MF_CHAT_NONE;
    j->want_pieces = rq.stream;
    if (!rq.seed_given) {
        uint64_t s;
        if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) s = (uint64_t)time(NULL);
        j->gen.sampler.seed = s;
    }
    char **stops = NULL;
    if (rq.gen.n_stop) {
        /* one block: the pointer array, then the strings */
        size_t total = sizeof(char *) * (size_t)rq.gen.n_stop;
        for (int i = 0; i < rq.gen.n_stop; i++) total += strlen(rq.gen.stop[i]) + 1;
        stops = malloc(total);
        if (!stops) {
            srv_request_free(&rq);
            return fail(c, 500, NULL, "out of memory");
        }
        char *p = (char *)(stops + rq.gen.n_stop);
        for (int i = 0; i < rq.gen.n_stop; i++) {
            stops[i] = strcpy(p, rq.gen.stop[i]);
            p += strlen(p) + 1;
        }
        j->gen.stop = (const char *const *)stops;
    }
    j->stop_mem = stops;
    random_id(c->id, sizeof c->id, kind == SRV_CHAT ? "chatcmpl-" : "cmpl-");
    c->ri = (srv_reply_info){.kind = kind,
                             .id = c->id,
                             .model = h->o.model_id,
                             .created = (long long)time(NULL),
                             .include_usage = rq.stream && rq.include_usage,
                             .tok = srv_queue_model(h->q)->tok};
    int stream = rq.stream;
    srv_request_free(&rq);
    if (srv_queue_push(h->q, j, &e)) return answer_error(c, &e);

    int st = wait_job(c, !stream);
    if (st < 0) {
        snprintf(c->note, sizeof c->note, "client gone");
        c->status = 499;
        return MHD_NO;
    }
    if (st == SRV_DONE && (j->refused || j->shutdown || j->result.finish == MF_FINISH_ERROR)) {
        job_error(j, &e);
        return answer_error(c, &e);
    }
    if (!stream) {
        note_result(c, &j->result);
        return answer(c, 200, srv_reply_final(&c->ri, &j->result, j->gen.logprobs ? &j->lp : NULL), "application/json");
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, c, NULL);
    if (!r) return fail(c, 500, NULL, "out of memory");
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c->mc, 200, r);
    MHD_destroy_response(r);
    c->status = 200;
    c->answered = 1;
    return ret;
}

/* ---------------------------------------------------------------- routing */

static int route_of(const char *url)
{
    static const struct {
        const char *path;
        int route;
    } routes[] = {
        {"/v1/chat/completions", R_CHAT}, {"/v1/completions", R_COMPLETIONS},
        {"/v1/models", R_MODELS},         {"/health", R_HEALTH},
        {"/metrics", R_METRICS},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].path)) return routes[i].route;
    return R_NONE;
}

/* Constant-time comparison of the presented key with ours (no early exit on a mismatch). */
static int key_ok(const char *want, const char *auth)
{
    if (!auth || strncmp(auth, "Bearer ", 7)) return 0;
    const char *got = auth + 7;
    size_t nw = strlen(want), ng = strlen(got);
    unsigned diff = (unsigned)(nw ^ ng);
    for (size_t i = 0; i < nw; i++) diff |= (unsigned char)want[i] ^ (unsigned char)(i < ng ? got[i] : 0);
    return diff == 0;
}

static enum MHD_Result get_route(conn *c)
{
    srv_http *h = c->h;
    if (c->route == R_HEALTH) {
        int r = srv_queue_ready(h->q);
        return answer(c, r == 1 ? 200 : 503,
                      strdup(r == 1   ? "{\"status\":\"ok\"}"
                             : r == 0 ? "{\"status\":\"loading\"}"
                                      : "{\"status\":\"failed\"}"),
                      "application/json");
    }
    if (c->route == R_METRICS) {
        srv_metrics m;
        srv_queue_metrics(h->q, &m);
        return answer(c, 200, srv_metrics_text(&m), "text/plain; version=0.0.4; charset=utf-8");
    }
    return answer(c, 200, srv_reply_models(h->o.model_id, (long long)time(NULL)), "application/json");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    srv_http *h = cls;
    (void)version;
    conn *c = *ctx;
    if (!c) { /* the headers are in: route, method, key, announced size */
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        *ctx = c;
        c->h = h;
        c->mc = mc;
        c->t0 = now_s();
        copy_printable(c->method, sizeof c->method, method);
        copy_printable(c->path, sizeof c->path, url);
        c->route = route_of(url);
        int post = c->route == R_CHAT || c->route == R_COMPLETIONS;
        int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (c->route == R_NONE) return fail(c, 404, "not_found", "no such route: %s %s", c->method, c->path);
        if (post ? strcmp(method, "POST") : !is_get)
            return fail(c, 405, "method_not_allowed", "%s is not allowed on %s (use %s)", c->method, c->path,
                        post ? "POST" : "GET");
        if (h->o.api_key && !strncmp(url, "/v1/", 4) &&
            !key_ok(h->o.api_key, MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization")))
            return fail(c, 401, "invalid_api_key",
                        "missing or wrong API key (send the header 'Authorization: Bearer KEY')");
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
        if (post && cl && strtoull(cl, NULL, 10) > h->o.max_body)
            return fail(c, 413, "request_too_large", "the body has %s bytes, the limit is %zu (--max-body)", cl,
                        h->o.max_body);
        if (!post) return get_route(c);
        return MHD_YES;
    }
    if (c->answered) {
        *upload_size = 0;
        return MHD_YES;
    } /* the rest of a refused body */
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (c->too_large || c->n_body + n > h->o.max_body) { /* chunked, without Content-Length */
            c->too_large = 1;
            return MHD_YES;
        }
        if (c->n_body + n + 1 > c->cap_body) {
            size_t cap = c->cap_body ? c->cap_body : 4096;
            while (cap < c->n_body + n + 1) cap *= 2;
            char *b = realloc(c->body, cap);
            if (!b) return MHD_NO;
            c->body = b;
            c->cap_body = cap;
        }
        memcpy(c->body + c->n_body, upload, n);
        c->n_body += n;
        return MHD_YES;
    }
    if (c->too_large)
        return fail(c, 413, "request_too_large", "the body is over the limit of %zu bytes (--max-body)", h->o.max_body);
    return generate(c, c->route == R_CHAT ? SRV_CHAT : SRV_COMPLETION);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **ctx, enum MHD_RequestTerminationCode toe)
{
    srv_http *h = cls;
    conn *c = *ctx;
    (void)mc;
    if (!c) return;
    *ctx = NULL;
    if (c->job) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
            srv_queue_cancel(h->q, c->job); /* a no-op once it is done */
            if (c->status == 200 && c->phase != 2) snprintf(c->note, sizeof c->note, "client gone");
        }
        srv_job_release(h->q, c->job);
    }
    if (c->status && c->status != 499) srv_queue_count(h->q, c->status);
    char addr[INET6_ADDRSTRLEN] = "?";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr, sizeof addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr, sizeof addr);
    }
    fprintf(stderr, "minfer serve: %s \"%s %s\" %d %.1f ms%s%s\n", addr, c->method, c->path, c->status ? c->status : 0,
            (now_s() - c->t0) * 1e3, c->note[0] ? " " : "", c->note);
    free(c->out);
    free(c->body);
    free(c);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    fprintf(stderr, "minfer serve: libmicrohttpd: %s\n", line);
}

/* ---------------------------------------------------------------- the daemon */

srv_http *srv_http_start(const srv_http_opts *o, srv_queue *q, mf_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int rc = getaddrinfo(o->host, NULL, &hints, &ai);
    if (rc || !ai) {
        mf_errf(err, "cannot resolve host '%s': %s", o->host, gai_strerror(rc));
        return NULL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    int v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (v6) ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)o->port);
    else ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)o->port);

    srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    h->o = *o;
    h->q = q;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                            NULL, /* first, so that it covers every message */
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)o->max_connections, MHD_OPTION_END);
    if (!h->d) {
        mf_errf(err, "cannot listen on %s port %d (in use, or not an address of this machine)", o->host, o->port);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : o->port;
    return h;
}

int srv_http_port(const srv_http *h) { return h->port; }

void srv_http_quiesce(srv_http *h)
{
    MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET) close(s);
}

void srv_http_stop(srv_http *h)
{
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
