/* test_gguf.c — GGUF reader on the real shared files (scaffold, extended by the GGUF tests). */
#include "harness.h"
#include "gguf.h"
#include "types.h"

static void stories_header(void **state)
{
    (void)state;
    const char *p = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(p);
    mf_err err;
    mf_gguf *g = mf_gguf_open(p, &err);
    if (!g) fail_msg("%s", err.msg);
    assert_int_equal(mf_gguf_version(g), 3);
    assert_int_equal(mf_gguf_n_tensors(g), 48);
    assert_int_equal(mf_gguf_n_kv(g), 19);
    assert_int_equal(mf_gguf_data_offset(g), 14176);
    const mf_gguf_tensor *t = mf_gguf_find_tensor(g, "output_norm.weight");
    assert_non_null(t);
    assert_int_equal(t->offset, 131072);
    assert_int_equal((const uint8_t *)t->data - (const uint8_t *)mf_gguf_tensor_at(g, 0)->data + 14176, 145248);
    mf_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(stories_header)};
    return MF_RUN("gguf", tests);
}
