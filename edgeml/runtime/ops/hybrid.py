"""Hybrid ("dynamic-range") CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: float32 activations, int8 weights,
the input quantized on the fly each invoke as LiteRT does; which variant runs is decided at load, as LiteRT's Prepare
decides it (see each prepare).  Arithmetic: cython_ops/include/em_hybrid.h."""
from __future__ import annotations

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.runtime.ops.common import (IM2COL_ROWS, bias_vector, conv_operands, fully_connected_shape,
                                       fused_activation, require_positive, spatial_padding)
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.plan import Step, address


CONV_MODE_PER_TENSOR = 0
CONV_MODE_PER_CHANNEL = 1


def _align16(n: int) -> int:
    return (n + 15) & ~15


def hybrid_weight_scales(op, w, n_out: int, axis: int, what: str) -> np.ndarray:
    """The weight scales as the float32 values LiteRT reads; zero points must be 0 (LiteRT ignores them)."""
    if w.quant is None or w.quant.scale.size == 0:
        raise ModelFormatError(f"{op.describe()}: int8 {what} {w.describe()} have no quantization parameters")
    scales = np.asarray(w.quant.scale, dtype=np.float64).astype(np.float32).reshape(-1)
    if scales.size not in (1, n_out):
        raise ModelFormatError(f"{op.describe()}: {scales.size} weight scales for {n_out} output channels")
    if scales.size > 1 and w.quant.axis != axis:
        raise ModelFormatError(f"{op.describe()}: weights quantized along axis {w.quant.axis}, expected {axis}")
    if np.any(np.asarray(w.quant.zero_point) != 0):
        raise UnsupportedOpError(f"{op.describe()}: hybrid int8 weights with a non-zero zero point")
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ModelFormatError(f"{op.describe()}: weight scales must be positive and finite")
    return scales


def packed_sums_path() -> str:
    """The SIMD integer sums the hybrid CONV_2D takes: "vnni" (u8 x s8 vpdpbusd), "avx2" (int16 vpmaddwd) or ""."""
    if CONFIG.isa == "avx512vnni":
        return "vnni"
    return "avx2" if CONFIG.isa in ("avx2", "avxvnni", "avx512") else ""


def pack_hybrid_weights(ctx, w2: np.ndarray, simd: str) -> dict:
    """int8 weights [OC][K] in the column groups em_conv2d_hybrid_<simd> reads (em_hybrid.h EM_HY_PACKED)."""
    oc, k = w2.shape
    lanes, depth, group, dtype = (16, 4, 4, np.int8) if simd == "vnni" else (8, 2, 2, np.int16)
    ocp, kp = -(-oc // lanes) * lanes, -(-k // depth) * depth
    padded = np.zeros((ocp, kp), dtype)
    padded[:oc, :k] = w2
    groups = []
    for c0 in range(0, ocp, group * lanes):
        block = padded[c0:c0 + group * lanes]                       # [cols][Kp]
        groups.append(block.reshape(block.shape[0], kp // depth, depth).transpose(1, 0, 2).reshape(-1))
    offsets = np.zeros(ocp, np.int32)
    if simd == "vnni":      # the rows are read as q + 128: take 128 * sum(w) off each column
        offsets[:oc] = 128 * w2.astype(np.int64).sum(axis=1)
    return dict(w=ctx.keep_array(np.concatenate(groups)), offsets=ctx.keep_array(offsets), kp=kp, ocp=ocp,
                group=group)


def _float_io(ctx, op):
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != np.float32 or y.dtype != np.float32:
        raise UnsupportedOpError(f"{op.describe()}: hybrid ops need float32 input and output, got {x.dtype} -> "
                                 f"{y.dtype}")
    return x, y


def _geometry(ctx, op, xs, kh, kw):
    o = op.options
    sh, sw = o.get("stride_h", 1), o.get("stride_w", 1)
    dh, dw = o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)
    require_positive(op, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw)
    n, ih, iw, ic = xs
    oh, pt = spatial_padding(op, ih, kh, sh, dh)
    ow, pl = spatial_padding(op, iw, kw, sw, dw)
    return [n, ih, iw, ic, oh, ow], [sh, sw, dh, dw, pt, pl]


def prepare_conv2d_hybrid(ctx, op):
    """CONV_2D with float32 input and int8 weights.  One weight scale, or several that are all equal: symmetric
    input quantization, one scale per batch times the weight scale (EvalHybrid -> optimized_ops::HybridConv, which
    every kernel type uses); per-channel scales that differ: asymmetric input quantization (EvalHybridPerChannel
    -> reference_ops::HybridConvPerChannel)."""
    _float_io(ctx, op)
    x, w, y, xs, wdata = conv_operands(ctx, op)
    if wdata.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: hybrid weights of type {wdata.dtype} (int8 supported)")
    oc, kh, kw, wic = wdata.shape
    if wic != xs[3]:
        raise UnsupportedOpError(f"{op.describe()}: weights expect {wic} input channels, input has {xs[3]} "
                                 "(grouped convolution is not supported)")
    require_positive(op, kernel_h=kh, kernel_w=kw, out_channels=oc)
    (n, ih, iw, ic, oh, ow), (sh, sw, dh, dw, pt, pl) = _geometry(ctx, op, xs, kh, kw)
    ctx.set_output(op, 0, (n, oh, ow, oc))
    act = fused_activation(op)
    lo, hi = Q.activation_range_f32(act)
    scales = hybrid_weight_scales(op, w, oc, 0, "weights")
    K = kh * kw * ic
    w2 = wdata.reshape(oc, K)
    # LiteRT: per channel only when the scales differ (is_hybrid_per_channel); else the per-tensor path with
    # scale[0]
    per_channel = scales.size > 1 and bool(np.any(scales != scales[0]))
    bias = bias_vector(ctx, op, 2, oc, np.float32)
    wk = ctx.keep_array(w2)
    bk = ctx.keep_array(bias.astype(np.float32)) if bias is not None else None
    if per_channel:
        sk = ctx.keep_array(scales)
        rk = ctx.keep_array(w2.astype(np.int64).sum(axis=1).astype(np.int32))
        mode, wscale = CONV_MODE_PER_CHANNEL, 0.0
    else:
        sk = rk = None
        mode, wscale = CONV_MODE_PER_TENSOR, float(scales[0])
    direct = int(kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0)
    chunk = IM2COL_ROWS
    ints = dict(n=n, ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pad_top=pt,
                pad_left=pl, mode=mode, dm=1, direct=direct, chunk=chunk)
    scratch = _align16(ih * iw * ic) + (0 if direct else _align16(chunk * K)) + 4 * oc
    macs = n * oh * ow * oc * K
    simd = packed_sums_path()
    if simd:
        pk = pack_hybrid_weights(ctx, w2, simd)
        ints_p = dict(ints, kp=pk["kp"], ocp=pk["ocp"], group=pk["group"])
        scratch_p = (_align16(ih * iw * ic) + 64 + (0 if direct else _align16(chunk * K) + 64) + 4 * chunk * pk["ocp"]
                     + (2 * chunk * pk["kp"] if simd == "avx2" else 0))

        def make_p(addr):
            return (dict(input=addr(x.index), weights=address(pk["w"]), bias=address(bk) if bk is not None else 0,
                         output=addr(y.index), channel_scales=address(sk) if sk is not None else 0,
                         row_sums=address(rk) if rk is not None else 0, scratch=addr("scratch"),
                         offsets=address(pk["offsets"])),
                    ints_p, dict(act_min=lo, act_max=hi, weight_scale=wscale))
        return Step(op, f"conv2d_hybrid_{simd}", make_p, scratch_p, macs)

    def make(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=address(bk) if bk is not None else 0,
                     output=addr(y.index), channel_scales=address(sk) if sk is not None else 0,
                     row_sums=address(rk) if rk is not None else 0, scratch=addr("scratch")),
                ints, dict(act_min=lo, act_max=hi, weight_scale=wscale))
    return Step(op, "conv2d_hybrid", make, scratch, macs)


def prepare_depthwise_hybrid(ctx, op):
    """DEPTHWISE_CONV_2D with float32 input and int8 weights: always per channel with asymmetric inputs, as
    LiteRT's reference_integer_ops::DepthwiseConvHybridPerChannel."""
    _float_io(ctx, op)
    x, w, y, xs, wdata = conv_operands(ctx, op)
    if wdata.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: hybrid weights of type {wdata.dtype} (int8 supported)")
    _, kh, kw, oc = wdata.shape
    ic = xs[3]
    if wdata.shape[0] != 1 or ic <= 0 or oc % ic:
        raise ModelFormatError(f"{op.describe()}: weights {list(wdata.shape)} do not fit input channels {ic}")
    dm = oc // ic
    if (op.options.get("depth_multiplier", 1) or 1) != dm:
        # LiteRT's hybrid kernel loops over the option's multiplier, not the shapes' (the others fill
        # channels the option does not cover with whatever the output held)
        raise UnsupportedOpError(f"{op.describe()}: depth_multiplier option "
                                 f"{op.options.get('depth_multiplier')} disagrees with the shapes ({dm})")
    require_positive(op, kernel_h=kh, kernel_w=kw, out_channels=oc)
    (n, ih, iw, ic, oh, ow), (sh, sw, dh, dw, pt, pl) = _geometry(ctx, op, xs, kh, kw)
    ctx.set_output(op, 0, (n, oh, ow, oc))
    act = fused_activation(op)
    lo, hi = Q.activation_range_f32(act)
    scales = hybrid_weight_scales(op, w, oc, 3, "weights")
    if scales.size != oc:
        # LiteRT indexes scale[output_channel]: one scale for several channels reads past the array
        raise UnsupportedOpError(f"{op.describe()}: hybrid depthwise weights need one scale per output channel "
                                 f"({scales.size} for {oc}); LiteRT reads past a per-tensor scale")
    bias = bias_vector(ctx, op, 2, oc, np.float32)
    wk = ctx.keep_array(wdata.reshape(kh * kw, oc))
    bk = ctx.keep_array(bias.astype(np.float32)) if bias is not None else None
    sk = ctx.keep_array(scales)
    ints = dict(n=n, ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pad_top=pt,
                pad_left=pl, mode=CONV_MODE_PER_CHANNEL, dm=dm, direct=0, chunk=0)
    scratch = _align16(ih * iw * ic) + 4 * oc
    macs = n * oh * ow * oc * kh * kw

    def make(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=address(bk) if bk is not None else 0,
                     output=addr(y.index), channel_scales=address(sk), row_sums=0, scratch=addr("scratch")),
                ints, dict(act_min=lo, act_max=hi, weight_scale=0.0))
    return Step(op, "depthwise_hybrid", make, scratch, macs)


def prepare_fully_connected_hybrid(ctx, op):
    """FULLY_CONNECTED with float32 input and int8 weights: symmetric or asymmetric input quantization as the
    op's asymmetric_quantize_inputs option says, per channel when the weights carry more than one scale
    (EvalHybridDense)."""
    x, y = _float_io(ctx, op)
    w = ctx.tensor(op, 1)
    xs = ctx.shape(x)
    wdata = ctx.const(w, f"{op.describe()} weights")
    rows, K, n_out = fully_connected_shape(ctx, op, xs, wdata)
    if wdata.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: hybrid weights of type {wdata.dtype} (int8 supported)")
    act = fused_activation(op)
    lo, hi = Q.activation_range_f32(act)
    scales = hybrid_weight_scales(op, w, n_out, 0, "weights")
    per_channel = scales.size > 1          # VerifyPerChannelQuantization: more than one scale
    asym = bool(op.options.get("asymmetric_quantize_inputs", False))
    bias = bias_vector(ctx, op, 2, n_out, np.float32)
    wk = ctx.keep_array(wdata)
    bk = ctx.keep_array(bias.astype(np.float32)) if bias is not None else None
    sk = ctx.keep_array(scales) if per_channel else None
    rk = ctx.keep_array(wdata.astype(np.int64).sum(axis=1).astype(np.int32)) if asym else None
    ints = dict(rows=rows, depth=K, units=n_out, asymmetric=int(asym), per_channel=int(per_channel),
                clamp=int(act != "NONE"))
    floats = dict(act_min=lo, act_max=hi, weight_scale=0.0 if per_channel else float(scales[0]))

    def make(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=address(bk) if bk is not None else 0,
                     output=addr(y.index), channel_scales=address(sk) if sk is not None else 0,
                     row_sums=address(rk) if rk is not None else 0, scratch=addr("scratch")), ints, floats)
    return Step(op, "fully_connected_hybrid", make, K, rows * n_out * K)


def is_hybrid(ctx, op) -> bool:
    """True when op reads float32 activations with int8 constant weights (input 1)."""
    if len(op.inputs) < 2 or op.inputs[0] < 0 or op.inputs[1] < 0:
        return False
    x, w = ctx.tensor(op, 0), ctx.tensor(op, 1)
    return x.dtype == np.float32 and w.dtype == np.int8

