/* prune.c — dropping layers from a GGUF file, skipping them at run time (contract: prune.h).
 *
 * A file's layers are the tensors named blk.<l>.* plus the metadata that describes them:
 * <arch>.block_count, and, in some files, per-layer arrays (one entry per layer). Dropping
 * layers is therefore a renaming: the kept layers are numbered 0.. in their old order, their
 * bytes copied unchanged (the writer takes pointers into the input's mapping).
 */
#include "prune.h"
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dropped[l] = 1 for the listed layers; checks range and repeats. */
static int mark_layers(const int *layers, int n, int n_layers, const char *what, uint8_t *dropped, mf_err *err)
{
    for (int i = 0; i < n; i++) {
        int l = layers[i];
        if (l < 0 || l >= n_layers)
            return mf_errf(err, "cannot %s layer %d: the model has layers 0..%d", what, l, n_layers - 1);
        if (dropped[l]) return mf_errf(err, "layer %d is listed twice", l);
        dropped[l] = 1;
    }
    return 0;
}

int mf_model_skip_layers(mf_model *m, const int *layers, int n, mf_err *err)
{
    int L = m->hp.n_layers;
    uint8_t *mark = calloc(L ? (size_t)L : 1, 1);
    if (!mark) return mf_errf(err, "out of memory");
    int rc = mark_layers(layers, n, L, "skip", mark, err);
    for (int l = 0; l < L && rc == 0; l++)
        if (mark[l]) m->layers[l].skip = 1;
    free(mark);
    return rc;
}

/* A per-layer array (length = old block count) with the dropped entries removed. */
static int copy_layer_array(mf_gguf_writer *w, const mf_gguf_kv *kv, const uint8_t *dropped, mf_err *err)
{
    uint64_t n = kv->arr_n, k = 0;
    if (kv->arr_type == MF_GGUF_STR) {
        const char **s = malloc(n * sizeof *s);
        uint64_t *len = malloc(n * sizeof *len);
        int rc = -1;
        if (s && len) {
            for (uint64_t i = 0; i < n; i++)
                if (!dropped[i]) s[k] = kv->arr_str[i].ptr, len[k++] = kv->arr_str[i].len;
            rc = mf_gguf_w_arr_str(w, kv->key, s, len, k);
        }
        free(s);
        free(len);
        return rc ? mf_errf(err, "out of memory copying key '%s'", kv->key) : 0;
    }
    size_t esz = mf_gguf_vtype_size(kv->arr_type);
    if (!esz) return mf_errf(err, "key '%s': arrays of arrays are not supported", kv->key);
    uint8_t *b = malloc(n * esz + 1);
    if (!b) return mf_errf(err, "out of memory copying key '%s'", kv->key);
    for (uint64_t i = 0; i < n; i++)
        if (!dropped[i]) memcpy(b + esz * k++, kv->arr_data + esz * i, esz);
    int rc = mf_gguf_w_arr(w, kv->key, kv->arr_type, b, k);
    free(b);
    return rc ? mf_errf(err, "out of memory copying key '%s'", kv->key) : 0;
}

int mf_prune_file(const char *in, const char *out, const int *drop, int n, const volatile sig_atomic_t *cancel,
                  mf_err *err)
{
    mf_gguf *g = mf_gguf_open(in, err);
    if (!g) return -1;
    mf_hparams hp;
    mf_gguf_writer *w = NULL;
    uint8_t *dropped = NULL;
    int rc = -1;
    if (mf_hparams_read(g, &hp, err)) goto done;
    int L = hp.n_layers;
    dropped = calloc(L ? (size_t)L : 1, 1);
    if (!dropped) {
        mf_errf(err, "out of memory");
        goto done;
    }
    if (mark_layers(drop, n, L, "drop", dropped, err)) {
        mf_err_prefix(err, "%s", in);
        goto done;
    }
    if (n == L) {
        mf_errf(err, "%s: dropping all %d layers would leave no model", in, L);
        goto done;
    }

    /* every kept layer must keep its attention kind at its new index */
    for (int l = 0, below = 0; l < L; l++) {
        if (dropped[l]) {
            below++;
            continue;
        }
        if (mf_layer_slides(&hp, l) != mf_layer_slides(&hp, l - below)) {
            mf_errf(err,
                    "%s: dropping these layers would move layer %d (%s attention) to index %d, where %s "
                    "has %s attention (layer l slides iff l %% %d < %d): the number of dropped layers below "
                    "every kept layer must be a multiple of %d",
                    in, l, mf_layer_slides(&hp, l) ? "sliding-window" : "full", l - below, hp.arch_name,
                    mf_layer_slides(&hp, l - below) ? "sliding-window" : "full", hp.swa_pattern, hp.swa_pattern - 1,
                    hp.swa_pattern);
            goto done;
        }
    }

    w = mf_gguf_writer_new();
    if (!w) {
        mf_errf(err, "out of memory");
        goto done;
    }
    mf_gguf_w_set_version(w, mf_gguf_version(g));
    mf_gguf_w_set_cancel(w, cancel);
    char bc_key[64];
    snprintf(bc_key, sizeof bc_key, "%s.block_count", hp.arch_name);
    size_t plen = strlen(hp.arch_name);
    for (uint64_t i = 0; i < mf_gguf_n_kv(g); i++) {
        const mf_gguf_kv *kv = mf_gguf_kv_at(g, i);
        int r;
        if (!strcmp(kv->key, bc_key)) {
            r = mf_gguf_w_u32(w, kv->key, (uint32_t)(L - n));
        } else if (kv->type == MF_GGUF_ARR && kv->arr_n == (uint64_t)L && L > 0 &&
                   !strncmp(kv->key, hp.arch_name, plen) && kv->key[plen] == '.') {
            if (copy_layer_array(w, kv, dropped, err)) goto done;
            continue;
        } else {
            r = mf_gguf_w_copy_kv(w, kv);
        }
        if (r) {
            mf_errf(err, "out of memory copying key '%s'", kv->key);
            goto done;
        }
    }
    int *new_index = malloc((L ? (size_t)L : 1) * sizeof *new_index);
    if (!new_index) {
        mf_errf(err, "out of memory");
        goto done;
    }
    for (int l = 0, k = 0; l < L; l++) new_index[l] = dropped[l] ? -1 : k++;
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        const char *rest;
        int l = mf_tensor_layer(t->name, &rest);
        char name[MF_GGUF_MAX_NAME + 16];
        if (l >= L) {
            mf_errf(err, "%s: tensor '%s' belongs to layer %d but the model has %d layers", in, t->name, l, L);
            free(new_index);
            goto done;
        }
        if (l >= 0 && new_index[l] < 0) continue;
        if (l >= 0) snprintf(name, sizeof name, "blk.%d.%s", new_index[l], rest);
        else snprintf(name, sizeof name, "%s", t->name);
        if (mf_gguf_w_tensor(w, name, t->type, t->n_dims, t->ne, t->data, err) < 0) {
            free(new_index);
            goto done;
        }
    }
    free(new_index);
    rc = mf_gguf_w_write(w, out, NULL, NULL, err);
done:
    mf_gguf_writer_free(w);
    free(dropped);
    mf_gguf_close(g);
    return rc;
}
