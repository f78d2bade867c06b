"""The block-sparse int8 CONV_2D / FULLY_CONNECTED kernels (em_sparse.h) under each forced ISA path in
subprocesses, against NumPy sums from the formulas (the helpers of tests/path_cases.py): random 16x4 block patterns
at several densities, all-zero layers, rows (output channels) and input channels, fully dense weights, odd channel
counts, stride 2, dilation, padding, per-channel scales, batch 2, threads; and the same plans with sparse="off"."""

import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from tests.path_cases import check_threads, compare, conv_layer, fc_layer, report, requant, run


def prune_blocks(rng, w2, density, zero_rows=0, zero_cols=0):
    """w2 [N][K] with each 16x4 block kept with probability `density`, some rows / K columns zeroed."""
    n, k = w2.shape
    keep = rng.random((-(-n // 16), -(-k // 4))) < density
    mask = np.repeat(np.repeat(keep, 16, 0), 4, 1)[:n, :k]
    w2 = np.where(mask, w2, 0).astype(np.int8)
    if zero_rows:
        w2[rng.choice(n, min(zero_rows, n), replace=False)] = 0
    if zero_cols:
        w2[:, rng.choice(k, min(zero_cols, k), replace=False)] = 0
    return w2


def case_sparse_conv(rng, oc, ic, k, stride, dil, padding, density, n=1, hw=(9, 11), zero_rows=0, zero_cols=0,
                     out_scale=None):
    kh, kw = k
    ih, iw = hw
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(n, ih, iw, ic)).astype(np.int8)
    w = rng.integers(-127, 128, size=(oc, kh * kw * ic)).astype(np.int8)
    w = prune_blocks(rng, w, density, zero_rows, zero_cols).reshape(oc, kh, kw, ic)
    wscale = rng.uniform(0.002, 0.02, oc)
    bias = rng.integers(-5000, 5000, oc).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), out_scale or float(rng.uniform(0.05, 0.5))
    g, acc = conv_layer("CONV_2D", x, w, bias, x_zp, y_zp, xs, ys, wscale, padding, stride, dil,
                        int(rng.choice([0, 1, 3])))
    return g, x, acc, f"conv x{list(x.shape)} w{list(w.shape)} s{stride} d{dil} pad{padding} density {density}"


def case_sparse_fc(rng, rows, k, units, density, zero_rows=0, zero_cols=0):
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(rows, k)).astype(np.int8)
    w = prune_blocks(rng, rng.integers(-127, 128, size=(units, k)).astype(np.int8), density, zero_rows, zero_cols)
    wscale = rng.uniform(0.0005, 0.002, units)
    bias = rng.integers(-5000, 5000, units).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.5, 2.0))
    g, acc = fc_layer(x, w, bias, x_zp, y_zp, xs, ys, wscale, int(rng.choice([0, 1])))
    return g, x, acc, f"fc x{list(x.shape)} w{list(w.shape)} density {density}"


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    cases = [
        case_sparse_conv(rng, 32, 16, (1, 1), (1, 1), (1, 1), 0, 0.3),
        case_sparse_conv(rng, 17, 19, (1, 1), (1, 1), (1, 1), 0, 0.5, n=2),             # odd channels, K % 4
        case_sparse_conv(rng, 40, 8, (3, 3), (1, 1), (1, 1), 1, 0.25),
        case_sparse_conv(rng, 33, 5, (3, 3), (2, 2), (1, 1), 1, 0.4, hw=(13, 10)),      # stride 2, padding
        case_sparse_conv(rng, 16, 3, (3, 3), (2, 1), (2, 1), 0, 0.6, hw=(12, 9)),       # dilation
        case_sparse_conv(rng, 64, 32, (1, 1), (2, 2), (1, 1), 1, 0.1),                  # 1x1 stride 2: im2col
        case_sparse_conv(rng, 24, 16, (3, 3), (1, 1), (1, 1), 1, 0.0),                  # every weight zero
        case_sparse_conv(rng, 24, 12, (3, 3), (1, 1), (1, 1), 1, 1.0),                  # fully dense
        case_sparse_conv(rng, 48, 16, (3, 3), (1, 1), (1, 1), 1, 0.5, zero_rows=20, zero_cols=40),
        case_sparse_conv(rng, 7, 1, (5, 5), (1, 1), (1, 1), 0, 0.5, hw=(8, 8)),         # one input channel
        case_sparse_conv(rng, 80, 24, (1, 1), (1, 1), (1, 1), 0, 0.2, hw=(23, 21)),     # rows past one chunk
        # 16 output channels: 4-row tiles stored as one 64-byte block (VNNI); output rows of 13 = 8 + 4 + 1
        case_sparse_conv(rng, 16, 16, (3, 3), (1, 1), (1, 1), 0, 0.3, hw=(10, 13)),
        case_sparse_conv(rng, 16, 8, (1, 1), (2, 2), (1, 1), 0, 0.5, hw=(17, 15)),      # 1x1 stride 2, 16 channels
        case_sparse_conv(rng, 16, 12, (1, 1), (1, 1), (1, 1), 0, 0.4, hw=(6, 7)),      # 1x1 rows, 16 channels
        case_sparse_conv(rng, 32, 8, (3, 3), (1, 1), (1, 1), 0, 0.1, out_scale=2e-5),   # multipliers > 1 (left shift)
        case_sparse_fc(rng, 1, 256, 100, 0.25),
        case_sparse_fc(rng, 5, 130, 65, 0.5, zero_rows=10, zero_cols=17),
        case_sparse_fc(rng, 9, 13, 8, 0.7),
        case_sparse_fc(rng, 3, 64, 16, 0.0),
        case_sparse_fc(rng, 2, 64, 33, 1.0),
    ]
    for g, x, acc, desc in cases:
        for mode in (0, 1, 2, 3):
            rounding = 1 if mode == 1 else 0
            got, rqs, names = run(g, x, rounding, mode, sparse="on")
            kernels.update(names)
            compare(failures, f"{desc} mode {rqs[0].mode}", got, requant(acc, rqs[0], rqs[0].mode))
            dense, _, dense_names = run(g, x, rounding, mode, sparse="off")
            if any("sparse" in k for k in dense_names) or not np.array_equal(got, dense):
                failures.append(f"{desc} mode {mode}: sparse off differs or still sparse ({dense_names})")
    big = [case_sparse_conv(rng, 40, 16, (3, 3), (1, 1), (1, 1), 1, 0.3, n=2, hw=(37, 35)),
           case_sparse_conv(rng, 64, 64, (1, 1), (1, 1), (1, 1), 0, 0.2, hw=(40, 40)),
           case_sparse_conv(rng, 64, 32, (1, 1), (2, 2), (1, 1), 0, 0.2, hw=(61, 57))]     # 1x1 stride 2
    check_threads(big, failures, kernels, sparse="on")     # past the threading thresholds
    report(kernels, failures)


main()
'''

EXPECTED = {"avx512vnni": "conv2d_int8_sparse_vnni", "avxvnni": "conv2d_int8_sparse_avx2",
            "avx512": "conv2d_int8_sparse_avx2", "avx2": "conv2d_int8_sparse_avx2", "scalar": "conv2d_int8_sparse",
            "neon": "conv2d_int8_sparse"}


@pytest.mark.parametrize("forced", PATHS)
def test_sparse_kernels_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 5, timeout=600)
    assert kernels[1:] == [EXPECTED[forced]], f"under EDGEML_ISA={forced}: {kernels}"
