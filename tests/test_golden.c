/* test_golden.c — the engine against the committed reference outputs of tests/golden/.
 *
 * The goldens were computed by tools/reference.py, an independent float64 NumPy
 * implementation written from the formats' and models' descriptions, not from the engine (tests/golden/README.md says how, and what each
 * field of manifest.json means). One cmocka test per case of the manifest:
 *
 *   1. the model: a shared file ($MINFER_MODELS), or regenerated with the recorded mkmodel
 *      options and checked byte for byte (FNV-1a of the file) — if that fails, mkmodel or
 *      quant.c changed its output and the goldens must be remade (tools/make_golden.sh);
 *   2. the scalar reference forward pass (ref_forward.c: exact float activations) on the
 *      prompt: every logit within atol (2e-3) of the golden;
 *   3. every available device ("cpu", and "cuda" when a GPU is present) through the
 *      session API: every logit of the prompt within atol_fast, which adds to atol twice
 *      what rounding activations to 8 bits before quantized products does to these logits
 *      (the fast paths may do that); then the greedy continuation must equal the golden one
 *      until the first step whose recorded margin is at most 2·atol_fast (a near-tie:
 *      both choices are right, and the sequences part there).
 */
#include "harness.h"
#include "minfer.h"
#include "ref_forward.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- a small JSON reader
 * Enough for manifest.json: objects, arrays, strings without escapes other than \" and \\,
 * numbers, true/false/null. */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
    int kind;
    double num;
    char *str;
    struct jv *items; /* array elements or object values */
    char **keys;      /* object keys */
    int n;
} jv;

static void jv_free(jv *v)
{
    for (int i = 0; i < v->n; i++) {
        jv_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

static void skip_ws(const char **p)
{
    while (isspace((unsigned char)**p)) (*p)++;
}

static int parse_value(const char **p, jv *out);

static char *parse_string(const char **p)
{
    if (**p != '"') return NULL;
    const char *s = ++*p;
    size_t n = 0;
    char *buf = malloc(strlen(s) + 1);
    if (!buf) return NULL;
    while (*s && *s != '"') {
        if (*s == '\\' && s[1]) s++;
        buf[n++] = *s++;
    }
    if (*s != '"') {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *p = s + 1;
    return buf;
}

static int push(jv *v, jv *item, char *key)
{
    jv *items = realloc(v->items, (size_t)(v->n + 1) * sizeof *items);
    if (!items) return -1;
    v->items = items;
    if (v->kind == J_OBJ) {
        char **keys = realloc(v->keys, (size_t)(v->n + 1) * sizeof *keys);
        if (!keys) return -1;
        v->keys = keys;
        keys[v->n] = key;
    }
    items[v->n++] = *item;
    return 0;
}

static int parse_container(const char **p, jv *out, int kind, char close)
{
    out->kind = kind;
    (*p)++;
    skip_ws(p);
    if (**p == close) {
        (*p)++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        jv item;
        skip_ws(p);
        if (kind == J_OBJ) {
            if (!(key = parse_string(p))) return -1;
            skip_ws(p);
            if (**p != ':') {
                free(key);
                return -1;
            }
            (*p)++;
        }
        if (parse_value(p, &item) || push(out, &item, key)) {
            free(key);
            return -1;
        }
        skip_ws(p);
        if (**p == ',') {
            (*p)++;
            continue;
        }
        if (**p == close) {
            (*p)++;
            return 0;
        }
        return -1;
    }
}

static int parse_value(const char **p, jv *out)
{
    memset(out, 0, sizeof *out);
    skip_ws(p);
    if (**p == '{') return parse_container(p, out, J_OBJ, '}');
    if (**p == '[') return parse_container(p, out, J_ARR, ']');
    if (**p == '"') {
        out->kind = J_STR;
        return (out->str = parse_string(p)) ? 0 : -1;
    }
    if (!strncmp(*p, "true", 4) || !strncmp(*p, "false", 5)) {
        out->kind = J_BOOL;
        out->num = **p == 't';
        *p += **p == 't' ? 4 : 5;
        return 0;
    }
    if (!strncmp(*p, "null", 4)) {
        *p += 4;
        return 0;
    }
    char *end;
    out->kind = J_NUM;
    out->num = strtod(*p, &end);
    if (end == *p) return -1;
    *p = end;
    return 0;
}

static const jv *jv_get(const jv *obj, const char *key)
{
    for (int i = 0; obj->kind == J_OBJ && i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

/* ---------------------------------------------------------------- one case */

typedef struct gcase {
    const jv *c;
    char name[64];
} gcase;

static const char *jstr(const jv *c, const char *key)
{
    const jv *v = jv_get(c, key);
    return v && v->kind == J_STR ? v->str : NULL;
}

static double jnum(const jv *c, const char *key)
{
    const jv *v = jv_get(c, key);
    if (!v || v->kind != J_NUM) fail_msg("manifest: case lacks the number '%s'", key);
    return v->num;
}

/* the integer array `key` (malloc'd, *n elements) */
static int32_t *jints(const jv *c, const char *key, int *n)
{
    const jv *v = jv_get(c, key);
    if (!v || v->kind != J_ARR) fail_msg("manifest: case lacks the array '%s'", key);
    int32_t *a = malloc((size_t)(v->n ? v->n : 1) * sizeof *a);
    assert_non_null(a);
    for (int i = 0; i < v->n; i++) a[i] = (int32_t)v->items[i].num;
    *n = v->n;
    return a;
}

static float *jfloats(const jv *c, const char *key, int *n)
{
    const jv *v = jv_get(c, key);
    if (!v || v->kind != J_ARR) fail_msg("manifest: case lacks the array '%s'", key);
    float *a = malloc((size_t)(v->n ? v->n : 1) * sizeof *a);
    assert_non_null(a);
    for (int i = 0; i < v->n; i++) a[i] = (float)v->items[i].num;
    *n = v->n;
    return a;
}

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

/* golden logits file of n floats (malloc'd) */
static float *read_logits(const char *file, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/golden/%s", MF_SOURCE_DIR, file);
    size_t len = 0;
    uint8_t *b = mf_read_file(path, &len);
    if (!b) fail_msg("cannot read %s", path);
    if (len != n * sizeof(float)) fail_msg("%s has %zu bytes, expected %zu", path, len, n * sizeof(float));
    return (float *)b; /* malloc'd bytes, suitably aligned for float */
}

/* The model file of a case: the shared file, or a freshly made mkmodel file (checked
 * against the recorded FNV-1a). *tmp is set when the caller must remove it. */
static char *case_model(const jv *c, int *tmp)
{
    const char *shared = jstr(c, "model"), *args = jstr(c, "mkmodel");
    *tmp = 0;
    if (shared) {
        const char *p = mf_model_path(shared);
        MF_REQUIRE_FILE(p);
        return strdup(p);
    }
    if (!args) fail_msg("manifest: case has neither 'model' nor 'mkmodel'");
    const char *mk = mf_tool_path("mkmodel");
    char cmd[4096];
    if (access(mk, X_OK) != 0) {
        mf_skip("mkmodel is not built");
        return NULL;
    }
    char name[128];
    snprintf(name, sizeof name, "golden-%s.gguf", jstr(c, "name"));
    char *path = strdup(mf_tmp_path(name));
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' %s > /dev/null", mk, path, args);
    if (system(cmd) != 0) fail_msg("failed: %s", cmd);
    *tmp = 1;
    size_t len = 0;
    uint8_t *b = mf_read_file(path, &len);
    assert_non_null(b);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a64(b, len));
    free(b);
    if (strcmp(hex, jstr(c, "model_fnv1a64")) != 0) {
        unlink(path);
        fail_msg("mkmodel %s now writes a different file (FNV-1a %s, golden %s): mkmodel or "
                 "quant.c changed its output; regenerate with tools/make_golden.sh",
                 args, hex, jstr(c, "model_fnv1a64"));
    }
    return path;
}

/* max |a - b| over n values, and where */
static double max_diff(const float *a, const float *b, size_t n, size_t *where)
{
    double m = 0.0;
    *where = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) {
            m = d;
            *where = i;
        } /* NaN counts as the largest */
    }
    return m;
}

static void run_case(void **state)
{
    const jv *c = ((gcase *)*state)->c;
    const char *name = jstr(c, "name");
    int tmp;
    char *path = case_model(c, &tmp);
    int n_tok, n_cont, n_margin;
    int32_t *tokens = jints(c, "tokens", &n_tok);
    int n_vocab = (int)jnum(c, "n_vocab");
    double atol = jnum(c, "atol"), atol_fast = jnum(c, "atol_fast");
    size_t nl = (size_t)n_tok * (size_t)n_vocab;
    float *golden = read_logits(jstr(c, "logits"), nl);
    int32_t *cont = jints(c, "continuation", &n_cont);
    float *margin = jfloats(c, "continuation_margin", &n_margin);
    assert_int_equal(n_cont, n_margin);
    float *got = malloc(nl * sizeof *got);
    assert_non_null(got);

    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) fail_msg("%s: %s", name, err.msg);
    assert_int_equal(m->hp.n_vocab, n_vocab);

    /* 2. the scalar reference pass, float activations: the exact logits */
    mf_ref *r = mf_ref_new(m, n_tok, &err);
    if (!r) fail_msg("%s: %s", name, err.msg);
    for (int i = 0; i < n_tok; i++)
        if (mf_ref_forward(r, tokens[i], i, got + (size_t)i * n_vocab, NULL, &err))
            fail_msg("%s: ref_forward: %s", name, err.msg);
    mf_ref_free(r);
    size_t at;
    double d = max_diff(got, golden, nl, &at);
    print_message("[   INFO   ] %s: ref_forward max |diff| %.3g (atol %.3g)\n", name, d, atol);
    if (!(d <= atol))
        fail_msg("%s: ref_forward logit %zu of position %zu is %.6f, golden %.6f (atol %.3g)", name,
                 at % (size_t)n_vocab, at / (size_t)n_vocab, got[at], golden[at], atol);

    /* 3. the session on every device */
    const char *devices[2] = {"cpu", NULL};
    char names[1][128], why[256];
    if (mf_cuda_devices(names, 1, why, sizeof why) > 0) devices[1] = "cuda";
    for (int dv = 0; dv < 2 && devices[dv]; dv++) {
        const char *dev = devices[dv];
        mf_session_opts o = mf_session_defaults();
        o.device = dev;
        o.kv_f16 = 0; /* the goldens' float32 cache: this checks the kernels, not its precision */
        mf_session *s = mf_session_new(m, &o, &err);
        if (!s) fail_msg("%s (%s): %s", name, dev, err.msg);
        if (mf_session_eval(s, tokens, n_tok, got, &err)) fail_msg("%s (%s): %s", name, dev, err.msg);
        d = max_diff(got, golden, nl, &at);
        print_message("[   INFO   ] %s (%s): max |diff| %.3g (atol_fast %.3g)\n", name, dev, d, atol_fast);
        if (!(d <= atol_fast))
            fail_msg("%s (%s): logit %zu of position %zu is %.6f, golden %.6f (atol_fast %.3g)", name, dev,
                     at % (size_t)n_vocab, at / (size_t)n_vocab, got[at], golden[at], atol_fast);
        int i;
        for (i = 0; i < n_cont; i++) {
            int32_t next = mf_session_argmax(s);
            if (next != cont[i]) {
                if (margin[i] <= 2.0 * atol_fast) break;
                fail_msg("%s (%s): continuation step %d gives %d, golden %d (margin %.3g)", name, dev, i, next, cont[i],
                         margin[i]);
            }
            if (i + 1 < n_cont && mf_session_eval(s, &next, 1, NULL, &err)) fail_msg("%s (%s): %s", name, dev, err.msg);
        }
        if (i < n_cont)
            print_message("[   INFO   ] %s (%s): continuation equal for %d steps, then a near-tie "
                          "(margin %.3g)\n",
                          name, dev, i, margin[i]);
        mf_session_free(s);
    }
    mf_model_free(m);
    if (tmp) unlink(path);
    free(path);
    free(tokens);
    free(golden);
    free(cont);
    free(margin);
    free(got);
}

int main(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/golden/manifest.json", MF_SOURCE_DIR);
    size_t len = 0;
    uint8_t *text = mf_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "test_golden: cannot read %s\n", path);
        return 1;
    }
    char *z = realloc(text, len + 1);
    if (!z) return 1;
    z[len] = 0;
    const char *p = z;
    jv root;
    const jv *cases;
    if (parse_value(&p, &root) || !(cases = jv_get(&root, "cases")) || cases->kind != J_ARR) {
        fprintf(stderr, "test_golden: %s is not a manifest\n", path);
        return 1;
    }
    int n = cases->n;
    struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
    gcase *gc = calloc((size_t)n, sizeof *gc);
    if (!tests || !gc) return 1;
    for (int i = 0; i < n; i++) {
        gc[i].c = &cases->items[i];
        snprintf(gc[i].name, sizeof gc[i].name, "%s", jstr(gc[i].c, "name") ? jstr(gc[i].c, "name") : "?");
        tests[i] = (struct CMUnitTest){.name = gc[i].name, .test_func = run_case, .initial_state = &gc[i]};
    }
    int rc = mf_run("golden", tests, (size_t)n);
    free(tests);
    free(gc);
    jv_free(&root);
    free(z);
    return rc;
}
