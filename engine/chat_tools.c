/* chat_tools.c — function tools for the harmony format (contract: chat.h; docs/generate.md §6).
 *
 * The caller gives OpenAI's "tools" array as JSON text; the developer message lists the
 * functions in the TypeScript-like syntax gpt-oss was trained on:
 *
 *     # Tools
 *
 *     ## functions
 *
 *     namespace functions {
 *
 *     // Gets the current weather in the provided location.
 *     type get_current_weather = (_: {
 *     // The city and state, e.g. San Francisco, CA
 *     location: string,
 *     format?: "celsius" | "fahrenheit", // default: celsius
 *     }) => any;
 *
 *     } // namespace functions
 *
 * The rules for turning a JSON schema into that type are OpenAI's harmony renderer's
 * (https://github.com/openai/harmony, src/encoding.rs, json_schema_to_typescript and
 * template_tools_section), written here from its description and behaviour; its
 * docs/format.md "Function calling" example is reproduced byte for byte by test_chat.c.
 * Their quirks are kept on purpose (a nested object's description printed before its
 * brace, a string default quoted except for enums, oneOf variants one per line), since the
 * model saw exactly that text.
 *
 * JSON is read with jansson (libjansson-dev). A build without it refuses tools with a
 * message saying so (the lent GPU machines cannot install packages).
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

#ifndef MF_HAVE_JSON

int mf_chat_tools_check(const char *tools_json, mf_err *err)
{
    (void)tools_json;
    return mf_errf(err, "tools: this build has no JSON library (install libjansson-dev and rebuild)");
}

char *mf_harmony_tools_section(const char *tools_json, int *n_tools, mf_err *err)
{
    *n_tools = 0;
    mf_chat_tools_check(tools_json, err);
    return NULL;
}

#else

#include <jansson.h>
#include <math.h>

/* ------------------------------------------------------------------ reading the list */

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", s[i])) return 0;
    return 1;
}

/* Parses the list and checks every item; the document (NULL with err) for the caller. */
static json_t *load_tools(const char *text, mf_err *err)
{
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        mf_errf(err, "tools: invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_array(root)) {
        mf_errf(err, "tools: expected an array of tools, got a JSON %s",
                json_is_object(root)   ? "object"
                : json_is_string(root) ? "string"
                                       : "value");
        json_decref(root);
        return NULL;
    }
    size_t i;
    json_t *t;
    json_array_foreach(root, i, t) {
        json_t *type = json_object_get(t, "type"), *f = json_object_get(t, "function");
        const char *why = NULL;
        if (!json_is_object(t)) why = "is not an object";
        else if (type && (!json_is_string(type) || strcmp(json_string_value(type), "function")))
            why = "has a 'type' other than \"function\" (only functions are supported)";
        else if (!json_is_object(f)) why = "has no 'function' object";
        else if (!json_is_string(json_object_get(f, "name"))) why = "has no 'function.name' string";
        else if (!name_ok(json_string_value(json_object_get(f, "name"))))
            why = "has a 'function.name' that is not 1 to 64 letters, digits, '_' or '-'";
        else if (json_object_get(f, "description") && !json_is_string(json_object_get(f, "description")))
            why = "has a 'function.description' that is not a string";
        else if (json_object_get(f, "parameters") && !json_is_object(json_object_get(f, "parameters")))
            why = "has 'function.parameters' that is not an object (a JSON schema)";
        if (why) {
            mf_errf(err, "tools[%zu] %s", i, why);
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

int mf_chat_tools_check(const char *tools_json, mf_err *err)
{
    if (!tools_json) return 0;
    json_t *root = load_tools(tools_json, err);
    if (!root) return -1;
    json_decref(root);
    return 0;
}

/* ------------------------------------------------------------------ JSON values as text */

/* A number as serde_json prints a float (the Rust library the renderer uses): the shortest
 * digits that read back to the same double (ryu), in plain notation with at least one
 * decimal when the decimal exponent is small, else d.ddde±x. */
static void add_real(mf_sb *b, double v)
{
    if (!isfinite(v)) {
        mf_sb_add(b, "null");
        return;
    }
    char buf[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    /* buf = [-]d[.ddd]e±XX: the digits and the exponent of the first one */
    char digits[24];
    int nd = 0, neg = buf[0] == '-';
    const char *p = buf + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int e10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int kk = e10 + 1; /* 10^(kk-1) <= |v| < 10^kk */
    if (neg) mf_sb_add(b, "-");
    if (v == 0) {
        mf_sb_add(b, "0.0");
    } else if (kk >= nd && kk <= 16) { /* integer-valued: 1234e3 -> 1234000.0 */
        mf_sb_add_n(b, digits, (size_t)nd);
        for (int i = nd; i < kk; i++) mf_sb_add(b, "0");
        mf_sb_add(b, ".0");
    } else if (kk > 0 && kk <= 16) { /* 12.34 */
        mf_sb_add_n(b, digits, (size_t)kk);
        mf_sb_add(b, ".");
        mf_sb_add_n(b, digits + kk, (size_t)(nd - kk));
    } else if (kk > -5 && kk <= 0) { /* 0.001234 */
        mf_sb_add(b, "0.");
        for (int i = kk; i < 0; i++) mf_sb_add(b, "0");
        mf_sb_add_n(b, digits, (size_t)nd);
    } else { /* 1e30, 1.234e-7 */
        mf_sb_add_n(b, digits, 1);
        if (nd > 1) {
            mf_sb_add(b, ".");
            mf_sb_add_n(b, digits + 1, (size_t)(nd - 1));
        }
        mf_sb_addf(b, "e%d", kk - 1);
    }
}

/* A string as JSON: quotes, backslash and control bytes escaped, everything else as is */
static void add_json_string(mf_sb *b, const char *s, size_t n)
{
    mf_sb_add(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': mf_sb_add(b, "\\\""); break;
        case '\\': mf_sb_add(b, "\\\\"); break;
        case '\b': mf_sb_add(b, "\\b"); break;
        case '\f': mf_sb_add(b, "\\f"); break;
        case '\n': mf_sb_add(b, "\\n"); break;
        case '\r': mf_sb_add(b, "\\r"); break;
        case '\t': mf_sb_add(b, "\\t"); break;
        default:
            if (c < 0x20) mf_sb_addf(b, "\\u%04x", c);
            else mf_sb_add_n(b, (const char *)&c, 1);
        }
    }
    mf_sb_add(b, "\"");
}

/* A value as compact JSON, the way serde_json's Display writes it (used for defaults) */
static void add_json(mf_sb *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        mf_sb_add(b, "{");
        json_object_foreach((json_t *)v, k, x) {
            if (!first) mf_sb_add(b, ",");
            first = 0;
            add_json_string(b, k, strlen(k));
            mf_sb_add(b, ":");
            add_json(b, x);
        }
        mf_sb_add(b, "}");
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        mf_sb_add(b, "[");
        json_array_foreach((json_t *)v, i, x) {
            if (i) mf_sb_add(b, ",");
            add_json(b, x);
        }
        mf_sb_add(b, "]");
        break;
    }
    case JSON_STRING: add_json_string(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: mf_sb_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: add_real(b, json_real_value(v)); break;
    case JSON_TRUE: mf_sb_add(b, "true"); break;
    case JSON_FALSE: mf_sb_add(b, "false"); break;
    default: mf_sb_add(b, "null"); break;
    }
}

/* ------------------------------------------------------------------ schema -> TypeScript */

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key)); /* NULL unless a string */
}

static int is_enum(const json_t *s) { return json_array_size(json_object_get(s, "enum")) > 0; }
static int nullable(const json_t *s) { return json_is_true(json_object_get(s, "nullable")); }

/* "default: ..." as the renderer writes it after a variant or a property: a string quoted
 * unless the schema is an enum (quoted_enum_strings: the top-level oneOf writes even those
 * as JSON) */
static void add_default(mf_sb *b, const json_t *schema, const json_t *d, int quoted_enum_strings)
{
    if (json_is_string(d) && !is_enum(schema)) mf_sb_addf(b, "default: \"%s\"", json_string_value(d));
    else if (json_is_string(d) && !quoted_enum_strings) mf_sb_addf(b, "default: %s", json_string_value(d));
    else {
        mf_sb_add(b, "default: ");
        add_json(b, d);
    }
}

static void to_ts(mf_sb *b, const json_t *s, const char *indent, int depth);

/* one variant's type, with " | null" when it is nullable */
static void variant_type(mf_sb *b, const json_t *v, const char *indent, int depth)
{
    mf_sb t = {0};
    to_ts(&t, v, indent, depth);
    mf_sb_add(b, t.p ? t.p : "");
    if (nullable(v) && !(t.p && strstr(t.p, "null"))) mf_sb_add(b, " | null");
    b->oom |= t.oom;
    mf_sb_free(&t);
}

static char *deeper(const char *indent, const char *more)
{
    size_t a = strlen(indent), m = strlen(more);
    char *s = malloc(a + m + 1);
    if (s) {
        memcpy(s, indent, a);
        memcpy(s + a, more, m + 1);
    }
    return s;
}

/* The variants of a oneOf list, one a line: " | TYPE // DESCRIPTION DEFAULT". A property's
 * list (top = 0) ends each line with a newline; the schema's own (top = 1) starts each with
 * one and writes even an enum's string default quoted (add_default). A variant's description is left out when it repeats
 * the property's (pdesc), or, for the first variant, when it was said above the property.
 * -1 out of memory (b->oom set). */
static int variant_lines(mf_sb *b, const json_t *arr, const char *indent, int depth, int top, int above,
                         const char *pdesc)
{
    char *in3 = deeper(indent, "   ");
    if (!in3) {
        b->oom = 1;
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)arr, i, v) {
        mf_sb_addf(b, top ? "\n%s | " : "%s | ", indent);
        variant_type(b, v, in3, depth + 1);
        const char *vdesc = str_of(v, "description");
        const json_t *vd = json_object_get(v, "default");
        int say_desc = !(i == 0 && above) && vdesc && !(pdesc && !strcmp(vdesc, pdesc));
        if (say_desc || vd) mf_sb_add(b, " // ");
        if (say_desc) mf_sb_add(b, vdesc);
        if (say_desc && vd) mf_sb_add(b, " ");
        if (vd) add_default(b, v, vd, top);
        if (!top) mf_sb_add(b, "\n");
    }
    free(in3);
    return 0;
}

/* a property whose schema is a oneOf list: its comments, then "key?:" and one variant a line */
static void oneof_property(mf_sb *b, const char *key, const json_t *val, const json_t *arr, int required,
                           const char *indent, int depth)
{
    const char *pdesc = str_of(val, "description");
    const char *first_desc = str_of(json_array_get(arr, 0), "description");
    int above = 0;
    if (pdesc && !(first_desc && !strcmp(pdesc, first_desc))) {
        mf_sb_addf(b, "%s// %s\n", indent, pdesc);
        above = 1;
    }
    const json_t *d = json_object_get(val, "default");
    if (d) {
        mf_sb_addf(b, "%s// ", indent);
        add_default(b, val, d, 0);
        mf_sb_add(b, "\n");
    }
    mf_sb_addf(b, "%s%s%s:\n", indent, key, required ? "" : "?");
    if (variant_lines(b, arr, indent, depth, 0, above, pdesc) == 0) mf_sb_addf(b, "%s,\n", indent);
}

static void object_type(mf_sb *b, const json_t *s, const char *indent, int depth)
{
    const char *desc = str_of(s, "description");
    if (desc) mf_sb_addf(b, "%s// %s\n", indent, desc);
    mf_sb_add(b, "{\n");
    const json_t *props = json_object_get(s, "properties");
    const json_t *req = json_object_get(s, "required");
    char *in4 = deeper(indent, "    ");
    if (!in4) {
        b->oom = 1;
        return;
    }
    const char *key;
    json_t *val;
    if (json_is_object(props))
        json_object_foreach((json_t *)props, key, val) {
            int required = 0;
            size_t i;
            json_t *r;
            json_array_foreach((json_t *)req, i, r) required |= json_is_string(r) && !strcmp(json_string_value(r), key);
            const char *title = str_of(val, "title"), *pdesc = str_of(val, "description");
            const json_t *oneof = json_object_get(val, "oneOf"), *ex = json_object_get(val, "examples");
            if (title) mf_sb_addf(b, "%s// %s\n%s//\n", indent, title, indent);
            if (!oneof && pdesc) mf_sb_addf(b, "%s// %s\n", indent, pdesc);
            if (json_array_size(ex) > 0) {
                mf_sb_addf(b, "%s// Examples:\n", indent);
                json_t *e;
                json_array_foreach((json_t *)ex, i, e)
                    if (json_is_string(e)) mf_sb_addf(b, "%s// - \"%s\"\n", indent, json_string_value(e));
            }
            if (json_is_array(oneof)) {
                oneof_property(b, key, val, oneof, required, indent, depth);
                continue;
            }
            mf_sb_addf(b, "%s%s%s: ", indent, key, required ? "" : "?");
            variant_type(b, val, in4, depth + 1);
            mf_sb_add(b, ",");
            const json_t *d = json_object_get(val, "default");
            if (!oneof && d) {
                mf_sb_add(b, " // ");
                add_default(b, val, d, 0);
            }
            mf_sb_add(b, "\n");
        }
    mf_sb_addf(b, "%s}", indent);
    free(in4);
}

/* The type of schema s. Indentation grows with nesting as the renderer's does; schemas
 * nested deeper than 64 levels are "any" (jansson itself stops at 2048). */
static void to_ts(mf_sb *b, const json_t *s, const char *indent, int depth)
{
    if (depth > 64) {
        mf_sb_add(b, "any");
        return;
    }
    const json_t *oneof = json_object_get(s, "oneOf"), *type = json_object_get(s, "type");
    if (json_is_array(oneof)) {
        variant_lines(b, oneof, indent, depth, 1, 0, NULL);
        return;
    }
    if (json_is_array(type)) {
        size_t i, k = 0;
        json_t *t;
        json_array_foreach((json_t *)type, i, t) {
            const char *ts = json_string_value(t);
            if (!ts) continue;
            if (k++) mf_sb_add(b, " | ");
            mf_sb_add(b, !strcmp(ts, "integer") ? "number" : ts);
        }
        if (k) return;
    }
    const char *ty = json_string_value(type);
    if (!ty) mf_sb_add(b, "any");
    else if (!strcmp(ty, "object")) object_type(b, s, indent, depth);
    else if (!strcmp(ty, "string")) {
        const json_t *en = json_object_get(s, "enum");
        size_t i, k = 0;
        json_t *v;
        json_array_foreach((json_t *)en, i, v)
            if (json_is_string(v)) mf_sb_addf(b, "%s\"%s\"", k++ ? " | " : "", json_string_value(v));
        if (!k) mf_sb_add(b, "string");
    } else if (!strcmp(ty, "number") || !strcmp(ty, "integer")) mf_sb_add(b, "number");
    else if (!strcmp(ty, "boolean")) mf_sb_add(b, "boolean");
    else if (!strcmp(ty, "array")) {
        const json_t *items = json_object_get(s, "items");
        if (items) {
            to_ts(b, items, indent, depth + 1);
            mf_sb_add(b, "[]");
        } else mf_sb_add(b, "Array<any>");
    } else mf_sb_add(b, "any");
}

/* each line of s as a "// line" comment (Rust's str::lines: a trailing newline ends the last
 * line, a "\r\n" ending loses its "\r") */
static void add_comment_lines(mf_sb *b, const char *s)
{
    while (*s) {
        size_t n = strcspn(s, "\n");
        size_t k = n && s[n - 1] == '\r' && s[n] == '\n' ? n - 1 : n;
        mf_sb_add(b, "// ");
        mf_sb_add_n(b, s, k);
        mf_sb_add(b, "\n");
        s += n + (s[n] == '\n');
    }
}

char *mf_harmony_tools_section(const char *tools_json, int *n_tools, mf_err *err)
{
    *n_tools = 0;
    json_t *root = load_tools(tools_json, err);
    if (!root) return NULL;
    mf_sb b = {0};
    size_t n = json_array_size(root);
    if (n) {
        mf_sb_add(&b, "# Tools\n\n## functions\n\nnamespace functions {\n\n");
        size_t i;
        json_t *t;
        json_array_foreach(root, i, t) {
            const json_t *f = json_object_get(t, "function");
            const char *desc = str_of(f, "description");
            if (desc) add_comment_lines(&b, desc);
            const json_t *params = json_object_get(f, "parameters");
            mf_sb_addf(&b, "type %s = ", str_of(f, "name"));
            if (params) {
                mf_sb_add(&b, "(_: ");
                to_ts(&b, params, "", 0);
                mf_sb_add(&b, ") => any;\n\n");
            } else mf_sb_add(&b, "() => any;\n\n");
        }
        mf_sb_add(&b, "} // namespace functions");
    }
    json_decref(root);
    char *s = mf_sb_take(&b);
    if (!s) mf_errf(err, "tools: out of memory");
    else *n_tools = (int)n;
    return s;
}

#endif
