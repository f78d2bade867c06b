"""Every int8 conv / depthwise / FC / ADD kernel path (EDGEML_ISA forces each one the CPU has) in every
requantization mode (em_requant.h 0-3) on random shapes -- odd channel counts, K not a multiple of 4, SAME and
VALID padding, stride 2, dilation, several pixels per depthwise vector -- against exact NumPy expectations
written from the formulas (not from the kernels).

The ISA path is fixed per process, so each path runs the check in a subprocess."""
import os
import subprocess
import sys

import pytest

PATHS = ["scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neon_dotprod", "neon_i8mm"]


def forced_path(name: str) -> str:
    """The path a process takes with EDGEML_ISA=name (a path the CPU lacks is not taken)."""
    done = subprocess.run([sys.executable, "-c", "from cython_ops.conv import isa; print(isa())"],
                          env=dict(os.environ, EDGEML_ISA=name), capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def run_on_path(forced: str, script: str, *args, timeout: int = 300) -> list:
    """Runs a check script in a subprocess with EDGEML_ISA=forced (skips the test when this CPU lacks that path);
    the script prints the kernels that ran on its first line and ends with "ok" or its failures.  Returns the
    names on the first line."""
    if forced_path(forced) != forced:
        pytest.skip(f"this CPU has no {forced} path")
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=dict(os.environ, EDGEML_ISA=forced),
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "ok", "\n".join(lines[-20:])
    return lines[0].split()

CHECK = r'''
import dataclasses, sys
import numpy as np
from edgeml.runtime import requant as R
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.ops.common import spatial_padding
from edgeml import numerics as Q
from edgeml.ir import Graph, Op, Quantization, Tensor

I32 = np.int64


def mbqm_double(x, m, shift):
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    x = ((x.astype(I32) << left) + 2 ** 31) % 2 ** 32 - 2 ** 31          # int32 wrap of x << left
    ab = x * m
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    t = ab + nudge
    v = np.where(t >= 0, t >> 31, -((-t) >> 31))                         # division truncating toward zero
    mask = (np.ones_like(right) << right) - 1
    rem, thr = v & mask, (mask >> 1) + (v < 0)
    return (v >> right) + (rem > thr)


def mbqm_single(x, m, shift):
    total = 31 - shift
    r = (x.astype(I32) * m + (np.ones_like(total) << (total - 1))) >> total
    return (r + 2 ** 31) % 2 ** 32 - 2 ** 31


def requant(acc, rq, mode):
    if mode == 0:
        v = mbqm_double(acc, rq.mult.astype(I32), rq.shift.astype(I32))
    elif mode == 1:
        v = mbqm_single(acc, rq.mult.astype(I32), rq.shift.astype(I32))
    elif mode == 2:
        p = acc.astype(np.float64) * rq.scale64
        v = np.clip(np.sign(p) * np.floor(np.abs(p) + 0.5), -1e9, 1e9).astype(I32)
    else:
        p = acc.astype(np.float32) * rq.scale32
        v = np.rint(np.clip(p, np.float32(-1e9), np.float32(1e9))).astype(I32)
    return np.clip(v + rq.out_zp, rq.act_min, rq.act_max).astype(np.int8)


def conv_acc(x, w, bias, zp, stride, dil, pads, out_hw, depthwise):
    """int64 sums over the taps inside the image; w: [OC, KH, KW, IC] or [1, KH, KW, C] (depthwise)."""
    n, ih, iw, ic = x.shape
    kh, kw = w.shape[1:3]
    oh, ow = out_hw
    xp = np.full((n, ih + 2 * kh * dil[0] + oh * stride[0], iw + 2 * kw * dil[1] + ow * stride[1], ic), zp, I32)
    xp[:, pads[0]:pads[0] + ih, pads[1]:pads[1] + iw] = x
    xp -= zp
    oc = w.shape[3] if depthwise else w.shape[0]
    acc = np.zeros((n, oh, ow, oc), I32)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dil[0], kx * dil[1]
            patch = xp[:, y0:y0 + oh * stride[0]:stride[0], x0:x0 + ow * stride[1]:stride[1]]
            if depthwise:
                acc += patch * w[0, ky, kx].astype(I32)
            else:
                acc += patch @ w[:, ky, kx].astype(I32).T
    return acc + (0 if bias is None else bias.astype(I32))


def tensor(idx, shape, dtype, scale=None, zp=0, data=None, axis=0):
    q = None if scale is None else Quantization(np.atleast_1d(np.asarray(scale, np.float64)),
                                                np.zeros(np.size(scale), np.int64) + zp, axis)
    return Tensor(idx, f"t{idx}", tuple(shape), np.dtype(dtype), q, data)


def run(graph, x, rounding, mode, num_threads=1, **plan_options):
    original = R.column_requant
    captured = []

    def forced(*args, **kw):
        rq = original(*args, **kw)
        if mode in (2, 3):
            rq = dataclasses.replace(rq, mode=mode)
        captured.append(rq)
        return rq
    R.column_requant = forced
    try:
        plan = compile_graph(graph, {}, rounding, num_threads, **plan_options)
    finally:
        R.column_requant = original
    plan.view(graph.inputs[0])[...] = x
    plan.engine.invoke()
    return plan.view(graph.outputs[0]).copy(), captured, [s.kernel for s in plan.steps]


def case_conv(rng, kind, big=False):
    n = 1 if rng.random() < 0.8 else 2
    ih, iw = rng.integers(1, 12, 2)
    ic = int(rng.choice([1, 2, 3, 5, 8, 16, 19, 32, 64, 128] if kind == "depthwise" else [1, 2, 3, 5, 8, 16, 19]))
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    sh, sw = (int(v) for v in rng.choice([1, 2], 2))
    dh, dw = (int(v) for v in rng.choice([1, 1, 2], 2))
    padding = int(rng.integers(0, 2))
    if big:   # past the threading threshold (ops.conv.THREAD_MIN_MACS)
        n, ih, iw, ic, kh, kw, sh, sw, dh, dw = 2, 37, 35, 16, 3, 3, 1, 1, 1, int(rng.choice([1, 2]))
    if kind == "depthwise":
        oc = ic
    else:
        oc = int(rng.choice([1, 7, 8, 8, 16, 17, 33, 64, 70])) if not big else 40
    if kind == "1x1":
        kh = kw = sh = sw = 1
        padding = 1
    if padding == 1:
        ih, iw = max(ih, (kh - 1) * dh + 1), max(iw, (kw - 1) * dw + 1)
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(n, ih, iw, ic)).astype(np.int8)
    if kind == "depthwise":
        w = rng.integers(-127, 128, size=(1, kh, kw, oc)).astype(np.int8)
        axis = 3
    else:
        w = rng.integers(-127, 128, size=(oc, kh, kw, ic)).astype(np.int8)
        axis = 0
    wscale = rng.uniform(0.002, 0.02, oc)
    bias = rng.integers(-5000, 5000, oc).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 0.5))
    act = int(rng.choice([0, 1, 3]))
    if rng.random() < 0.3:   # effective scale 0.5 and small sums: half the products are rounding ties
        w = np.clip(w, -1, 1)
        wscale[:], xs, ys = 0.5, 1.0, 1.0
        bias = rng.integers(-3, 4, oc).astype(np.int32)
    ts = [tensor(0, x.shape, np.int8, xs, x_zp), tensor(1, w.shape, np.int8, wscale, 0, w, axis),
          tensor(2, (oc,), np.int32, xs * wscale, 0, bias), tensor(3, (), np.int8, ys, y_zp)]
    opts = {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h_factor": dh,
            "dilation_w_factor": dw, "fused_activation_function": act, "depth_multiplier": 1}
    op = Op(0, "DEPTHWISE_CONV_2D" if kind == "depthwise" else "CONV_2D", 1, [0, 1, 2], [3], opts)
    g = Graph(ts, [op], [0], [3])
    oh, pt = spatial_padding(op, ih, kh, sh, dh)
    ow, pl = spatial_padding(op, iw, kw, sw, dw)
    acc = conv_acc(x, w, bias, x_zp, (sh, sw), (dh, dw), (pt, pl), (oh, ow), kind == "depthwise")
    desc = f"{kind} x{list(x.shape)} w{list(w.shape)} s{sh}{sw} d{dh}{dw} pad{padding}"
    return g, x, acc, desc


def case_fc(rng):
    rows, k, n_out = int(rng.choice([1, 2, 5])), int(rng.choice([1, 3, 8, 13, 64, 130])), int(rng.choice([1, 8, 10, 16, 50, 65]))
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(rows, k)).astype(np.int8)
    w = rng.integers(-127, 128, size=(n_out, k)).astype(np.int8)
    wscale = rng.uniform(0.002, 0.02, n_out)
    bias = rng.integers(-5000, 5000, n_out).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 0.5))
    if rng.random() < 0.3:   # rounding ties, as in case_conv
        w = np.clip(w, -1, 1)
        wscale[:], xs, ys = 0.5, 1.0, 1.0
        bias = rng.integers(-3, 4, n_out).astype(np.int32)
    ts = [tensor(0, x.shape, np.int8, xs, x_zp), tensor(1, w.shape, np.int8, wscale, 0, w),
          tensor(2, (n_out,), np.int32, xs * wscale, 0, bias), tensor(3, (), np.int8, ys, y_zp)]
    op = Op(0, "FULLY_CONNECTED", 1, [0, 1, 2], [3], {"fused_activation_function": int(rng.choice([0, 1]))})
    acc = (x.astype(I32) - x_zp) @ w.astype(I32).T + bias
    return Graph(ts, [op], [0], [3]), x, acc, f"fc x{list(x.shape)} w{list(w.shape)}"


def add_expect(a, b, za, zb, zo, sa, sb, so, rounding, sign=1):
    f1, f2, fo = (np.float64(np.float32(v)) for v in (sa, sb, so))
    twice = 2.0 * max(f1, f2)
    m1, s1 = Q.quantize_multiplier(f1 / twice, rounding)
    m2, s2 = Q.quantize_multiplier(f2 / twice, rounding)
    mo, s_o = Q.quantize_multiplier(twice / ((1 << 20) * fo), rounding)
    f = mbqm_single if rounding == 1 else mbqm_double
    v1 = f((a.astype(I32) - za) << 20, np.int64(m1), np.int64(s1))
    v2 = f((b.astype(I32) - zb) << 20, np.int64(m2), np.int64(s2))
    return np.clip(f(v1 + sign * v2, np.int64(mo), np.int64(s_o)) + zo, -128, 127).astype(np.int8)


def check_modes(cases, failures, kernels, **plan_options):
    """Each (graph, input, int32 sums, description) case in the four requantization modes, against the sums."""
    for g, x, acc, desc in cases:
        for mode in (0, 1, 2, 3):
            got, rqs, names = run(g, x, 1 if mode == 1 else 0, mode, **plan_options)
            kernels.update(names)
            want = requant(acc, rqs[0], rqs[0].mode)
            if not np.array_equal(got, want):
                bad = np.argwhere(got != want)[:3].tolist()
                failures.append(f"{desc} mode {rqs[0].mode}: {int((got != want).sum())} of {got.size} differ, "
                                f"at {bad}")


def check_threads(cases, failures, kernels, **plan_options):
    """Cases big enough to be split over threads: identical for 1, 2 and 3 threads."""
    for g, x, acc, desc in cases:
        for threads in (1, 2, 3):
            got, rqs, names = run(g, x, 0, 0, threads, **plan_options)
            kernels.update(names)
            if not np.array_equal(got, requant(acc, rqs[0], rqs[0].mode)):
                failures.append(f"{desc} with {threads} threads differs")


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    cases = [case_conv(rng, k) for k in ["general"] * 14 + ["1x1"] * 4 + ["depthwise"] * 14] + \
            [case_fc(rng) for _ in range(8)]
    for g, x, acc, desc in cases:
        for mode in (0, 1, 2, 3):
            rounding = 1 if mode == 1 else 0
            got, rqs, names = run(g, x, rounding, mode)
            kernels.update(names)
            rq = rqs[0]
            if rq.mode != mode and not (mode == 0 and rq.mode == 2):      # FC's double rounding is mode 2
                failures.append(f"{desc}: asked for mode {mode}, prepared {rq.mode}")
                continue
            want = requant(acc, rq, rq.mode)
            if not np.array_equal(got, want):
                bad = np.argwhere(got != want)[:3].tolist()
                failures.append(f"{desc} mode {rq.mode}: {int((got != want).sum())} of {got.size} differ, at {bad}")
    check_threads([case_conv(rng, "general", big=True) for _ in range(2)], failures, kernels)
    for j in range(6):
        shape = tuple(int(v) for v in rng.integers(1, 9, 3)) + (int(rng.choice([1, 3, 16, 21])),)
        if j == 0:   # below EM_ADD_TABLE_MIN: the arithmetic loop even where the CPU has VBMI
            shape = (1, 2, 3, int(rng.choice([16, 21])))
        if j >= 4:   # a few thousand elements: the table loop's (VBMI) main body and tail
            shape = (1, 16, int(rng.integers(16, 20)), int(rng.choice([16, 21])))
        za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
        sa, sb, so = (float(v) for v in rng.uniform(0.01, 0.2, 3))
        a = rng.integers(-128, 128, size=shape).astype(np.int8)
        b = rng.integers(-128, 128, size=shape).astype(np.int8)
        ts = [tensor(0, shape, np.int8, sa, za), tensor(1, shape, np.int8, sb, zb), tensor(2, (), np.int8, so, zo)]
        for rounding, which in ((0, "ADD"), (1, "ADD"), (0, "SUB" if j % 2 else "ADD")):
            g = Graph(ts, [Op(0, which, 1, [0, 1], [2], {})], [0, 1], [2])
            plan = compile_graph(g, {}, rounding)
            plan.view(0)[...] = a
            plan.view(1)[...] = b
            plan.engine.invoke()
            kernels.update(s.kernel for s in plan.steps)
            want = add_expect(a, b, za, zb, zo, sa, sb, so, rounding, -1 if which == "SUB" else 1)
            if not np.array_equal(plan.view(2), want):
                failures.append(f"{which} {shape} rounding {rounding}: {int((plan.view(2) != want).sum())} differ")
    for j in range(6):    # one input of a single element (the unrolled GRU's 1 - z), and MUL
        shape = (1, int(rng.integers(1, 4)), int(rng.choice([16, 21, 64, 70])))
        za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
        sa, sb, so = (float(v) for v in rng.uniform(0.01, 0.2, 3))
        a = rng.integers(-128, 128, size=shape).astype(np.int8)
        b = rng.integers(-128, 128, size=shape).astype(np.int8)
        one = (1,) * len(shape)
        if j % 3 == 1:
            a = a.reshape(-1)[:1].reshape(one)
        elif j % 3 == 2:
            b = b.reshape(-1)[:1].reshape(one)
        for rounding, which in ((0, "SUB" if j % 2 else "ADD"), (1, "ADD"), (0, "MUL"), (1, "MUL")):
            ts = [tensor(0, a.shape, np.int8, sa, za), tensor(1, b.shape, np.int8, sb, zb),
                  tensor(2, (), np.int8, so, zo)]
            g = Graph(ts, [Op(0, which, 1, [0, 1], [2], {})], [0, 1], [2])
            plan = compile_graph(g, {}, rounding)
            plan.view(0)[...] = a
            plan.view(1)[...] = b
            plan.engine.invoke()
            kernels.update(s.kernel for s in plan.steps)
            A, B = np.broadcast_arrays(a, b)
            if which == "MUL":
                f1, f2, fo = (np.float64(np.float32(v)) for v in (sa, sb, so))
                m, sh = Q.quantize_multiplier(f1 * f2 / fo, rounding)
                f = mbqm_single if rounding == 1 else mbqm_double
                prod = (A.astype(I32) - za) * (B.astype(I32) - zb)
                want = np.clip(f(prod, np.int64(m), np.int64(sh)) + zo, -128, 127).astype(np.int8)
            else:
                want = add_expect(A, B, za, zb, zo, sa, sb, so, rounding, -1 if which == "SUB" else 1)
            if not np.array_equal(plan.view(2), want):
                failures.append(f"{which} {a.shape} x {b.shape} rounding {rounding}: "
                                f"{int((plan.view(2) != want).sum())} differ")
    print("kernels", " ".join(sorted(kernels)))
    print("\n".join(failures) if failures else "ok")


main()
'''


@pytest.mark.parametrize("forced", PATHS)
def test_every_kernel_path_and_requant_mode_is_exact(forced):
    for seed in (1, 2):
        kernels = run_on_path(forced, CHECK, seed)
        expected = {"avx512vnni": ("conv2d_int8_vnni", "depthwise_int8_vnni", "fully_connected_int8_vnni",
                                   "add_int8_avx512", "mul_int8_avx512"),
                    "avxvnni": ("conv2d_int8_avxvnni", "depthwise_int8_avxvnni", "fully_connected_int8_avxvnni"),
                    "avx512": ("conv2d_int8_avx2", "depthwise_int8_avx2", "fully_connected_int8_avx2"),
                    "avx2": ("conv2d_int8_avx2", "depthwise_int8_avx2", "fully_connected_int8_avx2"),
                    "scalar": ("conv2d_int8", "depthwise_int8", "fully_connected_int8", "add_int8", "mul_int8"),
                    "neon": ("conv2d_int8", "fully_connected_int8"),
                    "neon_dotprod": ("conv2d_int8", "fully_connected_int8"),
                    "neon_i8mm": ("conv2d_int8", "fully_connected_int8")}[forced]
        for name in expected:   # the path's own kernels really ran
            assert name in kernels, kernels


@pytest.mark.parametrize("bad", [0, -1, 65, 1.5, True, "2", None])
def test_num_threads_is_validated(reference_models, bad):
    import edgeml
    with pytest.raises(edgeml.EdgeMLError, match="num_threads"):
        edgeml.Interpreter(str(reference_models / "mlperf_tiny" / "ad01_int8.tflite"), num_threads=bad)


def test_num_threads_gives_identical_outputs_on_resnet(reference_models):
    """ResNet-8's big convs are split over threads; every thread count gives the same bytes."""
    import numpy as np
    import edgeml
    path = str(reference_models / "mlperf_tiny" / "pretrainedResnet_quant.tflite")
    its = [edgeml.Interpreter(path, num_threads=n) for n in (1, 2, 3)]
    threaded = [s for s in its[1].plan.steps if s.kernel == "conv2d_int8_vnni" and s.make(lambda t: 0)[1]["threads"] > 1]
    from cython_ops.conv import isa
    if isa() == "avx512vnni":
        assert threaded, "no conv of ResNet-8 was split over threads"
    rng = np.random.default_rng(0)
    shape = its[0].get_input_details()[0]["shape"]
    for _ in range(4):
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        outs = []
        for it in its:
            it.set_input(x)
            it.invoke()
            outs.append(it.get_output().copy())
        for o in outs[1:]:
            np.testing.assert_array_equal(o, outs[0])
