/* metrics.h — the server's counters and their Prometheus text exposition (format 0.0.4).
 *
 *   minfer_ready                          1 when the model is loaded (gauge)
 *   minfer_http_requests_total{code="…"}  requests answered, by HTTP status (counter)
 *   minfer_prompt_tokens_total            prompt tokens evaluated or reused (counter)
 *   minfer_cached_prompt_tokens_total     of which reused from a cache (counter)
 *   minfer_generated_tokens_total         tokens generated (counter)
 *   minfer_requests_cancelled_total       generations cancelled because the client left
 *   minfer_queue_depth / _capacity        requests waiting for a sequence (gauges)
 *   minfer_active_sequences / minfer_sequences   sequences generating / available
 *   minfer_decode_tokens_per_second       the engine's decode rate (gauge)
 *   minfer_batch_steps_total              forward steps of the engine: fewer steps than tokens
 *                                         generated means sequences shared steps (counter)
 *
 * Plain data: the caller keeps it under its lock and renders a copy.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stdint.h>

enum { SRV_N_STATUS = 10 };

typedef struct srv_metrics {
    int ready;
    uint64_t by_status[SRV_N_STATUS]; /* index: srv_metrics_status_index */
    uint64_t prompt_tokens, cached_tokens, generated_tokens, cancelled, steps;
    int queue_depth, queue_capacity, active, n_seq;
    double decode_tok_s;
} srv_metrics;

/* Counts one answered request. */
void srv_metrics_count(srv_metrics *m, int status);
/* The exposition text (malloc'd), NULL when out of memory. */
char *srv_metrics_text(const srv_metrics *m);

#endif
