"""Shared helpers of the per-ISA path check scripts (tests/test_*_paths*.py).  Each script runs in a subprocess under
a forced EDGEML_ISA (test_kernel_paths.run_on_path starts it in the repository, so `from tests.path_cases import ...`
resolves here) and keeps only its own cases.  Expectations are LiteRT's reference formulas (gemmlowp fixed point,
MultiplyByQuantizedMultiplier in both rounding modes, the requantization modes of em_requant.h), never the kernels."""
import dataclasses

import numpy as np

from cython_ops import load_shell
from edgeml import numerics as Q
from edgeml.ir import UINT8, Graph, Op, Quantization, Tensor
from edgeml.runtime import requant as R
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.ops.common import spatial_padding
from edgeml.runtime.ops.resize import bilinear_float_axis

I64 = np.int64
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


# ----- gemmlowp fixed point on int64 arrays holding int32 values -----------------------------------------------

def wrap32(v):
    """Two's complement int32 wrap of int64 values."""
    return (v + 2 ** 31) % 2 ** 32 - 2 ** 31


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul."""
    a, b = np.broadcast_arrays(np.asarray(a, I64), np.asarray(b, I64))
    ab = a * b
    v = ab + np.where(ab >= 0, 2 ** 30, 1 - 2 ** 30)
    q = np.where(v >= 0, v // 2 ** 31, -((-v) // 2 ** 31))        # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rdbp(x, e):
    """RoundingDivideByPOT: x / 2^e rounded half away from zero (exponents of 32 and more as the int32 arithmetic)."""
    x, e = np.broadcast_arrays(np.asarray(x, I64), np.asarray(e, I64))
    out = np.zeros_like(x)
    small = e < 32
    xs, es = x[small], e[small]
    mask = (I64(1) << es) - 1
    rem, thr = xs & mask, (mask >> 1) + (xs < 0)
    out[small] = (xs >> es) + (rem > thr)
    out[~small] = np.where((e[~small] == 32) & (x[~small] == INT32_MIN), -1, 0)   # |x| / 2^32 <= 1/2
    return out


def sat_shift_left(x, k):
    """SaturatingRoundingMultiplyByPOT with a positive exponent."""
    thr = 2 ** (31 - k) - 1
    return np.where(x > thr, INT32_MAX, np.where(x < -thr, INT32_MIN, wrap32(x << k)))


def mbqm_double(x, m, shift):
    """MultiplyByQuantizedMultiplier, double rounding: SaturatingRoundingDoublingHighMul, RoundingDivideByPOT."""
    return rdbp(srdhm(wrap32(np.asarray(x, I64) << np.maximum(shift, 0)), m), np.maximum(-np.asarray(shift), 0))


def mbqm_single(x, m, shift):
    """MultiplyByQuantizedMultiplier under TFLITE_SINGLE_ROUNDING: one rounding shift of the int64 product."""
    total = 31 - shift
    return wrap32((x.astype(I64) * m + (np.ones_like(total) << (total - 1))) >> total)


def mbqm(x, m, shift, rounding):
    return (mbqm_single if rounding == 1 else mbqm_double)(x, m, shift)


def requant(acc, rq, mode):
    """int8 outputs of int32 sums under a ColumnRequant in requantization mode 0-3 (em_requant.h)."""
    if mode == 0:
        v = mbqm_double(acc, rq.mult.astype(I64), rq.shift.astype(I64))
    elif mode == 1:
        v = mbqm_single(acc, rq.mult.astype(I64), rq.shift.astype(I64))
    elif mode == 2:
        p = acc.astype(np.float64) * rq.scale64
        v = np.clip(np.sign(p) * np.floor(np.abs(p) + 0.5), -1e9, 1e9).astype(I64)
    else:
        p = acc.astype(np.float32) * rq.scale32
        v = np.rint(np.clip(p, np.float32(-1e9), np.float32(1e9))).astype(I64)
    return np.clip(v + rq.out_zp, rq.act_min, rq.act_max).astype(np.int8)


def binary_expect(which, a, b, za, zb, zo, sa, sb, so, rounding, act="NONE"):
    """int8 ADD / SUB (both inputs rescaled to twice the larger scale, left shift 20) and MUL, broadcast."""
    A, B = np.broadcast_arrays(a.astype(I64), b.astype(I64))
    f1, f2, fo = (np.float64(np.float32(v)) for v in (sa, sb, so))
    lo, hi = Q.activation_range_int8(act, so, zo)
    if which == "MUL":
        m, sh = Q.quantize_multiplier(f1 * f2 / fo, rounding)
        r = mbqm((A - za) * (B - zb), m, sh, rounding)
    else:
        twice = 2.0 * max(f1, f2)
        m1, s1 = Q.quantize_multiplier(f1 / twice, rounding)
        m2, s2 = Q.quantize_multiplier(f2 / twice, rounding)
        mo, s_o = Q.quantize_multiplier(twice / ((1 << 20) * fo), rounding)
        v1 = mbqm((A - za) << 20, m1, s1, rounding)
        v2 = mbqm((B - zb) << 20, m2, s2, rounding)
        r = mbqm(v1 + (v2 if which == "ADD" else -v2), mo, s_o, rounding)
    return np.clip(r + zo, lo, hi).astype(np.int8)


def conv_acc(x, w, bias, zp, stride, dil, pads, out_hw, depthwise):
    """int64 sums over the taps inside the image; w: [OC, KH, KW, IC] or [1, KH, KW, C] (depthwise)."""
    n, ih, iw, ic = x.shape
    kh, kw = w.shape[1:3]
    oh, ow = out_hw
    xp = np.full((n, ih + 2 * kh * dil[0] + oh * stride[0], iw + 2 * kw * dil[1] + ow * stride[1], ic), zp, I64)
    xp[:, pads[0]:pads[0] + ih, pads[1]:pads[1] + iw] = x
    xp -= zp
    oc = w.shape[3] if depthwise else w.shape[0]
    acc = np.zeros((n, oh, ow, oc), I64)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dil[0], kx * dil[1]
            patch = xp[:, y0:y0 + oh * stride[0]:stride[0], x0:x0 + ow * stride[1]:stride[1]]
            if depthwise:
                acc += patch * w[0, ky, kx].astype(I64)
            else:
                acc += patch @ w[:, ky, kx].astype(I64).T
    return acc + (0 if bias is None else bias.astype(I64))


def tensor(idx, shape, dtype, scale=None, zp=0, data=None, axis=0):
    """An IR tensor, quantized (per tensor or per `axis`) when scale is given."""
    q = None if scale is None else Quantization(np.atleast_1d(np.asarray(scale, np.float64)),
                                                np.zeros(np.size(scale), np.int64) + zp, axis)
    return Tensor(idx, f"t{idx}", tuple(shape), np.dtype(dtype), q, data)


def resize_bilinear_u8_expect(x, oh, ow, align, half):
    """RESIZE_BILINEAR uint8, the reference's float template: four products and sums in float32 (left to right),
    + 0.5, truncated."""
    n, ih, iw, c = x.shape
    F = np.float32
    (ys, fy), (xs, fx) = bilinear_float_axis(ih, oh, align, half), bilinear_float_axis(iw, ow, align, half)
    xf = x.astype(F)
    p00, p10 = xf[:, ys[:, 0]][:, :, xs[:, 0]], xf[:, ys[:, 1]][:, :, xs[:, 0]]
    p01, p11 = xf[:, ys[:, 0]][:, :, xs[:, 1]], xf[:, ys[:, 1]][:, :, xs[:, 1]]
    dy, dx = fy.astype(F)[None, :, None, None], fx.astype(F)[None, None, :, None]
    ay, ax = F(1) - dy, F(1) - dx
    return (p00 * ay * ax + p10 * dy * ax + p01 * ay * dx + p11 * dy * dx + F(0.5)).astype(np.uint8)


def fc_layer(x, w, bias, x_zp, y_zp, xs, ys, wscale, act, w_zp=0):
    """A one-op int8 FULLY_CONNECTED graph and its int64 sums; w_zp != 0: LiteRT's uint8 arithmetic (one weight
    scale, weights held as int8 with that zero point)."""
    units = w.shape[0]
    ts = [tensor(0, x.shape, np.int8, xs, x_zp), tensor(1, w.shape, np.int8, wscale, w_zp, w),
          tensor(2, (units,), np.int32, xs * wscale, 0, bias), tensor(3, (), np.int8, ys, y_zp)]
    opts = {"fused_activation_function": act}
    if w_zp:
        opts[UINT8] = True
    acc = (x.astype(I64) - x_zp) @ (w.astype(I64) - w_zp).T + bias
    return Graph(ts, [Op(0, "FULLY_CONNECTED", 1, [0, 1, 2], [3], opts)], [0], [3]), acc


def conv_layer(op_type, x, w, bias, x_zp, y_zp, xs, ys, wscale, padding, stride, dil, act, dm=1, w_zp=0):
    """A one-op int8 CONV_2D (w [OC, KH, KW, IC]) or DEPTHWISE_CONV_2D (w [1, KH, KW, IC dm]) graph and its int64
    sums; padding 0 SAME, 1 VALID; w_zp != 0: LiteRT's uint8 arithmetic (weights held as int8 with that zero point)."""
    depthwise = op_type == "DEPTHWISE_CONV_2D"
    oc = w.shape[3] if depthwise else w.shape[0]
    ts = [tensor(0, x.shape, np.int8, xs, x_zp), tensor(1, w.shape, np.int8, wscale, w_zp, w, 3 if depthwise else 0),
          tensor(2, (oc,), np.int32, xs * np.asarray(wscale), 0, bias), tensor(3, (), np.int8, ys, y_zp)]
    opts = {"padding": padding, "stride_h": stride[0], "stride_w": stride[1], "dilation_h_factor": dil[0],
            "dilation_w_factor": dil[1], "fused_activation_function": act, "depth_multiplier": dm}
    if w_zp:
        opts[UINT8] = True
    op = Op(0, op_type, 1, [0, 1, 2], [3], opts)
    kh, kw = w.shape[1:3]
    oh, pt = spatial_padding(op, x.shape[1], kh, stride[0], dil[0])
    ow, pl = spatial_padding(op, x.shape[2], kw, stride[1], dil[1])
    xd = np.repeat(x, dm, axis=3) if depthwise else x
    acc = conv_acc(xd, w.astype(I64) - w_zp, bias, x_zp, stride, dil, (pt, pl), (oh, ow), depthwise)
    return Graph(ts, [op], [0], [3]), acc


def depthwise_layer(rng, n, ih, iw, ic, dm, kh, kw, stride, dil, padding, act, x_zp, y_zp, xs, ys, wscale, w=None,
                    bias=None, x=None):
    """A one-op DEPTHWISE_CONV_2D graph (random input / weights / bias unless given), its input and int64 sums."""
    oc = ic * dm
    if x is None:
        x = rng.integers(-128, 128, size=(n, ih, iw, ic)).astype(np.int8)
    if w is None:
        w = rng.integers(-127, 128, size=(1, kh, kw, oc)).astype(np.int8)
    if bias is None:
        bias = rng.integers(-20000, 20000, oc).astype(np.int32)
    g, acc = conv_layer("DEPTHWISE_CONV_2D", x, w, bias, x_zp, y_zp, xs, ys, wscale, padding, stride, dil, act, dm)
    desc = f"x{list(x.shape)} w{list(w.shape)} dm{dm} s{stride} d{dil} pad{padding} act{act}"
    return g, x, acc, desc


def conv_case(rng, n, hw, ic, oc, k, stride, padding, left=False):
    """(graph, input, int32 sums, label) of a seeded int8 CONV_2D with a k x k (or (kh, kw)) window over ic channels
    (K = kh * kw * ic), per-channel weight scales; left: output scales that make some channels' multipliers exceed 1."""
    kh, kw = k if isinstance(k, tuple) else (k, k)
    ih, iw = hw
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(n, ih, iw, ic)).astype(np.int8)
    w = rng.integers(-127, 128, size=(oc, kh, kw, ic)).astype(np.int8)
    wscale = np.exp(rng.uniform(np.log(1e-4), np.log(1e-1), oc))
    bias = rng.integers(-3000, 3000, oc).astype(np.int32)
    xs = float(rng.uniform(0.01, 0.1))
    ys = float(xs * np.median(wscale) * (0.5 if left else rng.uniform(20, 400)))
    ts = [tensor(0, x.shape, np.int8, xs, x_zp), tensor(1, w.shape, np.int8, wscale, 0, w, 0),
          tensor(2, (oc,), np.int32, xs * wscale, 0, bias), tensor(3, (), np.int8, ys, y_zp)]
    opts = {"padding": padding, "stride_h": stride, "stride_w": stride, "dilation_h_factor": 1,
            "dilation_w_factor": 1, "fused_activation_function": int(rng.choice([0, 1, 3])), "depth_multiplier": 1}
    op = Op(0, "CONV_2D", 1, [0, 1, 2], [3], opts)
    oh, pt = spatial_padding(op, ih, kh, stride, 1)
    ow, pl = spatial_padding(op, iw, kw, stride, 1)
    acc = conv_acc(x, w, bias, x_zp, (stride, stride), (1, 1), (pt, pl), (oh, ow), False)
    return Graph(ts, [op], [0], [3]), x, acc, f"x{list(x.shape)} oc{oc} k{k} s{stride} pad{padding} left{left}"


def layer_quantization(rng, oc):
    """Zero points and scales drawn as in real depthwise layers: x_zp, y_zp, input, output and weight scales."""
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    xs, ys = float(rng.uniform(0.005, 0.1)), float(rng.uniform(0.01, 0.3))
    return x_zp, y_zp, xs, ys, rng.uniform(0.001, 0.05, oc)


def compile_capturing(graph, rounding, num_threads=1, edit=None, **plan_options):
    """The plan and the ColumnRequants its prepares made (each passed through `edit` first when given)."""
    original, original_source = R.column_requant, R.column_source
    captured = []

    def capture(*args, **kw):
        rq = original(*args, **kw)
        captured.append(rq if edit is None else edit(rq))
        return captured[-1]

    def capture_source(ctx, *args, **kw):      # (CONV_2D / FULLY_CONNECTED: the multipliers come from C)
        source = original_source(ctx, *args, **kw)
        rq = source.column_requant(ctx.rounding)
        captured.append(rq if edit is None else edit(rq))
        return source if edit is None else R.given_columns(captured[-1])      # (the edited arrays, as given)
    # (the prepares' one-call shell computes its columns without these two: its Python path, equal plan for plan
    # (tests/test_load_fast_paths.py), takes them)
    shells = load_shell.int8_conv_shell, load_shell.int8_fully_connected_shell
    R.column_requant, R.column_source = capture, capture_source
    load_shell.int8_conv_shell = load_shell.int8_fully_connected_shell = lambda *args: None
    try:
        plan = compile_graph(graph, {}, rounding, num_threads, **plan_options)
    finally:
        R.column_requant, R.column_source = original, original_source
        load_shell.int8_conv_shell, load_shell.int8_fully_connected_shell = shells
    return plan, captured


def run(graph, x, rounding, mode, num_threads=1, **plan_options):
    """Output, ColumnRequants and kernel names of a one-input graph, requantization mode 2 / 3 forced when asked."""
    force = (lambda rq: dataclasses.replace(rq, mode=mode)) if mode in (2, 3) else None
    plan, captured = compile_capturing(graph, rounding, num_threads, force, **plan_options)
    plan.view(graph.inputs[0])[...] = x
    plan.engine.invoke()
    return plan.view(graph.outputs[0]).copy(), captured, [s.kernel for s in plan.steps]


def run_graph(graph, inputs, rounding, kernels, num_threads=1, steps=None):
    """The first output of `graph` on `inputs` (one array per graph input); the kernels that ran go into `kernels`
    (and the plan's steps into the list `steps`, when given)."""
    plan = compile_graph(graph, {}, rounding, num_threads)
    if steps is not None:
        steps.extend(plan.steps)
    for idx, x in zip(graph.inputs, inputs):
        plan.view(idx)[...] = x
    plan.engine.invoke()
    kernels.update(s.kernel for s in plan.steps)
    return plan.view(graph.outputs[0]).copy()


def compare(failures, label, got, want):
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)[:3].tolist()
        failures.append(f"{label}: {int((got != want).sum())} of {got.size} differ, at {bad}")


def check_modes(cases, failures, kernels, **plan_options):
    """Each (graph, input, int64 sums, description) case in the four requantization modes, against the sums."""
    for g, x, acc, desc in cases:
        for mode in (0, 1, 2, 3):
            got, rqs, names = run(g, x, 1 if mode == 1 else 0, mode, **plan_options)
            kernels.update(names)
            compare(failures, f"{desc} mode {rqs[0].mode}", got, requant(acc, rqs[0], rqs[0].mode))


def check_threads(cases, failures, kernels, **plan_options):
    """Cases big enough to be split over threads: identical for 1, 2 and 3 threads."""
    for g, x, acc, desc in cases:
        for threads in (1, 2, 3):
            got, rqs, names = run(g, x, 0, 0, threads, **plan_options)
            kernels.update(names)
            if not np.array_equal(got, requant(acc, rqs[0], rqs[0].mode)):
                failures.append(f"{desc} with {threads} threads differs")


def report(kernels, failures):
    """The scripts' last words, as run_on_path reads them: the kernels that ran, then "ok" or the failures."""
    print("kernels", " ".join(sorted(kernels)))
    print("\n".join(failures) if failures else "ok")


# ----- int8 ADD / SUB / MUL and MEAN (test_elementwise_paths*.py, test_binary_broadcast_paths.py) -----------------

ACTIVATION_CODES = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]
# (input 1, input 2, output) scales the float-estimate loops take: random ones and ones putting many sums on a tie
# (equal scales, ratios of powers of two); MUL's with multipliers s1 s2 / so of 2^-8 and below, some a power of two
ESTIMATE_SCALES = [(0.0517, 0.0291, 0.0613), (0.05, 0.05, 0.05), (0.05, 0.05, 0.1), (0.05, 0.025, 0.05),
                   (0.1, 0.05, 0.0125), (0.0625, 0.03125, 0.25), (0.02, 0.07, 0.11), (0.013, 0.09, 0.031)]
ESTIMATE_MUL_SCALES = [(0.05, 1 / 256, 0.0454), (0.05, 1 / 256, 0.05), (0.0625, 1 / 256, 0.0625), (0.1, 0.01, 0.5),
                       (0.25, 1 / 256, 2.0), (0.03, 0.02, 0.4), (0.07, 0.003, 0.9)]


def run_binary(which, a, b, za, zb, zo, sa, sb, so, rounding, act, kernels, num_threads=1, steps=None):
    """The output of one int8 ADD / SUB / MUL with a fused activation (by name) on a and b."""
    out_shape = np.broadcast_shapes(a.shape, b.shape)
    ts = [tensor(0, a.shape, np.int8, sa, za), tensor(1, b.shape, np.int8, sb, zb),
          tensor(2, out_shape, np.int8, so, zo)]
    g = Graph(ts, [Op(0, which, 1, [0, 1], [2], {"fused_activation_function": ACTIVATION_CODES[act]})], [0, 1], [2])
    return run_graph(g, (a, b), rounding, kernels, num_threads, steps)


def check_broadcasts(rng, failures, kernels, broadcasts, scales, mul_scales):
    """ADD / SUB / MUL over each pair of shapes (swapped every other one), both roundings, scales taken in turn."""
    for k, (sa_shape, sb_shape) in enumerate(broadcasts):
        if k % 2:
            sa_shape, sb_shape = sb_shape, sa_shape
        a = rng.integers(-128, 128, size=sa_shape).astype(np.int8)
        b = rng.integers(-128, 128, size=sb_shape).astype(np.int8)
        za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
        for which in ("ADD", "SUB", "MUL"):
            sa, sb, so = (mul_scales if which == "MUL" else scales)[k % 7]
            for rounding in (0, 1):
                act = ACTIVATIONS[(k + rounding) % 4]
                want = binary_expect(which, a, b, za, zb, zo, sa, sb, so, rounding, act)
                compare(failures, f"{which} {list(a.shape)} x {list(b.shape)} {act} rounding {rounding}",
                        run_binary(which, a, b, za, zb, zo, sa, sb, so, rounding, act, kernels), want)


def check_mean(rng, failures, kernels, cases):
    """MEAN int8 (integer sum, one folded multiplier) and float32 (each output's inputs summed in input order) over
    each (shape, axes) case, keep_dims on every other one."""
    for k, (shape, axes) in enumerate(cases):
        rank = len(shape)
        red = sorted({a % rank for a in axes})
        keep = k % 2 == 0
        out_shape = tuple(1 if d in red else s for d, s in enumerate(shape)) if keep else \
            tuple(s for d, s in enumerate(shape) if d not in red)
        count = int(np.prod([shape[d] for d in red]))
        for kind in ("int8", "float32"):
            for rounding in ((0, 1) if kind == "int8" else (0,)):
                if kind == "int8":
                    za, zo = (int(v) for v in rng.integers(-128, 128, 2))
                    sa, so = (float(v) for v in rng.uniform(0.01, 0.2, 2))
                    x = rng.integers(-128, 128, size=shape).astype(np.int8)
                    ts = [tensor(0, shape, np.int8, sa, za), tensor(2, out_shape, np.int8, so, zo)]
                else:
                    x = rng.standard_normal(shape).astype(np.float32) * 100
                    ts = [tensor(0, shape, np.float32), tensor(2, out_shape, np.float32)]
                ts.insert(1, tensor(1, (len(axes),), np.int32, None, 0, np.array(axes, np.int32)))
                g = Graph(ts, [Op(0, "MEAN", 1, [0, 1], [2], {"keep_dims": keep})], [0], [2])
                got = run_graph(g, (x,), rounding, kernels).reshape(-1)
                kept = [d for d in range(rank) if d not in red]
                xr = np.transpose(x, red + kept).reshape(count, -1)      # reduced index in input order first
                if kind == "int8":
                    m, sh = Q.mean_multiplier(np.float64(np.float32(sa)) / np.float64(np.float32(so)), count,
                                              rounding)
                    acc = xr.astype(I64).sum(axis=0) - za * count
                    want = np.clip(mbqm(acc, m, sh, rounding) + zo, -128, 127).astype(np.int8)
                else:
                    acc = np.zeros(xr.shape[1], np.float32)
                    for row in xr:
                        acc += row
                    want = acc / np.float32(count)
                if not np.array_equal(got, want.reshape(-1)):
                    failures.append(f"MEAN {kind} {list(shape)} axes {axes} keep {keep} rounding {rounding}: "
                                    f"{int((got != want.reshape(-1)).sum())} of {got.size} differ")
