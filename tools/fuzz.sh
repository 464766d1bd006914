#!/bin/sh
# fuzz.sh SECONDS — fuzz the GGUF reader and the tokenizer loader with libFuzzer.
#
#   tools/fuzz.sh 600            # ten minutes on every core
#   FUZZ_JOBS=1 tools/fuzz.sh 60 # one worker
#
# 1. configures a separate clang build in build-fuzz/ (no CUDA, no BLAS) with the whole
#    library compiled with -fsanitize=fuzzer-no-link,address,undefined, so that coverage
#    guides the fuzzer through engine/gguf.c and the tokenizer and every sanitizer is armed;
# 2. builds the fuzz_gguf target (tests/fuzz/fuzz_gguf.c);
# 3. runs it for SECONDS in libFuzzer's fork mode (FUZZ_JOBS workers, default: all cores),
#    which keeps going after a crash, seeded from tests/fuzz/corpus; the growing corpus lives
#    in fuzz-out/corpus and every crashing, leaking, hanging or memory-hungry input is saved
#    in fuzz-out/ (crash-*, leak-*, timeout-*, oom-*);
# 4. prints the number of executions and of saved failures.
# A failure found here is fixed, then its input is copied into tests/fuzz/corpus/ where the
# fuzz_gguf_replay test replays it in every build from then on.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: tools/fuzz.sh SECONDS" >&2
    exit 2
fi
secs=$1
case $secs in
    '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
out=$root/fuzz-out
jobs=${FUZZ_JOBS:-$(nproc)}
# the largest seed that opens is tok-spm-stories.bin (11 KB, the 512-token stories vocabulary):
# libFuzzer truncates longer inputs to -max_len, so it must fit; the stories260K head (20000
# bytes, a truncated file anyway) is used cut
max_len=${FUZZ_MAX_LEN:-16384}

command -v clang > /dev/null || { echo "fuzz.sh: clang not found (apt-get install clang)" >&2; exit 1; }

mkdir -p "$build" "$out/corpus"
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMINFER_FUZZ=ON -DMINFER_CUDA=OFF -DMINFER_BLAS=OFF -DMINFER_SANITIZE=OFF \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    > "$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" --target fuzz_gguf -j "$jobs" > "$build/build.log" 2>&1 ||
    { cat "$build/build.log" >&2; exit 1; }

log=$out/fuzz.log
echo "fuzz.sh: fuzzing for $secs s with $jobs worker(s), -max_len=$max_len; log in $log"
# -timeout: one input may take at most 10 s (a hang is a bug: every loop is bounded by the
# input size); -rss_limit_mb: the reader allocates at most a small multiple of the input size.
# Fork mode exits non-zero when it saw crashes; the counts below say what happened.
set +e
(cd "$out" && "$build/fuzz_gguf" "$out/corpus" "$root/tests/fuzz/corpus" \
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
echo "fuzz.sh: corpus: $corpus inputs in fuzz-out/corpus"
echo "fuzz.sh: crashes: $crashes (in fuzz-out/; libFuzzer exit code $rc)"
if [ "$crashes" -gt 0 ]; then
    find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) -print
    exit 1
fi
