/* plan_devices.c — the device table of `minfer plan` (contract: plan_devices.h; sources of
 * every number: below and docs/plan.md §2).
 */
#include "plan_devices.h"
#include "memory.h"

#include <string.h>
#include <strings.h>
#include <unistd.h>

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
    {"RTX 3050 8GB", MF_PLAN_CUDA, 8 * GIB, PLAN_GPU_HEADROOM, 224.0, "NVIDIA GeForce RTX 3050", 0},
    {"RTX 3060 12GB", MF_PLAN_CUDA, 12 * GIB, PLAN_GPU_HEADROOM, 360.0, "NVIDIA GeForce RTX 3060", 0},
    {"RTX 4070 12GB", MF_PLAN_CUDA, 12 * GIB, PLAN_GPU_HEADROOM, 504.0, "NVIDIA GeForce RTX 4070", 0},
    {"RTX 4090 24GB", MF_PLAN_CUDA, 24 * GIB, PLAN_GPU_HEADROOM, 1008.0, "NVIDIA GeForce RTX 4090", 0},
    {"RTX 5090 32GB", MF_PLAN_CUDA, 32 * GIB, PLAN_GPU_HEADROOM, 1792.0, "NVIDIA GeForce RTX 5090", 0},
    {"A100 40GB", MF_PLAN_CUDA, 40 * GIB, PLAN_GPU_HEADROOM, 1555.0, "NVIDIA A100-SXM4-40GB|NVIDIA A100-PCIE-40GB", 0},
    {"A100 80GB SXM", MF_PLAN_CUDA, 80 * GIB, PLAN_GPU_HEADROOM, 2039.0, "NVIDIA A100-SXM4-80GB", 0},
    {"A100 80GB PCIe", MF_PLAN_CUDA, 80 * GIB, PLAN_GPU_HEADROOM, 1935.0, "NVIDIA A100 80GB PCIe", 0},
    {"H100 SXM 80GB", MF_PLAN_CUDA, 80 * GIB, PLAN_GPU_HEADROOM, 3350.0, "NVIDIA H100 80GB HBM3", 0},
    {"H100 PCIe 80GB", MF_PLAN_CUDA, 80 * GIB, PLAN_GPU_HEADROOM, 2000.0, "NVIDIA H100 PCIe", 0},
    {"H200 141GB", MF_PLAN_CUDA, 141 * GIB, PLAN_GPU_HEADROOM, 4800.0, "NVIDIA H200|NVIDIA H200 NVL", 0},
    {"Apple M2 Max 32GB", MF_PLAN_APPLE, 32 * GIB, 32 * GIB / 3, 400.0, NULL, 0},
    {"Apple M3 Max 128GB", MF_PLAN_APPLE, 128 * GIB, 128 * GIB * 4 / 25, 400.0, NULL, 0},
};

size_t plan_n_devices(void) { return sizeof DEVICES / sizeof *DEVICES; }

const mf_plan_device *plan_device_at(size_t i) { return i < plan_n_devices() ? &DEVICES[i] : NULL; }

mf_plan_device plan_host_device(double bandwidth_gbs)
{
    /* the OS and other programs need memory too: a round allowance, not a measurement */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    mf_plan_device d = {"this CPU",    MF_PLAN_HOST, mf_mem_host_total(),       PLAN_HOST_HEADROOM,
                        bandwidth_gbs, NULL,         cores > 0 ? (int)cores : 1};
    return d;
}

int plan_find_devices(const mf_plan_device *devs, int n, const char *query, int *idx, int cap)
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

int plan_cuda_name_matches(const mf_plan_device *dev, const char *device_string)
{
    if (!dev->cuda_names) return 0;
    for (const char *p = dev->cuda_names; *p;) {
        size_t k = strcspn(p, "|");
        /* "NVIDIA GeForce RTX 4070 Ti (sm_89, ...)" must not match "NVIDIA GeForce RTX 4070" */
        if (!strncasecmp(device_string, p, k) && (device_string[k] == 0 || !strncmp(device_string + k, " (", 2)))
            return 1;
        p += k + (p[k] == '|');
    }
    return 0;
}
