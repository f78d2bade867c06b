"""Tiny .tflite models for the call-path tests and benchmarks/bench_call.py, where the Python call path is most of
the time."""
from __future__ import annotations

import numpy as np


def tiny_model(kind: str) -> bytes:
    """A tiny .tflite: "fc_int8" (FULLY_CONNECTED [1,4] -> [1,3]), "fc_uint8" (the same, uint8 throughout) or
    "two_io" (inputs a, b int8 [1,4]; outputs FULLY_CONNECTED(a) [1,3] and ADD(a, b) [1,4])."""
    import tflite as fb
    from test_hostile_models import base_spec, build_model
    spec = base_spec()
    if kind == "fc_uint8":
        w = np.frombuffer(spec["buffers"][1], np.int8).astype(np.int16) + 128
        spec["buffers"][1] = w.astype(np.uint8).tobytes()
        for t in spec["tensors"]:
            if t["type"] == fb.TensorType.INT8:
                t["type"] = fb.TensorType.UINT8
                t["quant"] = dict(t["quant"], zero_point=[z + 128 for z in t["quant"]["zero_point"]])
    elif kind == "two_io":
        spec["opcodes"].append((fb.BuiltinOperator.ADD, 1))
        spec["buffers"] += [b"", b""]
        spec["tensors"] += [
            {"name": "b", "shape": [1, 4], "type": fb.TensorType.INT8, "buffer": 5,
             "quant": {"scale": [0.5], "zero_point": [2]}},
            {"name": "sum", "shape": [1, 4], "type": fb.TensorType.INT8, "buffer": 6,
             "quant": {"scale": [1.0], "zero_point": [0]}},
        ]
        spec["ops"].append({"opcode": 1, "inputs": [0, 4], "outputs": [5]})
        spec["inputs"], spec["outputs"] = [0, 4], [3, 5]
    return build_model(spec)
