#!/usr/bin/env python
"""edgeml against onnxruntime on the MLPerf Tiny ONNX (tf2onnx QDQ) models: batch 1, one thread, one process.

Both runtimes get the input set outside the timed region; only the invoke is timed.  They alternate run by
run so that machine drift hits both alike; the table gives medians and the ratio onnxruntime / edgeml.
The outputs are compared once (they must be identical).

    python benchmarks/bench_onnx.py [--runs 300] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ["ad01_int8", "kws_ref_model", "vww_96_int8", "pretrainedResnet_quant"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "tests" / "models" / "mlperf_tiny_onnx"))
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args()
    import onnxruntime as ort
    import edgeml
    rows = []
    for name in MODELS:
        path = Path(args.models) / f"{name}.onnx"
        if not path.is_file():
            print(f"skipping {name}: {path} not found", file=sys.stderr)
            continue
        it = edgeml.Interpreter(str(path))
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        x = np.random.default_rng(0).integers(-128, 128, (1,) + tuple(inp.shape[1:])).astype(np.int8)
        it.set_input(x)
        binding = sess.io_binding()
        binding.bind_cpu_input(inp.name, x)
        binding.bind_output(sess.get_outputs()[0].name)
        it.invoke()
        sess.run_with_iobinding(binding)
        same = bool(np.array_equal(it.get_output(), binding.copy_outputs_to_cpu()[0]))
        times = {"edgeml": [], "onnxruntime": []}
        for _ in range(20):                       # warm up both
            it.invoke()
            sess.run_with_iobinding(binding)
        for _ in range(args.runs):
            t0 = time.perf_counter_ns()
            it.invoke()
            t1 = time.perf_counter_ns()
            sess.run_with_iobinding(binding)
            t2 = time.perf_counter_ns()
            times["edgeml"].append(t1 - t0)
            times["onnxruntime"].append(t2 - t1)
        med = {k: statistics.median(v) / 1000.0 for k, v in times.items()}
        rows.append({"model": name, "edgeml_us": med["edgeml"], "onnxruntime_us": med["onnxruntime"],
                     "ratio": med["onnxruntime"] / med["edgeml"], "identical_output": same})
    print("| model | edgeml (us) | onnxruntime (us) | onnxruntime / edgeml | outputs identical |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['edgeml_us']:.1f} | {r['onnxruntime_us']:.1f} | {r['ratio']:.2f} | "
              f"{'yes' if r['identical_output'] else 'NO'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0 if all(r["identical_output"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
