/* test_fetch.c — weights/fetch.sh, the download that tools/run.sh makes on a fresh clone
 * (issue 11), without a network: the script is copied into a temporary folder (it writes
 * beside itself) and given file:// URLs through FETCH_URL, so what is tested is everything
 * but the transfer — mirrors tried in order, the size and SHA-256 check, a bad download
 * set aside as FILE.bad and never left as FILE, a present file verified again. Also
 * `minfer default-model`, which run.sh asks before fetching. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char dir[4096];

/* run fetch.sh (the copy in dir) with FETCH_URL; stdout/stderr into out/err; exit status */
static int fetch(const char *urls, char **out, char **err)
{
    char cmd[16384];
    const char *o = mf_tmp_path("fetch.out"), *e = mf_tmp_path("fetch.err");
    snprintf(cmd, sizeof cmd, "FETCH_URL='%s' sh '%s/fetch.sh' stories260K > '%s' 2> '%s'", urls, dir, o, e);
    int rc = system(cmd);
    *out = mf_read_text(o, NULL);
    *err = mf_read_text(e, NULL);
    unlink(o);
    unlink(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int exists(const char *name)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void fetch_offline(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    if (system("command -v curl > /dev/null 2>&1") != 0)
        mf_skip("curl is not installed (wget cannot read file:// URLs)");
    snprintf(dir, sizeof dir, "%s", mf_tmp_path("weights"));
    char cmd[32768], good[4200], bad[8300], missing[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/weights/fetch.sh' '%s/'", dir, dir, MF_SOURCE_DIR,
             dir);
    assert_int_equal(system(cmd), 0);
    /* a copy of the model with one byte changed: same size, other hash */
    snprintf(bad, sizeof bad, "%s/corrupt.bin", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && printf 'X' | dd of='%s' bs=1 seek=5000 conv=notrunc 2>/dev/null", model,
             bad, bad);
    assert_int_equal(system(cmd), 0);
    snprintf(good, sizeof good, "file://%s", model);
    snprintf(missing, sizeof missing, "file://%s/nowhere.gguf", dir);
    char *out, *err, urls[16384];

    /* the corrupt download: refused, kept as FILE.bad, no FILE */
    snprintf(urls, sizeof urls, "file://%s", bad);
    assert_int_equal(fetch(urls, &out, &err), 1);
    assert_non_null(strstr(err, "SHA-256 mismatch for stories260K.gguf"));
    assert_true(exists("stories260K.gguf.bad") && !exists("stories260K.gguf") && !exists("stories260K.gguf.part"));
    free(out);
    free(err);

    /* a mirror that fails, then one that answers: saved after the check */
    snprintf(urls, sizeof urls, "%s %s", missing, good);
    assert_int_equal(fetch(urls, &out, &err), 0);
    assert_non_null(strstr(err, "nowhere.gguf failed"));
    assert_non_null(strstr(out, "sha256 270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d verified"));
    assert_true(exists("stories260K.gguf") && !exists("stories260K.gguf.part"));
    free(out);
    free(err);

    /* present: verified again, nothing downloaded (the URL would fail) */
    assert_int_equal(fetch(missing, &out, &err), 0);
    assert_non_null(strstr(out, "is already here"));
    free(out);
    free(err);

    /* no mirror answers: exit 1, nothing under the name */
    snprintf(cmd, sizeof cmd, "rm -f '%s/stories260K.gguf'", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(fetch(missing, &out, &err), 1);
    assert_non_null(strstr(err, "could not download stories260K from any of"));
    assert_false(exists("stories260K.gguf"));
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* the default model: $MINFER_MODEL first, printed on stdout; none: exit 1, and the message
 * names weights/fetch.sh (run from an empty folder, with a binary outside any checkout
 * that has ../shared or weights/) */
static void default_model(void **state)
{
    (void)state;
    setenv("MINFER_MODEL", "/some/where.gguf", 1);
    const char *args[] = {"default-model", NULL};
    mf_proc p = mf_run_tool("minfer", args);
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.out, "/some/where.gguf\n");
    mf_proc_free(&p);
    unsetenv("MINFER_MODEL");
    const char *d = mf_tmp_path("nomodel");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/a/b' && cp '%s' '%s/a/b/minfer'", d, d,
             mf_tool_path("minfer"), d);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./a/b/minfer default-model > out 2> err", d);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    char path[8300];
    snprintf(path, sizeof path, "%s/err", d);
    char *err = mf_read_text(path, NULL);
    assert_non_null(strstr(err, "weights/fetch.sh stories260K"));
    free(err);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fetch_offline),
        cmocka_unit_test(default_model),
    };
    return MF_RUN("fetch", tests);
}
