/* plan_records.c — `minfer bench --save` records read back for `minfer plan` (contract:
 * plan_records.h).
 */
#include "plan_records.h"
#include "plan_devices.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef MF_HAVE_JSON
#include <jansson.h>
#endif

/* "tg128" or "tg128@d512" -> 128; other tests -> 0 */
static int gen_tokens(const char *test)
{
    if (strncmp(test, "tg", 2) || !isdigit((unsigned char)test[2])) return 0;
    return atoi(test + 2);
}

#ifdef MF_HAVE_JSON
/* a string field, cut to its size; anything else leaves it empty */
static void get_str(json_t *o, const char *key, char *dst, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, key));
    size_t n = v ? strlen(v) : 0;
    if (n >= cap) n = cap - 1;
    memcpy(dst, v ? v : "", n);
    dst[n] = 0;
}

int plan_parse_record(const char *line, plan_record *r, mf_err *err)
{
    memset(r, 0, sizeof *r);
    r->tok_s = -1;
    json_error_t je;
    json_t *o = json_loads(line, JSON_DECODE_ANY, &je);
    if (!o) return mf_errf(err, "not JSON: %s at column %d", je.text, je.column);
    if (!json_is_object(o)) {
        json_decref(o);
        return mf_errf(err, "not a JSON object");
    }
    /* the records `minfer bench --save` writes are flat: a nested value means another file */
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (json_is_object(v) || json_is_array(v)) {
            mf_errf(err, "'%.40s' holds a nested value: not a bench record", key); /* key lives in o */
            json_decref(o);
            return -1;
        }
    }
    get_str(o, "date", r->date, sizeof r->date);
    get_str(o, "commit", r->commit, sizeof r->commit);
    get_str(o, "backend", r->backend, sizeof r->backend);
    get_str(o, "device", r->device, sizeof r->device);
    get_str(o, "model", r->model, sizeof r->model);
    get_str(o, "header_sha256", r->sha, sizeof r->sha);
    get_str(o, "test", r->test, sizeof r->test);
    if (json_is_number(v = json_object_get(o, "depth"))) r->depth = (int)json_number_value(v);
    if (json_is_number(v = json_object_get(o, "tok_s_median"))) r->tok_s = json_number_value(v);
    if (json_is_number(v = json_object_get(o, "bandwidth_gbs"))) r->bandwidth_gbs = json_number_value(v);
    json_decref(o);
    if (!r->test[0] || !r->backend[0] || r->tok_s < 0)
        return mf_errf(err, "not a bench record (test, backend or tok_s_median missing)");
    r->n_gen = gen_tokens(r->test);
    return 0;
}
#else
int plan_parse_record(const char *line, plan_record *r, mf_err *err)
{
    (void)line;
    memset(r, 0, sizeof *r);
    return mf_errf(err, "this build has no JSON library (jansson, Debian libjansson-dev): bench records are not read");
}
#endif

static int same_file(const plan_record *r, const char *model_name, const char *sha)
{
    if (sha && sha[0] && r->sha[0]) return !strcasecmp(r->sha, sha);
    return model_name && !strcmp(r->model, model_name);
}

static int same_device(const plan_record *r, const mf_plan_device *dev, const char *cpu_model)
{
    if (dev->kind == MF_PLAN_CUDA) return !strcmp(r->backend, "cuda") && plan_cuda_name_matches(dev, r->device);
    if (dev->kind != MF_PLAN_HOST || strcmp(r->backend, "cpu")) return 0;
    if (!cpu_model || !cpu_model[0]) return 1;
    /* "Intel(R) Xeon(R) Processor (2 threads)": the model is what precedes " (" */
    const char *paren = strstr(r->device, " (");
    size_t k = paren ? (size_t)(paren - r->device) : strlen(r->device);
    return strlen(cpu_model) == k && !strncmp(r->device, cpu_model, k);
}

int plan_find_measurement(const char *text, const char *model_name, const char *sha, const mf_plan_device *dev,
                          const char *cpu_model, plan_record *out, int *n_bad)
{
    int found = 0, bad = 0, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (len + 1 > cap) {
            char *nb = realloc(line, len + 1);
            if (!nb) break;
            line = nb;
            cap = len + 1;
        }
        memcpy(line, p, len);
        line[len] = 0;
        p = nl ? nl + 1 : p + len;

        size_t blank = strspn(line, " \t\r");
        if (!line[blank]) continue;
        plan_record r;
        if (plan_parse_record(line, &r, NULL)) {
            bad++;
            continue;
        }
        r.line = lineno;
        /* records are appended: the last match is the most recent */
        if (r.n_gen > 0 && same_file(&r, model_name, sha) && same_device(&r, dev, cpu_model)) {
            *out = r;
            found = 1;
        }
    }
    free(line);
    if (n_bad) *n_bad = bad;
    return found;
}
