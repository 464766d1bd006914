#!/bin/sh
# fetch.sh NAME — download a model into weights/ and verify its SHA-256 (see README.md).
#
#   weights/fetch.sh list              the known models
#   weights/fetch.sh stories260K       1.2 MB, the tests' model
#   weights/fetch.sh tinyllama-q4_0    638 MB
#
# The download goes to weights/FILE.part and is resumed if interrupted (curl -C - or
# wget -c); the file becomes weights/FILE only when its size and SHA-256 match the values
# below. On a mismatch the partial file is renamed FILE.bad and the script exits 1: it never
# leaves an unverified file where minfer would pick it up.
# URLs are pinned to a repository commit, so the bytes behind them cannot change. A model may
# list several URLs (mirrors of the same bytes): they are tried in order until one answers.
#
# FETCH_URL="URL [URL...]" replaces the URLs of the model (another mirror, or a file:// URL
# for an offline test; the size and SHA-256 are checked all the same).
# Progress and results go to stdout, errors to stderr.
set -eu

usage() {
    echo "usage: weights/fetch.sh NAME | list" >&2
    echo "       weights/fetch.sh --unverified NAME   (only for a model without a known hash)" >&2
    exit 2
}

unverified=0
if [ "${1:-}" = "--unverified" ]; then
    unverified=1
    shift
fi
[ $# -eq 1 ] || usage
name=$1

# name | file | bytes | sha256 | urls, space-separated   (empty bytes/sha256: not known, see README.md)
models() {
    cat << 'EOF'
stories260K|stories260K.gguf|1185376|270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d|https://huggingface.co/ggml-org/models-moved/resolve/499bc8821c6b12b4e53c5bffcb21ec206f212d81/tinyllamas/stories260K.gguf https://huggingface.co/ggml-org/test-model-stories260K/resolve/479896ec924af6d40fd419ab8f4d1eb2101de00d/stories260K-f32.gguf
stories15M|stories15M.gguf|98357920|61b50d457809a5194818fd22e6724b456cd7bb9a6264c52c8110684c53f3704a|https://huggingface.co/ggml-org/tiny-llamas/resolve/99dd1a73db5a37100bd4ae633f4cfce6560e1567/stories15M.gguf
tinyllama-q4_0|tinyllama-1.1b-chat-v1.0.Q4_0.gguf|637699456|da3087fb14aede55fde6eb81a0e55e886810e43509ec82ecdc7aa5d62a03b556|https://huggingface.co/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/resolve/52e7645ba7c309695bec7ac98f4f005b139cf465/tinyllama-1.1b-chat-v1.0.Q4_0.gguf
tinyllama-q4_k_m|tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf|668788096|9fecc3b3cd76bba89d504f29b616eedf7da85b96540e490ca5824d3f7d2776a0|https://huggingface.co/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/resolve/52e7645ba7c309695bec7ac98f4f005b139cf465/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf
tinyllama-q8_0|tinyllama-1.1b-chat-v1.0.Q8_0.gguf|||https://huggingface.co/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/resolve/52e7645ba7c309695bec7ac98f4f005b139cf465/tinyllama-1.1b-chat-v1.0.Q8_0.gguf
EOF
}

if [ "$name" = "list" ]; then
    models | while IFS='|' read -r n f b s _; do
        printf '%-18s %-40s %12s bytes  %s\n' "$n" "$f" "${b:-?}" "${s:-(no known sha256)}"
    done
    exit 0
fi

line=$(models | grep "^$name|" || true)
[ -n "$line" ] || { echo "fetch.sh: unknown model '$name' (weights/fetch.sh list)" >&2; exit 2; }
file=$(echo "$line" | cut -d'|' -f2)
bytes=$(echo "$line" | cut -d'|' -f3)
sha=$(echo "$line" | cut -d'|' -f4)
urls=${FETCH_URL:-$(echo "$line" | cut -d'|' -f5)}

if [ -z "$sha" ] && [ "$unverified" -eq 0 ]; then
    echo "fetch.sh: no published SHA-256 is known for $name, so it cannot be verified." >&2
    echo "          Run 'weights/fetch.sh --unverified $name' to download it anyway; the hash" >&2
    echo "          of what arrives is printed so that you can compare it with the Hugging Face" >&2
    echo "          file page (\"SHA256\" under Git LFS details)." >&2
    exit 1
fi

dir=$(cd "$(dirname "$0")" && pwd)
out=$dir/$file
part=$out.part

sha256_of() {
    if command -v sha256sum > /dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum > /dev/null; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        echo "fetch.sh: neither sha256sum nor shasum is installed" >&2
        exit 1
    fi
}

size_of() { wc -c < "$1" | tr -d ' '; }

# accept $1 if its size and hash are right; otherwise set it aside as FILE.bad and fail
verify() {
    if [ -n "$bytes" ] && [ "$(size_of "$1")" != "$bytes" ]; then
        echo "fetch.sh: $file has $(size_of "$1") bytes, expected $bytes" >&2
        mv -f "$1" "$out.bad"
        echo "fetch.sh: refusing it (kept as $out.bad)" >&2
        exit 1
    fi
    got=$(sha256_of "$1")
    if [ -z "$sha" ]; then
        echo "fetch.sh: UNVERIFIED: sha256 of $file is $got (no published value to compare with)"
        return 0
    fi
    if [ "$got" != "$sha" ]; then
        echo "fetch.sh: SHA-256 mismatch for $file" >&2
        echo "  expected $sha" >&2
        echo "  got      $got" >&2
        mv -f "$1" "$out.bad"
        echo "fetch.sh: refusing it (kept as $out.bad)" >&2
        exit 1
    fi
    echo "fetch.sh: $file: sha256 $got verified"
}

if [ -f "$out" ]; then
    verify "$out"
    echo "fetch.sh: $out is already here"
    exit 0
fi

# a partial file that already has every byte needs no request (a range request past the end
# would fail); one that is too long cannot be resumed
if [ -f "$part" ] && [ -n "$bytes" ] && [ "$(size_of "$part")" -gt "$bytes" ]; then
    echo "fetch.sh: $part is longer than $bytes bytes: starting again" >&2
    rm -f "$part"
fi
download() {
    if command -v curl > /dev/null; then
        curl --fail --location --retry 5 --retry-delay 2 --continue-at - --output "$part" "$1"
    elif command -v wget > /dev/null; then
        wget --continue --tries=5 --output-document="$part" "$1"
    else
        echo "fetch.sh: neither curl nor wget is installed" >&2
        exit 1
    fi
}

if [ ! -f "$part" ] || [ -z "$bytes" ] || [ "$(size_of "$part")" != "$bytes" ]; then
    got=0
    for url in $urls; do
        echo "fetch.sh: downloading $name${bytes:+ ($bytes bytes)} from $url"
        if download "$url"; then
            got=1
            break
        fi
        echo "fetch.sh: $url failed" >&2
    done
    if [ "$got" -eq 0 ]; then
        echo "fetch.sh: could not download $name from any of: $urls" >&2
        exit 1
    fi
fi

verify "$part"
mv -f "$part" "$out"
echo "fetch.sh: saved $out"
