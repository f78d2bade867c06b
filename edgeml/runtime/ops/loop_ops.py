"""The small ops of WHILE conditions and bodies (cython_ops/include/em_loop_ops.h): LOGICAL_AND / OR / NOT on bools,
and two stand-ins, LESS (int32, int64, float32) and GATHER (one axis, int32 / int64 indices read at run time),
for the fuller versions another branch adds (their rows are in STAND_INS: drop them when those land).
int32 ADD / SUB / MUL are dispatched from elementwise.py."""
from __future__ import annotations

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import element_count, pad6, require_same_quant, resolve_axis
from edgeml.runtime.ops.elementwise import broadcast_shape, broadcast_strides
from edgeml.runtime.plan import Ctx, OpSpec, Step

BOOL = np.dtype(np.bool_)
INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))
LESS_KERNELS = {np.dtype(np.int32): "less_int32", np.dtype(np.int64): "less_int64", np.dtype(np.float32): "less_f32"}


def bool_binary_step(ctx: Ctx, op: Op, kernel: str, a, b) -> Step:
    """A broadcasting binary step (layout EM_BOOL_BINARY) whose output is bool."""
    y = ctx.tensor(op, 0, "output")
    if y.dtype != BOOL:
        raise UnsupportedOpError(f"{op.describe()}: output {y.describe()} has type {y.dtype}, not bool")
    out = broadcast_shape(op, ctx.shape(a), ctx.shape(b))
    if len(out) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(out)} > 6")
    ctx.set_output(op, 0, out)
    ints = dict(dims=pad6(out), strides1=broadcast_strides(ctx.shape(a), out),
                strides2=broadcast_strides(ctx.shape(b), out))

    def make(addr):
        return dict(input1=addr(a.index), input2=addr(b.index), output=addr(y.index)), ints, {}
    return Step(op, kernel, make)


def prepare_less(ctx: Ctx, op: Op) -> Step:
    a, b = ctx.tensor(op, 0), ctx.tensor(op, 1)
    if a.dtype != b.dtype:
        raise ModelFormatError(f"{op.describe()}: compares {a.dtype} with {b.dtype}")
    if a.dtype not in LESS_KERNELS:
        raise UnsupportedOpError(f"{op.describe()}: LESS on {a.dtype} is not supported (int32, int64, float32)")
    return bool_binary_step(ctx, op, LESS_KERNELS[a.dtype], a, b)


def prepare_logical(ctx: Ctx, op: Op) -> Step:
    a = ctx.tensor(op, 0)
    b = a if op.type == "LOGICAL_NOT" else ctx.tensor(op, 1)
    for t in (a, b):
        if t.dtype != BOOL:
            raise ModelFormatError(f"{op.describe()}: input {t.describe()} has type {t.dtype}, not bool")
    return bool_binary_step(ctx, op, op.type.lower(), a, b)


def prepare_gather(ctx: Ctx, op: Op) -> Step:
    """GATHER on one axis (batch_dims 0).  Indices given at run time are checked by the kernel (InputError after the
    invoke, the output zeroed); constant indices are checked here."""
    x, idx, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs, ishape = list(ctx.shape(x)), list(ctx.shape(idx))
    if idx.dtype not in INDEX_TYPES:
        raise UnsupportedOpError(f"{op.describe()}: indices of type {idx.dtype} (int32, int64 are supported)")
    if x.dtype != y.dtype or x.dtype.itemsize not in (1, 2, 4, 8):
        raise UnsupportedOpError(f"{op.describe()}: type {x.dtype} -> {y.dtype} is not supported")
    require_same_quant(op, x, y)
    if int(op.options.get("batch_dims", 0)) != 0:
        raise UnsupportedOpError(f"{op.describe()}: batch_dims {op.options.get('batch_dims')} is not supported")
    if not xs:
        raise ModelFormatError(f"{op.describe()}: cannot gather from scalar {x.describe()}")
    axis = resolve_axis(op, int(op.options.get("axis", 0)), len(xs))
    size = xs[axis]
    if size == 0 and element_count(ishape):
        raise ModelFormatError(f"{op.describe()}: gathers from the empty axis {axis} of {x.describe()}")
    if idx.index in ctx.constants:
        values = ctx.constants[idx.index]
        if values.size and (values.min() < 0 or values.max() >= size):
            raise ModelFormatError(f"{op.describe()}: index {int(values.min() if values.min() < 0 else values.max())}"
                                   f" is outside 0..{size - 1} (axis {axis} of {x.describe()})")
    ctx.set_output(op, 0, tuple(xs[:axis] + ishape + xs[axis + 1:]))
    ints = dict(outer=element_count(xs[:axis]), axis_size=size, index_count=element_count(ishape),
                inner_bytes=element_count(xs[axis + 1:]) * x.dtype.itemsize, index_bytes=idx.dtype.itemsize)

    def make(addr):
        return dict(input=addr(x.index), indices=addr(idx.index), output=addr(y.index), status=addr("status")), \
            ints, {}

    def message(value):
        which = f"index {value}" if value != -2**31 else "an index"
        return f"{op.describe()}: {which} is outside 0..{size - 1} (axis {axis} of {x.describe()})"
    return Step(op, "gather_index", make, check=message)


OPS = {
    "LOGICAL_AND": OpSpec(prepare_logical, output_types=(BOOL,)),
    "LOGICAL_OR": OpSpec(prepare_logical, output_types=(BOOL,)),
    "LOGICAL_NOT": OpSpec(prepare_logical, output_types=(BOOL,)),
}
STAND_INS = {
    "LESS": OpSpec(prepare_less, max_version=3, output_types=(BOOL,)),
    "GATHER": OpSpec(prepare_gather, max_version=7, output_types=None),
}
OPS.update(STAND_INS)
