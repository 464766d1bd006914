#!/bin/sh
# fuzz.sh SECONDS [TARGET] — fuzz one entry point with libFuzzer. TARGET (default gguf):
#   gguf      the GGUF reader and the tokenizer loader (tests/fuzz/fuzz_gguf.c)
#   sampler   the sampler on any parameters and logits (tests/fuzz/fuzz_sampler.c)
#   chat      the chat formats and the harmony parser (tests/fuzz/fuzz_chat.c)
#   generate  the generation state machine: stop strings, UTF-8, harmony output, limits
#             (tests/fuzz/fuzz_generate.c)
#   serve     the server's request parser and reply text (tests/fuzz/fuzz_serve.c)
#
#   tools/fuzz.sh 600              # ten minutes of the GGUF reader on every core
#   FUZZ_JOBS=1 tools/fuzz.sh 60 chat  # one worker, one minute of the chat code
#
# 1. configures a separate clang build in build-fuzz/ (no CUDA, no BLAS) with the whole
#    library compiled with -fsanitize=fuzzer-no-link,address,undefined, so that coverage
#    guides the fuzzer through the code under test and every sanitizer is armed;
# 2. builds the fuzz_TARGET target;
# 3. runs it for SECONDS in libFuzzer's fork mode (FUZZ_JOBS workers, default: all cores),
#    which keeps going after a crash, seeded from the target's committed corpus
#    (tests/fuzz/corpus for gguf, tests/fuzz/corpus-TARGET otherwise); the growing corpus
#    lives in fuzz-out/TARGET/corpus and every crashing, leaking, hanging or memory-hungry
#    input is saved in fuzz-out/TARGET/ (crash-*, leak-*, timeout-*, oom-*);
# 4. prints the number of executions and of saved failures.
# A failure found here is fixed, then its input is copied into the committed corpus, where
# the fuzz_TARGET_replay test replays it in every build from then on.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: tools/fuzz.sh SECONDS [gguf|sampler|chat|generate|serve]" >&2
    exit 2
fi
secs=$1
target=${2:-gguf}
case $secs in
    '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
out=$root/fuzz-out/$target
jobs=${FUZZ_JOBS:-$(nproc)}
case $target in
    # the largest gguf seed that opens is tok-spm-stories.bin (11 KB, the 512-token stories
    # vocabulary): libFuzzer truncates longer inputs to -max_len, so it must fit; the
    # stories260K head (20000 bytes, a truncated file anyway) is used cut
    gguf) seeds=$root/tests/fuzz/corpus; max_len=${FUZZ_MAX_LEN:-16384} ;;
    # sampler: 29 bytes of parameters, up to 256 logits and some history; chat and generate:
    # texts and ids
    sampler | chat | generate) seeds=$root/tests/fuzz/corpus-$target; max_len=${FUZZ_MAX_LEN:-4096} ;;
    # serve: request bodies (the nested seed is 6 KB)
    serve) seeds=$root/tests/fuzz/corpus-serve; max_len=${FUZZ_MAX_LEN:-16384} ;;
    *) echo "fuzz.sh: unknown target '$target' (gguf, sampler, chat, generate or serve)" >&2; exit 2 ;;
esac

command -v clang > /dev/null || { echo "fuzz.sh: clang not found (apt-get install clang)" >&2; exit 1; }

mkdir -p "$build" "$out/corpus"
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMINFER_FUZZ=ON -DMINFER_CUDA=OFF -DMINFER_BLAS=OFF -DMINFER_SANITIZE=OFF \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    > "$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" --target "fuzz_$target" -j "$jobs" > "$build/build.log" 2>&1 ||
    { cat "$build/build.log" >&2; exit 1; }

log=$out/fuzz.log
echo "fuzz.sh: fuzzing $target for $secs s with $jobs worker(s), -max_len=$max_len; log in $log"
# -timeout: one input may take at most 10 s (a hang is a bug: every loop is bounded by the
# input size); -rss_limit_mb: the code under test allocates at most a small multiple of the
# input size. Fork mode exits non-zero when it saw crashes; the counts below say what happened.
set +e
(cd "$out" && "$build/fuzz_$target" "$out/corpus" "$seeds" \
    -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/" -print_final_stats=1) > "$log" 2>&1
rc=$?
set -e

# fork mode prints status lines "#EXECS: cov: ... corp: ... exec/s: ... time: ...s"
execs=$(grep -Eo '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
crashes=$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
corpus=$(find "$out/corpus" -type f | wc -l)
echo "fuzz.sh: executions: ${execs:-0}"
echo "fuzz.sh: corpus: $corpus inputs in fuzz-out/$target/corpus"
echo "fuzz.sh: crashes: $crashes (in fuzz-out/$target/; libFuzzer exit code $rc)"
if [ "$crashes" -gt 0 ]; then
    find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) -print
    exit 1
fi
