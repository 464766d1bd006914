/* plan.c — memory and decode-speed bounds of a model on a device (contract: plan.h).
 *
 * Three parts: what the file costs (bytes of weights, bytes read per token, KV cache,
 * scratch), the device table, and reading `minfer bench --save` records to put a measured
 * speed next to the bound. The formulas are in plan.h and docs/plan.md.
 */
#include "plan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ================================================================ the model */

static int is_expert_tensor(const char *name)
{
    /* blk.N.ffn_{gate,up,down}_exps.{weight,bias}: stacked per-expert matrices and biases
     * (gpt-oss-arch.md §2.2) */
    return strstr(name, "_exps.") != NULL;
}

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
    pm->tied_output = mf_gguf_find_tensor(g, "output.weight") == NULL;
    uint64_t embd_bytes = 0;
    for (uint64_t i = 0; i < pm->n_tensors; i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        pm->weight_bytes += t->nbytes;
        pm->n_params += t->n_elements;
        /* the reader rejects ids without a byte size, so t->type < MF_TYPE_COUNT here */
        pm->type_bytes[t->type] += t->nbytes;
        pm->type_tensors[t->type]++;
        if (!mf_type_supported(t->type)) {
            pm->n_unsupported++;
            add_unsupported(pm, t->type);
        }
        int64_t per_matrix = t->ne[0] * t->ne[1];
        if (t->n_dims >= 2 && per_matrix > pm->largest_matrix) pm->largest_matrix = per_matrix;

        if (!strcmp(t->name, "token_embd.weight")) {
            embd_bytes = t->nbytes;
            pm->embd_row_bytes = mf_type_row_bytes(t->type, t->ne[0]);
        } else if (hp->n_experts > 0 && is_expert_tensor(t->name)) {
            pm->expert_bytes += t->nbytes;
            /* the k selected experts' slices of a stack of E: nbytes / E each */
            pm->expert_per_token += t->nbytes / (uint64_t)hp->n_experts * (uint64_t)hp->n_experts_used;
        } else {
            pm->dense_per_token += t->nbytes;
        }
    }
    /* one embedding row is gathered per token; a tied output matrix is the embedding,
     * read whole by the logits product */
    pm->dense_per_token += pm->embd_row_bytes + (pm->tied_output ? embd_bytes : 0);

    /* RoPE tables: one set per distinct base (gpt-oss may give sliding layers their own) */
    char key[64];
    float base_swa;
    snprintf(key, sizeof key, "%s.rope.freq_base_swa", hp->arch_name);
    if (mf_gguf_opt_f32(g, key, hp->rope_base, &base_swa, err)) return -1;
    pm->rope_tables = hp->window > 0 && base_swa != hp->rope_base ? 2 : 1;
    return 0;
}

uint64_t mf_plan_bytes_per_token(const mf_plan_model *pm)
{
    return pm->dense_per_token + pm->expert_per_token;
}

static uint64_t kv_per_layer_position(const mf_hparams *hp, int elem_bytes)
{
    /* K and V: Hkv heads of hd elements each */
    return 2ull * (uint64_t)hp->n_kv_heads * (uint64_t)hp->head_dim * (uint64_t)elem_bytes;
}

uint64_t mf_plan_kv_per_position(const mf_hparams *hp, int elem_bytes)
{
    return (uint64_t)hp->n_layers * kv_per_layer_position(hp, elem_bytes);
}

static int layer_slides(const mf_hparams *hp, int l)
{
    /* gpt-oss-arch.md §3.4: layer l slides iff l % P < P - 1 (model.c uses the same rule) */
    return hp->window > 0 && hp->swa_pattern > 0 && l % hp->swa_pattern < hp->swa_pattern - 1;
}

uint64_t mf_plan_kv_alloc_bytes(const mf_hparams *hp, int64_t n_ctx, int batch, int elem_bytes)
{
    uint64_t total = 0;
    int b = batch < n_ctx ? batch : (int)n_ctx;
    for (int l = 0; l < hp->n_layers; l++)
        total += (uint64_t)mf_kv_slots(hp, layer_slides(hp, l), (int)n_ctx, b) * kv_per_layer_position(hp, elem_bytes);
    return total;
}

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

uint64_t mf_plan_scratch_bytes(const mf_plan_model *pm, int64_t n_ctx, int batch, int gpu)
{
    const mf_hparams *hp = &pm->hp;
    uint64_t B = (uint64_t)(batch < n_ctx ? batch : n_ctx);
    uint64_t d = (uint64_t)hp->n_embd, q = (uint64_t)hp->n_heads * (uint64_t)hp->head_dim;
    uint64_t kv = (uint64_t)hp->n_kv_heads * (uint64_t)hp->head_dim, V = (uint64_t)hp->n_vocab;
    uint64_t F = max_u64((uint64_t)hp->n_ff, (uint64_t)hp->n_ff_exp);

    uint64_t act = 4 * B * (2 * d + 2 * q + 2 * kv + 2 * F);
    uint64_t moe = 0;
    if (hp->n_experts > 0)
        moe = 4 * B * (uint64_t)hp->n_experts_used * (2 * (uint64_t)hp->n_ff_exp + 2 * d) +
              4 * B * (uint64_t)hp->n_experts;
    /* logits rows are capped at 64 MiB of floats (session.c) */
    uint64_t rows = (64ull << 20) / (4 * V);
    rows = rows < 1 ? 1 : (rows > B ? B : rows);
    uint64_t logits = 4 * rows * V;
    uint64_t rope = 4 * (uint64_t)n_ctx * (uint64_t)hp->head_dim * (uint64_t)pm->rope_tables;
    uint64_t gemm = 0;
    if (gpu) {
        uint64_t max_in = max_u64(max_u64(d, q), F);
        uint64_t tile = (uint64_t)pm->largest_matrix < (32ull << 20) ? (uint64_t)pm->largest_matrix : (32ull << 20);
        gemm = 2 * (max_u64(tile, max_in) + B * max_in);
    }
    return act + moe + logits + rope + gemm;
}

/* ================================================================ devices */

#define GIB (1ull << 30)

/* Memory is the datasheet capacity; vendors' "GB" of memory are binary (an "80GB" H100
 * reports 81559 MiB of 81920 to nvidia-smi), so it is taken as GiB. Bandwidth is the
 * datasheet's peak in GB/s (1e9 bytes/s). Sources, as named in docs/plan.md:
 *
 *   RTX 3050 8GB   NVIDIA GeForce RTX 3050 specifications: 8 GB GDDR6, 128-bit, 14 Gbps
 *                  -> 128 / 8 * 14 = 224 GB/s
 *   RTX 3060 12GB  NVIDIA GeForce RTX 3060 specifications: 12 GB GDDR6, 192-bit, 15 Gbps
 *                  -> 360 GB/s
 *   RTX 4070 12GB  NVIDIA GeForce RTX 4070 specifications: 12 GB GDDR6X, 192-bit, 21 Gbps
 *                  -> 504 GB/s
 *   RTX 4090 24GB  NVIDIA GeForce RTX 4090 specifications: 24 GB GDDR6X, 384-bit, 21 Gbps
 *                  -> 1008 GB/s
 *   RTX 5090 32GB  NVIDIA GeForce RTX 5090 specifications: 32 GB GDDR7, 512-bit, 28 Gbps
 *                  -> 1792 GB/s
 *   A100 40GB      NVIDIA A100 datasheet: 40 GB HBM2, 1555 GB/s (SXM and PCIe)
 *   A100 80GB SXM  NVIDIA A100 datasheet: 80 GB HBM2e, 2039 GB/s
 *   A100 80GB PCIe NVIDIA A100 datasheet: 80 GB HBM2e, 1935 GB/s
 *   H100 SXM 80GB  NVIDIA H100 datasheet: SXM 80 GB HBM3, 3.35 TB/s
 *   H100 PCIe 80GB NVIDIA H100 datasheet / H100 PCIe product brief PB-11133-001: 80 GB,
 *                  2.0 TB/s
 *   H200 141GB     NVIDIA H200 datasheet: 141 GB HBM3e, 4.8 TB/s
 *   Apple M2 Max   Apple newsroom, M2 Pro and M2 Max (Jan 2023): 400 GB/s, up to 96 GB
 *   Apple M3 Max   Apple newsroom, M3 family (Oct 2023) and MacBook Pro tech specs: 400 GB/s
 *                  with the 16-core CPU / 40-core GPU, the only M3 Max offered with 128 GB
 *
 * Headroom. CUDA cards: 1 GiB for what the driver keeps back (nvidia-smi shows 81559 of the
 * H100's 81920 MiB, 143771 of the H200's 144384 MiB) plus a CUDA context with cuBLAS (a few
 * hundred MiB). Apple: the GPU may wire only macOS's recommendedMaxWorkingSetSize, 2/3 of
 * 32 GiB (21845 MiB, printed by llama.cpp's Metal backend on 32 GB M-series Macs: llama.cpp
 * PR #2011, ollama issue #434) and 84% of 128 GiB (107.52 GiB, measured on 128 GB Macs in
 * antirez/ds4 PR #893); the rest is the headroom. */
static const mf_plan_device DEVICES[] = {
    {"RTX 3050 8GB", MF_PLAN_CUDA, 8 * GIB, MF_PLAN_GPU_HEADROOM, 224.0, "NVIDIA GeForce RTX 3050"},
    {"RTX 3060 12GB", MF_PLAN_CUDA, 12 * GIB, MF_PLAN_GPU_HEADROOM, 360.0, "NVIDIA GeForce RTX 3060"},
    {"RTX 4070 12GB", MF_PLAN_CUDA, 12 * GIB, MF_PLAN_GPU_HEADROOM, 504.0, "NVIDIA GeForce RTX 4070"},
    {"RTX 4090 24GB", MF_PLAN_CUDA, 24 * GIB, MF_PLAN_GPU_HEADROOM, 1008.0, "NVIDIA GeForce RTX 4090"},
    {"RTX 5090 32GB", MF_PLAN_CUDA, 32 * GIB, MF_PLAN_GPU_HEADROOM, 1792.0, "NVIDIA GeForce RTX 5090"},
    {"A100 40GB", MF_PLAN_CUDA, 40 * GIB, MF_PLAN_GPU_HEADROOM, 1555.0,
     "NVIDIA A100-SXM4-40GB|NVIDIA A100-PCIE-40GB"},
    {"A100 80GB SXM", MF_PLAN_CUDA, 80 * GIB, MF_PLAN_GPU_HEADROOM, 2039.0, "NVIDIA A100-SXM4-80GB"},
    {"A100 80GB PCIe", MF_PLAN_CUDA, 80 * GIB, MF_PLAN_GPU_HEADROOM, 1935.0, "NVIDIA A100 80GB PCIe"},
    {"H100 SXM 80GB", MF_PLAN_CUDA, 80 * GIB, MF_PLAN_GPU_HEADROOM, 3350.0, "NVIDIA H100 80GB HBM3"},
    {"H100 PCIe 80GB", MF_PLAN_CUDA, 80 * GIB, MF_PLAN_GPU_HEADROOM, 2000.0, "NVIDIA H100 PCIe"},
    {"H200 141GB", MF_PLAN_CUDA, 141 * GIB, MF_PLAN_GPU_HEADROOM, 4800.0, "NVIDIA H200|NVIDIA H200 NVL"},
    {"Apple M2 Max 32GB", MF_PLAN_APPLE, 32 * GIB, 32 * GIB / 3, 400.0, NULL},
    {"Apple M3 Max 128GB", MF_PLAN_APPLE, 128 * GIB, 128 * GIB * 4 / 25, 400.0, NULL},
};

size_t mf_plan_n_devices(void)
{
    return sizeof DEVICES / sizeof *DEVICES;
}

const mf_plan_device *mf_plan_device_at(size_t i)
{
    return i < mf_plan_n_devices() ? &DEVICES[i] : NULL;
}

uint64_t mf_plan_mem_total(void)
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

mf_plan_device mf_plan_host_device(double bandwidth_gbs)
{
    /* the OS and other programs need memory too: a round allowance, not a measurement */
    mf_plan_device d = {"this CPU", MF_PLAN_HOST, mf_plan_mem_total(), MF_PLAN_HOST_HEADROOM, bandwidth_gbs, NULL};
    return d;
}

int mf_plan_find_devices(const mf_plan_device *devs, int n, const char *query, int *idx, int cap)
{
    for (int i = 0; i < n; i++)
        if (!strcasecmp(devs[i].name, query)) {
            if (cap > 0) idx[0] = i;
            return 1;
        }
    int found = 0;
    size_t ql = strlen(query);
    for (int i = 0; i < n && ql > 0; i++) {
        const char *name = devs[i].name;
        int hit = 0;
        for (size_t s = 0; name[s] && !hit; s++) hit = !strncasecmp(name + s, query, ql);
        if (hit) {
            if (found < cap) idx[found] = i;
            found++;
        }
    }
    return found;
}

int mf_plan_cuda_name_matches(const mf_plan_device *dev, const char *device_string)
{
    if (!dev->cuda_names) return 0;
    for (const char *p = dev->cuda_names; *p;) {
        size_t k = strcspn(p, "|");
        /* "NVIDIA GeForce RTX 4070 Ti (sm_89, ...)" must not match "NVIDIA GeForce RTX 4070" */
        if (!strncasecmp(device_string, p, k) &&
            (device_string[k] == 0 || !strncmp(device_string + k, " (", 2)))
            return 1;
        p += k + (p[k] == '|');
    }
    return 0;
}

/* ================================================================ per device */

double mf_plan_bound(double bandwidth_gbs, uint64_t bytes_per_token)
{
    return bytes_per_token ? bandwidth_gbs * 1e9 / (double)bytes_per_token : 0.0;
}

void mf_plan_evaluate(const mf_plan_model *pm, const mf_plan_device *dev, int64_t n_ctx, int kv_elem,
                      mf_plan_fit *out)
{
    memset(out, 0, sizeof *out);
    /* the sessions' default unless asked otherwise (model.h) */
    out->kv_elem = kv_elem > 0 ? kv_elem : MF_KV_DEFAULT_ELEM;
    out->weights = pm->weight_bytes;
    out->kv = mf_plan_kv_alloc_bytes(&pm->hp, n_ctx, MF_PLAN_BATCH, out->kv_elem);
    /* the CUDA staging buffers exist only with minfer's CUDA backend */
    out->scratch = mf_plan_scratch_bytes(pm, n_ctx, MF_PLAN_BATCH, dev->kind == MF_PLAN_CUDA);
    out->need = out->weights + out->kv + out->scratch;
    out->usable = dev->mem_bytes > dev->headroom_bytes ? dev->mem_bytes - dev->headroom_bytes : 0;
    out->fits = out->need <= out->usable;
    out->spare = (int64_t)out->usable - (int64_t)out->need;
    out->bytes_ctx0 = mf_plan_bytes_per_token(pm);
    out->bytes_ctx = out->bytes_ctx0 + mf_kv_bytes(&pm->hp, n_ctx, out->kv_elem);
    out->tok_s_ctx0 = mf_plan_bound(dev->bandwidth_gbs, out->bytes_ctx0);
    out->tok_s_ctx = mf_plan_bound(dev->bandwidth_gbs, out->bytes_ctx);
}

/* ================================================================ measurements */

/* A flat JSON object: {"key": value, ...} with string, number, true/false/null values.
 * Each call hands one key and its value to `field`. Nested values are rejected: the
 * records `minfer bench --save` writes have none. */
typedef struct jcur {
    const char *p;
} jcur;

static void jws(jcur *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n') c->p++;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* a JSON string into out (truncated to cap - 1 bytes, UTF-8); 0 or -1 */
static int jstring(jcur *c, char *out, size_t cap)
{
    if (*c->p != '"') return -1;
    c->p++;
    size_t n = 0;
    for (;;) {
        unsigned char ch = (unsigned char)*c->p++;
        char enc[4];
        size_t len = 1;
        if (ch == '"') break;
        if (ch < 0x20) return -1;   /* raw control byte or the end of the line */
        enc[0] = (char)ch;
        if (ch == '\\') {
            char e = *c->p++;
            const char *simple = "\"\\/bfnrt", *val = "\"\\/\b\f\n\r\t";
            const char *s = e ? strchr(simple, e) : NULL;
            if (s) {
                enc[0] = val[s - simple];
            } else if (e == 'u') {
                unsigned cp = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(c->p[i]);
                    if (h < 0) return -1;
                    cp = cp * 16 + (unsigned)h;
                }
                c->p += 4;
                /* surrogates are not paired here: bench writes \u only for control bytes */
                if (cp < 0x80) {
                    enc[0] = (char)cp;
                } else if (cp < 0x800) {
                    enc[0] = (char)(0xC0 | cp >> 6);
                    enc[1] = (char)(0x80 | (cp & 0x3F));
                    len = 2;
                } else {
                    enc[0] = (char)(0xE0 | cp >> 12);
                    enc[1] = (char)(0x80 | (cp >> 6 & 0x3F));
                    enc[2] = (char)(0x80 | (cp & 0x3F));
                    len = 3;
                }
            } else {
                return -1;
            }
        }
        for (size_t i = 0; i < len; i++)
            if (n + 1 < cap) out[n++] = enc[i];
    }
    if (cap) out[n] = 0;
    return 0;
}

typedef struct jvalue {
    int is_str;
    char str[256];
    double num;
} jvalue;

static int jvalue_read(jcur *c, jvalue *v)
{
    memset(v, 0, sizeof *v);
    if (*c->p == '"') {
        v->is_str = 1;
        return jstring(c, v->str, sizeof v->str);
    }
    const char *words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++)
        if (!strncmp(c->p, words[i], strlen(words[i]))) {
            c->p += strlen(words[i]);
            v->num = i == 0;
            return 0;
        }
    if (*c->p != '-' && !isdigit((unsigned char)*c->p)) return -1;
    char *end;
    v->num = strtod(c->p, &end);
    if (end == c->p) return -1;
    c->p = end;
    return 0;
}

/* a string value into a field, cut to its size (a number leaves the field empty) */
static void set_str(char *dst, size_t cap, const jvalue *v)
{
    size_t n = v->is_str ? strlen(v->str) : 0;
    if (n >= cap) n = cap - 1;
    memcpy(dst, v->str, n);
    dst[n] = 0;
}

/* "tg128" or "tg128@d512" -> 128; other tests -> 0 */
static int gen_tokens(const char *test)
{
    if (strncmp(test, "tg", 2) || !isdigit((unsigned char)test[2])) return 0;
    return atoi(test + 2);
}

int mf_plan_parse_record(const char *line, mf_plan_record *r, mf_err *err)
{
    memset(r, 0, sizeof *r);
    r->tok_s = -1;
    jcur c = {line};
    jws(&c);
    if (*c.p != '{') return mf_errf(err, "not a JSON object");
    c.p++;
    jws(&c);
    int first = 1;
    while (*c.p != '}') {
        if (!first) {
            if (*c.p != ',') return mf_errf(err, "expected ',' or '}' at column %d", (int)(c.p - line) + 1);
            c.p++;
            jws(&c);
        }
        first = 0;
        char key[64];
        jvalue v;
        if (jstring(&c, key, sizeof key)) return mf_errf(err, "bad key at column %d", (int)(c.p - line) + 1);
        jws(&c);
        if (*c.p != ':') return mf_errf(err, "expected ':' at column %d", (int)(c.p - line) + 1);
        c.p++;
        jws(&c);
        if (jvalue_read(&c, &v)) return mf_errf(err, "bad value of '%s' at column %d", key, (int)(c.p - line) + 1);
        jws(&c);
        if (!strcmp(key, "date")) set_str(r->date, sizeof r->date, &v);
        else if (!strcmp(key, "commit")) set_str(r->commit, sizeof r->commit, &v);
        else if (!strcmp(key, "backend")) set_str(r->backend, sizeof r->backend, &v);
        else if (!strcmp(key, "device")) set_str(r->device, sizeof r->device, &v);
        else if (!strcmp(key, "model")) set_str(r->model, sizeof r->model, &v);
        else if (!strcmp(key, "header_sha256")) set_str(r->sha, sizeof r->sha, &v);
        else if (!strcmp(key, "test")) set_str(r->test, sizeof r->test, &v);
        else if (!strcmp(key, "depth") && !v.is_str) r->depth = (int)v.num;
        else if (!strcmp(key, "tok_s_median") && !v.is_str) r->tok_s = v.num;
        else if (!strcmp(key, "bandwidth_gbs") && !v.is_str) r->bandwidth_gbs = v.num;
    }
    c.p++;
    jws(&c);
    if (*c.p) return mf_errf(err, "text after the object at column %d", (int)(c.p - line) + 1);
    if (!r->test[0] || !r->backend[0] || r->tok_s < 0)
        return mf_errf(err, "not a bench record (test, backend or tok_s_median missing)");
    r->n_gen = gen_tokens(r->test);
    return 0;
}

static int same_file(const mf_plan_record *r, const char *model_name, const char *sha)
{
    if (sha && sha[0] && r->sha[0]) return !strcasecmp(r->sha, sha);
    return model_name && !strcmp(r->model, model_name);
}

static int same_device(const mf_plan_record *r, const mf_plan_device *dev, const char *cpu_model)
{
    if (dev->kind == MF_PLAN_CUDA) return !strcmp(r->backend, "cuda") && mf_plan_cuda_name_matches(dev, r->device);
    if (dev->kind != MF_PLAN_HOST || strcmp(r->backend, "cpu")) return 0;
    if (!cpu_model || !cpu_model[0]) return 1;
    /* "Intel(R) Xeon(R) Processor (2 threads)": the model is what precedes " (" */
    const char *paren = strstr(r->device, " (");
    size_t k = paren ? (size_t)(paren - r->device) : strlen(r->device);
    return strlen(cpu_model) == k && !strncmp(r->device, cpu_model, k);
}

int mf_plan_find_measurement(const char *text, const char *model_name, const char *sha,
                             const mf_plan_device *dev, const char *cpu_model,
                             mf_plan_record *out, int *n_bad)
{
    int found = 0, bad = 0, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (len + 1 > cap) {
            char *nb = realloc(line, len + 1);
            if (!nb) break;
            line = nb;
            cap = len + 1;
        }
        memcpy(line, p, len);
        line[len] = 0;
        p = nl ? nl + 1 : p + len;

        size_t blank = strspn(line, " \t\r");
        if (!line[blank]) continue;
        mf_plan_record r;
        if (mf_plan_parse_record(line, &r, NULL)) {
            bad++;
            continue;
        }
        r.line = lineno;
        /* records are appended: the last match is the most recent */
        if (r.n_gen > 0 && same_file(&r, model_name, sha) && same_device(&r, dev, cpu_model)) {
            *out = r;
            found = 1;
        }
    }
    free(line);
    if (n_bad) *n_bad = bad;
    return found;
}
