/* threadpool.c — see threadpool.h. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* A waiting thread first spins with `pause` (a region usually follows within microseconds),
 * then yields its core between checks (when the machine is oversubscribed the thread it
 * waits for may need that very core), and after SPIN_ITERS checks sleeps on the condition
 * variable, so an idle pool costs nothing. */
#define PAUSE_ITERS 2000
#define SPIN_ITERS 20000

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

struct mf_pool {
    int n; /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint gen; /* incremented per region; workers wait for a change */
    atomic_int next; /* next task to claim */
    atomic_int done; /* workers finished with the current region */
    atomic_int quit;
    atomic_int sleepers; /* workers inside (or about to enter) the condition wait */
    mf_task_fn fn;
    void *ctx;
    int n_tasks;
};

typedef struct warg {
    mf_pool *p;
    int id;
} warg;

static void work(mf_pool *p, int thread)
{
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker(void *arg)
{
    warg a = *(warg *)arg;
    free(arg);
    mf_pool *p = a.p;
    /* the generation at creation (0), not the current one: a region published before this
     * thread first ran must still be seen as new */
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ITERS) {
                if (spins < PAUSE_ITERS) cpu_relax();
                else sched_yield();
                continue;
            }
            /* announce the sleep before the last look at gen: a region published after that
             * look sees sleepers > 0 and signals (both sides sequentially consistent) */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            break;
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = g;
        work(p, a.id);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

mf_pool *mf_pool_new(int n_threads)
{
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    mf_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->th = calloc((size_t)n_threads, sizeof *p->th);
    if (!p->th) {
        mf_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        warg *a = malloc(sizeof *a);
        if (!a) {
            p->n = i;
            mf_pool_free(p);
            return NULL;
        }
        a->p = p;
        a->id = i;
        if (pthread_create(&p->th[i], NULL, worker, a) != 0) {
            free(a);
            p->n = i;
            mf_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void mf_pool_free(mf_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->th);
    free(p);
}

int mf_pool_threads(const mf_pool *p) { return p->n; }

void mf_pool_run(mf_pool *p, mf_task_fn fn, void *ctx, int n_tasks)
{
    if (n_tasks <= 0) return;
    if (p->n == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    /* publish the region: the store on gen orders fn/ctx/n_tasks before it; spinning workers
     * see it within a cache-line transfer, and only sleeping ones need the condition
     * variable (its mutex and broadcast cost more than a decode step's small regions) */
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    work(p, 0);
    for (int spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < p->n - 1; spins++) {
        if (spins < PAUSE_ITERS) cpu_relax();
        else sched_yield();
    }
}
