/* geometry.cuh — the launch arithmetic of the CUDA backend that is plain integer math: how
 * the flash-attention grid is laid out and folded within CUDA's grid limits, the
 * flash-decoding split, and the rows of one F16 weight tile of the prompt GEMM. Nothing here
 * touches the CUDA runtime, so host_twins.cu exposes it to tests/test_cuda_host.c, which
 * checks it on machines without a GPU (and in builds without nvcc).
 */
#ifndef MF_CUDA_GEOMETRY_CUH
#define MF_CUDA_GEOMETRY_CUH

#include "common.cuh"

/* CUDA's grid limits: gridDim.x < 2^31, gridDim.y and gridDim.z <= 65535 */
#define MF_GRID_X_MAX 2147483647ll
#define MF_GRID_YZ_MAX 65535ll

/* ---------------------------------------------------------------- flash attention */

#define MF_FA_WARPS 4                      /* warps per block */
#define MF_FA_QPW 4                        /* query vectors per warp */
#define MF_FA_QB (MF_FA_WARPS * MF_FA_QPW) /* query vectors per block (one "tile") */
#define MF_FA_BK MF_CUDA_FA_KEYS           /* keys per tile = lanes of a warp */

typedef struct mf_cu_grid {
    long long x, y, z;
} mf_cu_grid;

/* Flash-decoding split of a layer whose queries see up to `span` keys (n_ctx, or the window):
 * chunks of a multiple of 32 keys, about 8 blocks per SM over all KV heads at full length. */
static inline void mf_cu_attn_split(int span, int Hkv, int sm_count, int *chunk, int *nsplit)
{
    int want = 8 * (sm_count > 0 ? sm_count : 1) / (Hkv > 0 ? Hkv : 1);
    if (want < 1) want = 1;
    int ch = (span + want - 1) / want;
    ch = (ch + MF_FA_BK - 1) / MF_FA_BK * MF_FA_BK;
    if (ch < MF_FA_BK) ch = MF_FA_BK;
    *chunk = ch;
    *nsplit = (span + ch - 1) / ch;
}

/* The grid of one flash-attention launch for n query rows, G query heads per KV head, Hkv
 * KV heads. Each KV head has n·G query vectors in *tiles = ⌈n·G / 16⌉ tiles of one block.
 *   decode (chunk > 0, n = 1): x = split (nsplit), y = tile, z = KV head
 *   prompt (chunk = 0):        z = KV head, and the tiles numbered tile = x·gridDim.y + y
 *                              (mf_cu_attn_tile): y alone would overflow 65535 from
 *                              1 048 561 query vectors on (a 32 769-row prompt at G = 32),
 *                              so the tiles fold into x; the at most x − 1 blocks past the
 *                              last tile return at once.
 * Returns 0, or -1 when no grid holds the launch (Hkv > 65535; a decode with more than
 * 65535 tiles, i.e. G > 1 048 560; more than 2^31 − 1 splits or folds). */
static inline int mf_cu_attn_grid(int64_t n, int64_t G, int64_t Hkv, int chunk, int64_t nsplit, mf_cu_grid *g,
                                  int64_t *tiles)
{
    if (n < 1 || G < 1 || Hkv < 1 || Hkv > MF_GRID_YZ_MAX) return -1;
    const int64_t t = (n * G + MF_FA_QB - 1) / MF_FA_QB;
    *tiles = t;
    g->z = Hkv;
    if (chunk > 0) {
        if (n != 1 || t > MF_GRID_YZ_MAX || nsplit < 1 || nsplit > MF_GRID_X_MAX) return -1;
        g->x = nsplit;
        g->y = t;
        return 0;
    }
    const int64_t x = (t + MF_GRID_YZ_MAX - 1) / MF_GRID_YZ_MAX;
    if (x > MF_GRID_X_MAX) return -1;
    g->x = x;
    g->y = (t + x - 1) / x;
    return 0;
}

/* the query tile of block (bx, by) in a grid with gy rows, as mf_cu_attn_grid numbers them */
MF_HD int64_t mf_cu_attn_tile(int chunk, unsigned bx, unsigned by, unsigned gy)
{
    return chunk > 0 ? (int64_t)by : (int64_t)bx * gy + by;
}

/* ---------------------------------------------------------------- prompt GEMM tiles */

/* Weight rows per F16 tile: each tile's output starts at out + o0 (o0 a multiple of the
 * tile rows), handed to cuBLAS as its C matrix; a multiple of 64 rows keeps every tile's
 * output 256-byte aligned like the first (cudaMalloc's alignment), which cuBLAS's
 * vectorized epilogues want. */
#define MF_GEMM_TILE_ALIGN 64

/* Rows of an n_out × n_in matrix dequantized per tile into a scratch of cap elements:
 * all n_out when the whole matrix fits (one tile, nothing later to align), else the most
 * rows that fit rounded down to a multiple of MF_GEMM_TILE_ALIGN; 0 when not even that many
 * rows fit (the caller reports the scratch as too small). */
static inline int64_t mf_cu_gemm_tile_rows(size_t cap, int64_t n_in, int64_t n_out)
{
    if (n_in < 1 || n_out < 1) return 0;
    const int64_t fit = (int64_t)(cap / (size_t)n_in);
    if (fit >= n_out) return n_out;
    return fit / MF_GEMM_TILE_ALIGN * MF_GEMM_TILE_ALIGN;
}

#endif
