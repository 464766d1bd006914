/* embed.cu — the token embedding lookup: x[r] = dequantized row tokens[r] of token_embd.
 *
 * CPU twin: cpu_embed (engine/cpu/backend_cpu.c), which calls mf_dequantize_row on the same
 * row; the per-chunk dequantization is dequant.cuh's, bit-identical to it.
 *
 * Grid / block: one 128-thread block per token; threads stride over the row's 32-element
 * chunks (quantized types) or its elements (float types). The token ids are read from
 * device memory (staged by step_begin), so a captured graph replays for any token.
 * Memory traffic: one row of the embedding (row_bytes) read, 4·d bytes written, per token.
 * A token outside the vocabulary (the session checks, so only a bug gets here) yields a
 * row of NaN, which every later comparison exposes, rather than a read out of bounds. */
#include "ctx.cuh"
#include "dequant.cuh"

namespace mf_kernels
{  // in every kernel name: the racecheck filter (ctx.cuh)
namespace
{

template <int T>
__global__ void embed_kernel(const uint8_t *w, size_t row_bytes, int64_t d, int64_t n_vocab, const int32_t *tokens,
                             float *x)
{
    const int r = blockIdx.x;
    const int32_t tok = tokens[r];
    float *out = x + (int64_t)r * d;
    if (tok < 0 || tok >= n_vocab) {
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) out[i] = __int_as_float(0x7FC00000);
        return;
    }
    const uint8_t *row = w + (int64_t)tok * row_bytes;
    if constexpr (mf_is_float_type<T>) {
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) out[i] = mf_dq_elem<T>(row, i);
    } else {
        for (int64_t ch = threadIdx.x; ch < d / 32; ch += blockDim.x) {
            float y[32];
            mf_dq32<T>(row, ch, y);
            for (int j = 0; j < 32; j++) out[32 * ch + j] = y[j];
        }
    }
}

}  // namespace
}  // namespace mf_kernels
using namespace mf_kernels;

void mf_cu_embed(mf_cu_ctx *c, const mf_cu_mat *emb, const int32_t *tokens, int n, float *x)
{
    if (c->failed || n <= 0) return;
    bool ok = mf_type_dispatch(emb->type, [&](auto tc) {
        constexpr int T = decltype(tc)::value;
        embed_kernel<T><<<n, 128, 0, c->stream>>>(emb->w, emb->row_bytes, emb->n_in, emb->n_out, tokens, x);
    });
    if (!ok) {
        mf_cu_fail(c, "embedding: tensor type %u has no CUDA kernel", emb->type);
        return;
    }
    mf_cu_launched(c, "embed_kernel");
}
