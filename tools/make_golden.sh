#!/bin/sh
# make_golden.sh — regenerate tests/golden/ from tools/reference.py (see tests/golden/README.md).
#
#   tools/make_golden.sh [BUILD_DIR]        (default: build; needs BUILD_DIR/mkmodel)
#
# For every case below: make or find the model, run `reference.py golden` (prompt logits,
# greedy continuation, margins, effect of 8-bit activations), and collect the results in
# tests/golden/manifest.json. Models come from $MINFER_MODELS (default ../shared/models)
# or from mkmodel with the exact arguments recorded in the manifest.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
MKMODEL=$BUILD/mkmodel
MODELS=${MINFER_MODELS:-$ROOT/../shared/models}
PY=/usr/bin/python3
OUT=$ROOT/tests/golden
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

[ -x "$MKMODEL" ] || { echo "make_golden.sh: $MKMODEL not found (build first)" >&2; exit 1; }
[ -f "$MODELS/stories260K.gguf" ] || { echo "make_golden.sh: $MODELS/stories260K.gguf not found" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.logits.bin
: > "$TMP/cases"

# golden NAME SOURCE ARGS N TOKENS
#   SOURCE "shared": ARGS is a file name in $MODELS; SOURCE "mkmodel": ARGS are mkmodel options
golden() {
    name=$1 source=$2 args=$3 n=$4 tokens=$5
    if [ "$source" = shared ]; then
        model=$MODELS/$args
    else
        model=$TMP/$name.gguf
        # shellcheck disable=SC2086  # the options are split on purpose
        "$MKMODEL" -o "$model" $args > /dev/null
    fi
    echo "  $name"
    "$PY" "$ROOT/tools/reference.py" golden "$model" --tokens "$tokens" -n "$n" \
        --logits "$OUT/$name.logits.bin" --json "$TMP/$name.json"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$source" "$args" "$tokens" "$model" >> "$TMP/cases"
}

echo "make_golden.sh: reference outputs into $OUT"

# stories260K (docs/reference.md §1): llama.cpp's test vector
golden stories-spec shared stories260K.gguf 100 \
    "1 403 407 261 378 432 383 286"
# stories260K, 75 tokens (more than 64): docs/tokenizer.md §7 vectors 12, 8 and 5 in a row
golden stories-long shared stories260K.gguf 100 \
    "1 403 407 261 378 432 383 286 261 376 298 315 421 395 317 263 415 414 401 396 267 337 410 408 419 292 411 322 265 262 379 419 415 271 411 426 346 306 414 432 263 304 341 443 410 489 422 406 450 488 313 456 425 309 266 436 410 464 464 344 264 426 278 271 411 353 411 13 421 271 411 259 424 414 13"
# stories260K, byte-fallback tokens (docs/tokenizer.md §7 vector 11: "I love 🦙 and 🚀!")
golden stories-bytes shared stories260K.gguf 100 \
    "1 359 401 360 410 243 162 169 156 269 410 243 162 157 131 443"
# synthetic llama, Q8_0 matrices; and Q4_0 matrices with a Q6_K output as real Q4_0 files have
# (ids: <s> "▁Once ▁upon ▁a ▁time , ▁there ▁was ▁a ▁little ▁girl ▁named ▁Lily . ▁She ▁loved
#  ▁to ▁play ▁with ▁her ▁dog ." in the synthetic vocabulary)
LLAMA_TOKENS="1 459 383 336 379 323 387 341 336 393 397 405 463 322 471 411 342 415 365 359 423 322"
golden llama-tiny-q8_0 mkmodel "--arch llama --preset tiny --type Q8_0 --seed 1" 100 "$LLAMA_TOKENS"
golden llama-tiny-q4_0 mkmodel "--arch llama --preset tiny --type Q4_0 --output-type Q6_K --seed 2" 100 "$LLAMA_TOKENS"
# synthetic gpt-oss: 24 tokens, 3 times the window of 8, so sliding and full layers differ
# (<|start|> user <|message|> "Once ▁upon ▁a ▁time , ▁there ▁was ▁a ▁little ▁girl ▁named ▁Lily .
#  ▁She ▁loved ▁the ▁sun ." <|end|> <|start|> assistant); real types, then all-F32
GPTOSS_TOKENS="574 542 576 529 306 259 302 11 310 264 259 316 320 328 386 13 394 334 258 351 13 575 574 550"
# Seed 15: the first seed from 3 on whose prompt has no router near-tie below 0.05 (seeds
# 3-14 all have one; there 8-bit activations swap an expert and move the logits by ~1)
golden gptoss-tiny mkmodel "--arch gpt-oss --preset tiny --seed 15" 64 "$GPTOSS_TOKENS"
golden gptoss-tiny-f32 mkmodel "--arch gpt-oss --preset tiny --type F32 --expert-type F32 --seed 15" 64 "$GPTOSS_TOKENS"

# the manifest: one object per case, one key per line, arrays on one line
"$PY" - "$TMP" "$OUT/manifest.json" <<'EOF'
import json, sys
tmp, out = sys.argv[1], sys.argv[2]

def fnv1a64(path):
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        for b in f.read():
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"

cases = []
for line in open(f"{tmp}/cases"):
    name, source, args, tokens, model = line.rstrip("\n").split("\t")
    r = json.load(open(f"{tmp}/{name}.json"))
    c = {"name": name}
    if source == "shared":
        c["model"] = args
    else:
        c["mkmodel"] = args
        c["model_fnv1a64"] = fnv1a64(model)
    c["tokens"] = [int(t) for t in tokens.split()]
    c["logits"] = f"{name}.logits.bin"
    # |engine - golden| per logit for an engine computing in float32 with float activations:
    # float32 against this float64 reference differs by ~1e-5 here; 2e-3 leaves a wide
    # margin yet catches a wrong formula (a wrong RoPE variant moves stories260K's logits
    # by ~10, docs/forward.md §1)
    c["atol"] = 2e-3
    # an engine may round activations to 8 bits before products with quantized weights
    # (minfer's fast CPU path, llama.cpp): that alone moves these logits by up to
    # act_q8_max_abs_diff (measured by the reference), whatever mix of exact and rounded
    # products the engine uses stays within about that; allow twice it
    c["atol_fast"] = float(f"{2e-3 + 2 * r.get('act_q8_max_abs_diff', 0.0):.3g}")
    c.update(r)
    cases.append(c)

with open(out, "w") as f:
    f.write("{\n\"cases\": [\n")
    for i, c in enumerate(cases):
        f.write("{\n")
        keys = list(c)
        for j, k in enumerate(keys):
            f.write(f"  {json.dumps(k)}: {json.dumps(c[k])}{',' if j + 1 < len(keys) else ''}\n")
        f.write("}" + ("," if i + 1 < len(cases) else "") + "\n")
    f.write("]\n}\n")
EOF
echo "make_golden.sh: wrote $OUT/manifest.json ($(ls "$OUT"/*.logits.bin | wc -l) logits files, $(du -sk "$OUT" | cut -f1) KB)"
