"""Ops only ONNX models need, with onnxruntime's arithmetic (NUMERICS.md "ONNX int8"): QuantizeLinear,
DequantizeLinear, the uint8 <-> int8 sign flip, int8 Clip, QLinearSoftmax, QLinearAdd, the MLAS-order float
convolution, integer convolution with weight zero points, DynamicQuantizeLinear, constant graph outputs.
The IR ops are emitted by the ONNX reader (type names start with ONNX_); kernels: cython_ops/include/em_onnx_*.h."""
from __future__ import annotations

import numpy as np

from cython_ops import load_activations
from cython_ops.elementwise import UNARY_F32
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.numerics import F32, quantized_bound
from edgeml.runtime.ops.common import element_count, require_positive, spatial_padding
from edgeml.runtime.plan import OpSpec, Step, address
from edgeml.runtime.requant import float_activation_range


def prepare_quantize_linear(ctx, op):
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != np.float32 or y.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: QuantizeLinear from {x.dtype} to {y.dtype}")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    if y.quant is None or y.quant.per_axis:
        raise ModelFormatError(f"{op.describe()}: output needs per-tensor quantization")
    s, zp = y.quant.scalar()
    n = element_count(xs)
    lo, hi = float_activation_range(op, "RELU" if op.options.get("relu") else "NONE", s, zp)
    ints = dict(n=n, zp=zp, lo=lo, hi=hi)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, dict(scale=s)
    return Step(op, "onnx_quantize_linear", make, 0)


def prepare_dequantize_linear(ctx, op):
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != np.int8 or y.dtype != np.float32 or x.quant is None or x.quant.per_axis:
        raise UnsupportedOpError(f"{op.describe()}: DequantizeLinear needs a per-tensor quantized int8 input")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    s, zp = x.quant.scalar()
    n = element_count(xs)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), dict(n=n, zp=zp), dict(scale=s)
    return Step(op, "onnx_dequantize_linear", make, 0)


UINT8, INT8 = np.dtype(np.uint8), np.dtype(np.int8)
SIGN_FLIP_TYPES = {UINT8, INT8}      # (np.dtype() of a type costs more than the prepare)


def prepare_flip_sign_bit(ctx, op):
    made = load_activations.flip_sign_bit_shell(ctx, op, UINT8, INT8)     # the checks in one call
    if made is not None:
        return flip_sign_bit_step(op, *made)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if {x.dtype, y.dtype} != SIGN_FLIP_TYPES:
        raise UnsupportedOpError(f"{op.describe()}: sign-bit flip between {x.dtype} and {y.dtype}")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    return flip_sign_bit_step(op, x.index, y.index, element_count(xs))


def flip_sign_bit_step(op, xi: int, yi: int, n: int):
    def make(addr):
        return dict(input=addr(xi), output=addr(yi)), dict(n=n), {}
    return Step(op, "onnx_flip_sign_bit", make, 0)


def prepare_clip(ctx, op):
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = element_count(xs)
    lo, hi = op.options["clip"]
    if x.dtype == np.float32 and y.dtype == np.float32:

        def make_f(addr):
            return (dict(input=addr(x.index), output=addr(y.index)), dict(n=n, kind=UNARY_F32["clamp"]),
                    dict(act_min=lo, act_max=hi, alpha=0.0))
        return Step(op, "unary_f32", make_f, 0)
    if x.dtype == np.int8 and y.dtype == np.int8:
        if x.quant is None or y.quant is None or x.quant.scalar() != y.quant.scalar():
            raise UnsupportedOpError(f"{op.describe()}: int8 Clip needs equal input and output quantization")
        s, zp = y.quant.scalar()
        qlo = max(Q.INT8_MIN, quantized_bound(lo, s, zp))
        qhi = min(Q.INT8_MAX, quantized_bound(hi, s, zp))

        def make_q(addr):
            return dict(input=addr(x.index), output=addr(y.index)), dict(n=n, lo=qlo, hi=qhi), {}
        return Step(op, "onnx_clamp_int8", make_q, 0)
    raise UnsupportedOpError(f"{op.describe()}: Clip from {x.dtype} to {y.dtype}")


def softmax_table(x_scale: float, depth: int) -> np.ndarray:
    """onnxruntime's QLinearSoftmax lookup table: e^((i - 255 + shift) * x_scale) in double, stored as float,
    where the shift keeps the sum of `depth` terms below FLT_MAX (logf(FLT_MAX / depth) - 5, over x_scale)."""
    shift = np.float64(np.log(F32(np.finfo(np.float32).max) / F32(depth)))     # log of a float is a float
    shift = max(0.0, float(shift) - 5.0) / float(F32(x_scale))
    i = np.arange(256, dtype=np.float64)
    return np.exp((i - 255.0 + shift) * float(F32(x_scale))).astype(np.float32)


def prepare_qlinear_softmax(ctx, op):
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != np.int8 or y.dtype != np.int8 or x.quant is None or y.quant is None:
        raise UnsupportedOpError(f"{op.describe()}: QLinearSoftmax needs quantized int8 input and output")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    depth = int(xs[-1]) if xs else 1
    rows = element_count(xs) // max(depth, 1)
    s_in, _ = x.quant.scalar()
    s_out, zp = y.quant.scalar()
    unsigned = bool(op.options.get("unsigned", False))
    table = ctx.keep_array(softmax_table(s_in, depth))
    y_scale = float(np.floor(F32(1.0) / F32(s_out)))
    ints = dict(rows=rows, depth=depth, unsigned=int(unsigned), out_zp=zp + (128 if unsigned else 0))

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index), table=address(table)), ints, dict(inv_scale=y_scale)
    return Step(op, "onnx_qlinear_softmax", make, 0)


def qlinear_add_constants(s_a: float, z_a: int, s_b: float, z_b: int, s_y: float, z_y: int) -> tuple:
    """MLAS QLinearAdd's float constants (zero points in the tensors' own integer domain):
    ratio_a = s_a / s_y, ratio_b = s_b / s_y, fixed = z_y - fma(ratio_a, z_a, ratio_b * z_b), all float32."""
    ra, rb = F32(F32(s_a) / F32(s_y)), F32(F32(s_b) / F32(s_y))
    # the compiler contracts ra * z_a + (rb * z_b) into one fused multiply-add; in double both products and
    # their sum are exact (a 24-bit times 9-bit product plus a float), so one rounding to float32 is the fma's
    inner = F32(np.float64(ra) * np.float64(z_a) + np.float64(F32(rb * F32(z_b))))
    fixed = F32(F32(z_y) - inner)
    return float(ra), float(rb), float(fixed)


def qlinear_add_geometry(op, sa, sb) -> tuple:
    """(output shape, dims, a strides, b strides) of a broadcasting QLinearAdd: output dimensions of size 1
    dropped (they change no span), then padded in front to 6; strides in elements, 0 where broadcast."""
    rank = max(len(sa), len(sb))
    pa, pb = [1] * (rank - len(sa)) + list(sa), [1] * (rank - len(sb)) + list(sb)
    out = []
    for da, db in zip(pa, pb):
        if da != db and 1 not in (da, db):
            raise ModelFormatError(f"{op.describe()}: shapes {list(sa)} and {list(sb)} do not broadcast")
        out.append(max(da, db))

    def strides(shape):
        st, acc = [], 1
        for dim in reversed(shape):
            st.append(acc if dim != 1 else 0)
            acc *= dim
        return list(reversed(st))
    keep = [k for k, dim in enumerate(out) if dim != 1]
    if len(keep) > 6:
        raise UnsupportedOpError(f"{op.describe()}: QLinearAdd over {len(keep)} dimensions of size > 1 (6 at most)")
    st_a, st_b = strides(pa), strides(pb)
    pad = [1] * (6 - len(keep))
    return (tuple(out), pad + [out[k] for k in keep], [0] * len(pad) + [st_a[k] for k in keep],
            [0] * len(pad) + [st_b[k] for k in keep])


def prepare_qlinear_add(ctx, op):
    a, b, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    for t in (a, b, y):
        if t.dtype != np.int8 or t.quant is None or t.quant.per_axis:
            raise UnsupportedOpError(f"{op.describe()}: QLinearAdd needs per-tensor quantized int8 tensors")
    sa, sb = ctx.shape(a) if a.index in ctx.shapes else a.shape, ctx.shape(b) if b.index in ctx.shapes else b.shape
    out, dims, st_a, st_b = qlinear_add_geometry(op, sa, sb)
    ctx.set_output(op, 0, out)
    offs = [128 if u else 0 for u in op.options["unsigned"]]     # a, b, y held as uint8 by onnxruntime
    (s1, z1), (s2, z2), (s3, z3) = a.quant.scalar(), b.quant.scalar(), y.quant.scalar()
    ra, rb, fixed = qlinear_add_constants(s1, z1 + offs[0], s2, z2 + offs[1], s3, z3 + offs[2])
    ints = dict(a_offset=offs[0], b_offset=offs[1], out_offset=offs[2], dims=dims, a_strides=st_a, b_strides=st_b)

    def make(addr):
        return (dict(a=addr(a.index), b=addr(b.index), output=addr(y.index)), ints,
                dict(ratio_a=ra, ratio_b=rb, fixed=fixed))
    return Step(op, "onnx_qlinear_add", make, 0)


def prepare_qlinear_mul(ctx, op):
    """com.microsoft QLinearMul with MLAS's x86 arithmetic (em_onnx_qlinear.h), numpy broadcasting."""
    a, b, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    for t in (a, b, y):
        if t.dtype != np.int8 or t.quant is None or t.quant.per_axis:
            raise UnsupportedOpError(f"{op.describe()}: QLinearMul needs per-tensor quantized int8 tensors")
    sa, sb = ctx.shape(a) if a.index in ctx.shapes else a.shape, ctx.shape(b) if b.index in ctx.shapes else b.shape
    out, dims, st_a, st_b = qlinear_add_geometry(op, sa, sb)
    ctx.set_output(op, 0, out)
    (s1, z1), (s2, z2), (s3, z3) = a.quant.scalar(), b.quant.scalar(), y.quant.scalar()
    off = 128 if op.options.get("unsigned") else 0
    ratio = float(F32(F32(F32(s1) * F32(s2)) / F32(s3)))
    ints = dict(a_zp=z1, b_zp=z2, out_zp=z3 + off, out_min=-128 + off, out_max=127 + off, out_offset=off, dims=dims,
                a_strides=st_a, b_strides=st_b)

    def make(addr):
        return dict(a=addr(a.index), b=addr(b.index), output=addr(y.index)), ints, dict(ratio=ratio)
    return Step(op, "onnx_qlinear_mul", make, 0)


def prepare_qlinear_avgpool(ctx, op):
    """com.microsoft QLinearAveragePool / QLinearGlobalAveragePool (em_onnx_qlinear.h): onnxruntime's float
    window average, or MLAS's integer global average where the kernel covers the unpadded image."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    for t in (x, y):
        if t.dtype != np.int8 or t.quant is None or t.quant.per_axis:
            raise UnsupportedOpError(f"{op.describe()}: QLinearAveragePool needs per-tensor quantized int8 tensors")
    xs = list(ctx.shape(x))
    o = op.options
    if len(xs) != 4:
        raise ModelFormatError(f"{op.describe()}: input {xs} is not a 4-D image")
    n, ih, iw, c = xs
    kh, kw, sh, sw = int(o["kernel_h"]), int(o["kernel_w"]), int(o["stride_h"]), int(o["stride_w"])
    require_positive(op, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw)
    pt, pl, pb, pr = (int(v) for v in o["pads"])
    oh, ow = int(o["out_h"]), int(o["out_w"])
    ctx.set_output(op, 0, (n, oh, ow, c))
    (s_x, z_x), (s_y, z_y) = x.quant.scalar(), y.quant.scalar()
    off = 128 if o.get("unsigned") else 0
    is_global = kh == ih and kw == iw and not any((pt, pl, pb, pr))
    gscale = 0.0
    if is_global:
        gscale = float(F32(F32(s_x) / F32(F32(s_y) * F32(ih * iw))))
        if ih * iw >= 2 ** 24 or not 2.0 ** -32 <= gscale < 256.0:
            raise UnsupportedOpError(f"{op.describe()}: global average scale {gscale} or image size {ih * iw} "
                                     "outside onnxruntime's computation range")
    ints = dict(n=n, ih=ih, iw=iw, c=c, oh=oh, ow=ow, kh=kh, kw=kw, sh=sh, sw=sw, pad_top=pt, pad_left=pl,
                count_include_pad=int(bool(o.get("count_include_pad"))), **{"global": int(is_global)}, x_zp=z_x,
                y_zp=z_y + off, y_min=-128 + off, y_max=127 + off, out_offset=off)

    def make(addr):
        return (dict(input=addr(x.index), output=addr(y.index)), ints,
                dict(x_scale=float(F32(s_x)), y_scale=float(F32(s_y)), global_scale=gscale))
    return Step(op, "onnx_qlinear_avgpool", make, 0, n * oh * ow * c * kh * kw)


MLAS_SGEMM_STRIDEN = MLAS_SGEMM_STRIDEK = 128


def mlas_conv_stride_k(n_columns: int, depth: int) -> int:
    """The K block of MLAS's convolution GEMM (MlasConvOperation): the default 128 x 128 panel, widened along
    N when K is small or along K when N is small."""
    stride_n, stride_k = MLAS_SGEMM_STRIDEN, MLAS_SGEMM_STRIDEK
    if n_columns >= depth:
        while stride_k // 2 >= depth:
            stride_n, stride_k = stride_n * 2, stride_k // 2
    else:
        while stride_n > 16 and stride_n // 2 >= n_columns:
            stride_k, stride_n = stride_k * 2, stride_n // 2
    return stride_k


def prepare_conv_mlas(ctx, op):
    """Float Conv between DQ and Q, summed in onnxruntime's order (see em_onnx_conv.h)."""
    x, w, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    wdata = ctx.const(w, f"{op.describe()} weights")
    o = op.options
    kh, kw = int(o["kernel_h"]), int(o["kernel_w"])
    dm = int(o.get("depth_multiplier", 0))         # > 0: depthwise, weights [KH * KW][OC]
    if len(xs) != 4 or wdata.ndim != 2 or wdata.shape[0] != (1 if dm else xs[3]) * kh * kw or \
            x.dtype != np.float32 or (dm and wdata.shape[1] != xs[3] * dm):
        raise ModelFormatError(f"{op.describe()}: weights {list(wdata.shape)} do not fit input {list(xs)}")
    sh, sw, dh, dw = o["stride_h"], o["stride_w"], o["dilation_h_factor"], o["dilation_w_factor"]
    require_positive(op, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw, kernel_h=kh, kernel_w=kw)
    n, ih, iw, ic = xs
    oc = wdata.shape[1]
    oh, pt = spatial_padding(op, ih, kh, sh, dh, 0)
    ow, pl = spatial_padding(op, iw, kw, sw, dw, 1)
    ctx.set_output(op, 0, (n, oh, ow, oc))
    bias = None
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = ctx.const(ctx.tensor(op, 2), f"{op.describe()} bias")
        if bias.size != oc or bias.dtype != np.float32:
            raise ModelFormatError(f"{op.describe()}: bias must be {oc} float32 values")
    ocp = -(-oc // 16) * 16
    wk = ctx.keep_array(np.pad(wdata.astype(np.float32), ((0, 0), (0, ocp - oc))))
    bk = None if bias is None else ctx.keep_array(bias.reshape(-1))
    stride_k = mlas_conv_stride_k(oh * ow, (1 if dm else ic) * kh * kw)
    ints = dict(n=n, ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pad_top=pt,
                pad_left=pl, stride_k=stride_k, ocp=ocp, dm=dm)

    def make(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=0 if bk is None else address(bk),
                     output=addr(y.index)), ints, {})
    return Step(op, "onnx_conv_f32_mlas", make, 0, n * oh * ow * oc * (1 if dm else ic) * kh * kw)


def prepare_conv_integer(ctx, op):
    """Integer convolution / matrix product with any weight zero point (em_onnx_conv.h em_onnx_conv_integer)."""
    x, w, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs = list(ctx.shape(x))
    wdata = ctx.const(w, f"{op.describe()} weights")
    o = op.options
    if x.dtype != np.int8 or wdata.dtype != np.int16 or wdata.ndim != 4:
        raise ModelFormatError(f"{op.describe()}: integer convolution needs int8 input and int16 weights")
    oc, kh, kw, icg = wdata.shape
    group = int(o.get("group", 1))
    if o.get("dense"):
        if not xs or xs[-1] != icg or group != 1:
            raise ModelFormatError(f"{op.describe()}: input {xs} does not fit {icg}-deep weights")
        rows = element_count(xs[:-1])
        n, ih, iw, ic, oh, ow, pt, pl = rows, 1, 1, icg, 1, 1, 0, 0
        sh = sw = dh = dw = 1
        out_shape = tuple(xs[:-1]) + (oc,)
    else:
        if len(xs) != 4 or xs[3] != icg * group or oc % group:
            raise ModelFormatError(f"{op.describe()}: weights {list(wdata.shape)} with group {group} do not "
                                   f"fit input {xs}")
        sh, sw, dh, dw = o["stride_h"], o["stride_w"], o["dilation_h_factor"], o["dilation_w_factor"]
        require_positive(op, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw)
        n, ih, iw, ic = xs
        oh, pt = spatial_padding(op, ih, kh, sh, dh, 0)
        ow, pl = spatial_padding(op, iw, kw, sw, dw, 1)
        out_shape = (n, oh, ow, oc)
    ctx.set_output(op, 0, out_shape)
    bias = None
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = ctx.const(ctx.tensor(op, 2), f"{op.describe()} bias")
        if bias.dtype != np.int32 or bias.size != oc:
            raise ModelFormatError(f"{op.describe()}: bias must be {oc} int32 values")
    zp_t = op.inputs[3] if len(op.inputs) > 3 and op.inputs[3] >= 0 else None
    mode = {np.dtype(np.int32): 0, np.dtype(np.int8): 1, np.dtype(np.float32): 2}.get(y.dtype)
    if mode is None:
        raise UnsupportedOpError(f"{op.describe()}: output type {y.dtype}")
    scales = np.zeros(oc, np.float32)
    yzp, lo, hi = 0, 0, 0
    if mode:
        scales = np.asarray(o["requant_scales"], dtype=np.float32).reshape(-1)
        if scales.size != oc or (mode == 1 and y.quant is None):
            raise ModelFormatError(f"{op.describe()}: {scales.size} output scales for {oc} channels")
    if mode == 1:
        s_out, yzp = y.quant.scalar()
        lo, hi = float_activation_range(op, "RELU" if o.get("relu") else "NONE", s_out, yzp)
    wk = ctx.keep_array(wdata)
    bk = None if bias is None else ctx.keep_array(bias.reshape(-1))
    sk = ctx.keep_array(scales)
    ints = dict(n=n, ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pad_top=pt,
                pad_left=pl, x_zp=int(o.get("x_zero_point", 0)), mode=mode, out_zp=yzp, act_min=lo, act_max=hi,
                groups=group)

    def make(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=0 if bk is None else address(bk),
                     output=addr(y.index), x_zp=0 if zp_t is None else addr(zp_t), scales=address(sk)), ints, {})
    return Step(op, "onnx_conv_integer", make, 0, n * oh * ow * oc * icg * kh * kw)


def prepare_dynamic_quantize_linear(ctx, op):
    x = ctx.tensor(op, 0)
    y, s, z = (ctx.tensor(op, k, "output") for k in range(3))
    if x.dtype != np.float32 or y.dtype != np.int8 or s.dtype != np.float32 or z.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: DynamicQuantizeLinear types")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    ctx.set_output(op, 1, ())
    ctx.set_output(op, 2, ())
    n = element_count(xs)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index), scale=addr(s.index), zero_point=addr(z.index)), \
            dict(n=n), {}
    return Step(op, "onnx_dynamic_quantize_linear", make, 0)


def prepare_constant_output(ctx, op):
    """A graph output that is a constant of the model (e.g. Shape of a static tensor): copied on invoke."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    data = ctx.const(x, f"{op.describe()} value")
    ctx.set_output(op, 0, data.shape)
    nbytes = int(data.size) * data.dtype.itemsize

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), dict(bytes=nbytes), {}
    return Step(op, "copy", make, 0)


# these ops check their own input and output types (int32, uint8 and scale outputs among them)
OPS = {
    "ONNX_QUANTIZE_LINEAR": OpSpec(prepare_quantize_linear, output_types=None),
    "ONNX_DEQUANTIZE_LINEAR": OpSpec(prepare_dequantize_linear, output_types=None),
    "ONNX_FLIP_SIGN_BIT": OpSpec(prepare_flip_sign_bit, output_types=None),
    "ONNX_CLIP": OpSpec(prepare_clip, output_types=None),
    "ONNX_QLINEAR_SOFTMAX": OpSpec(prepare_qlinear_softmax, output_types=None),
    "ONNX_QLINEAR_ADD": OpSpec(prepare_qlinear_add, output_types=None),
    "ONNX_QLINEAR_MUL": OpSpec(prepare_qlinear_mul, output_types=None),
    "ONNX_QLINEAR_AVERAGE_POOL": OpSpec(prepare_qlinear_avgpool, output_types=None),
    "ONNX_CONV_MLAS": OpSpec(prepare_conv_mlas, output_types=None),
    "ONNX_CONV_INTEGER": OpSpec(prepare_conv_integer, output_types=None),
    "ONNX_DYNAMIC_QUANTIZE_LINEAR": OpSpec(prepare_dynamic_quantize_linear, output_types=None),
    "ONNX_CONSTANT_OUTPUT": OpSpec(prepare_constant_output, output_types=None),
}
