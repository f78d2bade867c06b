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


@timed("of which: 256-entry tables")
def periodic_byte_table(kernel: str, constant: np.ndarray, constant_first: bool, ints: dict,
                        other_ptrs: dict = None, out: np.ndarray = None) -> np.ndarray:
    """Row p (of len(constant) rows): the outputs of binary int8 `kernel` (slots input1, input2, output, dims,
    strides1, strides2, `ints` and `other_ptrs`) for the 256 input bytes against constant[p], the constant as
    the first input when `constant_first`; flattened, row-major, written into the first period * 256 bytes of
    `out` (contiguous int8) when given."""
    period = len(constant)
    c = np.ascontiguousarray(constant, dtype=np.int8)
    x = ALL_BYTES.view(np.int8).copy()
    y = np.zeros(period * 256, np.int8) if out is None else out
    along_rows, along_bytes = [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]     # constant: one per row; x: one per column
    first, second = (c, x) if constant_first else (x, c)
    s1, s2 = (along_rows, along_bytes) if constant_first else (along_bytes, along_rows)
    layout = layout_of(kernel)
    slots = dict(ints, dims=[1, 1, 1, 1, period, 256], strides1=s1, strides2=s2)
    ptrs = dict(input1=address(first), input2=address(second), output=address(y))
    ptrs.update(other_ptrs or {})
    record = (kernel_address(kernel), layout.ptrs(**ptrs), [int(v) for v in layout.ints(**slots)], [])
    Engine([record], keepalive=[first, second, y]).invoke()
    return y
