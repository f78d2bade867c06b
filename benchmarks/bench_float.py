#!/usr/bin/env python
"""edgeml's float32 and hybrid kernels against LiteRT + XNNPACK (.tflite) and onnxruntime (.onnx): batch 1, one
thread, one process, the two runtimes alternating run by run; medians and their ratio.

Models: the float and hybrid MLPerf Tiny .tflite files in ../shared/models, float MobileNetV1 / MobileNetV2 at 224
built here from Keras applications' architectures with random weights (converted once, cached), and the float .onnx
files in ../shared/models/public/onnx plus the kws model converted by tf2onnx.  Each output is also compared once
with LiteRT's reference kernels (BUILTIN_REF) or onnxruntime: "bit-exact" or the largest difference.  The largest
convs' speed is given in GFLOP/s (2 x MACs / time) next to this core's float peak.

    python benchmarks/bench_float.py                    # everything, markdown to stdout
    EDGEML_ISA=avx2 python benchmarks/bench_float.py    # edgeml's AVX2 path (the peers keep theirs)
    python benchmarks/bench_float.py --only vww_96_float,mobilenet_v2_224 --json out.json
    python benchmarks/bench_float.py --exact            # Interpreter(float_exact=True): the reference's order
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
             "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench_mlperf import LiteRT  # noqa: E402  (the same LiteRT runner, from this folder)
SHARED = ROOT.parent / "shared" / "models"
TFLITE_MODELS = ["ad01_fp32", "kws_ref_model_float32", "vww_96_float"]
KERAS_MODELS = {"mobilenet_v1_224": "MobileNet", "mobilenet_v2_224": "MobileNetV2"}
ONNX_MODELS = ["mlperf_tiny_pytorch_ks_raw", "mlperf_tiny_pytorch_ic_raw", "mlperf_tiny_pytorch_ad_raw",
               "mobilenet_v2_128_0.5"]


def keras_tflite(name: str, cache: Path) -> Path:
    """A float .tflite of a Keras application at 224x224 with seeded random weights (cached in `cache`)."""
    path = cache / f"{name}.tflite"
    if path.is_file():
        return path
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    import tf_keras as keras
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, KERAS_MODELS[name])(weights=None, input_shape=(224, 224, 3))
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((1, 224, 224, 3), tf.float32))
    data = tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert()
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def kws_onnx(cache: Path) -> Path:
    """kws_ref_model_float32.tflite through tf2onnx (cached)."""
    path = cache / "kws_float_tf2onnx.onnx"
    if path.is_file():
        return path
    import tf2onnx
    cache.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_tflite(str(SHARED / "mlperf_tiny" / "kws_ref_model_float32.tflite"), output_path=str(path))
    return path


class EdgeML:
    def __init__(self, path: Path, exact: bool = False):
        import edgeml
        self.it = edgeml.Interpreter(str(path), float_exact=exact)
        self.invoke = self.it.invoke
        self.spec = self.it.get_input_details()[0]

    def prepare(self, x):
        self.it.set_input(x)

    def output(self):
        return self.it.get_output()


class ORT:
    def __init__(self, path: Path):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.in_name = self.sess.get_inputs()[0].name
        self.binding = self.sess.io_binding()
        self.binding.bind_output(self.sess.get_outputs()[0].name, "cpu")

    def prepare(self, x):
        self._x = np.ascontiguousarray(x)          # kept alive: the binding points at it
        self.binding.bind_cpu_input(self.in_name, self._x)

    def invoke(self):
        self.sess.run_with_iobinding(self.binding)

    def output(self):
        return self.binding.copy_outputs_to_cpu()[0]


def alternate(runners: dict, runs: int, warmup: int, clock=time.thread_time_ns) -> dict:
    """Median µs of each runner's invoke, the runners taking turns run by run (the order flipping each round).
    The clock is this thread's CPU time by default (every runtime here computes on the calling thread with one
    thread), so other processes on a shared machine do not inflate either side."""
    order = list(runners)
    for _ in range(warmup):
        for r in runners.values():
            r.invoke()
    times = {k: [] for k in order}
    for rnd in range(runs):
        for k in (order if rnd % 2 == 0 else order[::-1]):
            t0 = clock()
            runners[k].invoke()
            times[k].append(clock() - t0)
    return {k: statistics.median(v) / 1e3 for k, v in times.items()}


def agreement(ours: np.ndarray, ref: np.ndarray) -> str:
    ours, ref = np.asarray(ours), np.asarray(ref).reshape(np.shape(ours))
    if np.array_equal(ours, ref):
        return "bit-exact"
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    rel = diff / np.maximum(np.abs(ref.astype(np.float64)), 1e-30)
    return f"max abs {diff.max():.2g}, max rel {rel.max():.2g}"


def largest_convs(it, n_ops: int, runs: int) -> list:
    """(kernel, MACs, µs, GFLOP/s) of the n_ops steps with the most MACs, medians over profiled runs."""
    plan = it.plan
    per = np.array([plan.engine.invoke_profiled() for _ in range(runs)])
    med = np.median(per, axis=0) / 1e3
    rows = sorted(((s.macs, k) for k, s in enumerate(plan.steps) if s.macs), reverse=True)[:n_ops]
    return [(plan.steps[k].kernel, macs, float(med[k]), 2 * macs / (med[k] * 1e3)) for macs, k in rows]


def cpu_mhz() -> float:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1])
    except OSError:
        pass
    return float("nan")


def measure(name: str, path: Path, kind: str, args) -> dict:
    ours = EdgeML(path, args.exact)
    peer = LiteRT(path) if kind == "tflite" else ORT(path)
    shape = tuple(int(d) if d else 1 for d in ours.spec["shape"])
    x = np.random.default_rng(args.seed).uniform(-1.0, 1.0, size=shape).astype(np.float32)
    for r in (ours, peer):
        r.prepare(x)
    med = alternate({"edgeml": ours, "peer": peer}, args.runs, args.warmup,
                    time.perf_counter_ns if args.wall else time.thread_time_ns)
    ours.invoke()
    if kind == "tflite":
        ref = LiteRT(path, reference=True)
        ref.prepare(x)
        ref.invoke()
        agree = agreement(ours.output(), ref.output())
    else:
        peer.invoke()
        agree = agreement(ours.output(), peer.output())
    convs = largest_convs(ours.it, 3, args.profile_runs)
    return {"model": name, "kind": kind, "edgeml_us": med["edgeml"], "peer_us": med["peer"],
            "ratio": med["edgeml"] / med["peer"], "agreement": agree, "largest": convs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--profile-runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "edgeml-bench-float"))
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--json")
    ap.add_argument("--exact", action="store_true", help="edgeml with float_exact=True (no fused multiply-add)")
    ap.add_argument("--wall", action="store_true", help="wall-clock times instead of the thread's CPU time")
    args = ap.parse_args()
    cache = Path(args.cache)
    wanted = set(args.only.split(",")) if args.only else None
    jobs = [(m, lambda m=m: SHARED / "mlperf_tiny" / f"{m}.tflite", "tflite") for m in TFLITE_MODELS]
    jobs += [(m, lambda m=m: keras_tflite(m, cache), "tflite") for m in KERAS_MODELS]
    jobs += [("kws_float_tf2onnx", lambda: kws_onnx(cache), "onnx")]
    jobs += [(m, lambda m=m: SHARED / "public" / "onnx" / f"{m}.onnx", "onnx") for m in ONNX_MODELS]
    from edgeml.runtime.kernels import ISA
    results, skipped = [], []
    for name, locate, kind in jobs:
        if wanted and name not in wanted:
            continue
        try:
            path = locate()
            if not path.is_file():
                raise FileNotFoundError(str(path))
            results.append(measure(name, path, kind, args))
        except Exception as exc:     # a model this machine or edgeml cannot run: listed, not fatal
            skipped.append((name, f"{type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}"))
    mhz = cpu_mhz()
    print(f"\nedgeml ISA path: {ISA} (EDGEML_ISA={os.environ.get('EDGEML_ISA', 'unset')}); one thread, batch 1, "
          f"{'float_exact' if args.exact else 'fused multiply-add'} mode, {args.runs} alternating runs, "
          f"medians of {'wall-clock' if args.wall else 'thread CPU'} time in µs\n")
    print("| model | edgeml | peer | edgeml / peer | output vs reference |")
    print("|---|---|---|---|---|")
    for r in results:
        peer = "LiteRT+XNNPACK" if r["kind"] == "tflite" else "onnxruntime"
        print(f"| {r['model']} | {r['edgeml_us']:.1f} | {r['peer_us']:.1f} ({peer}) | {r['ratio']:.2f}x | "
              f"{r['agreement']} |")
    for name, why in skipped:
        print(f"| {name} | not run: {why} | | | |")
    print(f"\nLargest convs (GFLOP/s = 2 x MACs / median time); core clock as reported {mhz:.0f} MHz: float peak "
          f"{32 * 2 * mhz / 1e3:.0f} GFLOP/s with AVX-512 FMA (2 x 16 lanes x 2), {32 * mhz / 1e3:.0f} GFLOP/s "
          f"with AVX2 FMA or AVX-512 separate multiply and add (float_exact)\n")
    for r in results:
        for kernel, macs, us, gflops in r["largest"]:
            print(f"- {r['model']}: {kernel}, {macs / 1e6:.1f} M MACs, {us:.1f} µs, {gflops:.1f} GFLOP/s")
    if args.json:
        Path(args.json).write_text(json.dumps({"isa": ISA, "mhz": mhz, "results": results, "skipped": skipped},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
