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

/* A flat JSON object: {"key": value, ...} with string, number, true/false/null values.
 * Each call hands one key and its value to `field`. Nested values are rejected: the
 * records `minfer bench --save` writes have none. */
typedef struct jcur {
    const char *p;
} jcur;

static void jws(jcur *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n') c->p++;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* a JSON string into out (truncated to cap - 1 bytes, UTF-8); 0 or -1 */
static int jstring(jcur *c, char *out, size_t cap)
{
    if (*c->p != '"') return -1;
    c->p++;
    size_t n = 0;
    for (;;) {
        unsigned char ch = (unsigned char)*c->p++;
        char enc[4];
        size_t len = 1;
        if (ch == '"') break;
        if (ch < 0x20) return -1; /* raw control byte or the end of the line */
        enc[0] = (char)ch;
        if (ch == '\\') {
            char e = *c->p++;
            const char *simple = "\"\\/bfnrt", *val = "\"\\/\b\f\n\r\t";
            const char *s = e ? strchr(simple, e) : NULL;
            if (s) {
                enc[0] = val[s - simple];
            } else if (e == 'u') {
                unsigned cp = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(c->p[i]);
                    if (h < 0) return -1;
                    cp = cp * 16 + (unsigned)h;
                }
                c->p += 4;
                /* surrogates are not paired here: bench writes \u only for control bytes */
                if (cp < 0x80) {
                    enc[0] = (char)cp;
                } else if (cp < 0x800) {
                    enc[0] = (char)(0xC0 | cp >> 6);
                    enc[1] = (char)(0x80 | (cp & 0x3F));
                    len = 2;
                } else {
                    enc[0] = (char)(0xE0 | cp >> 12);
                    enc[1] = (char)(0x80 | (cp >> 6 & 0x3F));
                    enc[2] = (char)(0x80 | (cp & 0x3F));
                    len = 3;
                }
            } else {
                return -1;
            }
        }
        for (size_t i = 0; i < len; i++)
            if (n + 1 < cap) out[n++] = enc[i];
    }
    if (cap) out[n] = 0;
    return 0;
}

typedef struct jvalue {
    int is_str;
    char str[256];
    double num;
} jvalue;

static int jvalue_read(jcur *c, jvalue *v)
{
    memset(v, 0, sizeof *v);
    if (*c->p == '"') {
        v->is_str = 1;
        return jstring(c, v->str, sizeof v->str);
    }
    const char *words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++)
        if (!strncmp(c->p, words[i], strlen(words[i]))) {
            c->p += strlen(words[i]);
            v->num = i == 0;
            return 0;
        }
    if (*c->p != '-' && !isdigit((unsigned char)*c->p)) return -1;
    char *end;
    v->num = strtod(c->p, &end);
    if (end == c->p) return -1;
    c->p = end;
    return 0;
}

/* a string value into a field, cut to its size (a number leaves the field empty) */
static void set_str(char *dst, size_t cap, const jvalue *v)
{
    size_t n = v->is_str ? strlen(v->str) : 0;
    if (n >= cap) n = cap - 1;
    memcpy(dst, v->str, n);
    dst[n] = 0;
}

/* "tg128" or "tg128@d512" -> 128; other tests -> 0 */
static int gen_tokens(const char *test)
{
    if (strncmp(test, "tg", 2) || !isdigit((unsigned char)test[2])) return 0;
    return atoi(test + 2);
}

int plan_parse_record(const char *line, plan_record *r, mf_err *err)
{
    memset(r, 0, sizeof *r);
    r->tok_s = -1;
    jcur c = {line};
    jws(&c);
    if (*c.p != '{') return mf_errf(err, "not a JSON object");
    c.p++;
    jws(&c);
    int first = 1;
    while (*c.p != '}') {
        if (!first) {
            if (*c.p != ',') return mf_errf(err, "expected ',' or '}' at column %d", (int)(c.p - line) + 1);
            c.p++;
            jws(&c);
        }
        first = 0;
        char key[64];
        jvalue v;
        if (jstring(&c, key, sizeof key)) return mf_errf(err, "bad key at column %d", (int)(c.p - line) + 1);
        jws(&c);
        if (*c.p != ':') return mf_errf(err, "expected ':' at column %d", (int)(c.p - line) + 1);
        c.p++;
        jws(&c);
        if (jvalue_read(&c, &v)) return mf_errf(err, "bad value of '%s' at column %d", key, (int)(c.p - line) + 1);
        jws(&c);
        if (!strcmp(key, "date")) set_str(r->date, sizeof r->date, &v);
        else if (!strcmp(key, "commit")) set_str(r->commit, sizeof r->commit, &v);
        else if (!strcmp(key, "backend")) set_str(r->backend, sizeof r->backend, &v);
        else if (!strcmp(key, "device")) set_str(r->device, sizeof r->device, &v);
        else if (!strcmp(key, "model")) set_str(r->model, sizeof r->model, &v);
        else if (!strcmp(key, "header_sha256")) set_str(r->sha, sizeof r->sha, &v);
        else if (!strcmp(key, "test")) set_str(r->test, sizeof r->test, &v);
        else if (!strcmp(key, "depth") && !v.is_str) r->depth = (int)v.num;
        else if (!strcmp(key, "tok_s_median") && !v.is_str) r->tok_s = v.num;
        else if (!strcmp(key, "bandwidth_gbs") && !v.is_str) r->bandwidth_gbs = v.num;
    }
    c.p++;
    jws(&c);
    if (*c.p) return mf_errf(err, "text after the object at column %d", (int)(c.p - line) + 1);
    if (!r->test[0] || !r->backend[0] || r->tok_s < 0)
        return mf_errf(err, "not a bench record (test, backend or tok_s_median missing)");
    r->n_gen = gen_tokens(r->test);
    return 0;
}

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
