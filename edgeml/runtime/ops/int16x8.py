"""The 16x8 scheme: int16 activations (symmetric, zero point 0), int8 weights, int64 bias, as LiteRT's reference
kernels compute it (cython_ops/include/em_int16.h).  The family modules hand an op here when its data input is
int16: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, SUB, MUL, LEAKY_RELU, QUANTIZE, DEQUANTIZE, MEAN;
SOFTMAX / LOGISTIC / TANH live in ops/int16_activations.py.  Multipliers follow LiteRT's Prepare precision."""
from __future__ import annotations

import math

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import (bias_vector, conv_operands, element_count, fully_connected_shape,
                                       fused_activation, qparams, require_positive, spatial_padding)
from edgeml.runtime.plan import INT8_FLOAT32, Ctx, Step, address

INT16 = np.dtype(np.int16)
WITH_INT16 = INT8_FLOAT32 + (INT16,)          # output types of the ops that take the 16x8 scheme
INT16_MIN, INT16_MAX = -32768, 32767
TYPE_BOUNDS = {np.dtype(np.int8): (-128, 127), INT16: (INT16_MIN, INT16_MAX),
               np.dtype(np.int32): (-2**31, 2**31 - 1)}
REQUANT_DOUBLE_SCALE = 2                      # em_requant.h: round(acc * scale) in double


def is_int16(ctx: Ctx, op: Op, position: int = 0) -> bool:
    """True when the op's data input (input `position`) holds int16 values."""
    return position < len(op.inputs) and op.inputs[position] >= 0 and ctx.tensor(op, position).dtype == INT16


def qparams16(t, op: Op) -> tuple[float, int]:
    """(scale, 0) of an int16 activation: LiteRT's 16x8 kernels require symmetric int16 (zero point 0)."""
    if t.dtype != INT16:
        raise UnsupportedOpError(f"{op.describe()}: {t.describe()} is {t.dtype}; the 16x8 scheme needs int16 "
                                 "activations throughout")
    s, zp = qparams(t, op)
    if zp != 0:
        raise ModelFormatError(f"{op.describe()}: int16 {t.describe()} has zero point {zp}; int16 activations "
                               "are symmetric (zero point 0)")
    return s, zp


def activation_range_int16(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int16 (f / scale in float32, std::round)."""
    def q(f):
        return zero_point + int(Q.round_half_away(float(Q.F32(f) / Q.F32(scale))))
    lo, hi = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[act]
    return (INT16_MIN if lo is None else max(INT16_MIN, q(lo)), INT16_MAX if hi is None else min(INT16_MAX, q(hi)))


def multiplier(ctx: Ctx, op: Op, real: float, max_shift: int = 30) -> tuple[int, int]:
    """QuantizeMultiplier(real), refused when the kernels could not apply it (a left shift past max_shift: 30 for
    the int32 arithmetic, 7 for the int64 sums' reduced multiplier, as LiteRT asserts)."""
    try:
        m, sh = Q.quantize_multiplier(real, ctx.rounding)
    except ValueError as exc:
        raise UnsupportedOpError(f"{op.describe()}: {exc}") from exc
    if sh > max_shift:
        raise UnsupportedOpError(f"{op.describe()}: rescale factor {real:g} is too large for the int16 kernels")
    return m, sh


def channel_multipliers(ctx: Ctx, op: Op, w, n_out: int, axis: int, s_in: float, s_out: float,
                        max_shift: int = 7):
    """Per-channel (multiplier, shift) and the double scale of PopulateConvolutionQuantizationParams: int8 weights,
    symmetric, one scale or one per output channel along `axis`."""
    if w.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: weights {w.describe()} are {w.dtype}; 16x8 needs int8 weights")
    if w.quant is None:
        raise ModelFormatError(f"{op.describe()}: int8 weights {w.describe()} have no quantization")
    ws = w.quant.scale
    if ws.size not in (1, n_out):
        raise ModelFormatError(f"{op.describe()}: {ws.size} weight scales for {n_out} output channels")
    if ws.size > 1 and w.quant.axis != axis:
        raise ModelFormatError(f"{op.describe()}: weights quantized along axis {w.quant.axis}, expected {axis}")
    if np.any(w.quant.zero_point != 0):
        raise UnsupportedOpError(f"{op.describe()}: int8 weights with a non-zero zero point")
    if not np.all(ws > 0):
        raise ModelFormatError(f"{op.describe()}: weights {w.describe()} have a scale that is not positive")
    ws = np.broadcast_to(ws, (n_out,)).astype(np.float64)
    real = (np.float64(Q.F32(s_in)) * ws.astype(np.float32).astype(np.float64)) / np.float64(Q.F32(s_out))
    pairs = [multiplier(ctx, op, r, max_shift) for r in real]
    return np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32), real


def wide_bias(ctx: Ctx, op: Op, position: int, n_out: int, allow_int32: bool = True):
    """(bias array or None, wide): int64 bias (or none) sums in int64; an int32 bias (the converter's
    quantized_bias_type INT32; LiteRT takes it for CONV_2D and FULLY_CONNECTED) makes LiteRT sum in int32."""
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None, 1
    b = ctx.tensor(op, position)
    if b.dtype != np.int64 and not (allow_int32 and b.dtype == np.int32):
        raise ModelFormatError(f"{op.describe()}: bias {b.describe()} is {b.dtype}; int16 activations need an "
                               f"int64{' (or int32)' if allow_int32 else ''} bias")
    data = bias_vector(ctx, op, position, n_out, b.dtype)
    return ctx.keep_array(data), int(b.dtype == np.int64)


def prepare_conv2d(ctx: Ctx, op: Op, depthwise: bool = False) -> Step:
    """CONV_2D / DEPTHWISE_CONV_2D 16x8 (reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel)."""
    x, w, y, xs, wdata = conv_operands(ctx, op)
    s_in, _ = qparams16(x, op)
    s_out, out_zp = qparams16(y, op)
    o = op.options
    sh, sw = o.get("stride_h", 1), o.get("stride_w", 1)
    dh, dw = o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)
    require_positive(op, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw)
    n, ih, iw, ic = xs
    if depthwise:
        _, kh, kw, oc = wdata.shape
        if wdata.shape[0] != 1 or ic <= 0 or oc % ic:
            raise ModelFormatError(f"{op.describe()}: weights {list(wdata.shape)} do not fit input channels {ic}")
        dm = oc // ic
    else:
        oc, kh, kw, wic = wdata.shape
        if wic != ic:
            raise UnsupportedOpError(f"{op.describe()}: weights expect {wic} input channels, input has {ic} "
                                     "(grouped convolution is not supported)")
        dm = 1
    require_positive(op, kernel_h=kh, kernel_w=kw, out_channels=oc)
    oh, pt = spatial_padding(op, ih, kh, sh, dh)
    ow, pl = spatial_padding(op, iw, kw, sw, dw)
    ctx.set_output(op, 0, (n, oh, ow, oc))
    act = fused_activation(op)
    mult, shift, _ = channel_multipliers(ctx, op, w, oc, 3 if depthwise else 0, s_in, s_out)
    bias, wide = wide_bias(ctx, op, 2, oc, allow_int32=not depthwise)
    amin, amax = activation_range_int16(act, s_out, out_zp)
    wk = ctx.keep_array(wdata.reshape(kh * kw, oc) if depthwise else wdata)
    mk, sk = ctx.keep_array(mult), ctx.keep_array(shift)
    ints = dict(n=n, ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pad_top=pt,
                pad_left=pl, in_zp=0, out_zp=out_zp, act_min=amin, act_max=amax, mode=ctx.rounding, dm=dm, direct=0,
                chunk=0, wide_bias=wide)
    macs = n * oh * ow * oc * kh * kw * (1 if depthwise else ic)

    def make(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=address(bias) if bias is not None else 0,
                     output=addr(y.index), mult=address(mk), shift=address(sk), scratch=0, double_scales=0,
                     float_scales=0), ints, {})
    return Step(op, "depthwise_16x8" if depthwise else "conv2d_16x8", make, 0, macs)


def prepare_fully_connected(ctx: Ctx, op: Op) -> Step:
    """FULLY_CONNECTED 16x8: LiteRT's reference kernel rescales each sum in double (round(acc * scale))."""
    x, w, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    s_in, _ = qparams16(x, op)
    s_out, out_zp = qparams16(y, op)
    wdata = ctx.const(w, f"{op.describe()} weights")
    rows, depth, units = fully_connected_shape(ctx, op, ctx.shape(x), wdata)
    act = fused_activation(op)
    mult, shift, real = channel_multipliers(ctx, op, w, units, 0, s_in, s_out)
    bias, wide = wide_bias(ctx, op, 2, units)
    amin, amax = activation_range_int16(act, s_out, out_zp)
    mode = REQUANT_DOUBLE_SCALE if ctx.rounding == Q.ROUNDING_MODES["double"] else ctx.rounding
    wk, mk, sk, dk = (ctx.keep_array(a) for a in (wdata, mult, shift, real))
    ints = dict(rows=rows, depth=depth, units=units, out_zp=out_zp, act_min=amin, act_max=amax, mode=mode,
                wide_bias=wide)

    def make(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=address(bias) if bias is not None else 0,
                     output=addr(y.index), mult=address(mk), shift=address(sk), scratch=0, double_scales=address(dk),
                     float_scales=0), ints, {})
    return Step(op, "fully_connected_16x8", make, 0, rows * units * depth)


def log2_if_power_of_two(scale: float):
    """CheckedLog2 in float32: the rounded log2 of a power-of-two scale, else None."""
    v = Q.F32(math.log(Q.F32(scale))) * (Q.F32(1.0) / Q.F32(math.log(2.0)))
    r = Q.F32(Q.round_half_away(float(v)))
    return int(r) if abs(float(Q.F32(v - r))) < 1e-3 else None


def prepare_binary(ctx: Ctx, op: Op, which: str, dims: dict) -> Step:
    """ADD / SUB / MUL on int16 (elementwise.prepare_binary has set the output shape; `dims` are its broadcast
    dims and strides).  ADD / SUB: the general path (left shift 15), or the power-of-two path when the op's
    pot_scale_int16 is set and every scale is a power of two, as LiteRT's Prepare chooses."""
    a, b, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    s1, _ = qparams16(a, op)
    s2, _ = qparams16(b, op)
    so, zo = qparams16(y, op)
    act = fused_activation(op)
    amin, amax = activation_range_int16(act, so, zo)
    f1, f2, fo = (np.float64(Q.F32(v)) for v in (s1, s2, so))
    name, floats = which.lower() + "_int16", {}
    if which == "MUL":
        # mul.cc multiplies and divides the stored float scales in float, then widens to double
        m, sh = multiplier(ctx, op, float(Q.F32(s1) * Q.F32(s2) / Q.F32(so)))
        ints = dict(dims, zp1=0, zp2=0, out_zp=0, mult=m, shift=sh, act_min=amin, act_max=amax, mode=ctx.rounding,
                    threads=1)      # (layout MUL; the int16 kernel runs on the calling thread)
    else:
        logs = [log2_if_power_of_two(s) for s in (s1, s2, so)]
        if op.options.get("pot_scale_int16", True) and None not in logs:
            shift1, shift2 = logs[0] - logs[2], logs[1] - logs[2]
            if not (shift1 == 0 or shift2 == 0) or shift1 > 0 or shift2 > 0 or min(shift1, shift2) < -15:
                raise UnsupportedOpError(f"{op.describe()}: power-of-two int16 scales need one input at the output "
                                         f"scale and the other at most 15 bits finer (shifts {shift1}, {shift2})")
            if ctx.shape(a) != ctx.shape(b):
                raise UnsupportedOpError(f"{op.describe()}: LiteRT's power-of-two int16 {which} does not broadcast "
                                         f"({list(ctx.shape(a))} and {list(ctx.shape(b))})")
            ints = dict(dims, shift1=shift1, shift2=shift2, act_min=amin, act_max=amax,
                        sign=1 if which == "ADD" else -1)
            name = "add_int16_pot"
        else:
            twice_max = 2.0 * max(f1, f2)
            m1, sh1 = multiplier(ctx, op, f1 / twice_max)
            m2, sh2 = multiplier(ctx, op, f2 / twice_max)
            mo, sho = multiplier(ctx, op, twice_max / ((1 << 15) * fo))
            ints = dict(dims, zp1=0, zp2=0, out_zp=0, left_shift=15, mult1=m1, shift1=sh1, mult2=m2, shift2=sh2,
                        out_mult=mo, out_shift=sho, act_min=amin, act_max=amax, mode=ctx.rounding,
                        sign=1 if which == "ADD" else -1, threads=1)      # (layout ADD, as mul_int16's above)
            name = "add_int16"

    def make(addr):
        ptrs = dict(input1=addr(a.index), input2=addr(b.index), output=addr(y.index))
        if name == "add_int16":
            ptrs["tables"] = 0
        return ptrs, ints, floats
    return Step(op, name, make, 0)


def prepare_leaky_relu(ctx: Ctx, op: Op) -> Step:
    """LEAKY_RELU int16: LiteRT's QuantizeLeakyRelu, two multipliers computed in float."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    s_in, _ = qparams16(x, op)
    s_out, _ = qparams16(y, op)
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    alpha = Q.F32(op.options.get("alpha", 0.2))
    ma, sa = multiplier(ctx, op, float(Q.F32(s_in) * alpha / Q.F32(s_out)))
    mi, si = multiplier(ctx, op, float(Q.F32(s_in) / Q.F32(s_out)))
    ints = dict(n=element_count(xs), in_zp=0, out_zp=0, mult_identity=mi, shift_identity=si, mult_alpha=ma,
                shift_alpha=sa, mode=ctx.rounding)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, "leaky_relu_int16", make, 0)


REQUANTIZE_KERNELS = {("int16", "int8"): "requantize_int16_int8", ("int8", "int16"): "requantize_int8_int16",
                      ("int16", "int16"): "requantize_int16_int16", ("int16", "int32"): "requantize_int16_int32",
                      ("int32", "int16"): "requantize_int32_int16"}


def prepare_quantize(ctx: Ctx, op: Op) -> Step:
    """QUANTIZE to or from int16: float -> int16 (AffineQuantize), and the integer requantizations LiteRT's
    quantize.cc runs (int8 <-> int16, int16 -> int16, int16 <-> int32) with QuantizeMultiplier(s_in / s_out)."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = element_count(xs)
    s_out, zp_out = qparams16(y, op) if y.dtype == INT16 else qparams(y, op)
    if x.dtype == np.float32 and y.dtype == INT16:
        def make_f(addr):
            return dict(input=addr(x.index), output=addr(y.index)), dict(n=n, zp=zp_out), dict(scale=s_out)
        return Step(op, "quantize_f32_int16", make_f, 0)
    name = REQUANTIZE_KERNELS.get((x.dtype.name, y.dtype.name))
    if name is None:
        raise UnsupportedOpError(f"{op.describe()}: quantizing {x.dtype} to {y.dtype} is not supported")
    s_in, zp_in = qparams16(x, op) if x.dtype == INT16 else qparams(x, op)
    m, sh = multiplier(ctx, op, np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)))
    lo, hi = TYPE_BOUNDS[y.dtype]
    ints = dict(n=n, in_zp=zp_in, out_zp=zp_out, mult=m, shift=sh, act_min=lo, act_max=hi, mode=ctx.rounding)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, name, make, 0)


def prepare_dequantize(ctx: Ctx, op: Op) -> Step:
    """DEQUANTIZE int16 -> float32: float(scale * (x - zp)) in double."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if y.dtype != np.float32:
        raise UnsupportedOpError(f"{op.describe()}: dequantizing to {y.dtype} is not supported")
    s, zp = qparams16(x, op)
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = element_count(xs)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), dict(n=n, zp=zp), dict(scale=s)
    return Step(op, "dequantize_int16_f32", make, 0)


def prepare_mean(ctx: Ctx, op: Op, geometry: dict) -> Step:
    """MEAN int16: reduce.prepare_mean has checked the axes and set the output; `geometry` holds its EM_MEAN dims,
    output strides, output and reduced counts, which QuantizedMeanOrSum's multiplier (1 / count folded in)
    completes here."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    s_in, _ = qparams16(x, op)
    s_out, _ = qparams16(y, op)
    count = geometry["reduced"]
    if count * 65535 >= 2 ** 31:
        raise UnsupportedOpError(f"{op.describe()}: {count} reduced int16 elements overflow the int32 sum")
    m, sh = Q.mean_multiplier(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)), count, ctx.rounding)
    if sh > 30:
        raise UnsupportedOpError(f"{op.describe()}: rescale factor {s_in / s_out:g} is too large for int16 MEAN")
    ints = dict(geometry, is_float=0, in_zp=0, out_zp=0, mult=m, shift=sh, mode=ctx.rounding)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints, {}
    return Step(op, "mean_int16", make, max(geometry["outputs"], 1) * 4)
