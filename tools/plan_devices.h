/* plan_devices.h — the devices `minfer plan` knows: a table of GPUs and Apple machines from
 * their datasheets (memory, bandwidth, the headroom kept free), and this machine's CPU.
 * plan.h evaluates a model on any of them; only the plan command (and its test) uses the
 * table, so it lives here beside it.
 */
#ifndef MF_PLAN_DEVICES_H
#define MF_PLAN_DEVICES_H

#include <stddef.h>

#include "plan.h"

/* The built-in table (constant; the host row is made by plan_host_device). */
size_t plan_n_devices(void);
const mf_plan_device *plan_device_at(size_t i);

/* Headroom kept free: on a CUDA card for the driver's reserve and the CUDA context, on the
 * host for the OS (plan_devices.c says where the numbers come from). */
#define PLAN_GPU_HEADROOM (1ull << 30)
#define PLAN_HOST_HEADROOM (2ull << 30)

/* The "this CPU" row: memory = MemTotal of /proc/meminfo (0 if unknown), the given
 * bandwidth (measured by the caller with mf_cpu_read_bandwidth), headroom PLAN_HOST_HEADROOM,
 * one thread per online core (the session default). */
mf_plan_device plan_host_device(double bandwidth_gbs);

/* Devices of `devs` whose name matches `query`, case-insensitively: a row whose name
 * equals the query wins alone; otherwise every row whose name contains it. Writes up to
 * cap indices, returns how many matched (0: unknown). */
int plan_find_devices(const mf_plan_device *devs, int n, const char *query, int *idx, int cap);

/* 1 when a device string reported by a backend ("NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)")
 * is one of the row's CUDA names: equal to it, or it followed by " (". */
int plan_cuda_name_matches(const mf_plan_device *dev, const char *device_string);

#endif
