"""The one- and two-row int8 FULLY_CONNECTED of the AVX2 path (fully_connected_int8_avx2_gemv: int8 weight panels
sign-extended in the loop, 16- and 8-column tiles) under each forced ISA path in subprocesses, against NumPy sums
from the formulas (the helpers of tests/path_cases.py): depths not a multiple of 4, unit counts around the
8- and 16-column tiles, every requantization mode, rounding ties, weights with a zero point (which keep the int16
panels) and splits over threads."""
import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from tests.path_cases import check_modes, check_threads, fc_layer, report


def case_fc_rows(rng, rows, k, units, w_zp=0, ties=False):
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(rows, k)).astype(np.int8)
    w = rng.integers(-127, 128, size=(units, k)).astype(np.int8)
    w[:, 0] = rng.choice([-127, 127], units)     # the weight range's ends
    wscale = rng.uniform(0.0005, 0.02, 1 if w_zp else units)
    bias = rng.integers(-5000, 5000, units).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 2.0))
    if ties:     # effective scale 0.5 and small sums: half the outputs are rounding ties
        w = np.clip(w, -1, 1)
        wscale[:], xs, ys = 0.5, 1.0, 1.0
        bias = rng.integers(-3, 4, units).astype(np.int32)
    g, acc = fc_layer(x, w, bias, x_zp, y_zp, xs, ys, wscale, int(rng.choice([0, 1, 3])), w_zp)
    return g, x, acc, f"fc x{list(x.shape)} w{list(w.shape)} w_zp{w_zp}"


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    cases = [case_fc_rows(rng, rows, k, units, ties=(j % 4 == 3))
             for j, (rows, k, units) in enumerate([(1, 1, 1), (1, 3, 7), (2, 5, 8), (1, 13, 9), (2, 64, 10),
                                                   (1, 130, 16), (2, 130, 17), (1, 641, 24), (2, 96, 33),
                                                   (1, 250, 65), (2, 7, 1), (1, 1280, 101)])]
    cases += [case_fc_rows(rng, 1, 40, 20, w_zp=-3), case_fc_rows(rng, 3, 40, 20), case_fc_rows(rng, 5, 9, 11)]
    check_modes(cases, failures, kernels)
    # past THREAD_MIN_MACS: split by 16-column blocks
    check_threads([case_fc_rows(rng, rows, k, units) for rows, k, units in ((1, 2048, 300), (2, 700, 401))],
                  failures, kernels)
    report(kernels, failures)


main()
'''

# on the AVX2 paths weights with a zero point (and 3 or 5 rows) keep the int16 panels, one-row or not
EXPECTED = {"avx512vnni": ("fully_connected_int8_vnni",), "avxvnni": ("fully_connected_int8_avxvnni",),
            "avx512": ("fully_connected_int8_avx2_gemv", "fully_connected_int8_avx2"),
            "avx2": ("fully_connected_int8_avx2_gemv", "fully_connected_int8_avx2"),
            "scalar": ("fully_connected_int8", "fully_connected_int8_w16"),
            "neon": ("fully_connected_int8",), "neon_dotprod": ("fully_connected_int8",),
            "neon_i8mm": ("fully_connected_int8",)}


@pytest.mark.parametrize("forced", PATHS)
def test_few_row_fully_connected_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 5, timeout=600)
    for name in EXPECTED[forced]:
        assert name in kernels, f"{name} did not run under EDGEML_ISA={forced}: {kernels}"
