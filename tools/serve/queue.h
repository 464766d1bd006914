/* queue.h — where HTTP threads and the engine thread meet.
 *
 * One engine thread owns the model and the batcher: it loads the model, then admits queued
 * jobs into free sequences (mf_batcher_submit), steps the batcher while any sequence is
 * active, and cancels the jobs whose clients left. HTTP threads (one per connection) push
 * jobs and wait for their events. Everything shared sits behind one mutex: the bounded
 * queue, each job's state and the deltas not yet sent, and the metrics. Each job has its
 * own condition variable, signalled when it has news.
 *
 * A job's life: QUEUED (waiting for a sequence) -> RUNNING (submitted; deltas arrive) ->
 * DONE (result set). A job can also go from QUEUED to DONE without running: the batcher
 * refused it (400 with the reason), the client left, or the server is stopping (503).
 * Jobs are reference-counted: the HTTP side and the engine side each hold one.
 */
#ifndef SRV_QUEUE_H
#define SRV_QUEUE_H

#include <pthread.h>

#include "engine.h"
#include "metrics.h"
#include "reply.h"
#include "request.h"

enum srv_job_state { SRV_QUEUED, SRV_RUNNING, SRV_DONE };

/* One delta, copied out of the engine's callback. */
typedef struct srv_piece {
    mf_delta d; /* text, tool_id, tool_name point into `mem` */
    char *mem;
    srv_lp_list lp;
} srv_piece;

typedef struct srv_job {
    /* input: set by the HTTP thread before srv_queue_push, read-only afterwards */
    int32_t *prompt;
    int n_prompt;
    mf_gen_params gen; /* gen.stop points into stop_mem */
    char **stop_mem;   /* the stop strings, owned (one block) */
    int want_pieces;   /* keep deltas (streaming) */
    /* shared state (under the queue's mutex) */
    int state;         /* enum srv_job_state */
    int cancel;        /* the client left */
    int shutdown;      /* ended by the server stopping */
    int id;            /* the batcher's request id while RUNNING */
    srv_piece *pieces; /* deltas not yet taken */
    int n_pieces, cap_pieces;
    srv_lp_list lp;       /* every delta's logprobs (non-streamed answers) */
    mf_gen_result result; /* DONE: a deep copy */
    srv_error error;      /* DONE without result: why (status 400 / 503) */
    int refused;          /* DONE because of `error` */
    int failed;           /* cancelled after a device error (in `error`) */
    int cancel_sent;      /* the engine asked the batcher to cancel it */
    struct srv_queue *owner;
    double t_queued, t_started;
    pthread_cond_t cv;
    int refs;
    struct srv_job *next; /* queue link */
} srv_job;

typedef struct srv_queue srv_queue;

typedef struct srv_queue_opts {
    const char *model_path;
    mf_batcher_opts batcher;
    int capacity;            /* jobs that may wait */
    const char *chat_format; /* NULL: from the model */
} srv_queue_opts;

/* Starts the engine thread, which loads the model. NULL with err if the thread cannot start. */
srv_queue *srv_queue_start(const srv_queue_opts *o, mf_err *err);
/* 0 loading, 1 ready, -1 failed (srv_queue_load_error says why). Once ready, the model, its
 * chat format and context size are fixed. */
int srv_queue_ready(srv_queue *q);
const char *srv_queue_load_error(srv_queue *q);
const mf_model *srv_queue_model(srv_queue *q);
int srv_queue_format(srv_queue *q);
int srv_queue_n_ctx(srv_queue *q);

srv_job *srv_job_new(void);
/* Drops the caller's reference (frees at the last). */
void srv_job_release(srv_queue *q, srv_job *j);
/* Queues the job (taking a reference for the engine): 0, or -1 with e (503: the queue is
 * full, the model is loading, the server is stopping). */
int srv_queue_push(srv_queue *q, srv_job *j, srv_error *e);
/* The client left: a queued job is dropped, a running one cancelled (frees its sequence). */
void srv_queue_cancel(srv_queue *q, srv_job *j);
/* Waits up to ms for the job to end or, unless until_done, for news of it (deltas when
 * pieces is not NULL, else its start), then returns its state; *pieces / *n receive the
 * deltas that arrived (the caller frees them with srv_pieces_free), if pieces is not NULL.
 * A caller that waits for the end must say until_done: a running job is not news, and
 * returning at once would make its wait loop spin. */
int srv_job_wait(srv_queue *q, srv_job *j, int ms, int until_done, srv_piece **pieces, int *n);
void srv_pieces_free(srv_piece *p, int n);

void srv_queue_count(srv_queue *q, int status);       /* an answered request, for metrics */
void srv_queue_metrics(srv_queue *q, srv_metrics *m); /* a snapshot */
/* Stops: queued jobs end with 503 at once, running ones may finish for grace_s seconds and
 * are then cancelled; the engine thread ends and the model is freed. */
void srv_queue_stop(srv_queue *q, double grace_s);
void srv_queue_free(srv_queue *q);

#endif
