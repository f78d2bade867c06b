"""The reference models' outputs on one machine against those written on another (the aarch64 run's check).

--write FILE runs every model in tests/models (MLPerf Tiny .tflite and .onnx) on 20 seeded inputs and stores the
outputs; --check FILE runs the same inputs here and compares: integer outputs bit for bit, float32 within
rtol 1e-5 / atol 1e-6.
"""
from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))       # run as a script from anywhere: the edgeml of this checkout
import edgeml  # noqa: E402

MODELS = REPO / "tests" / "models"
N_INPUTS = 20


def model_paths() -> list[Path]:
    return sorted(MODELS.glob("mlperf_tiny/*.tflite")) + sorted(MODELS.glob("mlperf_tiny_onnx/*.onnx"))


def is_float(path: Path) -> bool:
    return "float" in path.stem or "fp32" in path.stem


def outputs(path: Path) -> np.ndarray:
    """All outputs of the model on its seeded inputs, stacked."""
    # float32 in the reference kernels' order on both machines (the default fused mode follows each CPU's FMA)
    interpreter = edgeml.Interpreter(path, float_exact=True)
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    results = []
    for _ in range(N_INPUTS):
        shape, dtype = tuple(detail["shape"]), np.dtype(detail["dtype"])
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)
        else:
            x = rng.standard_normal(shape).astype(dtype)
        interpreter.set_input(x)
        interpreter.invoke()
        results.append(interpreter.get_output().copy())
    return np.stack(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path)
    mode.add_argument("--check", type=Path)
    parser.add_argument("--int8-only", action="store_true", help="only the integer models (for a forced ISA path)")
    args = parser.parse_args()
    paths = [p for p in model_paths() if not (args.int8_only and is_float(p))]
    if not paths:
        print(f"no reference models in {MODELS}", file=sys.stderr)
        return 1
    if args.write:
        np.savez(args.write, **{f"{p.parent.name}/{p.name}": outputs(p) for p in paths})
        print(f"wrote the outputs of {len(paths)} models to {args.write}")
        return 0
    expected = np.load(args.check)
    bad = 0
    for p in paths:
        key = f"{p.parent.name}/{p.name}"
        got, want = outputs(p), expected[key]
        if got.dtype != want.dtype or got.shape != want.shape:
            ok = False
        elif want.dtype.kind in "iu":
            ok = np.array_equal(got, want)
        else:
            ok = np.allclose(got, want, rtol=1e-5, atol=1e-6)
        bad += not ok
        print(f"{key}: {'same' if ok else 'DIFFERENT'}", flush=True)
    print(f"{len(paths) - bad} models give the same outputs, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
