#!/usr/bin/env bash
# tests/tools/gpu_check.sh BUILD_DIR — the bookkeeping of tools/gpu_check.sh, which only a GPU
# machine runs for real, here with a stand-in nvidia-smi that names a GPU this machine lacks:
#   - the check stage runs to its end: a row for (a stand-in) stories260K and for each of the
#     15 tiny models (13 llama types, 2 gpt-oss), each FAIL since no CUDA device answers (the
#     first GPU run lost every row of this stage to an unset variable and still reported the
#     rest);
#   - a failing stage makes the exit status 1, never 0, and the table says FAIL;
#   - tools/ncu_sum.py sums ncu's raw CSV per kernel (units, thousands separators, parameter
#     lists and the program's own output lines) and refuses a log without launches.
# Needs /usr/bin/python3 (ncu_sum.py); skipped (77) without it.
. "$(dirname "$0")/setup.sh" gpu_check "${1:-}"

mkdir -p "$T/bin"
cat >"$T/bin/nvidia-smi" <<'NS'
#!/bin/sh
case "$*" in *compute_cap*) echo 9.0 ;; *) echo "GPU 0: Stand-in GPU (UUID: GPU-test)" ;; esac
NS
chmod +x "$T/bin/nvidia-smi"
# python3 on PATH for the script's own python steps: the one with Debian's packages
ln -s /usr/bin/python3 "$T/bin/python3"

# a stand-in stories260K (any model file: its check fails for want of a GPU anyway)
mkdir -p "$T/st"
"$B/mkmodel" -o "$T/st/stories260K.gguf" --preset tiny --seed 1 >/dev/null
rc=0
PATH="$T/bin:$PATH" BUILD="$B" OUT="$T/out" LOGS="$T/logs" MODELS="$T/models" MINFER_MODELS="$T/st" \
    bash "$SRC/tools/gpu_check.sh" --stages check >"$T/log" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$T/log"; fail "exit status $rc with every check failing, expected 1"; }
S="$T/out/steps.txt"
[ -s "$S" ] || fail "no steps.txt"
grep -q '^check-stage ' "$S" && { cat "$S"; fail "the check stage broke before its end"; }
grep -qE '^check-stories260K +FAIL ' "$S" || { cat "$S"; fail "no FAIL row for check-stories260K"; }
n=0
for ty in F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K; do
    grep -qE "^gen-tiny-llama-$ty +ok " "$S" || { cat "$S"; fail "tiny llama $ty was not generated"; }
    grep -qE "^check-tiny-llama-$ty +FAIL " "$S" || { cat "$S"; fail "no FAIL row for check-tiny-llama-$ty"; }
    n=$((n + 1))
done
for m in Q8_0 F32; do
    grep -qE "^check-tiny-gpt-oss-$m +FAIL " "$S" || { cat "$S"; fail "no FAIL row for check-tiny-gpt-oss-$m"; }
    n=$((n + 1))
done
[ $n = 15 ] || fail "counted $n tiny models"
grep -q "gpu_check: FAILED" "$T/log" || fail "the summary line does not say FAILED"

# ncu_sum.py
cat >"$T/ncu.log" <<'CSV'
==PROF== Connected to process 1 (minfer)
model: tiny
"ID","Kernel Name","Block Size","gpu__time_duration.sum"
"","","","usecond"
"0","void mf_kernels::(anonymous namespace)::gemv_kernel<2, 1>(mf_kernels::(anonymous namespace)::gemv_args)","(128, 1, 1)","5.5"
"1","rmsnorm_kernel(const float *, const float *, float, float *, int)","(256, 1, 1)","1,000.25"
"2","void mf_kernels::(anonymous namespace)::gemv_kernel<2, 1>(mf_kernels::(anonymous namespace)::gemv_args)","(128, 1, 1)","4.5"
CSV
/usr/bin/python3 "$SRC/tools/ncu_sum.py" "$T/ncu.log" "$T/p.txt" || fail "ncu_sum.py failed on a good log"
grep -q '^3 launches, 1.010 ms' "$T/p.txt" || { cat "$T/p.txt"; fail "ncu_sum: wrong totals"; }
sed -n 3p "$T/p.txt" | grep -qE '^ 99\.0% +1000\.2 +1 +1000\.25  rmsnorm_kernel$' || { cat "$T/p.txt"; fail "ncu_sum: wrong first row"; }
sed -n 4p "$T/p.txt" | grep -qE '^  1\.0% +10\.0 +2 +5\.00  mf_kernels::gemv_kernel<2, 1>$' || { cat "$T/p.txt"; fail "ncu_sum: wrong second row"; }
printf 'no csv here\n' >"$T/empty.log"
if /usr/bin/python3 "$SRC/tools/ncu_sum.py" "$T/empty.log" "$T/q.txt" 2>"$T/err"; then fail "ncu_sum accepted a log without launches"; fi
grep -q "no kernel launches" "$T/err" || fail "ncu_sum: unclear error: $(cat "$T/err")"
echo "gpu_check test: ok ($n tiny models checked, ncu_sum sums)"
