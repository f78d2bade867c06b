"""SVDF (TFLite's singular value decomposition filter, keyword-spotting models): integer, float32 and hybrid, any
rank (cython_ops/include/em_svdf.h).

The state (input 4) is a variable tensor [batch, memory * filters] that persists across invokes, as in LiteRT;
`Interpreter.reset_variables()` sets it back to zero.  The integer form is LiteRT's EvalIntegerSVDF: int8 input
and output, int8 weights_feature, int16 weights_time and state (symmetric), int32 bias, with the two rescales
svdf.cc's Prepare computes (the scale products in float, then QuantizeMultiplier).
"""
from __future__ import annotations

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import ACTIVATIONS, element_count, qparams, require_positive
from edgeml.runtime.plan import Ctx, OpSpec, Step, address

F32, I8, I16, I32 = (np.dtype(t) for t in (np.float32, np.int8, np.int16, np.int32))
KINDS = {   # (input, weights_feature, weights_time, bias, state, output) -> kernel
    (I8, I8, I16, I32, I16, I8): "svdf_int8",
    (F32, F32, F32, F32, F32, F32): "svdf_f32",
    (F32, I8, I8, F32, F32, F32): "svdf_hybrid",
}
HYBRID_ALIGN = 16          # EM_HY_ALIGN16: the quantized input rows in the hybrid scratch


def symmetric_scale(op: Op, t) -> float:
    """The per-tensor scale of a weight or state tensor LiteRT's SVDF takes as symmetric (it reads no zero point,
    so one other than 0 would be dropped: refused)."""
    s, zp = qparams(t, op)
    if zp != 0:
        raise UnsupportedOpError(f"{op.describe()}: {t.describe()} has zero point {zp}; LiteRT's SVDF takes it as "
                                 "symmetric (zero point 0) and would ignore it")
    return s


def state_tensor(ctx: Ctx, op: Op, batch: int, size: int):
    t = ctx.tensor(op, 4)
    if not t.is_variable or t.index in ctx.constants:
        raise ModelFormatError(f"{op.describe()}: the state {t.describe()} must be a variable tensor without "
                               "initial data")
    declared = element_count(t.shape)
    # after a batch resize the state takes one row per batch (the file declares it for its own batch)
    if len(t.shape) != 2 or declared != batch * size and not (ctx.batch_changed and t.shape[1:] == (size,)):
        raise ModelFormatError(f"{op.describe()}: the state {t.describe()} has shape {list(t.shape)}, expected "
                               f"[{batch}, {size}] (batch, memory x filters)")
    ctx.shapes[t.index] = (batch, size)
    return t


def prepare_svdf(ctx: Ctx, op: Op) -> Step:
    what = op.describe()
    if len(op.inputs) != 5 or len(op.outputs) != 1:
        raise ModelFormatError(f"{what}: {len(op.inputs)} inputs and {len(op.outputs)} outputs (5 and 1 expected)")
    x, wf_t, wt_t, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 2), ctx.tensor(op, 0, "output")
    bias_t = ctx.tensor(op, 3) if op.inputs[3] >= 0 else None
    xs = ctx.shape(x)
    wf = ctx.const(wf_t, f"{what} weights_feature")
    wt = ctx.const(wt_t, f"{what} weights_time")
    if len(xs) != 2 or wf.ndim != 2 or wt.ndim != 2:
        raise ModelFormatError(f"{what}: input {list(xs)}, weights_feature {list(wf.shape)} and weights_time "
                               f"{list(wt.shape)} must be 2-D")
    batch, inputs = xs
    filters, memory = wt.shape
    rank = op.options.get("rank", 0)
    require_positive(op, rank=rank, filters=filters, memory=memory, inputs=inputs)
    if wf.shape != (filters, inputs) or filters % rank:
        raise ModelFormatError(f"{what}: weights_feature {list(wf.shape)} and weights_time {list(wt.shape)} do not "
                               f"fit an input of {inputs} features and rank {rank} (filters a multiple of it)")
    units = filters // rank
    bias = ctx.const(bias_t, f"{what} bias") if bias_t is not None else None
    if bias is not None and bias.shape != (units,):
        raise ModelFormatError(f"{what}: bias {list(bias.shape)} for {units} units")
    state = state_tensor(ctx, op, batch, memory * filters)
    types = (x.dtype, wf.dtype, wt.dtype, bias.dtype if bias is not None else None, state.dtype, y.dtype)
    kernel = next((k for t, k in KINDS.items() if all(a is None or a == b for a, b in zip(types, t))), None)
    if kernel is None:
        raise UnsupportedOpError(f"{what}: types (input, weights_feature, weights_time, bias, state, output) "
                                 f"{tuple(str(t) for t in types)} are not supported; int8 / int8 / int16 / int32 / "
                                 "int16 / int8, float32 throughout, or hybrid float32 / int8 / int8 / float32 / "
                                 "float32 / float32")
    act_code = op.options.get("fused_activation_function", 0)
    if act_code not in ACTIVATIONS:
        raise UnsupportedOpError(f"{what}: fused activation {act_code} is not supported")
    ctx.set_output(op, 0, (batch, units))
    ints = dict(batch=batch, inputs=inputs, filters=filters, units=units, rank=rank, memory=memory, input_zp=0,
                output_zp=0, mult1=0, shift1=0, mult2=0, shift2=0, mode=ctx.rounding, activation=act_code,
                asymmetric=int(bool(op.options.get("asymmetric_quantize_inputs", False))))
    floats = dict(feature_scale=0.0)
    scratch = 4 * batch * filters
    row_sums = None
    if kernel == "svdf_int8":
        if ACTIVATIONS[act_code] != "RELU":
            raise UnsupportedOpError(f"{what}: LiteRT's integer SVDF runs only with fused activation RELU, not "
                                     f"{ACTIVATIONS[act_code]}")
        sx, zx = qparams(x, op)
        sy, zy = qparams(y, op)
        swf, swt, ss = symmetric_scale(op, wf_t), symmetric_scale(op, wt_t), symmetric_scale(op, state)
        # svdf.cc multiplies and divides the float scales in float
        m1, s1 = Q.quantize_multiplier(float(Q.F32(Q.F32(sx) * Q.F32(swf)) / Q.F32(ss)), ctx.rounding)
        m2, s2 = Q.quantize_multiplier(float(Q.F32(Q.F32(ss) * Q.F32(swt)) / Q.F32(sy)), ctx.rounding)
        ints.update(input_zp=zx, output_zp=zy, mult1=m1, shift1=s1, mult2=m2, shift2=s2)
        wf_k, wt_k = ctx.keep_array(wf), ctx.keep_array(wt)
    elif kernel == "svdf_f32":
        wf_k, wt_k = ctx.keep_array(wf), ctx.keep_array(wt)
    else:
        swf, swt = symmetric_scale(op, wf_t), symmetric_scale(op, wt_t)
        floats["feature_scale"] = float(Q.F32(swf))
        wf_k = ctx.keep_array(wf)
        wt_k = ctx.keep_array(wt.astype(F32) * Q.F32(swt))         # svdf.cc dequantizes it once, in float
        if ints["asymmetric"]:
            row_sums = ctx.keep_array(wf.astype(np.int64).sum(axis=1).astype(I32))
        scratch += -(-batch * inputs // HYBRID_ALIGN) * HYBRID_ALIGN + 8 * batch
    bias_k = ctx.keep_array(bias) if bias is not None else None

    def make(addr):
        ptrs = dict(input=addr(x.index), weights_feature=address(wf_k), weights_time=address(wt_k),
                    bias=address(bias_k) if bias_k is not None else 0, state=addr(state.index),
                    output=addr(y.index), scratch=addr("scratch"),
                    row_sums=address(row_sums) if row_sums is not None else 0)
        return ptrs, ints, floats
    return Step(op, kernel, make, scratch, macs=batch * filters * (inputs + memory))


OPS = {"SVDF": OpSpec(prepare_svdf, max_version=4, output_types=None)}
