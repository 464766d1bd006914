#!/usr/bin/env bash
# deps.sh — install what minfer builds and tests with, from Debian packages, if missing.
# Sourced by tools/run.sh and tools/test.sh. Runs `apt-get update` once, only when something
# is missing, then `apt-get install -y` of the missing packages (sudo when not root).
# The CUDA toolkit is not a Debian package here: it is used when /usr/local/cuda/bin/nvcc
# exists (MINFER_CUDA=AUTO), and the CPU build works without it.
# python3-numpy: tools/reference.py and the tests that compare with it (test_perplexity, test_quantize)
mf_install_deps() {
    # libmicrohttpd-dev, libjansson-dev: `minfer serve` (HTTP and JSON; jansson also reads the
    # tool lists of harmony conversations); libedit-dev: line editing in `minfer chat`. Node.js
    # and npm, for the client tests only, are installed by tests/clients/run.sh when `node` is
    # missing.
    local want=(gcc g++ make cmake pkg-config libopenblas-dev libcmocka-dev libmicrohttpd-dev libjansson-dev libedit-dev python3-numpy "$@")
    local missing=()
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "minfer: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}

# mf_build DIR [cmake options...]: configure (Release unless overridden) and build; the
# build's progress goes to stdout (tools/run.sh sends it to stderr)
mf_build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}
