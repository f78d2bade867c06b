"""The AVX2 conv of issue 18's fifth round under each forced ISA path in subprocesses, against expectations written
from the formulas: the small-K GEMM (rows outer, a block of column panels per 4-row group, the window rows' offsets
from one table: em_gemm_s16_avx2_small) and the gathered windows of few-channel stems (conv mode 5: the padded int16
image's window rows copied one after another, K padded to 4 once: em_gather_windows_s16).  K 3 / 9 / 12 / 27 / 28 /
32 / 147, stride 1 and 2, odd channel counts, SAME and VALID, batch 2, row counts that leave single rows, column
counts that leave a partial panel or split the panels into blocks, multipliers that shift left, every
requantization mode, and two or three threads.  The helpers of test_kernel_paths.CHECK.
"""
import pytest

from test_avx2_paths2 import CONV_EXPECTED
from test_kernel_paths import CHECK, PATHS, run_on_path

CONV_CASES = r'''
from tests.path_cases import conv_case as case_stem

def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    cases = [case_stem(rng, 1, (6, 7), 3, 13, 1, 1, 1),          # K 3 (padded to 4), 2 panels, the last 5 columns
             case_stem(rng, 1, (9, 8), 1, 24, 3, 1, 0),          # K 9: 3x3 x 1 (window rows of 3, padded to 4)
             case_stem(rng, 2, (7, 9), 4, 19, 3, 2, 0),          # K 36 window rows of 12, batch 2, stride 2
             case_stem(rng, 1, (5, 11), 12, 40, 1, 1, 1),        # K 12, 55 rows: 13 tiles and 3 single rows
             case_stem(rng, 1, (13, 12), 3, 32, 3, 2, 0),        # K 27: the 3x3 stride-2 stem, SAME
             case_stem(rng, 2, (12, 13), 3, 17, 3, 2, 1, True),  # K 27 VALID, batch 2, left shifts
             case_stem(rng, 1, (9, 10), 28, 33, 1, 1, 1),        # K 28
             case_stem(rng, 1, (10, 9), 32, 16, 1, 1, 1),        # K 32: the MobileNet v2 1x1
             case_stem(rng, 2, (7, 6), 32, 64, 1, 1, 1, True),   # K 32, 8 panels, batch 2
             case_stem(rng, 1, (11, 9), 32, 72, 1, 1, 1),        # K 32, 9 panels: two blocks
             case_stem(rng, 1, (23, 21), 3, 33, 7, 2, 0),        # K 147: the 7x7 stride-2 stem (gathered), SAME
             case_stem(rng, 2, (17, 16), 3, 96, 7, 2, 1),        # K 147 VALID, 12 panels in blocks of 6, batch 2
             case_stem(rng, 1, (14, 15), 3, 21, 5, 1, 0, True),  # K 75: 5x5 x 3 stride 1 (gathered), left shifts
             case_stem(rng, 1, (15, 13), 5, 11, 5, 2, 1),        # K 125: window rows of 25 (gathered: 2 copies)
             case_stem(rng, 1, (16, 9), 3, 9, (7, 3), 1, 0),     # 7x3 x 3: window rows of 9, stride 1
             case_stem(rng, 1, (12, 12), 3, 8, 3, 1, 0)]         # K 27, one panel (not the small-K GEMM)
    check_modes(cases, failures, kernels)
    check_threads([case_stem(rng, 2, (37, 35), 3, 24, 7, 2, 0),          # gathered windows over 2-3 slices
                   case_stem(rng, 1, (64, 61), 3, 32, 3, 2, 0)], failures, kernels)
    print("kernels", " ".join(sorted(kernels)))
    print("\n".join(failures) if failures else "ok")


main()
'''

MODE_CHECK = r'''
import numpy as np
from edgeml.ir import Graph, Op
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.kernels import CONFIG
from tests.path_cases import tensor


def conv_mode(ic, k, oc=32):
    """How the conv kernel reads its GEMM rows (ints["direct"], em_conv.h) for a k x k stride-2 SAME conv."""
    x = np.zeros((1, 40, 41, ic), np.int8)
    w = np.ones((oc, k, k, ic), np.int8)
    ts = [tensor(0, x.shape, np.int8, 0.05, 0), tensor(1, w.shape, np.int8, np.full(oc, 0.01), 0, w, 0),
          tensor(2, (oc,), np.int32, np.full(oc, 5e-4), 0, np.zeros(oc, np.int32)), tensor(3, (), np.int8, 0.1, 0)]
    op = Op(0, "CONV_2D", 1, [0, 1, 2], [3], {"padding": 0, "stride_h": 2, "stride_w": 2, "dilation_h_factor": 1,
                                              "dilation_w_factor": 1, "fused_activation_function": 0})
    step = compile_graph(Graph(ts, [op], [0], [3]), {}).steps[0]
    return step.kernel, step.make(lambda key: 0)[1]["direct"]


print("kernels", CONFIG.conv2d_int8)
got = [conv_mode(3, 7), conv_mode(3, 5), conv_mode(3, 3), conv_mode(8, 7)]
want = [("conv2d_int8_avx2", 5), ("conv2d_int8_avx2", 5), ("conv2d_int8_avx2", 4), ("conv2d_int8_avx2", 4)]
print("ok" if got == want else f"modes {got}, want {want}")
'''


@pytest.mark.parametrize("forced", PATHS)
def test_small_k_and_gathered_stems_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK.rsplit("\nmain()", 1)[0] + CONV_CASES, 11, timeout=600)
    assert kernels[1:] == [CONV_EXPECTED[forced]], kernels


def test_few_channel_stems_gather_their_windows_on_avx2():
    """7x7 and 5x5 x 3 stems read gathered windows (mode 5: K padded once); 3x3 x 3 and 8-channel windows stay on
    the implicit GEMM (mode 4)."""
    assert run_on_path("avx2", MODE_CHECK) == ["kernels", "conv2d_int8_avx2"]
