/* cmd_serve.c — `minfer serve`: an OpenAI-compatible HTTP server (tools/serve/, docs/serve.md).
 *
 * The main thread parses the options, starts the engine thread (which loads the model: until
 * it is ready /health says 503) and the HTTP daemon, then waits for SIGINT or SIGTERM. On
 * the first it stops accepting connections, lets the running answers finish for --grace seconds,
 * cancels what is left, closes the connections and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"

#ifndef MF_HAVE_SERVE

int mf_cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "minfer serve: this build has no server: it was configured with MINFER_SERVE=OFF, or without "
                    "libmicrohttpd-dev and libjansson-dev (tools/deps.sh installs them; then configure with "
                    "-DMINFER_SERVE=ON and build again)\n");
    return 1;
}

#else

#include "http.h"
#include "queue.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: minfer serve [-m MODEL] [options]\n"
        "  -m, --model FILE        GGUF model (default: $MINFER_MODEL, weights/*.gguf, ../shared/models/stories260K.gguf)\n"
        "      --host ADDR         address to listen on (default 127.0.0.1; 0.0.0.0: every interface)\n"
        "      --port N            TCP port (default 8080; 0: any free port, printed)\n"
        "      --parallel N        sequences decoded together (default 1)\n"
        "      --queue N           requests that may wait for a sequence before 503 (default 64)\n"
        "  -c, --ctx N             context of each sequence (default: the model's, at most 4096)\n"
        "      --api-key KEY       require 'Authorization: Bearer KEY' on /v1/* (default: $MINFER_API_KEY, else none)\n"
        "      --alias NAME        the model's name in /v1/models and replies (default: the file's name)\n"
        "      --chat-format NAME  zephyr | llama2 | chatml | harmony | none (default: from the model)\n"
        "      --max-body BYTES    largest request body (default 8388608)\n"
        "      --timeout S         close a connection idle for S seconds (default 60)\n"
        "      --max-connections N (default 256)\n"
        "      --grace S           on SIGTERM/SIGINT, seconds running answers may take to finish (default 10)\n"
        "  -t, --threads N         CPU threads (default: one per core)\n"
        "      --device D          auto | cpu | cuda (default auto)\n"
        "      --kv-f16            store the KV cache in binary16 (the default)\n"
        "      --kv-f32            store the KV cache in float32\n");
}

typedef struct serve_args {
    const char *model, *host, *api_key, *alias, *chat_format, *device;
    int port, parallel, queue, n_ctx, timeout, max_conn, grace, threads, kv_f16;
    int64_t max_body;
} serve_args;

static int parse(int argc, char **argv, serve_args *a)
{
    memset(a, 0, sizeof *a);
    a->host = "127.0.0.1";
    a->port = 8080;
    a->parallel = 1;
    a->queue = 64;
    a->timeout = 60;
    a->max_conn = 256;
    a->grace = 10;
    a->device = "auto";
    a->kv_f16 = -1;
    a->max_body = 8 << 20;
    const char *C = "serve";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        int mb = 0;
#define VAL()                                              \
    do {                                                   \
        if (!(v = drv_next(C, argc, argv, &i))) return -1; \
    } while (0)
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            VAL();
            a->model = v;
        } else if (!strcmp(o, "--host")) {
            VAL();
            a->host = v;
        } else if (!strcmp(o, "--port")) {
            VAL();
            if (drv_int(C, o, v, 0, 65535, &a->port)) return -1;
        } else if (!strcmp(o, "--parallel")) {
            VAL();
            if (drv_int(C, o, v, 1, 256, &a->parallel)) return -1;
        } else if (!strcmp(o, "--queue")) {
            VAL();
            if (drv_int(C, o, v, 0, 1 << 20, &a->queue)) return -1;
        } else if (!strcmp(o, "-c") || !strcmp(o, "--ctx")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 24, &a->n_ctx)) return -1;
        } else if (!strcmp(o, "--api-key")) {
            VAL();
            a->api_key = v;
        } else if (!strcmp(o, "--alias")) {
            VAL();
            a->alias = v;
        } else if (!strcmp(o, "--chat-format")) {
            VAL();
            a->chat_format = v;
        } else if (!strcmp(o, "--max-body")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 30, &mb)) return -1;
            a->max_body = mb;
        } else if (!strcmp(o, "--timeout")) {
            VAL();
            if (drv_int(C, o, v, 1, 86400, &a->timeout)) return -1;
        } else if (!strcmp(o, "--max-connections")) {
            VAL();
            if (drv_int(C, o, v, 1, 65536, &a->max_conn)) return -1;
        } else if (!strcmp(o, "--grace")) {
            VAL();
            if (drv_int(C, o, v, 0, 3600, &a->grace)) return -1;
        } else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
            VAL();
            if (drv_int(C, o, v, 1, 1024, &a->threads)) return -1;
        } else if (!strcmp(o, "--device")) {
            VAL();
            a->device = v;
        } else if (!strcmp(o, "--kv-f16")) a->kv_f16 = 1;
        else if (!strcmp(o, "--kv-f32")) a->kv_f16 = 0;
        else {
            fprintf(stderr, "minfer serve: unknown option '%s' (see minfer serve --help)\n", o);
            return -1;
        }
#undef VAL
    }
    if (!a->api_key) a->api_key = getenv("MINFER_API_KEY");
    if (a->api_key && !*a->api_key) {
        fprintf(stderr, "minfer serve: the API key is empty\n");
        return -1;
    }
    if (a->chat_format && mf_chat_format_from_name(a->chat_format) < 0) {
        fprintf(stderr, "minfer serve: unknown chat format '%s' (expected zephyr, llama2, chatml, harmony or none)\n",
                a->chat_format);
        return -1;
    }
    return 0;
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig) { got_signal = sig; }

int mf_cmd_serve(int argc, char **argv)
{
    serve_args a;
    int p = parse(argc, argv, &a);
    if (p) return p > 0 ? 0 : 2;
    const char *path = a.model ? a.model : drv_default_model();
    if (!path) return 1;
    const char *base = strrchr(path, '/');
    const char *model_id = a.alias ? a.alias : base ? base + 1 : path;

    /* SIGINT and SIGTERM set a flag that the loop below reads. A handler rather than a
     * blocked signal: libraries start threads of their own (OpenBLAS at load time) that
     * would otherwise take the signal with its default action. A write to a closed socket
     * must not kill the server either. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    mf_err err;
    srv_queue_opts qo = {.model_path = path, .capacity = a.queue, .chat_format = a.chat_format};
    qo.batcher.session = mf_session_defaults();
    qo.batcher.session.device = a.device;
    qo.batcher.session.n_threads = a.threads;
    qo.batcher.session.n_ctx = a.n_ctx;
    qo.batcher.session.kv_f16 = a.kv_f16;
    qo.batcher.n_seq = a.parallel;
    srv_queue *q = srv_queue_start(&qo, &err);
    if (!q) {
        fprintf(stderr, "minfer serve: %s\n", err.msg);
        return 1;
    }
    srv_http_opts ho = {.host = a.host,
                        .port = a.port,
                        .api_key = a.api_key,
                        .max_body = (size_t)a.max_body,
                        .timeout_s = a.timeout,
                        .max_connections = a.max_conn,
                        .model_id = model_id};
    srv_http *h = srv_http_start(&ho, q, &err);
    if (!h) {
        fprintf(stderr, "minfer serve: %s\n", err.msg);
        srv_queue_stop(q, 0);
        srv_queue_free(q);
        return 1;
    }
    int v6 = strchr(a.host, ':') != NULL;
    fprintf(stderr, "minfer serve: listening on http://%s%s%s:%d (loading %s)\n", v6 ? "[" : "", a.host, v6 ? "]" : "",
            srv_http_port(h), path);

    int rc = 0, ready = 0;
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!got_signal) {
        nanosleep(&tick, NULL); /* a signal ends it early */
        if (got_signal || ready) continue;
        ready = srv_queue_ready(q);
        if (ready > 0) {
            int n_seq = srv_engine_n_seq(a.parallel);
            fprintf(stderr, "minfer serve: ready: %s, context %d per sequence, %d sequence%s%s, queue %d%s\n", model_id,
                    srv_queue_n_ctx(q), n_seq, n_seq == 1 ? "" : "s",
                    n_seq < a.parallel
                        ? " (this build decodes one sequence at a time until the library's batcher lands)"
                        : "",
                    a.queue, a.api_key ? ", API key required" : "");
        } else if (ready < 0) {
            fprintf(stderr, "minfer serve: %s\n", srv_queue_load_error(q));
            rc = 1;
            break;
        }
    }
    int sig = got_signal;
    if (sig)
        fprintf(stderr, "minfer serve: %s: stopping (running answers may take %d s)\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM", a.grace);
    srv_http_quiesce(h);
    srv_queue_stop(q, a.grace);
    srv_http_stop(h);
    srv_metrics m;
    srv_queue_metrics(q, &m);
    uint64_t answered = 0;
    for (int i = 0; i < SRV_N_STATUS; i++) answered += m.by_status[i];
    fprintf(stderr,
            "minfer serve: stopped: %llu requests answered, %llu prompt tokens, %llu generated, %llu cancelled\n",
            (unsigned long long)answered, (unsigned long long)m.prompt_tokens, (unsigned long long)m.generated_tokens,
            (unsigned long long)m.cancelled);
    srv_queue_free(q);
    return rc;
}

#endif
