"""The AVX2 path's integer Winograd F(2x2, 3x3) CONV_2D (conv2d_int8_avx2_winograd: 3x3, stride 1, dilation 1,
12 or more input channels) under each forced ISA path in subprocesses, against NumPy sums from the formulas (the
helpers of tests/path_cases.py): odd and even output sizes (partial 2x2 tiles), one-pixel images, SAME and
VALID padding, batch 2, channel counts that are not multiples of 4 / 8 / 16, the extremes of the int8 ranges
(the transforms' largest values), every requantization mode, rounding ties and splits over threads."""
import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from tests.path_cases import check_modes, check_threads, conv_layer, report


def case_3x3(rng, n, hw, ic, oc, padding, extreme=False, ties=False):
    ih, iw = hw
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(n, ih, iw, ic)).astype(np.int8)
    w = rng.integers(-127, 128, size=(oc, 3, 3, ic)).astype(np.int8)
    wscale = rng.uniform(0.0002, 0.02, oc)
    bias = rng.integers(-5000, 5000, oc).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 0.5))
    if extreme:   # every tap at the ends of the ranges, same and alternating signs: the largest |U|, |V| and sums
        x = np.where(rng.random(x.shape) < 0.5, -128, 127).astype(np.int8)
        x[0] = -128
        w = np.where(rng.random(w.shape) < 0.5, -127, 127).astype(np.int8)
        w[0] = 127
        w[-1] = np.where((np.arange(3)[:, None] + np.arange(3)[None, :]) % 2 == 0, 127, -127)[:, :, None]
        ys = float(rng.uniform(20.0, 200.0))
    if ties:      # effective scale 0.5 and small sums: half the outputs are rounding ties
        w = np.clip(w, -1, 1)
        wscale[:], xs, ys = 0.5, 1.0, 1.0
        bias = rng.integers(-3, 4, oc).astype(np.int32)
    g, acc = conv_layer("CONV_2D", x, w, bias, x_zp, y_zp, xs, ys, wscale, padding, (1, 1), (1, 1),
                        int(rng.choice([0, 1, 3])))
    return g, x, acc, f"3x3 x{list(x.shape)} oc{oc} pad{padding} extreme{extreme}"


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    cases = [case_3x3(rng, 1, (1, 1), 12, 8, 0), case_3x3(rng, 1, (2, 3), 13, 1, 0), case_3x3(rng, 2, (5, 4), 16, 7, 0),
             case_3x3(rng, 1, (7, 9), 21, 17, 0), case_3x3(rng, 1, (8, 8), 33, 16, 1),
             case_3x3(rng, 1, (11, 6), 64, 33, 0, ties=True), case_3x3(rng, 2, (3, 12), 12, 8, 1, ties=True),
             case_3x3(rng, 1, (9, 10), 19, 70, 0), case_3x3(rng, 1, (6, 5), 130, 9, 0),
             case_3x3(rng, 1, (5, 7), 64, 24, 0, extreme=True), case_3x3(rng, 1, (4, 4), 520, 8, 1, extreme=True),
             case_3x3(rng, 1, (3, 3), 12, 3, 0, extreme=True)]
    check_modes(cases, failures, kernels)
    # past THREAD_MIN_MACS: slices of tile rows
    check_threads([case_3x3(rng, 2, hw, ic, oc, 0) for hw, ic, oc in (((37, 35), 16, 40), ((20, 21), 64, 64))],
                  failures, kernels)
    report(kernels, failures)


main()
'''

EXPECTED = {"avx512vnni": "conv2d_int8_vnni", "avxvnni": "conv2d_int8_avxvnni", "avx512": "conv2d_int8_avx2_winograd",
            "avx2": "conv2d_int8_avx2_winograd", "scalar": "conv2d_int8", "neon": "conv2d_int8",
            "neon_dotprod": "conv2d_int8", "neon_i8mm": "conv2d_int8"}


@pytest.mark.parametrize("forced", PATHS)
def test_winograd_conv_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 7, timeout=600)
    assert kernels[1:] == [EXPECTED[forced]], kernels     # every case ran on the path's kernel
