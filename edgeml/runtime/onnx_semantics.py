"""Prepare functions for what only ONNX models need, with onnxruntime's arithmetic (NUMERICS.md "ONNX int8").

The ops here are emitted by converters.from_onnx only (type names start with ONNX_); the requantization of
conv-like ops for ONNX graphs (`column_requant`) is reached from compiler.column_requant.
"""
from __future__ import annotations

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.runtime import quant as Q

F32 = np.float32


def round_half_even_f32(x) -> np.ndarray:
    """nearbyintf on float32 values (numpy's rint rounds ties to even)."""
    return np.rint(np.asarray(x, dtype=np.float32))


def quantized_bound(value: float, scale: float, zero_point: int) -> int:
    """QuantizeLinear of one float bound (float32 division, ties to even), saturated to int8."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        r = F32(value) / F32(scale)
    r = float(np.clip(r, -1e9, 1e9))
    return int(np.clip(int(round_half_even_f32(r)) + zero_point, Q.INT8_MIN, Q.INT8_MAX))


def activation_range(op, act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """The int8 clamp equal to Relu / Clip followed by QuantizeLinear (exact: rounding is monotone)."""
    clip = op.options.get("onnx_clip")
    if clip is not None:
        lo, hi = clip
        return max(Q.INT8_MIN, quantized_bound(lo, scale, zero_point)), \
            min(Q.INT8_MAX, quantized_bound(hi, scale, zero_point))
    if act == "NONE":
        return Q.INT8_MIN, Q.INT8_MAX
    if act == "RELU":
        return max(Q.INT8_MIN, zero_point), Q.INT8_MAX
    if act == "RELU6":
        return max(Q.INT8_MIN, zero_point), min(Q.INT8_MAX, quantized_bound(6.0, scale, zero_point))
    if act == "RELU_N1_TO_1":
        return max(Q.INT8_MIN, quantized_bound(-1.0, scale, zero_point)), \
            min(Q.INT8_MAX, quantized_bound(1.0, scale, zero_point))
    raise UnsupportedOpError(f"{op.describe()}: activation {act}")


def column_scales(s_in: float, w_scales: np.ndarray, s_out: float) -> np.ndarray:
    """onnxruntime's per-column output scale, in float32: (x_scale * w_scale[c]) / y_scale."""
    return (F32(s_in) * np.asarray(w_scales, dtype=np.float32)) / F32(s_out)


def prepare_quantize_linear(ctx, op):
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != np.float32 or y.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: QuantizeLinear from {x.dtype} to {y.dtype}")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    if y.quant is None or y.quant.per_axis:
        raise ModelFormatError(f"{op.describe()}: output needs per-tensor quantization")
    s, zp = y.quant.scalar()
    n = int(np.prod(xs, dtype=np.int64))
    ints = [n, zp, Q.INT8_MIN, Q.INT8_MAX]

    def make(addr):
        return [addr(x.index), addr(y.index)], ints, [s]
    from edgeml.runtime.compiler import Step
    return Step(op, "onnx_quantize_linear", make, 0)


def prepare_flip_sign_bit(ctx, op):
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if {x.dtype, y.dtype} != {np.dtype(np.uint8), np.dtype(np.int8)}:
        raise UnsupportedOpError(f"{op.describe()}: sign-bit flip between {x.dtype} and {y.dtype}")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = int(np.prod(xs, dtype=np.int64))

    def make(addr):
        return [addr(x.index), addr(y.index)], [n], []
    from edgeml.runtime.compiler import Step
    return Step(op, "onnx_flip_sign_bit", make, 0)


def prepare_clip(ctx, op):
    from edgeml.runtime.compiler import Step
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = int(np.prod(xs, dtype=np.int64))
    lo, hi = op.options["clip"]
    if x.dtype == np.float32 and y.dtype == np.float32:
        from cython_ops.elementwise import UNARY_F32

        def make_f(addr):
            return [addr(x.index), addr(y.index)], [n, UNARY_F32["clamp"]], [lo, hi, 0.0]
        return Step(op, "unary_f32", make_f, 0)
    if x.dtype == np.int8 and y.dtype == np.int8:
        if x.quant is None or y.quant is None or x.quant.scalar() != y.quant.scalar():
            raise UnsupportedOpError(f"{op.describe()}: int8 Clip needs equal input and output quantization")
        s, zp = y.quant.scalar()
        qlo = max(Q.INT8_MIN, quantized_bound(lo, s, zp))
        qhi = min(Q.INT8_MAX, quantized_bound(hi, s, zp))

        def make_q(addr):
            return [addr(x.index), addr(y.index)], [n, qlo, qhi], []
        return Step(op, "onnx_clamp_int8", make_q, 0)
    raise UnsupportedOpError(f"{op.describe()}: Clip from {x.dtype} to {y.dtype}")


PREPARE = {
    "ONNX_QUANTIZE_LINEAR": prepare_quantize_linear,
    "ONNX_FLIP_SIGN_BIT": prepare_flip_sign_bit,
    "ONNX_CLIP": prepare_clip,
}


def softmax_table(x_scale: float, depth: int) -> np.ndarray:
    """onnxruntime's QLinearSoftmax lookup table: e^((i - 255 + shift) * x_scale) in double, stored as float,
    where the shift keeps the sum of `depth` terms below FLT_MAX (log(FLT_MAX / depth) - 5, over x_scale)."""
    shift = np.log(np.float64(F32(np.finfo(np.float32).max) / F32(depth)))
    shift = max(0.0, float(shift) - 5.0) / float(F32(x_scale))
    i = np.arange(256, dtype=np.float64)
    return np.exp((i - 255.0 + shift) * float(F32(x_scale))).astype(np.float32)


def prepare_qlinear_softmax(ctx, op):
    from edgeml.runtime.compiler import Step
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != np.int8 or y.dtype != np.int8 or x.quant is None or y.quant is None:
        raise UnsupportedOpError(f"{op.describe()}: QLinearSoftmax needs quantized int8 input and output")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    depth = int(xs[-1]) if xs else 1
    rows = int(np.prod(xs, dtype=np.int64)) // max(depth, 1)
    s_in, _ = x.quant.scalar()
    s_out, zp = y.quant.scalar()
    unsigned = bool(op.options.get("unsigned", False))
    table = ctx.keep_array(softmax_table(s_in, depth))
    y_scale = float(np.floor(F32(1.0) / F32(s_out)))
    ints = [rows, depth, int(unsigned), zp + (128 if unsigned else 0)]

    def make(addr):
        return [addr(x.index), addr(y.index), table.__array_interface__["data"][0]], ints, [y_scale]
    return Step(op, "onnx_qlinear_softmax", make, 0)


PREPARE["ONNX_QLINEAR_SOFTMAX"] = prepare_qlinear_softmax
