/* repack.c — the CPU backend's packed copies of a model's matrices (docs/cpu.md §3).
 *
 * Which: every matrix of a product in the weight list (model.h, kind MF_W_MATRIX: q, k, v, o,
 * the FFN or expert matrices, the output matrix unless it is the token embedding, which
 * embed() reads by rows) whose type this build has packed kernels for (mf_pack_supported). Stacked expert
 * tensors are packed expert by expert, so an expert's slice keeps its offset.
 *
 * Where: one anonymous mapping for all copies, 2 MB aligned and marked MADV_HUGEPAGE: the
 * decode product walks all of it once per token, and with 4 KB pages that is a TLB miss
 * every 4 KB. As each chunk is packed, the file's pages of its rows are released from
 * this process (MADV_DONTNEED: the mapping stays valid and reads the file again if touched;
 * the page cache keeps or drops them as memory requires), so the resident size stays about
 * the model's size, not twice it, during packing too. Weights given as a caller's buffer
 * (mf_gguf_open_mem) are not released.
 *
 * When: at the first state_new() on the prepared model (the first session's open) that does
 * not ask for no_pack, on the pool's threads; the copies belong to the mf_bmodel, shared by
 * every later state on that model and freed by its last unprepare. It costs one read and
 * one write of the packed bytes (measured in docs/cpu.md §3).
 */
#include "cpu.h"
#include "quant.h"
#include "quant_impl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define GROUPS_PER_TASK 64

static int packable(const mf_weight *w)
{
    return w->name && w->data && mf_pack_supported(w->type) && w->ne[1] > 0 &&
           mf_type_row_bytes(w->type, w->ne[0]) == w->row_bytes;
}

/* The matrices to pack, from the model's weight list (model.h): every matrix of a product
 * except the embedding (and so a tied output, which is the embedding: slot != i). Fills out
 * (when not NULL) and returns how many. */
static int collect(const mf_model *m, const mf_weight **out)
{
    int n = 0;
    for (int i = 0; i < mf_model_n_weights(m); i++) {
        const mf_weight *w = mf_model_weight(m, i);
        if (mf_model_weight_desc(i)->kind != MF_W_MATRIX || i == MF_MT_tok_embd || w->slot != i || !packable(w))
            continue;
        if (out) out[n] = w;
        n++;
    }
    return n;
}

typedef struct pack_task {
    const mf_weight *w;
    const cpu_packed *p;
    int64_t e, g0, g1;
} pack_task;
typedef struct pack_job {
    pack_task *t;
    int release;
    size_t page;
} pack_job;

/* Drop this process's mapping of the whole pages inside [a, b) (see the header). */
static void release(const uint8_t *a, const uint8_t *b, size_t page)
{
    uintptr_t lo = ((uintptr_t)a + page - 1) / page * page, hi = (uintptr_t)b / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void pack_task_fn(void *ctx, int task, int thread)
{
    (void)thread;
    const pack_job *j = ctx;
    const pack_task *t = &j->t[task];
    size_t off = (size_t)t->e * t->p->matrix_bytes, rb = t->w->row_bytes;
    mf_pack_matrix(t->w->type, t->p->src + off, t->w->ne[0], t->w->ne[1], t->g0, t->g1, t->p->dst + off);
    /* the rows just packed, as soon as they are (no task reads another task's rows): the
     * resident size never holds both copies of more than a few chunks */
    int64_t r1 = t->g1 * MF_PACK_ROWS < t->w->ne[1] ? t->g1 * MF_PACK_ROWS : t->w->ne[1];
    if (j->release)
        release(t->p->src + off + (size_t)t->g0 * MF_PACK_ROWS * rb, t->p->src + off + (size_t)r1 * rb, j->page);
}

static int by_src(const void *a, const void *b)
{
    const cpu_packed *x = a, *y = b;
    return x->src < y->src ? -1 : x->src > y->src;
}

void mf_cpu_pack_model(cpu_backend *cb, mf_bmodel *bm)
{
    if (bm->pack_tried) return;
    bm->pack_tried = 1;
    const mf_model *m = bm->m;
    int n = collect(m, NULL);
    if (n == 0) return;
    const mf_weight **ws = malloc(sizeof *ws * (size_t)n);
    cpu_packed *ps = calloc((size_t)n, sizeof *ps);
    if (!ws || !ps) goto fail;
    collect(m, ws);
    size_t total = 0;
    int64_t n_tasks = 0;
    for (int i = 0; i < n; i++) {
        total += (ws[i]->nbytes + 63) / 64 * 64;
        int64_t groups = (ws[i]->ne[1] + MF_PACK_ROWS - 1) / MF_PACK_ROWS, E = ws[i]->ne[2] > 1 ? ws[i]->ne[2] : 1;
        n_tasks += E * ((groups + GROUPS_PER_TASK - 1) / GROUPS_PER_TASK);
    }
    size_t len = (total + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pack_task *tasks = malloc(sizeof *tasks * (size_t)n_tasks);
    if (mem == MAP_FAILED || !tasks || n_tasks > 0x7fffffff) {
        if (mem != MAP_FAILED) munmap(mem, len);
        free(tasks);
        goto fail;
    }
    madvise(mem, len, MADV_HUGEPAGE); /* a hint: without THP the copy still works */
    size_t at = 0;
    int64_t k = 0;
    for (int i = 0; i < n; i++) {
        const mf_weight *w = ws[i];
        ps[i] = (cpu_packed){.src = w->data,
                             .dst = (uint8_t *)mem + at,
                             .bytes = w->nbytes,
                             .matrix_bytes = (size_t)w->ne[1] * w->row_bytes};
        at += (w->nbytes + 63) / 64 * 64;
        int64_t groups = (w->ne[1] + MF_PACK_ROWS - 1) / MF_PACK_ROWS, E = w->ne[2] > 1 ? w->ne[2] : 1;
        for (int64_t e = 0; e < E; e++)
            for (int64_t g = 0; g < groups; g += GROUPS_PER_TASK)
                tasks[k++] = (pack_task){w, &ps[i], e, g, g + GROUPS_PER_TASK < groups ? g + GROUPS_PER_TASK : groups};
    }
    pack_job job = {tasks, mf_gguf_mapped(m->gguf), (size_t)sysconf(_SC_PAGESIZE)};
    mf_pool_run(cb->pool, pack_task_fn, &job, (int)n_tasks);
    free(tasks);
    /* the pages the chunks shared: the file's pages of the packed matrices are no longer
     * read by this process */
    if (job.release)
        for (int i = 0; i < n; i++) release(ps[i].src, ps[i].src + ps[i].bytes, job.page);
    qsort(ps, (size_t)n, sizeof *ps, by_src);
    free(ws);
    bm->packed = ps;
    bm->n_packed = n;
    bm->pack_mem = mem;
    bm->pack_len = len;
    return;
fail: /* no memory for the copy: every product reads the file's layout */
    free(ws);
    free(ps);
}

const uint8_t *mf_cpu_packed_of(const mf_bstate *st, const void *W, size_t matrix_bytes)
{
    const mf_bmodel *bm = st->bm;
    if (st->o.no_pack || !bm) return NULL;
    const uint8_t *w = W;
    int lo = 0, hi = bm->n_packed - 1;
    while (lo <= hi) { /* the last packed tensor starting at or before w */
        int mid = (lo + hi) / 2;
        if (bm->packed[mid].src <= w) lo = mid + 1;
        else hi = mid - 1;
    }
    if (hi < 0) return NULL;
    const cpu_packed *p = &bm->packed[hi];
    size_t off = (size_t)(w - p->src);
    /* a whole matrix (an expert's slice) of the packed tensor, nothing else */
    if (off >= p->bytes || matrix_bytes != p->matrix_bytes || off % p->matrix_bytes) return NULL;
    return p->dst + off;
}

void mf_cpu_pack_free(mf_bmodel *bm)
{
    if (bm->pack_mem) munmap(bm->pack_mem, bm->pack_len);
    free(bm->packed);
    bm->packed = NULL;
    bm->n_packed = 0;
    bm->pack_mem = NULL;
    bm->pack_len = 0;
}
