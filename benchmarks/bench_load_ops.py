"""Each op type's prepare time at load, per op (issue 15): every model given (files or folders of .tflite) is
loaded --loads times under `edgeml/runtime/load_profile.py`'s collect with this thread's CPU time; the table gives,
per op type, the median over loads of (prepare seconds / ops of that type), in microseconds.

    python benchmarks/bench_load_ops.py [--loads 40] PATH...    (default: the MLPerf Tiny and public models)"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "models"


def model_paths(items: list) -> list:
    paths = []
    for item in items:
        p = Path(item)
        paths.extend(sorted(p.glob("*.tflite")) if p.is_dir() else [p])
    return paths


def per_op_us(paths: list, loads: int) -> dict:
    """{op type: (median us per op, ops loaded per round, models)}."""
    import edgeml
    from edgeml.runtime.load_profile import collect
    samples, counts, models = {}, {}, {}
    for path in paths:
        try:
            edgeml.Interpreter(str(path))
        except Exception as exc:        # a model this build cannot load: reported, not fatal
            print(f"- {path.name}: {type(exc).__name__}", file=sys.stderr)
            continue
        for _ in range(loads):
            with collect(time.thread_time) as stages:
                edgeml.Interpreter(str(path))
            for name, (seconds, calls) in stages.items():
                if name.startswith("prepare "):
                    samples.setdefault((name[8:], path), []).append(seconds / calls * 1e6)
                    counts[(name[8:], path)] = calls
    result = {}
    for (op, path), us in samples.items():
        result.setdefault(op, []).append((statistics.median(us), counts[(op, path)], path.stem))
    return {op: (sum(u * c for u, c, _ in v) / sum(c for _, c, _ in v), sum(c for _, c, _ in v),
                 sorted({m for _, _, m in v})) for op, v in result.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=[SHARED / "mlperf_tiny", SHARED / "public" / "tflite"])
    ap.add_argument("--loads", type=int, default=40)
    args = ap.parse_args(argv)
    table = per_op_us(model_paths(args.paths), args.loads)
    print("| op type | us per op (thread CPU, median of loads) | ops | models |\n|---|---|---|---|")
    for op, (us, n, models) in sorted(table.items(), key=lambda kv: -kv[1][0]):
        print(f"| {op} | {us:.1f} | {n} | {', '.join(models[:3])}{' ...' if len(models) > 3 else ''} |")


if __name__ == "__main__":
    main()
