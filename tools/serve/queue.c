/* queue.c — the bounded queue, the jobs and the engine thread (queue.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"

struct srv_queue {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the engine thread: work, a cancel, stop */
    pthread_cond_t idle; /* srv_queue_stop: a running job ended */
    srv_queue_opts o;
    pthread_t thread;
    int ready; /* 0 loading, 1 ready, -1 failed */
    char load_error[1024];
    mf_model *m;   /* freed by srv_queue_free: HTTP threads tokenize with it */
    mf_batcher *b; /* the engine thread's alone */
    int fmt, n_ctx, n_seq;
    srv_job *head, *tail;
    int depth;
    srv_job **running;
    int n_running;
    int stopping; /* 1: no new jobs; 2: cancel the running ones */
    srv_metrics met;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double deadline)
{
    double s = deadline > 0 ? deadline : 0;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    pthread_cond_timedwait(cv, mu, &ts);
}

static void cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

/* ---------------------------------------------------------------- jobs */

srv_job *srv_job_new(void)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    cond_init_monotonic(&j->cv);
    j->refs = 1;
    j->id = -1;
    return j;
}

void srv_pieces_free(srv_piece *p, int n)
{
    for (int i = 0; i < n; i++) {
        free(p[i].mem);
        srv_lp_free(&p[i].lp);
    }
    free(p);
}

static void job_free(srv_job *j)
{
    srv_pieces_free(j->pieces, j->n_pieces);
    srv_lp_free(&j->lp);
    mf_gen_result_free(&j->result);
    free(j->prompt);
    free(j->stop_mem);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void srv_job_release(srv_queue *q, srv_job *j)
{
    if (!j) return;
    pthread_mutex_lock(&q->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&q->mu);
    if (last) job_free(j);
}

/* Under the lock: the job ends without running (the engine's reference goes). */
static void refuse_locked(srv_job *j, int status, const char *code, const char *msg)
{
    j->refused = 1;
    srv_err(&j->error, status, code, NULL, "%s", msg);
    j->state = SRV_DONE;
    pthread_cond_broadcast(&j->cv);
    if (--j->refs == 0) job_free(j);
}

static char *dup_or_null(const char *s, int *ok)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *ok = 0;
    return d;
}

/* ---------------------------------------------------------------- engine callbacks
 * Called by the batcher on the engine thread, without the lock held. */

static int on_delta(void *user, const mf_delta *d)
{
    srv_job *j = user;
    srv_queue *q = j->owner;
    pthread_mutex_lock(&q->mu);
    int ok = 1;
    if (j->want_pieces) {
        if (j->n_pieces == j->cap_pieces) {
            int cap = j->cap_pieces ? 2 * j->cap_pieces : 16;
            srv_piece *p = realloc(j->pieces, sizeof *p * (size_t)cap);
            if (p) {
                j->pieces = p;
                j->cap_pieces = cap;
            } else ok = 0;
        }
        if (ok) {
            size_t ni = d->tool_id ? strlen(d->tool_id) + 1 : 0, nn = d->tool_name ? strlen(d->tool_name) + 1 : 0;
            srv_piece *p = &j->pieces[j->n_pieces];
            memset(p, 0, sizeof *p);
            p->mem = malloc(d->len + ni + nn + 1);
            if (!p->mem || (d->n_lp && srv_lp_append(&p->lp, d->lp, d->n_lp))) {
                free(p->mem);
                srv_lp_free(&p->lp);
                ok = 0;
            } else {
                p->d = *d;
                memcpy(p->mem, d->text, d->len);
                p->mem[d->len] = 0;
                p->d.text = p->mem;
                if (ni) { p->d.tool_id = memcpy(p->mem + d->len + 1, d->tool_id, ni); }
                if (nn) { p->d.tool_name = memcpy(p->mem + d->len + 1 + ni, d->tool_name, nn); }
                p->d.lp = p->lp.v;
                j->n_pieces++;
            }
        }
    } else if (d->n_lp && j->gen.logprobs) {
        ok = srv_lp_append(&j->lp, d->lp, d->n_lp) == 0;
    }
    if (!ok) { /* out of memory: the answer cannot be delivered whole, so it ends */
        j->failed = 1;
        srv_err(&j->error, 500, NULL, NULL, "out of memory");
    }
    pthread_cond_broadcast(&j->cv);
    int stop = j->cancel || j->failed || q->stopping >= 2;
    pthread_mutex_unlock(&q->mu);
    return stop;
}

static void on_done(void *user, const mf_gen_result *r)
{
    srv_job *j = user;
    srv_queue *q = j->owner;
    pthread_mutex_lock(&q->mu);
    int ok = 1;
    mf_gen_result *c = &j->result;
    *c = *r;
    c->content = dup_or_null(r->content, &ok);
    c->reasoning = dup_or_null(r->reasoning, &ok);
    c->calls = NULL;
    c->n_calls = 0;
    if (r->n_calls > 0) {
        c->calls = calloc((size_t)r->n_calls, sizeof *c->calls);
        if (!c->calls) ok = 0;
        for (int i = 0; c->calls && i < r->n_calls; i++) {
            c->calls[i].id = dup_or_null(r->calls[i].id, &ok);
            c->calls[i].name = dup_or_null(r->calls[i].name, &ok);
            c->calls[i].arguments = dup_or_null(r->calls[i].arguments, &ok);
            c->n_calls = i + 1;
        }
    }
    if (!ok && !j->failed) {
        j->failed = 1;
        srv_err(&j->error, 500, NULL, NULL, "out of memory");
    }
    if (j->failed) {
        c->finish = MF_FINISH_ERROR;
        snprintf(c->error, sizeof c->error, "%.255s", j->error.message);
    } else if (r->finish == MF_FINISH_CANCELLED && !j->cancel) {
        j->shutdown = 1;
    }
    if (r->finish == MF_FINISH_CANCELLED && j->cancel) q->met.cancelled++;
    for (int i = 0; i < q->n_running; i++)
        if (q->running[i] == j) {
            q->running[i] = q->running[--q->n_running];
            break;
        }
    j->state = SRV_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_cond_broadcast(&q->idle);
    pthread_cond_signal(&q->wake);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&q->mu);
    if (last) job_free(j);
}

/* ---------------------------------------------------------------- the engine thread */

static void update_metrics_locked(srv_queue *q)
{
    mf_batcher_stats st;
    mf_batcher_stats_get(q->b, &st);
    q->met.prompt_tokens = st.prompt_tokens;
    q->met.cached_tokens = st.cached_tokens;
    q->met.generated_tokens = st.generated_tokens;
    q->met.steps = st.steps;
    q->met.decode_tok_s = st.decode_tok_s;
    q->met.active = q->n_running;
    q->met.queue_depth = q->depth;
}

static srv_job *pop_locked(srv_queue *q)
{
    srv_job *j = q->head;
    q->head = j->next;
    if (!q->head) q->tail = NULL;
    j->next = NULL;
    q->depth--;
    return j;
}

static int load(srv_queue *q)
{
    mf_err err;
    mf_model *m = mf_model_load(q->o.model_path, &err);
    mf_batcher *b = m ? mf_batcher_new(m, &q->o.batcher, &err) : NULL;
    mf_batcher_stats st = {0};
    srv_job **running = NULL;
    if (b) {
        mf_batcher_stats_get(b, &st);
        running = calloc((size_t)(st.n_seq > 0 ? st.n_seq : 1), sizeof *running);
        if (!running) mf_errf(&err, "out of memory");
    }
    int fmt = MF_CHAT_NONE;
    if (running && q->o.chat_format) {
        fmt = mf_chat_format_from_name(q->o.chat_format);
    } else if (running) {
        const char *tmpl = NULL;
        mf_gguf_opt_str(m->gguf, "tokenizer.chat_template", NULL, &tmpl, NULL);
        fmt = mf_chat_detect(tmpl, m->hp.arch_name);
    }
    pthread_mutex_lock(&q->mu);
    if (!running) {
        snprintf(q->load_error, sizeof q->load_error, "%s", err.msg);
        q->ready = -1;
    } else {
        q->m = m;
        q->b = b;
        q->running = running;
        q->fmt = fmt;
        q->n_ctx = srv_engine_n_ctx(b);
        q->n_seq = st.n_seq > 0 ? st.n_seq : 1;
        q->met.n_seq = q->n_seq;
        q->met.ready = 1;
        q->ready = 1;
    }
    pthread_mutex_unlock(&q->mu);
    if (!running) {
        mf_batcher_free(b);
        mf_model_free(m);
        return -1;
    }
    return 0;
}

static void *engine_main(void *arg)
{
    srv_queue *q = arg;
    if (load(q)) return NULL;
    mf_err err;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        /* cancels (the batcher calls on_done inside, which takes the lock) */
        for (int i = 0; i < q->n_running; i++) {
            srv_job *j = q->running[i];
            if ((j->cancel || j->failed || q->stopping >= 2) && !j->cancel_sent) {
                j->cancel_sent = 1;
                int id = j->id;
                pthread_mutex_unlock(&q->mu);
                mf_batcher_cancel(q->b, id);
                pthread_mutex_lock(&q->mu);
                i = -1; /* the running list changed: scan again */
            }
        }
        /* admissions, oldest first, while a sequence is free */
        while (q->head && !q->stopping && q->n_running < q->n_seq) {
            srv_job *j = pop_locked(q);
            pthread_mutex_unlock(&q->mu);
            int id = mf_batcher_submit(q->b, j->prompt, j->n_prompt, &j->gen, on_delta, on_done, j, &err);
            pthread_mutex_lock(&q->mu);
            if (id == -2) { /* busy after all: back to the front */
                j->next = q->head;
                q->head = j;
                if (!q->tail) q->tail = j;
                q->depth++;
                break;
            }
            if (id < 0) {
                refuse_locked(j, 400, "invalid_request", err.msg);
                continue;
            }
            j->id = id;
            j->state = SRV_RUNNING;
            j->t_started = now_s();
            q->running[q->n_running++] = j;
            pthread_cond_broadcast(&j->cv);
        }
        while (q->stopping && q->head)
            refuse_locked(pop_locked(q), 503, "shutting_down", "the server is shutting down");
        update_metrics_locked(q);
        if (!q->n_running) {
            if (q->stopping) break;
            pthread_cond_wait(&q->wake, &q->mu);
            continue;
        }
        pthread_mutex_unlock(&q->mu);
        int r = mf_batcher_step(q->b, &err);
        pthread_mutex_lock(&q->mu);
        if (r < 0) { /* a device error: every running answer ends with it */
            fprintf(stderr, "minfer serve: %s\n", err.msg);
            for (int i = 0; i < q->n_running; i++) {
                q->running[i]->failed = 1;
                srv_err(&q->running[i]->error, 500, NULL, NULL, "%s", err.msg);
            }
        }
    }
    update_metrics_locked(q);
    mf_batcher *b = q->b;
    q->b = NULL;
    pthread_mutex_unlock(&q->mu);
    mf_batcher_free(b);
    return NULL;
}

/* ---------------------------------------------------------------- the HTTP side */

srv_queue *srv_queue_start(const srv_queue_opts *o, mf_err *err)
{
    srv_queue *q = calloc(1, sizeof *q);
    if (!q) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    q->o = *o;
    q->met.queue_capacity = o->capacity;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->wake, NULL);
    cond_init_monotonic(&q->idle);
    int rc = pthread_create(&q->thread, NULL, engine_main, q);
    if (rc) {
        mf_errf(err, "cannot start the engine thread: %s", strerror(rc));
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->wake);
        pthread_cond_destroy(&q->idle);
        free(q);
        return NULL;
    }
    return q;
}

int srv_queue_ready(srv_queue *q)
{
    pthread_mutex_lock(&q->mu);
    int r = q->ready;
    pthread_mutex_unlock(&q->mu);
    return r;
}

/* fixed once ready: read without the lock after srv_queue_ready said 1 */
const char *srv_queue_load_error(srv_queue *q) { return q->load_error; }
const mf_model *srv_queue_model(srv_queue *q) { return q->m; }
int srv_queue_format(srv_queue *q) { return q->fmt; }
int srv_queue_n_ctx(srv_queue *q) { return q->n_ctx; }

int srv_queue_push(srv_queue *q, srv_job *j, srv_error *e)
{
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    if (q->ready == 0) rc = srv_err(e, 503, "model_loading", NULL, "the model is still loading");
    else if (q->ready < 0) rc = srv_err(e, 503, "model_failed", NULL, "the model failed to load");
    else if (q->stopping) rc = srv_err(e, 503, "shutting_down", NULL, "the server is shutting down");
    else if (q->depth >= q->o.capacity + (q->n_seq - q->n_running))
        rc = srv_err(e, 503, "queue_full", NULL,
                     "the server is busy: %d requests are waiting (--queue %d); try again later", q->depth,
                     q->o.capacity);
    if (!rc) {
        j->refs++;
        j->owner = q;
        j->state = SRV_QUEUED;
        j->t_queued = now_s();
        j->next = NULL;
        if (q->tail) q->tail->next = j;
        else q->head = j;
        q->tail = j;
        q->depth++;
        q->met.queue_depth = q->depth;
        pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void srv_queue_cancel(srv_queue *q, srv_job *j)
{
    pthread_mutex_lock(&q->mu);
    j->cancel = 1;
    if (j->state == SRV_QUEUED && j->owner == q) {
        srv_job **p = &q->head, *prev = NULL;
        while (*p && *p != j) {
            prev = *p;
            p = &(*p)->next;
        }
        if (*p) {
            *p = j->next;
            if (q->tail == j) q->tail = prev;
            j->next = NULL;
            q->depth--;
            q->met.queue_depth = q->depth;
            q->met.cancelled++;
            refuse_locked(j, 499, "client_closed", "the client went away");
        }
    }
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->mu);
}

int srv_job_wait(srv_queue *q, srv_job *j, int ms, int until_done, srv_piece **pieces, int *n)
{
    pthread_mutex_lock(&q->mu);
    double deadline = now_s() + ms * 1e-3;
    while (j->state != SRV_DONE && now_s() < deadline) {
        if (!until_done && (pieces ? j->n_pieces > 0 : j->state == SRV_RUNNING)) break;
        wait_until(&j->cv, &q->mu, deadline);
    }
    if (pieces) {
        *pieces = j->pieces;
        *n = j->n_pieces;
        j->pieces = NULL;
        j->n_pieces = j->cap_pieces = 0;
    }
    int st = j->state;
    pthread_mutex_unlock(&q->mu);
    return st;
}

void srv_queue_count(srv_queue *q, int status)
{
    pthread_mutex_lock(&q->mu);
    srv_metrics_count(&q->met, status);
    pthread_mutex_unlock(&q->mu);
}

void srv_queue_metrics(srv_queue *q, srv_metrics *m)
{
    pthread_mutex_lock(&q->mu);
    *m = q->met;
    pthread_mutex_unlock(&q->mu);
}

void srv_queue_stop(srv_queue *q, double grace_s)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_signal(&q->wake);
    double deadline = now_s() + grace_s;
    while (q->n_running && now_s() < deadline) wait_until(&q->idle, &q->mu, deadline);
    if (q->n_running)
        fprintf(stderr, "minfer serve: %d answer%s still running after %.0f s: cancelling\n", q->n_running,
                q->n_running == 1 ? "" : "s", grace_s);
    q->stopping = 2;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
}

void srv_queue_free(srv_queue *q)
{
    if (!q) return;
    mf_model_free(q->m);
    free(q->running);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->wake);
    pthread_cond_destroy(&q->idle);
    free(q);
}
