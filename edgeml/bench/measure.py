"""The measurements behind `edgeml bench`: model facts, inputs, interleaved timing, per-op profile, agreement."""
from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from edgeml.cpu import onnxruntime_int8_saturates
from edgeml.errors import InputError, ModelFormatError
from edgeml.bench.runners import (PEERS, EdgeMLRunner, PeerAbsent, adapt_inputs, agreement, make_peer,
                                  one_line)

# int32 constants are shape / axis / padding operands except at these (op type, input position): biases
BIAS_INPUTS = {("CONV_2D", 2), ("DEPTHWISE_CONV_2D", 2), ("FULLY_CONNECTED", 2), ("TRANSPOSE_CONV", 3)}


@dataclass
class BenchOptions:
    model: str
    num_runs: int = 50
    warmup_runs: int = 1
    min_secs: float = 1.0
    max_secs: float = 150.0
    num_threads: int = 1
    enable_op_profiling: bool = False
    inputs: list = field(default_factory=list)       # .npy paths, one per model input
    seed: int = 0
    compare: list = field(default_factory=list)      # peer names
    tflite: Optional[str] = None
    onnx: Optional[str] = None
    sparse: str = "auto"                             # Interpreter(sparse=): "off" forces the dense kernels


def peak_rss_bytes() -> int:
    """The process's peak resident set size so far (a high-water mark, never decreasing)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024     # Linux reports KiB


# ----------------------------------------------------------------------------------------------------
# Facts read from the compiled plan
# ----------------------------------------------------------------------------------------------------

def param_tensors(graph) -> list:
    """Constant tensors that hold weights: every constant an op reads, except integer shape / axis / padding
    operands (32/64-bit integer constants other than the bias inputs of conv-like ops).  Each counted once."""
    chosen = {}
    for op in graph.ops:
        for pos, t in enumerate(op.inputs):
            if t < 0 or t in chosen:
                continue
            tensor = graph.tensors[t]
            if tensor.data is None:
                continue
            wide_int = tensor.dtype.kind in "iu" and tensor.dtype.itemsize >= 4
            if wide_int and (op.type, pos) not in BIAS_INPUTS:
                continue
            chosen[t] = tensor
    return [chosen[t] for t in sorted(chosen)]


def model_facts(plan) -> dict:
    params = param_tensors(plan.graph)
    return {
        "params": int(sum(int(np.prod(t.shape, dtype=np.int64)) for t in params)),
        "param_bytes": int(sum(t.nbytes for t in params)),
        "macs": int(sum(s.macs for s in plan.steps)),
        "arena_bytes": int(plan.arena_bytes),
        "n_ops": len(plan.graph.ops),
        "n_steps": len(plan.steps),
    }


# ----------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------

def random_inputs(specs: list, seed: int) -> list:
    """Seeded data over each input's range: the whole integer range for integer inputs, [-1, 1) for float."""
    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        if s.dtype.kind in "iu":
            info = np.iinfo(s.dtype)
            out.append(rng.integers(info.min, int(info.max) + 1, size=s.shape, dtype=s.dtype))
        else:
            out.append(rng.uniform(-1.0, 1.0, size=s.shape).astype(s.dtype))
    return out


def read_npy(path: str) -> np.ndarray:
    """One array from a .npy file (never unpickled); anything else is an InputError naming the file."""
    if not os.path.isfile(path):
        raise InputError(f"input file '{path}' does not exist")
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"input file '{path}' is not a readable .npy array ({one_line(exc)})") from exc
    if not isinstance(a, np.ndarray):
        raise InputError(f"input file '{path}' holds several arrays; give one .npy file per input")
    return a


def load_inputs(paths: list, specs: list) -> list:
    if len(paths) != len(specs):
        raise InputError(f"the model has {len(specs)} input(s) but {len(paths)} --input file(s) were given")
    out = []
    for k, (path, spec) in enumerate(zip(paths, specs)):
        a = read_npy(path)
        if a.shape != tuple(spec.shape):
            raise InputError(f"input file '{path}' has shape {list(a.shape)} but input {k} of the model takes "
                             f"{list(spec.shape)}")
        if a.dtype != spec.dtype:
            if spec.dtype.kind in "iu" and a.dtype.kind == "f" and spec.scale:
                info = np.iinfo(spec.dtype)      # real values given for a quantized input
                a = np.clip(np.round(a.astype(np.float64) / spec.scale) + spec.zero_point, info.min, info.max)
                a = a.astype(spec.dtype)
            elif spec.dtype.kind == "f" and a.dtype.kind in "fiu":
                a = a.astype(spec.dtype)
            else:
                raise InputError(f"input file '{path}' has type {a.dtype} but input {k} of the model takes "
                                 f"{spec.dtype}")
        out.append(np.ascontiguousarray(a))
    return out


# ----------------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------------

def latency_stats(ns: list) -> dict:
    us = np.asarray(ns, dtype=np.float64) / 1e3
    return {"min": float(us.min()), "median": float(np.median(us)), "mean": float(us.mean()),
            "p90": float(np.percentile(us, 90)), "p99": float(np.percentile(us, 99)), "max": float(us.max()),
            "std": float(us.std())}


# ----------------------------------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------------------------------

def _timed(fn) -> int:
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


def run_bench(opts: BenchOptions, progress: Optional[Callable[[float, int], None]] = None,
              notes: Optional[list] = None) -> dict:
    """Measures edgeml (and the peers in opts.compare, interleaved run by run) and returns the result dict
    that --json writes.  progress(elapsed seconds, rounds done) is called during the timed loop."""
    notes = [] if notes is None else notes
    path = opts.model
    if not os.path.exists(path):
        raise ModelFormatError(f"model file '{path}' does not exist")
    if not os.path.isfile(path):
        raise ModelFormatError(f"'{path}' is not a model file")
    rss_before = peak_rss_bytes()
    t0 = time.perf_counter_ns()
    edge = EdgeMLRunner(path, opts.num_threads, sparse=opts.sparse)
    load_us = (time.perf_counter_ns() - t0) / 1e3
    if opts.num_threads > 1 and edge.threads_used == 1:
        notes.append(f"edgeml ran one thread (this version of edgeml.Interpreter has no num_threads); "
                     f"--num_threads {opts.num_threads} applies to the peers")
    plan = edge.it.plan
    facts = model_facts(plan)

    arrays = load_inputs(opts.inputs, edge.inputs) if opts.inputs else random_inputs(edge.inputs, opts.seed)
    edge.prepare(arrays)
    first_us = _timed(edge.invoke) / 1e3
    for _ in range(opts.warmup_runs):
        edge.invoke()
    rss_after = peak_rss_bytes()

    # peers, each fed the same input values; one that cannot take part is listed with the reason
    runners = [edge]
    absent, input_notes = [], {}
    for name in opts.compare:
        try:
            peer = make_peer(name, path, opts.num_threads, opts.tflite, opts.onnx, edge.inputs)
            peer_arrays, note = adapt_inputs(arrays, edge.inputs, peer.inputs)
            peer.prepare(peer_arrays)
            peer.invoke()
            for _ in range(opts.warmup_runs):
                peer.invoke()
        except PeerAbsent as exc:
            absent.append({"runtime": name, "label": PEERS[name], "reason": str(exc)})
            continue
        except Exception as exc:  # the peer failed on this model: reported, not fatal
            absent.append({"runtime": name, "label": PEERS[name], "reason": f"it failed to run: {one_line(exc)}"})
            continue
        peer.arrays = peer_arrays
        input_notes[name] = note
        runners.append(peer)

    # round-robin: one run of every runtime per round, direction alternating, so drift hits all alike
    times = [[] for _ in runners]
    order = list(range(len(runners)))
    start = time.perf_counter()
    rounds = 0
    invokes = [r.invoke for r in runners]
    clock = time.perf_counter_ns
    while True:
        for k in (order if rounds % 2 == 0 else order[::-1]):
            fn = invokes[k]
            t = clock()
            fn()
            times[k].append(clock() - t)
        rounds += 1
        elapsed = time.perf_counter() - start
        if progress is not None:
            progress(elapsed, rounds)
        if elapsed >= opts.max_secs or (rounds >= opts.num_runs and elapsed >= opts.min_secs):
            break

    # outputs on the same inputs, after timing
    edge.prepare(arrays)
    edge.invoke()
    ours = edge.outputs()
    stats = latency_stats(times[0])
    result = {
        "model": os.path.abspath(path),
        "file_bytes": os.path.getsize(path),
        **facts,
        "peak_rss_bytes": rss_after,
        "peak_rss_before_load_bytes": rss_before,
        "load_us": load_us,
        "first_us": first_us,
        "num_runs": len(times[0]),
        "warmup_runs": opts.warmup_runs,
        "num_threads": edge.threads_used,
        "latency_us": stats,
        "inferences_per_s": 1e6 / stats["mean"] if stats["mean"] > 0 else None,
        "input_source": "file" if opts.inputs else f"random, seed {opts.seed}",
    }
    result["runs_us"] = {"edgeml": [v / 1e3 for v in times[0]]}

    compare = []
    for k, peer in enumerate(runners[1:], start=1):
        peer.prepare(peer.arrays)
        peer.invoke()
        agree = agreement(ours, edge.output_specs, peer.outputs(), peer.output_specs)
        med = float(np.median(times[k])) / 1e3
        row = {"runtime": peer.name, "label": peer.label, "model_file": os.path.abspath(peer.path),
               "median_us": med, "ratio_to_edgeml": med / stats["median"] if stats["median"] > 0 else None,
               "num_runs": len(times[k]), "num_threads": peer.threads_used, "latency_us": latency_stats(times[k]),
               **agree}
        notes_here = [input_notes[peer.name]] if input_notes.get(peer.name) else []
        if peer.name == "onnxruntime" and not agree["bit_exact"] and onnxruntime_int8_saturates():
            notes_here.append("on this CPU (x86-64 without VNNI) onnxruntime's uint8 x int8 GEMMs saturate each pair "
                              "of products at int16, so an int8 model's outputs can differ by its overflow; edgeml "
                              "computes the exact sums, as onnxruntime does with VNNI and on arm64")
        if notes_here:
            row["note"] = "; ".join(notes_here)
        compare.append(row)
        result["runs_us"][peer.name] = [v / 1e3 for v in times[k]]
    result["compare"] = compare        # empty without --compare, so scripts can rely on the keys
    result["absent"] = absent

    if opts.enable_op_profiling:
        n_prof = min(len(times[0]), max(opts.num_runs, 1000))
        result.update(profile(plan, n_prof))
    return result


def profile(plan, runs: int) -> dict:
    """Per-op times over `runs` profiled invokes (after the timed ones, so the timer calls do not touch the
    latency figures), each followed by one unprofiled invoke.  Each op type's time is the median over runs of
    its per-run total; `profile.run_us` is the median wall time of the same profiled invokes, measured around
    the engine call, and `profile.plain_us` that of the unprofiled ones between them."""
    engine = plan.engine
    steps = plan.steps
    per_step = np.zeros((runs, len(steps)), dtype=np.int64)
    wall = np.zeros(runs, dtype=np.int64)
    plain = np.zeros(runs, dtype=np.int64)
    clock = time.perf_counter_ns
    invoke, invoke_profiled = engine.invoke, engine.invoke_profiled
    for r in range(runs):
        t = clock()
        per_step[r] = invoke_profiled()
        wall[r] = clock() - t
        t = clock()         # an unprofiled run alternating with the profiled ones: the same machine state
        invoke()
        plain[r] = clock() - t
    types = {}
    for k, s in enumerate(steps):
        row = types.setdefault(s.op.type, {"op": s.op.type, "steps": [], "op_indices": set(), "macs": 0})
        row["steps"].append(k)
        row["op_indices"].add(s.op.index)
        row["macs"] += int(s.macs)
    ops = []
    for row in types.values():
        us = float(np.median(per_step[:, row["steps"]].sum(axis=1))) / 1e3
        ops.append({"op": row["op"], "count": len(row["op_indices"]), "us": us, "macs": row["macs"]})
    total = sum(o["us"] for o in ops)
    for o in ops:
        o["percent"] = 100.0 * o["us"] / total if total > 0 else 0.0
        o["gmac_per_s"] = o["macs"] / (o["us"] * 1e3) if o["macs"] and o["us"] > 0 else None
    ops.sort(key=lambda o: -o["us"])
    medians = np.median(per_step, axis=0) / 1e3
    nodes = [{"step": k, "op_index": s.op.index, "op": s.op.type, "kernel": s.kernel, "us": float(medians[k]),
              "macs": int(s.macs)} for k, s in enumerate(steps)]
    nodes.sort(key=lambda n: -n["us"])
    run_us = float(np.median(wall)) / 1e3
    return {"ops": ops, "nodes": nodes,
            "profile": {"runs": runs, "ops_sum_us": total, "run_us": run_us, "overhead_us": run_us - total,
                        "plain_us": float(np.median(plain)) / 1e3,
                        "what": "ops[].us: median over profiled runs of the op type's per-run total; run_us: "
                                "median wall time of the same runs around the engine call; overhead_us: the "
                                "part outside the kernels (call, timers, between steps); plain_us: median of "
                                "unprofiled runs alternating with the profiled ones"}}


__all__ = ["BenchOptions", "run_bench", "model_facts", "param_tensors", "peak_rss_bytes"]
