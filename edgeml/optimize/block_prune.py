"""Block magnitude pruning for edgeml's block-sparse int8 kernels (`--prune-block`), and how block-sparse it got.

A block is OUT output x IN input channels of a kernel seen as the 2-D matrix [K, out] (K = kh * kw * in, the
order of the int8 file's [out, kh, kw, in] filter): 16x4 is what the VNNI kernel skips in one `vpdpbusd`.
Both are pruned by `BlockPruning`, a callback with tfmot's schedule, masks and timing: tfmot 0.8.1's `block_size`
refuses 4-D (conv) kernels and fails on Dense too here (pruning_utils.expand_tensor: "Input tensor must be rank 2").  DepthwiseConv2D stays dense: each output
channel reads one input channel, so there are no input-channel blocks to skip and edgeml has no sparse kernel.
"""
from __future__ import annotations

import time

import numpy as np

from edgeml.errors import TrainingError
from edgeml.runtime.interpreter import Interpreter
from edgeml.train import keras_env

DEFAULT_BLOCK = (16, 4)
KERNEL_BLOCK = (16, 4)        # the runtime's block (edgeml.runtime.packing_sparse): what the report counts
BLOCK_LAYERS = ("Conv2D", "Dense")
MIN_DEPTH_BLOCKS = 4
SELF_PRUNED = BLOCK_LAYERS + ("DepthwiseConv2D",)      # not wrapped by tfmot in block mode (see above)


def parse_block(block) -> tuple:
    """(out, in) from "16x4" / (16, 4): 1x1 (element-wise) or multiples of the kernel's 16x4 block."""
    try:
        out, cin = (int(v) for v in (block.lower().split("x") if isinstance(block, str) else block))
    except (ValueError, TypeError, AttributeError):
        raise TrainingError(f"--prune-block takes OUTxIN (e.g. 16x4 or 1x1), got {block!r}") from None
    if (out, cin) != (1, 1) and (out < 1 or cin < 1 or out % KERNEL_BLOCK[0] or cin % KERNEL_BLOCK[1]):
        raise TrainingError(f"--prune-block {out}x{cin}: use 1x1 (element-wise) or multiples of 16x4 (output x "
                            "input channels, the block edgeml's sparse int8 kernels skip)")
    return out, cin


def as_matrix(kernel: np.ndarray) -> np.ndarray:
    """A Keras Conv2D / Dense kernel [..., in, out] as [K, out]."""
    return kernel.reshape(-1, kernel.shape[-1])


def window_rows(kernel: np.ndarray) -> tuple:
    """(matrix [K', out], valid [K'] bool): the kernel as the runtime's vector kernels read it.  A KxK conv runs as
    an implicit GEMM whose weights are packed per window row, KW * IN values padded to a multiple of 4
    (edgeml.runtime.ops.sparse_gemm), so a block never spans two window rows: pruning in that layout zeroes the
    blocks the kernel skips (e.g. a first 3x3 conv on 3 channels, rows of 9 values)."""
    w2 = as_matrix(kernel)
    if kernel.ndim != 4 or kernel.shape[0] == 1 or (kernel.shape[1] * kernel.shape[2]) % KERNEL_BLOCK[1] == 0:
        return w2, np.ones(w2.shape[0], bool)
    kh, row, out = kernel.shape[0], kernel.shape[1] * kernel.shape[2], kernel.shape[3]
    span = -(-row // KERNEL_BLOCK[1]) * KERNEL_BLOCK[1]
    padded, valid = np.zeros((kh, span, out), kernel.dtype), np.zeros((kh, span), bool)
    padded[:, :row], valid[:, :row] = kernel.reshape(kh, row, out), True
    return padded.reshape(kh * span, out), valid.reshape(-1)


def block_scores(w2: np.ndarray, block: tuple, valid: np.ndarray = None) -> np.ndarray:
    """Mean |w| of each block of [K, out] (padding, and rows not `valid`, not counted, as tfmot's SAME average
    pooling)."""
    out, cin = block
    k, n = w2.shape
    gk, gn = -(-k // cin), -(-n // out)
    padded, count = np.zeros((gk * cin, gn * out)), np.zeros((gk * cin, gn * out))
    padded[:k, :n], count[:k, :n] = np.abs(w2), 1.0
    if valid is not None:
        count[:k][~valid] = 0.0
    return padded.reshape(gk, cin, gn, out).sum(axis=(1, 3)) / \
        np.maximum(count.reshape(gk, cin, gn, out).sum(axis=(1, 3)), 1.0)


def block_mask(kernel: np.ndarray, sparsity: float, block: tuple) -> np.ndarray:
    """0/1 mask shaped like `kernel`: the round(sparsity * blocks) lowest-magnitude blocks zeroed, in the layout
    `window_rows` gives (single weights when K has fewer than MIN_DEPTH_BLOCKS blocks, e.g. a first 3x3 conv on
    one channel: too coarse to reach the target, and too short for the sparse kernel to gain)."""
    if -(-as_matrix(kernel).shape[0] // block[1]) < MIN_DEPTH_BLOCKS:
        block = (1, 1)
    w2, valid = window_rows(kernel) if block != (1, 1) else (as_matrix(kernel), None)
    scores = block_scores(w2, block, valid)
    keep = np.ones(scores.size, bool)
    keep[np.argsort(scores, axis=None, kind="stable")[:int(round(sparsity * scores.size))]] = False
    out, cin = block
    full = np.repeat(np.repeat(keep.reshape(scores.shape), cin, 0), out, 1)[:w2.shape[0], :w2.shape[1]]
    if valid is not None:
        full = full[valid]
    return full.reshape(kernel.shape).astype(kernel.dtype)


def zero_block_share(kernel: np.ndarray, block: tuple = KERNEL_BLOCK) -> float:
    """The fraction of blocks of [K, out] (in the `window_rows` layout) that are all zero."""
    w2, valid = window_rows(kernel)
    return float(np.mean(block_scores(w2, block, valid) == 0))


def layer_block_sparsity(model, block: tuple = KERNEL_BLOCK) -> dict:
    """Conv2D / Dense layer name -> zero-block share of its kernel (pruning-wrapped or stripped model)."""
    result = {}
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__ in BLOCK_LAYERS:
            result[layer.name] = zero_block_share(inner.kernel.numpy(), block)
    return result


def block_pruning_callback(schedule, block: tuple):
    """A Keras callback that block-prunes every Conv2D / Dense of the model it trains as tfmot prunes a layer: masks
    recomputed on the schedule's steps (PolynomialDecay, the last at end_step reaching the target exactly) and
    applied after every optimizer step and at the end of training."""
    tf, keras = keras_env()

    class BlockPruning(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step, self.masks = 0, {}

        def on_train_begin(self, logs=None):
            self.layers = [layer for layer in self.model.layers if type(layer).__name__ in BLOCK_LAYERS]

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            update, sparsity = schedule(tf.constant(self.step, tf.int64))
            for layer in self.layers:
                if bool(update):
                    self.masks[layer.name] = block_mask(layer.kernel.numpy(), float(sparsity), block)
                if layer.name in self.masks:
                    layer.kernel.assign(layer.kernel * self.masks[layer.name])

        def on_train_end(self, logs=None):
            for layer in self.layers:
                if layer.name in self.masks:
                    layer.kernel.assign(layer.kernel * self.masks[layer.name])

    return BlockPruning()


def sparse_latency(path: str, x: np.ndarray, rounds: int = 15) -> dict:
    """edgeml int8 latency (µs, median of thread CPU time, batch 1, one thread) with the sparse kernels on
    (sparse="auto") and off, run alternately in one process; and how many steps took a sparse kernel."""
    runners = {"on": Interpreter(path, sparse="auto"), "off": Interpreter(path, sparse="off")}
    for it in runners.values():
        it.set_input(x)
        it.invoke()

    def cpu_us(it, reps):
        t0 = time.thread_time()
        for _ in range(reps):
            it.invoke()
        return (time.thread_time() - t0) / reps * 1e6

    reps = max(1, int(0.01 / max(cpu_us(runners["off"], 3) * 1e-6, 1e-7)))
    times = {k: [] for k in runners}
    for r in range(rounds):
        for k in (("on", "off") if r % 2 == 0 else ("off", "on")):
            times[k].append(cpu_us(runners[k], reps))
    on, off = float(np.median(times["on"])), float(np.median(times["off"]))
    kernels = sum("sparse" in s.kernel for s in runners["on"].plan.steps)
    return {"on_us": on, "off_us": off, "speedup": off / on, "sparse_kernels": kernels}
