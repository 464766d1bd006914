/* plan_records.h — the measurements `minfer plan` puts next to its bounds: the JSON Lines
 * files that `minfer bench --save` writes, one flat JSON object per test, read back.
 */
#ifndef MF_PLAN_RECORDS_H
#define MF_PLAN_RECORDS_H

#include "err.h"
#include "plan.h"

typedef struct plan_record {
    char date[32], commit[48], backend[16], device[128], model[256], sha[72], test[48];
    int depth;
    int n_gen;    /* N of a "tgN" test (0 for other tests) */
    double tok_s; /* tok_s_median */
    double bandwidth_gbs;
    int line; /* 1-based line in the file */
} plan_record;

/* Parse one line written by `minfer bench --save` (a flat JSON object, read with jansson;
 * unknown keys are ignored). -1 with err when the line is not such an object or lacks
 * test/backend/tok_s_median, and always in a build without jansson. */
int plan_parse_record(const char *line, plan_record *r, mf_err *err);

/* The last generation ("tg...") record of `text` (a whole results file) measured on the same
 * model file and device class as `dev`:
 *   file:   header_sha256 equal to `sha` (when both are non-empty), else the model's file
 *           name equal to `model_name`;
 *   device: CUDA rows: backend "cuda" and plan_cuda_name_matches; the host row: backend
 *           "cpu" and the device string's CPU model (before " (") equal to `cpu_model`
 *           (any CPU record when cpu_model is NULL or empty); other rows never match.
 * Returns 1 and fills *out when found, 0 when not. *n_bad (may be NULL) receives the number
 * of non-empty lines that were not records. */
int plan_find_measurement(const char *text, const char *model_name, const char *sha, const mf_plan_device *dev,
                          const char *cpu_model, plan_record *out, int *n_bad);

#endif
