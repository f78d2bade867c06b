"""What the ONNX reader's modules share: the translation-time `Value`, the NCHW / NHWC permutations, the IR's
fused activation codes, and two small helpers (`Renamed` node stand-ins, `same_q`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from edgeml.ir import Quantization

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
FLOAT_MAX = float(np.finfo(np.float32).max)

# fused activation codes of the IR (as in the TFLite schema)
ACT_CODE = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


@dataclass
class Value:
    """One ONNX value during translation: its logical (ONNX-order) shape and where it lives in the IR."""
    name: str
    shape: tuple
    dtype: np.dtype                  # ONNX element type
    plain: Optional[int] = None      # IR tensor in ONNX axis order
    nhwc: Optional[int] = None       # IR tensor in channels-last order (4-D only)
    const: Optional[np.ndarray] = None
    quant: Optional[Quantization] = None   # per-tensor int8 parameters of an integer value (uint8 shifted)
    dq_of: Optional["Value"] = None  # for the float output of a DequantizeLinear of a non-constant
    qconst: Optional[tuple] = None   # for DequantizeLinear of a constant: (int data, scale, zp, axis)
    ort_u8: bool = False             # onnxruntime computes on this integer value as uint8 (see _consumers)

    @property
    def rank(self) -> int:
        return len(self.shape)


class Renamed:
    """A node stand-in with other input / output names, for re-using a translator on a derived value."""

    def __init__(self, node, in_name, out_name, inputs=None):
        self.op_type = node.op_type
        self.domain = node.domain
        self.name = node.name
        self.attribute = node.attribute
        self.input = inputs if inputs is not None else [in_name] + list(node.input[1:])
        self.output = [out_name]


def same_q(a: Optional[Quantization], b: Optional[Quantization]) -> bool:
    if a is None or b is None:
        return False
    return np.float32(a.scale[0]) == np.float32(b.scale[0]) and int(a.zero_point[0]) == int(b.zero_point[0])
