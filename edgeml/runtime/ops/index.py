"""Index and shape ops: GATHER, GATHER_ND, SLICE, TILE, BROADCAST_TO, FILL, SHAPE, CAST, SELECT, SELECT_V2
(cython_ops/include/em_index.h; SLICE and BROADCAST_TO are strided gathers of em_shape.h).

Indices in the model file are checked here (ModelFormatError); indices that arrive at run time are checked by
the kernel, which reports the first bad one through a status word (InputError at invoke, Step.check).
Every op whose inputs are all constants is computed at load (edgeml/runtime/ops/folding.py)."""
from __future__ import annotations

from functools import partial

import numpy as np

from cython_ops import load_index, load_shape
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import element_count, resolve_axis, row_major_strides
from edgeml.runtime.ops.element_types import (BOOL, DTYPE_CODES, F32, I8, I16, I32, I64, INDEX_TYPES, U8, U16,
                                              dtype_code, pad6_of, require_equal_quantization,
                                              require_same_type)
from edgeml.runtime.ops.elementwise import broadcast_shape, broadcast_strides
from edgeml.runtime.ops.folding import fold, inputs_constant, int_values
from edgeml.runtime.ops.shape import MOVED_TYPES, gather_step
from edgeml.runtime.plan import Ctx, OpSpec, Step

VALUE_TYPES = (F32, I8, U8, I16, U16, I32, I64, BOOL)


def int_vector(ctx: Ctx, op: Op, position: int, what: str, types=(I32, I64)) -> list:
    """A constant 1-D int32 / int64 operand as Python ints."""
    t = ctx.tensor(op, position)
    if t.dtype not in types:
        raise ModelFormatError(f"{op.describe()}: {what} {t.describe()} has type {t.dtype} "
                               f"({' or '.join(d.name for d in types)} expected)")
    data = ctx.const(t, f"{op.describe()} {what}")
    if data.ndim > 1:
        raise ModelFormatError(f"{op.describe()}: {what} must be a vector, got shape {list(data.shape)}")
    return int_values(data)


def index_check(describe):
    """Step.check of a kernel's run-time index check: its status area holds int64 [flag, first bad index]."""
    def check(status):
        flag, index = status[:16].view(np.int64)
        return describe(int(index)) if flag else None
    return check


def check_constant_indices(op: Op, values: np.ndarray, bounds):
    """Indices in the model file (the last axis of `values` running over `bounds`) must lie in [0, bound)."""
    bounds = np.broadcast_to(np.asarray(bounds, np.int64), values.shape)
    bad = (values < 0) | (values >= bounds)
    if np.any(bad):
        raise ModelFormatError(f"{op.describe()}: index {int(values[bad][0])} is out of range: it must lie in "
                               f"0..{int(bounds[bad][0]) - 1}")


# ----- GATHER, GATHER_ND -----------------------------------------------------------------------------------

def prepare_gather(ctx: Ctx, op: Op):
    x, idx, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs, ishape = list(ctx.shape(x)), list(ctx.shape(idx))
    dtype_code(op, idx, INDEX_TYPES)
    dtype_code(op, x, VALUE_TYPES)
    require_same_type(op, x, y)
    require_equal_quantization(op, x, y)
    if not xs:
        raise ModelFormatError(f"{op.describe()}: cannot gather from scalar {x.describe()}")
    axis = resolve_axis(op, int(op.options.get("axis", 0)), len(xs))
    batch_dims = int(op.options.get("batch_dims", 0))
    if batch_dims < 0:
        batch_dims += len(ishape)
    if not (0 <= batch_dims <= axis and batch_dims < len(xs) and batch_dims <= len(ishape)) or \
            xs[:batch_dims] != ishape[:batch_dims]:
        raise ModelFormatError(f"{op.describe()}: batch_dims {op.options.get('batch_dims')} does not fit input "
                               f"{xs}, indices {ishape} and axis {axis}")
    out = xs[:axis] + ishape[batch_dims:] + xs[axis + 1:]
    batch, outer, size = element_count(xs[:batch_dims]), element_count(xs[batch_dims:axis]), xs[axis]
    count, inner = element_count(ishape[batch_dims:]), element_count(xs[axis + 1:])
    if idx.index in ctx.constants:
        values = ctx.constants[idx.index]
        check_constant_indices(op, values, size)
        if x.index in ctx.constants:
            data = ctx.constants[x.index].reshape(batch, outer, size, inner)
            picked = np.stack([data[b][:, values.reshape(batch, count)[b], :] for b in range(batch)])
            return fold(ctx, op, 0, picked.reshape(out))
    ctx.set_output(op, 0, tuple(out))
    check = index_check(lambda v: f"{op.describe()}: index {v} is outside 0..{size - 1} (axis {axis} of "
                                  f"{x.describe()})")
    ints = dict(batch=batch, outer=outer, axis_size=size, indices=count, block_bytes=inner * x.dtype.itemsize,
                index_type=DTYPE_CODES[idx.dtype])

    def make(addr):
        return dict(input=addr(x.index), indices=addr(idx.index), output=addr(y.index),
                    status=addr("status")), ints, {}
    return Step(op, "gather_indices", make, 0, 0, check=check)


def prepare_gather_nd(ctx: Ctx, op: Op):
    x, idx, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs, ishape = list(ctx.shape(x)), list(ctx.shape(idx))
    dtype_code(op, idx, INDEX_TYPES)
    dtype_code(op, x, VALUE_TYPES)
    require_same_type(op, x, y)
    require_equal_quantization(op, x, y)
    if not xs or not ishape:
        raise ModelFormatError(f"{op.describe()}: params {xs} and indices {ishape} must both be at least vectors")
    depth = ishape[-1]
    if depth > len(xs):
        raise ModelFormatError(f"{op.describe()}: index tuples of {depth} for params of rank {len(xs)}")
    if depth > 6:
        raise UnsupportedOpError(f"{op.describe()}: index tuples longer than 6")
    if element_count(xs) == 0 and element_count(ishape) != 0:
        raise ModelFormatError(f"{op.describe()}: gathering from empty params {xs}")
    out = ishape[:-1] + xs[depth:]
    slices, bound = element_count(ishape[:-1]), np.array(xs[:depth], np.int64)
    if idx.index in ctx.constants:
        values = ctx.constants[idx.index].astype(np.int64)
        check_constant_indices(op, values.reshape(slices, depth), bound)
        if x.index in ctx.constants:
            tuples = values.reshape(slices, depth)
            picked = ctx.constants[x.index][tuple(tuples[:, j] for j in range(depth))]
            return fold(ctx, op, 0, picked.reshape(out))
    ctx.set_output(op, 0, tuple(out))
    slice_bytes = element_count(xs[depth:]) * x.dtype.itemsize
    strides = [s * slice_bytes for s in row_major_strides(xs[:depth])]
    check = index_check(lambda v: f"{op.describe()}: index {v} is outside params {xs[:depth]} of "
                                  f"{x.describe()}")
    ints = dict(slices=slices, depth=depth, slice_bytes=slice_bytes, index_type=DTYPE_CODES[idx.dtype],
                dims=xs[:depth] + [0] * (6 - depth), strides=strides + [0] * (6 - depth))

    def make(addr):
        return dict(params=addr(x.index), indices=addr(idx.index), output=addr(y.index),
                    status=addr("status")), ints, {}
    return Step(op, "gather_nd", make, 0, 0, check=check)


# ----- SLICE, BROADCAST_TO, TILE ---------------------------------------------------------------------------

def prepare_slice(ctx: Ctx, op: Op):
    """SLICE with constant begin / size (a size of -1 runs to the end of its axis)."""
    xs = list(ctx.shape(ctx.tensor(op, 0)))
    begin, size = int_vector(ctx, op, 1, "begin"), int_vector(ctx, op, 2, "size")
    if ctx.tensor(op, 1).dtype != ctx.tensor(op, 2).dtype or len(begin) != len(xs) or len(size) != len(xs):
        raise ModelFormatError(f"{op.describe()}: begin {begin} and size {size} must be of one type and give "
                               f"one entry per input dimension ({len(xs)})")
    out = []
    for d, (b, n, dim) in enumerate(zip(begin, size, xs)):
        if n == -1:
            n = dim - b
        if b < 0 or n < 0 or b + n > dim:
            raise ModelFormatError(f"{op.describe()}: begin {begin[d]} and size {size[d]} do not fit dimension {d} "
                                   f"of size {dim}")
        out.append(n)
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(xs)} > 6")
    st = row_major_strides(xs)
    start = sum(b * s for b, s in zip(begin, st)) if element_count(out) else 0
    return gather_step(ctx, op, out, start, st)


def prepare_broadcast_to(ctx: Ctx, op: Op):
    """BROADCAST_TO: a strided gather reading each broadcast dimension with stride 0."""
    xs = list(ctx.shape(ctx.tensor(op, 0)))
    shape = int_vector(ctx, op, 1, "shape")
    if len(shape) < len(xs) or any(d < 0 for d in shape):
        raise ModelFormatError(f"{op.describe()}: cannot broadcast {xs} to {shape}")
    padded = [1] * (len(shape) - len(xs)) + xs
    if any(a != b and a != 1 for a, b in zip(padded, shape)):
        raise ModelFormatError(f"{op.describe()}: cannot broadcast {xs} to {shape}")
    if len(shape) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(shape)} > 6")
    st = row_major_strides(padded)
    return gather_step(ctx, op, shape, 0, [0 if a != b else s for a, b, s in zip(padded, shape, st)])


def prepare_tile(ctx: Ctx, op: Op):
    made = load_index.tile_shell(ctx, op, VALUE_TYPES)      # the common form's checks and integers in one call
    if made is not None:
        return tile_step(op, *made)
    if load_index.tile_fold(ctx, op, VALUE_TYPES):      # a constant input tiled at load, in one call
        return None
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = list(ctx.shape(x))
    multiples = int_vector(ctx, op, 1, "multiples")
    if len(multiples) != len(xs) or any(m < 0 for m in multiples):
        raise ModelFormatError(f"{op.describe()}: multiples {multiples} for input {xs}")
    dtype_code(op, x, VALUE_TYPES)
    require_same_type(op, x, y)
    require_equal_quantization(op, x, y)
    out = [d * m for d, m in zip(xs, multiples)]
    if x.index in ctx.constants:
        return fold(ctx, op, 0, np.tile(ctx.constants[x.index], multiples))
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(xs)} > 6")
    ctx.set_output(op, 0, tuple(out))
    in6 = pad6_of(op, xs)
    ints = dict(itemsize=x.dtype.itemsize, out_dims=pad6_of(op, out), in_dims=in6, in_strides=row_major_strides(in6))
    return tile_step(op, x.index, y.index, ints)


def tile_step(op: Op, xi: int, yi: int, ints: dict) -> Step:
    def make(addr):
        return dict(input=addr(xi), output=addr(yi)), ints, {}
    return Step(op, "tile", make, 0, 0)


# ----- FILL, SHAPE, CAST -----------------------------------------------------------------------------------

def prepare_fill(ctx: Ctx, op: Op):
    value, y = ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    dims = int_vector(ctx, op, 0, "dims")
    if any(d < 0 for d in dims):
        raise ModelFormatError(f"{op.describe()}: dims {dims} must not be negative")
    if element_count(ctx.shape(value)) != 1:
        raise ModelFormatError(f"{op.describe()}: value {value.describe()} must hold one element")
    dtype_code(op, value, VALUE_TYPES)
    require_same_type(op, value, y)
    require_equal_quantization(op, value, y)
    if value.index in ctx.constants:
        return fold(ctx, op, 0, np.full(dims, ctx.constants[value.index].reshape(-1)[0], dtype=y.dtype))
    ctx.set_output(op, 0, tuple(dims))
    ints = dict(elements=element_count(dims), itemsize=y.dtype.itemsize)

    def make(addr):
        return dict(value=addr(value.index), output=addr(y.index)), ints, {}
    return Step(op, "fill", make, 0, 0)


def prepare_shape(ctx: Ctx, op: Op):
    """SHAPE: with every shape known at load, a constant."""
    if load_shape.shape_fold(ctx, op, I32, I64):      # the common form in one call
        return None
    y = ctx.tensor(op, 0, "output")
    if y.dtype not in (I32, I64):
        raise UnsupportedOpError(f"{op.describe()}: output type {y.dtype} (int32 or int64 expected)")
    return fold(ctx, op, 0, np.array(ctx.shape(ctx.tensor(op, 0)), dtype=y.dtype))


def cast_values(data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """CAST of a constant as the kernel (and LiteRT) casts: float to integer saturates, NaN to the maximum;
    to bool is `!= 0`; integers wrap."""
    if dtype == BOOL:
        return data != 0
    if data.dtype == F32 and dtype != F32:
        info = np.iinfo(dtype)
        wide = data.astype(np.float64)
        high = np.isnan(wide) | (wide >= float(info.max))
        low = wide < float(info.min)
        inside = np.trunc(np.where(high | low, 0.0, wide)).astype(dtype)
        return np.where(high, info.max, np.where(low, info.min, inside)).astype(dtype)
    return data.astype(dtype)


def prepare_cast(ctx: Ctx, op: Op):
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    src, dst = dtype_code(op, x, VALUE_TYPES), dtype_code(op, y, VALUE_TYPES)
    if x.index in ctx.constants:
        return fold(ctx, op, 0, cast_values(ctx.constants[x.index], y.dtype))
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    ints = {"elements": element_count(xs), "from": src, "to": dst}

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, "cast", make, 0, 0)


# ----- SELECT, SELECT_V2 -----------------------------------------------------------------------------------

def prepare_select(ctx: Ctx, op: Op, broadcast: bool):
    """SELECT_V2 broadcasts its three inputs; SELECT takes equal shapes, or a scalar condition, or a vector
    condition that picks whole slices along the first axis."""
    cond, a, b, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 2), ctx.tensor(op, 0, "output")
    if cond.dtype != BOOL:
        raise ModelFormatError(f"{op.describe()}: condition {cond.describe()} must be bool, not {cond.dtype}")
    dtype_code(op, a, VALUE_TYPES)
    require_same_type(op, a, b, y)
    require_equal_quantization(op, a, b, y)
    cs, xs, ys = (list(ctx.shape(t)) for t in (cond, a, b))
    if broadcast:
        out = list(broadcast_shape(op, broadcast_shape(op, cs, xs), ys))
        cond_view = cs
    else:
        if xs != ys or not (cs == xs or not cs or (len(cs) == 1 and xs and cs[0] == xs[0])):
            raise ModelFormatError(f"{op.describe()}: condition {cs} and values {xs}, {ys} do not select")
        out = xs
        cond_view = cs + [1] * (len(xs) - len(cs)) if cs else []
    if len(out) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(out)} > 6")
    if inputs_constant(ctx, op):
        pick = ctx.constants[cond.index].reshape(cond_view)
        return fold(ctx, op, 0, np.where(pick, ctx.constants[a.index], ctx.constants[b.index]))
    ctx.set_output(op, 0, tuple(out))
    ints = dict(itemsize=a.dtype.itemsize, dims=pad6_of(op, out), cond_strides=broadcast_strides(cond_view, out),
                x_strides=broadcast_strides(xs, out), y_strides=broadcast_strides(ys, out))

    def make(addr):
        return dict(condition=addr(cond.index), x=addr(a.index), y=addr(b.index), output=addr(y.index)), ints, {}
    return Step(op, "select", make, 0, 0)


OPS = {
    "GATHER": OpSpec(prepare_gather, max_version=8, output_types=None),
    "GATHER_ND": OpSpec(prepare_gather_nd, max_version=6, output_types=None),
    "SLICE": OpSpec(prepare_slice, max_version=8, output_types=MOVED_TYPES),
    "BROADCAST_TO": OpSpec(prepare_broadcast_to, max_version=4, output_types=MOVED_TYPES),
    "TILE": OpSpec(prepare_tile, max_version=3, output_types=None),
    "FILL": OpSpec(prepare_fill, max_version=5, output_types=None),
    "SHAPE": OpSpec(prepare_shape, output_types=None),
    "CAST": OpSpec(prepare_cast, max_version=9, output_types=None),
    "SELECT": OpSpec(partial(prepare_select, broadcast=False), max_version=4, output_types=None),
    "SELECT_V2": OpSpec(partial(prepare_select, broadcast=True), max_version=2, output_types=None),
}
