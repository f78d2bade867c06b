"""QUANTIZE (float -> int8, int8 -> int8 requantize) and DEQUANTIZE (int8 -> float; constants folded at load).
uint8 tensors arrive held as int8 (converters/tflite_uint8.py), so uint8 <-> int8 and float <-> uint8 are these
same steps; FLIP_SIGN_BIT joins a uint8 graph input or output to its int8 twin."""
from __future__ import annotations

from typing import Optional

import numpy as np

from cython_ops import load_activations, load_ops, load_tables
from cython_ops.elementwise import requantize_table
from edgeml import numerics as Q
from edgeml.errors import UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops import int16x8
from edgeml.runtime.ops.common import element_count, qparams
from edgeml.runtime.ops.folding import fold
from edgeml.runtime.ops.onnx_quantized import prepare_flip_sign_bit
from edgeml.runtime.plan import Ctx, OpSpec, Step, address
from edgeml.runtime.tables import byte_table, lut_step

INT8, FLOAT32 = np.dtype(np.int8), np.dtype(np.float32)


def prepare_quantize(ctx: Ctx, op: Op) -> Step:
    head = load_activations.float_quantize_shell(ctx, op, FLOAT32, INT8)     # float32 -> int8, checked in one call
    if head is not None:
        return quantize_f32_step(op, *head)
    made = load_activations.int8_requantize_shell(ctx, op, INT8)    # int8 -> int8: checks and table in one call
    if made is not None:
        return lut_step(op, *made)
    head = load_ops.int8_unary_shell(ctx, op, INT8)     # int8 -> int8, read and checked in one call
    if head is not None:
        xi, yi, n, s_in, zp_in, s_out, zp_out = head
        return requantize_step(ctx, op, xi, yi, n, s_in, zp_in, s_out, zp_out)
    if int16x8.INT16 in (ctx.tensor(op, 0).dtype, ctx.tensor(op, 0, "output").dtype):
        return int16x8.prepare_quantize(ctx, op)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = element_count(xs)
    if y.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: quantizing to {y.dtype} is not supported (int8 only)")
    s_out, zp_out = qparams(y, op)
    if x.dtype == np.float32:
        return quantize_f32_step(op, x.index, y.index, n, s_out, zp_out)
    if x.dtype == np.int8:     # int8 or uint8 (held as int8) in: a table of em_requantize_int8's 256 results
        s_in, zp_in = qparams(x, op)
        return requantize_step(ctx, op, x.index, y.index, n, s_in, zp_in, s_out, zp_out)
    raise UnsupportedOpError(f"{op.describe()}: quantizing from {x.dtype} is not supported")


def quantize_f32_step(op: Op, xi: int, yi: int, n: int, s_out: float, zp_out: int) -> Step:
    """float32 -> int8 QUANTIZE (em_elementwise.h em_quantize_f32_int8_*)."""
    def make(addr):
        return dict(input=addr(xi), output=addr(yi)), dict(n=n, zp=zp_out), dict(scale=s_out)
    return Step(op, "quantize_f32_int8", make, 0)


def requantize_step(ctx: Ctx, op: Op, xi: int, yi: int, n: int, s_in: float, zp_in: int, s_out: float,
                    zp_out: int) -> Step:
    """int8 -> int8 QUANTIZE: a table of em_requantize_int8's 256 results."""
    m, sh = Q.quantize_multiplier(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)), ctx.rounding)
    table = ctx.keep_array(np.frombuffer(requantize_table(zp_in, zp_out, m, sh, -128, 127, ctx.rounding), np.int8))
    return lut_step(op, xi, yi, n, table)


def prepare_dequantize(ctx: Ctx, op: Op) -> Optional[Step]:
    head = load_tables.int8_dequantize_shell(ctx, op, INT8, FLOAT32)     # int8 -> float32: checks and table, one call
    if head is not None:
        xi, yi, n, table = head
        return dequantize_step(op, xi, yi, n, table)
    values = load_tables.int8_dequantize_constant(ctx, op, INT8, FLOAT32)     # a constant's values in one pass
    if values is not None:
        return fold(ctx, op, 0, values)
    if int16x8.is_int16(ctx, op) and op.inputs[0] not in ctx.constants:
        return int16x8.prepare_dequantize(ctx, op)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if y.dtype != np.float32:
        raise UnsupportedOpError(f"{op.describe()}: dequantizing to {y.dtype} is not supported")
    if x.index in ctx.constants:         # e.g. float16 or int8 weights: fold at load
        data = ctx.constants[x.index]
        if data.dtype == np.float16:
            folded = data.astype(np.float32)
        elif data.dtype == np.int8 and x.quant is not None:
            q = x.quant
            shape = [1] * data.ndim
            if q.per_axis:
                shape[q.axis] = -1
            folded = (q.scale.astype(np.float32).astype(np.float64).reshape(shape)
                      * (data.astype(np.float64) - q.zero_point.reshape(shape))).astype(np.float32)
        else:
            raise UnsupportedOpError(f"{op.describe()}: dequantizing constant {data.dtype} is not supported")
        return fold(ctx, op, 0, folded)          # a graph output (e.g. SSD anchors) gets a copy step
    if x.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: dequantizing {x.dtype} is not supported (int8 only)")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    s, zp = qparams(x, op)
    n = element_count(xs)

    # em_dequantize_int8_f32 on every byte: one vector table lookup per element (em_lut.h)
    return dequantize_step(op, x.index, y.index, n, ctx.keep_array(byte_table("dequantize_int8_f32", dict(zp=zp),
                                                                              dict(scale=s), np.float32)))


def dequantize_step(op: Op, xi: int, yi: int, n: int, table: np.ndarray) -> Step:
    """int8 -> float32 DEQUANTIZE: the kept table of em_dequantize_int8_f32's 256 results, looked up."""
    def make(addr):
        return dict(input=addr(xi), output=addr(yi), table=address(table)), dict(n=n), {}
    return Step(op, "lut_int8_f32", make, 0)


OPS = {
    "QUANTIZE": OpSpec(prepare_quantize, max_version=3, output_types=int16x8.WITH_INT16 + (np.dtype(np.int32),)),
    "DEQUANTIZE": OpSpec(prepare_dequantize, max_version=6),
    "FLIP_SIGN_BIT": OpSpec(prepare_flip_sign_bit, output_types=None),
}
