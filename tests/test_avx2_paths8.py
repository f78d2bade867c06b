"""The small-K AVX2 GEMM of issues 15 / 18 (em_gemm_s16_avx2_small: every panel's sums of a 4-row group first, then
their output stage) under each forced ISA path in subprocesses, against NumPy sums from the formulas: the geometries
of MobileNet v1's stem and first 1x1s (K 27 / 32 / 64) with odd column counts (a partial panel), 9 and 16 panels
(two blocks), batch 1..3 with row counts that leave 1..3 single rows, int8 and uint8 (LiteRT's asymmetric weights)
arithmetic, multipliers that shift left, sums on rounding ties, every requantization mode, and two or three threads.
The helpers of tests/path_cases.py."""
import pytest

from test_avx2_paths2 import CONV_EXPECTED
from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from tests.path_cases import check_modes, check_threads, conv_layer, report


def case(rng, n, hw, ic, oc, k, stride, padding, w_zp=0, left=False, ties=False):
    """CONV_2D k x k over ic channels (K = k k ic); w_zp: uint8 weights' zero point; left: some multipliers above 1;
    ties: weights in -1..1, effective scales 0.5 and 0.25, so that many sums requantize to exact halves."""
    ih, iw = hw
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(n, ih, iw, ic)).astype(np.int8)
    w = rng.integers(-127, 128, size=(oc, k, k, ic)).astype(np.int8)
    wscale = np.exp(rng.uniform(np.log(1e-3), np.log(3e-2), 1 if w_zp else oc))
    bias = rng.integers(-3000, 3000, oc).astype(np.int32)
    xs = float(rng.uniform(0.01, 0.1))
    ys = float(xs * np.median(wscale) * (0.4 if left else rng.uniform(20, 400)))
    if ties:
        w = rng.integers(-1, 2, size=w.shape).astype(np.int8)
        wscale = np.where(np.arange(oc) % 2, 0.5, 0.25) if not w_zp else np.array([0.5])
        xs, ys = 1.0, 1.0
        bias = rng.integers(-40, 40, oc).astype(np.int32)
        x_zp = 0
    act = int(rng.choice([0, 1, 3]))
    g, acc = conv_layer("CONV_2D", x, w, bias, x_zp, y_zp, xs, ys, wscale, padding, (stride, stride), (1, 1), act,
                        1, w_zp)
    return g, x, acc, f"x{list(x.shape)} oc{oc} k{k} s{stride} pad{padding} w_zp{w_zp} left{left} ties{ties}"


rng = np.random.default_rng(int(sys.argv[1]))
failures, kernels = [], set()
cases = [case(rng, 1, (13, 12), 3, 32, 3, 2, 0),                # K 27: the 3x3 stride-2 stem, 4 panels
         case(rng, 3, (11, 9), 3, 37, 3, 2, 1),                 # K 27 VALID, batch 3, 5 panels (the last 5 columns)
         case(rng, 2, (12, 13), 3, 24, 3, 2, 0, w_zp=131),      # K 27 uint8
         case(rng, 1, (9, 7), 32, 64, 1, 1, 0),                 # K 32: the 1x1 112x112x32 -> 64, 63 rows (3 single)
         case(rng, 3, (5, 7), 32, 72, 1, 1, 0, left=True),      # K 32, 9 panels (two blocks), batch 3, left shifts
         case(rng, 2, (6, 5), 32, 61, 1, 1, 1, w_zp=119),       # K 32 uint8, odd N
         case(rng, 1, (7, 9), 64, 128, 1, 1, 0),                # K 64: the 1x1 56x56x64 -> 128, 16 panels
         case(rng, 3, (5, 6), 64, 83, 1, 1, 0, w_zp=128),       # K 64 uint8, odd N, batch 3 (30 rows: 2 single)
         case(rng, 2, (7, 5), 64, 40, 1, 1, 1, left=True),      # K 64, left shifts
         case(rng, 1, (10, 9), 32, 48, 1, 1, 0, ties=True),     # K 32 on ties
         case(rng, 2, (9, 10), 3, 21, 3, 2, 0, ties=True),      # K 27 on ties
         case(rng, 1, (8, 9), 64, 19, 1, 1, 0, w_zp=127, ties=True)]  # K 64 uint8 on ties
check_modes(cases, failures, kernels)
check_threads([case(rng, 2, (29, 31), 3, 32, 3, 2, 0), case(rng, 1, (23, 21), 32, 64, 1, 1, 0, w_zp=128)],
              failures, kernels)
report(kernels, failures)
'''


@pytest.mark.parametrize("forced", PATHS)
def test_small_k_stems_and_1x1s_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 8, timeout=600)
    portable = CONV_EXPECTED[forced] == "conv2d_int8"     # (its uint8 kernel is conv2d_int8_w16)
    assert kernels[1:] == [CONV_EXPECTED[forced]] + (["conv2d_int8_w16"] if portable else []), kernels
