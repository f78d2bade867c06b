"""How conv-like ops turn int32 sums into int8: the kernels' requantization modes (em_requant.h) and the
per-column parameters of each contract (TFLite's fixed-point multipliers, LiteRT's uint8 (legacy) ones,
onnxruntime's float scales)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from cython_ops import load_pack
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import REQUANT_FLOAT as IR_REQUANT_FLOAT, UINT8, Op
from edgeml.runtime.ops.common import qparams
from edgeml.runtime.load_profile import timed
from edgeml.runtime.plan import Ctx, address


REQUANT_DOUBLE_SCALE = 2     # round(acc * scale) in double: LiteRT's reference FULLY_CONNECTED
REQUANT_FLOAT = 3            # (float)acc * scale in float32, ties to even: onnxruntime (MLAS)


@dataclass
class ColumnRequant:
    """How a conv-like op turns each output column's int32 sum into int8: the kernels' requantization mode
    (em_requant.h) and its per-column parameters.  One kernel serves every mode."""
    mode: int
    mult: np.ndarray          # int32, fixed-point modes
    shift: np.ndarray         # int32
    scale64: np.ndarray       # float64, REQUANT_DOUBLE_SCALE
    scale32: np.ndarray       # float32, REQUANT_FLOAT
    out_zp: int
    act_min: int
    act_max: int
    w_zp: int = 0             # the weights' zero point (uint8 models' asymmetric weights, held as int8)

    def arrays(self, ctx: Ctx, width: Optional[int] = None) -> list:
        """[mult, shift, scale64, scale32] kept alive for the kernels, zero-padded to `width` columns."""
        out = []
        for a in (self.mult, self.shift, self.scale64, self.scale32):
            if width is not None and width > a.size:      # (np.pad costs more than the copy)
                padded = ctx.keep_new((width,), a.dtype)
                padded[:a.size] = a
                padded[a.size:] = 0
                out.append(padded)
            else:
                out.append(ctx.keep_array(a))
        return out


def pointers(arrays: list) -> dict:
    """The kernels' requantization pointer slots for ColumnRequant.arrays() (or a packer's copy of them)."""
    mult, shift, scale64, scale32 = arrays
    return dict(mult=address(mult), shift=address(shift), double_scales=address(scale64),
                float_scales=address(scale32))


@timed("of which: requantization")
def column_requant(ctx: Ctx, op: Op, x, w, y, n_out: int, axis: int, act: str,
                   fully_connected: bool = False) -> ColumnRequant:
    """Per-column requantization of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: TFLite's contract, or
    onnxruntime's where the reader marked the op requant="float"."""
    s_in, _ = qparams(x, op)
    s_out, out_zp = qparams(y, op)
    if w.quant is None:
        raise ModelFormatError(f"{op.describe()}: int8 weights {w.describe()} have no quantization")
    if op.options.get(UINT8):
        return uint8_column_requant(ctx, op, s_in, w, s_out, out_zp, n_out, act, fully_connected)
    ws = w.quant.scale
    if ws.size not in (1, n_out):
        raise ModelFormatError(f"{op.describe()}: {ws.size} weight scales for {n_out} output channels")
    if ws.size > 1 and w.quant.axis != axis:
        raise ModelFormatError(f"{op.describe()}: weights quantized along axis {w.quant.axis}, expected {axis}")
    if op.options.get("requant") == IR_REQUANT_FLOAT:        # onnxruntime: float32 scales, float requantization
        return float_column_requant(op, s_in, w, s_out, out_zp, n_out, act)
    # effective scale in double: input_scale * filter_scale / output_scale, the zero-point check and the
    # activation range in one C call
    zps = w.quant.zero_point.reshape(-1).astype(np.int64, copy=False)
    mult, shift, real, real32, w_zp_nonzero, act_range = load_pack.tflite_requant(
        s_in, ws.reshape(-1).astype(np.float64, copy=False), zps, s_out, out_zp, n_out, ctx.rounding,
        load_pack.ACTIVATION_CODES[act])
    if w_zp_nonzero:
        raise UnsupportedOpError(f"{op.describe()}: int8 weights with a non-zero zero point")
    mode = ctx.rounding
    if fully_connected and ctx.rounding == Q.ROUNDING_MODES["double"]:
        mode = REQUANT_DOUBLE_SCALE      # LiteRT's reference FULLY_CONNECTED rescales in double
    amin, amax = act_range or Q.activation_range_int8(act, s_out, out_zp)
    return ColumnRequant(mode, mult, shift, real, real32, out_zp, amin, amax)


@dataclass
class ColumnSource:
    """What packing_gemm.pack_gemm computes an int8 GEMM's per-column requantization from in C: TFLite's scales
    (given None), or the four ColumnRequant arrays computed here (uint8 models, onnxruntime's float contract)."""
    mode: int
    out_zp: int
    act_min: int
    act_max: int
    w_zp: int
    n_out: int
    input_scale: float = 0.0
    weight_scales: Optional[np.ndarray] = None     # float64, n_out values or one
    output_scale: float = 0.0
    given: Optional[tuple] = None                  # (mult, shift, scale64, float32 scale32)

    def column_requant(self, rounding: int) -> ColumnRequant:
        """The ColumnRequant these stand for (the prepares that pack in Python: Winograd)."""
        if self.given is not None:
            mult, shift, scale64, scale32 = self.given
        else:
            mult, shift, scale64, scale32 = load_pack.tflite_column_scales(
                self.input_scale, self.weight_scales, self.output_scale, self.n_out, rounding)
        return ColumnRequant(self.mode, mult, shift, scale64, scale32, self.out_zp, self.act_min, self.act_max,
                             self.w_zp)


def given_columns(rq: ColumnRequant) -> ColumnSource:
    return ColumnSource(rq.mode, rq.out_zp, rq.act_min, rq.act_max, rq.w_zp, rq.mult.size,
                        given=(rq.mult, rq.shift, rq.scale64, rq.scale32.astype(np.float32, copy=False)))


def column_source(ctx: Ctx, op: Op, x, w, y, n_out: int, axis: int, act: str,
                  fully_connected: bool = False) -> ColumnSource:
    """column_requant's checks, in its order and with its messages, leaving TFLite's per-column multipliers to the
    one C call that packs the weights."""
    s_in, _ = qparams(x, op)
    s_out, out_zp = qparams(y, op)
    if w.quant is None:
        raise ModelFormatError(f"{op.describe()}: int8 weights {w.describe()} have no quantization")
    if op.options.get(UINT8):
        return given_columns(uint8_column_requant(ctx, op, s_in, w, s_out, out_zp, n_out, act, fully_connected))
    ws = w.quant.scale
    if ws.size not in (1, n_out):
        raise ModelFormatError(f"{op.describe()}: {ws.size} weight scales for {n_out} output channels")
    if ws.size > 1 and w.quant.axis != axis:
        raise ModelFormatError(f"{op.describe()}: weights quantized along axis {w.quant.axis}, expected {axis}")
    if op.options.get("requant") == IR_REQUANT_FLOAT:
        return given_columns(float_column_requant(op, s_in, w, s_out, out_zp, n_out, act))
    if np.count_nonzero(w.quant.zero_point):        # (a third of .any()'s cost on a few values)
        raise UnsupportedOpError(f"{op.describe()}: int8 weights with a non-zero zero point")
    mode = ctx.rounding
    if fully_connected and ctx.rounding == Q.ROUNDING_MODES["double"]:
        mode = REQUANT_DOUBLE_SCALE      # LiteRT's reference FULLY_CONNECTED rescales in double
    amin, amax = int8_activation_range(act, s_out, out_zp)
    return ColumnSource(mode, out_zp, amin, amax, 0, n_out, s_in, ws.reshape(-1).astype(np.float64, copy=False),
                        s_out)


def float_column_requant(op: Op, s_in: float, w, s_out: float, out_zp: int, n_out: int, act: str) -> ColumnRequant:
    """onnxruntime's contract (the reader marked the op requant="float"): float32 scales, float requantization."""
    if w.quant.zero_point.any():
        raise UnsupportedOpError(f"{op.describe()}: int8 weights with a non-zero zero point")
    ws = w.quant.scale
    ws = ws.reshape(-1).astype(np.float64) if ws.size == n_out else np.full(n_out, ws.reshape(-1)[0], np.float64)
    scale32 = Q.column_scales(s_in, ws, s_out)
    amin, amax = float_activation_range(op, act, s_out, out_zp)
    zeros = np.zeros(n_out, np.int32)
    return ColumnRequant(REQUANT_FLOAT, zeros, zeros, scale32.astype(np.float64), scale32, out_zp, amin, amax)


def int8_activation_range(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """numerics.activation_range_int8, computed in C (its Python form where a bound's quotient is beyond int64)."""
    return load_pack.activation_range_int8(load_pack.ACTIVATION_CODES[act], scale, zero_point) or \
        Q.activation_range_int8(act, scale, zero_point)


def tflite_requant(input_scale: float, weight_scales: np.ndarray, weight_zero_points: np.ndarray, output_scale: float,
                   out_zp: int, n: int, rounding: int, activation: int) -> tuple:
    """The numpy form of load_pack.tflite_requant: tflite_column_scales' four arrays, whether a weight zero point is
    nonzero, and the int8 activation range (activation: load_pack.ACTIVATION_CODES)."""
    if np.asarray(weight_zero_points).any():
        return None, None, None, None, True, None
    name = {code: act for act, code in load_pack.ACTIVATION_CODES.items()}[activation]
    return tflite_column_scales(input_scale, weight_scales, output_scale, n, rounding) + (
        False, Q.activation_range_int8(name, output_scale, out_zp))


def tflite_column_scales(input_scale: float, weight_scales: np.ndarray, output_scale: float, n: int,
                         rounding: int) -> tuple:
    """The numpy form of load_pack.tflite_column_scales: (multipliers, shifts, real scales in float64 and float32) of
    real = float32 input_scale * weight_scale / float32 output_scale in double, one weight scale serving every
    column."""
    ws = weight_scales.astype(np.float64) if weight_scales.size == n else np.full(n, weight_scales[0], np.float64)
    # (the double arithmetic of the reference's PopulateConvolutionQuantizationParams)
    real = (np.float64(Q.F32(input_scale)) * ws) / np.float64(Q.F32(output_scale))
    mult, shift = Q.quantize_multipliers(real, rounding)
    return mult, shift, real, real.astype(np.float32)


def uint8_column_requant(ctx: Ctx, op: Op, s_in: float, w, s_out: float, out_zp: int, n_out: int,
                         act: str, fully_connected: bool = False) -> ColumnRequant:
    """LiteRT's uint8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED (PopulateConvolutionQuantizationParams' legacy
    branch): one multiplier from (float32 input_scale * weight_scale) / output_scale in double (the bias scale is
    not read), any weight zero point; FULLY_CONNECTED rescales in double like the int8 reference kernel."""
    if w.quant.per_axis:
        raise UnsupportedOpError(f"{op.describe()}: uint8 weights {w.describe()} quantized per channel "
                                 f"({w.quant.scale.size} scales); LiteRT's uint8 kernels take one scale")
    s_w, w_zp = w.quant.scalar()
    if not s_w > 0:
        raise ModelFormatError(f"{op.describe()}: weights {w.describe()} have quantization scale {s_w}")
    product = uint8_scale_product(op, s_in, s_w)
    check_uint8_bias(ctx, op)
    real = product / float(Q.F32(s_out))
    mult, shift = Q.quantize_multiplier(real, ctx.rounding)
    amin, amax = int8_activation_range(act, s_out, out_zp)
    mode = ctx.rounding
    if fully_connected and ctx.rounding == Q.ROUNDING_MODES["double"]:
        mode = REQUANT_DOUBLE_SCALE
    mults, shifts, reals, reals32 = np.empty(n_out, np.int32), np.empty(n_out, np.int32), np.empty(n_out), \
        np.empty(n_out, np.float32)
    mults.fill(mult)
    shifts.fill(shift)
    reals.fill(real)
    reals32.fill(real)      # (float32 of the double: what astype gives)
    return ColumnRequant(mode, mults, shifts, reals, reals32, out_zp, amin, amax, w_zp=int(w_zp))


def uint8_scale_product(op: Op, s_in: float, s_w: float) -> float:
    """float32 input scale * float32 weight scale, in float32 (LiteRT's uint8 arithmetic); a product past float32's
    range is refused (it would make an infinite multiplier)."""
    if s_in * s_w < 3.0e38:      # (well inside float32's range, its rounding included: no overflow to test for)
        return float(Q.F32(s_in) * Q.F32(s_w))
    with np.errstate(over="ignore"):
        product = float(Q.F32(s_in) * Q.F32(s_w))
    if not math.isfinite(product):
        raise ModelFormatError(f"{op.describe()}: input scale {s_in} times weight scale {s_w} overflows float32")
    return product


def check_uint8_bias(ctx: Ctx, op: Op):
    """A uint8 op's int32 bias must have zero point 0 (uint8_column_requant's one check of the bias)."""
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = ctx.graph.tensors[op.inputs[2]]
        if b.quant is not None and np.count_nonzero(b.quant.zero_point):     # (a third of .any()'s cost)
            raise ModelFormatError(f"{op.describe()}: bias {b.describe()} has zero point "
                                   f"{int(b.quant.zero_point[0])}; a uint8 op's int32 bias needs zero point 0")


def float_activation_range(op, act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """The int8 clamp equal to Relu / Clip followed by QuantizeLinear (exact: rounding is monotone)."""
    clip = op.options.get("onnx_clip")
    if clip is not None:
        lo, hi = clip
        return max(Q.INT8_MIN, Q.quantized_bound(lo, scale, zero_point)), \
            min(Q.INT8_MAX, Q.quantized_bound(hi, scale, zero_point))
    if act == "NONE":
        return Q.INT8_MIN, Q.INT8_MAX
    if act == "RELU":
        return max(Q.INT8_MIN, zero_point), Q.INT8_MAX
    if act == "RELU6":
        return max(Q.INT8_MIN, zero_point), min(Q.INT8_MAX, Q.quantized_bound(6.0, scale, zero_point))
    if act == "RELU_N1_TO_1":
        return max(Q.INT8_MIN, Q.quantized_bound(-1.0, scale, zero_point)), \
            min(Q.INT8_MAX, Q.quantized_bound(1.0, scale, zero_point))
    raise UnsupportedOpError(f"{op.describe()}: activation {act}")


INT32_REACH = np.float32(2.0 ** 31)     # uint8_rescale_table's values convert to int32 below this


def uint8_rescale_table(s_in: float, zp_in: int, s_out: float, zp_out: int) -> np.ndarray:
    """LiteRT's ConcatenationWithScaling for one uint8 input, as a table over the 256 stored bytes (uint8 held as
    int8, zero points as held): round(q * scale + bias) + zp_out in float32 (no fused multiply-add), with
    scale = s_in * (1 / s_out) and bias = -zp_in * scale, ties away from zero, clamped to [0, 255].  A ValueError
    where a value is not finite or past int32 (a malformed pair of scales)."""
    u = (np.arange(256) ^ 0x80).astype(np.float32)             # stored byte -> its uint8 value
    with np.errstate(over="ignore", invalid="ignore"):
        scale = Q.F32(s_in) * (Q.F32(1.0) / Q.F32(s_out))
        bias = Q.F32(-(zp_in + 128)) * scale
        v = u * scale + bias                                   # float32 product, then float32 sum
    if not (np.abs(v) < INT32_REACH).all():     # (LiteRT converts to int32: past it, or from NaN, undefined)
        raise ValueError(f"rescaling from input scale {s_in:g} (zero point {zp_in + 128}) to output scale "
                         f"{s_out:g} gives values past int32")
    r = np.trunc(v) + np.where(np.abs(v - np.trunc(v)) >= Q.F32(0.5), np.sign(v), Q.F32(0))
    out = np.clip(r.astype(np.int64) + zp_out + 128, 0, 255)
    return (out ^ 0x80).astype(np.uint8)
