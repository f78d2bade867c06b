#!/usr/bin/env python
"""The AVX2 path against the default one (AVX-512 VNNI here): avx2 / default invoke-time ratios per model.

The ISA is chosen once per process (em_isa.h), so two worker processes run side by side, one started with
EDGEML_ISA=avx2 and one with the default path; the driver asks them for a batch of invokes each in turn,
alternating which goes first round by round, drops the first round, and prints medians of the worker's thread CPU
time per invoke (time.thread_time_ns: steadier than wall time on a shared machine) and their ratio.  Batch 1, one
thread.  The outputs of both workers on one seeded input are compared
bit for bit (int8 models, float outputs of a DEQUANTIZE included).

    python benchmarks/bench_isa.py                       # MLPerf Tiny int8 + public corpus + bench_models cache
    python benchmarks/bench_isa.py --only resnet --profile   # + per-op-type avx2 / default ratios
    python benchmarks/bench_isa.py --isa scalar          # another forced path against the default
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models"


def model_paths(only) -> list:
    found = []
    for folder in (SHARED / "mlperf_tiny", SHARED / "public" / "tflite",
                   Path.home() / ".cache" / "edgeml" / "bench_models"):
        found += [p for p in sorted(folder.glob("*.tflite")) if "fp32" not in p.name and "float" not in p.name]
    return [p for p in found if not only or any(o in p.name for o in only)]


def worker():
    """Reads JSON requests from stdin: load / time / profile / digest; answers one JSON line each."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import edgeml
    from edgeml.bench.measure import random_inputs
    from edgeml.runtime.kernels import ISA

    loaded = {}
    print(json.dumps({"isa": ISA}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        path = req["path"]
        try:
            if req["do"] == "load":
                it = edgeml.Interpreter(path, num_threads=1)
                specs = [np.zeros(tuple(d["shape"]), dtype=d["dtype"]) for d in it.get_input_details()]
                for i, x in enumerate(random_inputs(specs, seed=0)):
                    it.set_input(x, i)
                it.invoke()
                loaded[path] = it
                outs = [it.get_output(i) for i in range(len(it.get_output_details()))]
                print(json.dumps({"digest": [o.tobytes().hex() for o in outs]}), flush=True)
            elif req["do"] == "time":
                it, times = loaded[path], []
                for _ in range(req["n"]):
                    t0 = time.thread_time_ns()
                    it.invoke()
                    times.append(time.thread_time_ns() - t0)
                print(json.dumps({"us": statistics.median(times) / 1e3}), flush=True)
            else:
                it, per_op = loaded[path], {}
                runs = [it.invoke_profiled() for _ in range(req["n"])]
                for run in runs:
                    for idx, op_type, ns, _ in run:
                        per_op.setdefault(f"{idx}:{op_type}", []).append(ns)
                print(json.dumps({"ops": {k: statistics.median(v) / 1e3 for k, v in per_op.items()}}), flush=True)
        except Exception as exc:      # a model that does not load: reported, not fatal
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:200]}), flush=True)


def start(isa: str | None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("EDGEML_ISA", None)
    if isa:
        env["EDGEML_ISA"] = isa
    p = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, cwd=str(ROOT), env=env)
    p.isa = json.loads(p.stdout.readline())["isa"]
    return p


def ask(p: subprocess.Popen, **req) -> dict:
    p.stdin.write(json.dumps(req) + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def profile_table(name: str, forced: dict, default: dict, top: int) -> list:
    """Per-op rows (forced us, default us, ratio), largest extra time first."""
    rows = sorted(((forced[k] - default[k], k, forced[k], default[k]) for k in forced if k in default), reverse=True)
    lines = [f"\n{name}: per op (median of profiled invokes, us), largest avx2 - default first",
             "| op | forced | default | ratio |", "|---|---:|---:|---:|"]
    for _, k, f, d in rows[:top]:
        lines.append(f"| {k} | {f:.1f} | {d:.1f} | {f / max(d, 1e-3):.2f} |")
    by_type: dict = {}
    for k in forced:
        if k in default:
            t = k.split(":", 1)[1]
            a, b = by_type.get(t, (0.0, 0.0))
            by_type[t] = (a + forced[k], b + default[k])
    lines.append("| **by type** | | | |")
    for t, (f, d) in sorted(by_type.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {t} | {f:.1f} | {d:.1f} | {f / max(d, 1e-3):.2f} |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="substrings of the model file names to keep")
    ap.add_argument("--isa", default="avx2", help="the forced path timed against the default (default: avx2)")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds per model (the first is dropped)")
    ap.add_argument("--invokes", type=int, default=0, help="invokes per batch (default: about 50 ms of work)")
    ap.add_argument("--profile", action="store_true", help="per-op ratios for each model")
    ap.add_argument("--top", type=int, default=8, help="per-op rows shown with --profile")
    args = ap.parse_args(argv)

    forced, default = start(args.isa), start(None)
    print(f"forced path: {forced.isa}; default path: {default.isa}; thread CPU time per invoke, medians of "
          f"{args.rounds - 1} alternating rounds\n")
    print(f"| model | {forced.isa} us | {default.isa} us | ratio | outputs equal |")
    print("|---|---:|---:|---:|---|")
    ratios, notes = [], []
    for path in model_paths(args.only):
        a, b = ask(forced, do="load", path=str(path)), ask(default, do="load", path=str(path))
        if "error" in a or "error" in b:
            notes.append(f"{path.name}: not loaded ({a.get('error') or b.get('error')})")
            continue
        equal = "yes" if a["digest"] == b["digest"] else "**NO**"
        n = args.invokes or max(1, int(50e3 / max(ask(default, do="time", path=str(path), n=1)["us"], 1.0)))
        fa, fb = [], []
        for r in range(args.rounds):
            order = ((forced, fa), (default, fb)) if r % 2 == 0 else ((default, fb), (forced, fa))
            for p, acc in order:
                acc.append(ask(p, do="time", path=str(path), n=n)["us"])
        ma, mb = statistics.median(fa[1:]), statistics.median(fb[1:])
        ratios.append(ma / mb)
        print(f"| {path.stem} | {ma:.0f} | {mb:.0f} | {ma / mb:.2f} | {equal} |", flush=True)
        if args.profile:
            pa = ask(forced, do="profile", path=str(path), n=max(5, n))["ops"]
            pb = ask(default, do="profile", path=str(path), n=max(5, n))["ops"]
            notes += profile_table(path.stem, pa, pb, args.top)
    if ratios:
        print(f"\nworst ratio {max(ratios):.2f}, geometric mean "
              f"{statistics.geometric_mean(ratios):.2f} over {len(ratios)} models")
    for line in notes:
        print(line)
    for p in (forced, default):
        p.stdin.close()
        p.wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker()
    else:
        main()
