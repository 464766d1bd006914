/* memory_sizes.h — the choices of the kernels that size buffers, in one place: memory.c
 * computes every allocation from them, and engine/cpu/ and cuda/ (which include this header
 * from C and from C++/CUDA alike: macros only) run with them.
 */
#ifndef MF_MEMORY_SIZES_H
#define MF_MEMORY_SIZES_H

/* CPU (engine/cpu/matmul.c): a product converts the activations of every token of a step
 * at once and passes them in blocks of MF_CPU_TOK_BLOCK tokens, each thread keeping two
 * blocks' kernel results of 16 rows; the BLAS path dequantizes MF_CPU_TILE_ROWS weight rows
 * per tile. */
#ifndef MF_CPU_TOK_BLOCK
#define MF_CPU_TOK_BLOCK 64
#endif
#define MF_CPU_TILE_ROWS 64
/* CPU (engine/cpu/attention.c): the K cache is laid out in tiles of MF_KV_TILE slots, so a
 * layer's slots are rounded up to whole tiles. */
#define MF_KV_TILE 16
/* CUDA (cuda/matmul.cu): from MF_CUDA_GEMM_MIN_ROWS tokens on, products go through F16
 * copies of a weight tile (at most MF_CUDA_WH_MAX elements: 64 MiB) and cuBLAS. */
#define MF_CUDA_GEMM_MIN_ROWS 16
#define MF_CUDA_WH_MAX (32ull << 20)
/* CUDA (cuda/flash_attn.cu): keys per tile of the flash attention, one per lane of a warp; a
 * flash-decoding split covers a multiple of it, so a context of n keys has at most
 * ceil(n / MF_CUDA_FA_KEYS) splits, each with its partial results. */
#define MF_CUDA_FA_KEYS 32
/* Logits of every row of a batch cost rows · n_vocab floats: at most this many bytes. */
#define MF_MEM_LOGITS_CAP (64ull << 20)

#endif
