#!/usr/bin/env python
"""End-to-end speed of block-pruned int8 models with edgeml's sparse kernels on and off, beside LiteRT+XNNPACK.

    python benchmarks/bench_sparse_models.py [--models resnet8,mobilenet_v1] [--sparsity 0.5,0.75,0.9] [--layers]
    python benchmarks/bench_sparse_models.py --files OUT1/model_int8.tflite,...   (e.g. `edgeml train` outputs)
    python benchmarks/bench_sparse_models.py --models mobilenet_v1 --alpha 1.0 [--size 96]

Issue 20's table used `edgeml train` models on digits upsampled to RGB (an .npz of x [N, S, S, 3], y): resnet8 at
32x32 (600 samples, --epochs 3 --finetune-epochs 3) and mobilenet_v1 --alpha 1.0 at 96x96 (300 samples, --epochs 1
--finetune-epochs 2), each with --prune 0.5 / 0.75 / 0.9 (speed does not depend on how well they learned).

The zoo's resnet8 (32x32x3) and mobilenet_v1 (alpha 0.25, 96x96x3) with their initial weights, every Conv2D /
Dense kernel pruned in blocks of 16 output x 4 input channels (per kernel tap; the lowest-L1 blocks zeroed, the
given fraction of each layer), converted to int8 by TensorFlow's converter (random representative data; the head without its softmax).  Per
model: edgeml sparse="auto", sparse="off" and LiteRT (XNNPACK, one thread) alternate run by run in one process;
medians of each run's thread CPU time (the machine may be shared); outputs of sparse on / off and of LiteRT's
reference kernels are checked equal.  --layers adds each CONV_2D / FULLY_CONNECTED step's time, dense / sparse.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = {"resnet8": (32, 32, 3), "mobilenet_v1": (96, 96, 3)}
OUT = Path(os.environ.get("EDGEML_SPARSE_BENCH_DIR", "/tmp/edgeml_sparse_bench"))


def prune_blocks(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """Keras kernel [..., in, out] with the lowest-L1 fraction `sparsity` of its 16(out) x 4(in) blocks zeroed,
    separately at each kernel tap (the blocks edgeml's sparse kernels skip)."""
    *taps, cin, cout = kernel.shape
    t = int(np.prod(taps)) if taps else 1
    w = kernel.reshape(t, cin, cout)
    gi, go = -(-cin // 4), -(-cout // 16)
    padded = np.zeros((t, gi * 4, go * 16), w.dtype)
    padded[:, :cin, :cout] = w
    norms = np.abs(padded).reshape(t, gi, 4, go, 16).sum(axis=(2, 4))
    cut = int(round(sparsity * norms.size))
    keep = np.ones(norms.size, bool)
    keep[np.argsort(norms, axis=None, kind="stable")[:cut]] = False
    mask = np.repeat(np.repeat(keep.reshape(norms.shape), 4, 1), 16, 2)[:, :cin, :cout]
    return (w * mask).reshape(kernel.shape)


def make_model(name: str, sparsity: float, shape: tuple = None, alpha: float = 0.25) -> Path:
    shape = shape or SHAPES[name]
    tag = "" if (shape == SHAPES[name] and alpha == 0.25) else f"_{shape[0]}_a{alpha:g}"
    path = OUT / f"{name}{tag}_{int(round(sparsity * 100))}.tflite"
    if path.exists():
        return path
    import tensorflow as tf
    from edgeml.train.zoo import build_model
    model = build_model(name, shape, 10, seed=0, alpha=alpha)
    import tf_keras
    model.layers[-1].activation = tf_keras.activations.linear   # untrained logits are too flat for an int8 SOFTMAX
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "Dense") and sparsity > 0:
            weights = layer.get_weights()
            layer.set_weights([prune_blocks(weights[0], sparsity)] + weights[1:])
    rng = np.random.default_rng(1)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.standard_normal((1,) + shape).astype(np.float32)]
                                                for _ in range(32))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())
    return path


def cpu_us(fn, reps: int) -> float:
    t0 = time.thread_time()
    for _ in range(reps):
        fn()
    return (time.thread_time() - t0) / reps * 1e6


def measure(path: Path, rounds: int, layers: bool) -> dict:
    from ai_edge_litert import interpreter as lit
    from edgeml import Interpreter
    auto, off = Interpreter(str(path), sparse="auto"), Interpreter(str(path), sparse="off")
    xnn = lit.Interpreter(model_path=str(path), num_threads=1)
    ref = lit.Interpreter(model_path=str(path), experimental_op_resolver_type=lit.OpResolverType.BUILTIN_REF)
    for r in (xnn, ref):
        r.allocate_tensors()
    d_in = xnn.get_input_details()[0]
    rng = np.random.default_rng(0)
    for _ in range(5):       # outputs: sparse on == off == LiteRT's reference kernels
        x = rng.integers(-128, 128, size=d_in["shape"]).astype(np.int8)
        outs = []
        for it in (auto, off):
            it.set_input(x)
            it.invoke()
            outs.append(it.get_output(0))
        ref.set_tensor(ref.get_input_details()[0]["index"], x)
        ref.invoke()
        outs.append(ref.get_tensor(ref.get_output_details()[0]["index"]))
        assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2]), f"{path.name}: outputs differ"
    xnn.set_tensor(d_in["index"], x)
    runners = {"sparse": auto.invoke, "dense": off.invoke, "litert": xnn.invoke}
    reps = max(1, int(0.01 / max(cpu_us(off.invoke, 3) * 1e-6, 1e-7)))
    times = {k: [] for k in runners}
    names = list(runners)
    for r in range(rounds):
        for k in (names if r % 2 == 0 else names[::-1]):
            times[k].append(cpu_us(runners[k], reps))
    result = {k: statistics.median(v) for k, v in times.items()}
    result["kernels"] = sum("sparse" in s.kernel for s in auto.plan.steps)
    if layers:
        prof = {}
        for name, it in (("sparse", auto), ("dense", off)):
            runs = [it.invoke_profiled() for _ in range(max(20, rounds))]
            prof[name] = [statistics.median(r[k][2] for r in runs) / 1e3 for k in range(len(runs[0]))]
        result["layers"] = [(k, s.op.type, s.kernel, prof["dense"][k], prof["sparse"][k])
                            for k, s in enumerate(auto.plan.steps)
                            if s.op.type in ("CONV_2D", "FULLY_CONNECTED")]
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet8,mobilenet_v1")
    ap.add_argument("--sparsity", default="0.5,0.75,0.9")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--layers", action="store_true")
    ap.add_argument("--size", type=int, help="input height = width of the made-up models (default 32 / 96)")
    ap.add_argument("--alpha", type=float, default=0.25, help="mobilenet_v1's width multiplier (0.25)")
    ap.add_argument("--files", help="comma-separated int8 .tflite files to measure instead of the made-up models")
    a = ap.parse_args()
    from edgeml.runtime.kernels import CONFIG
    print(f"ISA path {CONFIG.isa}; one thread, batch 1, medians of thread CPU time (us)")
    print(f"{'model':22s} {'sparse kernels':>14s} {'edgeml sparse':>13s} {'edgeml dense':>12s} {'speedup':>7s} "
          f"{'LiteRT+XNNPACK':>14s} {'vs LiteRT':>9s}")
    cases = [(f, Path(f).parent.name or f, None) for f in a.files.split(",")] if a.files else \
        [(None, name, float(sp)) for name in a.models.split(",") for sp in a.sparsity.split(",")]
    for path, name, sp in cases:
        shape = (a.size, a.size, 3) if a.size else None
        res = measure(Path(path) if path else make_model(name, sp, shape, a.alpha), a.rounds, a.layers)
        label = name if sp is None else f"{name} {int(sp * 100)}%"
        print(f"{label:22s} {res['kernels']:14d} {res['sparse']:13.1f} {res['dense']:12.1f} "
              f"{res['dense'] / res['sparse']:6.2f}x {res['litert']:14.1f} {res['litert'] / res['sparse']:8.2f}x",
              flush=True)
        for k, op, kernel, dense_us, sparse_us in res.get("layers", []):
            print(f"    step {k:3d} {op:16s} {kernel:26s} dense {dense_us:8.1f} us  sparse-auto {sparse_us:8.1f} us "
                  f" {dense_us / max(sparse_us, 1e-3):5.2f}x")


if __name__ == "__main__":
    main()
