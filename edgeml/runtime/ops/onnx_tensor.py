"""ONNX tensor ops without a TFLite twin: AXIS_GATHER (each output coordinate of each axis reads an input
coordinate fixed at load: Pad's edge / reflect / wrap modes, crops, reversals, constant-index Gathers; the
gather_indexed kernel of cython_ops/include/em_space.h), ONNX_TOPK, ONNX_CUMSUM, ONNX_SCATTER and ONNX_REDUCE_MAX / MIN (em_onnx_index.h), ONNX_NORMALIZE
(em_onnx_norm.h)."""
from __future__ import annotations

from functools import partial

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import element_count, resolve_axis, row_major_strides
from edgeml.runtime.ops.element_types import F32, I32, I64, dtype_code, pad6_of, require_same_type
from edgeml.runtime.ops.index import VALUE_TYPES
from edgeml.runtime.ops.reduce import reduction_geometry
from edgeml.runtime.plan import Ctx, OpSpec, Step, address

TOPK_ENTRY_BYTES = 24          # em_topk_entry
SORTED_TYPES = (F32, I32, I64)


def prepare_axis_gather(ctx: Ctx, op: Op) -> Step:
    """Option `tables`: for every input axis, the input coordinate each output coordinate reads."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    require_same_type(op, x, y)
    dtype_code(op, x, VALUE_TYPES)
    xs = list(ctx.shape(x))
    tables = [np.asarray(t, np.int64).reshape(-1) for t in op.options.get("tables", ())]
    if len(tables) != len(xs):
        raise ModelFormatError(f"{op.describe()}: {len(tables)} index tables for a rank-{len(xs)} input")
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(xs)} > 6")
    for axis, (t, d) in enumerate(zip(tables, xs)):
        if t.size == 0 or t.min() < 0 or t.max() >= d:
            raise ModelFormatError(f"{op.describe()}: axis {axis} reads coordinates outside 0..{d - 1}")
    out = [t.size for t in tables]
    ctx.set_output(op, 0, tuple(out))
    strides = row_major_strides(xs)
    parts = [np.zeros(1, np.int64)] * (6 - len(xs)) + [t * s for t, s in zip(tables, strides)]
    starts = np.cumsum([0] + [len(t) for t in parts[:-1]]).tolist()
    flat = ctx.keep_array(np.concatenate(parts))
    ints = dict(itemsize=x.dtype.itemsize, dims=pad6_of(op, out), starts=starts)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index), tables=address(flat)), ints, {}
    return Step(op, "gather_indexed", make)


def axis_geometry(ctx: Ctx, op: Op, xs: list) -> tuple[int, int, int, int]:
    """(axis, outer, n, inner) of an op along option `axis`."""
    if not xs:
        raise ModelFormatError(f"{op.describe()}: the input must have at least one dimension")
    axis = resolve_axis(op, int(op.options.get("axis", -1)), len(xs))
    return axis, element_count(xs[:axis]), xs[axis], element_count(xs[axis + 1:])


def prepare_topk(ctx: Ctx, op: Op) -> Step:
    """Options axis, k, largest; outputs: values (the input's type) and int64 indices, always sorted."""
    x, values, indices = ctx.tensor(op, 0), ctx.tensor(op, 0, "output"), ctx.tensor(op, 1, "output")
    code = dtype_code(op, x, SORTED_TYPES)
    require_same_type(op, x, values)
    if indices.dtype != I64:
        raise ModelFormatError(f"{op.describe()}: indices {indices.describe()} must be int64")
    xs = list(ctx.shape(x))
    axis, outer, n, inner = axis_geometry(ctx, op, xs)
    k = int(op.options.get("k", 0))
    if not 0 < k <= n:
        raise ModelFormatError(f"{op.describe()}: k {k} outside 1..{n} (axis {axis} of {xs})")
    out = xs[:axis] + [k] + xs[axis + 1:]
    ctx.set_output(op, 0, tuple(out))
    ctx.set_output(op, 1, tuple(out))
    ints = dict(outer=outer, n=n, inner=inner, k=k, largest=int(bool(op.options.get("largest", True))), dtype=code)

    def make(addr):
        return (dict(input=addr(x.index), values=addr(values.index), indices=addr(indices.index),
                     scratch=addr("scratch")), ints, {})
    return Step(op, "onnx_topk", make, n * TOPK_ENTRY_BYTES)


def prepare_cumsum(ctx: Ctx, op: Op) -> Step:
    """Options axis, exclusive, reverse."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    code = dtype_code(op, x, SORTED_TYPES)
    require_same_type(op, x, y)
    xs = list(ctx.shape(x))
    _, outer, n, inner = axis_geometry(ctx, op, xs)
    ctx.set_output(op, 0, tuple(xs))
    ints = dict(outer=outer, n=n, inner=inner, exclusive=int(bool(op.options.get("exclusive", False))),
                reverse=int(bool(op.options.get("reverse", False))), dtype=code)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, "onnx_cumsum", make)


SCATTER_REDUCTIONS = {"none": 0, "add": 1, "mul": 2, "max": 3, "min": 4}


def prepare_scatter(ctx: Ctx, op: Op) -> Step:
    """Option `positions`: the flat output offset each update element goes to (ScatterND / ScatterElements with
    constant indices); option `reduction`."""
    x, upd, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    code = dtype_code(op, x, VALUE_TYPES)
    require_same_type(op, x, upd, y)
    xs, us = ctx.shape(x), ctx.shape(upd)
    n = element_count(xs)
    positions = np.asarray(op.options.get("positions", ()), np.int64).reshape(-1)
    if positions.size != element_count(us) or (positions.size and (positions.min() < 0 or positions.max() >= n)):
        raise ModelFormatError(f"{op.describe()}: {positions.size} target positions within 0..{n - 1} are needed for "
                               f"updates of shape {list(us)}")
    reduction = SCATTER_REDUCTIONS.get(op.options.get("reduction", "none"))
    if reduction is None:
        raise UnsupportedOpError(f"{op.describe()}: reduction {op.options.get('reduction')!r}")
    ctx.set_output(op, 0, xs)
    kept = ctx.keep_array(positions if positions.size else np.zeros(1, np.int64))
    ints = dict(elements=n, updates=positions.size, reduction=reduction, dtype=code)

    def make(addr):
        return (dict(data=addr(x.index), updates=addr(upd.index), positions=address(kept), output=addr(y.index)),
                ints, {})
    return Step(op, "onnx_scatter", make)


def prepare_reduce_minmax(ctx: Ctx, op: Op, is_max: bool) -> Step:
    """float32 max / min over the axes of input 1 (int32), starting from -inf / +inf (ONNX's identity)."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if not x.dtype == y.dtype == F32:
        raise UnsupportedOpError(f"{op.describe()}: {x.dtype} -> {y.dtype} (float32 is supported)")
    xs, _, out, dims, ost = reduction_geometry(ctx, op)
    if element_count(xs) == 0:
        raise UnsupportedOpError(f"{op.describe()}: a reduction of an empty tensor")
    ints = dict(dims=dims, out_strides=ost, outputs=element_count(out), is_max=int(is_max))

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, "onnx_reduce_minmax_f32", make)


OPS = {
    "ONNX_REDUCE_MAX": OpSpec(partial(prepare_reduce_minmax, is_max=True), output_types=None),
    "ONNX_REDUCE_MIN": OpSpec(partial(prepare_reduce_minmax, is_max=False), output_types=None),
    "ONNX_SCATTER": OpSpec(prepare_scatter, output_types=None),
    "AXIS_GATHER": OpSpec(prepare_axis_gather, output_types=None),
    "ONNX_TOPK": OpSpec(prepare_topk, output_types=None),
    "ONNX_CUMSUM": OpSpec(prepare_cumsum, output_types=None),
}


# ----- ONNX_NORMALIZE ---------------------------------------------------------------------------------------

def prepare_normalize(ctx: Ctx, op: Op) -> Step:
    """Rows of the trailing dimensions from option `axis` normalized (cython_ops/include/em_onnx_norm.h).
    Inputs: x, scale, bias (-1: none), constants; outputs: y, then mean and inv_std when options `with_mean` /
    `with_inv_std` say so (one float per row, shaped as the translator declares).  Options row_mod, row_stride,
    col_div, col_stride map a row and column to their scale / bias element; `centered` (False: RMS); epsilon."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if not x.dtype == y.dtype == F32:
        raise UnsupportedOpError(f"{op.describe()}: {x.dtype} -> {y.dtype} (float32 is supported)")
    xs = list(ctx.shape(x))
    axis = resolve_axis(op, int(op.options.get("axis", -1)), len(xs)) if xs else 0
    rows, cols = element_count(xs[:axis]), element_count(xs[axis:])
    if cols == 0:
        raise UnsupportedOpError(f"{op.describe()}: normalizing empty rows")
    o = op.options
    row_mod, row_stride = int(o.get("row_mod", 1)), int(o.get("row_stride", 0))
    col_div, col_stride = int(o.get("col_div", 1)), int(o.get("col_stride", 1))
    if row_mod < 1 or col_div < 1 or row_stride < 0 or col_stride < 0:
        raise ModelFormatError(f"{op.describe()}: bad scale pattern {row_mod, row_stride, col_div, col_stride}")
    reach = (min(rows, row_mod) - 1) * row_stride + ((cols - 1) // col_div) * col_stride + 1
    params = []
    for position, what in ((1, "scale"), (2, "bias")):
        if position >= len(op.inputs) or op.inputs[position] < 0:
            params.append(None)
            continue
        t = ctx.tensor(op, position)
        data = ctx.const(t, f"{op.describe()} {what}")
        if data.dtype != F32 or data.size < reach:
            raise ModelFormatError(f"{op.describe()}: {what} {t.describe()} must be float32 with at least {reach} "
                                   f"elements, got {data.dtype} {list(data.shape)}")
        params.append(ctx.keep_array(data.reshape(-1)))
    if params[0] is None:
        raise ModelFormatError(f"{op.describe()}: a scale input is required")
    ctx.set_output(op, 0, tuple(xs))
    extra = iter(range(1, len(op.outputs)))
    stats = {}
    for flag in ("with_mean", "with_inv_std"):
        if o.get(flag):
            k = next(extra, None)
            if k is None:
                raise ModelFormatError(f"{op.describe()}: option {flag} without an output for it")
            t = ctx.tensor(op, k, "output")
            declared = t.shape if element_count(t.shape) == rows else (rows,)
            ctx.set_output(op, k, declared)
            stats[flag] = t
    ints = dict(rows=rows, cols=cols, row_mod=row_mod, row_stride=row_stride, col_div=col_div, col_stride=col_stride,
                centered=int(bool(o.get("centered", True))))

    def make(addr):
        return (dict(input=addr(x.index), scale=address(params[0]),
                     bias=address(params[1]) if params[1] is not None else 0, output=addr(y.index),
                     mean=addr(stats["with_mean"].index) if "with_mean" in stats else 0,
                     inv_std=addr(stats["with_inv_std"].index) if "with_inv_std" in stats else 0),
                ints, dict(epsilon=float(o.get("epsilon", 1e-5))))
    return Step(op, "onnx_normalize", make)


OPS["ONNX_NORMALIZE"] = OpSpec(prepare_normalize, output_types=None)


# ----- ONNX_RESIZE_AXIS -------------------------------------------------------------------------------------

def prepare_resize_axis(ctx: Ctx, op: Op) -> Step:
    """One axis of an ONNX Resize (cython_ops/include/em_onnx_resize.h).  Options: axis, indices and weights
    (out x taps, row-major), extrapolated (out flags, or empty), extrapolation_value."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if not x.dtype == y.dtype == F32:
        raise UnsupportedOpError(f"{op.describe()}: {x.dtype} -> {y.dtype} (float32 is supported)")
    xs = list(ctx.shape(x))
    axis, outer, n_in, inner = axis_geometry(ctx, op, xs)
    o = op.options
    indices = np.asarray(o.get("indices", ()), np.int64)
    weights = np.asarray(o.get("weights", ()), np.float32)
    if indices.ndim != 2 or indices.shape != weights.shape or indices.shape[0] == 0 or indices.shape[1] == 0:
        raise ModelFormatError(f"{op.describe()}: index and weight tables of shapes {list(indices.shape)} and "
                               f"{list(weights.shape)} (out x taps, equal)")
    if indices.min() < 0 or indices.max() >= n_in:
        raise ModelFormatError(f"{op.describe()}: taps outside 0..{n_in - 1} of axis {axis}")
    n_out, taps = indices.shape
    flags = np.asarray(o.get("extrapolated", ()), np.uint8).reshape(-1)
    if flags.size not in (0, n_out):
        raise ModelFormatError(f"{op.describe()}: {flags.size} extrapolation flags for {n_out} outputs")
    ctx.set_output(op, 0, tuple(xs[:axis] + [n_out] + xs[axis + 1:]))
    kept = [ctx.keep_array(indices), ctx.keep_array(weights)] + ([ctx.keep_array(flags)] if flags.size else [])
    ints = dict(outer=outer, inner=inner, out=n_out, taps=taps, **{"in": n_in})

    def make(addr):
        return (dict(input=addr(x.index), output=addr(y.index), indices=address(kept[0]), weights=address(kept[1]),
                     extrapolated=address(kept[2]) if len(kept) > 2 else 0),
                ints, dict(extrapolation=float(o.get("extrapolation_value", 0.0))))
    return Step(op, "onnx_resize_axis", make)


OPS["ONNX_RESIZE_AXIS"] = OpSpec(prepare_resize_axis, output_types=None)
