#!/usr/bin/env python
"""The Python call path: what run(), set_input() and get_output() cost over the bare invoke() (issue 15).

Per model, every call form is timed as a user's loop of `--batch` calls (`for _ in range(n): it.run(x)`), the
forms alternating batch by batch (the order reversed every other round) in one process, for `--rounds` rounds;
the table gives each form's median per call and its excess over the bare invoke() of the same rounds.  Thread CPU
time by default (other processes on the machine do not count), --wall for perf_counter_ns.

Models: three tiny ones built here (one int8 FULLY_CONNECTED 4 -> 3, the same with uint8 input and output, and
one with two int8 inputs and two outputs: FULLY_CONNECTED and ADD), where the call path is most of the time, and
the MLPerf Tiny ad01_int8 / kws_ref_model.

    python benchmarks/bench_call.py [--rounds 200] [--batch 200] [--only fc_int8 ad01] [--wall]
    EDGEML_ROOT=/path/to/other/checkout python benchmarks/bench_call.py     # that checkout's edgeml, same forms
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, os.environ.get("EDGEML_ROOT", str(ROOT)))   # another checkout's edgeml, for a before / after
MODELS = ROOT / "tests" / "models" / "mlperf_tiny"

from call_models import tiny_model  # noqa: E402 - tests/ is on the path from here on


def call_forms(it) -> dict:
    """name -> f(n): n calls of one form, written as a user would."""
    ins = it.get_input_details()
    xs = [np.zeros(tuple(d["shape"]), d["dtype"]) for d in ins]
    names = [d["name"] for d in ins]
    inv, si, go, run = it.invoke, it.set_input, it.get_output, it.run
    for i, x in enumerate(xs):
        si(x, i)
    inv()
    x = xs[0]
    forms = {}

    def invoke(n):
        for _ in range(n):
            inv()
    forms["invoke"] = invoke
    if len(xs) == 1:
        def set_invoke(n):
            for _ in range(n):
                si(x)
                inv()

        def invoke_get(n):
            for _ in range(n):
                inv()
                go()

        def invoke_view(n):
            for _ in range(n):
                inv()
                go(0, copy=False)

        def set_invoke_get(n):
            for _ in range(n):
                si(x)
                inv()
                y = go()        # noqa: F841 - held across the next call, as a loop that uses y does

        def run_array(n):
            for _ in range(n):
                y = run(x)      # noqa: F841
        forms.update({"set_input+invoke": set_invoke, "invoke+get_output": invoke_get,
                      "invoke+get_output(copy=False)": invoke_view, "set_input+invoke+get_output": set_invoke_get,
                      f"run({x.dtype})": run_array})
        if ins[0]["dtype"] == np.int8:
            xf = np.zeros(x.shape, np.float32)

            def run_float(n):
                for _ in range(n):
                    y = run(xf)     # noqa: F841
            forms["run(float32)"] = run_float
    elif len(xs) == 2 and len(it.get_output_details()) == 2:
        x1 = xs[1]

        def set_both_get_both(n):
            for _ in range(n):
                si(x, 0)
                si(x1, 1)
                inv()
                y0, y1 = go(0), go(1)       # noqa: F841
        forms["set_input x2+invoke+get_output x2"] = set_both_get_both
    listed, named = list(xs), dict(zip(names, xs))

    def run_list(n):
        for _ in range(n):
            y = run(listed)     # noqa: F841

    def run_dict(n):
        for _ in range(n):
            y = run(named)      # noqa: F841
    forms["run([arrays])"] = run_list
    forms["run({name: array})"] = run_dict
    return forms


def measure(it, rounds: int, batch: int, wall: bool = False) -> dict:
    """Form -> median ns per call, the forms alternating batch by batch."""
    clock = time.perf_counter_ns if wall else time.thread_time_ns
    forms = call_forms(it)
    times = {k: [] for k in forms}
    items = list(forms.items())
    for f in forms.values():
        f(batch)                # warm up
    for r in range(rounds):
        for name, f in (items if r % 2 == 0 else items[::-1]):
            t0 = clock()
            f(batch)
            times[name].append((clock() - t0) / batch)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--only", nargs="*", help="models whose name contains one of these")
    ap.add_argument("--wall", action="store_true", help="perf_counter_ns instead of thread CPU time")
    args = ap.parse_args(argv)
    import edgeml
    models = {k: (lambda k=k: tiny_model(k)) for k in ("fc_int8", "fc_uint8", "two_io")}
    for name in ("ad01_int8", "kws_ref_model"):
        models[name] = (lambda name=name: str(MODELS / f"{name}.tflite"))
    for name, make in models.items():
        if args.only and not any(o in name for o in args.only):
            continue
        it = edgeml.Interpreter(make())
        m = measure(it, args.rounds, args.batch, args.wall)
        base = m["invoke"]
        print(f"\n{name} ({'wall' if args.wall else 'thread CPU'} ns per call, median of {args.rounds} batches "
              f"of {args.batch})\n\n| form | ns | over invoke() |\n|---|---:|---:|")
        for form, ns in m.items():
            print(f"| {form} | {ns:.0f} | {ns - base:+.0f} |")


if __name__ == "__main__":
    main()
