"""Seed inputs for the fuzzers, built when needed rather than stored: small valid models of each format that reach
the readers' main paths (an int8 FULLY_CONNECTED, the MLPerf Tiny KWS model; ONNX float, QDQ and QOperator nodes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1]


def tflite_seeds() -> dict:
    from test_hostile_models import base_spec, build_model
    return {"fc_int8.tflite": build_model(base_spec()),
            "kws_ref_model.tflite": (TESTS / "models" / "mlperf_tiny" / "kws_ref_model.tflite").read_bytes()}


def onnx_seeds() -> dict:
    from onnx import helper
    from tests.onnx_models import make_model
    f, i8 = np.float32, np.int8
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(f)
    seeds = {
        "conv_relu.onnx": make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                                      helper.make_node("Relu", ["c"], ["y"])],
                                     [("x", f, (1, 3, 6, 6))], [("y", f, (1, 4, 6, 6))], {"w": w}),
        "gemm_softmax.onnx": make_model([helper.make_node("Gemm", ["x", "b", "c"], ["g"], transB=1),
                                         helper.make_node("Softmax", ["g"], ["y"], axis=1)],
                                        [("x", f, (2, 5))], [("y", f, (2, 3))],
                                        {"b": rng.standard_normal((3, 5)).astype(f), "c": np.ones(3, f)}),
        "qdq_conv.onnx": make_model(
            [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"]),
             helper.make_node("Conv", ["dq", "wd"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["y"])],
            [("x", f, (1, 3, 5, 5))], [("y", i8, (1, 4, 5, 5))],
            {"s": np.array(0.05, f), "z": np.array(0, i8), "wq": rng.integers(-127, 128, (4, 3, 3, 3)).astype(i8),
             "ws": np.array(0.02, f), "wz": np.array(0, i8)}),
        "kws_ref_model.onnx": (TESTS / "models" / "mlperf_tiny_onnx" / "kws_ref_model.onnx").read_bytes(),
    }
    return seeds


def write_seeds(fmt: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (tflite_seeds() if fmt == "tflite" else onnx_seeds()).items():
        (folder / name).write_bytes(data)
    return folder
