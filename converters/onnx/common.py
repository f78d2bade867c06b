"""What the ONNX reader's modules share: the translation-time `Value`, the NCHW / NHWC permutations, the IR's
fused activation codes, `Node` (a NodeProto's fields read once) and two small helpers (`Renamed` node stand-ins,
`same_q`)."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from edgeml.ir import Quantization

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
# element types as dtype objects: comparing a dtype with a dtype is several times faster than with a scalar type
F32, I8, U8, I32, I64 = (np.dtype(t) for t in (np.float32, np.int8, np.uint8, np.int32, np.int64))
FLOAT_MAX = float(np.finfo(np.float32).max)

# fused activation codes of the IR (as in the TFLite schema)
ACT_CODE = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


class Value:
    """One ONNX value during translation: its logical (ONNX-order) shape and where it lives in the IR.

    `const` may be given as a function (`fold`) evaluated on first read: a DequantizeLinear of constant weights
    that a fused int8 op takes as `qconst` never needs its float form."""
    __slots__ = ("_const", "dq_of", "dtype", "fold", "name", "nhwc", "ort_u8", "plain", "qconst", "quant", "shape")

    def __init__(self, name: str, shape: tuple, dtype: np.dtype, plain: Optional[int] = None,
                 nhwc: Optional[int] = None, const: Optional[np.ndarray] = None, quant: Optional[Quantization] = None,
                 dq_of: Optional[Value] = None, qconst: Optional[tuple] = None, ort_u8: bool = False,
                 fold: Optional[Callable[[], np.ndarray]] = None):
        self.name = name
        self.shape = shape
        self.dtype = dtype               # ONNX element type
        self.plain = plain               # IR tensor in ONNX axis order
        self.nhwc = nhwc                 # IR tensor in channels-last order (4-D only)
        self._const = const
        self.fold = fold                 # computes `const` on first read (then dropped)
        self.quant = quant               # per-tensor int8 parameters of an integer value (uint8 shifted)
        self.dq_of = dq_of               # for the float output of a DequantizeLinear of a non-constant
        self.qconst = qconst             # for DequantizeLinear of a constant: (int data, scale, zp, axis)
        self.ort_u8 = ort_u8             # onnxruntime computes on this integer value as uint8 (see _u8_values)

    @property
    def const(self) -> Optional[np.ndarray]:
        if self.fold is not None:
            self._const, self.fold = self.fold(), None
        return self._const

    @const.setter
    def const(self, data: Optional[np.ndarray]):
        self._const, self.fold = data, None

    @property
    def is_const(self) -> bool:
        """Whether the value is a constant, without folding it."""
        return self.fold is not None or self._const is not None

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Value({self.name!r}, shape={self.shape}, dtype={self.dtype})"


class Node:
    """A NodeProto's fields read once: each read of a protobuf field builds new Python objects (every string decoded
    again), and the translators read a node's inputs and outputs many times."""
    __slots__ = ("attribute", "domain", "input", "op_type", "output", "proto")

    def __init__(self, proto):
        self.proto = proto
        self.op_type = proto.op_type
        self.domain = proto.domain
        self.input = proto.input[:]
        self.output = proto.output[:]
        self.attribute = proto.attribute

    @property
    def name(self) -> str:
        return self.proto.name         # (for messages only: read when needed)


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
