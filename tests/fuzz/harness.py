"""What every fuzz input goes through: load a model from bytes, set every input, invoke, read every output.

The only exception allowed out of it is an EdgeMLError; anything else (and any crash or hang) is a finding.
Budgets keep a hostile model from asking for gigabytes: a refusal is an EdgeMLError like any other.
"""
from __future__ import annotations

import numpy as np

import edgeml
from edgeml import EdgeMLError

BUDGET = 64 << 20          # bytes of arena and of packed weights a fuzzed model may use


def fill(detail: dict) -> np.ndarray:
    """A deterministic input covering the type's range."""
    shape, dtype = tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"])
    n = int(np.prod(shape))
    if dtype.kind == "f":
        values = np.linspace(-3.0, 3.0, max(n, 1), dtype=np.float64)[:n]
    elif dtype == np.bool_:
        values = np.arange(n) % 2
    else:
        info = np.iinfo(dtype)     # 64-bit types: a span numpy's int64 arithmetic can hold
        low, high = max(int(info.min), -(1 << 61)), min(int(info.max), (1 << 61) - 1)
        values = np.arange(n, dtype=np.int64) % (high - low + 1) + low
    return values.astype(dtype).reshape(shape)


def run_model(model) -> None:
    """`model`: bytes of a .tflite / .onnx file, or a Graph from a reader."""
    try:
        it = edgeml.Interpreter(model, max_arena_bytes=BUDGET, max_weight_bytes=BUDGET)
        for i, detail in enumerate(it.get_input_details()):
            it.set_input(fill(detail), i)
        it.invoke()
        for i in range(len(it.get_output_details())):
            it.get_output(i)
    except EdgeMLError:
        pass


def run_onnx_bytes(data: bytes) -> None:
    """The ONNX reader on any bytes (the Interpreter would read bytes without an ONNX header as .tflite)."""
    from converters.onnx import from_onnx
    try:
        graph = from_onnx(data)
    except EdgeMLError:
        return
    run_model(graph)
