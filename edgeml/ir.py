"""The graph IR every reader translates into: tensors, ops, graph.

No semantics hang on the file format: a reader writes the numeric semantics it needs into the IR, for example:
  options["requant"] = "float"   int8 sums requantized with a float32 scale, ties to even (onnxruntime);
                                 absent: TFLite's fixed-point multipliers
  Graph.input_rounding           how float data given to an int8 graph input is quantized
  options["uint8"] = True        the op ran on uint8 tensors in the file, now held as int8 (q - 128, zero point
                                 - 128): LiteRT's uint8 kernels where their arithmetic differs from the int8 ones
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

REQUANT_FLOAT = "float"
UINT8 = "uint8"        # op option: LiteRT's uint8 (legacy) arithmetic on tensors held as int8

ROUND_HALF_AWAY = "half_away"    # TFLite QUANTIZE: x / scale rounded half away from zero
ROUND_HALF_EVEN = "half_even"    # ONNX QuantizeLinear: x / scale rounded half to even


@dataclass
class Quantization:
    """Affine quantization `real = scale * (q - zero_point)`, per tensor or along `axis`."""
    scale: np.ndarray          # float64, length 1 or the size of `axis`
    zero_point: np.ndarray     # int64, same length as scale
    axis: int = 0

    @property
    def per_axis(self) -> bool:
        return self.scale.size > 1

    def scalar(self) -> tuple[float, int]:
        return float(self.scale[0]), int(self.zero_point[0])


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple
    dtype: np.dtype
    quant: Optional[Quantization] = None
    data: Optional[np.ndarray] = None      # constant contents, already shaped
    is_variable: bool = False
    dynamic_dims: tuple = ()               # axes the file marks as unknown until run time (shape_signature -1)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def describe(self) -> str:
        return f"tensor {self.index} '{self.name}'"


@dataclass
class Op:
    index: int
    type: str                    # e.g. "CONV_2D"
    version: int
    inputs: list                 # tensor indices, -1 for an omitted optional input
    outputs: list
    options: dict = field(default_factory=dict)
    intermediates: list = field(default_factory=list)   # tensor indices used inside the op (TFLite LSTM)

    def describe(self) -> str:
        return f"op {self.index} ({self.type} v{self.version})"


@dataclass
class Graph:
    tensors: list
    ops: list
    inputs: list
    outputs: list
    name: str = ""
    source: str = ""                          # "tflite" / "onnx": provenance for reports; nothing branches on it
    input_rounding: str = ROUND_HALF_AWAY     # see the module docstring
    # the model's subgraphs by file index (this one included) that control-flow ops name in their options
    # (WHILE: cond_subgraph_index, body_subgraph_index); one dict shared by every graph of the model; empty when no
    # op names a subgraph (a dict holding its own graph is a reference cycle only the garbage collector frees)
    subgraphs: dict = field(default_factory=dict, repr=False, compare=False)


# ----- the ONNX_RNN op (ONNX LSTM / GRU / RNN) -------------------------------------------------------------
# Its activations are onnxruntime's functions by lower-case name, per direction f, g[, h].
RNN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "affine", "leakyrelu", "thresholdedrelu", "scaledtanh",
                   "hardsigmoid", "elu", "softsign", "softplus")
RNN_DEFAULT_ACTIVATIONS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh"), "RNN": ("tanh",)}


def rnn_state_within_one(cell: str, names, alphas) -> bool:
    """Whether every h the cell makes lies in [-1, 1] (an initial_h aside), as the int8 scheme's 1/127 state
    step needs: LSTM's o and h(c) and RNN's f within [-1, 1]; GRU's z in [0, 1] (h' a convex mix) and g
    within [-1, 1].  Per direction; `names` / `alphas` hold D x (f, g[, h])."""
    unit = ("sigmoid", "hardsigmoid")

    def within_one(name, alpha):
        return name in unit + ("tanh", "softsign") or (name == "scaledtanh" and abs(alpha) <= 1)
    n = len(RNN_DEFAULT_ACTIVATIONS[cell])
    for d in range(len(names) // n):
        f, fa = names[d * n], alphas[d * n]
        if cell == "LSTM" and not (within_one(f, fa) and within_one(names[d * n + 2], alphas[d * n + 2])):
            return False
        if cell == "GRU" and not (f in unit and within_one(names[d * n + 1], alphas[d * n + 1])):
            return False
        if cell == "RNN" and not within_one(f, fa):
            return False
    return True
