#!/usr/bin/env python
"""Two edgeml checkouts (each built in place) side by side on the same models: one worker process per tree, the
trees alternating run by run (which goes first alternating too), batch 1, one thread, the thread CPU time of each
invoke (time.thread_time_ns: steadier than wall time on a shared machine); medians and their ratio new / old.
For checking that a change to the kernels did not cost speed.

    python benchmarks/bench_trees.py OLD_TREE NEW_TREE model.tflite [...] [--runs 30]
    EDGEML_ISA=avx2 python benchmarks/bench_trees.py ...     # both trees on their AVX2 path
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import edgeml
assert edgeml.__file__.startswith(sys.argv[1]), edgeml.__file__
its = {}
for line in sys.stdin:
    cmd = json.loads(line)
    path = cmd["model"]
    if path not in its:
        it = edgeml.Interpreter(path)
        rng = np.random.default_rng(0)
        for k, d in enumerate(it.get_input_details()):
            shape = tuple(d["shape"])
            if np.dtype(d["dtype"]) == np.float32:
                x = rng.standard_normal(shape).astype(np.float32)
            else:
                x = rng.integers(-128, 128, shape).astype(d["dtype"])
            it.set_input(x, k)
        for _ in range(3):
            it.invoke()
        its[path] = it
    it = its[path]
    times = []
    for _ in range(cmd["n"]):
        t0 = time.thread_time_ns()
        it.invoke()
        times.append(time.thread_time_ns() - t0)
    print(json.dumps(times), flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=3, help="invokes per turn")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    workers = {}
    for label, tree in (("old", args.old), ("new", args.new)):
        tree = str(Path(tree).resolve())
        workers[label] = subprocess.Popen([sys.executable, "-c", WORKER, tree], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, cwd=tree, env=env)
    isa = os.environ.get("EDGEML_ISA", "default")
    print(f"| model ({isa}) | old ms | new ms | new / old |")
    print("|---|---:|---:|---:|")
    for model in args.models:
        times = {"old": [], "new": []}
        for r in range(args.runs):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for label in order:
                w = workers[label]
                w.stdin.write(json.dumps({"model": str(Path(model).resolve()), "n": args.batch}) + "\n")
                w.stdin.flush()
                times[label] += json.loads(w.stdout.readline())
        old, new = (statistics.median(times[k]) / 1e6 for k in ("old", "new"))
        print(f"| {Path(model).stem} | {old:.3f} | {new:.3f} | {new / old:.3f} |", flush=True)
    for w in workers.values():
        w.stdin.close()
        w.wait()


if __name__ == "__main__":
    main()
