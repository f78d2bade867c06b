"""The graph IR every front-end translates into; it knows no file format."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


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
    source: str = "tflite"       # decides the requantization contract
    name: str = ""
