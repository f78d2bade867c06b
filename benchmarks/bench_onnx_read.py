#!/usr/bin/env python
"""The ONNX read stage alone (file -> edgeml's IR: converters.onnx.from_onnx), this tree against an older one.

Each tree reads in a worker process of its own (two trees cannot share one process); the driver asks the workers
for one read each in turn, alternating the order read by read, drops the first round (file cache, imports) and
prints the medians of the worker's thread CPU time (time.thread_time: steadier than wall time on a shared
machine), with the protobuf parse alone (onnx.load_model_from_string) for scale.

    python benchmarks/bench_onnx_read.py                                  # every .onnx under ../shared/models
    python benchmarks/bench_onnx_read.py --baseline /tmp/edgeml-before    # + an older tree: before / after
    python benchmarks/bench_onnx_read.py --only vww kws --reads 31
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models"


def worker(root: str):
    """Reads the model paths given on stdin; prints the read's and the bare parse's thread CPU ms."""
    sys.path.insert(0, root)
    import time

    import onnx

    from converters.onnx import from_onnx
    from converters.source import read_model_bytes
    print("ready", flush=True)
    for line in sys.stdin:
        path = line.strip()
        t0 = time.thread_time_ns()
        from_onnx(path)
        t1 = time.thread_time_ns()
        onnx.load_model_from_string(read_model_bytes(path))
        t2 = time.thread_time_ns()
        print(f"{(t1 - t0) / 1e6:.4f} {(t2 - t1) / 1e6:.4f}", flush=True)


def start(root: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, "--worker", str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=root)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the worker for {root} did not start")
    return proc


def ask(proc: subprocess.Popen, path: Path) -> tuple:
    proc.stdin.write(f"{path}\n")
    proc.stdin.flush()
    read, parse = proc.stdout.readline().split()
    return float(read), float(parse)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, help="an older edgeml tree (the 'before' column)")
    ap.add_argument("--reads", type=int, default=21)
    ap.add_argument("--only", nargs="*", help="substrings of the model file names")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return
    models = sorted(SHARED.rglob("*.onnx")) if SHARED.is_dir() else []
    models += sorted((ROOT / "tests" / "models").rglob("*.onnx")) if not models else []
    if args.only:
        models = [p for p in models if any(k in p.name for k in args.only)]
    trees = {"after": ROOT} if args.baseline is None else {"before": args.baseline.resolve(), "after": ROOT}
    procs = {label: start(root) for label, root in trees.items()}
    print(f"ONNX read stage (converters.onnx.from_onnx), median thread CPU ms over {args.reads} reads, trees "
          f"alternating read by read\n")
    head = "| model | protobuf parse |" + "".join(f" read {label} |" for label in trees)
    print(head + (" before / after |" if len(trees) == 2 else ""))
    print("|---" * (head.count("|") - 1 + (len(trees) == 2)) + "|")
    for path in models:
        times = {label: [] for label in trees}
        parse = []
        for r in range(args.reads + 1):
            order = list(trees) if r % 2 == 0 else list(trees)[::-1]
            for label in order:
                read, bare = ask(procs[label], path)
                if r:
                    times[label].append(read)
                    parse.append(bare)
        med = {label: statistics.median(v) for label, v in times.items()}
        row = f"| {path.name} | {statistics.median(parse):.2f} |" + "".join(f" {med[k]:.2f} |" for k in trees)
        if len(trees) == 2:
            row += f" {med['before'] / med['after']:.2f}x |"
        print(row, flush=True)
    for proc in procs.values():
        proc.stdin.close()
        proc.wait()


if __name__ == "__main__":
    main()
