/* test_chat.c — prompt formats and the harmony output parser (docs/chat.md §2,
 * docs/chat.md §2).
 *
 * Rendered prompts are compared byte for byte with the strings the formats define (from the
 * models' Jinja templates and harmony's test data). The Zephyr prompt is also tokenized
 * with the real Llama vocabulary (vocab-llama-spm.gguf). The harmony parser runs on
 * synthetic token streams over a small harmony vocabulary (tests/tok_vocab.h).
 */
#include "harness.h"
#include "tok_vocab.h"

#include "chat.h"
#include "gguf.h"
#include "tokenizer.h"

/* ------------------------------------------------------------------ rendering */

static void expect_render(int fmt, const char *user, const mf_chat_opts *o, const char *want)
{
    mf_err err;
    char *s = mf_chat_render(fmt, user, o, &err);
    if (!s) fail_msg("render %s: %s", mf_chat_format_name(fmt), err.msg);
    assert_string_equal(s, want);
    free(s);
}

static void render_zephyr(void **state)
{
    (void)state;
    /* docs/chat.md §2, the example: system + user + generation prompt */
    mf_chat_opts o = {.system = "You are a friendly chatbot."};
    expect_render(MF_CHAT_ZEPHYR, "Hello!", &o,
                  "<|system|>\nYou are a friendly chatbot.</s>\n<|user|>\nHello!</s>\n<|assistant|>\n");
    /* the system message is optional; content is inserted verbatim (not stripped) */
    expect_render(MF_CHAT_ZEPHYR, " Hello! ", NULL, "<|user|>\n Hello! </s>\n<|assistant|>\n");
}

static void render_harmony(void **state)
{
    (void)state;
    /* docs/chat.md §2 with the harmony library's default system message (no date) */
    expect_render(MF_CHAT_HARMONY, "What is 2 + 2?", NULL,
                  "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
                  "Knowledge cutoff: 2024-06\n\nReasoning: medium\n\n"
                  "# Valid channels: analysis, commentary, final. Channel must be included for every message."
                  "<|end|><|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant");
    /* with a date, another effort, and a developer message as the Jinja template renders
     * it (docs/chat.md §2: two trailing newlines) */
    mf_chat_opts o = {.system = "Use a friendly tone.", .reasoning = "high", .date = "2025-06-28"};
    expect_render(MF_CHAT_HARMONY, "Hi", &o,
                  "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
                  "Knowledge cutoff: 2024-06\nCurrent date: 2025-06-28\n\nReasoning: high\n\n"
                  "# Valid channels: analysis, commentary, final. Channel must be included for every message."
                  "<|end|><|start|>developer<|message|># Instructions\n\nUse a friendly tone.\n\n<|end|>"
                  "<|start|>user<|message|>Hi<|end|><|start|>assistant");
    mf_chat_opts low = {.reasoning = "low"};
    mf_err err;
    char *s = mf_chat_render(MF_CHAT_HARMONY, "x", &low, &err);
    assert_non_null(s);
    assert_non_null(strstr(s, "\n\nReasoning: low\n\n"));
    free(s);
}

static void render_others(void **state)
{
    (void)state;
    mf_chat_opts o = {.system = "Be brief."};
    expect_render(MF_CHAT_LLAMA2, "Hi", &o, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
    expect_render(MF_CHAT_LLAMA2, "  Hi \n", NULL, "[INST] Hi [/INST]"); /* Llama-2 strips */
    expect_render(MF_CHAT_CHATML, "Hi", &o,
                  "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    expect_render(MF_CHAT_CHATML, "Hi", NULL, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    expect_render(MF_CHAT_NONE, "just text", &o, "just text");
}

static void render_errors(void **state)
{
    (void)state;
    mf_err err;
    mf_chat_opts bad_effort = {.reasoning = "max"}, bad_date = {.date = "2025/06/28"},
                 short_date = {.date = "2025-6-8"};
    assert_null(mf_chat_render(MF_CHAT_HARMONY, "x", &bad_effort, &err));
    assert_non_null(strstr(err.msg, "max"));
    assert_null(mf_chat_render(MF_CHAT_HARMONY, "x", &bad_date, &err));
    assert_non_null(strstr(err.msg, "2025/06/28"));
    assert_null(mf_chat_render(MF_CHAT_HARMONY, "x", &short_date, &err));
    assert_null(mf_chat_render(MF_CHAT_ZEPHYR, NULL, NULL, &err));
    assert_null(mf_chat_render(99, "x", NULL, &err));
    assert_true(strlen(err.msg) > 0);
}

static void names_and_detection(void **state)
{
    (void)state;
    for (int f = MF_CHAT_NONE; f <= MF_CHAT_HARMONY; f++)
        assert_int_equal(mf_chat_format_from_name(mf_chat_format_name(f)), f);
    assert_int_equal(mf_chat_format_from_name("vicuna"), -1);
    assert_int_equal(mf_chat_format_from_name(NULL), -1);
    /* TinyLlama-Chat's template (docs/chat.md §2: it uses eos_token, no literal </s>) */
    const char *tinyllama =
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
        "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token "
        "}}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token "
        "}}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% "
        "endfor %}";
    assert_int_equal(mf_chat_detect(tinyllama, "llama"), MF_CHAT_ZEPHYR);
    assert_int_equal(mf_chat_detect("{{'<|im_start|>' + message['role'] + '\n'}}", NULL), MF_CHAT_CHATML);
    assert_int_equal(mf_chat_detect("{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}", "llama"),
                     MF_CHAT_LLAMA2);
    assert_int_equal(mf_chat_detect("{{- '<|start|>assistant<|channel|>final<|message|>' }}", NULL), MF_CHAT_HARMONY);
    assert_int_equal(mf_chat_detect(NULL, "gpt-oss"), MF_CHAT_HARMONY);
    assert_int_equal(mf_chat_detect(tinyllama, "gpt-oss"), MF_CHAT_HARMONY); /* the architecture decides */
    assert_int_equal(mf_chat_detect("{{ messages }}", "llama"), MF_CHAT_NONE);
    assert_int_equal(mf_chat_detect(NULL, NULL), MF_CHAT_NONE);
}

/* The rendered Zephyr prompt through the real Llama tokenizer, as docs/chat.md §2 says:
 * add_special and parse_special on, each </s> becomes id 2 and the text after it gets the
 * SPM space prefix, an extra ▁ (29871) before its "\n" (13). The <|...|> markers are no
 * tokens of this vocabulary and come out as text pieces. */
static void zephyr_tokens(void **state)
{
    (void)state;
    const char *path = mf_model_path("vocab-llama-spm.gguf");
    MF_REQUIRE_FILE(path);
    mf_err err;
    mf_gguf *g = mf_gguf_open(path, &err);
    if (!g) fail_msg("%s", err.msg);
    mf_tokenizer *t = mf_tokenizer_load(g, &err);
    if (!t) fail_msg("%s", err.msg);
    mf_chat_opts o = {.system = "You are a friendly chatbot."};
    char *prompt = mf_chat_render(MF_CHAT_ZEPHYR, "Hello!", &o, &err);
    assert_non_null(prompt);
    int32_t ids[64];
    int64_t n = mf_tokenize(t, prompt, strlen(prompt), 1, 1, ids, 64, &err);
    static const int32_t want[] = {
        1,                                              /* <s> */
        529,   29989, 5205, 29989, 29958, 13,           /* ▁< | system | > \n */
        3492,  526,   263,  19780, 13563, 7451,  29889, /* You ▁are ▁a ▁friendly ▁chat bot . */
        2,     29871, 13,                               /* </s> ▁ \n */
        29966, 29989, 1792, 29989, 29958, 13,           /* < | user | > \n */
        10994, 29991,                                   /* Hello ! */
        2,     29871, 13,                               /* </s> ▁ \n */
        29966, 29989, 465,  22137, 29989, 29958, 13,    /* < | ass istant | > \n */
    };
    assert_int_equal(n, (int64_t)(sizeof want / sizeof want[0]));
    assert_memory_equal(ids, want, sizeof want);
    /* without parse_special the </s> are text, and there is no id 2 */
    n = mf_tokenize(t, prompt, strlen(prompt), 1, 0, ids, 64, &err);
    assert_true(n > 0 && n <= 64);
    for (int64_t i = 0; i < n; i++) assert_int_not_equal(ids[i], 2);
    free(prompt);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
}

/* ------------------------------------------------------------------ harmony parser */

typedef struct stream_result {
    char text[4][256]; /* printed bytes per channel (index = enum mf_harmony_channel) */
    int stopped_at;    /* index of the token that stopped generation, -1 if none */
    int n_tokens;
} stream_result;

/* Tokenize a completion (parse_special on, as the model would emit the special tokens),
 * feed it token by token, collect the printable bytes per channel. */
static stream_result run_stream(const mf_tokenizer *t, const char *completion)
{
    mf_harmony h;
    assert_int_equal(mf_harmony_init(&h, t), 0);
    stream_result r;
    memset(&r, 0, sizeof r);
    r.stopped_at = -1;
    int32_t ids[512];
    mf_err err;
    int64_t n = mf_tokenize(t, completion, strlen(completion), 0, 1, ids, 512, &err);
    assert_true(n > 0 && n <= 512);
    r.n_tokens = (int)n;
    for (int64_t i = 0; i < n; i++) {
        int stop;
        int ch = mf_harmony_feed(&h, t, ids[i], &stop);
        assert_true(ch >= MF_HCH_NONE && ch <= MF_HCH_FINAL);
        if (ch != MF_HCH_NONE) {
            size_t len = strlen(r.text[ch]);
            size_t k = mf_tok_piece(t, ids[i], 0, r.text[ch] + len, sizeof r.text[ch] - 1 - len);
            r.text[ch][len + k] = 0;
        }
        if (stop) {
            r.stopped_at = (int)i;
            break;
        }
    }
    return r;
}

static void harmony_parser(void **state)
{
    (void)state;
    tv_harmony ids;
    mf_gguf *g;
    mf_tokenizer *t = tv_harmony_vocab(&ids, &g);

    /* analysis then final (docs/chat.md §3), stop on <|return|> */
    stream_result r = run_stream(t, "<|channel|>analysis<|message|>Let me think.<|end|>"
                                    "<|start|>assistant<|channel|>final<|message|>Hi there!<|return|>");
    assert_string_equal(r.text[MF_HCH_ANALYSIS], "Let me think.");
    assert_string_equal(r.text[MF_HCH_FINAL], "Hi there!");
    assert_string_equal(r.text[MF_HCH_COMMENTARY], "");
    assert_int_equal(r.stopped_at, r.n_tokens - 1);

    /* a stray "<|channel|>commentary" before the real header: the last channel name counts */
    r = run_stream(t, "<|channel|>commentary<|channel|>analysis<|message|>x y<|end|>"
                      "<|start|>assistant<|channel|>final<|message|>ok<|return|>");
    assert_string_equal(r.text[MF_HCH_ANALYSIS], "x y");
    assert_string_equal(r.text[MF_HCH_FINAL], "ok");
    assert_string_equal(r.text[MF_HCH_COMMENTARY], "");
    r = run_stream(t, "<|channel|>analysis\n<|channel|>analysis<|message|>Greeting.<|end|>"
                      "<|start|>assistant<|channel|>final<|message|>Hello!<|return|>");
    assert_string_equal(r.text[MF_HCH_ANALYSIS], "Greeting.");
    assert_string_equal(r.text[MF_HCH_FINAL], "Hello!");

    /* a tool call: commentary with a recipient is not printable; <|call|> stops */
    r = run_stream(t, "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary "
                      "to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>");
    assert_string_equal(r.text[MF_HCH_ANALYSIS], "Need weather.");
    assert_string_equal(r.text[MF_HCH_COMMENTARY], "");
    assert_string_equal(r.text[MF_HCH_FINAL], "");
    assert_int_equal(r.stopped_at, r.n_tokens - 1);
    /* the recipient may sit in the role part */
    r = run_stream(t, "<|start|>assistant to=functions.lookup<|channel|>commentary json<|message|>{}<|call|>");
    assert_string_equal(r.text[MF_HCH_COMMENTARY], "");
    assert_int_equal(r.stopped_at, r.n_tokens - 1);
    /* commentary without recipient is a preamble: printable */
    r = run_stream(t, "<|channel|>commentary<|message|>Checking.<|end|>"
                      "<|start|>assistant<|channel|>final<|message|>Done<|return|>");
    assert_string_equal(r.text[MF_HCH_COMMENTARY], "Checking.");
    assert_string_equal(r.text[MF_HCH_FINAL], "Done");

    /* cut off (max tokens) inside the analysis: no final, no stop */
    r = run_stream(t, "<|channel|>analysis<|message|>Thinking about it");
    assert_string_equal(r.text[MF_HCH_ANALYSIS], "Thinking about it");
    assert_string_equal(r.text[MF_HCH_FINAL], "");
    assert_int_equal(r.stopped_at, -1);

    /* text between messages is not printed; <|end|> does not stop; <|endoftext|> does */
    r = run_stream(t, "<|channel|>final<|message|>A<|end|>stray<|start|>assistant<|channel|>final<|message|>B"
                      "<|endoftext|>C");
    assert_string_equal(r.text[MF_HCH_FINAL], "AB");
    assert_int_equal(r.stopped_at, r.n_tokens - 2);

    mf_tokenizer_free(t);
    mf_gguf_close(g);
}

/* mf_harmony_init refuses a vocabulary without the harmony tokens. */
static void harmony_init_other_vocab(void **state)
{
    (void)state;
    const char *path = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(path);
    mf_err err;
    mf_gguf *g = mf_gguf_open(path, &err);
    if (!g) fail_msg("%s", err.msg);
    mf_tokenizer *t = mf_tokenizer_load(g, &err);
    if (!t) fail_msg("%s", err.msg);
    mf_harmony h;
    assert_int_equal(mf_harmony_init(&h, t), -1);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(render_zephyr),  cmocka_unit_test(render_harmony),           cmocka_unit_test(render_others),
        cmocka_unit_test(render_errors),  cmocka_unit_test(names_and_detection),      cmocka_unit_test(zephyr_tokens),
        cmocka_unit_test(harmony_parser), cmocka_unit_test(harmony_init_other_vocab),
    };
    return MF_RUN("chat", tests);
}
