/* threadpool.h — a persistent pool of worker threads for the CPU backend.
 *
 * A decode step issues a few hundred small parallel regions (one per matrix product), so
 * starting threads per region, or waking them through the kernel each time, would cost more
 * than the work. Workers therefore stay alive for the whole session and spin briefly on an
 * atomic generation counter before falling asleep on a condition variable: back-to-back
 * regions cost a cache-line handoff, an idle pool costs no CPU.
 *
 * mf_pool_run(pool, fn, ctx, n_tasks) calls fn(ctx, task, thread) for every task in
 * [0, n_tasks), tasks claimed dynamically (atomic counter) by the workers and the calling
 * thread, and returns when all are done.
 */
#ifndef MF_THREADPOOL_H
#define MF_THREADPOOL_H

typedef void (*mf_task_fn)(void *ctx, int task, int thread);

typedef struct mf_pool mf_pool;

/* n_threads includes the calling thread; n_threads <= 0: one per online core. */
mf_pool *mf_pool_new(int n_threads);
void mf_pool_free(mf_pool *p);
int mf_pool_threads(const mf_pool *p);
void mf_pool_run(mf_pool *p, mf_task_fn fn, void *ctx, int n_tasks);

#endif
