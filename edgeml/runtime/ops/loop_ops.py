"""The small ops of WHILE conditions and bodies not found elsewhere (cython_ops/include/em_loop_ops.h): LOGICAL_AND /
OR / NOT on bools.  int32 ADD / SUB / MUL (loop counters) are dispatched from elementwise.py to the same header."""
from __future__ import annotations

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.element_types import pad6_of
from edgeml.runtime.ops.elementwise import broadcast_shape, broadcast_strides
from edgeml.runtime.plan import Ctx, OpSpec, Step

BOOL = np.dtype(np.bool_)


def bool_binary_step(ctx: Ctx, op: Op, kernel: str, a, b) -> Step:
    """A broadcasting binary step (layout EM_BOOL_BINARY) whose output is bool."""
    y = ctx.tensor(op, 0, "output")
    if y.dtype != BOOL:
        raise UnsupportedOpError(f"{op.describe()}: output {y.describe()} has type {y.dtype}, not bool")
    out = broadcast_shape(op, ctx.shape(a), ctx.shape(b))
    if len(out) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(out)} > 6")
    ctx.set_output(op, 0, out)
    ints = dict(dims=pad6_of(op, out), strides1=broadcast_strides(ctx.shape(a), out),
                strides2=broadcast_strides(ctx.shape(b), out))

    def make(addr):
        return dict(input1=addr(a.index), input2=addr(b.index), output=addr(y.index)), ints, {}
    return Step(op, kernel, make)


def prepare_logical(ctx: Ctx, op: Op) -> Step:
    a = ctx.tensor(op, 0)
    b = a if op.type == "LOGICAL_NOT" else ctx.tensor(op, 1)
    for t in (a, b):
        if t.dtype != BOOL:
            raise ModelFormatError(f"{op.describe()}: input {t.describe()} has type {t.dtype}, not bool")
    return bool_binary_step(ctx, op, op.type.lower(), a, b)


OPS = {
    "LOGICAL_AND": OpSpec(prepare_logical, output_types=(BOOL,)),
    "LOGICAL_OR": OpSpec(prepare_logical, output_types=(BOOL,)),
    "LOGICAL_NOT": OpSpec(prepare_logical, output_types=(BOOL,)),
}
