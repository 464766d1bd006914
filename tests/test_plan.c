/* test_plan.c — `minfer plan`: the arithmetic of engine/plan.c and the driver end to end.
 *
 * Every expected number is worked out by hand in a comment from the tensor shapes and the
 * formulas of plan.h (row bytes from docs/gguf.md §1: F32 4 B per value, F16 2, Q8_0 34 B per 32,
 * MXFP4 17 B per 32, IQ4_NL 18 B per 32). Byte counts are integers and compared exactly;
 * speeds are one double division and compared to 1e-9 relative (a few ulps of the inputs).
 *
 * Models: stories260K.gguf (skipped when absent), small files written here with the GGUF
 * writer (their bytes are zeros: the plan reads only the header), a tiny gpt-oss from
 * mkmodel (cross-checked against model.c's own per-token count), and a gpt-oss-20b-shaped
 * file written by the writer's sparse mode: a complete header and 12 GB of data left as a
 * hole, so the real shape costs no disk and no time.
 */
#include "harness.h"
#include "backend.h"
#include "gguf.h"
#include "model.h"
#include "plan.h"
#include "plan_devices.h"
#include "plan_records.h"
#include "types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ================================================================ helpers */

static void expect_near(double got, double want, const char *what)
{
    double tol = 1e-9 * fabs(want);
    if (fabs(got - want) > tol) fail_msg("%s = %.12g, expected %.12g", what, got, want);
}

static int zero_fill(void *user, uint64_t index, const mf_gguf_tensor *t, void *buf, mf_err *err)
{
    (void)user;
    (void)index;
    (void)err;
    memset(buf, 0, t->nbytes);
    return 0;
}

static void add_tensor(mf_gguf_writer *w, const char *name, uint32_t type, uint32_t nd, int64_t e0, int64_t e1,
                       int64_t e2)
{
    mf_err err;
    int64_t ne[3] = {e0, e1, e2};
    if (mf_gguf_w_tensor(w, name, type, nd, ne, NULL, &err) < 0) fail_msg("%s", err.msg);
}

static void write_file(mf_gguf_writer *w, const char *path)
{
    mf_err err;
    if (mf_gguf_w_write(w, path, zero_fill, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
}

static void read_plan(const char *path, mf_plan_model *pm)
{
    mf_err err;
    mf_gguf *g = mf_gguf_open(path, &err);
    if (!g) fail_msg("%s", err.msg);
    if (mf_plan_model_read(g, pm, &err)) fail_msg("%s", err.msg);
    mf_gguf_close(g);
}

/* The small gpt-oss of these tests ("M"): d 64, 4 layers, 4 heads / 2 KV heads of 16,
 * 8 experts (2 used) of width 32, window 4 (pattern 2: layers 0 and 2 slide), vocab 256.
 * Byte sizes:
 *   token_embd, output [64, 256] Q8_0: row of 64 = 2 blocks x 34 = 68 B, x 256 = 17408 each
 *   output_norm [64] F32 = 256
 *   per layer: attn_q, attn_output [64, 64] Q8_0 = 64 x 68 = 4352 each
 *              attn_k, attn_v [64, 32] Q8_0 = 32 x 68 = 2176 each
 *              ffn_gate_inp [64, 8] F32 = 2048
 *              -> dense per layer 4352 + 2176 + 2176 + 4352 + 2048 = 15104
 *              ffn_gate_exps, ffn_up_exps [64, 32, 8] MXFP4: row of 64 = 2 x 17 = 34 B,
 *                x 32 rows x 8 experts = 8704 each
 *              ffn_down_exps [32, 64, 8] MXFP4: row of 32 = 17 B, x 64 x 8 = 8704
 *              ffn_down_exps.bias [64, 8] F32 = 2048
 *              -> experts per layer 3 x 8704 + 2048 = 28160 */
static const char *write_moe(const char *name)
{
    const char *path = mf_tmp_path(name);
    mf_gguf_writer *w = mf_gguf_writer_new();
    assert_non_null(w);
    int rc = mf_gguf_w_str(w, "general.architecture", "gpt-oss");
    rc |= mf_gguf_w_u32(w, "gpt-oss.context_length", 1024);
    rc |= mf_gguf_w_u32(w, "gpt-oss.embedding_length", 64);
    rc |= mf_gguf_w_u32(w, "gpt-oss.block_count", 4);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.head_count", 4);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.head_count_kv", 2);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.key_length", 16);
    rc |= mf_gguf_w_f32(w, "gpt-oss.attention.layer_norm_rms_epsilon", 1e-5f);
    rc |= mf_gguf_w_u32(w, "gpt-oss.expert_count", 8);
    rc |= mf_gguf_w_u32(w, "gpt-oss.expert_used_count", 2);
    rc |= mf_gguf_w_u32(w, "gpt-oss.expert_feed_forward_length", 32);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.sliding_window", 4);
    rc |= mf_gguf_w_u32(w, "gpt-oss.vocab_size", 256);
    assert_int_equal(rc, 0);
    add_tensor(w, "token_embd.weight", MF_TYPE_Q8_0, 2, 64, 256, 1);
    add_tensor(w, "output_norm.weight", MF_TYPE_F32, 1, 64, 1, 1);
    add_tensor(w, "output.weight", MF_TYPE_Q8_0, 2, 64, 256, 1);
    for (int l = 0; l < 4; l++) {
        char n[64];
#define T(suffix, type, nd, a, b, c) \
    (snprintf(n, sizeof n, "blk.%d.%s", l, suffix), add_tensor(w, n, type, nd, a, b, c))
        T("attn_q.weight", MF_TYPE_Q8_0, 2, 64, 64, 1);
        T("attn_k.weight", MF_TYPE_Q8_0, 2, 64, 32, 1);
        T("attn_v.weight", MF_TYPE_Q8_0, 2, 64, 32, 1);
        T("attn_output.weight", MF_TYPE_Q8_0, 2, 64, 64, 1);
        T("ffn_gate_inp.weight", MF_TYPE_F32, 2, 64, 8, 1);
        T("ffn_gate_exps.weight", MF_TYPE_MXFP4, 3, 64, 32, 8);
        T("ffn_up_exps.weight", MF_TYPE_MXFP4, 3, 64, 32, 8);
        T("ffn_down_exps.weight", MF_TYPE_MXFP4, 3, 32, 64, 8);
        T("ffn_down_exps.bias", MF_TYPE_F32, 2, 64, 8, 1);
#undef T
    }
    write_file(w, path);
    return path;
}

/* ================================================================ the model */

/* stories260K: d 64, 5 layers, 8 heads / 4 KV heads of 8, FFN 172, vocab 512, all F32,
 * trained context 2048 (its own keys; `minfer inspect` lists the same 48 tensors).
 *   token_embd, output [64, 512]: 131072 B each; output_norm 256
 *   per layer: q, o [64, 64] 16384 each; k, v [64, 32] 8192 each; gate, up [64, 172] and
 *              down [172, 64] 44032 each; two norms 256 each
 *              = 2*16384 + 2*8192 + 3*44032 + 2*256 = 181760
 *   weights = 131072 + 256 + 131072 + 5 * 181760 = 1171200 (the file is 1185376 B with a
 *             14176 B header)
 *   per token = 1171200 - 131072 + one row of 64 floats (256) = 1040384
 *   KV per position: 5 layers x 2 x 4 heads x 8 x 4 B = 1280 (f32), 640 (f16)
 *   scratch (ctx 2048, B = 512, one thread; memory.h):
 *     session     x, h, q, attn_out 512*64 floats each, k, v 512*32: 4*163840 = 655360
 *                 logits: rows min(512, 64 MiB / (4*512) = 32768) = 512: 4*512*512 = 1048576
 *                                                                      = 1703936
 *     RoPE        cos and sin, 2048 x 4 pairs, one table: 2*4*2048*4  = 65536
 *     CPU state   step (tokens, sequences, positions) 3*4*512 = 6144, krow 4*32 = 128 (per
 *                 thread), qx one row per token 512*(4*172 + 256) = 483328, tmp (per thread
 *                 two blocks of 64 tokens x 16) 4*2*64*16 = 8192, FFN gate and up
 *                 2*4*512*172 = 704512, scores 4*2*2048 = 16384, dequantized tile
 *                 4*64*172 = 44032                                     = 1262720
 *     CPU total                                                        = 3032192
 *     CUDA state  step 3*4*512 = 6144, argmax 4, partials (64 splits of 32 keys at most)
 *                 4*64*8*8 = 16384 and 4*2*64*8 = 4096, FFN 704512, F16 tile 2*(output
 *                 64*512 = 32768) = 65536 and activations 2*512*172 = 176128 = 972804
 *     CUDA total                                                       = 2742276 */
static void dense_stories(void **state)
{
    (void)state;
    const char *path = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(path);
    mf_plan_model pm;
    read_plan(path, &pm);
    assert_int_equal(pm.n_tensors, 48);
    assert_int_equal(pm.weight_bytes, 1171200);
    assert_int_equal(pm.type_bytes[MF_TYPE_F32], 1171200);
    assert_int_equal(pm.type_tensors[MF_TYPE_F32], 48);
    assert_int_equal(pm.file_bytes, 1185376);
    assert_int_equal(pm.n_unsupported, 0);
    assert_int_equal(pm.per_token.tied_output, 0);
    assert_int_equal(pm.per_token.embd_row, 256);
    assert_int_equal(mf_plan_bytes_per_token(&pm), 1040384);
    assert_int_equal(pm.per_token.experts, 0);
    assert_int_equal(mf_mem_kv_per_position(&pm.hp, 4), 1280);
    assert_int_equal(mf_mem_kv_per_position(&pm.hp, 2), 640);
    assert_int_equal(mf_mem_kv_bytes(&pm.hp, 2048, 1, 4), 2048 * 1280);
    /* no window: the allocation is the full context on every layer */
    assert_int_equal(mf_mem_kv_bytes(&pm.hp, 2048, MF_PLAN_BATCH, 4), 2048 * 1280);
    assert_int_equal(mf_plan_scratch_bytes(&pm, 2048, MF_PLAN_BATCH, 0, 1), 3032192);
    assert_int_equal(mf_plan_scratch_bytes(&pm, 2048, MF_PLAN_BATCH, 1, 0), 2742276);

    /* the loaded model counts the same weights */
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) fail_msg("%s", err.msg);
    assert_int_equal(m->weight_bytes, pm.weight_bytes);
    mf_model_free(m);
}

/* A tied llama (no output.weight) with IQ4_NL FFN matrices, a type minfer has no kernel for:
 * d 32, 1 layer, 2 heads of 16, FFN 64, vocab 64.
 *   token_embd [32, 64] F16: row 64 B, 4096 B; output_norm 128
 *   blk.0: attn_norm, ffn_norm 128 each; q, k, v, o [32, 32] F32 4096 each;
 *          gate, up [32, 64] IQ4_NL: row of 32 = 1 block of 18 B, x 64 = 1152 each;
 *          down [64, 32] IQ4_NL: row of 64 = 36 B, x 32 = 1152
 *   weights = 4096 + 128 + 2*128 + 4*4096 + 3*1152 = 24320
 *   per token = every tensor but the embedding (24320 - 4096 = 20224) + one row (64) + the
 *               embedding again, whole, as the tied output matrix (4096) = 24384 */
static const char *write_tied_iq(const char *name)
{
    const char *path = mf_tmp_path(name);
    mf_gguf_writer *w = mf_gguf_writer_new();
    assert_non_null(w);
    int rc = mf_gguf_w_str(w, "general.architecture", "llama");
    rc |= mf_gguf_w_u32(w, "llama.context_length", 256);
    rc |= mf_gguf_w_u32(w, "llama.embedding_length", 32);
    rc |= mf_gguf_w_u32(w, "llama.block_count", 1);
    rc |= mf_gguf_w_u32(w, "llama.attention.head_count", 2);
    rc |= mf_gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    rc |= mf_gguf_w_u32(w, "llama.feed_forward_length", 64);
    rc |= mf_gguf_w_u32(w, "llama.vocab_size", 64);
    assert_int_equal(rc, 0);
    add_tensor(w, "token_embd.weight", MF_TYPE_F16, 2, 32, 64, 1);
    add_tensor(w, "output_norm.weight", MF_TYPE_F32, 1, 32, 1, 1);
    add_tensor(w, "blk.0.attn_norm.weight", MF_TYPE_F32, 1, 32, 1, 1);
    add_tensor(w, "blk.0.attn_q.weight", MF_TYPE_F32, 2, 32, 32, 1);
    add_tensor(w, "blk.0.attn_k.weight", MF_TYPE_F32, 2, 32, 32, 1);
    add_tensor(w, "blk.0.attn_v.weight", MF_TYPE_F32, 2, 32, 32, 1);
    add_tensor(w, "blk.0.attn_output.weight", MF_TYPE_F32, 2, 32, 32, 1);
    add_tensor(w, "blk.0.ffn_norm.weight", MF_TYPE_F32, 1, 32, 1, 1);
    add_tensor(w, "blk.0.ffn_gate.weight", MF_TYPE_IQ4_NL, 2, 32, 64, 1);
    add_tensor(w, "blk.0.ffn_up.weight", MF_TYPE_IQ4_NL, 2, 32, 64, 1);
    add_tensor(w, "blk.0.ffn_down.weight", MF_TYPE_IQ4_NL, 2, 64, 32, 1);
    write_file(w, path);
    return path;
}

static void tied_and_unsupported(void **state)
{
    (void)state;
    const char *path = write_tied_iq("tied.gguf");
    mf_plan_model pm;
    read_plan(path, &pm);
    assert_int_equal(pm.weight_bytes, 24320);
    assert_int_equal(pm.per_token.tied_output, 1);
    assert_int_equal(pm.per_token.embd_row, 64);
    assert_int_equal(mf_plan_bytes_per_token(&pm), 24384);
    assert_int_equal(pm.type_bytes[MF_TYPE_IQ4_NL], 3 * 1152);
    assert_int_equal(pm.type_tensors[MF_TYPE_IQ4_NL], 3);
    assert_int_equal(pm.n_unsupported, 3);
    assert_string_equal(pm.unsupported, "IQ4_NL");
    unlink(path);
}

/* The MoE file M (write_moe):
 *   weights  = 2*17408 + 256 + 4*(15104 + 28160) = 35072 + 173056 = 208128
 *   experts  = 4 * 28160 = 112640; per token k/E = 2/8 of each expert tensor:
 *              8704 / 8 * 2 = 2176 (x3) + 2048 / 8 * 2 = 512 -> 7040 per layer, 28160 in all
 *   dense    = 256 + 17408 (output) + 68 (one embedding row) + 4 * 15104 = 78148
 *   per token = 78148 + 28160 = 106308 */
static void moe_k_of_e(void **state)
{
    (void)state;
    const char *path = write_moe("moe.gguf");
    mf_plan_model pm;
    read_plan(path, &pm);
    assert_int_equal(pm.hp.n_experts, 8);
    assert_int_equal(pm.hp.n_experts_used, 2);
    assert_int_equal(pm.weight_bytes, 208128);
    assert_int_equal(pm.type_bytes[MF_TYPE_MXFP4], 4 * 3 * 8704);
    assert_int_equal(pm.per_token.experts_all, 112640);
    assert_int_equal(pm.per_token.experts, 28160);
    assert_int_equal(pm.per_token.dense, 78148);
    assert_int_equal(mf_plan_bytes_per_token(&pm), 106308);
    unlink(path);
}

/* M again: KV per layer and position = 2 x 2 KV heads x 16 x 4 B = 256 (f32). Layers 0 and 2
 * slide with W = 4 (l % 2 < 1), layers 1 and 3 attend to everything.
 *   at ctx 1,000,000:  2 x 256 x 4 + 2 x 256 x 1,000,000 = 2048 + 512,000,000 = 512,002,048
 *   without window:    4 x 256 x 1,000,000 = 1,024,000,000 (the window saves 511,997,952)
 *   allocated (batch 512): sliding layers keep a ring of min(ctx, 4 + 512 - 1) = 515 slots:
 *                      2 x 256 x 515 + 512,000,000 = 512,263,680
 *   at ctx 3 (< W):    4 x 256 x 3 = 3072, nothing capped; allocated: batch capped at 3 -> the
 *                      ring is min(3, 4 + 2) = 3 slots: 3072 */
static void sliding_window(void **state)
{
    (void)state;
    const char *path = write_moe("swa.gguf");
    mf_plan_model pm;
    read_plan(path, &pm);
    assert_int_equal(pm.hp.window, 4);
    assert_int_equal(pm.hp.swa_pattern, 2);
    assert_int_equal(mf_mem_kv_per_position(&pm.hp, 4), 1024);
    assert_int_equal(mf_mem_kv_bytes(&pm.hp, 1000000, 1, 4), 512002048ull);
    assert_int_equal(1000000ull * mf_mem_kv_per_position(&pm.hp, 4), 1024000000ull);
    assert_int_equal(mf_mem_kv_bytes(&pm.hp, 1000000, MF_PLAN_BATCH, 4), 512263680ull);
    assert_int_equal(mf_mem_kv_bytes(&pm.hp, 3, 1, 4), 3072);
    assert_int_equal(mf_mem_kv_bytes(&pm.hp, 3, MF_PLAN_BATCH, 4), 3072);
    /* binary16 halves everything */
    assert_int_equal(mf_mem_kv_bytes(&pm.hp, 1000000, 1, 2), 256001024ull);
    unlink(path);
}

/* Scratch of M at ctx 1024, B = 512 (d 64, q 64, kv 32, H 4 of 16, Hkv 2, F_exp 32 (no dense
 * FFN), k 2, E 8, V 256, one RoPE table set since no freq_base_swa key), one thread:
 *   session     x, h, q, attn_out 512*64 floats, k, v 512*32: 4*163840 = 655360; logits
 *               rows min(512, 67108864 / 1024) = 512: 4*512*256 = 524288     = 1179648
 *   RoPE        2*4*1024*8                                                   = 65536
 *   CPU state   step 6144, krow 128, qx 512*(4*64 + 256) = 262144, tmp 4*2*64*16 = 8192,
 *               gate/up 2*4*512*32 = 131072, scores 4*2*1024 = 8192, tile 4*64*64 =
 *               16384; MoE (K = 512*2 = 1024 selections): router 4*512*8 = 16384,
 *               sel, selw, ex_tok, ex_slot 4*4*1024 = 16384, ex_in, ex_out 2*4*512*64
 *               = 262144, ex_acc 4*1024*64 = 262144                           = 989312
 *   CPU total                                                                 = 2234496
 *   CUDA state  step 6144, argmax 4, partials (32 splits) 4*32*4*16 = 8192 and 4*2*32*4 =
 *               1024; MoE: logits 16384, sel, selw, perm, inv 16384, gate/up outputs
 *               2*4*1024*32 = 262144, gathered in/out 2*4*1024*64 = 524288, counts
 *               4*2*9 = 72; F16 tile 2*16384 (output 64*256) = 32768, activations
 *               2*512*64 = 65536                                              = 932940
 *   CUDA total                                                                = 2178124 */
static void scratch_moe(void **state)
{
    (void)state;
    const char *path = write_moe("scratch.gguf");
    mf_plan_model pm;
    read_plan(path, &pm);
    assert_int_equal(pm.rope_tables, 1);
    assert_int_equal(pm.largest_matrix, 16384);
    assert_int_equal(mf_plan_scratch_bytes(&pm, 1024, MF_PLAN_BATCH, 0, 1), 2234496);
    assert_int_equal(mf_plan_scratch_bytes(&pm, 1024, MF_PLAN_BATCH, 1, 0), 2178124);
    unlink(path);
}

/* tools/mkmodel's tiny gpt-oss (d 128, 4 layers, 4 experts top-2 of width 96): the expert
 * part of the bytes a token reads, worked out by hand:
 *   gate, up [128, 96, 4] MXFP4: row of 128 = 4 x 17 = 68 B, x 96 x 4 = 26112 each
 *   down [96, 128, 4] MXFP4: row of 96 = 3 x 17 = 51 B, x 128 x 4 = 26112
 *   biases F32: gate, up [96, 4] = 1536 each, down [128, 4] = 2048
 *   per layer 3 x 26112 + 1536 + 1536 + 2048 = 83456; 4 layers: 333824; per token 2/4: 166912 */
static void mkmodel_cross_check(void **state)
{
    (void)state;
    const char *mk = mf_tool_path("mkmodel");
    char cmd[3072];
    if (access(mk, X_OK) != 0) mf_skip("mkmodel is not built");
    const char *path = mf_tmp_path("oss-tiny.gguf");
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' --arch gpt-oss --threads 1 > /dev/null 2>&1", mk, path);
    assert_int_equal(system(cmd), 0);
    mf_plan_model pm;
    read_plan(path, &pm);
    assert_int_equal(pm.per_token.experts_all, 333824);
    assert_int_equal(pm.per_token.experts, 166912);
    unlink(path);
}

/* ================================================================ devices, fit, bound */

static void device_table(void **state)
{
    (void)state;
    size_t n = plan_n_devices();
    assert_true(n >= 13);
    mf_plan_device all[40];
    assert_true(n < 40);
    for (size_t i = 0; i < n; i++) {
        const mf_plan_device *d = plan_device_at(i);
        assert_non_null(d);
        assert_true(d->mem_bytes > d->headroom_bytes);
        assert_true(d->bandwidth_gbs > 0);
        assert_int_equal(d->kind == MF_PLAN_CUDA, d->cuda_names != NULL);
        all[i] = *d;
    }
    assert_null(plan_device_at(n));
    all[n] = plan_host_device(12.5);
    int na = (int)n + 1;
    assert_int_equal(all[n].kind, MF_PLAN_HOST);
    assert_int_equal(all[n].headroom_bytes, PLAN_HOST_HEADROOM);
    /* the host memory is MemTotal; this test machine has some */
    assert_int_equal(all[n].mem_bytes, mf_mem_host_total());
    assert_true(all[n].mem_bytes > 0);

    int idx[40];
    /* datasheet values of a few rows: H100 SXM 3.35 TB/s, H100 PCIe 2.0 TB/s, 80 GiB each */
    assert_int_equal(plan_find_devices(all, na, "h100", idx, 40), 2);
    assert_string_equal(all[idx[0]].name, "H100 SXM 80GB");
    assert_true(all[idx[0]].bandwidth_gbs == 3350.0);
    assert_int_equal(all[idx[0]].mem_bytes, 80ull << 30);
    assert_string_equal(all[idx[1]].name, "H100 PCIe 80GB");
    assert_true(all[idx[1]].bandwidth_gbs == 2000.0);
    assert_int_equal(plan_find_devices(all, na, "4090", idx, 40), 1);
    assert_true(all[idx[0]].bandwidth_gbs == 1008.0);
    assert_int_equal(all[idx[0]].mem_bytes, 24ull << 30);
    assert_int_equal(plan_find_devices(all, na, "H200", idx, 40), 1);
    assert_true(all[idx[0]].bandwidth_gbs == 4800.0);
    /* an exact name wins over the rows that merely contain it */
    assert_int_equal(plan_find_devices(all, na, "a100 40gb", idx, 40), 1);
    assert_int_equal(plan_find_devices(all, na, "A100", idx, 40), 3);
    assert_int_equal(plan_find_devices(all, na, "cpu", idx, 40), 1);
    assert_int_equal(idx[0], (int)n);
    assert_int_equal(plan_find_devices(all, na, "apple", idx, 40), 2);
    assert_int_equal(plan_find_devices(all, na, "TPU", idx, 40), 0);
    assert_int_equal(plan_find_devices(all, na, "", idx, 40), 0);

    /* CUDA names as the backend reports them: "<name> (sm_XY, N SMs)" */
    plan_find_devices(all, na, "RTX 4070", idx, 40);
    const mf_plan_device *r4070 = &all[idx[0]];
    assert_true(plan_cuda_name_matches(r4070, "NVIDIA GeForce RTX 4070 (sm_89, 46 SMs)"));
    assert_true(plan_cuda_name_matches(r4070, "NVIDIA GeForce RTX 4070"));
    assert_false(plan_cuda_name_matches(r4070, "NVIDIA GeForce RTX 4070 Ti (sm_89, 60 SMs)"));
    assert_false(plan_cuda_name_matches(r4070, "NVIDIA GeForce RTX 4070 SUPER"));
    plan_find_devices(all, na, "H100 SXM", idx, 40);
    assert_true(plan_cuda_name_matches(&all[idx[0]], "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"));
    assert_false(plan_cuda_name_matches(&all[idx[0]], "NVIDIA H100 PCIe (sm_90, 114 SMs)"));
    plan_find_devices(all, na, "H200", idx, 40);
    assert_true(plan_cuda_name_matches(&all[idx[0]], "NVIDIA H200 (sm_90, 132 SMs)"));
    assert_true(plan_cuda_name_matches(&all[idx[0]], "NVIDIA H200 NVL (sm_90, 132 SMs)"));
    assert_false(plan_cuda_name_matches(&all[n], "Intel(R) Xeon(R) Processor (2 threads)"));
}

/* Fit and bound on M (weights 208128, per token 106308) at ctx 1024 on custom devices
 * (no headroom, KV binary16 by default):
 *   KV allocated, f16, as the CPU backend allocates it (a custom device is estimated with
 *     its state): per layer and slot 2 x 2 x 16 x 2 = 128 B; sliding layers keep
 *     min(1024, 4 + 511) = 515 slots rounded up to whole K tiles of 16 = 528, full ones
 *     1024: 128 x (2 x 528 + 2 x 1024) = 397312
 *   scratch: 2234496 (scratch_moe: the CPU backend's state, one thread)
 *   needs = 208128 + 397312 + 2234496 = 2839936
 *   KV read at ctx 1024, f16: 128 x (2 x 4 + 2 x 1024) = 263168
 *   bound at 100 GB/s: ctx 0 = 1e11 / 106308 = 940663.01..., ctx 1024 = 1e11 / 369476
 * A memory of exactly `needs` fits with 0 spare; one byte less does not (spare -1).
 * With headroom h the same holds at needs + h. */
static void fit_and_bound(void **state)
{
    (void)state;
    const char *path = write_moe("fit.gguf");
    mf_plan_model pm;
    read_plan(path, &pm);
    mf_plan_device d = {"custom", MF_PLAN_CUSTOM, 2839936, 0, 100.0, NULL, 0};
    mf_plan_fit f;
    mf_plan_evaluate(&pm, &d, 1024, 0, &f);
    assert_int_equal(f.kv_elem, 2);
    assert_int_equal(f.weights, 208128);
    assert_int_equal(f.kv, 397312);
    assert_int_equal(f.scratch, 2234496);
    assert_int_equal(f.need, 2839936);
    assert_int_equal(f.usable, 2839936);
    assert_true(f.fits);
    assert_int_equal(f.spare, 0);
    assert_int_equal(f.bytes_ctx0, 106308);
    assert_int_equal(f.bytes_ctx, 106308 + 263168);
    expect_near(f.tok_s_ctx0, 1e11 / 106308.0, "tok/s at ctx 0");
    expect_near(f.tok_s_ctx, 1e11 / 369476.0, "tok/s at ctx 1024");

    d.mem_bytes = 2839935;
    mf_plan_evaluate(&pm, &d, 1024, 0, &f);
    assert_false(f.fits);
    assert_int_equal(f.spare, -1);

    /* a GiB of headroom: fits at needs + 1 GiB, not one byte below (with the CUDA backend's
     * state the scratch is 2178124, scratch_moe: needs 208128 + 393984 + 2178124) */
    mf_plan_device g = {"gpu", MF_PLAN_CUDA, 2780236 + PLAN_GPU_HEADROOM, PLAN_GPU_HEADROOM, 100.0, "X", 0};
    mf_plan_evaluate(&pm, &g, 1024, 0, &f);
    assert_int_equal(f.scratch, 2178124);
    assert_true(f.fits);
    assert_int_equal(f.spare, 0);
    g.mem_bytes -= 1;
    mf_plan_evaluate(&pm, &g, 1024, 0, &f);
    assert_false(f.fits);
    /* a headroom larger than the memory leaves nothing usable */
    g.mem_bytes = 1000;
    mf_plan_evaluate(&pm, &g, 1024, 0, &f);
    assert_int_equal(f.usable, 0);
    assert_false(f.fits);

    /* the host takes the backends' default too (binary16); --kv-f32 asks for float32 */
    mf_plan_device h = {"this CPU", MF_PLAN_HOST, 1ull << 40, PLAN_HOST_HEADROOM, 10.0, NULL, 1};
    mf_plan_evaluate(&pm, &h, 1024, 0, &f);
    assert_int_equal(f.kv_elem, 2);
    assert_int_equal(f.kv, 397312);
    assert_int_equal(f.bytes_ctx, 106308 + 263168);
    mf_plan_evaluate(&pm, &h, 1024, 4, &f);
    assert_int_equal(f.kv_elem, 4);
    assert_int_equal(f.kv, 2 * 397312);

    /* the bound itself: bandwidth in GB/s over bytes; nothing to read, no bound */
    expect_near(mf_plan_bound(3350.0, 2574705396ull), 3350e9 / 2574705396.0, "H100 bound");
    assert_true(mf_plan_bound(100.0, 0) == 0.0);
    unlink(path);
}

/* The bench records are read with jansson: a build without it reads none (plan_records.h). */
#ifdef MF_HAVE_JSON
#define NEEDS_JSON() ((void)0)
#else
#define NEEDS_JSON()                                                                           \
    do {                                                                                       \
        fprintf(stderr, "skipped: this build has no jansson, so it reads no bench records\n"); \
        skip();                                                                                \
    } while (0)
#endif

/* ================================================================ measurements */

static void parse_records(void **state)
{
    (void)state;
    NEEDS_JSON();
    plan_record r;
    mf_err err;
    const char *good =
        "{\"date\":\"2026-01-02T03:04:05Z\",\"commit\":\"abc123\",\"backend\":\"cuda\","
        "\"device\":\"NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)\",\"model\":\"a \\\"b\\\"\\\\c\\u00e9.gguf\","
        "\"header_sha256\":\"00ff\",\"arch\":\"llama\",\"types\":\"F32:100.0%\",\"test\":\"tg128@d512\","
        "\"depth\":512,\"tok_s_median\":1234.5,\"tok_s_min\":1e3,\"tok_s_max\":1300,\"runs\":5,"
        "\"bandwidth_gbs\":2890.25,\"bytes_per_token\":1060864,\"roofline_pct\":25.95,\"extra\":true}";
    if (plan_parse_record(good, &r, &err)) fail_msg("%s", err.msg);
    assert_string_equal(r.backend, "cuda");
    assert_string_equal(r.device, "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)");
    /* escapes decoded: \" \\ and \u00e9 (UTF-8 C3 A9) */
    assert_string_equal(r.model, "a \"b\"\\c\xc3\xa9.gguf");
    assert_string_equal(r.sha, "00ff");
    assert_string_equal(r.test, "tg128@d512");
    assert_int_equal(r.depth, 512);
    assert_int_equal(r.n_gen, 128);
    assert_true(r.tok_s == 1234.5);
    assert_true(r.bandwidth_gbs == 2890.25);
    assert_string_equal(r.commit, "abc123");

    /* a prompt test is a record, but not of generation */
    assert_int_equal(plan_parse_record("{\"backend\":\"cpu\",\"test\":\"pp512\",\"tok_s_median\":10}", &r, &err), 0);
    assert_int_equal(r.n_gen, 0);

    const char *bad[] = {
        "",                                                                   /* empty */
        "[1,2]",                                                              /* not an object */
        "{\"backend\":\"cpu\",\"test\":\"tg1\"}",                             /* no speed */
        "{\"backend\":\"cpu\",\"tok_s_median\":1}",                           /* no test */
        "{\"test\":\"tg1\",\"tok_s_median\":1}",                              /* no backend */
        "{\"backend\":\"cpu\",\"test\":\"tg1\",\"tok_s_median\":1,\"x\":{}}", /* nested */
        "{\"backend\":\"cpu\",\"test\":\"tg1\",\"tok_s_median\":1} x",        /* trailing text */
        "{\"backend\":\"cpu\" \"test\":\"tg1\",\"tok_s_median\":1}",          /* missing comma */
        "{\"backend\":\"cpu\",\"test\":\"tg1\",\"tok_s_median\":1",           /* unterminated */
        "{\"backend\":\"c\\qpu\",\"test\":\"tg1\",\"tok_s_median\":1}",       /* bad escape */
        "{\"backend\":\"cpu\",\"test\":\"tg\\u12\",\"tok_s_median\":1}",      /* short \u */
        "{\"backend\":\"cpu\",\"test\":\"tg1\",\"tok_s_median\":}",           /* no value */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = 0;
        if (plan_parse_record(bad[i], &r, &err) == 0) fail_msg("accepted bad line %zu: %s", i, bad[i]);
        assert_true(err.msg[0] != 0);
        assert_null(strchr(err.msg, '\n'));
    }
}

/* A results file with records of several files and devices: the last generation record of
 * the same file (by header hash, else by name) on the same device class is the one found. */
static void find_measurements(void **state)
{
    (void)state;
    NEEDS_JSON();
    const char *text =
        "not json\n" /* 1 bad */
        "{\"backend\":\"cuda\",\"device\":\"NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)\",\"model\":\"m.gguf\","
        "\"header_sha256\":\"aa\",\"test\":\"tg128\",\"depth\":0,\"tok_s_median\":100}\n" /* 2 */
        "{\"backend\":\"cuda\",\"device\":\"NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)\",\"model\":\"m.gguf\","
        "\"header_sha256\":\"aa\",\"test\":\"pp512\",\"depth\":0,\"tok_s_median\":9000}\n" /* 3 pp */
        "\n"
        "{\"backend\":\"cuda\",\"device\":\"NVIDIA H100 PCIe (sm_90, 114 SMs)\",\"model\":\"m.gguf\","
        "\"header_sha256\":\"aa\",\"test\":\"tg128\",\"depth\":0,\"tok_s_median\":70}\n" /* 5 PCIe */
        "{\"backend\":\"cuda\",\"device\":\"NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)\",\"model\":\"m.gguf\","
        "\"header_sha256\":\"bb\",\"test\":\"tg128\",\"depth\":0,\"tok_s_median\":55}\n" /* 6 other hash */
        "{\"backend\":\"cuda\",\"device\":\"NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)\",\"model\":\"m.gguf\","
        "\"header_sha256\":\"AA\",\"test\":\"tg64@d1000\",\"depth\":1000,\"tok_s_median\":90}\n" /* 7 */
        "{\"backend\":\"cpu\",\"device\":\"Some CPU (2 threads)\",\"model\":\"m.gguf\","
        "\"test\":\"tg32\",\"depth\":0,\"tok_s_median\":5}\n" /* 8 */
        "{\"backend\":\"cpu\",\"device\":\"Other CPU (16 threads)\",\"model\":\"m.gguf\","
        "\"test\":\"tg32\",\"depth\":0,\"tok_s_median\":50}\n" /* 9 */
        "{\"broken\":";                                        /* 10 bad */
    int n = (int)plan_n_devices(), h100 = -1, pcie = -1, rtx = -1;
    for (int i = 0; i < n; i++) {
        const char *name = plan_device_at(i)->name;
        if (!strcmp(name, "H100 SXM 80GB")) h100 = i;
        if (!strcmp(name, "H100 PCIe 80GB")) pcie = i;
        if (!strcmp(name, "RTX 4090 24GB")) rtx = i;
    }
    assert_true(h100 >= 0 && pcie >= 0 && rtx >= 0);
    plan_record r;
    int bad = -1;
    /* by hash (case-insensitive hex): lines 2 and 7 match, 7 is the later one */
    assert_int_equal(plan_find_measurement(text, "m.gguf", "aa", plan_device_at(h100), NULL, &r, &bad), 1);
    assert_int_equal(r.line, 7);
    assert_int_equal(r.depth, 1000);
    assert_int_equal(r.n_gen, 64);
    assert_true(r.tok_s == 90);
    assert_int_equal(bad, 2);
    /* the hash decides over the name: "bb" is line 6 only */
    assert_int_equal(plan_find_measurement(text, "x.gguf", "bb", plan_device_at(h100), NULL, &r, NULL), 1);
    assert_int_equal(r.line, 6);
    /* no hash given: by file name, the last H100 SXM tg record is line 7 */
    assert_int_equal(plan_find_measurement(text, "m.gguf", "", plan_device_at(h100), NULL, &r, NULL), 1);
    assert_int_equal(r.line, 7);
    assert_int_equal(plan_find_measurement(text, "m.gguf", "aa", plan_device_at(pcie), NULL, &r, NULL), 1);
    assert_int_equal(r.line, 5);
    assert_int_equal(plan_find_measurement(text, "m.gguf", "aa", plan_device_at(rtx), NULL, &r, NULL), 0);
    assert_int_equal(plan_find_measurement(text, "n.gguf", "cc", plan_device_at(h100), NULL, &r, NULL), 0);
    /* the host row: only CPU records, of the same CPU model when it is known */
    mf_plan_device host = plan_host_device(10.0);
    assert_int_equal(plan_find_measurement(text, "m.gguf", "", &host, "Some CPU", &r, NULL), 1);
    assert_int_equal(r.line, 8);
    assert_int_equal(plan_find_measurement(text, "m.gguf", "", &host, "Some", &r, NULL), 0);
    assert_int_equal(plan_find_measurement(text, "m.gguf", "", &host, NULL, &r, NULL), 1);
    assert_int_equal(r.line, 9);
    /* Apple and custom rows have no minfer backend to have measured them */
    assert_int_equal(plan_find_measurement(text, "m.gguf", "", plan_device_at(n - 1), NULL, &r, NULL), 0);
    assert_int_equal(plan_find_measurement("", "m.gguf", "", &host, NULL, &r, &bad), 0);
    assert_int_equal(bad, 0);
}

/* ================================================================ the driver */

/* `minfer plan ARGS...` (NULL-terminated, at most 29), stdout and stderr captured */
static mf_proc run_plan(const char *const *args)
{
    const char *argv[31];
    int n = 0;
    argv[n++] = "plan";
    for (int i = 0; args[i] && n < 30; i++) argv[n++] = args[i];
    argv[n] = NULL;
    return mf_run_tool("minfer", argv);
}

static void expect_contains(const char *text, const char *want)
{
    if (!strstr(text, want)) fail_msg("output lacks \"%s\"; it is:\n%s", want, text);
}

/* --- a strict JSON validator (RFC 8259 grammar; strings must not hold raw control bytes) */
static const char *jv_value(const char *p);

static const char *jv_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *jv_string(const char *p)
{
    if (*p++ != '"') return NULL;
    while (*p != '"') {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return p + 1;
}

static const char *jv_number(const char *p)
{
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9') p++;
    else return NULL;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (*p < '0' || *p > '9') return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const char *jv_seq(const char *p, char close, int object)
{
    p = jv_ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
        if (object) {
            if (!(p = jv_string(p))) return NULL;
            p = jv_ws(p);
            if (*p++ != ':') return NULL;
        }
        if (!(p = jv_value(p))) return NULL;
        p = jv_ws(p);
        if (*p == close) return p + 1;
        if (*p++ != ',') return NULL;
    }
}

static const char *jv_value(const char *p)
{
    p = jv_ws(p);
    if (*p == '{') return jv_seq(p, '}', 1);
    if (*p == '[') return jv_seq(p, ']', 0);
    if (*p == '"') return jv_string(p);
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (!strncmp(p, "null", 4)) return p + 4;
    return jv_number(p);
}

static void expect_json(const char *text)
{
    const char *end = jv_value(text);
    if (!end || *jv_ws(end)) fail_msg("not one valid JSON value:\n%s", text);
}

/* the number after the first "key": in text */
static double json_number(const char *text, const char *key)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(text, pat);
    if (!p) fail_msg("no key \"%s\" in:\n%s", key, text);
    return strtod(p + strlen(pat), NULL);
}

static void expect_json_u64(const char *text, const char *key, uint64_t want)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":%llu,", key, (unsigned long long)want);
    expect_contains(text, pat);
}

static const char *write_text(const char *name, const char *text)
{
    const char *path = mf_tmp_path(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* stories260K end to end: the whole table in text, one device in JSON with a measured record
 * whose numbers are checked against the bound (formula: plan.h; numbers: dense_stories).
 * The record: tg128 at depth 0 on an H100 SXM, 800 tok/s, matched by the file name. Its
 * tokens sit on average at context 0 + 128/2 = 64; KV binary16 read there: 64 x 640 = 40960;
 * bound = 3350e9 / (1040384 + 40960) = 3,098,089.2...; ratio = 800 / that. */
static void cli_stories(void **state)
{
    (void)state;
    NEEDS_JSON();
    const char *path = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(path);
    const char *empty = write_text("empty.jsonl", "");
    const char *a1[] = {"-m", path, "--results", empty, "--cpu-bandwidth", "10", NULL};
    mf_proc r = run_plan(a1);
    if (r.rc != 0) fail_msg("exit %d: %s", r.rc, r.err);
    expect_contains(r.out,
                    "model      stories260K.gguf: llama, 5 layers, d 64, 8 heads (4 KV) of 8, FFN 172, vocab 512");
    expect_contains(r.out, "weights    1.17 MB in 48 tensors (0.29M params): F32 1.17 MB (100.0%)");
    expect_contains(r.out, "per token  1.04 MB read: every tensor once, token_embd as one 256 B row\n");
    expect_contains(r.out,
                    "KV cache   1.28 KB per position in float32, 640 B in binary16 (5 layers x 2 x 4 KV heads x 8)");
    expect_contains(r.out, "at context 2048: 2.62 MB float32, 1.31 MB binary16");
    /* the CPU's scratch has per-thread parts: one thread per core of this machine
     * (dense_stories: 3032192 with one, 68736 more per thread (krow, tmp, scores, tile)) */
    int threads = plan_host_device(0.0).threads;
    char scratch_line[96];
    snprintf(scratch_line, sizeof scratch_line, "scratch    %.2f MB on the CPU, 2.74 MB with CUDA",
             (3032192 + 68736.0 * (threads - 1)) / 1e6);
    expect_contains(r.out, scratch_line);
    expect_contains(r.out, "context    2048 (default");
    /* every row of the table, this CPU last; a 1 MB model fits everywhere */
    for (size_t i = 0; i < plan_n_devices(); i++) {
        char line[64];
        snprintf(line, sizeof line, "\n%-19s ", plan_device_at(i)->name);
        expect_contains(r.out, line);
    }
    /* this CPU at the given 10 GB/s, KV binary16 (the default): 1e10 / 1040384 = 9611.8 ->
     * "9612"; at ctx 2048: 1e10 / (1040384 + 1310720) = 4253.2 -> "4253" */
    expect_contains(r.out, "\nthis CPU   ");
    expect_contains(r.out, "  10.0 GB/s  f16 ");
    expect_contains(r.out, " yes        9612           4253\n");
    char *notes = strstr(r.out, "\nneeds  =");
    assert_non_null(notes);
    *notes = 0;
    assert_null(strstr(r.out, " no "));
    *notes = '\n';
    expect_contains(r.out, "measured   no generation record of this file on these devices");
    mf_proc_free(&r);

    const char *rec =
        write_text("rec.jsonl", "{\"date\":\"2026-01-01T00:00:00Z\",\"commit\":\"c0ffee\",\"backend\":\"cuda\","
                                "\"device\":\"NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)\",\"model\":\"stories260K.gguf\","
                                "\"header_sha256\":\"\",\"test\":\"tg128\",\"depth\":0,\"tok_s_median\":800,"
                                "\"bandwidth_gbs\":2900}\n");
    const char *a2[] = {"-m", path, "--gpu", "H100 SXM", "--json", "--results", rec, NULL};
    r = run_plan(a2);
    if (r.rc != 0) fail_msg("exit %d: %s", r.rc, r.err);
    expect_json(r.out);
    expect_contains(r.out, "\"model\":\"stories260K.gguf\"");
    expect_json_u64(r.out, "weight_bytes", 1171200);
    expect_json_u64(r.out, "total", 1040384);
    expect_json_u64(r.out, "at_ctx_f16", 2048 * 640);
    expect_json_u64(r.out, "cpu", 3032192 + 68736ull * (uint64_t)(plan_host_device(0.0).threads - 1));
    expect_contains(r.out, "\"name\":\"H100 SXM 80GB\",\"kind\":\"cuda\"");
    expect_contains(r.out, "\"fits\":true");
    expect_json_u64(r.out, "kv_bytes", 2048 * 640);
    expect_json_u64(r.out, "scratch_bytes", 2742276);
    expect_json_u64(r.out, "need_bytes", 1171200 + 2048 * 640 + 2742276);
    /* printed with 3 decimals: compare to half a unit of the last place */
    double bound = 3350e9 / (1040384.0 + 40960.0);
    assert_true(fabs(json_number(r.out, "tok_s_ctx0") - 3350e9 / 1040384.0) <= 5e-4);
    assert_true(fabs(json_number(r.out, "bound_tok_s") - bound) <= 5e-4);
    assert_true(fabs(json_number(r.out, "ratio") - 800.0 / bound) <= 5e-5);
    expect_contains(r.out, "\"test\":\"tg128\"");
    expect_contains(r.out, "\"commit\":\"c0ffee\"");
    expect_contains(r.out, "\"ctx\":64,");
    expect_contains(r.out, "\"record_bandwidth_gbs\":2900.000}");
    mf_proc_free(&r);

    /* the text form of the same: the measured line with the ratio */
    const char *a3[] = {"-m", path, "--gpu", "H100 SXM", "--results", rec, NULL};
    r = run_plan(a3);
    if (r.rc != 0) fail_msg("exit %d: %s", r.rc, r.err);
    char want[256];
    snprintf(
        want, sizeof want,
        "measured   H100 SXM 80GB       tg128 800.0 tok/s (2026-01-01T00:00:00Z, c0ffee, line 1) = %.1f%% of the bound %.0f tok/s at context 64",
        100.0 * 800.0 / bound, bound);
    expect_contains(r.out, want);
    expect_contains(r.out, "(the bench's own probe measured 2900.0 GB/s then; this row uses 3350.0)");
    mf_proc_free(&r);
    unlink(empty);
    unlink(rec);
}

/* A measured CPU record of stories260K, matched by header hash and this machine's CPU model
 * (the CPU backend's device name, which `minfer bench` records). */
static void cli_cpu_record(void **state)
{
    (void)state;
    NEEDS_JSON();
    const char *path = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(path);
    mf_err err;
    mf_backend *be = mf_backend_cpu_new(1, &err);
    if (!be) fail_msg("%s", err.msg);
    char text[1024];
    snprintf(text, sizeof text,
             "{\"backend\":\"cpu\",\"device\":\"%s\",\"model\":\"renamed.gguf\",\"header_sha256\":"
             "\"4404a8fbbb3f9c4f13a6c0e2a2fa88feb5114479630d7c929cad694b03da4b90\",\"test\":\"tg32\",\"depth\":0,"
             "\"tok_s_median\":1500}\n",
             be->device_name);
    be->free(be);
    const char *rec = write_text("cpu.jsonl", text);
    const char *a[] = {"-m", path, "--gpu", "cpu", "--json", "--results", rec, NULL};
    mf_proc r = run_plan(a);
    if (r.rc != 0) fail_msg("exit %d: %s", r.rc, r.err);
    expect_json(r.out);
    /* the sha256 of the 14176 header bytes of stories260K.gguf, as bench records it */
    expect_contains(r.out, "\"header_sha256\":\"4404a8fbbb3f9c4f13a6c0e2a2fa88feb5114479630d7c929cad694b03da4b90\"");
    expect_contains(r.out, "\"name\":\"this CPU\",\"kind\":\"cpu\"");
    expect_contains(r.out, "\"kv_type\":\"f16\"");
    expect_contains(r.out, "\"measured\":{\"test\":\"tg32\"");
    /* the CPU row's bandwidth is measured: it must be there, positive */
    assert_true(json_number(r.out, "bandwidth_gbs") > 0);
    mf_proc_free(&r);
    unlink(rec);
}

/* ---- the gpt-oss-20b-shaped file: the writer's sparse mode, data a hole ---- */

/* docs/forward.md §1 with the ggml-org types: 24 layers x 19 tensors + 3 = 459 */
static const char *write_20b_header(const char *name)
{
    mf_gguf_writer *w = mf_gguf_writer_new();
    assert_non_null(w);
    /* the header is complete, the 12 GB of tensor data a hole (no disk blocks, reads give zeros) */
    mf_gguf_w_set_sparse(w, 1);
    int rc = mf_gguf_w_str(w, "general.architecture", "gpt-oss");
    rc |= mf_gguf_w_u32(w, "gpt-oss.block_count", 24);
    rc |= mf_gguf_w_u32(w, "gpt-oss.context_length", 131072);
    rc |= mf_gguf_w_u32(w, "gpt-oss.embedding_length", 2880);
    rc |= mf_gguf_w_u32(w, "gpt-oss.feed_forward_length", 2880);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.head_count", 64);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.head_count_kv", 8);
    rc |= mf_gguf_w_f32(w, "gpt-oss.rope.freq_base", 150000.0f);
    rc |= mf_gguf_w_f32(w, "gpt-oss.attention.layer_norm_rms_epsilon", 1e-5f);
    rc |= mf_gguf_w_u32(w, "gpt-oss.expert_count", 32);
    rc |= mf_gguf_w_u32(w, "gpt-oss.expert_used_count", 4);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.key_length", 64);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.value_length", 64);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.sliding_window", 128);
    rc |= mf_gguf_w_u32(w, "gpt-oss.expert_feed_forward_length", 2880);
    rc |= mf_gguf_w_str(w, "gpt-oss.rope.scaling.type", "yarn");
    rc |= mf_gguf_w_f32(w, "gpt-oss.rope.scaling.factor", 32.0f);
    rc |= mf_gguf_w_u32(w, "gpt-oss.vocab_size", 201088);
    assert_int_equal(rc, 0);
    add_tensor(w, "token_embd.weight", MF_TYPE_Q8_0, 2, 2880, 201088, 1);
    add_tensor(w, "output_norm.weight", MF_TYPE_F32, 1, 2880, 1, 1);
    add_tensor(w, "output.weight", MF_TYPE_Q8_0, 2, 2880, 201088, 1);
    const struct {
        const char *s;
        uint32_t ty;
        uint32_t nd;
        int64_t a, b, c;
    } per[] = {
        {"attn_norm.weight", MF_TYPE_F32, 1, 2880, 1, 1},
        {"attn_q.weight", MF_TYPE_Q8_0, 2, 2880, 4096, 1},
        {"attn_q.bias", MF_TYPE_F32, 1, 4096, 1, 1},
        {"attn_k.weight", MF_TYPE_Q8_0, 2, 2880, 512, 1},
        {"attn_k.bias", MF_TYPE_F32, 1, 512, 1, 1},
        {"attn_v.weight", MF_TYPE_Q8_0, 2, 2880, 512, 1},
        {"attn_v.bias", MF_TYPE_F32, 1, 512, 1, 1},
        {"attn_output.weight", MF_TYPE_Q8_0, 2, 4096, 2880, 1},
        {"attn_output.bias", MF_TYPE_F32, 1, 2880, 1, 1},
        {"attn_sinks.weight", MF_TYPE_F32, 1, 64, 1, 1},
        {"post_attention_norm.weight", MF_TYPE_F32, 1, 2880, 1, 1},
        {"ffn_gate_inp.weight", MF_TYPE_F32, 2, 2880, 32, 1},
        {"ffn_gate_inp.bias", MF_TYPE_F32, 1, 32, 1, 1},
        {"ffn_gate_exps.weight", MF_TYPE_MXFP4, 3, 2880, 2880, 32},
        {"ffn_gate_exps.bias", MF_TYPE_F32, 2, 2880, 32, 1},
        {"ffn_up_exps.weight", MF_TYPE_MXFP4, 3, 2880, 2880, 32},
        {"ffn_up_exps.bias", MF_TYPE_F32, 2, 2880, 32, 1},
        {"ffn_down_exps.weight", MF_TYPE_MXFP4, 3, 2880, 2880, 32},
        {"ffn_down_exps.bias", MF_TYPE_F32, 2, 2880, 32, 1},
    };
    for (int l = 0; l < 24; l++)
        for (size_t j = 0; j < sizeof per / sizeof per[0]; j++) {
            char nm[48];
            snprintf(nm, sizeof nm, "blk.%d.%s", l, per[j].s);
            add_tensor(w, nm, per[j].ty, per[j].nd, per[j].a, per[j].b, per[j].c);
        }
    const char *path = mf_tmp_path(name);
    write_file(w, path);
    return path;
}

/* gpt-oss-20b (ggml-org layout, docs/forward.md §1):
 *   per layer: attn_q, attn_output 4096 x 3060 and 2880 x 4352 = 12,533,760 each;
 *     attn_k, attn_v 512 x 3060 = 1,566,720 each; F32: attn_norm, attn_output.bias,
 *     post_attention_norm 11,520 each, attn_q.bias 16,384, k/v biases 2,048 each, sinks 256,
 *     router 368,640, router bias 128 -> dense 28,625,024
 *     experts: 3 x 32 x 4,406,400 = 423,014,400 + 3 biases of 368,640 = 424,120,320
 *   token_embd, output 201,088 x 3,060 = 615,329,280 each; output_norm 11,520
 *   weights = 24 x (28,625,024 + 424,120,320) + 2 x 615,329,280 + 11,520 = 12,096,558,336
 *   per token: dense 24 x 28,625,024 + 3,060 + 615,329,280 + 11,520 = 1,302,344,436
 *              experts 24 x 424,120,320 x 4/32 = 1,272,360,960; total 2,574,705,396
 *   KV binary16: 2 x 8 x 64 x 2 = 2,048 B per layer and position; at ctx 131072 the 12 full
 *     layers hold 131072, the 12 sliding ones 128: 12 x 2048 x (131072 + 128) = 3,224,371,200
 *     (without the window 24 x 2048 x 131072 = 6,442,450,944); allocated with batch 512:
 *     sliding rings of 128 + 511 = 639: 12 x 2048 x (131072 + 639) = 3,236,929,536
 *   scratch with CUDA, B = 512 (memory.h):
 *     session: x, h 2*512*2880, q, attn_out 2*512*4096, k, v 2*512*512 floats
 *       = 4*7,667,712 = 30,670,848; logits rows floor(67108864 / 804352) = 83:
 *       4*83*201088 = 66,761,216                                    = 97,432,064
 *     RoPE 2*4*131072*32 (one table)                                = 33,554,432
 *     CUDA state: step 6144, argmax 4; partials for 131072 / 32 = 4096 splits (the most
 *       any card makes): 4*4096*64*64 = 67,108,864 and 4*2*4096*64 = 2,097,152; MoE with
 *       K = 512*4 = 2048 selections: logits 4*512*32 = 65,536, sel/selw/perm/inv
 *       4*4*2048 = 32,768, gate/up outputs 2*4*2048*2880 = 47,185,920, gathered in/out
 *       the same 47,185,920, counts 4*2*33 = 264; F16 tile 2*32 Mi = 67,108,864 and
 *       activations 2*512*4096 = 4,194,304                          = 234,985,740
 *                                                                   -> 365,972,236
 *   needs = 12,096,558,336 + 3,236,929,536 + 365,972,236 = 15,699,460,108
 *   H100 SXM: usable 79 GiB = 84,825,604,096: fits, spare 69,126,143,988
 *     bound at ctx 0: 3350e9 / 2,574,705,396; at 131072: 3350e9 / 5,799,076,596
 *   RTX 3060 12GB: usable 11 GiB = 11,811,160,064: short by 3,888,300,044 */
static void cli_gpt_oss_20b(void **state)
{
    (void)state;
    const char *path = write_20b_header("oss20b.gguf");
    const char *empty = write_text("empty20.jsonl", "");
    const char *a1[] = {"-m", path, "--gpu", "H100 SXM", "--ctx", "131072", "--json", "--results", empty, NULL};
    mf_proc r = run_plan(a1);
    if (r.rc != 0) fail_msg("exit %d: %s", r.rc, r.err);
    expect_json(r.out);
    expect_json_u64(r.out, "weight_bytes", 12096558336ull);
    expect_json_u64(r.out, "total", 2574705396ull);
    expect_json_u64(r.out, "dense", 1302344436ull);
    expect_json_u64(r.out, "experts", 1272360960ull);
    expect_json_u64(r.out, "experts_all", 24ull * 424120320ull);
    expect_json_u64(r.out, "at_ctx_f16", 3224371200ull);
    expect_json_u64(r.out, "at_ctx_no_window_f16", 6442450944ull);
    expect_json_u64(r.out, "kv_bytes", 3236929536ull);
    expect_json_u64(r.out, "scratch_bytes", 365972236ull);
    expect_json_u64(r.out, "need_bytes", 15699460108ull);
    expect_json_u64(r.out, "spare_bytes", 69126143988ull);
    expect_contains(r.out, "\"fits\":true");
    expect_contains(r.out, "\"unsupported_types\":\"\"");
    assert_true(fabs(json_number(r.out, "tok_s_ctx0") - 3350e9 / 2574705396.0) <= 5e-4);
    assert_true(fabs(json_number(r.out, "tok_s_ctx") - 3350e9 / 5799076596.0) <= 5e-4);
    mf_proc_free(&r);

    const char *a2[] = {"-m", path, "--gpu", "3060", "--ctx", "131072", "--results", empty, NULL};
    r = run_plan(a2);
    if (r.rc != 0) fail_msg("exit %d: %s", r.rc, r.err);
    expect_contains(
        r.out, "per token  2.57 GB read = 1.30 GB shared (every non-expert tensor, token_embd as one 3.06 KB row)\n"
               "           + 1.27 GB experts (4 of 32 selected: 4/32 of 10.2 GB)\n");
    expect_contains(r.out, "weights    12.1 GB in 459 tensors");
    expect_contains(
        r.out, "sliding window 128 on 12 of 24 layers: binary16 at context 131072 takes 3.22 GB instead of 6.44 GB "
               "(saves 3.22 GB, 50.0%)");
    /* 12.10 GB weights + KV + scratch = 15.7 GB against 11.8 GB usable: short by 3.89 GB */
    expect_contains(r.out, "RTX 3060 12GB         12.9 GB   11.8 GB   360 GB/s  f16   15.7 GB   -3.89 GB   no");
    mf_proc_free(&r);
    unlink(path);
    unlink(empty);
}

/* A file with a type minfer cannot compute still gets a plan, with a note. */
static void cli_unsupported(void **state)
{
    (void)state;
    const char *path = write_tied_iq("iq.gguf");
    const char *empty = write_text("emptyiq.jsonl", "");
    const char *a[] = {"-m", path, "--mem", "8", "--bandwidth", "100", "--results", empty, NULL};
    mf_proc r = run_plan(a);
    if (r.rc != 0) fail_msg("exit %d: %s", r.rc, r.err);
    expect_contains(r.out, "note: 3 tensors of types minfer cannot compute (IQ4_NL)");
    expect_contains(r.out, "(and whole, as the tied output matrix)");
    expect_contains(r.out, "\ncustom     ");
    mf_proc_free(&r);
    const char *b[] = {"-m", path, "--mem", "8", "--bandwidth", "100", "--json", "--results", empty, NULL};
    r = run_plan(b);
    if (r.rc != 0) fail_msg("exit %d: %s", r.rc, r.err);
    expect_json(r.out);
    expect_contains(r.out, "\"runnable_types\":false");
    expect_contains(r.out, "{\"type\":\"IQ4_NL\",\"tensors\":3,\"bytes\":3456,\"supported\":false}");
    expect_contains(r.out, "\"unsupported_types\":\"IQ4_NL\"");
    /* a custom device: --mem in GB of 1e9 bytes, no headroom */
    expect_json_u64(r.out, "memory_bytes", 8000000000ull);
    expect_json_u64(r.out, "headroom_bytes", 0);
    mf_proc_free(&r);
    unlink(path);
    unlink(empty);
}

/* Bad input: one line on stderr, exit code 1, nothing on stdout. */
static void cli_errors(void **state)
{
    (void)state;
    const char *path = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(path);
    const char *missing = mf_tmp_path("missing.jsonl");
    const char *cases[][10] = {
        {"-m", path, "--gpu", "TPU v5", NULL},
        {"-m", path, "--mem", "8", NULL},
        {"-m", path, "--bandwidth", "100", NULL},
        {"-m", path, "--gpu", "4090", "--mem", "8", "--bandwidth", "100", NULL},
        {"-m", path, "--ctx", "0", NULL},
        {"-m", path, "--ctx", "many", NULL},
        {"-m", path, "--mem", "-3", "--bandwidth", "100", NULL},
        {"-m", path, "--frobnicate", NULL},
        {"-m", "/nonexistent/model.gguf", NULL},
        {"-m", path, "--results", missing, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mf_proc r = run_plan(cases[i]);
        if (r.rc != 1) fail_msg("case %zu: exit %d, expected 1 (stderr: %s)", i, r.rc, r.err);
        assert_string_equal(r.out, "");
        size_t n = strlen(r.err);
        if (n == 0 || r.err[n - 1] != '\n' || strchr(r.err, '\n') != r.err + n - 1)
            fail_msg("case %zu: stderr is not one line: '%s'", i, r.err);
        if (i == 0) {
            /* the unknown device's message lists the known ones */
            expect_contains(r.err, "unknown device 'TPU v5'");
            expect_contains(r.err, "H100 SXM 80GB");
            expect_contains(r.err, "this CPU");
        }
        mf_proc_free(&r);
    }
    /* a file that is not GGUF */
    const char *junk = write_text("junk.gguf", "this is not a model");
    const char *a[] = {"-m", junk, NULL};
    mf_proc r = run_plan(a);
    assert_int_equal(r.rc, 1);
    expect_contains(r.err, "minfer plan: ");
    mf_proc_free(&r);
    unlink(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dense_stories),   cmocka_unit_test(tied_and_unsupported),
        cmocka_unit_test(moe_k_of_e),      cmocka_unit_test(sliding_window),
        cmocka_unit_test(scratch_moe),     cmocka_unit_test(mkmodel_cross_check),
        cmocka_unit_test(device_table),    cmocka_unit_test(fit_and_bound),
        cmocka_unit_test(parse_records),   cmocka_unit_test(find_measurements),
        cmocka_unit_test(cli_stories),     cmocka_unit_test(cli_cpu_record),
        cmocka_unit_test(cli_gpt_oss_20b), cmocka_unit_test(cli_unsupported),
        cmocka_unit_test(cli_errors),
    };
    return MF_RUN("plan", tests);
}
