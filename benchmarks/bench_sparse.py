#!/usr/bin/env python
"""Crossover of the block-sparse int8 kernels (em_sparse.h) against the dense ones, per layer shape and density.

    python benchmarks/bench_sparse.py [--isa avx512vnni,avx2] [--rounds 15] [--only SUBSTR]

One-op models of ResNet-8 / MobileNetV1 / FC layers whose int8 weights keep a random fraction of their 16x4 blocks;
for each (layer, density) the plans with sparse="on" and sparse="off" run alternately in one process (one thread,
batch 1, round robin, medians of the thread's CPU time: on a shared machine wall time mostly measures the other
processes), one subprocess per ISA path (EDGEML_ISA).  Prints dense / sparse time ratios; the
highest density where the sparse plan still wins is the threshold in edgeml/runtime/ops/sparse_gemm.py MAX_DENSITY.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DENSITIES = (0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0)
# name: ("conv", input HWC, out channels, kernel, stride, padding 0 SAME / 1 VALID) or ("fc", rows, depth, units)
LAYERS = {
    "resnet8_3x3_32x32x16": ("conv", (32, 32, 16), 16, 3, 1, 0),
    "resnet8_3x3_16x16x32": ("conv", (16, 16, 32), 32, 3, 1, 0),
    "resnet8_3x3_8x8x64": ("conv", (8, 8, 64), 64, 3, 1, 0),
    "resnet8_3x3_s2_32x32x16": ("conv", (32, 32, 16), 32, 3, 2, 0),
    "mnv1_1x1_24x24x32_64": ("conv", (24, 24, 32), 64, 1, 1, 0),
    "mnv1_1x1_12x12x64_128": ("conv", (12, 12, 64), 128, 1, 1, 0),
    "mnv1_1x1_6x6x128_256": ("conv", (6, 6, 128), 256, 1, 1, 0),
    "mnv1_1x1_3x3x256_256": ("conv", (3, 3, 256), 256, 1, 1, 0),
    "fc_1x1024_256": ("fc", 1, 1024, 256),
    "fc_1x256_64": ("fc", 1, 256, 64),
    "fc_8x512_128": ("fc", 8, 512, 128),
}


def layer_graph(spec, density: float, rng):
    from edgeml.ir import Graph, Op, Quantization, Tensor

    def tensor(idx, shape, dtype, scale=None, data=None):
        q = None if scale is None else Quantization(np.atleast_1d(np.asarray(scale, np.float64)),
                                                    np.zeros(np.size(scale), np.int64), 0)
        return Tensor(idx, f"t{idx}", tuple(shape), np.dtype(dtype), q, data)
    if spec[0] == "conv":
        _, (h, w, c), oc, k, s, pad = spec
        xshape, wshape, n, K = (1, h, w, c), (oc, k, k, c), oc, k * k * c
        op_type, opts = "CONV_2D", {"padding": pad, "stride_h": s, "stride_w": s, "fused_activation_function": 1}
    else:
        _, rows, K, n = spec
        xshape, wshape = (rows, K), (n, K)
        op_type, opts = "FULLY_CONNECTED", {"fused_activation_function": 0}
    w2 = rng.integers(-127, 128, size=(n, K)).astype(np.int8)
    keep = rng.random((-(-n // 16), -(-K // 4))) < density
    w2 = np.where(np.repeat(np.repeat(keep, 16, 0), 4, 1)[:n, :K], w2, 0).astype(np.int8)
    ws = np.full(n, 0.01)
    ts = [tensor(0, xshape, np.int8, 0.05), tensor(1, wshape, np.int8, ws, w2.reshape(wshape)),
          tensor(2, (n,), np.int32, 0.05 * ws, rng.integers(-500, 500, n).astype(np.int32)),
          tensor(3, (), np.int8, 0.5)]
    return Graph(ts, [Op(0, op_type, 1, [0, 1, 2], [3], opts)], [0], [3])


def time_pair(graph, rounds: int, rng) -> tuple:
    """Median microseconds of the sparse and the dense plan, alternating; and whether their outputs agree."""
    from edgeml.runtime.compile import compile_graph
    plans = [compile_graph(graph, {}, 0, 1, sparse=mode) for mode in ("on", "off")]
    x = rng.integers(-128, 128, size=plans[0].view(graph.inputs[0]).shape).astype(np.int8)
    for p in plans:
        p.view(graph.inputs[0])[...] = x
        p.engine.invoke()
    same = np.array_equal(plans[0].view(graph.outputs[0]), plans[1].view(graph.outputs[0]))
    t0 = time.perf_counter()
    plans[1].engine.invoke()
    reps = max(1, min(2000, int(0.004 / max(time.perf_counter() - t0, 1e-7))))
    times = ([], [])
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for i in order:
            inv = plans[i].engine.invoke
            t0 = time.thread_time()
            for _ in range(reps):
                inv()
            times[i].append((time.thread_time() - t0) / reps * 1e6)
    return statistics.median(times[0]), statistics.median(times[1]), same


def child(rounds: int, only: str):
    from edgeml.runtime.kernels import CONFIG
    print(f"ISA path {CONFIG.isa}; dense/sparse time ratio per block density (dense time in us)")
    print(f"{'layer':28s} {'dense us':>9s} " + " ".join(f"{d:>5.2f}" for d in DENSITIES) + "  crossover")
    for name, spec in LAYERS.items():
        if only and only not in name:
            continue
        rng = np.random.default_rng(0)
        ratios, dense_us = [], []
        for d in DENSITIES:
            s_us, d_us, same = time_pair(layer_graph(spec, d, rng), rounds, rng)
            assert same, f"{name} density {d}: sparse and dense outputs differ"
            ratios.append(d_us / s_us)
            dense_us.append(d_us)
        wins = [d for d, r in zip(DENSITIES, ratios) if r >= 1.0]
        print(f"{name:28s} {statistics.median(dense_us):9.1f} " + " ".join(f"{r:5.2f}" for r in ratios)
              + f"  {max(wins) if wins else 0:.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isa", default="avx512vnni,avx2")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", default="")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.rounds, a.only)
        return
    for isa in a.isa.split(","):
        subprocess.run([sys.executable, __file__, "--child", "--rounds", str(a.rounds), "--only", a.only],
                       env=dict(os.environ, EDGEML_ISA=isa), check=True)


if __name__ == "__main__":
    main()
