"""int8 ADD / SUB / MUL with two activations broadcasting against each other along a middle axis (em_elementwise.h
em_binary_row_input: the held row copied into a buffer so that runs are long, both inputs advancing) on every ISA
path EDGEML_ISA can force, against the NumPy expectations of test_elementwise_paths (LiteRT's reference formulas):
rows of 2 to 128 bytes (odd, not multiples of 16), more rows than the buffer holds, either input held, outer dims
that move the held row or keep it, batch > 1, rank 5; and tiny tensors (the per-call estimate set-up)."""
import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from tests.path_cases import ESTIMATE_MUL_SCALES, ESTIMATE_SCALES, check_broadcasts, report

BROADCASTS = [((1, 64, 50, 32), (1, 64, 1, 32)), ((9, 1, 24), (1, 11, 24)), ((1, 7, 5, 3), (1, 7, 1, 3)),
              ((2, 6, 33, 17), (2, 6, 1, 17)), ((1, 3, 130, 127), (1, 3, 1, 127)), ((1, 2, 300, 9), (1, 1, 1, 9)),
              ((1, 4, 90, 2), (1, 4, 1, 2)), ((2, 3, 1, 40, 5), (2, 3, 7, 1, 5)), ((1, 5, 1, 64), (1, 5, 70, 64)),
              ((3, 1, 129), (3, 4, 129)), ((1, 1, 16), (1, 1, 16)), ((1, 3), (2, 3)), ((1, 1, 1, 7), (1, 1, 1, 7))]

# scales the float estimate refuses (its margin too wide): the exact runs (and ADD's tables) take the staged rows too
REFUSED = [(0.05, 0.04, 3e-7), (0.03, 0.05, 2e-7)] * 4
REFUSED_MUL = [(0.5, 0.5, 1.0), (0.3, 0.2, 0.1), (0.9, 0.7, 0.3), (0.25, 0.25, 0.2)] * 2


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    check_broadcasts(rng, failures, kernels, BROADCASTS, ESTIMATE_SCALES, ESTIMATE_MUL_SCALES)
    check_broadcasts(rng, failures, kernels, BROADCASTS, REFUSED, REFUSED_MUL)
    report(kernels, failures)


main()
'''

EXPECTED = {"avx512vnni": ("add_int8_avx512", "mul_int8_avx512"), "avx512": ("add_int8_avx2", "mul_int8_avx2"),
            "avx2": ("add_int8_avx2", "mul_int8_avx2"), "avxvnni": ("add_int8_avx2", "mul_int8_avx2")}


@pytest.mark.parametrize("forced", PATHS)
def test_two_activation_broadcasts_are_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 11)
    for name in EXPECTED.get(forced, ("add_int8", "mul_int8")):
        assert name in kernels, kernels
