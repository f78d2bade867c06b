#!/usr/bin/env python
"""How far edgeml's float32 outputs move from the reference: every float .tflite given (or found in the test
corpus: the per-op conformance models cached by pytest, the MLPerf float / hybrid models, the Keras MobileNets of
bench_float.py) against LiteRT's reference kernels (BUILTIN_REF), every float .onnx against onnxruntime, on seeded
uniform inputs; prints each model's largest absolute and relative difference, whether it is bit-exact, and the worst
over all.  Two contracts are checked: the strict one, rtol 1e-5 / atol 1e-6 (|ours - ref| <= atol + rtol * |ref|),
and the default (fused multiply-add) mode's, whose absolute term scales with the output's size:
|ours - ref| <= 1e-5 * |ref| + 1e-6 * max(1, max |ref|) (an output element's rounding error follows the size of
the sums it came from, not its own: a sum that cancels to near 0 keeps the error of its large terms).  Each run starts
from the initial state on both sides (the reference is a fresh interpreter per run, so edgeml's variables, e.g. an
LSTM's state, are reset before each run).

    python benchmarks/float_agreement.py                       # the corpus, on the default ISA path
    EDGEML_ISA=avx2 python benchmarks/float_agreement.py       # the AVX2 path
    python benchmarks/float_agreement.py a.tflite b.onnx       # given files
    python benchmarks/float_agreement.py --exact               # Interpreter(float_exact=True): reference order
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "models"
RTOL, ATOL = 1e-5, 1e-6
SCALED_ATOL = 1e-6             # the default mode's absolute term, times max(1, max |ref|)


def corpus() -> list:
    files = sorted((ROOT / ".pytest_cache" / "d").glob("edgeml_*/*.tflite"))
    files += [SHARED / "mlperf_tiny" / f"{m}.tflite" for m in ("ad01_fp32", "kws_ref_model_float32",
                                                                "vww_96_float")]
    cache = Path.home() / ".cache" / "edgeml-bench-float"
    files += sorted(cache.glob("*.tflite")) + sorted(cache.glob("*.onnx"))
    files += sorted((SHARED / "public" / "onnx").glob("*.onnx"))
    return [f for f in files if f.is_file()]


def inputs_for(details, rng) -> list:
    xs = []
    for d in details:
        shape = tuple(int(v) if v and v > 0 else 1 for v in d["shape"])
        if np.dtype(d["dtype"]) != np.float32:
            return []
        xs.append(rng.uniform(-1.0, 1.0, size=shape).astype(np.float32))
    return xs


def reference_tflite(path: Path, xs: list) -> list:
    from ai_edge_litert import interpreter as lit
    it = lit.Interpreter(model_path=str(path), num_threads=1,
                         experimental_op_resolver_type=lit.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def reference_onnx(path: Path, xs: list) -> list:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})


def compare(path: Path, runs: int, exact: bool) -> dict:
    import edgeml
    it = edgeml.Interpreter(str(path), float_exact=exact)
    rng = np.random.default_rng(0)
    worst = dict(abs=0.0, rel=0.0, scaled=0.0, exact=True, within=True, float_out=False)
    for _ in range(runs):
        xs = inputs_for(it.get_input_details(), rng)
        if not xs:
            return {}
        it.reset_variables()
        for k, x in enumerate(xs):
            it.set_input(x, k)
        it.invoke()
        ours = [it.get_output(k) for k in range(len(it.get_output_details()))]
        refs = reference_onnx(path, xs) if path.suffix == ".onnx" else reference_tflite(path, xs)
        for a, b in zip(ours, refs):
            b = np.asarray(b).reshape(np.shape(a))
            if a.dtype != np.float32:
                continue
            worst["float_out"] = True
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            finite = np.isfinite(a64) & np.isfinite(b64)
            worst["exact"] &= bool(np.array_equal(a, b, equal_nan=True))
            worst["within"] &= bool(np.allclose(a64, b64, rtol=RTOL, atol=ATOL, equal_nan=True))
            if finite.any():
                diff = np.abs(a64 - b64)[finite]
                ref = np.abs(b64)[finite]
                worst["abs"] = max(worst["abs"], float(diff.max()))
                scale = max(1.0, float(ref.max()))
                worst["scaled"] = max(worst["scaled"], float((diff - RTOL * ref).max()) / scale)
                big = ref > ATOL            # relative error where it means something
                if big.any():
                    worst["rel"] = max(worst["rel"], float((diff[big] / ref[big]).max()))
    return worst if worst["float_out"] else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--runs", type=int, default=5, help="seeded inputs per model")
    ap.add_argument("--exact", action="store_true", help="edgeml with float_exact=True")
    args = ap.parse_args()
    from edgeml.runtime.kernels import ISA
    files = [Path(f) for f in args.files] or corpus()
    rows, skipped = [], []
    for f in files:
        try:
            r = compare(f, args.runs, args.exact)
        except Exception as exc:       # a model edgeml or the reference cannot run: listed, not fatal
            skipped.append((f.name, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"))
            continue
        if r:
            rows.append((f.name, r))
    print(f"edgeml ISA path {ISA} (EDGEML_ISA={os.environ.get('EDGEML_ISA', 'unset')}), "
          f"{'float_exact' if args.exact else 'default (fused multiply-add)'} mode; {len(rows)} float models, "
          f"{args.runs} seeded inputs each; contract rtol {RTOL:g} / atol {ATOL:g}\n")
    print("| model | max abs | max rel (|ref| > atol) | max (abs - rtol |ref|) / max(1, max |ref|) | bit-exact | "
          "within rtol 1e-5 / atol 1e-6 | within the scaled atol 1e-6 |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['abs']:.3g} | {r['rel']:.3g} | {r['scaled']:.3g} | {r['exact']} | {r['within']} | "
              f"{r['scaled'] <= SCALED_ATOL} |")
    for name, why in skipped:
        print(f"| {name} | not run: {why} | | | | | |")
    if rows:
        print(f"\nworst: max abs {max(r['abs'] for _, r in rows):.3g}, max rel {max(r['rel'] for _, r in rows):.3g}; "
              f"bit-exact {sum(r['exact'] for _, r in rows)} / {len(rows)}; within rtol 1e-5 / atol 1e-6 "
              f"{sum(r['within'] for _, r in rows)} / {len(rows)}; within the scaled atol "
              f"{sum(r['scaled'] <= SCALED_ATOL for _, r in rows)} / {len(rows)} (worst "
              f"{max(r['scaled'] for _, r in rows):.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
