/* cmd_chat.c — `minfer chat`: a conversation with a model, one message a line.
 *
 * Each turn renders the whole conversation in the model's chat format
 * (mf_chat_render_conv) and hands it to mf_generate on the same session, which keeps what
 * the cache already holds of it: turn N evaluates only what is new since turn N-1
 * (docs/generate.md §5). The answer streams to stdout, statistics and notes go to stderr.
 *
 * On a terminal the line is edited with libedit when the build has it (plain lines
 * otherwise); from a pipe each line is one message, so a conversation can be scripted.
 * Lines starting with '/' are commands: /reset, /system TEXT, /exit. Ctrl-C stops the
 * answer being written (the program goes on; twice in a row at the prompt ends it).
 * A harmony model given --tools can answer with a call: it is printed as
 * "[call NAME ARGUMENTS]", and the next line is the tool's result.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"

#ifdef MF_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: minfer chat [-m MODEL] [options]\n" DRV_GEN_USAGE
               "      --tools FILE        function tools, an OpenAI \"tools\" JSON array (harmony models)\n"
               "      --context-shift     when the conversation outgrows the context, drop its oldest turns\n"
               "                          (the system prompt stays; the rest is evaluated again)\n"
               "commands: /reset (forget the conversation), /system TEXT (a new system prompt; /system alone\n"
               "removes it), /exit (or end of input). Ctrl-C stops the answer being written.\n");
}

typedef struct chat_args {
    drv_gen_args g;
    const char *tools_file;
    int context_shift;
} chat_args;

static int parse(int argc, char **argv, chat_args *a)
{
    memset(a, 0, sizeof *a);
    const char *C = "chat";
    if (drv_gen_args_init(C, &a->g, argc)) return -1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int shared = drv_gen_option(C, argc, argv, &i, &a->g);
        if (shared < 0) return -1;
        if (shared) continue;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            drv_gen_args_free(&a->g);
            exit(0);
        } else if (!strcmp(o, "--tools")) {
            if (!(a->tools_file = drv_next(C, argc, argv, &i))) return -1;
        } else if (!strcmp(o, "--context-shift")) a->context_shift = 1;
        else {
            fprintf(stderr, "minfer chat: unknown option '%s' (see minfer chat --help)\n", o);
            return -1;
        }
    }
    return drv_gen_args_finish(C, &a->g);
}

/* ---------------------------------------------------------------- the conversation */

/* The messages, owning their texts; msgs[] are the views the library renders. */
typedef struct conv {
    mf_chat_msg *msgs;
    int n, cap;
} conv;

static void msg_free(mf_chat_msg *m)
{
    free((char *)m->content);
    free((char *)m->reasoning);
    free((char *)m->tool_call_id);
    free((char *)m->name);
    for (int k = 0; k < m->n_tool_calls; k++) {
        mf_tool_call *c = (mf_tool_call *)&m->tool_calls[k];
        free(c->id);
        free(c->name);
        free(c->arguments);
    }
    free((void *)m->tool_calls);
}

static void conv_truncate(conv *c, int n)
{
    while (c->n > n) msg_free(&c->msgs[--c->n]);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Appends a copy of m (its texts and calls duplicated); -1 out of memory. */
static int conv_add(conv *c, const mf_chat_msg *m)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        mf_chat_msg *p = realloc(c->msgs, sizeof *p * (size_t)cap);
        if (!p) return -1;
        c->msgs = p;
        c->cap = cap;
    }
    mf_chat_msg *d = &c->msgs[c->n];
    *d = (mf_chat_msg){.role = m->role,
                       .content = dup_or_null(m->content),
                       .reasoning = dup_or_null(m->reasoning),
                       .tool_call_id = dup_or_null(m->tool_call_id),
                       .name = dup_or_null(m->name)};
    int ok = (!m->content || d->content) && (!m->reasoning || d->reasoning) && (!m->tool_call_id || d->tool_call_id) &&
             (!m->name || d->name);
    if (ok && m->n_tool_calls > 0) {
        mf_tool_call *calls = calloc((size_t)m->n_tool_calls, sizeof *calls);
        d->tool_calls = calls;
        ok = calls != NULL;
        for (int k = 0; ok && k < m->n_tool_calls; k++) {
            calls[k] = (mf_tool_call){dup_or_null(m->tool_calls[k].id), dup_or_null(m->tool_calls[k].name),
                                      dup_or_null(m->tool_calls[k].arguments)};
            d->n_tool_calls = k + 1;
            ok = calls[k].id && calls[k].name && calls[k].arguments;
        }
    }
    if (!ok) {
        msg_free(d);
        return -1;
    }
    c->n++;
    return 0;
}

/* Keeps the messages keep[0..k) (ascending indices), in order. */
static void conv_keep(conv *c, const int *keep, int k)
{
    int w = 0;
    for (int i = 0, j = 0; i < c->n; i++) {
        if (j < k && keep[j] == i) {
            c->msgs[w++] = c->msgs[i];
            j++;
        } else {
            msg_free(&c->msgs[i]);
        }
    }
    c->n = w;
}

/* ---------------------------------------------------------------- input */

static int interactive;

#ifdef MF_HAVE_LIBEDIT
/* libedit reads through this: a Ctrl-C (our handler sets the flag; the read is interrupted)
 * ends the line being edited like an end of input, and read_line tells the two apart */
static const volatile sig_atomic_t *edit_stop;

static int edit_getc(FILE *f)
{
    for (;;) {
        unsigned char c;
        ssize_t k = read(fileno(f), &c, 1);
        if (k == 1) return c;
        if (k < 0 && errno == EINTR && !*edit_stop) continue;
        return EOF;
    }
}
#endif

/* The next line without its end of line (malloc'd), NULL at the end of input; *interrupted
 * is 1 when Ctrl-C came instead of a line, -1 for a line refused with a message. */
static char *read_line(const char *prompt, const volatile sig_atomic_t *stop, int *interrupted)
{
    *interrupted = 0;
#ifdef MF_HAVE_LIBEDIT
    if (interactive) {
        edit_stop = stop;
        rl_catch_signals = 0; /* the driver's handler, not libedit's */
        rl_getc_function = edit_getc;
        char *line = readline(prompt);
        if (!line && *stop) *interrupted = 1;
        if (line && *line) add_history(line);
        return line;
    }
#endif
    if (interactive) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
    char *line = NULL;
    size_t cap = 0;
    errno = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        if (errno == EINTR && *stop) {
            clearerr(stdin);
            *interrupted = 1;
        }
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (memchr(line, 0, (size_t)n)) {
        /* the text would end at the NUL: refuse the line rather than send part of it */
        fprintf(stderr, "minfer chat: the line holds a NUL byte, which is not text (not sent)\n");
        line[0] = 0;
        *interrupted = -1;
    }
    return line;
}

/* ---------------------------------------------------------------- one answer */

typedef struct answer_out {
    const volatile sig_atomic_t *stop;
    int show_thinking, at_line_start;
} answer_out;

static int on_delta(void *user, const mf_delta *d)
{
    answer_out *o = user;
    if (d->kind == MF_DELTA_CONTENT && d->len) {
        fwrite(d->text, 1, d->len, stdout);
        fflush(stdout);
        o->at_line_start = d->text[d->len - 1] == '\n';
    } else if (d->kind == MF_DELTA_REASONING && o->show_thinking) {
        fwrite(d->text, 1, d->len, stderr);
    }
    return *o->stop != 0;
}

/* Renders the conversation and tokenizes it into *ids (malloc'd); its count, or -1 with a
 * message. */
static int64_t prompt_of(const mf_model *m, int fmt, const conv *c, const mf_chat_opts *co, int32_t **ids, mf_err *err)
{
    char *text = mf_chat_render_conv(fmt, c->msgs, c->n, co, 1, err);
    if (!text) return -1;
    int64_t n = mf_chat_tokenize(m->tok, fmt, text, NULL, 0, err);
    if (n >= 0) {
        *ids = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
        if (!*ids) n = mf_errf(err, "out of memory");
        else mf_chat_tokenize(m->tok, fmt, text, *ids, n, err);
    }
    free(text);
    return n;
}

/* ---------------------------------------------------------------- the loop */

typedef struct chat {
    chat_args *a;
    mf_model *m;
    mf_session *s;
    int fmt, n_ctx;
    char *tools;  /* the --tools file's text */
    char *system; /* the system prompt (--system, /system) */
    conv c;
    int pending; /* tool calls of the last answer still waiting for their results */
    const volatile sig_atomic_t *stop;
} chat;

static mf_chat_opts chat_opts(const chat *ch, char *date)
{
    return (mf_chat_opts){.system = ch->system, .reasoning = ch->a->g.reasoning, .date = date, .tools_json = ch->tools};
}

/* The conversation's prompt, shifted when it does not leave room for an answer and
 * --context-shift allows; -1 with a message (the caller drops the new message). */
static int64_t fit_prompt(chat *ch, int32_t **ids)
{
    char date[16];
    drv_today(date, sizeof date);
    mf_chat_opts co = chat_opts(ch, date);
    mf_err err;
    int64_t n = prompt_of(ch->m, ch->fmt, &ch->c, &co, ids, &err);
    if (n < 0) {
        fprintf(stderr, "minfer chat: %s\n", err.msg);
        return -1;
    }
    /* room for the answer: -n tokens, at most half the context; a quarter without -n */
    int room = ch->a->g.n_predict >= 0 ? ch->a->g.n_predict : ch->n_ctx / 4;
    if (room > ch->n_ctx / 2) room = ch->n_ctx / 2;
    if (n <= ch->n_ctx - (ch->a->context_shift ? room : 0)) return n;
    if (!ch->a->context_shift) {
        fprintf(stderr,
                "minfer chat: the conversation has %lld tokens but the context holds %d: /reset, or start with "
                "--context-shift (or a larger -c)\n",
                (long long)n, ch->n_ctx);
        free(*ids);
        return -1;
    }
    free(*ids);
    int *keep = malloc(sizeof *keep * (size_t)ch->c.n);
    int k = keep ? mf_chat_fit(ch->m->tok, ch->fmt, ch->c.msgs, ch->c.n, &co, ch->n_ctx - room, keep, &err)
                 : mf_errf(&err, "out of memory");
    if (k < 0) {
        fprintf(stderr, "minfer chat: %s\n", err.msg);
        free(keep);
        return -1;
    }
    fprintf(stderr, "minfer chat: context shift: the %d oldest messages dropped; the rest is evaluated again\n",
            ch->c.n - k);
    conv_keep(&ch->c, keep, k);
    free(keep);
    n = prompt_of(ch->m, ch->fmt, &ch->c, &co, ids, &err);
    if (n < 0) fprintf(stderr, "minfer chat: %s\n", err.msg);
    return n;
}

/* One answer to the conversation as it stands; the answer joins it. 0, or -1 when the
 * turn failed (the caller drops the message that started it). */
static int answer(chat *ch)
{
    int32_t *ids = NULL;
    int64_t n = fit_prompt(ch, &ids);
    if (n < 0) return -1;
    mf_gen_params gp = mf_gen_defaults();
    gp.sampler = ch->a->g.sp;
    gp.max_tokens = ch->a->g.n_predict;
    gp.stop = ch->a->g.stop;
    gp.n_stop = ch->a->g.n_stop;
    gp.format = ch->fmt;
    answer_out out = {.stop = ch->stop, .show_thinking = ch->a->g.show_thinking, .at_line_start = 1};
    mf_gen_result r;
    mf_err err;
    drv_interrupt_clear();
    int rc = mf_generate(ch->s, ids, (int)n, &gp, on_delta, &out, &r, &err);
    drv_interrupt_clear();
    free(ids);
    if (rc) {
        fprintf(stderr, "minfer chat: %s\n", err.msg);
        return -1;
    }
    if (r.content[0] ? !out.at_line_start : !r.n_calls) putchar('\n');
    for (int k = 0; k < r.n_calls; k++) printf("[call %s %s]\n", r.calls[k].name, r.calls[k].arguments);
    fflush(stdout);
    if (out.show_thinking && r.reasoning) fputc('\n', stderr);
    if (r.finish == MF_FINISH_ERROR) {
        fprintf(stderr, "minfer chat: %s\n", r.error);
        mf_gen_result_free(&r);
        return -1;
    }
    double tg = r.t_gen_s > 0 ? r.t_gen_s : 1e-9;
    fprintf(stderr,
            "minfer chat: prompt %d tokens (%d cached, %d evaluated) in %.1f ms; answer %d tokens in %.1f ms "
            "(%.1f tok/s); %s\n",
            r.n_prompt, r.n_cached, r.n_prompt - r.n_cached, r.t_prompt_s * 1e3, r.n_generated, r.t_gen_s * 1e3,
            r.n_decode / tg, mf_finish_name(r.finish));
    if (r.finish == MF_FINISH_CONTEXT)
        fprintf(stderr, "minfer chat: the answer stopped at the end of the context (%d tokens)%s\n", ch->n_ctx,
                ch->a->context_shift ? "" : "; /reset, or start with --context-shift");
    if (r.finish == MF_FINISH_CANCELLED) fprintf(stderr, "minfer chat: stopped (Ctrl-C)\n");
    /* the answer as the conversation keeps it: what was shown */
    mf_chat_msg am = {.role = MF_ROLE_ASSISTANT,
                      .content = r.n_calls && !r.content[0] ? NULL : r.content,
                      .reasoning = r.reasoning,
                      .tool_calls = r.calls,
                      .n_tool_calls = r.n_calls};
    rc = conv_add(&ch->c, &am);
    if (rc) fprintf(stderr, "minfer chat: out of memory\n");
    else ch->pending = r.finish == MF_FINISH_TOOL_CALLS ? r.n_calls : 0;
    mf_gen_result_free(&r);
    return rc;
}

/* A command line ("/..."): 1 to go on, 0 to end. */
static int command(chat *ch, const char *line)
{
    if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) return 0;
    if (!strcmp(line, "/reset")) {
        conv_truncate(&ch->c, 0);
        ch->pending = 0;
        fprintf(stderr, "minfer chat: the conversation is forgotten\n");
    } else if (!strncmp(line, "/system", 7) && (line[7] == 0 || line[7] == ' ')) {
        const char *t = line[7] ? line + 8 : "";
        char *sys = t[0] ? strdup(t) : NULL;
        if (t[0] && !sys) {
            fprintf(stderr, "minfer chat: out of memory\n");
            return 1;
        }
        free(ch->system);
        ch->system = sys;
        fprintf(stderr, "minfer chat: %s\n", sys ? "new system prompt" : "no system prompt");
    } else {
        fprintf(stderr, "minfer chat: unknown command '%.40s' (/reset, /system TEXT, /exit)\n", line);
    }
    return 1;
}

/* The tool call whose result the next line is: the first of the last answer's calls still
 * waiting. */
static const mf_tool_call *waiting_call(const chat *ch)
{
    const mf_chat_msg *last = NULL;
    for (int i = ch->c.n - 1; i >= 0 && !last; i--)
        if (ch->c.msgs[i].role == MF_ROLE_ASSISTANT) last = &ch->c.msgs[i];
    return last ? &last->tool_calls[last->n_tool_calls - ch->pending] : NULL;
}

static void run_loop(chat *ch)
{
    int interrupts = 0;
    for (;;) {
        const mf_tool_call *call = ch->pending ? waiting_call(ch) : NULL;
        char prompt[96];
        if (call) snprintf(prompt, sizeof prompt, "result of %.64s> ", call->name);
        else snprintf(prompt, sizeof prompt, "> ");
        int intr;
        char *line = read_line(prompt, ch->stop, &intr);
        if (intr < 0) {
            free(line);
            continue;
        }
        if (intr) {
            /* Ctrl-C at the prompt: a second one in a row ends the program (driver.c) */
            if (interactive) fputs("\n(Ctrl-C again, /exit or Ctrl-D to quit)\n", stdout);
            interrupts++;
            continue;
        }
        if (!line) break;
        if (interrupts) drv_interrupt_clear();
        interrupts = 0;
        if (line[0] == '/' && !call) {
            int go = command(ch, line);
            free(line);
            if (!go) break;
            continue;
        }
        if (!line[0]) {
            fprintf(stderr, "minfer chat: empty message (type some text, or /exit)\n");
            free(line);
            continue;
        }
        int before = ch->c.n;
        mf_chat_msg um = {.role = call ? MF_ROLE_TOOL : MF_ROLE_USER, .content = line};
        if (call) {
            um.tool_call_id = call->id;
            um.name = call->name;
        }
        int pending = ch->pending;
        if (conv_add(&ch->c, &um)) fprintf(stderr, "minfer chat: out of memory\n");
        else if (call && --ch->pending > 0) {
            /* more results to give before the model goes on */
        } else if (answer(ch)) {
            /* the turn failed: the conversation is as it was before the line */
            conv_truncate(&ch->c, before);
            ch->pending = pending;
        }
        free(line);
    }
}

int mf_cmd_chat(int argc, char **argv)
{
    chat_args a;
    chat ch = {.a = &a};
    int rc = 1;
    if (parse(argc, argv, &a)) {
        drv_gen_args_free(&a.g);
        return 2;
    }
    const char *path = a.g.model ? a.g.model : drv_default_model();
    if (!path) goto done;
    if (a.tools_file) {
        size_t len;
        if (!(ch.tools = drv_read_file("chat", a.tools_file, &len))) goto done;
        mf_err err;
        if (memchr(ch.tools, 0, len)) {
            fprintf(stderr, "minfer chat: %s: a NUL byte is not JSON\n", a.tools_file);
            goto done;
        }
        if (mf_chat_tools_check(ch.tools, &err)) {
            fprintf(stderr, "minfer chat: %s: %s\n", a.tools_file, err.msg);
            goto done;
        }
    }
    if (a.g.system && !(ch.system = strdup(a.g.system))) goto done;
    mf_err err;
    if (!(ch.m = mf_model_load(path, &err))) {
        fprintf(stderr, "minfer chat: %s\n", err.msg);
        goto done;
    }
    ch.fmt = a.g.chat_format ? mf_chat_format_from_name(a.g.chat_format) : drv_chat_format(ch.m);
    if (ch.tools && ch.fmt != MF_CHAT_HARMONY) {
        fprintf(stderr, "minfer chat: --tools needs a harmony model (gpt-oss); this one's chat format is %s\n",
                mf_chat_format_name(ch.fmt));
        goto done;
    }
    mf_gen_params gp = mf_gen_defaults();
    gp.stop = a.g.stop;
    gp.n_stop = a.g.n_stop;
    gp.format = ch.fmt;
    mf_session_opts so = drv_gen_session_opts(&a.g);
    drv_progress_on_terminal(&so, ch.m);
    if (!(ch.s = mf_session_new(ch.m, &so, &err))) {
        fprintf(stderr, "minfer chat: %s\n", err.msg);
        goto done;
    }
    ch.n_ctx = mf_session_n_ctx(ch.s);
    if (mf_gen_check(ch.m, &gp, ch.n_ctx, &err)) {
        fprintf(stderr, "minfer chat: %s\n", err.msg);
        goto done;
    }
    if (mf_session_note(ch.s)) fprintf(stderr, "minfer: %s\n", mf_session_note(ch.s));
    const mf_backend *be = mf_session_backend(ch.s);
    fprintf(stderr, "minfer chat: %s on %s, chat format %s, context %d, seed %llu%s\n", path, be->name,
            mf_chat_format_name(ch.fmt), ch.n_ctx, (unsigned long long)a.g.sp.seed,
            ch.fmt == MF_CHAT_NONE ? " (no template: the conversation is one running text)" : "");
    interactive = isatty(0);
    ch.stop = drv_interrupt_flag();
    /* only Ctrl-C stops an answer; a termination request ends the program as usual */
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    run_loop(&ch);
    rc = 0;
done:
    conv_truncate(&ch.c, 0);
    free(ch.c.msgs);
    free(ch.tools);
    free(ch.system);
    mf_session_free(ch.s);
    mf_model_free(ch.m);
    drv_gen_args_free(&a.g);
    return rc;
}
