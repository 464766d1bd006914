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
    expect_render(MF_CHAT_NONE, "just text", NULL, "just text");
    /* the plain rendering says the system text too (it was dropped before) */
    expect_render(MF_CHAT_NONE, "just text", &o, "Be brief.\njust text");
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

/* ------------------------------------------------------------------ conversations */

static void expect_conv(int fmt, const mf_chat_msg *m, int n, const mf_chat_opts *o, int gen, const char *want)
{
    mf_err err;
    char *s = mf_chat_render_conv(fmt, m, n, o, gen, &err);
    if (!s) fail_msg("render %s: %s", mf_chat_format_name(fmt), err.msg);
    if (strcmp(s, want)) fail_msg("render %s:\n got: %s\nwant: %s", mf_chat_format_name(fmt), s, want);
    free(s);
}

static void expect_conv_error(int fmt, const mf_chat_msg *m, int n, const mf_chat_opts *o, const char *want)
{
    mf_err err = {{0}};
    char *s = mf_chat_render_conv(fmt, m, n, o, 1, &err);
    if (s) fail_msg("%s: rendered, expected an error with '%s': %s", mf_chat_format_name(fmt), want, s);
    if (!strstr(err.msg, want)) fail_msg("%s: expected '%s' in: %s", mf_chat_format_name(fmt), want, err.msg);
    assert_null(strchr(err.msg, '\n'));
}

#define U(t)                                 \
    {                                        \
        .role = MF_ROLE_USER, .content = (t) \
    }
#define A(t)                                      \
    {                                             \
        .role = MF_ROLE_ASSISTANT, .content = (t) \
    }
#define SYS(t)                                 \
    {                                          \
        .role = MF_ROLE_SYSTEM, .content = (t) \
    }

/* Multi-turn conversations in every format, as their templates write them: TinyLlama's
 * (Zephyr), Meta's reference code and the Hugging Face template (Llama-2), ChatML, and the
 * plain running text for models without a template (docs/chat.md §2). */
static void conversations(void **state)
{
    (void)state;
    const mf_chat_msg conv[] = {SYS("Be brief."), U("Hi"), A("Hello!"), U("How are you?")};
    expect_conv(MF_CHAT_ZEPHYR, conv, 4, NULL, 1,
                "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nHow are you?</s>\n"
                "<|assistant|>\n");
    expect_conv(MF_CHAT_CHATML, conv, 4, NULL, 1,
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                "Hello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n");
    expect_conv(MF_CHAT_LLAMA2, conv, 4, NULL, 1,
                "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] How are you? [/INST]");
    expect_conv(MF_CHAT_NONE, conv, 4, NULL, 1, "Be brief.\nHiHello!\nHow are you?");
    /* without the generation prompt the history alone (Zephyr, ChatML end after the last message) */
    expect_conv(MF_CHAT_ZEPHYR, conv, 3, NULL, 0,
                "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n");
    /* a developer message is a system message outside harmony; Zephyr and ChatML say one anywhere */
    const mf_chat_msg mid[] = {U("Hi"), {.role = MF_ROLE_DEVELOPER, .content = "Now be formal."}, U("Hello")};
    expect_conv(MF_CHAT_CHATML, mid, 3, NULL, 1,
                "<|im_start|>user\nHi<|im_end|>\n<|im_start|>system\nNow be formal.<|im_end|>\n<|im_start|>user\n"
                "Hello<|im_end|>\n<|im_start|>assistant\n");
    expect_conv_error(MF_CHAT_LLAMA2, mid, 3, NULL, "comes after the conversation started");
    expect_conv_error(MF_CHAT_HARMONY, mid, 3, NULL, "comes after the conversation started");
    /* o->system and system messages join with a blank line */
    mf_chat_opts o = {.system = "Rule one."};
    expect_conv(MF_CHAT_LLAMA2, conv, 2, &o, 1, "[INST] <<SYS>>\nRule one.\n\nBe brief.\n<</SYS>>\n\nHi [/INST]");
    /* (Zephyr and ChatML say each system message as it comes) */
    expect_conv(MF_CHAT_ZEPHYR, conv, 2, &o, 1,
                "<|system|>\nRule one.</s>\n<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n");
    /* Llama-2: user and assistant in turn, ending with the user */
    const mf_chat_msg two_users[] = {U("a"), U("b")};
    expect_conv_error(MF_CHAT_LLAMA2, two_users, 2, NULL, "in turn");
    expect_conv_error(MF_CHAT_LLAMA2, conv, 3, NULL, "generates after a user message");
    /* bad input: one line each */
    expect_conv_error(MF_CHAT_ZEPHYR, conv, 0, NULL, "empty");
    const mf_chat_msg nocontent[] = {{.role = MF_ROLE_USER}};
    expect_conv_error(MF_CHAT_CHATML, nocontent, 1, NULL, "message 1 (user) has no content");
    const mf_chat_msg badrole[] = {{.role = 9, .content = "x"}};
    expect_conv_error(MF_CHAT_CHATML, badrole, 1, NULL, "unknown role");
    const mf_chat_msg tool[] = {U("x"), {.role = MF_ROLE_TOOL, .content = "1", .name = "f"}};
    expect_conv_error(MF_CHAT_ZEPHYR, tool, 2, NULL, "only the harmony format");
    mf_chat_opts tools = {.tools_json = "[]"};
    expect_conv_error(MF_CHAT_CHATML, conv, 2, &tools, "tools need the harmony format");
    mf_err err;
    assert_null(mf_chat_render_conv(42, conv, 2, NULL, 1, &err));
    assert_non_null(strstr(err.msg, "unknown format"));
}

/* The harmony system message of docs/format.md (date, high effort) */
#define HARMONY_SYS_TOOLS                                                                                      \
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: " \
    "2024-06\nCurrent date: 2025-06-28\n\nReasoning: high\n\n# Valid channels: analysis, commentary, final. "  \
    "Channel must be included for every message.\nCalls to these tools must go to the commentary channel: "    \
    "'functions'.<|end|>"

/* The three functions of docs/format.md "Function calling", as an OpenAI tools list */
static const char WEATHER_TOOLS[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_location\", \"description\": \"Gets the location of "
    "the user.\"}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"get_current_weather\", \"description\": \"Gets the current "
    "weather in the provided location.\", \"parameters\": {\"type\": \"object\", \"properties\": {\"location\": "
    "{\"type\": \"string\", \"description\": \"The city and state, e.g. San Francisco, CA\"}, \"format\": {\"type\": "
    "\"string\", \"enum\": [\"celsius\", \"fahrenheit\"], \"default\": \"celsius\"}}, \"required\": [\"location\"]}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"get_multiple_weathers\", \"description\": \"Gets the "
    "current weather in the provided list of locations.\", \"parameters\": {\"type\": \"object\", \"properties\": "
    "{\"locations\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"description\": \"List of city and "
    "state, e.g. [\\\"San Francisco, CA\\\", \\\"New York, NY\\\"]\"}, \"format\": {\"type\": \"string\", \"enum\": "
    "[\"celsius\", \"fahrenheit\"], \"default\": \"celsius\"}}, \"required\": [\"locations\"]}}}]";

#define WEATHER_DEV                                                                                                \
    "<|start|>developer<|message|># Instructions\n\nUse a friendly tone.\n\n# Tools\n\n## functions\n\nnamespace " \
    "functions {\n\n// Gets the location of the user.\ntype get_location = () => any;\n\n// Gets the current "     \
    "weather in the provided location.\ntype get_current_weather = (_: {\n// The city and state, e.g. San "        \
    "Francisco, CA\nlocation: string,\nformat?: \"celsius\" | \"fahrenheit\", // default: celsius\n}) => any;\n\n" \
    "// Gets the current weather in the provided list of locations.\ntype get_multiple_weathers = (_: {\n// List " \
    "of city and state, e.g. [\"San Francisco, CA\", \"New York, NY\"]\nlocations: string[],\nformat?: "           \
    "\"celsius\" | \"fahrenheit\", // default: celsius\n}) => any;\n\n} // namespace functions<|end|>"

/* docs/format.md "Function calling" (https://github.com/openai/harmony), both prompts of
 * its worked example byte for byte: the tools defined, then the conversation continued
 * after the call to get_weather and its result (the call's analysis kept: no final answer
 * follows it yet). */
static void harmony_function_calling(void **state)
{
    (void)state;
    if (mf_chat_tools_check("[]", NULL)) mf_skip("this build has no JSON library (libjansson-dev)");
    mf_chat_opts o = {
        .system = "Use a friendly tone.", .reasoning = "high", .date = "2025-06-28", .tools_json = WEATHER_TOOLS};
    mf_chat_msg q[] = {U("What is the weather like in SF?")};
    expect_conv(MF_CHAT_HARMONY, q, 1, &o, 1,
                HARMONY_SYS_TOOLS WEATHER_DEV "<|start|>user<|message|>What is the weather like in SF?<|end|>"
                                              "<|start|>assistant");
    mf_tool_call call = {.id = "call_1", .name = "get_weather", .arguments = "{\"location\":\"San Francisco\"}"};
    mf_chat_msg conv[] = {
        U("What is the weather like in SF?"),
        {.role = MF_ROLE_ASSISTANT,
         .reasoning = "Need to use function get_weather.",
         .tool_calls = &call,
         .n_tool_calls = 1},
        {.role = MF_ROLE_TOOL, .tool_call_id = "call_1", .content = "{\"sunny\": true, \"temperature\": 20}"},
    };
    const char *cont = HARMONY_SYS_TOOLS WEATHER_DEV
        "<|start|>user<|message|>What is the weather like in SF?<|end|><|start|>assistant<|channel|>analysis"
        "<|message|>Need to use function get_weather.<|end|><|start|>assistant<|channel|>commentary "
        "to=functions.get_weather <|constrain|>json<|message|>{\"location\":\"San Francisco\"}<|call|><|start|>"
        "functions.get_weather to=assistant<|channel|>commentary<|message|>{\"sunny\": true, \"temperature\": 20}"
        "<|end|><|start|>assistant";
    expect_conv(MF_CHAT_HARMONY, conv, 3, &o, 1, cont);
    /* the tool's name given directly is the same */
    conv[2].name = "get_weather";
    conv[2].tool_call_id = NULL;
    expect_conv(MF_CHAT_HARMONY, conv, 3, &o, 1, cont);
}

/* The renderer's own test of complex schemas (harmony's src/tests.rs,
 * test_render_functions_with_parameters, "kitchensink"): titles, examples, a nullable
 * string with a default, an enum, a oneOf property with defaults and descriptions, an
 * object description. */
static void harmony_tool_schemas(void **state)
{
    (void)state;
    if (mf_chat_tools_check("[]", NULL)) mf_skip("this build has no JSON library (libjansson-dev)");
    const char *kitchensink =
        "[{\"type\":\"function\",\"function\":{\"name\":\"kitchensink\",\"description\":\"A function with various "
        "complex schemas.\",\"parameters\":{\"description\":\"params object\",\"type\":\"object\",\"properties\":{"
        "\"string\":{\"type\":\"string\",\"title\":\"STRING\",\"description\":\"A string\",\"examples\":[\"hello\","
        "\"world\"]},\"string_nullable\":{\"type\":\"string\",\"nullable\":true,\"description\":\"A nullable "
        "string\",\"default\":\"the default\"},\"string_enum\":{\"type\":\"string\",\"enum\":[\"a\",\"b\",\"c\"]},"
        "\"oneof_string_or_number\":{\"oneOf\":[{\"type\":\"string\",\"default\":\"default_string_in_oneof\"},"
        "{\"type\":\"number\",\"description\":\"numbers can happen too\"}],\"description\":\"a oneof\","
        "\"default\":20}}}}}]";
    int n = 0;
    mf_err err;
    char *s = mf_harmony_tools_section(kitchensink, &n, &err);
    if (!s) fail_msg("%s", err.msg);
    assert_int_equal(n, 1);
    assert_string_equal(s, "# Tools\n\n## functions\n\nnamespace functions {\n\n// A function with various complex "
                           "schemas.\ntype kitchensink = (_: // params object\n{\n// STRING\n//\n// A string\n// "
                           "Examples:\n// - \"hello\"\n// - \"world\"\nstring?: string,\n// A nullable string\n"
                           "string_nullable?: string | null, // default: \"the default\"\nstring_enum?: \"a\" | \"b\" "
                           "| \"c\",\n// a oneof\n// default: 20\noneof_string_or_number?:\n | string // default: "
                           "\"default_string_in_oneof\"\n | number // numbers can happen too\n,\n}) => any;\n\n} // "
                           "namespace functions");
    free(s);
    /* nesting (a nested object indents by four; its description comes twice, above the
     * property and before its brace, as the renderer writes it), type lists, arrays without items, numbers
     * as serde_json prints them, an integer default, a multi-line description, no type */
    const char *nested =
        "[{\"type\":\"function\",\"function\":{\"name\":\"n\",\"description\":\"line 1\\r\\nline 2\\n\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"o\":{\"type\":\"object\",\"description\":\"inner\","
        "\"properties\":{\"x\":{\"type\":[\"integer\",\"null\"],\"default\":0.5},\"y\":{\"type\":\"array\"}},"
        "\"required\":[\"x\"]},\"z\":{\"type\":\"number\",\"default\":1e21},\"w\":{\"default\":3},\"k\":{\"type\":"
        "\"integer\",\"default\":1.0}},\"required\":[\"o\"]}}}]";
    s = mf_harmony_tools_section(nested, &n, &err);
    if (!s) fail_msg("%s", err.msg);
    assert_string_equal(
        s, "# Tools\n\n## functions\n\nnamespace functions {\n\n// line 1\n// line 2\ntype n = (_: {\n"
           "// inner\no:     // inner\n{\n    x: number | null, // default: 0.5\n    y?: Array<any>,\n    },\n"
           "z?: number, // default: 1e21\nw?: any, // default: 3\nk?: number, // default: 1.0\n}) => "
           "any;\n\n} // namespace functions");
    free(s);
    /* an empty list renders nothing, so the prompt is the one without tools */
    s = mf_harmony_tools_section("[]", &n, &err);
    assert_non_null(s);
    assert_int_equal(n, 0);
    assert_string_equal(s, "");
    free(s);
    mf_chat_opts none = {.tools_json = " [ ] "};
    mf_chat_msg q[] = {U("Hi")};
    char *a = mf_chat_render_conv(MF_CHAT_HARMONY, q, 1, &none, 1, &err),
         *b = mf_chat_render(MF_CHAT_HARMONY, "Hi", NULL, &err);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* Tool lists that are not what the format can say: one line naming what is wrong. */
static void harmony_tool_errors(void **state)
{
    (void)state;
    if (mf_chat_tools_check("[]", NULL)) mf_skip("this build has no JSON library (libjansson-dev)");
    static const char *const bad[][2] = {
        {"[{\"type\": \"function\",", "invalid JSON at line 1"},
        {"{\"type\": \"function\"}", "expected an array of tools, got a JSON object"},
        {"[5]", "tools[0] is not an object"},
        {"[{\"type\": \"retrieval\"}]", "only functions are supported"},
        {"[{\"type\": \"function\"}]", "tools[0] has no 'function' object"},
        {"[{\"function\": {\"name\": 3}}]", "no 'function.name' string"},
        {"[{\"function\": {\"name\": \"a b\"}}]", "not 1 to 64 letters"},
        {"[{\"function\": {\"name\": \"x\"}}, {\"function\": {\"name\": \"f<|end|>\"}}]",
         "tools[1] has a 'function.name'"},
        {"[{\"function\": {\"name\": \"x\", \"description\": 1}}]", "description' that is not a string"},
        {"[{\"function\": {\"name\": \"x\", \"parameters\": []}}]", "not an object (a JSON schema)"},
        {"[{\"function\": {\"name\": \"x\", \"name\": \"y\"}}]", "duplicate"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mf_err err = {{0}};
        if (mf_chat_tools_check(bad[i][0], &err) == 0) fail_msg("accepted: %s", bad[i][0]);
        if (!strstr(err.msg, bad[i][1])) fail_msg("%s: expected '%s' in: %s", bad[i][0], bad[i][1], err.msg);
        mf_chat_opts o = {.tools_json = bad[i][0]};
        mf_chat_msg q[] = {U("Hi")};
        expect_conv_error(MF_CHAT_HARMONY, q, 1, &o, bad[i][1]);
    }
    /* history the header could not carry, and a tool result answering no known call */
    mf_tool_call call = {.id = "c1", .name = "get weather", .arguments = "{}"};
    mf_chat_msg conv[] = {U("x"), {.role = MF_ROLE_ASSISTANT, .tool_calls = &call, .n_tool_calls = 1}};
    expect_conv_error(MF_CHAT_HARMONY, conv, 2, NULL, "no valid function name");
    mf_chat_msg orphan[] = {U("x"), {.role = MF_ROLE_TOOL, .tool_call_id = "nope", .content = "1"}};
    expect_conv_error(MF_CHAT_HARMONY, orphan, 2, NULL, "answers call 'nope'");
}

/* Harmony multi-turn history (docs/chat.md §2): an earlier answer is its final message alone
 * (analysis dropped; the <|return|> it ended with is <|end|> in history); a tool call keeps
 * its analysis until a final answer follows it; a preamble is a commentary message. */
static void harmony_history(void **state)
{
    (void)state;
    const char *sys = "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
                      "Knowledge cutoff: 2024-06\n\nReasoning: low\n\n# Valid channels: analysis, commentary, final. "
                      "Channel must be included for every message.<|end|>";
    mf_chat_opts o = {.reasoning = "low"};
    mf_chat_msg two[] = {U("What is 2 + 2?"),
                         {.role = MF_ROLE_ASSISTANT, .content = "2 + 2 = 4.", .reasoning = "Simple."},
                         U("What about 9 / 2?")};
    char want[2048];
    snprintf(want, sizeof want,
             "%s<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant<|channel|>final<|message|>2 + 2 = "
             "4.<|end|><|start|>user<|message|>What about 9 / 2?<|end|><|start|>assistant",
             sys);
    expect_conv(MF_CHAT_HARMONY, two, 3, &o, 1, want);

    mf_tool_call call = {.id = "c1", .name = "lookup", .arguments = "{\"q\":1}"};
    mf_chat_msg tc[] = {U("Q"),
                        {.role = MF_ROLE_ASSISTANT,
                         .content = "Looking it up.",
                         .reasoning = "Need lookup.",
                         .tool_calls = &call,
                         .n_tool_calls = 1},
                        {.role = MF_ROLE_TOOL, .tool_call_id = "c1", .content = "42"},
                        {.role = MF_ROLE_ASSISTANT, .content = "It is 42.", .reasoning = "Got it."},
                        U("Thanks")};
    const char *call_part = "<|start|>assistant<|channel|>commentary<|message|>Looking it up.<|end|><|start|>"
                            "assistant<|channel|>commentary to=functions.lookup <|constrain|>json<|message|>"
                            "{\"q\":1}<|call|><|start|>functions.lookup to=assistant<|channel|>commentary<|message|>"
                            "42<|end|>";
    /* the turn still going on (after the tool result): the analysis stays */
    snprintf(want, sizeof want,
             "%s<|start|>user<|message|>Q<|end|><|start|>assistant<|channel|>analysis<|message|>Need lookup.<|end|>"
             "%s<|start|>assistant",
             sys, call_part);
    expect_conv(MF_CHAT_HARMONY, tc, 3, &o, 1, want);
    /* answered: the whole turn's analysis is gone */
    snprintf(want, sizeof want,
             "%s<|start|>user<|message|>Q<|end|>%s<|start|>assistant<|channel|>final<|message|>It is 42.<|end|>"
             "<|start|>user<|message|>Thanks<|end|><|start|>assistant",
             sys, call_part);
    expect_conv(MF_CHAT_HARMONY, tc, 5, &o, 1, want);
}

/* Context shift: whole turns dropped, oldest first, the system message kept. */
static void fit_conversation(void **state)
{
    (void)state;
    tv_harmony ids;
    mf_gguf *g;
    mf_tokenizer *t = tv_harmony_vocab(&ids, &g);
    const mf_chat_msg conv[] = {SYS("S"), U("one one one"), A("a a a"), U("two two"), A("b b"), U("three")};
    mf_err err;
    int keep[6], all[6];
    char *full = mf_chat_render_conv(MF_CHAT_CHATML, conv, 6, NULL, 1, &err);
    int64_t n_full = mf_chat_tokenize(t, MF_CHAT_CHATML, full, NULL, 0, &err);
    free(full);
    assert_int_equal(mf_chat_fit(t, MF_CHAT_CHATML, conv, 6, NULL, (int)n_full, all, &err), 6);
    int k = mf_chat_fit(t, MF_CHAT_CHATML, conv, 6, NULL, (int)n_full - 1, keep, &err);
    /* the first turn (user "one one one" and its answer) goes */
    assert_int_equal(k, 4);
    int want[] = {0, 3, 4, 5};
    assert_memory_equal(keep, want, sizeof want);
    /* only the last turn left */
    mf_chat_msg last[] = {SYS("S"), U("three")};
    char *r = mf_chat_render_conv(MF_CHAT_CHATML, last, 2, NULL, 1, &err);
    int64_t n_last = mf_chat_tokenize(t, MF_CHAT_CHATML, r, NULL, 0, &err);
    free(r);
    assert_int_equal(mf_chat_fit(t, MF_CHAT_CHATML, conv, 6, NULL, (int)n_last, keep, &err), 2);
    assert_int_equal(keep[1], 5);
    /* even that does not fit: an error with both numbers */
    assert_int_equal(mf_chat_fit(t, MF_CHAT_CHATML, conv, 6, NULL, (int)n_last - 1, keep, &err), -1);
    assert_non_null(strstr(err.msg, "last turn alone"));
    mf_tokenizer_free(t);
    mf_gguf_close(g);
}

/* ------------------------------------------------------------------ harmony parser */

typedef struct stream_result {
    char text[5][256];   /* printed bytes per channel (index = enum mf_harmony_channel) */
    char recipient[128]; /* of the last message with one */
    int stopped_at;      /* index of the token that stopped generation, -1 if none */
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
        assert_true(ch >= MF_HCH_NONE && ch <= MF_HCH_TOOL);
        if (h.has_recipient) snprintf(r.recipient, sizeof r.recipient, "%s", h.recipient);
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

    /* a tool call: commentary with a recipient is the call's arguments; <|call|> stops */
    r = run_stream(t, "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary "
                      "to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>");
    assert_string_equal(r.text[MF_HCH_ANALYSIS], "Need weather.");
    assert_string_equal(r.text[MF_HCH_COMMENTARY], "");
    assert_string_equal(r.text[MF_HCH_FINAL], "");
    assert_string_equal(r.text[MF_HCH_TOOL], "{\"city\":\"Paris\"}");
    assert_string_equal(r.recipient, "functions.get_weather");
    assert_int_equal(r.stopped_at, r.n_tokens - 1);
    /* the recipient may sit in the role part */
    r = run_stream(t, "<|start|>assistant to=functions.lookup<|channel|>commentary json<|message|>{}<|call|>");
    assert_string_equal(r.text[MF_HCH_COMMENTARY], "");
    assert_string_equal(r.text[MF_HCH_TOOL], "{}");
    assert_string_equal(r.recipient, "functions.lookup");
    assert_int_equal(r.stopped_at, r.n_tokens - 1);
    /* <|constrain|> right after the name still ends it (harmony's parser accepts that too) */
    r = run_stream(t, "<|channel|>commentary to=functions.f<|constrain|>json<|message|>[1]<|call|>");
    assert_string_equal(r.recipient, "functions.f");
    assert_string_equal(r.text[MF_HCH_TOOL], "[1]");
    /* a message of another role (a model imitating a tool's answer) is not the assistant's:
     * nothing of it is shown, and its "to=assistant" is no call */
    r = run_stream(t, "<|channel|>final<|message|>A<|end|><|start|>functions.f to=assistant<|channel|>commentary"
                      "<|message|>{\"x\":1}<|end|><|start|>assistant<|channel|>final<|message|>B<|return|>");
    assert_string_equal(r.text[MF_HCH_FINAL], "AB");
    assert_string_equal(r.text[MF_HCH_TOOL], "");
    assert_string_equal(r.text[MF_HCH_COMMENTARY], "");
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
        cmocka_unit_test(render_zephyr),        cmocka_unit_test(render_harmony),
        cmocka_unit_test(render_others),        cmocka_unit_test(render_errors),
        cmocka_unit_test(names_and_detection),  cmocka_unit_test(zephyr_tokens),
        cmocka_unit_test(harmony_parser),       cmocka_unit_test(harmony_init_other_vocab),
        cmocka_unit_test(conversations),        cmocka_unit_test(harmony_function_calling),
        cmocka_unit_test(harmony_tool_schemas), cmocka_unit_test(harmony_tool_errors),
        cmocka_unit_test(harmony_history),      cmocka_unit_test(fit_conversation),
    };
    return MF_RUN("chat", tests);
}
