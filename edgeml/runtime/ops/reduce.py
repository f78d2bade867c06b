"""MEAN over any set of axes, int8 (LiteRT's QuantizedMeanOrSum) and float32; REDUCE_MAX, REDUCE_MIN, SUM,
REDUCE_PROD, ARG_MAX and ARG_MIN (cython_ops/include/em_reduce.h)."""
from __future__ import annotations

from functools import partial

import numpy as np

from cython_ops import load_ops, load_reduce
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops import int16x8
from edgeml.runtime.ops.common import element_count, io_kind, qparams, resolve_axis, row_major_strides
from edgeml.runtime.ops.element_types import (BOOL, DTYPE_CODES, F32, I8, I16, I32, I64, U8, dtype_code, pad6_of,
                                              require_equal_quantization, require_same_type)
from edgeml.runtime.ops.folding import fold
from edgeml.runtime.plan import Ctx, OpSpec, Step


def merge_walk_dims(dims: list, out_strides: list) -> tuple[list, list]:
    """The same in-order walk over fewer dims (6-D, leading 1s): size-1 dims dropped, two reduced dims joined,
    and two kept dims joined where the output steps through them as through one, so the kernel's innermost runs
    (a vector add when kept) are as long as possible.  Each output still takes its inputs in the same order."""
    merged = []
    for d, s in zip(dims, out_strides):
        if d == 1:
            continue
        if merged and merged[-1][1] == s * d:          # both reduced (0 == 0 * d), or kept and contiguous
            merged[-1] = (merged[-1][0] * d, s)
        else:
            merged.append((d, s))
    merged = [(1, 0)] * (6 - len(merged)) + merged
    return [m[0] for m in merged], [m[1] for m in merged]


def prepare_mean(ctx: Ctx, op: Op) -> Step:
    ints = load_ops.int8_mean_shell(ctx, op, I8, I32, I64)     # the common int8 case in one call
    if ints is not None:
        return mean_step(op, op.inputs[0], op.outputs[0], ints)
    kind = "int16" if int16x8.is_int16(ctx, op) else io_kind(ctx, op)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = list(ctx.shape(x))
    rank = len(xs)
    axes_raw = [int(a) for a in ctx.const(ctx.tensor(op, 1), f"{op.describe()} axes").reshape(-1)]
    axes = []
    for a in axes_raw:
        a2 = a + rank if a < 0 else a
        if not 0 <= a2 < rank:
            raise ModelFormatError(f"{op.describe()}: axis {a} outside rank {rank}")
        if a2 not in axes:
            axes.append(a2)
    keep = bool(op.options.get("keep_dims", False))
    out = [1 if d in axes else s for d, s in enumerate(xs)] if keep else [s for d, s in enumerate(xs) if d not in axes]
    ctx.set_output(op, 0, tuple(out))
    if rank > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank > 6")
    count = element_count([xs[a] for a in axes])
    n_out = element_count(out)
    kept = [s for d, s in enumerate(xs) if d not in axes]
    kst = row_major_strides(kept)
    ost, k = [], 0
    for d in range(rank):
        if d in axes:
            ost.append(0)
        else:
            ost.append(kst[k])
            k += 1
    in6 = pad6_of(op, xs)
    ost6 = [0] * (6 - rank) + ost
    if kind == "f32":
        is_float, zp_in, zp_out, m, sh = 1, 0, 0, 0, 0
    elif kind == "int16":
        return int16x8.prepare_mean(ctx, op, dict(dims=in6, out_strides=ost6, outputs=n_out, reduced=count))
    else:
        s_in, zp_in = qparams(x, op)
        s_out, zp_out = qparams(y, op)
        if count * 255 >= 2 ** 31:
            raise UnsupportedOpError(f"{op.describe()}: {count} reduced elements overflow the int32 sum")
        m, sh = Q.mean_multiplier(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)), count, ctx.rounding)
        is_float = 0
    in6, ost6 = merge_walk_dims(in6, ost6)
    ints = dict(dims=in6, out_strides=ost6, outputs=n_out, reduced=count, is_float=is_float, in_zp=zp_in,
                out_zp=zp_out, mult=m, shift=sh, mode=ctx.rounding)
    return mean_step(op, x.index, y.index, ints)


def mean_step(op: Op, xi: int, yi: int, ints: dict) -> Step:
    def make(addr):
        return dict(input=addr(xi), output=addr(yi), scratch=addr("scratch")), ints, {}
    return Step(op, "mean", make, max(ints["outputs"], 1) * 4)


OPS = {"MEAN": OpSpec(prepare_mean, max_version=3, output_types=int16x8.WITH_INT16)}


# ----- REDUCE_MAX, REDUCE_MIN, SUM, REDUCE_PROD, ARG_MAX, ARG_MIN --------------------------------------------

REDUCE_KINDS = {"REDUCE_MAX": 0, "REDUCE_MIN": 1, "SUM": 2, "REDUCE_PROD": 3}      # EM_REDUCE_KIND_*
REDUCE_TYPES = (F32, I8, U8, I16, I32, I64)
REDUCE_CODES = {d: DTYPE_CODES[d] for d in REDUCE_TYPES}      # (load_reduce.reduce_shell's types)
QUANTIZED = (I8, U8, I16)         # types whose quantization REDUCE_MAX / REDUCE_MIN keep
SHELL_KINDS = ("REDUCE_MAX", "REDUCE_MIN")
NUMPY_REDUCE = {"REDUCE_MAX": np.max, "REDUCE_MIN": np.min, "SUM": np.sum, "REDUCE_PROD": np.prod}


def reduction_geometry(ctx: Ctx, op: Op):
    """(input shape, resolved axes, output shape, 6-D input dims, 6-D output strides) of a reduction with a
    constant int32 axis tensor; sets the output shape."""
    xs = list(ctx.shape(ctx.tensor(op, 0)))
    axes_t = ctx.tensor(op, 1)
    if axes_t.dtype != np.int32:
        raise ModelFormatError(f"{op.describe()}: axis {axes_t.describe()} must be int32, not {axes_t.dtype}")
    axes = []
    for a in ctx.const(axes_t, f"{op.describe()} axes").reshape(-1) if xs else ():     # a scalar ignores its axes
        a = resolve_axis(op, int(a), len(xs))
        if a not in axes:
            axes.append(a)
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(xs)} > 6")
    kept = [d for d in range(len(xs)) if d not in axes]
    if op.options.get("keep_dims", False):
        out = [1 if d in axes else s for d, s in enumerate(xs)]
    else:
        out = [xs[d] for d in kept]
    strides = dict(zip(kept, row_major_strides([xs[d] for d in kept])))
    ctx.set_output(op, 0, tuple(out))
    return xs, axes, out, pad6_of(op, xs), [0] * (6 - len(xs)) + [strides.get(d, 0) for d in range(len(xs))]


def prepare_reduce(ctx: Ctx, op: Op, name: str) -> Step:
    """REDUCE_MAX / REDUCE_MIN / SUM / REDUCE_PROD as LiteRT's reference computes them.  Quantized SUM and
    REDUCE_PROD requantize; REDUCE_MAX / REDUCE_MIN need one scale and zero point on input and output.  LiteRT's
    reference SUM runs its uint8 kernel on int8 and int16 tensors (reading their bytes as uint8 values, writing
    one byte per int16 output): that is a bug, not a contract, so int8 and int16 SUM follow the same arithmetic
    on the real values, which is what TFLite Micro computes (tested against it)."""
    if name in SHELL_KINDS:        # REDUCE_MAX / REDUCE_MIN's reading and checks in one call
        made = load_reduce.reduce_shell(ctx, op, REDUCE_CODES, QUANTIZED, I32)
        if made is not None:
            xi, yi, dims, ost, n_out, code, from_first = made
            return reduce_step(op, xi, yi, dims, ost, n_out, code, name, from_first)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    require_same_type(op, x, y)
    code = dtype_code(op, x, REDUCE_TYPES)
    xs, axes, out, dims, ost = reduction_geometry(ctx, op)
    n_out = element_count(out)
    quantized = x.dtype in (I8, U8, I16) and x.quant is not None
    if name == "SUM" and x.dtype in (I8, U8, I16) and not quantized:
        raise UnsupportedOpError(f"{op.describe()}: SUM of {x.dtype} without quantization is not supported "
                                 "(LiteRT requantizes every 8- and 16-bit SUM)")
    common = dict(dims=dims, out_strides=ost, outputs=n_out)
    if quantized and name == "SUM":
        s_in, zp_in = qparams(x, op)
        s_out, zp_out = qparams(y, op)
        if x.dtype == I16 and (zp_in or zp_out):
            raise ModelFormatError(f"{op.describe()}: int16 SUM needs zero points 0, got {zp_in} and {zp_out}")
        m, sh = Q.quantize_multiplier(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)), ctx.rounding)
        info = np.iinfo(x.dtype)
        ints = dict(common, reduced=element_count([xs[a] for a in axes]), dtype=DTYPE_CODES[x.dtype], in_zp=zp_in,
                    out_zp=zp_out, mult=m, shift=sh, mode=ctx.rounding, lo=int(info.min), hi=int(info.max))

        def make_sum(addr):
            return dict(input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints, {}
        return Step(op, "reduce_sum_quantized", make_sum, max(n_out, 1) * 4)
    if quantized and name == "REDUCE_PROD":
        if x.dtype == U8:
            raise UnsupportedOpError(f"{op.describe()}: quantized uint8 REDUCE_PROD is not supported (nor by LiteRT)")
        s_in, zp_in = qparams(x, op)
        s_out, zp_out = qparams(y, op)
        if x.dtype == I16 and (zp_in or zp_out):
            raise ModelFormatError(f"{op.describe()}: int16 REDUCE_PROD needs zero points 0, got {zp_in} and {zp_out}")
        m = sh = 0
        if element_count(xs) and n_out:
            count = element_count(xs) // n_out
            # LiteRT rescales each product by s_in / s_out^(1 / count) (GetQuantProdScaling)
            m, sh = Q.quantize_multiplier(float(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)) ** (1.0 / count)),
                                          ctx.rounding)
            if m and not -31 <= sh < 8:
                raise UnsupportedOpError(f"{op.describe()}: product scale {s_in} / {s_out}^(1/{count}) is outside "
                                         "LiteRT's int64 rescaling range")
        info = np.iinfo(x.dtype)
        ints = dict(common, dtype=code, in_zp=zp_in, out_zp=zp_out, mult=m, shift=sh, lo=info.min, hi=info.max)

        def make_prod(addr):
            return dict(input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints, {}
        return Step(op, "reduce_prod_quantized", make_prod, max(n_out, 1) * 5)
    if quantized:
        require_equal_quantization(op, x, y)
    if x.index in ctx.constants and x.dtype in (I32, I64):       # shape arithmetic: integer results are exact
        data = ctx.constants[x.index]
        exact = {"dtype": data.dtype} if name in ("SUM", "REDUCE_PROD") else {}      # (np.max / np.min take none)
        return fold(ctx, op, 0, NUMPY_REDUCE[name](data, axis=tuple(axes), **exact).reshape(out))
    return reduce_step(op, x.index, y.index, dims, ost, n_out, code, name, len(axes) == len(xs))


def reduce_step(op: Op, xi: int, yi: int, dims: list, ost: list, n_out: int, code: int, name: str,
                from_first: bool) -> Step:
    """The "reduce" kernel's step (REDUCE_MAX / REDUCE_MIN, and SUM / REDUCE_PROD without requantization)."""
    walk_dims, walk_strides = merge_walk_dims(dims, ost)       # longer innermost runs, the same input order
    ints = dict(dims=walk_dims, out_strides=walk_strides, outputs=n_out, dtype=code, kind=REDUCE_KINDS[name],
                from_first=int(from_first))

    def make(addr):
        return dict(input=addr(xi), output=addr(yi)), ints, {}
    return Step(op, "reduce", make, 0)


def prepare_arg_min_max(ctx: Ctx, op: Op, is_max: bool) -> Step:
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    code = dtype_code(op, x, (F32, I8, U8, I32, BOOL))
    if y.dtype not in (I32, I64):
        raise UnsupportedOpError(f"{op.describe()}: output type {y.dtype} (int32 or int64 expected)")
    axis_t = ctx.tensor(op, 1)
    if axis_t.dtype not in (I32, I64) or element_count(ctx.shape(axis_t)) != 1:
        raise ModelFormatError(f"{op.describe()}: axis {axis_t.describe()} must be one int32 / int64 value")
    xs = list(ctx.shape(x))
    if not xs:
        raise ModelFormatError(f"{op.describe()}: input {x.describe()} must have at least one dimension")
    axis = resolve_axis(op, int(ctx.const(axis_t, f"{op.describe()} axis").reshape(-1)[0]), len(xs))
    if xs[axis] == 0:
        raise ModelFormatError(f"{op.describe()}: cannot take the arg {'max' if is_max else 'min'} of an empty axis")
    ctx.set_output(op, 0, tuple(xs[:axis] + xs[axis + 1:]))
    ints = dict(outer=element_count(xs[:axis]), axis_size=xs[axis], inner=element_count(xs[axis + 1:]), dtype=code,
                is_max=int(is_max), int64_output=int(y.dtype == I64))

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, "arg_min_max", make, 0)


OPS.update({
    "REDUCE_MAX": OpSpec(partial(prepare_reduce, name="REDUCE_MAX"), max_version=3, output_types=None),
    "REDUCE_MIN": OpSpec(partial(prepare_reduce, name="REDUCE_MIN"), max_version=3, output_types=None),
    "SUM": OpSpec(partial(prepare_reduce, name="SUM"), max_version=2, output_types=None),
    "REDUCE_PROD": OpSpec(partial(prepare_reduce, name="REDUCE_PROD"), max_version=2, output_types=None),
    "ARG_MAX": OpSpec(partial(prepare_arg_min_max, is_max=True), max_version=3, output_types=None),
    "ARG_MIN": OpSpec(partial(prepare_arg_min_max, is_max=False), max_version=3, output_types=None),
})
