"""Every int8 conv / depthwise / FC / ADD kernel path (EDGEML_ISA forces each one the CPU has) in every
requantization mode (em_requant.h 0-3) on random shapes -- odd channel counts, K not a multiple of 4, SAME and
VALID padding, stride 2, dilation, several pixels per depthwise vector -- against exact NumPy expectations
written from the formulas (not from the kernels).

The ISA path is fixed per process, so each path runs the check in a subprocess."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # scripts import tests.path_cases from here
PATHS = ["scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neon_dotprod", "neon_i8mm"]


def forced_path(name: str) -> str:
    """The path a process takes with EDGEML_ISA=name (a path the CPU lacks is not taken)."""
    done = subprocess.run([sys.executable, "-c", "from cython_ops.conv import isa; print(isa())"],
                          env=dict(os.environ, EDGEML_ISA=name), capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def run_on_path(forced: str, script: str, *args, timeout: int = 300) -> list:
    """Runs a check script in a subprocess with EDGEML_ISA=forced, started in the repository so that it can import
    tests.path_cases (skips the test when this CPU lacks that path); the script prints the kernels that ran on its
    first line and ends with "ok" or its failures.  Returns the names on the first line."""
    if forced_path(forced) != forced:
        pytest.skip(f"this CPU has no {forced} path")
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=dict(os.environ, EDGEML_ISA=forced),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "ok", "\n".join(lines[-20:])
    return lines[0].split()


CHECK = r'''
import sys
import numpy as np
from edgeml.ir import Graph, Op
from edgeml.runtime.ops.common import spatial_padding
from tests.path_cases import (binary_expect, check_modes, check_threads, compare, conv_acc, conv_layer, fc_layer,
                              report, requant, run, run_graph, tensor)
# test_avx2_paths2.py / test_avx2_paths3.py append their cases to this script up to main(): they use
# check_modes, conv_acc and spatial_padding from here (and Graph, Op, tensor, check_threads, np, sys)


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
    w = rng.integers(-127, 128, size=(1, kh, kw, oc) if kind == "depthwise" else (oc, kh, kw, ic)).astype(np.int8)
    wscale = rng.uniform(0.002, 0.02, oc)
    bias = rng.integers(-5000, 5000, oc).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 0.5))
    act = int(rng.choice([0, 1, 3]))
    if rng.random() < 0.3:   # effective scale 0.5 and small sums: half the products are rounding ties
        w = np.clip(w, -1, 1)
        wscale[:], xs, ys = 0.5, 1.0, 1.0
        bias = rng.integers(-3, 4, oc).astype(np.int32)
    g, acc = conv_layer("DEPTHWISE_CONV_2D" if kind == "depthwise" else "CONV_2D", x, w, bias, x_zp, y_zp, xs, ys,
                        wscale, padding, (sh, sw), (dh, dw), act)
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
    g, acc = fc_layer(x, w, bias, x_zp, y_zp, xs, ys, wscale, int(rng.choice([0, 1])))
    return g, x, acc, f"fc x{list(x.shape)} w{list(w.shape)}"


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
            compare(failures, f"{desc} mode {rq.mode}", got, requant(acc, rq, rq.mode))
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
            got = run_graph(g, (a, b), rounding, kernels)
            want = binary_expect(which, a, b, za, zb, zo, sa, sb, so, rounding)
            if not np.array_equal(got, want):
                failures.append(f"{which} {shape} rounding {rounding}: {int((got != want).sum())} differ")
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
            got = run_graph(g, (a, b), rounding, kernels)
            want = binary_expect(which, a, b, za, zb, zo, sa, sb, so, rounding)
            if not np.array_equal(got, want):
                failures.append(f"{which} {a.shape} x {b.shape} rounding {rounding}: "
                                f"{int((got != want).sum())} differ")
    report(kernels, failures)


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
