/* imatrix.h — importance statistics for quantization (`minfer imatrix`; used by
 * `minfer quantize --imatrix`, quantize_model.c). docs/quantize.md §3.
 *
 * For every weight matrix W with n_in input columns, the mean over the evaluated tokens of
 * the square of each input column: a_j = mean_t x_{t,j}². The quantization error of W
 * enters the output as Σ_j (W_ij - Q_ij) x_j, whose expected square over the text is, for
 * uncorrelated columns, Σ_j (W_ij - Q_ij)² a_j: a_j is how much column j's error costs.
 * Stacked expert tensors get one row of statistics per expert, over the tokens routed to
 * it. The inputs are observed on the fast CPU path (backend.h observe), exact floats,
 * before the 8-bit activation rounding of the quantized kernels.
 *
 * The file is GGUF: keys minfer.imatrix.{version = 1, model, text, chunks, chunk_size,
 * tokens} and one F32 tensor per matrix, named like the matrix, of shape [n_in, n_mat]
 * (n_mat = experts, or 1), holding a_j (0 for an expert that saw no token). A tied output
 * matrix is recorded under token_embd.weight, the tensor that holds it.
 */
#ifndef MF_IMATRIX_H
#define MF_IMATRIX_H

#include <stdint.h>

#include "model.h"

typedef struct mf_imatrix mf_imatrix;

mf_imatrix *mf_imatrix_new(const mf_model *m, mf_err *err);
void mf_imatrix_free(mf_imatrix *im);
/* The observer to install with mf_session_observe / mf_ref_observe (user = the imatrix):
 * adds the squares of x's rows to W's statistics. Inputs of matrices not in the table
 * (none for llama and gpt-oss) are ignored. */
void mf_imatrix_observe(void *imatrix, const mf_weight *W, int matrix, const float *x, int rows);
/* Mean square of column j of matrix `matrix` of the weight named `name` so far; -1 when the
 * name is unknown or the matrix saw no input (for tests). */
double mf_imatrix_value(const mf_imatrix *im, const char *name, int matrix, int64_t j);
/* Write the file (GGUF writer: temporary name, renamed when complete). model and text name
 * the sources (file names, stored as strings), chunks/chunk_size/tokens describe the run. */
int mf_imatrix_write(const mf_imatrix *im, const char *path, const char *model, const char *text, int chunks,
                     int chunk_size, uint64_t tokens, mf_err *err);

#endif
