/* test_serve.c — the HTTP layer's pure parts, without a model or a socket: OpenAI request
 * bodies into srv_request (every field's type and range, content parts, tool calls and tool
 * messages, completions), the reply objects (tool calls, reasoning, content null, logprobs of
 * both endpoints, finish reasons, the usage chunk, invalid UTF-8 as U+FFFD), and the
 * Prometheus text. The client tests (tests/clients/) cover the same through real clients
 * against a running server; this covers what the server's stand-in engine cannot produce
 * yet (tool calls, logprobs).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "metrics.h"
#include "queue.h"
#include "reply.h"
#include "request.h"

static json_t *parse_json(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    if (!j) fail_msg("not JSON (%s): %s", je.text, s);
    return j;
}

/* ------------------------------------------------------------------ requests */

static void expect_error(int kind, const char *body, const char *code, const char *needle)
{
    srv_request rq;
    srv_error e;
    int rc = srv_request_parse(kind, body, strlen(body), &rq, &e);
    if (rc == 0) fail_msg("accepted: %s", body);
    assert_int_equal(e.status, 400);
    if (!e.code || strcmp(e.code, code))
        fail_msg("code %s, expected %s: %s (%s)", e.code ? e.code : "null", code, body, e.message);
    if (!strstr(e.message, needle)) fail_msg("message '%s' lacks '%s' (%s)", e.message, needle, body);
    srv_request_free(&rq);
}

static void request_errors(void **state)
{
    (void)state;
    static const struct {
        int kind;
        const char *body, *code, *needle;
    } cases[] = {
        {SRV_CHAT, "{", "invalid_json", "malformed JSON"},
        {SRV_CHAT, "\"x\"", "invalid_json", "malformed JSON"},
        {SRV_CHAT, "[]", "invalid_type", "must be a JSON object"},
        {SRV_CHAT, "{}", "missing_field", "'messages' is required"},
        {SRV_CHAT, "{\"messages\": null}", "missing_field", "'messages' is required"},
        {SRV_CHAT, "{\"messages\": {}}", "invalid_type", "'messages' must be an array, not an object"},
        {SRV_CHAT, "{\"messages\": []}", "invalid_value", "empty"},
        {SRV_CHAT, "{\"messages\": [1]}", "invalid_type", "'messages[0]' must be an object"},
        {SRV_CHAT, "{\"messages\": [{\"content\": \"x\"}]}", "invalid_type", "role' must be a string"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"function\", \"content\": \"x\"}]}", "invalid_value", "is 'function'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\"}]}", "missing_field", "has no content"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "invalid_type",
         "content' must be a string or an array"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
         "unsupported_parameter", "only text parts"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"text\": \"a\"}]}]}", "invalid_type",
         "with a 'type'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": 1}]}]}",
         "invalid_type", ".text' must be a string"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"tool\", \"content\": \"r\"}]}", "missing_field",
         "without 'tool_call_id'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\", \"tool_calls\": []}]}", "invalid_value",
         "not an assistant"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"a\"}]}]}", "invalid_type",
         "tool_calls[0]' must be"},
        {SRV_CHAT,
         "{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"a\", \"type\": \"web\", \"function\": {\"name\": \"f\", \"arguments\": \"{}\"}}]}]}",
         "unsupported_parameter", "must be \"function\""},
        {SRV_CHAT,
         "{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"a\", \"function\": {\"name\": \"f\", \"arguments\": {}}}]}]}",
         "invalid_type", "\"arguments\": string"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\", \"name\": 3}]}", "invalid_type",
         "in messages[0]"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": \"1\"}", "invalid_type",
         "'temperature' must be a number, not a string"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": 2.5}", "invalid_value",
         "between 0 and 2"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_p\": -0.1}", "invalid_value",
         "'top_p'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"min_p\": true}", "invalid_type",
         "'min_p' must be a number, not a boolean"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_k\": 1.5}", "invalid_type",
         "'top_k' must be an integer"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_k\": -1}", "invalid_value",
         "'top_k'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": 0}", "invalid_value",
         "'max_tokens' must be between 1"},
        {SRV_CHAT,
         "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": 5, \"max_completion_tokens\": 6}",
         "invalid_value", "disagree"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"seed\": -2}", "invalid_value",
         "'seed'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"seed\": \"1\"}", "invalid_type",
         "'seed' must be an integer"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 2}", "unsupported_parameter",
         "'n' must be 1"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 0}", "unsupported_parameter",
         "'n' must be 1"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stream\": 1}", "invalid_type",
         "'stream' must be a boolean"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stream_options\": true}",
         "invalid_type", "'stream_options' must be an object"},
        {SRV_CHAT,
         "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stream_options\": {\"include_usage\": \"yes\"}}",
         "invalid_type", "'include_usage'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": 5}", "invalid_type",
         "'stop' must be a string or an array"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": [\"a\", 5]}", "invalid_type",
         "'stop[1]'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": \"\"}", "invalid_value",
         "must not be empty"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"frequency_penalty\": 0.5}",
         "unsupported_parameter", "penalties"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"presence_penalty\": 3}",
         "invalid_value", "'presence_penalty'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logit_bias\": {\"1\": 5}}",
         "unsupported_parameter", "logit_bias"},
        {SRV_CHAT,
         "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": {\"type\": \"json_schema\"}}",
         "unsupported_parameter", "'json_schema'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": \"text\"}",
         "invalid_type", "response_format"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"minimal\"}",
         "invalid_value", "'minimal'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}", "invalid_value",
         "needs 'logprobs'"},
        {SRV_CHAT,
         "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": true, \"top_logprobs\": 21}",
         "invalid_value", "'top_logprobs'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": {}}", "invalid_type",
         "'tools' must be an array"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"function\"}]}",
         "invalid_type", "tools[0]"},
        {SRV_CHAT,
         "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": []}}]}",
         "invalid_type", "a JSON schema"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": \"required\"}",
         "unsupported_parameter", "'required'"},
        {SRV_CHAT,
         "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": {\"type\": \"function\"}}",
         "unsupported_parameter", "named tool_choice"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": \"maybe\"}",
         "invalid_value", "'maybe'"},
        {SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"model\": 7}", "invalid_type",
         "'model' must be a string"},
        {SRV_COMPLETION, "{}", "missing_field", "'prompt' is required"},
        {SRV_COMPLETION, "{\"prompt\": 5}", "invalid_type", "'prompt' must be a string"},
        {SRV_COMPLETION, "{\"prompt\": [\"a\", \"b\"]}", "unsupported_parameter", "array of one string"},
        {SRV_COMPLETION, "{\"prompt\": [1, 2]}", "unsupported_parameter", "array of one string"},
        {SRV_COMPLETION, "{\"prompt\": \"x\", \"echo\": true}", "unsupported_parameter", "'echo'"},
        {SRV_COMPLETION, "{\"prompt\": \"x\", \"best_of\": 3}", "unsupported_parameter", "'best_of'"},
        {SRV_COMPLETION, "{\"prompt\": \"x\", \"suffix\": \"y\"}", "unsupported_parameter", "'suffix'"},
        {SRV_COMPLETION, "{\"prompt\": \"x\", \"logprobs\": 6}", "invalid_value", "'logprobs'"},
        {SRV_COMPLETION, "{\"prompt\": \"x\", \"logprobs\": true}", "invalid_type", "'logprobs' must be an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].kind, cases[i].body, cases[i].code, cases[i].needle);
}

static void request_chat_fields(void **state)
{
    (void)state;
    const char *body =
        "{\"model\": \"anything\", \"unknown\": {\"deep\": [1, {\"x\": null}]}, \"user\": \"u\","
        " \"messages\": ["
        "  {\"role\": \"developer\", \"content\": \"Be brief.\"},"
        "  {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hello, \"}, {\"type\": \"text\", \"text\": \"world\"}]},"
        "  {\"role\": \"assistant\", \"content\": null, \"reasoning_content\": \"think\","
        "   \"tool_calls\": [{\"id\": \"call_1\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{\\\"a\\\":1}\"}},"
        "                  {\"id\": \"call_2\", \"function\": {\"name\": \"g\", \"arguments\": \"{}\"}}]},"
        "  {\"role\": \"tool\", \"tool_call_id\": \"call_1\", \"name\": \"f\", \"content\": \"42\"},"
        "  {\"role\": \"system\", \"content\": \"\"}],"
        " \"temperature\": 0.5, \"top_p\": 0.9, \"top_k\": 7, \"min_p\": 0.1, \"max_completion_tokens\": 33, \"max_tokens\": 33,"
        " \"stop\": [\"\\nObservation:\", \"END\"], \"seed\": 12345, \"stream\": true, \"stream_options\": {\"include_usage\": true},"
        " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\", \"parameters\": {\"type\": \"object\"}}}],"
        " \"tool_choice\": \"auto\", \"reasoning_effort\": \"high\", \"logprobs\": true, \"top_logprobs\": 3,"
        " \"response_format\": {\"type\": \"text\"}, \"n\": 1, \"frequency_penalty\": 0, \"presence_penalty\": null, \"logit_bias\": {}}";
    srv_request rq;
    srv_error e;
    if (srv_request_parse(SRV_CHAT, body, strlen(body), &rq, &e)) fail_msg("%s", e.message);
    assert_int_equal(rq.n_msgs, 5);
    assert_int_equal(rq.msgs[0].role, MF_ROLE_DEVELOPER);
    assert_string_equal(rq.msgs[1].content, "Hello, world"); /* parts joined as they are */
    assert_int_equal(rq.msgs[2].role, MF_ROLE_ASSISTANT);
    assert_null(rq.msgs[2].content);
    assert_string_equal(rq.msgs[2].reasoning, "think");
    assert_int_equal(rq.msgs[2].n_tool_calls, 2);
    assert_string_equal(rq.msgs[2].tool_calls[0].id, "call_1");
    assert_string_equal(rq.msgs[2].tool_calls[0].arguments, "{\"a\":1}");
    assert_string_equal(rq.msgs[2].tool_calls[1].name, "g");
    assert_int_equal(rq.msgs[3].role, MF_ROLE_TOOL);
    assert_string_equal(rq.msgs[3].tool_call_id, "call_1");
    assert_string_equal(rq.msgs[3].name, "f");
    assert_string_equal(rq.msgs[4].content, "");
    assert_true(rq.gen.sampler.temp == 0.5f && rq.gen.sampler.top_p == 0.9f && rq.gen.sampler.min_p == 0.1f);
    assert_int_equal(rq.gen.sampler.top_k, 7);
    assert_int_equal(rq.gen.max_tokens, 33);
    assert_int_equal(rq.gen.n_stop, 2);
    assert_string_equal(rq.gen.stop[0], "\nObservation:");
    assert_int_equal(rq.gen.sampler.seed, 12345);
    assert_int_equal(rq.seed_given, 1);
    assert_true(rq.stream && rq.include_usage);
    assert_string_equal(rq.reasoning_effort, "high");
    assert_true(rq.gen.logprobs && rq.gen.top_logprobs == 3);
    json_t *tools = parse_json(rq.tools_json);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name")), "f");
    json_decref(tools);
    srv_request_free(&rq);

    /* defaults: the library's sampler, no limit, a seed to pick; tool_choice none drops the tools */
    const char *small =
        "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"function\", "
        "\"function\": {\"name\": \"f\"}}], \"tool_choice\": \"none\", \"seed\": -1, \"max_tokens\": null}";
    if (srv_request_parse(SRV_CHAT, small, strlen(small), &rq, &e)) fail_msg("%s", e.message);
    mf_sampler_params d = mf_sampler_defaults();
    assert_true(rq.gen.sampler.temp == d.temp && rq.gen.sampler.top_k == d.top_k);
    assert_int_equal(rq.gen.max_tokens, -1);
    assert_int_equal(rq.seed_given, 0);
    assert_null(rq.tools_json);
    assert_int_equal(rq.gen.n_stop, 0);
    assert_false(rq.stream);
    srv_request_free(&rq);
}

static void request_completion_fields(void **state)
{
    (void)state;
    const char *body =
        "{\"prompt\": [\"Once\"], \"logprobs\": 2, \"stop\": \"x\", \"suffix\": \"\", \"echo\": false, \"best_of\": 1}";
    srv_request rq;
    srv_error e;
    if (srv_request_parse(SRV_COMPLETION, body, strlen(body), &rq, &e)) fail_msg("%s", e.message);
    assert_string_equal(rq.prompt, "Once");
    assert_int_equal(rq.gen.max_tokens, 16); /* OpenAI's documented default */
    assert_true(rq.gen.logprobs && rq.gen.top_logprobs == 2);
    assert_int_equal(rq.gen.n_stop, 1);
    srv_request_free(&rq);
}

/* ------------------------------------------------------------------ replies */

static const srv_reply_info chat_ri = {.kind = SRV_CHAT, .id = "chatcmpl-1", .model = "m", .created = 7};

static void reply_chat_objects(void **state)
{
    (void)state;
    mf_tool_call calls[] = {{.id = "call_a", .name = "get_weather", .arguments = "{\"city\":\"Paris\"}"}};
    mf_gen_result r = {.finish = MF_FINISH_TOOL_CALLS,
                       .n_prompt = 10,
                       .n_cached = 4,
                       .n_generated = 5,
                       .content = NULL,
                       .reasoning = "Need weather.",
                       .calls = calls,
                       .n_calls = 1};
    char *s = srv_reply_final(&chat_ri, &r, NULL);
    json_t *o = parse_json(s);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "chat.completion");
    json_t *ch = json_array_get(json_object_get(o, "choices"), 0), *msg = json_object_get(ch, "message");
    assert_true(json_is_null(json_object_get(msg, "content"))); /* only tool calls */
    assert_string_equal(json_string_value(json_object_get(msg, "reasoning_content")), "Need weather.");
    json_t *c = json_array_get(json_object_get(msg, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "id")), "call_a");
    assert_string_equal(json_string_value(json_object_get(c, "type")), "function");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "function"), "arguments")),
                        "{\"city\":\"Paris\"}");
    assert_null(json_object_get(c, "index"));
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "tool_calls");
    json_t *u = json_object_get(o, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 15);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens")),
                     4);
    json_decref(o);
    free(s);

    /* plain text: content a string (even empty), no reasoning_content, context -> length */
    mf_gen_result t = {.finish = MF_FINISH_CONTEXT, .content = ""};
    s = srv_reply_final(&chat_ri, &t, NULL);
    o = parse_json(s);
    ch = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ch, "message"), "content")), "");
    assert_null(json_object_get(json_object_get(ch, "message"), "reasoning_content"));
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "length");
    json_decref(o);
    free(s);
}

static void reply_stream_events(void **state)
{
    (void)state;
    srv_reply_info ri = chat_ri;
    ri.include_usage = 1;
    char *s = srv_event_start(&ri);
    assert_int_equal(strncmp(s, "data: {", 7), 0);
    assert_string_equal(s + strlen(s) - 2, "\n\n");
    json_t *o = parse_json(s + 6);
    json_t *d = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "delta");
    assert_string_equal(json_string_value(json_object_get(d, "role")), "assistant");
    assert_true(json_is_null(json_object_get(o, "usage")));
    json_decref(o);
    free(s);

    /* a tool call's first delta has id, type and name; later ones only arguments */
    mf_delta first = {
        .kind = MF_DELTA_TOOL_CALL, .text = "{\"ci", .len = 4, .tool_index = 1, .tool_id = "call_x", .tool_name = "f"};
    mf_delta more = {.kind = MF_DELTA_TOOL_CALL, .text = "ty\":1}", .len = 6, .tool_index = 1};
    s = srv_event_delta(&ri, &first);
    o = parse_json(s + 6);
    json_t *c = json_array_get(
        json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "delta"), "tool_calls"), 0);
    assert_int_equal(json_integer_value(json_object_get(c, "index")), 1);
    assert_string_equal(json_string_value(json_object_get(c, "id")), "call_x");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "function"), "name")), "f");
    json_decref(o);
    free(s);
    s = srv_event_delta(&ri, &more);
    o = parse_json(s + 6);
    c = json_array_get(
        json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "delta"), "tool_calls"), 0);
    assert_null(json_object_get(c, "id"));
    assert_null(json_object_get(json_object_get(c, "function"), "name"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "function"), "arguments")), "ty\":1}");
    json_decref(o);
    free(s);

    /* reasoning goes to reasoning_content */
    mf_delta r = {.kind = MF_DELTA_REASONING, .text = "hmm", .len = 3};
    s = srv_event_delta(&ri, &r);
    assert_non_null(strstr(s, "\"reasoning_content\":\"hmm\""));
    free(s);

    /* the end: finish chunk, usage chunk with no choices, [DONE] */
    mf_gen_result res = {.finish = MF_FINISH_STOP, .n_prompt = 3, .n_generated = 2};
    s = srv_event_finish(&ri, &res);
    char *second = strstr(s, "\n\ndata: {") + 2, *done = strstr(second, "\n\ndata: [DONE]\n\n");
    assert_non_null(done);
    assert_string_equal(done + 2, "data: [DONE]\n\n");
    *done = 0;
    o = parse_json(second + 6);
    assert_int_equal(json_array_size(json_object_get(o, "choices")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "usage"), "completion_tokens")), 2);
    json_decref(o);
    free(s);

    /* without include_usage: no usage fields at all */
    ri.include_usage = 0;
    s = srv_event_finish(&ri, &res);
    assert_null(strstr(s, "usage"));
    assert_non_null(strstr(s, "\"finish_reason\":\"stop\""));
    free(s);
}

static void reply_logprobs(void **state)
{
    (void)state;
    /* token texts come from a real vocabulary (the reply asks the tokenizer for pieces) */
    const char *path = mf_model_path("vocab-llama-spm.gguf");
    mf_skip_unless_exists(path);
    mf_gguf *g = mf_gguf_open(path, NULL);
    assert_non_null(g);
    mf_err err;
    mf_tokenizer *tok = mf_tokenizer_load(g, &err);
    assert_non_null(tok);
    int32_t hello = -1;
    mf_tokenize(tok, "Hello", 5, 0, 0, &hello, 1, &err);
    int32_t tops[2] = {hello, 29892};
    float top_lp[2] = {-0.25f, -1.5f};
    mf_token_logprob lp[2] = {{.id = hello, .logprob = -0.25f, .n_top = 2, .top_id = tops, .top_logprob = top_lp},
                              {.id = 29892, .logprob = -1.5f}};
    srv_lp_list list = {0};
    assert_int_equal(srv_lp_append(&list, lp, 2), 0);
    srv_reply_info ri = chat_ri;
    ri.tok = tok;
    mf_gen_result r = {.finish = MF_FINISH_LENGTH, .content = "Hello,"};
    char *s = srv_reply_final(&ri, &r, &list);
    json_t *o = parse_json(s);
    json_t *content =
        json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "logprobs"), "content");
    assert_int_equal(json_array_size(content), 2);
    json_t *e0 = json_array_get(content, 0);
    assert_true(json_real_value(json_object_get(e0, "logprob")) == -0.25);
    assert_int_equal(json_array_size(json_object_get(e0, "top_logprobs")), 2);
    char piece[64];
    size_t n = mf_tok_piece(tok, hello, 1, piece, sizeof piece);
    assert_int_equal(json_string_length(json_object_get(e0, "token")), n);
    assert_int_equal(json_array_size(json_object_get(e0, "bytes")), n);
    json_decref(o);
    free(s);

    /* completions: tokens, token_logprobs, top_logprobs {text: logprob}, text_offset */
    ri.kind = SRV_COMPLETION;
    s = srv_reply_final(&ri, &r, &list);
    o = parse_json(s);
    json_t *l = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "logprobs");
    assert_int_equal(json_array_size(json_object_get(l, "tokens")), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(l, "text_offset"), 0)), 0);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(l, "text_offset"), 1)), n);
    assert_int_equal(json_object_size(json_array_get(json_object_get(l, "top_logprobs"), 0)), 2);
    json_decref(o);
    free(s);
    srv_lp_free(&list);
    mf_tokenizer_free(tok);
    mf_gguf_close(g);
}

static void reply_text_and_errors(void **state)
{
    (void)state;
    /* invalid UTF-8 and NUL: one U+FFFD per bad byte, the valid characters kept */
    json_t *j = srv_json_text("a\xC3\x28\xFF\0b\xE2\x82\xAC", 9);
    assert_string_equal(json_string_value(j), "a\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD"
                                              "b\xE2\x82\xAC");
    json_decref(j);
    j = srv_json_text("\xE2\x82", 2); /* a cut character */
    assert_string_equal(json_string_value(j), "\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(j);

    srv_error e;
    srv_err(&e, 503, "queue_full", NULL, "busy");
    char *s = srv_reply_error(&e);
    assert_string_equal(
        s, "{\"error\":{\"message\":\"busy\",\"type\":\"server_error\",\"param\":null,\"code\":\"queue_full\"}}");
    free(s);
    srv_err(&e, 400, NULL, "temperature", "bad \"x\"");
    s = srv_reply_error(&e);
    assert_string_equal(
        s,
        "{\"error\":{\"message\":\"bad \\\"x\\\"\",\"type\":\"invalid_request_error\",\"param\":\"temperature\",\"code\":null}}");
    free(s);
    s = srv_event_error(&e);
    assert_int_equal(strncmp(s, "data: {\"error\"", 14), 0);
    free(s);
    s = srv_reply_models("stories260K.gguf", 5);
    assert_string_equal(
        s,
        "{\"object\":\"list\",\"data\":[{\"id\":\"stories260K.gguf\",\"object\":\"model\",\"created\":5,\"owned_by\":\"minfer\"}]}");
    free(s);
    assert_null(srv_finish_reason(MF_FINISH_CANCELLED));
    assert_null(srv_finish_reason(MF_FINISH_ERROR));
}

static void metrics_text(void **state)
{
    (void)state;
    srv_metrics m = {.ready = 1,
                     .generated_tokens = 12,
                     .queue_depth = 2,
                     .queue_capacity = 8,
                     .active = 1,
                     .n_seq = 4,
                     .decode_tok_s = 3.5};
    srv_metrics_count(&m, 200);
    srv_metrics_count(&m, 200);
    srv_metrics_count(&m, 503);
    srv_metrics_count(&m, 418);
    char *s = srv_metrics_text(&m);
    static const char *const want[] = {
        "\nminfer_ready 1\n",
        "\nminfer_http_requests_total{code=\"200\"} 2\n",
        "\nminfer_http_requests_total{code=\"503\"} 1\n",
        "\nminfer_http_requests_total{code=\"other\"} 1\n",
        "\nminfer_generated_tokens_total 12\n",
        "\nminfer_queue_depth 2\n",
        "\nminfer_active_sequences 1\n",
        "\nminfer_sequences 4\n",
        "\nminfer_decode_tokens_per_second 3.500\n",
        "# TYPE minfer_generated_tokens_total counter\n",
        "# TYPE minfer_queue_depth gauge\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(s, want[i])) fail_msg("missing %s in\n%s", want[i], s);
    free(s);
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* A connection waiting for a running job's end must sleep, not spin: srv_job_wait returned
 * at once for a running job, so every non-streamed request's thread polled in a busy loop
 * while its answer was generated (with 16 clients the connection threads took more CPU than
 * the model). No model is needed: the queue's engine thread fails to load a missing file,
 * and the job is never queued. */
static void job_wait_sleeps(void **state)
{
    (void)state;
    srv_queue_opts o = {.model_path = "/nonexistent/minfer-test.gguf", .capacity = 4};
    mf_err err;
    srv_queue *q = srv_queue_start(&o, &err);
    assert_non_null(q);
    while (srv_queue_ready(q) == 0) {
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    srv_job *j = srv_job_new();
    assert_non_null(j);
    j->state = SRV_RUNNING;
    double t0 = mono_s();
    assert_int_equal(srv_job_wait(q, j, 150, 1, NULL, NULL), SRV_RUNNING);
    double waited = mono_s() - t0;
    if (waited < 0.14) fail_msg("waiting for the end of a running job returned after %.1f ms, not 150", waited * 1e3);
    /* waiting for its start: a running job has started, no wait */
    t0 = mono_s();
    assert_int_equal(srv_job_wait(q, j, 150, 0, NULL, NULL), SRV_RUNNING);
    assert_true(mono_s() - t0 < 0.1);
    j->state = SRV_DONE;
    srv_job_release(q, j);
    srv_queue_stop(q, 0);
    srv_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_errors),
        cmocka_unit_test(request_chat_fields),
        cmocka_unit_test(request_completion_fields),
        cmocka_unit_test(reply_chat_objects),
        cmocka_unit_test(reply_stream_events),
        cmocka_unit_test(reply_logprobs),
        cmocka_unit_test(reply_text_and_errors),
        cmocka_unit_test(metrics_text),
        cmocka_unit_test(job_wait_sleeps),
    };
    return mf_run("test_serve", tests, sizeof tests / sizeof tests[0]);
}
