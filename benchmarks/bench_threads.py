#!/usr/bin/env python
"""Threads and one model: (1) two threads hammering one shared Interpreter with run() for a while, every output
checked against the single-threaded one; (2) N threads each with a clone() of one Interpreter (shared packed
weights), outputs checked, throughput and resident memory per extra thread reported.

    python benchmarks/bench_threads.py [--seconds 60] [--model tests/models/mlperf_tiny/kws_ref_model.tflite]
"""
from __future__ import annotations

import argparse
import resource
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def inputs_for(it, rng, batches):
    d = it.get_input_details()[0]
    shape = tuple(int(v) for v in d["shape"][1:])
    if np.dtype(d["dtype"]).kind == "f":
        return [rng.uniform(-1, 1, (b,) + shape).astype(np.float32) for b in batches]
    return [rng.integers(-128, 128, (b,) + shape).astype(d["dtype"]) for b in batches]


def hammer_shared(edgeml, model: str, seconds: float) -> dict:
    it = edgeml.Interpreter(model)
    xs = inputs_for(it, np.random.default_rng(0), (1, 1, 2, 1, 3))
    want = [it.run(x) for x in xs]
    counts = {"runs": 0, "wrong": 0, "errors": 0}
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def work(seed):
        r = np.random.default_rng(seed)
        runs = wrong = errors = 0
        while time.perf_counter() < stop:
            k = int(r.integers(len(xs)))
            try:
                wrong += not np.array_equal(it.run(xs[k]), want[k])
            except Exception:  # noqa: BLE001 - counted, not raised: the figure is the point
                errors += 1
            runs += 1
        with lock:
            counts["runs"] += runs
            counts["wrong"] += wrong
            counts["errors"] += errors
    threads = [threading.Thread(target=work, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def clones(edgeml, model: str, n_threads: int, seconds: float) -> dict:
    base_rss = rss_mb()
    it = edgeml.Interpreter(model)
    one_rss = rss_mb()
    xs = inputs_for(it, np.random.default_rng(1), (1,) * 8)
    want = [it.run(x) for x in xs]
    twins = [it] + [it.clone() for _ in range(n_threads - 1)]
    all_rss = rss_mb()
    done = [0] * n_threads
    wrong = [0] * n_threads
    stop = time.perf_counter() + seconds

    def work(k):
        twin = twins[k]
        while time.perf_counter() < stop:
            j = done[k] % len(xs)
            wrong[k] += not np.array_equal(twin.run(xs[j]), want[j])
            done[k] += 1
    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"threads": n_threads, "runs": sum(done), "wrong": sum(wrong), "runs_per_s": sum(done) / seconds,
            "model_rss_mb": one_rss - base_rss, "rss_per_extra_thread_mb": (all_rss - one_rss) / max(n_threads - 1, 1),
            "shared_weight_bytes": it.shared_weight_bytes, "arena_bytes": it.arena_bytes}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "tests" / "models" / "mlperf_tiny" / "kws_ref_model.tflite"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import edgeml
    shared = hammer_shared(edgeml, args.model, args.seconds)
    print(f"shared Interpreter, 2 threads, {args.seconds:.0f} s: {shared['runs']} run() calls, "
          f"{shared['wrong']} wrong outputs, {shared['errors']} exceptions")
    for n in (1, args.threads):
        c = clones(edgeml, args.model, n, args.seconds / 4)
        print(f"{n} thread(s) with clones: {c['runs']} runs ({c['runs_per_s']:.0f}/s), {c['wrong']} wrong; model "
              f"RSS {c['model_rss_mb']:.1f} MB, +{c['rss_per_extra_thread_mb']:.2f} MB per extra thread "
              f"(arena {c['arena_bytes']} B; shared weights {c['shared_weight_bytes']} B)")


if __name__ == "__main__":
    main()
