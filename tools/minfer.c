/* minfer.c — the command-line driver: parses the subcommand and hands over to its file.
 *
 *   minfer run      -m MODEL -p PROMPT ...   generate text (tools/cmd_run.c)
 *   minfer chat     -m MODEL ...             a conversation, one message a line (tools/cmd_chat.c)
 *   minfer tokenize -m MODEL -p TEXT         token ids (tools/cmd_tokenize.c)
 *   minfer inspect  MODEL [--json]           what is in a GGUF file (tools/cmd_inspect.c)
 *   minfer bench    -m MODEL ...             speed and % of the bandwidth roofline
 *   minfer check    -m MODEL ...             CPU vs GPU, layer by layer
 *   minfer plan     -m MODEL ...             will it fit, how fast at best
 *   minfer quantize IN OUT TYPE              a quantized copy of a model (cmd_quantize.c)
 *   minfer imatrix  -m MODEL -f TEXT -o FILE importance statistics for quantize
 *   minfer prune    IN OUT --drop-layers L   a copy without some layers
 *   minfer perplexity -m MODEL -f TEXT       perplexity; KL divergence against a base
 *   minfer serve    -m MODEL ...             OpenAI-compatible HTTP server (tools/cmd_serve.c)
 *   minfer default-model                     the model used when -m is not given
 *   minfer --version                         build options and the CUDA devices seen
 */
#include <stdio.h>
#include <string.h>

#include "driver.h"
#include "quant.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: minfer COMMAND [options]\n"
               "commands:\n"
               "  run       generate text from a prompt      (minfer run -m MODEL -p PROMPT)\n"
               "  chat      a conversation, one message a line (minfer chat -m MODEL [--system TEXT])\n"
               "  tokenize  print the token ids of a text    (minfer tokenize -m MODEL -p TEXT)\n"
               "  inspect   describe a GGUF file             (minfer inspect MODEL [--json])\n"
               "  bench     measure prompt/generation speed  (minfer bench -m MODEL)\n"
               "  check     compare CPU and GPU layer by layer (minfer check -m MODEL)\n"
               "  plan      memory and speed bounds per device (minfer plan -m MODEL)\n"
               "  quantize  write a quantized copy of a model (minfer quantize IN OUT TYPE)\n"
               "  imatrix   activation statistics for quantize (minfer imatrix -m MODEL -f TEXT -o FILE)\n"
               "  prune     write a copy without some layers (minfer prune IN OUT --drop-layers 3,7)\n"
               "  perplexity score a text; KL divergence vs a base (minfer perplexity -m MODEL -f TEXT)\n"
               "  serve     OpenAI-compatible HTTP server    (minfer serve -m MODEL [--port 8080])\n"
               "  default-model  print the model used when -m is not given (exit 1 if none)\n"
               "  --version build options and CUDA devices\n"
               "Run 'minfer COMMAND --help' for the options of a command.\n");
}

static int version(void)
{
    printf("minfer %s (simd: %s, blas: %s, cuda: %s)\n", MF_VERSION, mf_quant_kernels(),
#ifdef MF_HAVE_BLAS
           "openblas",
#else
           "off",
#endif
#ifdef MF_HAVE_CUDA
           "built"
#else
           "not built"
#endif
    );
    char names[16][128], why[256] = "";
    int n = mf_cuda_devices(names, 16, why, sizeof why);
    if (n <= 0) printf("no CUDA device%s%s\n", why[0] ? ": " : "", why);
    for (int i = 0; i < n; i++) printf("CUDA device %d: %s\n", i, names[i]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "--version") || !strcmp(c, "version")) return version();
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(c, "run")) return mf_cmd_run(argc - 1, argv + 1);
    if (!strcmp(c, "chat")) return mf_cmd_chat(argc - 1, argv + 1);
    if (!strcmp(c, "tokenize")) return mf_cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(c, "inspect")) return mf_cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(c, "bench")) return mf_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(c, "check")) return mf_cmd_check(argc - 1, argv + 1);
    if (!strcmp(c, "plan")) return mf_cmd_plan(argc - 1, argv + 1);
    if (!strcmp(c, "quantize")) return mf_cmd_quantize(argc - 1, argv + 1);
    if (!strcmp(c, "imatrix")) return mf_cmd_imatrix(argc - 1, argv + 1);
    if (!strcmp(c, "prune")) return mf_cmd_prune(argc - 1, argv + 1);
    if (!strcmp(c, "perplexity")) return mf_cmd_perplexity(argc - 1, argv + 1);
    if (!strcmp(c, "serve")) return mf_cmd_serve(argc - 1, argv + 1);
    if (!strcmp(c, "default-model")) {
        const char *m = drv_default_model(); /* NULL: it said why and how to get one */
        if (!m) return 1;
        printf("%s\n", m);
        return 0;
    }
    fprintf(stderr, "minfer: unknown command '%s'\n", c);
    usage(stderr);
    return 2;
}
