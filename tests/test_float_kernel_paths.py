"""The float32 SIMD kernels (em_float_gemm.h, em_float_depthwise.h) and the hybrid CONV_2D's SIMD sums (em_hybrid.h)
on every ISA path this CPU has (EDGEML_ISA forces each; one subprocess per path), on awkward random shapes: odd and
non-multiple-of-16 channel counts, batch 2, SAME / VALID, stride 2, dilation, 5x5 / 7x7 windows, depth multipliers
2 and 3, few input channels (the im2col rows; pixel pairs on AVX-512 with <= 8 outputs), 3-wide stride-1 / -2 convs
with <= 2 vectors of outputs (the row conv, fused mode), one-row and many-row FULLY_CONNECTED; ADD / SUB / MUL
broadcast on any axis or from a scalar (with NaNs), the RELU family and LEAKY_RELU (with -0.0).

Float expectations are written from the reference kernels' formulas in NumPy float32 (each product rounded, then
added to a sum that starts at 0, taps in window-row, window-column, channel order, padding taps skipped; then
+ bias and the clamp): every path must equal them bit for bit with float_exact=True.  The default (fused) SIMD
kernels must equal the same formula with each product added unrounded (a float64 product, exact for two float32s,
added in float64 and rounded to float32: the fused multiply-add's single rounding, up to a double rounding that
these cases do not hit; the row conv sums window row, channel, window column, and its expectation follows that
order), and the scalar path stays on the reference's formula in both modes.  The hybrid conv's quantization is LiteRT's
(checked against LiteRT in test_hybrid_models.py on the portable path); here every path must equal the portable
kernel's output."""

import numpy as np
import pytest

from test_kernel_paths import run_on_path

PATHS = ["scalar", "avx2", "avxvnni", "avx512", "avx512vnni"]   # the float SIMD kernels are x86 only

CHECK = r'''
import sys
import numpy as np
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.ops.common import spatial_padding
from edgeml.ir import Graph, Op
from tests.path_cases import report, tensor

F = np.float32
ACT = {0: (-np.finfo(F).max, np.finfo(F).max), 1: (0.0, np.finfo(F).max), 3: (0.0, 6.0)}


def run(graph, x):
    plan = compile_graph(graph, {}, 0, 1, float_exact=EXACT)
    plan.view(graph.inputs[0])[...] = x
    plan.engine.invoke()
    return plan.view(graph.outputs[0]).copy(), [s.kernel for s in plan.steps]


def row_conv(graph):
    """True when the graph's conv runs em_frow_run (gather 3), whose sums go window row, channel, column."""
    plan = compile_graph(graph, {}, 0, 1, float_exact=EXACT)
    return any(s.make(lambda *_: 0)[1].get("gather") == 3 for s in plan.steps if s.kernel.startswith("conv2d"))


def multiply_add(acc, a, b):
    """acc + a * b: the product rounded first (the reference), or once with the sum (FUSED, a fused multiply-add)."""
    if FUSED:
        return (acc.astype(np.float64) + a.astype(np.float64) * b.astype(np.float64)).astype(F)
    return (acc + (a * b).astype(F)).astype(F)


def reference_conv(x, w, bias, stride, dil, pads, out_hw, act, dm=None, rows=False):
    """The reference kernels' float sums (fused with FUSED); w: [OC, KH, KW, IC], or [1, KH, KW, OC] with dm
    (depthwise); rows: the row conv's order (window row, input channel, window column)."""
    n, ih, iw, ic = x.shape
    kh, kw = w.shape[1:3]
    oh, ow = out_hw
    oc = w.shape[3] if dm else w.shape[0]
    acc = np.zeros((n, oh, ow, oc), F)
    oy, ox = np.arange(oh), np.arange(ow)
    for ky in range(kh):
        iy = oy * stride[0] - pads[0] + ky * dil[0]
        if rows:
            for c in range(ic):
                for kx in range(kw):
                    ix = ox * stride[1] - pads[1] + kx * dil[1]
                    inside = ((iy >= 0) & (iy < ih))[:, None] & ((ix >= 0) & (ix < iw))[None, :]
                    patch = x[:, np.clip(iy, 0, ih - 1)][:, :, np.clip(ix, 0, iw - 1)]
                    acc = np.where(inside[None, :, :, None], multiply_add(acc, patch[..., c:c + 1], w[:, ky, kx, c]),
                                   acc)
            continue
        for kx in range(kw):
            ix = ox * stride[1] - pads[1] + kx * dil[1]
            inside = ((iy >= 0) & (iy < ih))[:, None] & ((ix >= 0) & (ix < iw))[None, :]
            patch = x[:, np.clip(iy, 0, ih - 1)][:, :, np.clip(ix, 0, iw - 1)]     # [n, oh, ow, ic]
            if dm:
                acc = np.where(inside[None, :, :, None],
                               multiply_add(acc, patch[..., np.arange(oc) // dm], w[0, ky, kx]), acc)
                continue
            for c in range(ic):
                acc = np.where(inside[None, :, :, None], multiply_add(acc, patch[..., c:c + 1], w[:, ky, kx, c]),
                               acc)
    lo, hi = ACT[act]
    y = (acc + (bias if bias is not None else F(0))).astype(F)
    return np.minimum(np.maximum(y, F(lo)), F(hi))


def case_conv(rng, kind):
    wide = kind == "depthwise_wide"      # >= 4 vectors of channels: the row-end pixels' 4-vector loop
    big = kind == "1x1_big"              # more than 512 KiB of weights: the large pointer-table chunks
    few = kind == "few"                  # few input channels: the im2col rows (pixel pairs with <= 8 outputs)
    row = kind == "row"                  # stride 1 or 2 across, 3 wide, <= 2 vectors of outputs: the row conv
    kind = "depthwise" if wide else ("1x1" if big else ("conv" if few or row else kind))
    n = 1 if rng.random() < 0.75 else 2
    ih, iw = (int(v) for v in rng.integers(1, 14, 2))
    ic = int(rng.choice([1, 3, 5, 8, 16, 17, 33, 64]))
    if wide:
        ic, iw = int(rng.choice([33, 64, 70])), int(rng.choice([5, 6, 7, 11]))
    kh, kw = (int(v) for v in rng.choice([1, 2, 3, 3, 5, 7], 2))
    sh, sw = (int(v) for v in rng.choice([1, 2], 2))
    dh, dw = (int(v) for v in rng.choice([1, 1, 2], 2))
    padding = int(rng.integers(0, 2))
    dm = int(rng.choice([1, 1, 2, 3])) if kind == "depthwise" else 1
    if kind == "1x1":
        kh = kw = sh = sw = dh = dw = 1
    if padding == 1:
        ih, iw = max(ih, (kh - 1) * dh + 1), max(iw, (kw - 1) * dw + 1)
    oc = ic * dm if kind == "depthwise" else int(rng.choice([1, 7, 8, 16, 17, 33, 64, 70]))
    if big:
        ic, oc, ih, iw = 520, 270, 15, 14
    if few:     # windows inside and across the edges, odd pixel counts, more than one chunk
        ic, oc = int(rng.choice([1, 2, 3, 4, 5, 15])), int(rng.choice([1, 3, 5, 8, 8, 16, 17]))
        kh = max(kh, 2)
        ih, iw = (int(v) for v in rng.integers(2 * max(kh, kw), 40, 2))
    if row:     # widths around whole 8-pixel tiles, any window height, row stride and dilation
        ic, oc = int(rng.choice([1, 3, 16, 17, 33])), int(rng.choice([1, 5, 8, 13, 16, 17, 31, 32]))
        kw, sw, dw, kh = 3, int(rng.choice([1, 2])), 1, int(rng.choice([1, 2, 3, 5]))
        ih, iw = int(rng.integers(kh * dh, 20)), int(rng.choice([3, 7, 8, 9, 17, 32]))
    x = rng.standard_normal((n, ih, iw, ic)).astype(F)
    w = (rng.standard_normal((1, kh, kw, oc) if kind == "depthwise" else (oc, kh, kw, ic)) * 0.3).astype(F)
    bias = rng.standard_normal(oc).astype(F) if rng.random() < 0.8 else None
    act = int(rng.choice([0, 1, 3]))
    ts = [tensor(0, x.shape, F), tensor(1, w.shape, F, data=w), tensor(2, (oc,), F, data=bias), tensor(3, (), F)]
    opts = {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h_factor": dh, "dilation_w_factor": dw,
            "fused_activation_function": act, "depth_multiplier": dm}
    inputs = [0, 1, 2] if bias is not None else [0, 1, -1]
    op = Op(0, "DEPTHWISE_CONV_2D" if kind == "depthwise" else "CONV_2D", 1, inputs, [3], opts)
    oh, pt = spatial_padding(op, ih, kh, sh, dh)
    ow, pl = spatial_padding(op, iw, kw, sw, dw)
    graph = Graph(ts, [op], [0], [3])
    rows = kind == "conv" and row_conv(graph)
    want = reference_conv(x, w, bias, (sh, sw), (dh, dw), (pt, pl), (oh, ow), act, dm if kind == "depthwise" else None,
                          rows)
    return graph, x, want, f"{kind} x{list(x.shape)} w{list(w.shape)} s{sh}{sw} d{dh}{dw} pad{padding} dm{dm}"


def case_fc(rng):
    rows, k, units = int(rng.choice([1, 2, 3, 5, 9])), int(rng.choice([1, 3, 8, 13, 64, 130])), \
        int(rng.choice([1, 8, 10, 16, 50, 65, 130]))
    x = rng.standard_normal((rows, k)).astype(F)
    w = (rng.standard_normal((units, k)) * 0.3).astype(F)
    bias = rng.standard_normal(units).astype(F) if rng.random() < 0.8 else None
    act = int(rng.choice([0, 1, 3]))
    ts = [tensor(0, x.shape, F), tensor(1, w.shape, F, data=w), tensor(2, (units,), F, data=bias), tensor(3, (), F)]
    op = Op(0, "FULLY_CONNECTED", 1, [0, 1, 2] if bias is not None else [0, 1, -1], [3],
            {"fused_activation_function": act})
    want = reference_conv(x[:, None, None, :], w[:, None, None, :], bias, (1, 1), (1, 1), (0, 0), (1, 1), act)
    return Graph(ts, [op], [0], [3]), x, want.reshape(rows, units), f"fc x{list(x.shape)} w{list(w.shape)}"


def case_hybrid(rng):
    n = 1 if rng.random() < 0.75 else 2
    ih, iw = (int(v) for v in rng.integers(1, 12, 2))
    ic = int(rng.choice([1, 3, 8, 17, 64]))
    kh, kw = (int(v) for v in rng.choice([1, 1, 3, 4], 2))
    sh, sw = (int(v) for v in rng.choice([1, 2], 2))
    padding = int(rng.integers(0, 2))
    if padding == 1:
        ih, iw = max(ih, kh), max(iw, kw)
    oc = int(rng.choice([1, 7, 16, 17, 64, 70]))
    x = rng.standard_normal((n, ih, iw, ic)).astype(F)
    w = rng.integers(-127, 128, size=(oc, kh, kw, ic)).astype(np.int8)
    per_channel = rng.random() < 0.5
    scale = rng.uniform(0.001, 0.01, oc) if per_channel else 0.004
    bias = rng.standard_normal(oc).astype(F)
    ts = [tensor(0, x.shape, F), tensor(1, w.shape, np.int8, scale, 0, w), tensor(2, (oc,), F, data=bias),
          tensor(3, (), F)]
    opts = {"padding": padding, "stride_h": sh, "stride_w": sw, "fused_activation_function": int(rng.choice([0, 1]))}
    op = Op(0, "CONV_2D", 1, [0, 1, 2], [3], opts)
    return Graph(ts, [op], [0], [3]), x, None, f"hybrid x{list(x.shape)} w{list(w.shape)} s{sh}{sw} pad{padding}"


def case_binary(rng):
    which = str(rng.choice(["ADD", "SUB", "MUL"]))
    shape = [int(v) for v in rng.integers(1, 7, int(rng.integers(1, 5)))]
    shape[-1] = int(rng.choice([1, 5, 16, 17, 40]))
    other = [d if rng.random() < 0.6 else 1 for d in shape]           # broadcasts on any axis, or a scalar
    if rng.random() < 0.2:
        other = [1]
    a, b = (rng.standard_normal(s).astype(F) for s in (shape, other))
    if rng.random() < 0.5:
        a, b = b, a
    a.reshape(-1)[::7] = np.nan if rng.random() < 0.2 else a.reshape(-1)[::7]
    act = int(rng.choice([0, 1, 3]))
    out = np.broadcast_shapes(a.shape, b.shape)
    ts = [tensor(0, a.shape, F), tensor(1, b.shape, F, data=b), tensor(2, out, F)]
    op = Op(0, which, 1, [0, 1], [2], {"fused_activation_function": act})
    v = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}[which](a, b).astype(F)
    lo, hi = ACT[act]
    want = np.where(v < lo, F(lo), np.where(v > hi, F(hi), v)).astype(F)
    return Graph(ts, [op], [0], [2]), a, want, f"{which} {list(a.shape)} {list(b.shape)} act{act}"


def case_activation(rng):
    which = str(rng.choice(["RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU"]))
    x = (rng.standard_normal(int(rng.choice([1, 7, 16, 33, 1000]))) * 4).astype(F)
    x[::5] = -0.0
    ts = [tensor(0, x.shape, F), tensor(1, x.shape, F)]
    op = Op(0, which, 1, [0], [1], {"alpha": 0.3} if which == "LEAKY_RELU" else {})
    if which == "LEAKY_RELU":
        want = np.where(x > 0, x, (x * F(0.3)).astype(F))
    else:
        lo, hi = {"RELU": (0.0, np.finfo(F).max), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[which]
        want = np.where(x < lo, F(lo), np.where(x > hi, F(hi), x))
    return Graph(ts, [op], [0], [1]), x, want.astype(F), f"{which} {list(x.shape)}"


EXACT = sys.argv[3] == "exact"
FUSED = not EXACT and sys.argv[4] != "scalar"


def main():
    seed, out_path = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(seed)
    failures, kernels, hybrid_out = [], set(), {}
    cases = [case_conv(rng, k) for k in ["conv", "1x1", "depthwise"] * 12 + ["depthwise_wide"] * 6 + ["1x1_big"]]
    cases += [case_conv(rng, "few") for _ in range(14)] + [case_conv(rng, "row") for _ in range(16)] + [case_fc(rng) for _ in range(12)]
    cases += [case_binary(rng) for _ in range(16)] + [case_activation(rng) for _ in range(8)]
    for g, x, want, desc in cases:
        got, ks = run(g, x)
        kernels.update(ks)
        if not np.array_equal(got, want, equal_nan=True) or not np.array_equal(np.signbit(got), np.signbit(want)):
            bad = np.argwhere(got != want)[:3]
            failures.append(f"{desc} ({ks}): {len(np.argwhere(got != want))} differ, e.g. {bad.tolist()} "
                            f"got {got[tuple(bad[0])]} want {want[tuple(bad[0])]}")
    for j in range(16):
        g, x, _, desc = case_hybrid(rng)
        got, ks = run(g, x)
        kernels.update(ks)
        hybrid_out[f"{j}"] = got
    np.savez(out_path, **hybrid_out)
    report(kernels, failures)


main()
'''


def run_check(forced: str, seed: int, out_path, mode: str = "exact") -> list:
    """Runs CHECK under EDGEML_ISA=forced (skips when this CPU lacks the path); returns the kernels that ran."""
    return run_on_path(forced, CHECK, seed, out_path, mode, forced, timeout=600)[1:]


@pytest.mark.parametrize("forced", PATHS)
def test_float_kernels_give_the_reference_bits_on_every_path(forced, tmp_path):
    kernels = run_check(forced, 7, tmp_path / f"{forced}.npz")
    simd = {"avx512vnni": "avx512", "avx512": "avx512", "avxvnni": "avx2", "avx2": "avx2"}.get(forced)
    expected = {"avx512vnni": ("conv2d_f32_avx512", "depthwise_f32_avx512", "conv2d_hybrid_vnni"),
                "avx512": ("conv2d_f32_avx512", "depthwise_f32_avx512", "conv2d_hybrid_avx2"),
                "avxvnni": ("conv2d_f32_avx2", "depthwise_f32_avx2", "conv2d_hybrid_avx2"),
                "avx2": ("conv2d_f32_avx2", "depthwise_f32_avx2", "conv2d_hybrid_avx2"),
                "scalar": ("conv2d_f32", "depthwise_f32", "fully_connected_f32", "conv2d_hybrid", "add_f32",
                           "sub_f32", "mul_f32", "unary_f32")}[forced]
    if simd:
        expected += tuple(f"{k}_f32_{simd}" for k in ("add", "sub", "mul", "clamp"))
    for name in expected:        # the path's own kernels really ran
        assert name in kernels, kernels
    if forced != "scalar":       # the hybrid conv: the portable kernel's bits (LiteRT's, test_hybrid_models.py)
        run_check("scalar", 7, tmp_path / "scalar.npz")
        ours, portable = np.load(tmp_path / f"{forced}.npz"), np.load(tmp_path / "scalar.npz")
        for key in portable.files:
            np.testing.assert_array_equal(ours[key], portable[key], err_msg=f"hybrid case {key}")


@pytest.mark.parametrize("forced", PATHS)
def test_fused_float_kernels_give_the_fused_formula_on_every_path(forced, tmp_path):
    """The default float mode: conv / FC / depthwise on the fused multiply-add kernels (where the CPU has FMA3),
    each sum the reference's order (the row conv: its own) with one rounding per multiply-add; the scalar path keeps
    the reference's bits."""
    from cython_ops.float_ops import cpu_has_fma
    kernels = run_check(forced, 11, tmp_path / f"{forced}.npz", mode="fused")
    simd = {"avx512vnni": "avx512", "avx512": "avx512", "avxvnni": "avx2", "avx2": "avx2"}.get(forced)
    if simd and cpu_has_fma():
        expected = {f"conv2d_f32_fma_{simd}", f"depthwise_f32_fma_{simd}"}
    else:
        expected = {f"conv2d_f32_{simd}", f"depthwise_f32_{simd}"} if simd else {"conv2d_f32", "depthwise_f32"}
    assert expected <= set(kernels), kernels
    assert not any("_fma_" in k for k in kernels) or simd, kernels


def test_scratch_formula_matches_the_kernel():
    """ops.float_kernels sizes the GEMM's scratch as em_fgemm_scratch_bytes does."""
    from cython_ops.float_ops import fgemm_scratch_bytes as c_bytes
    from edgeml.runtime.ops.float_kernels import fgemm_scratch_bytes as py_bytes
    for ic, taps, chunk, gather in [(1, 1, 1, 0), (3, 9, 24, 1), (17, 25, 48, 0), (640, 1, 1, 0), (5, 49, 72, 1)]:
        assert py_bytes(ic, taps, chunk, gather) == c_bytes(ic, taps, chunk, gather)
