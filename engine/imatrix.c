/* imatrix.c — importance statistics for quantization (contract: imatrix.h). */
#include "imatrix.h"
#include "gguf.h"
#include "types.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    const char *name; /* the weight's tensor name (in the model's mapping) */
    int64_t n_in, n_mat;
    double *sum;    /* [n_mat][n_in] Σ x² */
    int64_t *count; /* [n_mat] rows seen */
} entry;

struct mf_imatrix {
    entry *e;
    int n, cap;
};

static entry *find(const mf_imatrix *im, const char *name)
{
    for (int i = 0; i < im->n; i++)
        if (!strcmp(im->e[i].name, name)) return &im->e[i];
    return NULL;
}

static int add(mf_imatrix *im, const mf_weight *w, mf_err *err)
{
    if (!w->name || find(im, w->name)) return 0; /* absent, or the tied output seen twice */
    if (im->n == im->cap) {
        int cap = im->cap ? 2 * im->cap : 64;
        entry *e = realloc(im->e, sizeof *e * (size_t)cap);
        if (!e) return mf_errf(err, "out of memory");
        im->e = e;
        im->cap = cap;
    }
    entry *e = &im->e[im->n];
    e->name = w->name;
    e->n_in = w->ne[0];
    e->n_mat = w->ne[2] * w->ne[3];
    e->sum = calloc((size_t)(e->n_in * e->n_mat), sizeof *e->sum);
    e->count = calloc((size_t)e->n_mat, sizeof *e->count);
    if (!e->sum || !e->count) {
        free(e->sum);
        free(e->count);
        return mf_errf(err, "out of memory");
    }
    im->n++;
    return 0;
}

mf_imatrix *mf_imatrix_new(const mf_model *m, mf_err *err)
{
    mf_imatrix *im = calloc(1, sizeof *im);
    if (!im) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    int rc = add(im, &m->output, err);
    /* every matrix of every layer, in the order of the weight list (model.h) */
    for (int l = 0; l < m->hp.n_layers && !rc; l++)
        for (int i = 0; i < MF_LAYER_N_TENSORS && !rc; i++)
            if (mf_layer_tensors[i].kind != MF_W_VECTOR) rc = add(im, mf_layer_weight(&m->layers[l], i), err);
    if (rc) {
        mf_imatrix_free(im);
        return NULL;
    }
    return im;
}

void mf_imatrix_free(mf_imatrix *im)
{
    if (!im) return;
    for (int i = 0; i < im->n; i++) free(im->e[i].sum), free(im->e[i].count);
    free(im->e);
    free(im);
}

void mf_imatrix_observe(void *imatrix, const mf_weight *W, int matrix, const float *x, int rows)
{
    entry *e = W->name ? find(imatrix, W->name) : NULL;
    if (!e || matrix < 0 || matrix >= e->n_mat || W->ne[0] != e->n_in) return;
    double *s = e->sum + (size_t)matrix * (size_t)e->n_in;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)e->n_in;
        for (int64_t j = 0; j < e->n_in; j++) s[j] += (double)xr[j] * xr[j];
    }
    e->count[matrix] += rows;
}

double mf_imatrix_value(const mf_imatrix *im, const char *name, int matrix, int64_t j)
{
    const entry *e = find(im, name);
    if (!e || matrix < 0 || matrix >= e->n_mat || j < 0 || j >= e->n_in || !e->count[matrix]) return -1;
    return e->sum[(size_t)matrix * (size_t)e->n_in + (size_t)j] / (double)e->count[matrix];
}

int mf_imatrix_write(const mf_imatrix *im, const char *path, const char *model, const char *text, int chunks,
                     int chunk_size, uint64_t tokens, mf_err *err)
{
    mf_gguf_writer *w = mf_gguf_writer_new();
    float **data = calloc((size_t)(im->n ? im->n : 1), sizeof *data);
    int rc = -1;
    if (!w || !data) {
        mf_errf(err, "out of memory");
        goto done;
    }
    if (mf_gguf_w_str(w, "general.type", "imatrix") || mf_gguf_w_u32(w, "minfer.imatrix.version", 1) ||
        mf_gguf_w_str(w, "minfer.imatrix.model", model) || mf_gguf_w_str(w, "minfer.imatrix.text", text) ||
        mf_gguf_w_u32(w, "minfer.imatrix.chunks", (uint32_t)chunks) ||
        mf_gguf_w_u32(w, "minfer.imatrix.chunk_size", (uint32_t)chunk_size) ||
        mf_gguf_w_u64(w, "minfer.imatrix.tokens", tokens)) {
        mf_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < im->n; i++) {
        const entry *e = &im->e[i];
        if (!(data[i] = malloc(sizeof(float) * (size_t)(e->n_in * e->n_mat)))) {
            mf_errf(err, "out of memory");
            goto done;
        }
        for (int64_t k = 0; k < e->n_mat; k++)
            for (int64_t j = 0; j < e->n_in; j++)
                data[i][k * e->n_in + j] = e->count[k] ? (float)(e->sum[k * e->n_in + j] / (double)e->count[k]) : 0.0f;
        const int64_t ne[2] = {e->n_in, e->n_mat};
        if (mf_gguf_w_tensor(w, e->name, MF_TYPE_F32, 2, ne, data[i], err) < 0) goto done;
    }
    rc = mf_gguf_w_write(w, path, NULL, NULL, err);
done:
    for (int i = 0; data && i < im->n; i++) free(data[i]);
    free(data);
    mf_gguf_writer_free(w);
    return rc;
}
