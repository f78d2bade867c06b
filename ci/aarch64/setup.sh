#!/usr/bin/env bash
# Set-up shared by ci/aarch64/run.sh and ci/aarch64/wheel.sh (sourced, from the repository root): the host tools,
# an arm64 Debian root with python3.11 and its headers ($ROOT) and aarch64 wheels of the runtime's dependencies
# ($SITE), cached under $CACHE.  Fails (set -e) on any error.
CACHE="${EDGEML_AARCH64_CACHE:-$HOME/.cache/edgeml/aarch64}"
SUITE=bookworm
MIRROR="${EDGEML_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HOST_PYTHON="${PYTHON:-python}"
mkdir -p "$CACHE"
start=$(date +%s)

# 1. host tools (installed only when missing)
need=()
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
command -v debootstrap >/dev/null || need+=(debootstrap)
# the cross compiler's own C library headers and start files: gcc-aarch64-linux-gnu only recommends them, and
# --no-install-recommends leaves them out (Python.h then stops at <bits/libc-header-start.h>)
test -f /usr/aarch64-linux-gnu/include/bits/libc-header-start.h || need+=(libc6-dev-arm64-cross)
if [ ${#need[@]} -gt 0 ]; then
    echo "aarch64: apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. an arm64 Debian root holding python3 and its headers: debootstrap's first stage downloads the packages, which
#    are then unpacked with dpkg-deb (no chroot, no second stage: only the files are needed)
ROOT="$CACHE/root-$SUITE"
if [ ! -f "$ROOT/.edgeml-ready" ]; then
    echo "aarch64: building the arm64 root in $ROOT"
    rm -rf "$ROOT"
    debootstrap --arch=arm64 --foreign --variant=minbase --include=python3,libpython3.11-dev \
        "$SUITE" "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log"; echo "aarch64: debootstrap failed" >&2; exit 1; }
    for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
    rm -f "$ROOT"/var/cache/apt/archives/*.deb
    test -x "$ROOT/usr/bin/python3.11" && test -f "$ROOT/usr/include/python3.11/Python.h" \
        || { echo "aarch64: the root has no python3.11 or no Python.h" >&2; exit 1; }
    touch "$ROOT/.edgeml-ready"
fi

# 3. aarch64 wheels, at the versions the host runs (so both sides parse and compare the same way).  Not LiteRT:
#    its aarch64 wheel (2.3.0) crashes under qemu-user (SIGSEGV on creating an Interpreter, either CPU model), so
#    the expected outputs come from the host's x86 run instead (ci/aarch64/conformance.py).
PINS=$("$HOST_PYTHON" - <<'PY'
from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in ("numpy", "flatbuffers", "tflite", "onnx", "protobuf", "pytest")))
PY
)
SITE="$CACHE/site-$(echo "$PINS" | sha1sum | cut -c1-12)"
if [ ! -f "$SITE/.edgeml-ready" ]; then
    echo "aarch64: fetching wheels: $PINS"
    rm -rf "$SITE"
    # pip takes each --platform literally: list every manylinux level bookworm's glibc (2.36) can run
    platforms=(--platform manylinux2014_aarch64)
    for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
    "$HOST_PYTHON" -m pip install -q --target "$SITE" "${platforms[@]}" --python-version 3.11 \
        --implementation cp --abi cp311 --only-binary=:all: $PINS
    touch "$SITE/.edgeml-ready"
fi
echo "aarch64: set-up took $(( $(date +%s) - start )) s"
