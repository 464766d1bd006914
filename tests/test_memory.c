/* test_memory.c — memory.h's byte counts against what the code allocates, and against sizes
 * worked out by hand.
 *   - the CPU backend's state allocates exactly mf_mem_cpu_state's bytes (state_bytes counts
 *     every buffer it allocates), for llama and gpt-oss (sliding rings, MoE scratch, two
 *     RoPE tables), several contexts, batches, cache types, thread counts and numbers of
 *     sequences (one KV cache each: S times the cache of one, the rest shared);
 *   - KV slots and bytes by hand: full layers n_ctx, sliding ones min(n_ctx, W + B - 1), and
 *     with a batch of 1 what a context holds;
 *   - the session's memory check is the backend's and counts what it allocates: a context
 *     whose cache cannot fit in this machine's RAM is refused before any large allocation,
 *     with the numbers of mf_mem_cpu_state in the message;
 *   - the CUDA formula on the host: its parts add up, and the sizes of a small gpt-oss by
 *     hand (tests/test_plan.c checks stories260K and gpt-oss-20b the same way). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "memory.h"
#include "minfer.h"

/* A model made by mkmodel; with a key edit, through mf_copy_gguf. */
static mf_model *make_model_edited(const char *name, const char *const *extra, const mf_key_edit *edit)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", mf_tmp_path(name));
    const char *args[32] = {"-o", path, "--threads", "1"};
    int n = 4;
    for (int i = 0; extra[i]; i++) args[n++] = extra[i];
    args[n] = NULL;
    mf_proc pr = mf_run_tool("mkmodel", args);
    if (pr.rc) fail_msg("mkmodel: %s", pr.err);
    mf_proc_free(&pr);
    if (edit) {
        char edited[4200];
        snprintf(edited, sizeof edited, "%s.edited", path);
        mf_copy_gguf(path, edited, edit, 1);
        unlink(path);
        snprintf(path, sizeof path, "%.4000s", edited);
    }
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) fail_msg("%s", err.msg);
    unlink(path); /* the mapping stays valid */
    return m;
}

static mf_model *make_model(const char *name, const char *const *extra) { return make_model_edited(name, extra, NULL); }

/* gpt-oss tiny with a RoPE base of its own on the sliding layers: two tables */
static const mf_key_edit SWA_BASE = {"gpt-oss.rope.freq_base_swa", MF_GGUF_F32, 0, 10000.0f, NULL};

static void expect_cpu_state(mf_model *m, int n_ctx, int max_batch, int kv_f16, int threads, int n_seq)
{
    mf_err err;
    mf_backend *be = mf_backend_cpu_new(threads, &err);
    if (!be) fail_msg("%s", err.msg);
    mf_state_opts o = {.n_ctx = n_ctx, .max_batch = max_batch, .kv_f16 = kv_f16, .n_seq = n_seq};
    mf_bmodel *bm = be->prepare(be, m, NULL, NULL, &err);
    if (!bm) fail_msg("%s", err.msg);
    mf_bstate *st = be->state_new(be, bm, &o, &err);
    if (!st) fail_msg("%s", err.msg);
    mf_mem_cpu mem;
    mf_mem_cpu_state(&m->hp, &o, threads, &mem);
    uint64_t got = be->state_bytes(be, st);
    if (got != mem.sum.total)
        fail_msg("%s, ctx %d, batch %d, kv_f16 %d, %d threads, %d sequences: the state allocated %llu bytes, "
                 "memory.h says %llu",
                 m->hp.arch_name, n_ctx, max_batch, kv_f16, threads, n_seq, (unsigned long long)got,
                 (unsigned long long)mem.sum.total);
    assert_int_equal(mem.sum.total, mem.sum.kv + mem.sum.rope + mem.sum.scratch);
    int S = n_seq > 1 ? n_seq : 1;
    /* the cache by hand: each layer's slots (a ring on sliding layers) rounded up to whole K
     * tiles of 16 (engine/cpu/attention.c), K and V of Hkv x hd elements each, per sequence */
    uint64_t kv = 0;
    for (int l = 0; l < m->hp.n_layers; l++) {
        uint64_t slots = ((uint64_t)mf_mem_kv_slots(&m->hp, l, n_ctx, max_batch) + 15) / 16 * 16;
        kv += 2 * slots * (uint64_t)m->hp.n_kv_heads * (uint64_t)m->hp.head_dim * (kv_f16 ? 2u : 4u);
    }
    assert_int_equal(mem.sum.kv, (uint64_t)S * kv);
    /* everything but the caches is shared by the sequences */
    mf_state_opts one = o;
    one.n_seq = 1;
    mf_mem_cpu mem1;
    mf_mem_cpu_state(&m->hp, &one, threads, &mem1);
    assert_int_equal(mem.sum.scratch, mem1.sum.scratch);
    assert_int_equal(mem.sum.rope, mem1.sum.rope);
    be->state_free(be, st);
    be->unprepare(be, bm);
    be->free(be);
}

static void cpu_state_is_predicted(void **state)
{
    (void)state;
    const char *llama[] = {"--arch", "llama", "--type", "Q4_0", NULL};
    const char *oss[] = {"--arch", "gpt-oss", NULL};
    /* gpt-oss tiny as mkmodel makes it (one RoPE base), and with a base for the sliding
     * layers (two tables) */
    mf_model *ms[] = {make_model("mem-llama.gguf", llama), make_model_edited("mem-oss.gguf", oss, &SWA_BASE),
                      make_model("mem-oss1.gguf", oss)};
    for (int i = 0; i < 3; i++) {
        expect_cpu_state(ms[i], 64, 1, 0, 1, 0);
        expect_cpu_state(ms[i], 100, 17, 1, 3, 1);
        expect_cpu_state(ms[i], 256, 256, 0, 2, 1);
        expect_cpu_state(ms[i], 100, 17, 0, 2, 4);
        expect_cpu_state(ms[i], 64, 16, 1, 1, 16);
        mf_model_free(ms[i]);
    }
}

/* gpt-oss tiny: 4 layers, layers 0 and 2 slide with W = 8; KV heads 2 of 16: a position of
 * a layer is 2 x 2 x 16 x 4 = 256 B in float32.
 *   ctx 100, batch 17: sliding rings of min(100, 8 + 16) = 24 slots, full layers 100:
 *     256 x (2 x 24 + 2 x 100) = 63488
 *   batch 1 (what a context of 100 holds): 256 x (2 x 8 + 2 x 100) = 55296
 *   ctx 5 < W: every layer 5 slots, the batch capped at the context: 256 x 4 x 5 = 5120 */
static void kv_by_hand(void **state)
{
    (void)state;
    const char *oss[] = {"--arch", "gpt-oss", NULL};
    mf_model *m = make_model_edited("mem-kv.gguf", oss, &SWA_BASE);
    const mf_hparams *hp = &m->hp;
    assert_int_equal(hp->window, 8);
    assert_int_equal(mf_mem_kv_slots(hp, 0, 100, 17), 24);
    assert_int_equal(mf_mem_kv_slots(hp, 1, 100, 17), 100);
    assert_int_equal(mf_mem_kv_slots(hp, 2, 100, 1), 8);
    assert_int_equal(mf_mem_kv_bytes(hp, 100, 17, 4), 63488);
    assert_int_equal(mf_mem_kv_bytes(hp, 100, 1, 4), 55296);
    assert_int_equal(mf_mem_kv_bytes(hp, 100, 1, 2), 55296 / 2);
    assert_int_equal(mf_mem_kv_bytes(hp, 5, 512, 4), 5120);
    assert_int_equal(mf_mem_kv_per_position(hp, 4), 1024);
    assert_int_equal(mf_mem_rope_tables(hp), 2);
    assert_int_equal(mf_mem_rope_table(hp, 0), 0);
    assert_int_equal(mf_mem_rope_table(hp, 1), 1);
    assert_int_equal(mf_mem_rope_table(hp, 2), 0);
    mf_model_free(m);
}

/* A llama with 2 layers of 32 KV heads of 128 (header only, the data a hole): a position takes
 * 2 x 2 x 32 x 128 x 4 = 65536 B, a context of 2^24 positions 1.1 TB: no machine running this
 * test has that, so the session is refused by the CPU backend's check, which names the cache
 * as memory.h counts it. */
static void session_refused_by_backend_check(void **state)
{
    (void)state;
    const char *big[] = {"--arch",   "llama", "--dim", "4096", "--heads",  "32", "--kv-heads", "32",
                         "--layers", "2",     "--ff",  "64",   "--sparse", "1",  NULL};
    mf_model *m = make_model("mem-big.gguf", big);
    mf_session_opts o = mf_session_defaults();
    o.device = "cpu";
    o.n_threads = 1;
    o.n_ctx = 1 << 24;
    o.kv_f16 = 0; /* the float32 cache of the sizes above (the default is binary16) */
    mf_err err;
    mf_session *s = mf_session_new(m, &o, &err);
    assert_null(s);
    mf_state_opts so = {.n_ctx = 1 << 24, .max_batch = 512, .kv_f16 = 0};
    mf_mem_cpu mem;
    mf_mem_cpu_state(&m->hp, &so, 1, &mem);
    assert_int_equal(mem.sum.kv, 65536ull << 24);
    char want[64];
    snprintf(want, sizeof want, "KV cache %.2f GB", mem.sum.kv / 1e9);
    if (!strstr(err.msg, want) || !strstr(err.msg, "GB of RAM")) fail_msg("expected '%s' in: %s", want, err.msg);
    mf_model_free(m);
}

/* The CUDA formula of gpt-oss tiny (d 128, 4 heads of 16, 2 KV heads, 4 experts top-2 of
 * width 96, vocab 384 as mkmodel sizes its synthetic vocabulary: checked below) at ctx 100,
 * batch 17, float32 cache, 3 flash-decoding splits:
 *   step (tokens, sequences, positions) 3 x 4 x 17 = 204, argmax 4, partials 4 x 3 x 4 x 16 = 768 and 4 x 2 x 3 x 4 = 96
 *   MoE, K = 17 x 2 = 34: router logits 4 x 17 x 4 = 272; sel, selw, perm, inv 4 x 136 =
 *     544; gate/up outputs 2 x 4 x 34 x 96 = 26112; gathered in/out 2 x 4 x 34 x 128 =
 *     34816; counts 4 x 2 x 5 = 40
 *   F16 prompt scratch (17 >= 16 rows): tile = largest matrix, the output 128 x V, and
 *     activations 2 x 17 x 128 (widest input: d = 128 > 96, 64) = 4352
 *   RoPE: 2 tables x cos, sin x 4 x 100 x 8 = 12800; KV 63488 (kv_by_hand) */
static void cuda_formula_by_hand(void **state)
{
    (void)state;
    const char *oss[] = {"--arch", "gpt-oss", NULL};
    mf_model *m = make_model_edited("mem-cuda.gguf", oss, &SWA_BASE);
    const mf_hparams *hp = &m->hp;
    int64_t V = hp->n_vocab;
    mf_state_opts o = {.n_ctx = 100, .max_batch = 17, .kv_f16 = 0};
    mf_mem_cuda c;
    mf_mem_cuda_state(hp, &o, 3, &c);
    assert_int_equal(c.params, 204);
    assert_int_equal(c.arg, 4);
    assert_int_equal(c.part_o, 768);
    assert_int_equal(c.part_ml, 96);
    assert_int_equal(c.ff, 0);
    assert_int_equal(c.logits, 272);
    assert_int_equal(c.sel, 136);
    assert_int_equal(c.eg, 13056);
    assert_int_equal(c.hg, 17408);
    assert_int_equal(c.counts, 40);
    assert_int_equal(c.wh, 2 * 128 * V);
    assert_int_equal(c.xh, 4352);
    assert_int_equal(c.sum.rope, 12800);
    assert_int_equal(c.sum.kv, 63488);
    uint64_t scratch = 204 + 4 + 768 + 96 + 272 + 544 + 26112 + 34816 + 40 + 2 * 128 * (uint64_t)V + 4352;
    assert_int_equal(c.sum.scratch, scratch);
    assert_int_equal(c.sum.total, 63488 + 12800 + scratch);
    assert_int_equal(c.pinned, 204 + 4 + 40);
    /* 3 sequences: three caches, nothing else grows */
    o.n_seq = 3;
    mf_mem_cuda c3;
    mf_mem_cuda_state(hp, &o, 3, &c3);
    assert_int_equal(c3.sum.kv, 3 * 63488);
    assert_int_equal(c3.sum.scratch, scratch);
    assert_int_equal(c3.sum.rope, 12800);
    o.n_seq = 0;
    /* below 16 rows and without experts there is no F16 scratch */
    const char *llama[] = {"--arch", "llama", NULL};
    mf_model *l = make_model("mem-cuda-llama.gguf", llama);
    o.max_batch = 8;
    mf_mem_cuda_state(&l->hp, &o, 3, &c);
    assert_int_equal(c.wh, 0);
    assert_int_equal(c.xh, 0);
    assert_int_equal(c.ff, 4 * 8 * (uint64_t)l->hp.n_ff);
    mf_model_free(l);
    mf_model_free(m);
}

/* The device copy's layout (memory.h mf_mem_device_weights, what upload.cu allocates): every
 * weight present once at a 256-aligned offset, in list order, without overlap; the total is
 * the sum of the sizes rounded up to 256 bytes. */
static void device_weights_layout(void **state)
{
    (void)state;
    const char *oss[] = {"--arch", "gpt-oss", NULL};
    mf_model *m = make_model("mem-dev.gguf", oss);
    int n = mf_model_n_weights(m);
    uint64_t *off = calloc((size_t)n, sizeof *off), end = 0, sum = 0;
    uint64_t total = mf_mem_device_weights(m, 256, off);
    for (int i = 0; i < n; i++) {
        const mf_weight *w = mf_model_weight(m, i);
        if (!w->name) {
            assert_true(off[i] == UINT64_MAX);
            continue;
        }
        assert_int_equal(w->slot, i); /* mkmodel writes output.weight: nothing is tied */
        assert_int_equal(off[i] % 256, 0);
        assert_true(off[i] >= end);
        end = off[i] + w->nbytes;
        sum += (w->nbytes + 255) / 256 * 256;
    }
    assert_int_equal(total, sum);
    assert_true(end <= total);
    free(off);
    mf_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cpu_state_is_predicted),
        cmocka_unit_test(kv_by_hand),
        cmocka_unit_test(session_refused_by_backend_check),
        cmocka_unit_test(cuda_formula_by_hand),
        cmocka_unit_test(device_weights_layout),
    };
    return mf_run("test_memory", tests, sizeof tests / sizeof *tests);
}
