/* plan.c — memory and decode-speed bounds of a model on a device (contract: plan.h).
 *
 * Arithmetic only: what the file costs (bytes of weights, bytes read per token, KV cache,
 * scratch: memory.h) and how it fits and how fast it can decode on a device. The device
 * table and the reading of `minfer bench --save` records are the plan command's
 * (tools/plan_devices.c, tools/plan_records.c). The formulas are in plan.h and docs/plan.md.
 */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ the model */

static void add_unsupported(mf_plan_model *pm, uint32_t type)
{
    char tb[32];
    const char *tn = mf_type_name(type, tb);
    /* list each type name once */
    size_t n = strlen(pm->unsupported), k = strlen(tn);
    for (const char *p = pm->unsupported; (p = strstr(p, tn)) != NULL; p += k)
        if ((p == pm->unsupported || p[-1] == ' ') && (p[k] == ',' || p[k] == 0)) return;
    snprintf(pm->unsupported + n, sizeof pm->unsupported - n, "%s%s", n ? ", " : "", tn);
}

int mf_plan_model_read(const mf_gguf *g, mf_plan_model *pm, mf_err *err)
{
    memset(pm, 0, sizeof *pm);
    if (mf_hparams_read(g, &pm->hp, err)) return -1;
    const mf_hparams *hp = &pm->hp;
    pm->file_bytes = mf_gguf_file_size(g);
    pm->n_tensors = mf_gguf_n_tensors(g);
    pm->weight_bytes = mf_mem_file_weights(g, &pm->n_params);
    for (uint64_t i = 0; i < pm->n_tensors; i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        /* the reader rejects ids without a byte size, so t->type < MF_TYPE_COUNT here */
        pm->type_bytes[t->type] += t->nbytes;
        pm->type_tensors[t->type]++;
        if (!mf_type_supported(t->type)) {
            pm->n_unsupported++;
            add_unsupported(pm, t->type);
        }
    }
    mf_mem_bytes_per_token(g, hp, NULL, &pm->per_token);
    pm->largest_matrix = mf_mem_largest_matrix(hp);
    pm->rope_tables = mf_mem_rope_tables(hp);
    return 0;
}

uint64_t mf_plan_bytes_per_token(const mf_plan_model *pm) { return pm->per_token.dense + pm->per_token.experts; }

/* the state the device's backend would allocate: the CUDA backend's on a CUDA card (with
 * the most flash-decoding splits any card makes: the table has no SM counts), the CPU
 * backend's elsewhere (the other rows have no minfer backend: the CPU's is the estimate) */
static mf_mem_state plan_state(const mf_plan_model *pm, int64_t n_ctx, int batch, int kv_elem, int cuda, int threads)
{
    mf_state_opts o = {.n_ctx = (int)n_ctx, .max_batch = batch < n_ctx ? batch : (int)n_ctx, .kv_f16 = kv_elem == 2};
    if (cuda) {
        mf_mem_cuda c;
        mf_mem_cuda_state(&pm->hp, &o, mf_mem_cuda_nsplit_max(n_ctx), &c);
        return c.sum;
    }
    mf_mem_cpu c;
    mf_mem_cpu_state(&pm->hp, &o, threads, &c);
    return c.sum;
}

uint64_t mf_plan_scratch_bytes(const mf_plan_model *pm, int64_t n_ctx, int batch, int cuda, int threads)
{
    mf_mem_state st = plan_state(pm, n_ctx, batch, 4, cuda, threads);
    mf_mem_acts a;
    mf_mem_acts_of(&pm->hp, batch < n_ctx ? batch : (int)n_ctx, 1, &a);
    return mf_add_sat(mf_add_sat(st.rope, st.scratch), a.bytes);
}

/* ================================================================ per device */

double mf_plan_bound(double bandwidth_gbs, uint64_t bytes_per_token)
{
    return bytes_per_token ? bandwidth_gbs * 1e9 / (double)bytes_per_token : 0.0;
}

void mf_plan_evaluate(const mf_plan_model *pm, const mf_plan_device *dev, int64_t n_ctx, int kv_elem, mf_plan_fit *out)
{
    memset(out, 0, sizeof *out);
    /* unless asked otherwise, binary16 on every row: the cache type both backends default to
     * (kv_f16_default: the CPU's chosen by measurement, docs/cpu.md §4; the GPU's for half
     * the cache traffic) */
    out->kv_elem = kv_elem > 0 ? kv_elem : 2;
    out->weights = pm->weight_bytes;
    int cuda = dev->kind == MF_PLAN_CUDA;
    out->kv = plan_state(pm, n_ctx, MF_PLAN_BATCH, out->kv_elem, cuda, dev->threads).kv;
    out->scratch = mf_plan_scratch_bytes(pm, n_ctx, MF_PLAN_BATCH, cuda, dev->threads);
    out->need = mf_add_sat(mf_add_sat(out->weights, out->kv), out->scratch);
    out->usable = dev->mem_bytes > dev->headroom_bytes ? dev->mem_bytes - dev->headroom_bytes : 0;
    out->fits = out->need <= out->usable;
    out->spare = (int64_t)out->usable - (int64_t)out->need;
    out->bytes_ctx0 = mf_plan_bytes_per_token(pm);
    out->bytes_ctx = mf_add_sat(out->bytes_ctx0, mf_mem_kv_bytes(&pm->hp, n_ctx, 1, out->kv_elem));
    out->tok_s_ctx0 = mf_plan_bound(dev->bandwidth_gbs, out->bytes_ctx0);
    out->tok_s_ctx = mf_plan_bound(dev->bandwidth_gbs, out->bytes_ctx);
}
