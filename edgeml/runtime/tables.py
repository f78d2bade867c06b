"""256-entry tables of int8 / uint8 element-wise ops, built at load by running the op's own scalar kernel (the
reference arithmetic) on every input byte: the vector lookup (cython_ops/include/em_lut.h) then gives the same
bits as the arithmetic by construction."""
from __future__ import annotations

import numpy as np

from edgeml.runtime.kernels import Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.load_profile import timed
from edgeml.runtime.plan import address

ALL_BYTES = np.arange(256, dtype=np.uint8)       # table index = the input's byte


@timed("of which: 256-entry tables")
def byte_table(kernel: str, ints: dict, floats: dict = None, out_dtype=np.int8) -> np.ndarray:
    """The outputs of element-wise `kernel` (slots input, output and n) for the 256 input bytes 0..255, i.e. the
    int8 values 0..127, -128..-1 in that order; `ints` / `floats`: its other slots."""
    x = ALL_BYTES.copy()
    y = np.zeros(256, out_dtype)
    layout = layout_of(kernel)
    record = (kernel_address(kernel), layout.ptrs(input=address(x), output=address(y)),
              [int(v) for v in layout.ints(**dict(ints, n=256))],
              [float(v) for v in layout.floats(**(floats or {}))])
    Engine([record], keepalive=[x, y]).invoke()
    return y
