#!/usr/bin/env python
"""num_threads=2 against one thread, for edgeml and LiteRT + XNNPACK, on every int8 / uint8 .tflite model at hand
(../shared/models/mlperf_tiny and public/tflite, or the files named): issue 15's "threads that pay".

As a user's loop runs: each of the four interpreters (edgeml 1 and 2 threads, LiteRT 1 and 2 threads) runs its own
block of back-to-back invokes (--block seconds, the first 3 runs of a block dropped), the blocks alternating for
--seconds per model; medians of the per-run wall times (threads make wall time, not CPU time, the measure).  Run
several times on a shared machine: a busy second core shows up as 2-thread figures near or above 1-thread ones
for both runtimes.

    python benchmarks/bench_thread_scaling.py [--seconds 8] [--only mobilenet_v2 vww] [--json out.json] [FILES ..]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "models"
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_models import is_quantized_tflite  # noqa: E402


def models(args) -> list:
    paths = [Path(p) for p in args.files]
    if not paths:
        for folder in (SHARED / "mlperf_tiny", SHARED / "public" / "tflite"):
            paths += sorted(folder.glob("*.tflite")) if folder.is_dir() else []
    if args.only:
        paths = [p for p in paths if any(o in p.stem for o in args.only)]
    return paths


def runners(path: Path) -> dict:
    """name -> a no-argument call running one inference on fixed random input."""
    import edgeml
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    out = {}
    for n in (1, 2):
        it = edgeml.Interpreter(str(path), num_threads=n)
        rng = np.random.default_rng(0)
        xs = []
        for d in it.get_input_details():
            if np.issubdtype(d["dtype"], np.integer):
                info = np.iinfo(d["dtype"])
                xs.append(rng.integers(info.min, info.max, d["shape"], endpoint=True).astype(d["dtype"]))
            else:
                xs.append(rng.uniform(-1, 1, d["shape"]).astype(d["dtype"]))
        out[f"edgeml {n}t"] = lambda it=it, xs=xs: it.run(xs if len(xs) > 1 else xs[0])
        lr = LiteRT(model_path=str(path), num_threads=n)
        lr.allocate_tensors()
        indices = [d["index"] for d in lr.get_input_details()]     # (the same order as edgeml's)

        def peer(lr=lr, indices=indices, xs=xs):
            for index, x in zip(indices, xs):
                lr.set_tensor(index, x)
            lr.invoke()
        out[f"litert {n}t"] = peer
    return out


def measure(calls: dict, seconds: float, block: float) -> dict:
    for f in calls.values():
        f()
    times = {k: [] for k in calls}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for k, f in calls.items():
            stop, n = time.perf_counter() + block, 0
            while time.perf_counter() < stop or n < 6:
                t = time.perf_counter_ns()
                f()
                dt = time.perf_counter_ns() - t
                n += 1
                if n > 3:
                    times[k].append(dt)
    return {k: float(np.median(v)) / 1e3 for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help=".tflite models (default: the shared corpus)")
    ap.add_argument("--only", nargs="*", help="models whose names contain one of these")
    ap.add_argument("--seconds", type=float, default=8.0, help="per model (default 8)")
    ap.add_argument("--block", type=float, default=0.05, help="seconds of back-to-back runs per block (0.05)")
    ap.add_argument("--json", help="write the rows as JSON")
    args = ap.parse_args()
    rows = []
    print("| model | edgeml 1t us | edgeml 2t us | edgeml 2t speed-up | LiteRT 1t us | LiteRT 2t us | "
          "LiteRT 2t speed-up |")
    print("|---|---|---|---|---|---|---|")
    for path in models(args):
        try:
            if not is_quantized_tflite(path):
                continue
            m = measure(runners(path), args.seconds, args.block)
        except Exception as exc:        # a model edgeml or LiteRT does not run: listed, not fatal
            print(f"| {path.stem} | not run: {type(exc).__name__}: {str(exc)[:80]} |||||")
            continue
        row = {"model": path.stem, **m, "edgeml_speedup": m["edgeml 1t"] / m["edgeml 2t"],
               "litert_speedup": m["litert 1t"] / m["litert 2t"]}
        rows.append(row)
        print(f"| {path.stem} | {m['edgeml 1t']:.0f} | {m['edgeml 2t']:.0f} | {row['edgeml_speedup']:.2f}x | "
              f"{m['litert 1t']:.0f} | {m['litert 2t']:.0f} | {row['litert_speedup']:.2f}x |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=1))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
