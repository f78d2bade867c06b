#!/usr/bin/env python
"""`edgeml compile` against the Interpreter on the MLPerf Tiny models: time per invoke and RAM.

Each model is compiled to C (the target's kernels; x86-64: this CPU's level), built with the generated Makefile
(gcc, its default CFLAGS=-O3 unless --cflags), and its example program times RUNS invokes in C (median).  The
Interpreter's invoke() is timed in this process, one call at a time.  The two alternate in rounds so machine drift hits both;
the table gives the median of the round medians.  RAM: the generated program's arena + static data + its
invoke's deepest stack (gcc -fcallgraph-info) against the Interpreter's arena (TFLite Micro's arena beside).

    python benchmarks/bench_compiled.py                  # int8 models, markdown table
    python benchmarks/bench_compiled.py --float --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INT8_MODELS = ["ad01_int8", "kws_ref_model", "vww_96_int8", "pretrainedResnet_quant"]
FLOAT_MODELS = ["ad01_fp32", "kws_ref_model_float32", "vww_96_float"]


def interpreter_median_ns(it, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        it.invoke()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times)


def program_median_ns(program: list, input_file: Path, output_file: Path, runs: int) -> float:
    done = subprocess.run(program + [str(input_file), str(output_file), str(runs)], capture_output=True, text=True,
                          check=True)
    return float(re.search(r"median (\d+) ns", done.stdout).group(1))


def measure(name: str, args, work: Path) -> dict:
    import edgeml
    from edgeml.codegen import compile_model
    from edgeml.codegen.report import flash_ram

    path = ROOT / "tests" / "models" / "mlperf_tiny" / f"{name}.tflite"
    out = work / name
    compiled = compile_model(path, out, target=args.target, name="net")
    subprocess.run(["make", "-s", "-C", str(out), f"CFLAGS={args.cflags}"], check=True, capture_output=True)
    program = [str(out / "net_main")]
    it = edgeml.Interpreter(path)
    detail = it.get_input_details()[0]
    rng = np.random.default_rng(0)
    shape = tuple(detail["shape"])
    x = rng.integers(-128, 128, size=shape).astype(detail["dtype"]) if detail["dtype"] != np.float32 \
        else rng.standard_normal(shape).astype(np.float32)
    (out / "in.bin").write_bytes(x.tobytes())
    it.set_input(x)
    it.invoke()
    subprocess.run(program + [str(out / "in.bin"), str(out / "out.bin")], check=True)
    same = (out / "out.bin").read_bytes() == it.get_output().tobytes()
    t0 = time.perf_counter()
    it.invoke()
    runs = max(20, min(20000, int(args.round_secs / max(time.perf_counter() - t0, 1e-7))))
    c_times, py_times = [], []
    for _ in range(args.rounds):
        c_times.append(program_median_ns(program, out / "in.bin", out / "out.bin", runs))
        py_times.append(interpreter_median_ns(it, runs))
    sizes = flash_ram(compiled, path)
    return {"model": name, "isa": compiled.isa, "identical_output": same, "runs_per_round": runs,
            "compiled_us": statistics.median(c_times) / 1e3, "interpreter_us": statistics.median(py_times) / 1e3,
            "compiled_arena_bytes": compiled.arena_bytes, "compiled_stack_bytes": sizes["ram"]["stack_bytes"],
            "compiled_ram_bytes": sizes["ram"]["total_bytes"], "compiled_flash_bytes": sizes["flash"]["total_bytes"],
            "interpreter_arena_bytes": it.arena_bytes,
            "tflm_arena_bytes": (sizes["tflite_micro"] or {}).get("arena_bytes")}


def table(rows: list) -> str:
    lines = ["| model | compiled C | Interpreter.invoke() | C / Interpreter | C RAM (arena + static + stack) | "
             "Interpreter arena | TFLite Micro arena | C flash |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['compiled_us']:.1f} us | {r['interpreter_us']:.1f} us | "
                     f"{r['compiled_us'] / r['interpreter_us']:.3f} | {r['compiled_ram_bytes']:,} "
                     f"({r['compiled_arena_bytes']:,} + stack {r['compiled_stack_bytes']}) | "
                     f"{r['interpreter_arena_bytes']:,} | {r['tflm_arena_bytes'] or '-'} | "
                     f"{r['compiled_flash_bytes']:,} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--float", action="store_true", help="also the float32 models")
    p.add_argument("--target", default="x86-64", choices=["x86-64", "generic"])
    p.add_argument("--cflags", default="-O3")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--round-secs", type=float, default=0.3, help="time of each side per round (default 0.3 s)")
    p.add_argument("--json", help="write the rows as JSON")
    args = p.parse_args()
    names = INT8_MODELS + (FLOAT_MODELS if args.float else [])
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(n, args, Path(tmp)) for n in names]
    print(table(rows))
    if any(not r["identical_output"] for r in rows):
        print("outputs differ for: " + ", ".join(r["model"] for r in rows if not r["identical_output"]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
