/* memory.c — every byte count of minfer (contract and formulas: memory.h, docs/memory.md).
 */
#include "memory.h"
#include "types.h"

#include <stdio.h>
#include <string.h>

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---------------------------------------------------------------- weights */

uint64_t mf_mem_file_weights(const mf_gguf *g, uint64_t *n_params)
{
    uint64_t bytes = 0, params = 0;
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        bytes += t->nbytes;
        params += t->n_elements;
    }
    if (n_params) *n_params = params;
    return bytes;
}

uint64_t mf_mem_device_weights(const mf_model *m, size_t align, uint64_t *offsets)
{
    uint64_t total = 0;
    for (int i = 0; i < mf_model_n_weights(m); i++) {
        const mf_weight *w = mf_model_weight(m, i);
        int own = w->name && w->nbytes && w->slot == i;
        if (offsets) offsets[i] = own ? total : UINT64_MAX;
        if (own) total += (w->nbytes + align - 1) / align * align;
    }
    return total;
}

int64_t mf_mem_largest_matrix(const mf_hparams *hp)
{
    int64_t best = 0;
    for (int i = 0; i < MF_MODEL_N_TENSORS + MF_LAYER_N_TENSORS; i++) {
        const mf_tensor_desc *t = mf_model_weight_desc(i);
        /* the embedding is gathered by rows, never multiplied (as the output, tied, it is) */
        if (t->kind == MF_W_VECTOR || i == MF_MT_tok_embd || t->arch[hp->arch].use == MF_USE_NONE) continue;
        best = max64(best, mf_dim_size(hp, t->dim[0]) * mf_dim_size(hp, t->dim[1]));
    }
    return best;
}

/* ---------------------------------------------------------------- per decoded token */

/* The row of the weight list a tensor name stands for ("blk.3.attn_q.weight" -> wq), NULL
 * for a tensor the list does not have. */
static const mf_tensor_desc *desc_of(int arch, const char *name)
{
    const char *suffix = name;
    int first = 0, n = MF_MODEL_N_TENSORS;
    if (mf_tensor_layer(name, &suffix) >= 0) {
        first = MF_MODEL_N_TENSORS;
        n = MF_LAYER_N_TENSORS;
    }
    for (int i = first; i < first + n; i++) {
        const mf_tensor_desc *t = mf_model_weight_desc(i);
        if (t->arch[arch].name && !strcmp(t->arch[arch].name, suffix)) return t;
    }
    return NULL;
}

void mf_mem_bytes_per_token(const mf_gguf *g, const mf_hparams *hp, const mf_layer *layers, mf_mem_token *out)
{
    memset(out, 0, sizeof *out);
    out->tied_output = mf_gguf_find_tensor(g, "output.weight") == NULL;
    uint64_t embd_bytes = 0;
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        int l = mf_tensor_layer(t->name, NULL);
        if (layers && l >= 0 && l < hp->n_layers && layers[l].skip) continue; /* not read (prune.h) */
        const mf_tensor_desc *d = desc_of(hp->arch, t->name);
        if (!strcmp(t->name, "token_embd.weight")) {
            embd_bytes = t->nbytes;
            out->embd_row = mf_type_row_bytes(t->type, t->ne[0]);
        } else if (hp->n_experts > 0 && d && mf_tensor_per_expert(d)) {
            /* the k selected experts' slices of a stack of E: nbytes / E each */
            out->experts_all += t->nbytes;
            out->experts += t->nbytes / (uint64_t)hp->n_experts * (uint64_t)hp->n_experts_used;
        } else {
            out->dense += t->nbytes;
        }
    }
    /* one embedding row is gathered per token; a tied output matrix is the embedding, read
     * whole by the logits product */
    out->dense += out->embd_row + (out->tied_output ? embd_bytes : 0);
}

/* ---------------------------------------------------------------- KV cache */

int mf_mem_kv_slots(const mf_hparams *hp, int l, int64_t n_ctx, int max_batch)
{
    if (n_ctx < 0) n_ctx = 0;
    if (!mf_layer_slides(hp, l)) return (int)n_ctx;
    int64_t ring = (int64_t)hp->window + (max_batch < n_ctx ? max_batch : n_ctx) - 1;
    return (int)(ring < n_ctx ? ring : n_ctx);
}

/* K and V of one position of one layer: Hkv heads of hd elements each */
static uint64_t kv_layer_position(const mf_hparams *hp, int elem_bytes)
{
    return mf_mul_sat(2ull * (uint64_t)hp->n_kv_heads * (uint64_t)hp->head_dim, (uint64_t)elem_bytes);
}

uint64_t mf_mem_kv_per_position(const mf_hparams *hp, int elem_bytes)
{
    return mf_mul_sat((uint64_t)hp->n_layers, kv_layer_position(hp, elem_bytes));
}

uint64_t mf_mem_kv_bytes(const mf_hparams *hp, int64_t n_ctx, int max_batch, int elem_bytes)
{
    uint64_t total = 0;
    for (int l = 0; l < hp->n_layers; l++)
        total = mf_add_sat(
            total, mf_mul_sat((uint64_t)mf_mem_kv_slots(hp, l, n_ctx, max_batch), kv_layer_position(hp, elem_bytes)));
    return total;
}

/* K (or V) of one slot of one layer */
static uint64_t kv_row(const mf_hparams *hp, const mf_state_opts *o)
{
    return (uint64_t)hp->n_kv_heads * (uint64_t)hp->head_dim * (o->kv_f16 ? 2u : 4u);
}

uint64_t mf_mem_kv_layer_bytes(const mf_hparams *hp, int l, const mf_state_opts *o)
{
    return mf_mul_sat((uint64_t)mf_mem_kv_slots(hp, l, o->n_ctx, o->max_batch), kv_row(hp, o));
}

int mf_mem_cpu_kv_slots(const mf_hparams *hp, int l, const mf_state_opts *o)
{
    int64_t slots = mf_mem_kv_slots(hp, l, o->n_ctx, o->max_batch);
    return (int)((slots + MF_KV_TILE - 1) / MF_KV_TILE * MF_KV_TILE);
}

uint64_t mf_mem_cpu_kv_layer_bytes(const mf_hparams *hp, int l, const mf_state_opts *o)
{
    return mf_mul_sat((uint64_t)mf_mem_cpu_kv_slots(hp, l, o), kv_row(hp, o));
}

/* ---------------------------------------------------------------- the session's buffers */

int mf_mem_logits_rows(const mf_hparams *hp, int max_batch, int n_seq)
{
    int64_t rows = (int64_t)(MF_MEM_LOGITS_CAP / (4 * (uint64_t)hp->n_vocab));
    if (rows < n_seq) rows = n_seq;
    return rows < 1 ? 1 : rows > max_batch ? max_batch : (int)rows;
}

void mf_mem_acts_of(const mf_hparams *hp, int max_batch, int n_seq, mf_mem_acts *a)
{
    size_t B = (size_t)max_batch, qw = (size_t)hp->n_heads * hp->head_dim, kw = (size_t)hp->n_kv_heads * hp->head_dim;
    a->x = a->h = B * (size_t)hp->n_embd;
    a->q = a->attn_out = B * qw;
    a->k = a->v = B * kw;
    a->logits = (size_t)mf_mem_logits_rows(hp, max_batch, n_seq) * (size_t)hp->n_vocab;
    uint64_t floats = (uint64_t)a->x + a->h + a->q + a->attn_out + a->k + a->v;
    a->bytes = mf_add_sat(mf_mul_sat(4, floats), mf_mul_sat(4, a->logits));
}

/* ---------------------------------------------------------------- RoPE tables */

static float layer_base(const mf_hparams *hp, int l)
{
    return mf_layer_slides(hp, l) ? hp->rope_base_swa : hp->rope_base;
}

int mf_mem_rope_table(const mf_hparams *hp, int l)
{
    /* a layer's base is rope_base or rope_base_swa: table 0 is the first layer's */
    return layer_base(hp, l) != layer_base(hp, 0);
}

int mf_mem_rope_tables(const mf_hparams *hp)
{
    int n = hp->n_layers > 0;
    for (int l = 0; l < hp->n_layers; l++)
        if (mf_mem_rope_table(hp, l)) n = 2;
    return n;
}

/* ---------------------------------------------------------------- backend states */

static void state_sum(mf_mem_state *s, uint64_t kv, uint64_t rope, uint64_t scratch)
{
    s->kv = kv;
    s->rope = rope;
    s->scratch = scratch;
    s->total = mf_add_sat(mf_add_sat(kv, rope), scratch);
}

/* widest input and output of a product: q·k·v side by side (qkv), gate and up (ffn) */
static void widest(const mf_hparams *hp, int64_t *max_in, int64_t *max_out)
{
    int64_t d = hp->n_embd, qw = (int64_t)hp->n_heads * hp->head_dim, kw = (int64_t)hp->n_kv_heads * hp->head_dim;
    int64_t F = max64(hp->n_ff, hp->n_ff_exp);
    *max_in = max64(max64(d, qw), F);
    int64_t out = max64(max64(max64(d, qw), F), max64(hp->n_vocab, hp->n_experts));
    /* grouped products (q+k+v, gate+up) keep their results side by side */
    *max_out = max64(out, max64(qw + 2 * kw, 2 * F));
}

void mf_mem_cpu_state(const mf_hparams *hp, const mf_state_opts *o, int n_threads, mf_mem_cpu *out)
{
    memset(out, 0, sizeof *out);
    size_t B = (size_t)o->max_batch, T = (size_t)(n_threads > 0 ? n_threads : 1), d = (size_t)hp->n_embd;
    size_t F = (size_t)max64(hp->n_ff, hp->n_ff_exp), half = (size_t)hp->n_rot / 2;
    int64_t max_in, max_out;
    widest(hp, &max_in, &max_out);
    out->rows = 4 * B;
    out->krow = 4 * T * (size_t)hp->n_kv_heads * (size_t)hp->head_dim;
    /* an activation row in the widest block format: at most 4 bytes per element plus the
     * scales, one per token of a step, rounded up to whole cache lines for the SIMD kernels */
    out->qx = (B * (size_t)(4 * max_in + 256) + 63) / 64 * 64;
    out->tmp = 4 * T * 2 * MF_CPU_TOK_BLOCK * 16;
    out->ff = 4 * B * F;
    out->scores = 4 * T * (size_t)(hp->n_heads / hp->n_kv_heads) * (size_t)o->n_ctx;
    out->deq = 4 * T * MF_CPU_TILE_ROWS * (size_t)max_in;
    if (hp->n_experts) {
        size_t K = B * (size_t)hp->n_experts_used;
        out->router = 4 * B * (size_t)hp->n_experts;
        out->sel = 4 * K;
        out->ex_io = 4 * B * d;
        out->ex_acc = 4 * K * d;
    }
    out->rope_table = 4 * (size_t)o->n_ctx * half;
    uint64_t kv = 0, S = (uint64_t)mf_mem_n_seq(o);
    for (int l = 0; l < hp->n_layers; l++) kv = mf_add_sat(kv, mf_mul_sat(2 * S, mf_mem_cpu_kv_layer_bytes(hp, l, o)));
    uint64_t scratch = 3 * (uint64_t)out->rows + out->krow + out->qx + out->tmp + 2 * (uint64_t)out->ff + out->scores +
                       out->deq + out->router + 4 * (uint64_t)out->sel + 2 * (uint64_t)out->ex_io + out->ex_acc;
    state_sum(&out->sum, kv, 2 * (uint64_t)mf_mem_rope_tables(hp) * out->rope_table, scratch);
}

int mf_mem_cuda_nsplit_max(int64_t n_ctx)
{
    /* tests/test_cuda_host.c checks this bound against mf_cu_attn_split */
    return (int)((n_ctx + MF_CUDA_FA_KEYS - 1) / MF_CUDA_FA_KEYS);
}

void mf_mem_cuda_state(const mf_hparams *hp, const mf_state_opts *o, int nsplit, mf_mem_cuda *out)
{
    memset(out, 0, sizeof *out);
    size_t B = (size_t)o->max_batch, H = (size_t)hp->n_heads, hd = (size_t)hp->head_dim, d = (size_t)hp->n_embd;
    size_t npair = (size_t)hp->n_rot / 2;
    out->params = 4 * 3 * B;
    out->arg = 4;
    out->part_o = 4 * (size_t)nsplit * H * hd;
    out->part_ml = 4 * 2 * (size_t)nsplit * H;
    if (hp->n_ff > 0) out->ff = 4 * B * (size_t)hp->n_ff;
    if (hp->n_experts > 0) {
        size_t E = (size_t)hp->n_experts, K = B * (size_t)hp->n_experts_used;
        out->logits = 4 * B * E;
        out->sel = 4 * K;
        out->eg = 4 * K * (size_t)hp->n_ff_exp;
        out->hg = 4 * K * d;
        out->counts = 4 * 2 * (E + 1);
    }
    if (B >= MF_CUDA_GEMM_MIN_ROWS || hp->n_experts > 0) {
        int64_t max_in, max_out;
        widest(hp, &max_in, &max_out);
        int64_t wh = mf_mem_largest_matrix(hp);
        if (wh > (int64_t)MF_CUDA_WH_MAX) wh = (int64_t)MF_CUDA_WH_MAX;
        if (wh < max_in) wh = max_in;
        out->wh = 2 * (size_t)wh;
        out->xh = 2 * B * (size_t)max_in;
    }
    /* a table of no pairs still gets one float per position (a zero-sized cudaMalloc) */
    out->rope_table = 4 * (size_t)o->n_ctx * (npair ? npair : 1);
    out->pinned = 4 * 3 * B + 4 + (hp->n_experts > 0 ? 4 * 2 * (uint64_t)(hp->n_experts + 1) : 0);
    uint64_t kv = 0, S = (uint64_t)mf_mem_n_seq(o);
    for (int l = 0; l < hp->n_layers; l++) kv = mf_add_sat(kv, mf_mul_sat(2 * S, mf_mem_kv_layer_bytes(hp, l, o)));
    uint64_t scratch = (uint64_t)out->params + out->arg + out->part_o + out->part_ml + 2 * (uint64_t)out->ff +
                       out->logits + 4 * (uint64_t)out->sel + 2 * (uint64_t)out->eg + 2 * (uint64_t)out->hg +
                       out->counts + out->wh + out->xh;
    state_sum(&out->sum, kv, 2 * (uint64_t)mf_mem_rope_tables(hp) * out->rope_table, scratch);
}

/* ---------------------------------------------------------------- the host */

uint64_t mf_mem_host_total(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}
