/* cmd_run.c — `minfer run`: generate text from a prompt, streaming it to stdout, with the
 * statistics on stderr. Options follow llama.cpp's llama-cli where they overlap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: minfer run [-m MODEL] (-p PROMPT | -f FILE) [options]\n"
        "  -p, --prompt TEXT       prompt text\n"
        "  -f, --file FILE         read the prompt from a file\n"
        "      --chat              wrap the prompt in the model's chat format (so does --chat-format)\n" DRV_GEN_USAGE
        "      --logits-out FILE   write the float32 logits of every prompt position\n"
        "                          ([n_tokens][n_vocab], row-major, little-endian)\n"
        "      --no-display-prompt do not echo the prompt\n"
        "      --skip-layers LIST  run without these layers, e.g. 3,7 or 2-5 (an experiment)\n");
}

typedef struct run_args {
    drv_gen_args g; /* the options run shares with chat */
    const char *prompt, *file, *logits_out, *skip;
    int chat, echo;
} run_args;

static int parse(int argc, char **argv, run_args *a)
{
    memset(a, 0, sizeof *a);
    const char *C = "run";
    if (drv_gen_args_init(C, &a->g, argc)) return -1;
    a->echo = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        int shared = drv_gen_option(C, argc, argv, &i, &a->g);
        if (shared < 0) return -1;
        if (shared) continue;
#define VAL()                                              \
    do {                                                   \
        if (!(v = drv_next(C, argc, argv, &i))) return -1; \
    } while (0)
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            drv_gen_args_free(&a->g);
            exit(0);
        } else if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) {
            VAL();
            a->prompt = v;
        } else if (!strcmp(o, "-f") || !strcmp(o, "--file")) {
            VAL();
            a->file = v;
        } else if (!strcmp(o, "--chat")) a->chat = 1;
        else if (!strcmp(o, "--logits-out")) {
            VAL();
            a->logits_out = v;
        } else if (!strcmp(o, "--no-display-prompt")) a->echo = 0;
        else if (!strcmp(o, "--skip-layers")) {
            VAL();
            a->skip = v;
        } else {
            fprintf(stderr, "minfer run: unknown option '%s' (see minfer run --help)\n", o);
            return -1;
        }
#undef VAL
    }
    if (!a->prompt && !a->file) {
        fprintf(stderr, "minfer run: give a prompt with -p TEXT or -f FILE\n");
        return -1;
    }
    if (a->prompt && a->file) {
        fprintf(stderr, "minfer run: -p and -f are exclusive\n");
        return -1;
    }
    if (a->g.chat_format) a->chat = 1;
    return drv_gen_args_finish(C, &a->g);
}

/* Streams bytes to a FILE, holding back an unfinished UTF-8 character at the end until the
 * next token completes it (a token may end in the middle of a character). */
typedef struct utf8_out {
    FILE *f;
    char pend[512];
    size_t n;
} utf8_out;

static void out_bytes(utf8_out *o, const char *b, size_t n)
{
    while (n) {
        size_t c = n < sizeof o->pend - o->n ? n : sizeof o->pend - o->n;
        memcpy(o->pend + o->n, b, c);
        o->n += c;
        b += c;
        n -= c;
        size_t ok = mf_utf8_complete(o->pend, o->n);
        if (ok == 0 && o->n == sizeof o->pend) ok = o->n; /* cannot happen for valid text */
        fwrite(o->pend, 1, ok, o->f);
        memmove(o->pend, o->pend + ok, o->n - ok);
        o->n -= ok;
    }
    fflush(o->f);
}

static void out_flush(utf8_out *o)
{
    fwrite(o->pend, 1, o->n, o->f);
    o->n = 0;
    fflush(o->f);
}

/* Where the deltas of the answer go: the text to stdout, harmony's analysis to stderr when
 * asked (--show-thinking), tool calls nowhere. */
typedef struct run_out {
    utf8_out out, think;
    int show_thinking;
} run_out;

static int on_delta(void *user, const mf_delta *d)
{
    run_out *o = user;
    if (d->kind == MF_DELTA_CONTENT) out_bytes(&o->out, d->text, d->len);
    else if (d->kind == MF_DELTA_REASONING && o->show_thinking) out_bytes(&o->think, d->text, d->len);
    return 0;
}

static void fmt_bytes(char *b, size_t n, double v)
{
    if (v >= 1e9) snprintf(b, n, "%.2f GB", v / 1e9);
    else snprintf(b, n, "%.1f MB", v / 1e6);
}

int mf_cmd_run(int argc, char **argv)
{
    run_args a;
    if (parse(argc, argv, &a)) {
        drv_gen_args_free(&a.g);
        return 2;
    }
    const char *path = a.g.model ? a.g.model : drv_default_model();
    if (!path) {
        drv_gen_args_free(&a.g);
        return 1;
    }
    /* the prompt's exact bytes: a file may hold NULs, which are text like any other byte
     * (as for `minfer tokenize -f`) */
    size_t text_len = 0;
    char *text = a.file ? drv_read_file("run", a.file, &text_len) : strdup(a.prompt);
    if (!text) {
        if (!a.file) fprintf(stderr, "minfer run: out of memory\n");
        drv_gen_args_free(&a.g);
        return 1;
    }
    if (!a.file) text_len = strlen(text);

    int rc = 1;
    mf_err err;
    mf_model *m = NULL;
    mf_session *s = NULL;
    char *rendered = NULL;
    int32_t *ids = NULL;
    float *all = NULL;
    mf_gen_result r = {0};

    double t0 = drv_now();
    m = mf_model_load(path, &err);
    if (!m) {
        fprintf(stderr, "minfer run: %s\n", err.msg);
        goto done;
    }
    if (drv_skip_layers("run", m, a.skip)) goto done;
    mf_session_opts so = drv_gen_session_opts(&a.g);
    drv_progress_on_terminal(&so, m);
    s = mf_session_new(m, &so, &err);
    if (!s) {
        fprintf(stderr, "minfer run: %s\n", err.msg);
        goto done;
    }
    double t_load = drv_now() - t0;
    if (mf_session_note(s)) fprintf(stderr, "minfer: %s\n", mf_session_note(s));

    /* the prompt: raw, or rendered in the chat format */
    int fmt = MF_CHAT_NONE;
    if (a.chat) {
        if (a.g.chat_format) {
            fmt = mf_chat_format_from_name(a.g.chat_format);
        } else {
            fmt = drv_chat_format(m);
            if (fmt == MF_CHAT_NONE) {
                fprintf(stderr, "minfer run: the model has no recognizable chat template; use --chat-format\n");
                goto done;
            }
        }
        const char *nul = memchr(text, 0, text_len);
        if (nul) {
            fprintf(stderr, "minfer run: the prompt has a NUL byte at offset %zu, which a chat message cannot hold\n",
                    (size_t)(nul - text));
            goto done;
        }
        char date[16];
        drv_today(date, sizeof date);
        mf_chat_opts co = {.system = a.g.system, .reasoning = a.g.reasoning, .date = date};
        rendered = mf_chat_render(fmt, text, &co, &err);
        if (!rendered) {
            fprintf(stderr, "minfer run: %s\n", err.msg);
            goto done;
        }
    }
    const char *prompt = rendered ? rendered : text;
    size_t prompt_len = rendered ? strlen(rendered) : text_len;
    /* chat prompts contain the format's special tokens as text: parse them */
    int64_t n = mf_tokenize(m->tok, prompt, prompt_len, 1, rendered != NULL, NULL, 0, &err);
    if (n < 0) {
        fprintf(stderr, "minfer run: %s\n", err.msg);
        goto done;
    }
    int n_ctx = mf_session_n_ctx(s);
    if (n > n_ctx) {
        fprintf(stderr, "minfer run: the prompt has %lld tokens but the context holds %d (use -c to enlarge it)\n",
                (long long)n, n_ctx);
        goto done;
    }
    if (n == 0) {
        fprintf(stderr, "minfer run: the prompt is empty (0 tokens)\n");
        goto done;
    }
    ids = malloc(sizeof(int32_t) * (size_t)n);
    if (!ids) {
        fprintf(stderr, "minfer run: out of memory\n");
        goto done;
    }
    mf_tokenize(m->tok, prompt, prompt_len, 1, rendered != NULL, ids, n, &err);

    mf_gen_params gp = mf_gen_defaults();
    gp.sampler = a.g.sp;
    gp.max_tokens = a.g.n_predict;
    gp.stop = a.g.stop;
    gp.n_stop = a.g.n_stop;
    gp.format = fmt;
    if (mf_gen_check(m, &gp, n_ctx, &err)) {
        fprintf(stderr, "minfer run: %s\n", err.msg);
        goto done;
    }
    run_out out = {.out = {.f = stdout}, .think = {.f = stderr}, .show_thinking = a.g.show_thinking};
    if (a.echo && !rendered) out_bytes(&out.out, text, text_len);

    /* --logits-out: the prompt evaluated here with every row's logits; the generation then
     * finds it in the cache, with its last logits, and evaluates nothing again */
    double t_prompt = -1;
    if (a.logits_out) {
        all = malloc(sizeof(float) * (size_t)n * (size_t)m->hp.n_vocab);
        if (!all) {
            fprintf(stderr, "minfer run: out of memory for %lld logits rows\n", (long long)n);
            goto done;
        }
        double t1 = drv_now();
        if (mf_session_eval(s, ids, (int)n, all, &err)) {
            fprintf(stderr, "minfer run: %s\n", err.msg);
            goto done;
        }
        t_prompt = drv_now() - t1;
        FILE *f = fopen(a.logits_out, "wb");
        size_t cnt = (size_t)n * (size_t)m->hp.n_vocab;
        if (!f || fwrite(all, sizeof(float), cnt, f) != cnt || fclose(f) != 0) {
            fprintf(stderr, "minfer run: cannot write '%s'\n", a.logits_out);
            goto done;
        }
    }

    if (mf_generate(s, ids, (int)n, &gp, on_delta, &out, &r, &err)) {
        fprintf(stderr, "minfer run: %s\n", err.msg);
        goto done;
    }
    if (t_prompt < 0) t_prompt = r.t_prompt_s;
    out_flush(&out.think);
    out_flush(&out.out);
    printf("\n");
    fflush(stdout);
    if (r.finish == MF_FINISH_ERROR) {
        fprintf(stderr, "minfer run: %s\n", r.error);
        goto done;
    }

    const mf_backend *be = mf_session_backend(s);
    char mem[32];
    fmt_bytes(mem, sizeof mem, (double)mf_peak_rss());
    if (r.finish == MF_FINISH_CONTEXT)
        fprintf(stderr, "minfer: stopped at the end of the context (%d tokens)\n", n_ctx);
    fprintf(stderr, "minfer: %s on %s: %s, seed %llu\n", path, be->name, be->device_name,
            (unsigned long long)a.g.sp.seed);
    fprintf(stderr, "load:     %8.1f ms\n", t_load * 1e3);
    fprintf(stderr, "prompt:   %5lld tokens in %8.1f ms (%8.1f tok/s)\n", (long long)n, t_prompt * 1e3,
            n / (t_prompt > 0 ? t_prompt : 1e-9));
    /* the first generated token comes from the prompt's logits: the rate counts the
     * single-token forward passes that followed it, and their time only */
    const char *why = r.finish == MF_FINISH_STOP && r.stop_index < 0 ? ", stopped at end of text"
                      : r.finish == MF_FINISH_STOP                   ? ", stopped at a stop string"
                      : r.finish == MF_FINISH_TOOL_CALLS             ? ", stopped at a tool call"
                                                                     : "";
    fprintf(stderr, "generate: %5d tokens, %d forward passes in %8.1f ms (%8.1f tok/s, %.2f ms/token)%s\n",
            r.n_generated, r.n_decode, r.t_gen_s * 1e3, r.n_decode / (r.t_gen_s > 0 ? r.t_gen_s : 1e-9),
            r.n_decode ? r.t_gen_s * 1e3 / r.n_decode : 0.0, why);
    fprintf(stderr, "peak memory: %s (resident; weights are memory-mapped)\n", mem);
    rc = 0;
done:
    mf_gen_result_free(&r);
    free(all);
    free(ids);
    free(rendered);
    free(text);
    drv_gen_args_free(&a.g);
    mf_session_free(s);
    mf_model_free(m);
    return rc;
}
