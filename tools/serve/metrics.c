/* metrics.c — Prometheus text for the server's counters (metrics.h). */
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"

/* the statuses the server answers with; the last slot counts any other */
static const int statuses[SRV_N_STATUS] = {200, 400, 401, 404, 405, 413, 500, 503, 431, 0};

void srv_metrics_count(srv_metrics *m, int status)
{
    int i = 0;
    while (i < SRV_N_STATUS - 1 && statuses[i] != status) i++;
    m->by_status[i]++;
}

char *srv_metrics_text(const srv_metrics *m)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f) return NULL;
    fprintf(f,
            "# HELP minfer_ready 1 when the model is loaded and requests are served.\n"
            "# TYPE minfer_ready gauge\nminfer_ready %d\n",
            m->ready);
    fprintf(f, "# HELP minfer_http_requests_total HTTP requests answered, by status code.\n"
               "# TYPE minfer_http_requests_total counter\n");
    for (int i = 0; i < SRV_N_STATUS; i++)
        if (statuses[i])
            fprintf(f, "minfer_http_requests_total{code=\"%d\"} %llu\n", statuses[i],
                    (unsigned long long)m->by_status[i]);
        else fprintf(f, "minfer_http_requests_total{code=\"other\"} %llu\n", (unsigned long long)m->by_status[i]);
#define COUNTER(name, help, v) \
    fprintf(f, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n", (unsigned long long)(v))
#define GAUGE(name, help, fmt, v) fprintf(f, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " " fmt "\n", v)
    COUNTER("minfer_prompt_tokens_total", "Prompt tokens of started generations (cached ones included).",
            m->prompt_tokens);
    COUNTER("minfer_cached_prompt_tokens_total", "Prompt tokens reused from a sequence's cache.", m->cached_tokens);
    COUNTER("minfer_generated_tokens_total", "Tokens generated.", m->generated_tokens);
    COUNTER("minfer_batch_steps_total", "Forward steps of the engine (each carries every active sequence's rows).",
            m->steps);
    COUNTER("minfer_requests_cancelled_total", "Generations cancelled because the client went away.", m->cancelled);
    GAUGE("minfer_queue_depth", "Requests waiting for a free sequence.", "%d", m->queue_depth);
    GAUGE("minfer_queue_capacity", "Requests that may wait before new ones get 503.", "%d", m->queue_capacity);
    GAUGE("minfer_active_sequences", "Sequences generating now.", "%d", m->active);
    GAUGE("minfer_sequences", "Sequences the engine decodes together.", "%d", m->n_seq);
    GAUGE("minfer_decode_tokens_per_second", "Decode rate of the engine (generated tokens per second of decoding).",
          "%.3f", m->decode_tok_s);
#undef COUNTER
#undef GAUGE
    if (fclose(f)) {
        free(s);
        return NULL;
    }
    return s;
}
