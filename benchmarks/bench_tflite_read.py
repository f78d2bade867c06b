#!/usr/bin/env python
"""The .tflite reader alone (converters.tflite.from_tflite: file -> IR), per model: median thread CPU time of reading
from bytes already in memory (the walk and the IR objects) and from the path (plus reading the file into memory,
each load's bytes kept alive as an Interpreter keeps them), the two alternating run by run.

    python benchmarks/bench_tflite_read.py                      # every .tflite under ../shared/models + the cache
    python benchmarks/bench_tflite_read.py --only kws vww ssd tf2 --runs 41
    python benchmarks/bench_tflite_read.py --root OTHER_CHECKOUT   # another checkout's reader (before / after)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models"
SYNTHETIC = Path.home() / ".cache" / "edgeml" / "bench_models"      # bench_models.py's synthetic models


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(ROOT), help="checkout whose converters/ to time (default: this one)")
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--only", nargs="*", help="substrings of the model names")
    args = ap.parse_args(argv)
    sys.path[:0] = [args.root, str(ROOT)]
    from converters.source import read_model_bytes
    from converters.tflite import from_tflite
    from edgeml.errors import EdgeMLError
    paths = sorted(SHARED.rglob("*.tflite")) + sorted(SYNTHETIC.glob("*.tflite"))
    if args.only:
        paths = [p for p in paths if any(o in p.name for o in args.only)]
    print(f"reader: {sys.modules['converters.tflite'].__file__}, {args.runs} runs, thread CPU time, medians (ms)\n")
    print("| model | tensors | ops | from bytes | from path |")
    print("|---|---|---|---|---|")
    for path in paths:
        data = read_model_bytes(path)
        try:
            graph = from_tflite(data)
        except EdgeMLError as exc:
            print(f"| {path.stem} | refused: {str(exc)[:60]} | | | |")
            continue
        times = {"bytes": [], "path": []}
        kept = []
        for run in range(args.runs):
            for kind in (("bytes", "path") if run % 2 == 0 else ("path", "bytes")):
                source = data if kind == "bytes" else str(path)
                t0 = time.thread_time_ns()
                kept.append(from_tflite(source))
                times[kind].append((time.thread_time_ns() - t0) / 1e6)
        del kept
        print(f"| {path.stem} | {len(graph.tensors)} | {len(graph.ops)} | {statistics.median(times['bytes']):.3f} | "
              f"{statistics.median(times['path']):.3f} |", flush=True)


if __name__ == "__main__":
    main()
