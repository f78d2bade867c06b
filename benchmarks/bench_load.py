#!/usr/bin/env python
"""Load times: edgeml (this tree, and optionally an older tree: before / after) against LiteRT's Interpreter() +
allocate_tensors() for .tflite and onnxruntime's InferenceSession() (default options, one thread) for .onnx.

Each runtime loads in a worker process of its own (two edgeml trees cannot share one process); the driver asks
the workers for one load each in turn, the edgeml trees swapping places round by round, drops the first round
(file cache, imports) and prints medians of the wall time and of the worker's CPU time (process_time: steadier
than wall time on a shared machine), and with --baseline the median over rounds of after / before.

    python benchmarks/bench_load.py                                 # every model, edgeml vs the peers
    python benchmarks/bench_load.py --baseline /tmp/edgeml-before   # + the older tree (built in place)
    python benchmarks/bench_load.py --only kws mobilenet --loads 9
    python benchmarks/bench_load.py --first --loads 5              # first loads, each in a fresh process

The first load in a process is the one most programs pay, and it differs from the repeated loads above: it also
pays each runtime's once-per-process work on first use (for edgeml: importing the reader of the file's format,
reading the options layouts of the op types met, building per-type tables) and finds no memory freed by an earlier
load to reuse.  Those processes run with the modules' bytecode cached, as an installed package has it (an untimed
first round writes it).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models"


def ms_text(v: float) -> str:
    """A load time in ms: two decimals below 10 (small models load in under a millisecond)."""
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def loader(mode: str, root: str):
    """The load function of one runtime (imported here)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, root)
    if mode == "edgeml":
        import edgeml
        interpreter = edgeml.Interpreter      # (`import edgeml` defers the runtime's import to this first use)

        def load(p):
            interpreter(p)
    elif mode == "litert":
        from ai_edge_litert import interpreter as lit

        def load(p):
            lit.Interpreter(model_path=p, num_threads=1).allocate_tensors()
    else:
        import onnxruntime as ort

        def load(p):
            so = ort.SessionOptions()
            so.intra_op_num_threads = so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            ort.InferenceSession(p, sess_options=so, providers=["CPUExecutionProvider"])
    return load


def worker(mode: str, root: str):
    """Loads the model paths read from stdin; prints wall and CPU ms per load."""
    load = loader(mode, root)
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            load(line.strip())
            print(f"{(time.perf_counter() - t0) * 1e3:.4f} {(time.process_time() - c0) * 1e3:.4f}", flush=True)
        except Exception as exc:      # a model a runtime cannot load: reported, not fatal
            print(f"ERR {type(exc).__name__}", flush=True)


def print_head(edgemls: list, label: str, extra: str = ""):
    """The table's header: per edgeml tree its ms, the peer's, the ratio, the same in CPU ms, and `extra`."""
    head = " | ".join(f"edgeml {k}{label} ms" for k in edgemls)
    print(f"| model | {head} | peer ms | edgeml / peer | CPU ms: {' | '.join(edgemls)} | peer | edgeml / peer |{extra}")
    print("|---|" + "---|" * (2 * len(edgemls) + 4 + bool(extra)))


def print_row(path: Path, peer: str, edgemls: list, wall: dict, cpu: dict, extra: str = ""):
    """One model's row: medians of the wall and CPU ms lists of each edgeml tree and of the peer."""
    w, c = ({k: statistics.median(v) for k, v in d.items()} for d in (wall, cpu))
    label = "onnxruntime" if peer == "ort" else "LiteRT"
    print(f"| {path.name} ({label}) | " + " | ".join(ms_text(w[k]) for k in edgemls)
          + f" | {ms_text(w[peer])} | {w['after'] / w[peer]:.2f}x | " + " | ".join(ms_text(c[k]) for k in edgemls)
          + f" | {ms_text(c[peer])} | {c['after'] / c[peer]:.2f}x |" + extra, flush=True)


# the worker processes of --first keep compiled bytecode (__pycache__) between runs, as an installed package does
# (pip compiles it at install; the peers' Python wrappers have theirs): with PYTHONDONTWRITEBYTECODE set, as on the
# development machine, every module edgeml imports during its first load was compiled from source again in each
# process (an .onnx load's reader modules: about 60 ms of a first load of 80, against 19 ms with bytecode)
BYTECODE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def first_worker(mode: str, root: str, path: str):
    """One load of `path` in this fresh process, after the runtime's import only: prints wall and CPU ms."""
    load = loader(mode, root)
    t0, c0 = time.perf_counter(), time.process_time()
    load(path)
    print(f"{(time.perf_counter() - t0) * 1e3:.4f} {(time.process_time() - c0) * 1e3:.4f}", flush=True)


def first_loads(args):
    """--first: each model's first load in fresh processes (the load a user's program pays once), alternating
    runtimes (and the --baseline tree) process by process; medians of --loads processes each."""
    trees = {"after": ROOT}
    if args.baseline:
        trees = {"before": Path(args.baseline), "after": ROOT}
    print_head(list(trees), " first load")
    for path in models(args.only):
        peer = "ort" if path.suffix == ".onnx" else "litert"
        runs = dict(trees, **{peer: ROOT})
        wall, cpu, error = {k: [] for k in runs}, {k: [] for k in runs}, None
        for rnd in range(args.loads + 1):
            for k, root in runs.items():
                mode = peer if k == peer else "edgeml"
                run = subprocess.run([sys.executable, __file__, "--first-worker", mode, str(root), str(path)],
                                     capture_output=True, text=True, cwd=str(root), env=BYTECODE_ENV)
                if run.returncode:
                    error = f"{k}: exit {run.returncode}"
                    continue
                if not rnd:         # round 0 warms the file cache and writes each tree's bytecode
                    continue
                a, b = run.stdout.split()[-2:]
                wall[k].append(float(a))
                cpu[k].append(float(b))
        if error:
            print(f"| {path.name} | {error} |", flush=True)
            continue
        print_row(path, peer, list(trees), wall, cpu)


def start(mode: str, root: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, __file__, "--worker", mode, str(root)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(root))
    if p.stdout.readline().strip() != "ready":
        raise SystemExit(f"the {mode} worker in {root} did not start")
    return p


def models(only) -> list:
    found = []
    for folder, pattern in ((SHARED / "mlperf_tiny", "*.tflite"), (SHARED / "public" / "tflite", "*.tflite"),
                            (Path.home() / ".cache" / "edgeml" / "bench_models", "*.tflite"),
                            (SHARED / "mlperf_tiny_onnx", "*.onnx"), (SHARED / "public" / "onnx", "*.onnx")):
        found += [p for p in sorted(folder.glob(pattern)) if "fp32" not in p.name and "float" not in p.name]
    return [p for p in found if not only or any(o in p.name for o in only)]


def paired_ratio(cpu: dict) -> float:
    """The median over rounds of after / before (CPU): the two loads of a round ran back to back, so a change in
    the machine's load between rounds, which moves both medians, leaves it alone."""
    return statistics.median(a / b for a, b in zip(cpu["after"], cpu["before"]) if b > 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="an older edgeml tree (extensions built in place) to time as 'before'")
    ap.add_argument("--loads", type=int, default=7, help="timed loads per runtime and model")
    ap.add_argument("--only", nargs="*", help="substrings of the model file names")
    ap.add_argument("--first", action="store_true",
                    help="time each model's first load in fresh processes instead")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--first-worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    if args.first_worker:
        return first_worker(*args.first_worker)
    if args.first:
        return first_loads(args)
    workers = {"after": start("edgeml", ROOT), "litert": start("litert", ROOT), "ort": start("ort", ROOT)}
    if args.baseline:
        workers["before"] = start("edgeml", Path(args.baseline))
    edgemls = ["before", "after"] if args.baseline else ["after"]
    print_head(edgemls, "", " CPU after / before, paired |" if args.baseline else "")
    for path in models(args.only):
        peer = "ort" if path.suffix == ".onnx" else "litert"
        names = edgemls + [peer]
        wall, cpu, error = {k: [] for k in names}, {k: [] for k in names}, None
        for rnd in range(args.loads + 1):
            # the edgeml trees swap places round by round, the peer last: each tree follows the other tree or the
            # peer equally often (with [b, a, p] / [p, a, b], 'after' never followed itself while 'before' did every
            # other round, and an A/A run of one tree against its copy read 3-6% slower as 'after')
            turn = rnd % len(edgemls)
            for k in edgemls[turn:] + edgemls[:turn] + [peer]:
                w = workers[k]
                w.stdin.write(f"{path}\n")
                w.stdin.flush()
                out = w.stdout.readline().strip()
                if out.startswith("ERR"):
                    error = f"{k}: {out[4:]}"
                elif rnd:            # round 0 warms the file cache and the imports
                    a, b = out.split()
                    wall[k].append(float(a))
                    cpu[k].append(float(b))
        if error:
            print(f"| {path.name} | {error} |")
            continue
        print_row(path, peer, edgemls, wall, cpu, f" {paired_ratio(cpu):.3f} |" if args.baseline else "")
    for p in workers.values():
        p.stdin.close()
        p.wait()


if __name__ == "__main__":
    main()
