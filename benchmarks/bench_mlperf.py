#!/usr/bin/env python
"""edgeml against its peers on the MLPerf Tiny models: batch 1, one thread, one process, interleaved runs.

Peers: LiteRT with its default (XNNPACK) resolver, LiteRT reference kernels (BUILTIN_REF), TFLite Micro and
onnxruntime on the tf2onnx QDQ conversions.  Each runtime gets its input set once outside the timed region;
only invoke is timed.  The runtimes alternate run by run (round-robin) so that machine drift hits all of them
alike; slow peers get fewer runs, spread evenly over the same rounds.

    python benchmarks/bench_mlperf.py                      # int8 models, markdown table to stdout
    python benchmarks/bench_mlperf.py --float --profile    # also the float models; per-op profiles
    python benchmarks/bench_mlperf.py --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
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

INT8_MODELS = ["ad01_int8", "kws_ref_model", "vww_96_int8", "pretrainedResnet_quant"]
FLOAT_MODELS = ["ad01_fp32", "kws_ref_model_float32", "vww_96_float"]
RUNTIMES = ["edgeml", "litert_xnnpack", "litert_ref", "tflm", "onnxruntime"]
LABELS = {"edgeml": "edgeml", "litert_xnnpack": "LiteRT (XNNPACK)", "litert_ref": "LiteRT ref",
          "tflm": "TFLite Micro", "onnxruntime": "onnxruntime"}


# ----------------------------------------------------------------------------------------------------
# Runners: prepare(x) sets the input (untimed); invoke() is timed; output() reads the result (untimed).
# ----------------------------------------------------------------------------------------------------

class EdgeML:
    def __init__(self, path: Path):
        import edgeml
        self.it = edgeml.Interpreter(str(path))
        self.invoke = self.it.invoke

    def prepare(self, x):
        self.it.set_input(x)

    def output(self):
        return self.it.get_output()


class LiteRT:
    """LiteRT on one thread (XNNPACK, or the reference kernels with reference=True), single input and output."""
    def __init__(self, path: Path, reference: bool = False):
        from ai_edge_litert import interpreter as lit
        kwargs = {"num_threads": 1}
        if reference:
            kwargs["experimental_op_resolver_type"] = lit.OpResolverType.BUILTIN_REF
        self.it = lit.Interpreter(model_path=str(path), **kwargs)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]["index"]
        self.out = self.it.get_output_details()[0]["index"]
        self.invoke = self.it.invoke

    def prepare(self, x):
        self.it.set_tensor(self.inp, x)

    def output(self):
        return self.it.get_tensor(self.out).copy()


class TFLM:
    def __init__(self, path: Path):
        from tflite_micro.python.tflite_micro import runtime
        self.it = runtime.Interpreter.from_file(str(path))
        self.invoke = self.it.invoke

    def prepare(self, x):
        self.it.set_input(x, 0)

    def output(self):
        return np.array(self.it.get_output(0)).copy()


class ORT:
    def __init__(self, path: Path):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        self.in_name = self.sess.get_inputs()[0].name
        self.out_name = self.sess.get_outputs()[0].name
        self.binding = self.sess.io_binding()
        self.binding.bind_output(self.out_name, "cpu")
        self._x = None

    def prepare(self, x):
        self._x = np.ascontiguousarray(x)          # kept alive: the binding points at it
        self.binding.bind_cpu_input(self.in_name, self._x)

    def invoke(self):
        self.sess.run_with_iobinding(self.binding)

    def output(self):
        return self.binding.copy_outputs_to_cpu()[0]


def make_runner(kind: str, tflite: Path, onnx_dir: Path):
    if kind == "edgeml":
        return EdgeML(tflite)
    if kind == "litert_xnnpack":
        return LiteRT(tflite, reference=False)
    if kind == "litert_ref":
        return LiteRT(tflite, reference=True)
    if kind == "tflm":
        return TFLM(tflite)
    if kind == "onnxruntime":
        onnx = onnx_dir / (tflite.stem + ".onnx")
        if not onnx.is_file():
            raise FileNotFoundError(f"no {onnx.name} in {onnx_dir}")
        return ORT(onnx)
    raise ValueError(kind)


# ----------------------------------------------------------------------------------------------------

def benchmark_input(path: Path, seed: int) -> np.ndarray:
    from converters import from_tflite
    g = from_tflite(str(path))
    t = g.tensors[g.inputs[0]]
    rng = np.random.default_rng(seed)
    if t.dtype == np.int8:
        return rng.integers(-128, 128, size=t.shape, dtype=np.int8)
    return rng.uniform(-1.0, 1.0, size=t.shape).astype(t.dtype)


def measure(model: str, args, make=None) -> dict:
    """`make(kind, tflite, onnx_dir)` builds a runner (default make_runner); other benchmarks pass their own."""
    path = Path(args.models) / f"{model}.tflite"
    x = benchmark_input(path, args.seed)
    runners, errors = {}, {}
    for kind in RUNTIMES:
        try:
            r = (make or make_runner)(kind, path, Path(args.onnx))
            r.prepare(x)
            r.invoke()
            runners[kind] = r
        except Exception as exc:  # a peer (or edgeml) that cannot run the model: reported, not fatal
            errors[kind] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"

    # warm-up, interleaved; the warm-up also estimates each runtime's speed
    est = {k: [] for k in runners}
    for _ in range(args.warmup):
        for k, r in runners.items():
            t0 = time.perf_counter_ns()
            r.invoke()
            est[k].append(time.perf_counter_ns() - t0)
    runs = {}
    for k in runners:
        per = statistics.median(est[k]) if est[k] else 1e3
        runs[k] = int(max(args.min_runs, min(args.runs, args.budget * 1e9 / max(per, 1.0))))

    # round-robin: runtime k takes its n_k runs at evenly spread rounds of the N = max(n) rounds
    n_rounds = max(runs.values(), default=0)
    times = {k: [] for k in runners}
    order = list(runners)
    for rnd in range(n_rounds):
        for k in (order if rnd % 2 == 0 else order[::-1]):        # alternate direction too
            if (rnd + 1) * runs[k] // n_rounds > rnd * runs[k] // n_rounds:
                r = runners[k]
                t0 = time.perf_counter_ns()
                r.invoke()
                times[k].append(time.perf_counter_ns() - t0)

    result = {"model": model, "runs": {k: len(v) for k, v in times.items()}, "errors": errors,
              "median_us": {k: statistics.median(v) / 1e3 for k, v in times.items() if v},
              "p10_us": {k: float(np.percentile(v, 10)) / 1e3 for k, v in times.items() if v},
              "p90_us": {k: float(np.percentile(v, 90)) / 1e3 for k, v in times.items() if v}}

    # correctness on the benchmark input, against LiteRT's reference kernels
    outs = {}
    for k, r in runners.items():
        r.prepare(x)
        r.invoke()
        outs[k] = r.output()
    agreement = {}
    if "litert_ref" in outs:
        ref = outs["litert_ref"]
        for k, y in outs.items():
            if k == "litert_ref":
                continue
            y = np.asarray(y).reshape(ref.shape) if np.asarray(y).size == ref.size else np.asarray(y)
            if y.shape != ref.shape:
                agreement[k] = {"exact": False, "max_abs_diff": None, "note": f"shape {y.shape} vs {ref.shape}"}
                continue
            diff = np.abs(y.astype(np.float64) - ref.astype(np.float64))
            agreement[k] = {"exact": bool(np.array_equal(y, ref)), "max_abs_diff": float(diff.max()),
                            "n_diff": int(np.count_nonzero(diff))}
    result["vs_litert_ref"] = agreement

    if args.profile and "edgeml" in runners:
        result["profile"] = profile(runners["edgeml"].it, args.profile_runs)
    return result


def profile(it, n: int) -> list:
    rows = {}
    for _ in range(n):
        for idx, op, ns, macs in it.invoke_profiled():
            rows.setdefault((idx, op, macs), []).append(ns)
    out = [{"op_index": idx, "op": op, "macs": macs, "median_us": statistics.median(v) / 1e3}
           for (idx, op, macs), v in rows.items()]
    return sorted(out, key=lambda r: -r["median_us"])


# ----------------------------------------------------------------------------------------------------

def fmt_us(v):
    if v is None:
        return "n/a"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def print_table(results: list):
    print("\n## Median invoke time, batch 1, one thread (µs; in brackets: peer median / edgeml median)\n")
    print("| model | " + " | ".join(LABELS[k] for k in RUNTIMES) + " | edgeml vs LiteRT ref |")
    print("|---|" + "---|" * (len(RUNTIMES) + 1))
    for r in results:
        med = r["median_us"]
        base = med.get("edgeml")
        cells = []
        for k in RUNTIMES:
            if k not in med:
                cells.append("—" if k not in r["errors"] else "error")
                continue
            cell = fmt_us(med[k])
            if k != "edgeml" and base:
                cell += f" ({med[k] / base:.2f}x)"
            cells.append(cell)
        agree = r["vs_litert_ref"].get("edgeml")
        if agree is None:
            exact = "n/a"
        elif agree["exact"]:
            exact = "bit-exact"
        else:
            exact = f"differs: {agree.get('n_diff', '?')} values, max |Δ| {agree['max_abs_diff']}"
        print(f"| {r['model']} | " + " | ".join(cells) + f" | {exact} |")
    print()
    print("runs per runtime: " + "; ".join(
        f"{r['model']}: " + ", ".join(f"{k}={n}" for k, n in r["runs"].items()) for r in results))
    for r in results:
        for k, e in r["errors"].items():
            print(f"- {r['model']} / {LABELS[k]}: {e}")
        for k, a in r["vs_litert_ref"].items():
            if k != "edgeml" and not a["exact"]:
                print(f"- {r['model']} / {LABELS[k]} vs LiteRT ref: {a.get('n_diff', '?')} values differ, "
                      f"max |Δ| {a['max_abs_diff']}")


def print_profiles(results: list, top: int):
    for r in results:
        prof = r.get("profile")
        if not prof:
            continue
        total = sum(p["median_us"] for p in prof)
        print(f"\n### edgeml per-op profile: {r['model']} (sum of per-op medians {total:.1f} µs)\n")
        print("| op | type | µs | share | MACs | GMAC/s |")
        print("|---|---|---|---|---|---|")
        for p in prof[:top]:
            gmacs = p["macs"] / (p["median_us"] * 1e3) if p["macs"] and p["median_us"] > 0 else 0.0
            print(f"| {p['op_index']} | {p['op']} | {p['median_us']:.2f} | {100 * p['median_us'] / total:.1f}% | "
                  f"{p['macs']} | {gmacs:.1f} |")


def main(argv=None):
    default_models = ROOT / "tests" / "models" / "mlperf_tiny"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=str(default_models), help="folder of the .tflite models")
    ap.add_argument("--onnx", default=None, help="folder of the .onnx models (default: MODELS/../mlperf_tiny_onnx)")
    ap.add_argument("--runs", type=int, default=200, help="most timed runs per runtime (fast runtimes)")
    ap.add_argument("--min-runs", type=int, default=15, help="fewest timed runs per runtime (slow peers)")
    ap.add_argument("--budget", type=float, default=3.0,
                    help="seconds of timed invokes per runtime and model; caps the runs of slow peers")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--float", action="store_true", help="also the float32 models")
    ap.add_argument("--only", nargs="*", help="model names to run (default: all)")
    ap.add_argument("--profile", action="store_true", help="print edgeml's per-op profile for each model")
    ap.add_argument("--profile-runs", type=int, default=50)
    ap.add_argument("--top", type=int, default=8, help="profile entries to print per model")
    ap.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    args = ap.parse_args(argv)
    if args.onnx is None:
        args.onnx = str(Path(args.models).parent / "mlperf_tiny_onnx")
    if not Path(args.models).is_dir():
        ap.error(f"models folder {args.models} not found")
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    models = INT8_MODELS + (FLOAT_MODELS if args.float else [])
    if args.only:
        models = [m for m in models if m in args.only] or args.only
    print(f"# edgeml MLPerf Tiny benchmark\n\n{platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"affinity {sorted(os.sched_getaffinity(0))}")
    results = []
    t_start = time.perf_counter()
    for m in models:
        t0 = time.perf_counter()
        r = measure(m, args)
        results.append(r)
        print(f"  {m}: " + ", ".join(f"{k} {fmt_us(v)} µs" for k, v in r["median_us"].items())
              + f"  [{time.perf_counter() - t0:.1f} s]", flush=True)
    print_table(results)
    if args.profile:
        print_profiles(results, args.top)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
