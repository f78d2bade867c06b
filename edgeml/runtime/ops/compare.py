"""EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER, GREATER_EQUAL (bool outputs) and MAXIMUM, MINIMUM, with
broadcasting (cython_ops/include/em_compare.h).

Quantized int8 / uint8 inputs are compared as LiteRT's reference compares them: each input's
`(q - zero_point) << 8` scaled by its own scale (a fixed-point multiplier below one), so two inputs with
different quantization compare by real value, up to that rounding.  MAXIMUM / MINIMUM compare raw values, as
LiteRT does, so their int8 inputs and output must share scale and zero point."""
from __future__ import annotations

from functools import partial

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import qparams
from edgeml.runtime.ops.element_types import (BOOL, F32, I8, I16, I32, I64, U8, dtype_code, pad6_of,
                                              require_equal_quantization, require_same_type)
from edgeml.runtime.ops.elementwise import broadcast_shape, broadcast_strides
from edgeml.runtime.ops.folding import fold, inputs_constant
from edgeml.runtime.plan import Ctx, OpSpec, Step

COMPARISONS = {"EQUAL": 0, "NOT_EQUAL": 1, "LESS": 2, "LESS_EQUAL": 3, "GREATER": 4, "GREATER_EQUAL": 5}
VERSIONS = {"EQUAL": 5, "NOT_EQUAL": 4, "LESS": 3, "LESS_EQUAL": 2, "GREATER": 2, "GREATER_EQUAL": 3}   # LiteRT's
NUMPY_COMPARISONS = {"EQUAL": np.equal, "NOT_EQUAL": np.not_equal, "LESS": np.less, "LESS_EQUAL": np.less_equal,
                     "GREATER": np.greater, "GREATER_EQUAL": np.greater_equal}
COMPARE_LEFT_SHIFT = 8                 # LiteRT's ComparisonQuantized


def binary_operands(ctx: Ctx, op: Op):
    """(a, b, y, output shape, broadcast ints): two inputs of one type broadcast against each other."""
    a, b, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    require_same_type(op, a, b)
    out = broadcast_shape(op, ctx.shape(a), ctx.shape(b))
    if len(out) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(out)} > 6")
    ints = dict(dims=pad6_of(op, out), strides1=broadcast_strides(ctx.shape(a), out),
                strides2=broadcast_strides(ctx.shape(b), out))
    return a, b, y, out, ints


def compare_scale(op: Op, t, rounding: int) -> tuple[int, int]:
    """The input's own scale as LiteRT's comparison multiplier: QuantizeMultiplier(scale), which its
    MultiplyByQuantizedMultiplierSmallerThanOneExp only evaluates for scales below one."""
    scale, _ = qparams(t, op)
    m, shift = Q.quantize_multiplier(float(np.float64(Q.F32(scale))), rounding)
    if shift > 0:
        raise UnsupportedOpError(f"{op.describe()}: {t.describe()} has scale {scale}; LiteRT compares quantized "
                                 "values only for scales below 1")
    return m, shift


def prepare_compare(ctx: Ctx, op: Op, name: str):
    a, b, y, out, ints = binary_operands(ctx, op)
    if y.dtype != BOOL:
        raise ModelFormatError(f"{op.describe()}: output {y.describe()} must be bool, not {y.dtype}")
    equality = name in ("EQUAL", "NOT_EQUAL")
    allowed = (F32, I8, U8, I16, I32, I64) + ((BOOL,) if equality else ())
    code = dtype_code(op, a, allowed)
    # int8 / uint8 always compare rescaled values; int16 only EQUAL / NOT_EQUAL with quantization (LiteRT)
    rescale = a.dtype in (I8, U8) or (a.dtype == I16 and equality and a.quant is not None)
    if a.dtype == I16 and name == "NOT_EQUAL" and not rescale:
        raise UnsupportedOpError(f"{op.describe()}: NOT_EQUAL of unquantized int16 is not supported (LiteRT's "
                                 "kernel leaves the output unwritten)")
    quant = dict(zp1=0, zp2=0, mult1=0, shift1=0, mult2=0, shift2=0)
    if rescale:
        (m1, s1), (m2, s2) = compare_scale(op, a, ctx.rounding), compare_scale(op, b, ctx.rounding)
        quant = dict(zp1=qparams(a, op)[1], zp2=qparams(b, op)[1], mult1=m1, shift1=s1, mult2=m2, shift2=s2)
    elif inputs_constant(ctx, op):
        return fold(ctx, op, 0, NUMPY_COMPARISONS[name](ctx.constants[a.index], ctx.constants[b.index]))
    ctx.set_output(op, 0, out)
    ints = dict(ints, dtype=code, op=COMPARISONS[name], rescale=int(rescale), left_shift=COMPARE_LEFT_SHIFT,
                mode=ctx.rounding, **quant)

    def make(addr):
        return dict(input1=addr(a.index), input2=addr(b.index), output=addr(y.index)), ints, {}
    return Step(op, "compare", make, 0, 0)


def prepare_minmax(ctx: Ctx, op: Op, is_max: bool):
    a, b, y, out, ints = binary_operands(ctx, op)
    code = dtype_code(op, a, (F32, I8, U8, I16, I32, I64))
    require_same_type(op, a, y)
    require_equal_quantization(op, a, b, y)
    if inputs_constant(ctx, op):
        x1, x2 = ctx.constants[a.index], ctx.constants[b.index]
        return fold(ctx, op, 0, np.where(x1 > x2 if is_max else x1 < x2, x1, x2))
    ctx.set_output(op, 0, out)
    ints = dict(ints, dtype=code, is_max=int(is_max))

    def make(addr):
        return dict(input1=addr(a.index), input2=addr(b.index), output=addr(y.index)), ints, {}
    return Step(op, "minmax", make, 0, 0)


OPS = {name: OpSpec(partial(prepare_compare, name=name), max_version=VERSIONS[name], output_types=None)
       for name in COMPARISONS}
OPS.update({
    "MAXIMUM": OpSpec(partial(prepare_minmax, is_max=True), max_version=4, output_types=None),
    "MINIMUM": OpSpec(partial(prepare_minmax, is_max=False), max_version=4, output_types=None),
})
