/* upload.cu — the model's weights into device memory, once, in their file types.
 *
 * Plan: list every tensor the model binds (a tied output shares the embedding's bytes and
 * is uploaded once), give each a 256-byte aligned offset in ONE device allocation (256:
 * every block type's loads stay aligned, dequant.cuh), compare the total with the free
 * device memory (cudaMemGetInfo) before allocating — one error naming both numbers if it
 * does not fit — then stream the bytes from the file mapping through two pinned staging
 * buffers: the CPU fills one (memcpy from the mapping, which also pages the file in) while
 * the DMA engine copies the other, so disk/page-cache reads and PCIe transfers overlap
 * (each chunk is reported to the caller's progress function). The device addresses go to
 * the caller's table (the backend's per-model state): the model itself is not written.
 * No dequantized copies are made: a Q4_0 model takes its file size on the GPU.
 */
#include <cstdio>
#include <cstdlib>

#include "ctx.cuh"

extern "C" {
#include "memory.h"
#include "model.h"
}

namespace
{

constexpr size_t STAGE_BYTES = 32u << 20; /* each of the two pinned staging buffers */
constexpr size_t ALIGN = 256;

}  // namespace

int mf_cu_upload_model(const mf_model *m, void **base_out, const uint8_t **dev, size_t *bytes_out,
                       void (*progress)(void *user, uint64_t done, uint64_t total), void *user, mf_err *err)
{
    *base_out = nullptr;
    *bytes_out = 0;
    /* every weight of the model's list at its offset (memory.h): a tensor whose bytes were
     * already placed (tied output) shares them */
    int n = mf_model_n_weights(m);
    uint64_t *offs = (uint64_t *)calloc((size_t)n, sizeof *offs);
    if (!offs) return mf_errf(err, "%s: out of memory listing the weights", m->path);
    size_t total = (size_t)mf_mem_device_weights(m, ALIGN, offs);

    size_t free_b = 0, total_b = 0;
    cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) {
        free(offs);
        return mf_cu_err(err, e, "cudaMemGetInfo");
    }
    if (total > free_b) {
        free(offs);
        return mf_errf(err, "%s: the weights need %.1f MiB of GPU memory but only %.1f MiB of %.1f MiB are free",
                       m->path, total / 1048576.0, free_b / 1048576.0, total_b / 1048576.0);
    }

    uint8_t *base = nullptr, *stage[2] = {nullptr, nullptr};
    cudaEvent_t done[2] = {nullptr, nullptr};
    cudaStream_t s = nullptr;
    int rc = 0, buf = 0;
    uint64_t uploaded = 0; /* bytes handed to the copy engine */
    if ((e = cudaMalloc((void **)&base, total ? total : ALIGN)) != cudaSuccess) {
        rc = mf_cu_err(err, e, "cudaMalloc of the weights");
        base = nullptr;
        goto out;
    }
    if ((e = cudaStreamCreate(&s)) != cudaSuccess) {
        rc = mf_cu_err(err, e, "cudaStreamCreate");
        goto out;
    }
    for (int b = 0; b < 2; b++) {
        if ((e = cudaHostAlloc((void **)&stage[b], STAGE_BYTES, cudaHostAllocDefault)) != cudaSuccess) {
            stage[b] = nullptr;
            rc = mf_cu_err(err, e, "cudaHostAlloc of the upload staging buffer");
            goto out;
        }
        if ((e = cudaEventCreateWithFlags(&done[b], cudaEventDisableTiming)) != cudaSuccess) {
            done[b] = nullptr;
            rc = mf_cu_err(err, e, "cudaEventCreate");
            goto out;
        }
    }
    for (int i = 0; i < n; i++) {
        const mf_weight *w = mf_model_weight(m, i);
        if (offs[i] == UINT64_MAX) continue;
        for (size_t o = 0; o < w->nbytes; o += STAGE_BYTES) {
            size_t len = w->nbytes - o < STAGE_BYTES ? w->nbytes - o : STAGE_BYTES;
            /* the buffer is free once the copy issued from it two chunks ago has finished */
            if ((e = cudaEventSynchronize(done[buf])) != cudaSuccess) {
                rc = mf_cu_err(err, e, "upload: waiting for a staging copy");
                goto out;
            }
            memcpy(stage[buf], (const uint8_t *)w->data + o, len);
            if ((e = cudaMemcpyAsync(base + offs[i] + o, stage[buf], len, cudaMemcpyHostToDevice, s)) != cudaSuccess ||
                (e = cudaEventRecord(done[buf], s)) != cudaSuccess) {
                rc = mf_errf(err, "upload of %s (%zu bytes at offset %zu): %s", w->name, len, o, cudaGetErrorString(e));
                goto out;
            }
            buf ^= 1;
            uploaded += len;
            if (progress) progress(user, uploaded, total);
        }
    }
    if ((e = cudaStreamSynchronize(s)) != cudaSuccess) rc = mf_cu_err(err, e, "upload: final synchronization");
out:
    if (s) cudaStreamSynchronize(s);
    for (int b = 0; b < 2; b++) {
        if (done[b]) cudaEventDestroy(done[b]);
        if (stage[b]) cudaFreeHost(stage[b]);
    }
    if (s) cudaStreamDestroy(s);
    if (rc) {
        if (base) cudaFree(base);
    } else {
        /* each weight's address; a shared one (tied output) is its slot's */
        for (int i = 0; i < n; i++) dev[i] = offs[i] != UINT64_MAX ? base + offs[i] : nullptr;
        for (int i = 0; i < n; i++)
            if (!dev[i] && mf_model_weight(m, i)->name) dev[i] = dev[mf_model_weight(m, i)->slot];
        *base_out = base;
        *bytes_out = total;
    }
    free(offs);
    return rc;
}
