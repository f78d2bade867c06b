"""int8 DEPTHWISE_CONV_2D on the AVX2 kernel (em_depthwise_simd.h em_dw_row_avx2 / em_dw_row_avx2_fma: two vectors of
a pattern per pass over the taps, then the one left; the float estimate multiplied then added, or fused on CPUs with
FMA3) against the portable kernel, byte for byte, and both against NumPy expectations from LiteRT's reference
formulas: channel counts 1, 3, 17, 33, 100; kernels 1x1, 2x2, 3x3, 4x4, 5x5, 10x8; stride 2; dilation 2; depth
multipliers 2 and 8; H or W of 1 (and both); SAME padding of even kernels and strides (more padding below / right
than above / left); batch 2 and 3; per-tensor and per-channel weight scales; input and output zero points at -128
and 127; 32-channel rows of 1 to 9 vectors (pairs and the one left); odd tap counts (a last group of one tap) and
even ones; strides 2 and 3 over pixels of whole 16-channel vectors (the int16 phase staging's pointer-step loop); the
four requantization modes.  Each path runs
in a subprocess (EDGEML_ISA) and writes its outputs for the comparison."""
import numpy as np
import pytest

from test_kernel_paths import forced_path, run_on_path

CHECK = r'''
import sys
import numpy as np
from tests.path_cases import compare, depthwise_layer, report, requant, run

SHAPES = [  # n, ih, iw, ic, dm, kh, kw, stride, dilation, padding (0 SAME, 1 VALID)
    (1, 9, 7, 1, 1, 3, 3, (1, 1), (1, 1), 0), (1, 8, 9, 3, 1, 3, 3, (2, 2), (1, 1), 0),
    (1, 11, 10, 17, 1, 5, 5, (1, 1), (1, 1), 0), (2, 9, 12, 33, 1, 3, 3, (2, 2), (1, 1), 0),
    (1, 7, 9, 100, 1, 3, 3, (1, 1), (2, 2), 0), (1, 12, 11, 17, 1, 1, 1, (1, 1), (1, 1), 1),
    (1, 13, 12, 3, 1, 10, 8, (1, 1), (1, 1), 0), (1, 14, 10, 33, 1, 10, 8, (2, 2), (1, 1), 0),
    (1, 10, 9, 3, 2, 3, 3, (1, 1), (1, 1), 0), (1, 9, 10, 1, 8, 3, 3, (2, 2), (1, 1), 0),
    (3, 8, 8, 17, 2, 5, 5, (1, 2), (2, 1), 0), (1, 1, 13, 33, 1, 3, 3, (1, 1), (1, 1), 0),
    (1, 15, 1, 17, 1, 3, 3, (2, 1), (1, 1), 0), (1, 1, 1, 100, 1, 3, 3, (1, 1), (1, 1), 0),
    (2, 6, 8, 100, 1, 2, 2, (2, 2), (1, 1), 0), (1, 10, 10, 64, 1, 4, 4, (1, 1), (1, 1), 0),
    # a 32-channel row: one pattern of OW vectors, OW = 1 .. 9 (pairs, and one left for odd OW)
    (1, 5, 1, 32, 1, 3, 3, (1, 1), (1, 1), 0), (1, 5, 2, 32, 1, 3, 3, (1, 1), (1, 1), 0),
    (1, 5, 3, 32, 1, 3, 3, (1, 1), (1, 1), 0), (1, 5, 5, 32, 1, 3, 3, (1, 1), (1, 1), 0),
    (1, 5, 6, 32, 1, 3, 3, (1, 1), (1, 1), 0), (1, 5, 7, 32, 1, 3, 3, (1, 1), (1, 1), 0),
    (1, 5, 9, 32, 1, 3, 3, (1, 1), (1, 1), 0), (1, 25, 5, 64, 1, 3, 3, (1, 1), (1, 1), 0),
    # int16 phase staging of pixels of whole 16-channel vectors: three phases, SAME padding left of a phase
    # boundary, a 5x5 window, an even tap count with dilation 2
    (1, 8, 17, 16, 1, 3, 3, (1, 3), (1, 1), 0), (2, 9, 14, 48, 1, 5, 5, (2, 2), (1, 1), 1),
    (1, 7, 19, 32, 1, 2, 4, (2, 3), (1, 2), 0)]


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels, outputs = [], set(), {}
    for k, (n, ih, iw, ic, dm, kh, kw, stride, dil, padding) in enumerate(SHAPES):
        oc = ic * dm
        x_zp, y_zp = [(-128, 127), (127, -128), (-128, -128), (127, 127)][k % 4]
        xs, ys = float(rng.uniform(0.005, 0.1)), float(rng.uniform(0.01, 0.3))
        wscale = rng.uniform(0.001, 0.05, oc) if k % 2 else np.full(1, rng.uniform(0.001, 0.05))
        act = int(rng.choice([0, 1, 3]))
        g, x, acc, desc = depthwise_layer(rng, n, ih, iw, ic, dm, kh, kw, stride, dil, padding, act, x_zp, y_zp,
                                          xs, ys, wscale)
        for mode in (0, 1, 2, 3):
            got, rqs, names = run(g, x, 1 if mode == 1 else 0, mode)
            kernels.update(names)
            compare(failures, f"{desc} zp {x_zp} {y_zp} mode {rqs[0].mode}", got, requant(acc, rqs[0], rqs[0].mode))
            outputs[f"{k}_{mode}"] = got
    np.savez(sys.argv[2], **outputs)
    report(kernels, failures)


main()
'''


def test_depthwise_avx2_matches_the_portable_kernel_on_awkward_geometries(tmp_path):
    if forced_path("avx2") != "avx2":
        pytest.skip("this CPU has no avx2 path")
    got = {}
    for forced, kernel in (("avx2", "depthwise_int8_avx2"), ("scalar", "depthwise_int8")):
        kernels = run_on_path(forced, CHECK, 11, tmp_path / f"{forced}.npz")
        assert kernel in kernels, kernels
        got[forced] = np.load(tmp_path / f"{forced}.npz")
    assert sorted(got["avx2"].files) == sorted(got["scalar"].files)
    for key in got["scalar"].files:
        assert np.array_equal(got["avx2"][key], got["scalar"][key]), key
