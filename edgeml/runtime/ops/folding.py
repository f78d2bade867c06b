"""Ops whose inputs are all constants are computed once at load, as DEQUANTIZE of a constant is: the
converter's shape arithmetic (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE / TILE) then becomes the constants the
ops after it need.  A folded tensor that is also a graph output is copied into the arena by one step."""
from __future__ import annotations

from typing import Optional

import numpy as np

from cython_ops import load_ops
from edgeml.ir import Op
from edgeml.runtime.plan import Ctx, Step, address


def inputs_constant(ctx: Ctx, op: Op, positions=None) -> bool:
    """Whether every input of `op` (or those at `positions`) that is present is a constant."""
    chosen = op.inputs if positions is None else [op.inputs[k] for k in positions if k < len(op.inputs)]
    return all(t < 0 or t in ctx.constants for t in chosen)


def int_values(data: np.ndarray) -> list:
    """A constant's values as Python ints, in order (what int() of each element gives; an integer array through
    tolist(), which is faster than iterating numpy scalars)."""
    flat = data.reshape(-1)
    if flat.dtype.kind in "iub":
        return list(map(int, flat.tolist()))
    return [int(v) for v in flat]


def fold(ctx: Ctx, op: Op, position: int, value) -> Optional[Step]:
    """Makes output `position` of `op` the constant `value` (converted to the tensor's type); returns the copy
    step a graph output needs, else None."""
    y = ctx.tensor(op, position, "output")
    value = np.array(value, dtype=y.dtype, order="C")          # (np.ascontiguousarray would make a scalar 1-D)
    load_ops.set_output_shape(ctx, op, position, value.shape, y)
    if y.index not in ctx.graph.outputs:
        ctx.constants[y.index] = value
        return None
    kept = ctx.keep_array(value)
    nbytes = value.nbytes

    def make(addr):
        return dict(input=address(kept), output=addr(y.index)), dict(bytes=nbytes), {}
    return Step(op, "copy", make, 0, 0)


def strided_values(data: np.ndarray, out_shape, start: int, strides) -> np.ndarray:
    """out[i0, i1, ...] = data.flat[start + sum(i_k * strides[k])]: a strided gather of a constant."""
    if len(out_shape) <= 1:      # (shape arithmetic's scalars and vectors: one indexing, no index arrays)
        flat = data.reshape(-1)
        return flat[start] if not len(out_shape) else flat[[start + k * strides[0] for k in range(out_shape[0])]]
    index = np.full(tuple(out_shape), start, dtype=np.int64)
    for k, (n, s) in enumerate(zip(out_shape, strides)):
        shape = [1] * len(out_shape)
        shape[k] = n
        index = index + (np.arange(n, dtype=np.int64) * s).reshape(shape)
    return data.reshape(-1)[index]
