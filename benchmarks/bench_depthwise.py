#!/usr/bin/env python
"""Every int8 DEPTHWISE_CONV_2D layer of the benchmark corpus, one at a time: GMAC/s per layer from the median of
the thread's CPU time (time.thread_time_ns: on a shared machine wall time mostly measures the other processes) over
rounds of repeated single-step invokes (Engine.invoke_range), one thread, batch 1, on the ISA path the process
takes (EDGEML_ISA forces a lower one).  Models: ../shared/models/public/tflite, ../shared/models/mlperf_tiny and
bench_models.py's synthetic models (from its cache).

    python benchmarks/bench_depthwise.py [--only mobilenet_v2 kws] [--rounds 9] [--json out.json]
    EDGEML_ISA=avx2 python benchmarks/bench_depthwise.py
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "models"
if not SHARED.is_dir():      # (a copy of the tree elsewhere: the shared models of the checkout this runs beside)
    SHARED = Path("/work/shared/models")
CACHE = Path.home() / ".cache" / "edgeml" / "bench_models"


def model_files(only) -> list:
    files = sorted((SHARED / "public" / "tflite").glob("*.tflite")) + sorted((SHARED / "mlperf_tiny").glob("*.tflite"))
    files += sorted(CACHE.glob("*.tflite"))
    return [f for f in files if not only or any(s in f.name for s in only)]


def measure(path: Path, rounds: int, target_ns: float) -> list:
    """[(op index, geometry, kernel, MACs, median ns)] of each int8 depthwise step of one model."""
    import edgeml
    it = edgeml.Interpreter(str(path), num_threads=1)
    rng = np.random.default_rng(0)
    for k, d in enumerate(it.get_input_details()):
        if np.dtype(d["dtype"]).kind in "iu":
            info = np.iinfo(d["dtype"])
            x = rng.integers(info.min, info.max + 1, size=tuple(d["shape"]), dtype=np.int64).astype(d["dtype"])
        else:
            x = rng.uniform(-1, 1, size=tuple(d["shape"])).astype(d["dtype"])
        it.set_input(x, k)
    it.invoke()
    plan = it.plan
    engine = plan.engine
    rows = []
    for k, step in enumerate(plan.steps):
        if step.op.type != "DEPTHWISE_CONV_2D" or not step.kernel.startswith("depthwise_int8"):
            continue
        t0 = time.perf_counter_ns()
        engine.invoke_range(k, k + 1)
        reps = max(1, int(target_ns / max(time.perf_counter_ns() - t0, 1)))
        times = []
        for _ in range(rounds):
            c0 = time.thread_time_ns()
            for _ in range(reps):
                engine.invoke_range(k, k + 1)
            times.append((time.thread_time_ns() - c0) / reps)
        x, w, y = (plan.shapes.get(t) for t in step.op.inputs[:2] + step.op.outputs[:1])
        geom = f"{tuple(x)}->{tuple(y)} k{tuple(w[1:3])}"
        rows.append((step.op.index, geom, step.kernel, step.macs, statistics.median(times)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--target-ms", type=float, default=20.0, help="CPU time per round and layer")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from cython_ops.conv import isa
    print(f"ISA path: {isa()}; GMAC/s = MACs / median thread CPU time of one invoke of the layer\n")
    print("| model | op | geometry | kernel | MMAC | us | GMAC/s |")
    print("|---|---|---|---|---|---|---|")
    out = []
    for f in model_files(args.only):
        try:
            rows = measure(f, args.rounds, args.target_ms * 1e6)
        except Exception as e:      # (a model edgeml does not load is not this benchmark's subject)
            print(f"| {f.stem} | - | not loaded: {type(e).__name__} | | | | |")
            continue
        for op, geom, kernel, macs, ns in rows:
            rate = macs / max(ns, 1)
            flag = " **<20**" if rate < 20 else ""
            print(f"| {f.stem} | {op} | {geom} | {kernel} | {macs / 1e6:.2f} | {ns / 1e3:.1f} | {rate:.1f}{flag} |")
            out.append(dict(model=f.stem, op=op, geometry=geom, kernel=kernel, macs=macs, ns=ns, gmacs=rate))
        sys.stdout.flush()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
