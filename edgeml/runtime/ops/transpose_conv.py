"""TRANSPOSE_CONV (Conv2DTranspose): int8 (per-channel), 16x8 (int16 activations, int8 weights, int64 bias) and
float32, with or without bias, SAME / VALID, any stride, every fused activation; as LiteRT's reference kernels
(cython_ops/include/em_transpose_conv.h).  Inputs: output_shape (int32 [4]), weights [OC, KH, KW, IC], input,
optional bias."""
from __future__ import annotations

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops import int16x8
from edgeml.runtime.ops.common import PADDING, bias_vector, fused_activation, qparams, require_positive
from edgeml.runtime.plan import Ctx, OpSpec, Step, address

KINDS = {np.dtype(np.int8): 0, np.dtype(np.int16): 1, np.dtype(np.float32): 2}     # EM_TCONV_INT8 / INT16 / FLOAT


def output_shape(ctx: Ctx, op: Op, shape_t, y) -> tuple:
    """The planned output shape and the run-time check: a constant output_shape tensor decides it at load; one
    that arrives only at run time (e.g. a graph input) must equal the shape the file declares for the output,
    which the kernel compares on every invoke (InputError otherwise)."""
    if shape_t.dtype != np.int32:
        raise ModelFormatError(f"{op.describe()}: output_shape {shape_t.describe()} is {shape_t.dtype}, not int32")
    if shape_t.index in ctx.constants:
        values = ctx.constants[shape_t.index].reshape(-1)
        if values.size != 4:
            raise ModelFormatError(f"{op.describe()}: output_shape holds {values.size} values, expected 4")
        return tuple(int(v) for v in values), None
    if tuple(ctx.shape(shape_t)) != (4,):
        raise ModelFormatError(f"{op.describe()}: output_shape {shape_t.describe()} must be a 1-D tensor of 4")
    if len(y.shape) != 4 or any(d <= 0 for d in y.shape):
        raise UnsupportedOpError(f"{op.describe()}: output_shape is only known at run time and the output "
                                 f"{y.describe()} declares no static shape ({list(y.shape)})")
    planned = tuple(int(d) for d in y.shape)

    def check(status):             # the kernel's int32 word: 1 when the run-time shape differs
        if not status[:4].view(np.int32)[0]:
            return None
        return (f"{op.describe()}: the output_shape input differs from the output shape {list(planned)} the model "
                "declares")
    return planned, (shape_t.index, check)


def prepare_transpose_conv(ctx: Ctx, op: Op) -> Step:
    if len(op.inputs) not in (3, 4):
        raise ModelFormatError(f"{op.describe()}: {len(op.inputs)} inputs (output_shape, weights, input[, bias])")
    shape_t, w, x, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 2), ctx.tensor(op, 0, "output")
    kind = KINDS.get(x.dtype)
    if kind is None:
        raise UnsupportedOpError(f"{op.describe()}: input type {x.dtype} is not supported (int8, int16, float32)")
    if y.dtype != x.dtype:
        raise UnsupportedOpError(f"{op.describe()}: output type {y.dtype} differs from input type {x.dtype}")
    wdata = ctx.const(w, f"{op.describe()} weights")
    want_w = np.float32 if x.dtype == np.float32 else np.int8
    if wdata.dtype != want_w:
        raise UnsupportedOpError(f"{op.describe()}: weights of type {wdata.dtype} with {x.dtype} input "
                                 f"({np.dtype(want_w).name} expected)")
    xs = ctx.shape(x)
    if len(xs) != 4 or wdata.ndim != 4:
        raise ModelFormatError(f"{op.describe()}: expects 4-D input and weights, got {list(xs)} and "
                               f"{list(wdata.shape)}")
    n, ih, iw, ic = xs
    oc, kh, kw, wic = wdata.shape
    if wic != ic:
        raise ModelFormatError(f"{op.describe()}: weights expect {wic} input channels, the input has {ic}")
    o = op.options
    sh, sw = o.get("stride_h", 1), o.get("stride_w", 1)
    require_positive(op, stride_h=sh, stride_w=sw, kernel_h=kh, kernel_w=kw, out_channels=oc)
    planned, runtime_shape = output_shape(ctx, op, shape_t, y)
    if ctx.batch_changed and runtime_shape is None and planned[0] != n:
        planned = (n,) + planned[1:]
    on, oh, ow, occ = planned
    if on != n or occ != oc or oh < 0 or ow < 0:
        raise ModelFormatError(f"{op.describe()}: output shape {list(planned)} does not fit input {list(xs)} and "
                               f"weights {list(wdata.shape)}")
    mode = PADDING.get(o.get("padding", 0))
    if mode is None:
        raise ModelFormatError(f"{op.describe()}: unknown padding {o.get('padding')}")
    # LiteRT pads as the conv from the output back to the input would (ComputePaddingHeightWidth on the output
    # size); that conv must give the input's size, which also bounds the output a file can ask for
    def lead_pad(out_size, k, stride, in_size, axis):
        size = (out_size + stride - 1) // stride if mode == "SAME" else (out_size + stride - k) // stride
        if size != in_size:
            raise ModelFormatError(f"{op.describe()}: output {axis} {out_size} does not come from input {axis} "
                                   f"{in_size} with kernel {k}, stride {stride} and {mode} padding")
        return max(((size - 1) * stride + k - out_size) // 2, 0)
    pt, pl = lead_pad(oh, kh, sh, ih, "height"), lead_pad(ow, kw, sw, iw, "width")
    ctx.set_output(op, 0, planned)
    act = fused_activation(op)
    has_bias = len(op.inputs) == 4 and op.inputs[3] >= 0
    mult = shift = None
    f_lo, f_hi = Q.activation_range_f32(act)
    if kind == 2:
        bias = bias_vector(ctx, op, 3, oc, np.float32)
        in_zp = out_zp = amin = amax = 0
        scratch = 0
    else:
        if kind == 1:
            s_in, in_zp = int16x8.qparams16(x, op)
            s_out, out_zp = int16x8.qparams16(y, op)
            amin, amax = int16x8.activation_range_int16(act, s_out, out_zp)
            bias_type = np.int64
        else:
            s_in, in_zp = qparams(x, op)
            s_out, out_zp = qparams(y, op)
            amin, amax = Q.activation_range_int8(act, s_out, out_zp)
            bias_type = np.int32
        b = ctx.tensor(op, 3) if has_bias else None
        if b is not None and b.dtype != bias_type:
            raise ModelFormatError(f"{op.describe()}: bias {b.describe()} is {b.dtype}; {x.dtype} input needs a "
                                   f"{np.dtype(bias_type).name} bias")
        bias = bias_vector(ctx, op, 3, oc, bias_type)
        mult, shift, _ = int16x8.channel_multipliers(ctx, op, w, oc, 0, s_in, s_out, 7 if kind == 1 else 30)
        mult, shift = ctx.keep_array(mult), ctx.keep_array(shift)
        scratch = n * oh * ow * oc * (8 if kind == 1 else 4)
    wk = ctx.keep_array(wdata)
    bk = ctx.keep_array(bias) if bias is not None else None
    ints = dict(n=n, ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, pad_top=pt, pad_left=pl,
                in_zp=in_zp, out_zp=out_zp, act_min=amin, act_max=amax, mode=ctx.rounding, kind=kind)
    floats = dict(act_min=f_lo, act_max=f_hi)

    def make(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=address(bk) if bk is not None else 0,
                     output=addr(y.index), mult=address(mult) if mult is not None else 0,
                     shift=address(shift) if shift is not None else 0, scratch=addr("scratch"),
                     output_shape=addr(runtime_shape[0]) if runtime_shape else 0,
                     status=addr("status")), ints, floats)
    return Step(op, "transpose_conv", make, scratch, n * ih * iw * ic * kh * kw * oc,
                check=runtime_shape[1] if runtime_shape else None)


OPS = {"TRANSPOSE_CONV": OpSpec(prepare_transpose_conv, max_version=4, output_types=int16x8.WITH_INT16)}
