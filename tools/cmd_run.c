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
        "  -m, --model FILE        GGUF model (default: $MINFER_MODEL, weights/*.gguf, ../shared/models/stories260K.gguf)\n"
        "  -p, --prompt TEXT       prompt text\n"
        "  -f, --file FILE         read the prompt from a file\n"
        "  -n, --n-predict N       tokens to generate (-1: until end of text or context; default -1)\n"
        "  -c, --ctx-size N        context length (default: the model's, at most 4096)\n"
        "  -t, --threads N         CPU threads (default: one per core)\n"
        "  -b, --batch-size N      prompt tokens per forward step (default 512)\n"
        "      --device D          auto | cpu | cuda (default auto)\n"
        "      --temp T            temperature, 0 = greedy (default 0.8)\n"
        "      --top-k K           (default 40, 0 = off)\n"
        "      --top-p P           (default 0.95, 1 = off)\n"
        "      --min-p P           (default 0.05, 0 = off)\n"
        "      --repeat-penalty R  (default 1.0 = off)\n"
        "      --repeat-last-n N   tokens the penalty looks back (default 64)\n"
        "  -s, --seed S            random seed (default: from the clock; printed)\n"
        "      --chat              wrap the prompt in the model's chat format\n"
        "      --chat-format NAME  zephyr | llama2 | chatml | harmony (default: from the model)\n"
        "      --system TEXT       system prompt for --chat\n"
        "      --reasoning LEVEL   low | medium | high (harmony, default medium)\n"
        "      --show-thinking     harmony: print the analysis channel to stderr\n"
        "      --kv-f16            store the KV cache in binary16 (the default)\n"
        "      --kv-f32            store the KV cache in float32\n"
        "      --no-graph          do not capture CUDA graphs\n"
        "      --logits-out FILE   write the float32 logits of every prompt position\n"
        "                          ([n_tokens][n_vocab], row-major, little-endian)\n"
        "      --no-display-prompt do not echo the prompt\n"
        "      --skip-layers LIST  run without these layers, e.g. 3,7 or 2-5 (an experiment)\n");
}

typedef struct run_args {
    const char *model, *prompt, *file, *device, *chat_format, *system, *reasoning, *logits_out, *skip;
    int n_predict, n_ctx, n_threads, batch, chat, show_thinking, kv_f16, no_graph, echo;
    int seed_given;
    mf_sampler_params sp;
} run_args;

static int parse(int argc, char **argv, run_args *a)
{
    memset(a, 0, sizeof *a);
    a->n_predict = -1;
    a->batch = 512;
    a->device = "auto";
    a->echo = 1;
    a->kv_f16 = -1;
    a->sp = mf_sampler_defaults();
    const char *C = "run";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
#define VAL()                                              \
    do {                                                   \
        if (!(v = drv_next(C, argc, argv, &i))) return -1; \
    } while (0)
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            VAL();
            a->model = v;
        } else if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) {
            VAL();
            a->prompt = v;
        } else if (!strcmp(o, "-f") || !strcmp(o, "--file")) {
            VAL();
            a->file = v;
        } else if (!strcmp(o, "-n") || !strcmp(o, "--n-predict")) {
            VAL();
            if (drv_int(C, o, v, -1, 1 << 24, &a->n_predict)) return -1;
        } else if (!strcmp(o, "-c") || !strcmp(o, "--ctx-size")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 24, &a->n_ctx)) return -1;
        } else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
            VAL();
            if (drv_int(C, o, v, 1, 1024, &a->n_threads)) return -1;
        } else if (!strcmp(o, "-b") || !strcmp(o, "--batch-size")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 16, &a->batch)) return -1;
        } else if (!strcmp(o, "--device")) {
            VAL();
            a->device = v;
        } else if (!strcmp(o, "--temp")) {
            VAL();
            if (drv_float(C, o, v, 0, 100, &a->sp.temp)) return -1;
        } else if (!strcmp(o, "--top-k")) {
            VAL();
            if (drv_int(C, o, v, 0, 1 << 24, &a->sp.top_k)) return -1;
        } else if (!strcmp(o, "--top-p")) {
            VAL();
            if (drv_float(C, o, v, 0, 1, &a->sp.top_p)) return -1;
        } else if (!strcmp(o, "--min-p")) {
            VAL();
            if (drv_float(C, o, v, 0, 1, &a->sp.min_p)) return -1;
        } else if (!strcmp(o, "--repeat-penalty")) {
            VAL();
            if (drv_float(C, o, v, 0.01, 100, &a->sp.repeat_penalty)) return -1;
        } else if (!strcmp(o, "--repeat-last-n")) {
            VAL();
            if (drv_int(C, o, v, 0, 1 << 24, &a->sp.repeat_last_n)) return -1;
        } else if (!strcmp(o, "-s") || !strcmp(o, "--seed")) {
            VAL();
            if (drv_u64(C, o, v, &a->sp.seed)) return -1;
            a->seed_given = 1;
        } else if (!strcmp(o, "--chat")) a->chat = 1;
        else if (!strcmp(o, "--chat-format")) {
            VAL();
            a->chat_format = v;
            a->chat = 1;
        } else if (!strcmp(o, "--system")) {
            VAL();
            a->system = v;
        } else if (!strcmp(o, "--reasoning")) {
            VAL();
            a->reasoning = v;
        } else if (!strcmp(o, "--show-thinking")) a->show_thinking = 1;
        else if (!strcmp(o, "--kv-f16")) a->kv_f16 = 1;
        else if (!strcmp(o, "--kv-f32")) a->kv_f16 = 0;
        else if (!strcmp(o, "--no-graph")) a->no_graph = 1;
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
    if (a->reasoning && strcmp(a->reasoning, "low") && strcmp(a->reasoning, "medium") && strcmp(a->reasoning, "high")) {
        fprintf(stderr, "minfer run: bad value '%s' for --reasoning (expected low, medium or high)\n", a->reasoning);
        return -1;
    }
    if (!a->seed_given) a->sp.seed = (uint64_t)time(NULL);
    return 0;
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

/* An error after text was streamed: the text line is ended on stdout (as at a normal end),
 * and the message is one line on stderr. */
static void stream_error(utf8_out *out, utf8_out *think, const char *msg)
{
    out_flush(think);
    out_flush(out);
    fputc('\n', out->f);
    fflush(out->f);
    fprintf(stderr, "minfer run: %s\n", msg);
}

static void fmt_bytes(char *b, size_t n, double v)
{
    if (v >= 1e9) snprintf(b, n, "%.2f GB", v / 1e9);
    else snprintf(b, n, "%.1f MB", v / 1e6);
}

int mf_cmd_run(int argc, char **argv)
{
    run_args a;
    if (parse(argc, argv, &a)) return 2;
    const char *path = a.model ? a.model : drv_default_model();
    if (!path) return 1;
    /* the prompt's exact bytes: a file may hold NULs, which are text like any other byte
     * (as for `minfer tokenize -f`) */
    size_t text_len = 0;
    char *text = a.file ? drv_read_file("run", a.file, &text_len) : strdup(a.prompt);
    if (!text) {
        if (!a.file) fprintf(stderr, "minfer run: out of memory\n");
        return 1;
    }
    if (!a.file) text_len = strlen(text);

    int rc = 1;
    mf_err err;
    mf_model *m = NULL;
    mf_session *s = NULL;
    mf_sampler *smp = NULL;
    char *rendered = NULL, *piece = NULL;
    size_t piece_cap = 0;
    int32_t *ids = NULL;
    float *all = NULL;

    double t0 = drv_now();
    m = mf_model_load(path, &err);
    if (!m) {
        fprintf(stderr, "minfer run: %s\n", err.msg);
        goto done;
    }
    if (drv_skip_layers("run", m, a.skip)) goto done;
    mf_session_opts so = mf_session_defaults();
    so.device = a.device;
    so.n_threads = a.n_threads;
    so.n_ctx = a.n_ctx;
    so.max_batch = a.batch;
    so.kv_f16 = a.kv_f16;
    so.no_graph = a.no_graph;
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
        if (a.chat_format) {
            fmt = mf_chat_format_from_name(a.chat_format);
            if (fmt < 0) {
                fprintf(stderr, "minfer run: unknown chat format '%s'\n", a.chat_format);
                goto done;
            }
        } else {
            const char *tmpl = NULL;
            mf_gguf_opt_str(m->gguf, "tokenizer.chat_template", NULL, &tmpl, NULL);
            fmt = mf_chat_detect(tmpl, m->hp.arch_name);
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
        time_t now = time(NULL);
        strftime(date, sizeof date, "%Y-%m-%d", localtime(&now));
        mf_chat_opts co = {.system = a.system, .reasoning = a.reasoning, .date = date};
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
    ids = malloc(sizeof(int32_t) * (size_t)n_ctx);
    if (!ids) {
        fprintf(stderr, "minfer run: out of memory\n");
        goto done;
    }
    mf_tokenize(m->tok, prompt, prompt_len, 1, rendered != NULL, ids, n, &err);

    smp = mf_sampler_new(&a.sp, m->hp.n_vocab);
    if (!smp) {
        fprintf(stderr, "minfer run: out of memory\n");
        goto done;
    }
    utf8_out out = {.f = stdout}, think = {.f = stderr};
    if (a.echo && !rendered) out_bytes(&out, text, text_len);

    /* prompt processing */
    if (a.logits_out) {
        all = malloc(sizeof(float) * (size_t)n * (size_t)m->hp.n_vocab);
        if (!all) {
            fprintf(stderr, "minfer run: out of memory for %lld logits rows\n", (long long)n);
            goto done;
        }
    }
    double t1 = drv_now();
    if (mf_session_eval(s, ids, (int)n, all, &err)) {
        fprintf(stderr, "minfer run: %s\n", err.msg);
        goto done;
    }
    double t_prompt = drv_now() - t1;
    if (all) {
        FILE *f = fopen(a.logits_out, "wb");
        size_t cnt = (size_t)n * (size_t)m->hp.n_vocab;
        if (!f || fwrite(all, sizeof(float), cnt, f) != cnt || fclose(f) != 0) {
            fprintf(stderr, "minfer run: cannot write '%s'\n", a.logits_out);
            goto done;
        }
    }

    /* generation */
    mf_harmony hm;
    int harmony = fmt == MF_CHAT_HARMONY && mf_harmony_init(&hm, m->tok) == 0;
    int greedy = mf_sampler_is_greedy(smp), n_gen = 0, n_eval = 0, pos = (int)n, stop_reason = 0;
    double t_eval = 0.0;
    /* the tokens of the last evaluation: where to look when its logits are not finite */
    const int32_t *last = ids;
    int n_last = (int)n;
    while (a.n_predict < 0 || n_gen < a.n_predict) {
        /* every step checks that the logits are numbers (the argmax does it where the logits
         * live; sampling scans the host copy): a broken file stops here with the layer
         * that broke, instead of printing token 0 forever */
        int32_t next;
        if (greedy) {
            next = mf_session_argmax(s);
        } else {
            float *lg = mf_session_logits(s, &err);
            if (!lg) {
                stream_error(&out, &think, err.msg);
                goto done;
            }
            next = mf_first_nonfinite_f32(lg, (uint64_t)m->hp.n_vocab) >= 0 ? -1 : mf_sampler_sample(smp, lg, ids, pos);
        }
        if (next < 0) {
            mf_session_explain_nonfinite(s, last, n_last, &err);
            stream_error(&out, &think, err.msg);
            goto done;
        }
        n_gen++;
        int stop = 0;
        size_t len = 0;
        if (harmony || !mf_tok_is_eog(m->tok, next)) {
            /* a piece may be of any length: grow the buffer to what it needs */
            len = mf_tok_piece(m->tok, next, 0, piece, piece_cap);
            if (len > piece_cap) {
                char *p = realloc(piece, len);
                if (!p) {
                    stream_error(&out, &think, "out of memory");
                    goto done;
                }
                piece = p;
                piece_cap = len;
                mf_tok_piece(m->tok, next, 0, piece, piece_cap);
            }
        }
        if (harmony) {
            int ch = mf_harmony_feed(&hm, m->tok, next, &stop);
            if (ch == MF_HCH_FINAL || (ch == MF_HCH_COMMENTARY && !hm.has_recipient)) out_bytes(&out, piece, len);
            else if (ch == MF_HCH_ANALYSIS && a.show_thinking) out_bytes(&think, piece, len);
        } else if (mf_tok_is_eog(m->tok, next)) {
            stop = 1;
        } else {
            out_bytes(&out, piece, len);
        }
        if (stop || mf_tok_is_eog(m->tok, next)) {
            stop_reason = 1;
            break;
        }
        if (a.n_predict >= 0 && n_gen >= a.n_predict) break;
        /* the token was printed; it enters the context (and ids[]) only if there is room */
        if (pos >= n_ctx) {
            stop_reason = 2;
            break;
        }
        ids[pos++] = next;
        last = &ids[pos - 1];
        n_last = 1;
        double te = drv_now();
        if (mf_session_eval(s, &next, 1, NULL, &err)) {
            stream_error(&out, &think, err.msg);
            goto done;
        }
        t_eval += drv_now() - te;
        n_eval++;
    }
    out_flush(&think);
    out_flush(&out);
    printf("\n");
    fflush(stdout);

    const mf_backend *be = mf_session_backend(s);
    char mem[32];
    fmt_bytes(mem, sizeof mem, (double)mf_peak_rss());
    if (stop_reason == 2) fprintf(stderr, "minfer: stopped at the end of the context (%d tokens)\n", n_ctx);
    fprintf(stderr, "minfer: %s on %s: %s, seed %llu\n", path, be->name, be->device_name,
            (unsigned long long)a.sp.seed);
    fprintf(stderr, "load:     %8.1f ms\n", t_load * 1e3);
    fprintf(stderr, "prompt:   %5lld tokens in %8.1f ms (%8.1f tok/s)\n", (long long)n, t_prompt * 1e3,
            n / (t_prompt > 0 ? t_prompt : 1e-9));
    /* the first generated token comes from the prompt's logits: the rate counts the
     * single-token forward passes that followed it, and their time only */
    fprintf(stderr, "generate: %5d tokens, %d forward passes in %8.1f ms (%8.1f tok/s, %.2f ms/token)%s\n", n_gen,
            n_eval, t_eval * 1e3, n_eval / (t_eval > 0 ? t_eval : 1e-9), n_eval ? t_eval * 1e3 / n_eval : 0.0,
            stop_reason == 1 ? ", stopped at end of text" : "");
    fprintf(stderr, "peak memory: %s (resident; weights are memory-mapped)\n", mem);
    rc = 0;
done:
    free(all);
    free(ids);
    free(rendered);
    free(piece);
    free(text);
    mf_sampler_free(smp);
    mf_session_free(s);
    mf_model_free(m);
    return rc;
}
