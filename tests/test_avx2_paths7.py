"""The 256-bit int8 DEPTHWISE_CONV_2D requantization of issue 18's seventh round (em_depthwise_simd.h
em_dw_estimate32: the float estimate's distance to the nearest integer compared once per step as the largest of
four; a step with a lane near a tie recomputed out of line and requantized by the exact arithmetic,
em_dw_avx2_step_exact / em_dw_requant32_ties) under each forced ISA path in subprocesses, against NumPy
expectations from LiteRT's reference formulas (tests/path_cases.py): tie-heavy layers whose near-tie steps fall on
the first and the second vector of the AVX2 kernel's two-vector loop and on its last single vector, pattern
periods of 1, 3 and 5 vectors, channel counts that take one pixel at a time, depth multiplier 2, stride 2,
dilation, batch 2, 1-3 threads, both rounding modes; and every layer again with the MXCSR in each directed rounding
mode (fesetround: the kernels' float estimate assumes round to nearest and falls back to the exact arithmetic)."""
import pytest
from test_depthwise_paths2 import KERNELS
from test_kernel_paths import run_on_path

CHECK = r'''
import ctypes
import sys
import numpy as np
from tests.path_cases import compare, compile_capturing, depthwise_layer, report, requant

LIBM = ctypes.CDLL("libm.so.6")
# x86 <fenv.h>: FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO (fesetround sets the MXCSR too)
ROUNDINGS = {"nearest": 0x000, "downward": 0x400, "upward": 0x800, "toward zero": 0xC00}


def tie_layer(rng, n, hw, ic, dm, k, stride, dil):
    """A layer with M = 1/2, 1/4 or 1/8 per channel whose sums hold a tie of the final rounding where an input off the
    zero point meets an odd weight: sparse, so that some 32-lane steps hold no tie (the estimate) and some do (the
    exact step)."""
    oc = ic * dm
    x_zp, y_zp = int(rng.integers(-100, 100)), int(rng.integers(-128, 128))
    shape = (n, hw[0], hw[1], ic)
    off = np.where(rng.random(shape) < 0.02 / (k * k), rng.choice([-1, 1, 2], shape), 0)
    x = (x_zp + off).astype(np.int8)
    w = rng.integers(-2, 3, size=(1, k, k, oc)).astype(np.int8)
    bias = 8 * rng.integers(-20, 20, oc).astype(np.int32)
    return depthwise_layer(rng, n, hw[0], hw[1], ic, dm, k, k, stride, dil, 0, int(rng.choice([0, 1, 3])), x_zp,
                           y_zp, 1.0, 1.0, rng.choice([0.5, 0.25, 0.125], oc), w=w, bias=bias, x=x)


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels, estimates = [], set(), []
    shapes = [  # n, (ih, iw), ic, dm, k, stride, dilation: row values OW x OC
        (1, (9, 12), 32, 1, 3, (1, 1), (1, 1)),      # 12 vectors a row: the two-vector loop only
        (1, (9, 13), 32, 1, 3, (1, 1), (1, 1)),      # 13: and its last single vector
        (2, (8, 11), 24, 1, 3, (1, 1), (1, 1)),      # a pattern of 3 vectors
        (1, (10, 17), 40, 1, 3, (2, 2), (1, 1)),     # 5 vectors, stride 2
        (1, (11, 9), 37, 1, 3, (1, 1), (2, 2)),      # one pixel at a time, dilation 2
        (1, (9, 10), 16, 2, 5, (1, 1), (1, 1)),      # depth multiplier 2, 25 taps
        (2, (7, 21), 64, 1, 3, (2, 1), (1, 1)),
        (1, (6, 6), 160, 1, 3, (1, 1), (1, 1))]
    for n, hw, ic, dm, k, stride, dil in shapes:
        g, x, acc, desc = tie_layer(rng, n, hw, ic, dm, k, stride, dil)
        for rounding in (0, 1):
            for threads in (1, 2, 3):
                plan, captured = compile_capturing(g, rounding, threads)
                rq = captured[0]
                want = requant(acc, rq, rq.mode)
                step = plan.steps[0]
                kernels.add(step.kernel)
                estimates.append(step.make(lambda t: 0)[1].get("estimate", 0))
                plan.view(g.inputs[0])[...] = x
                for name, mode in ROUNDINGS.items():
                    if threads > 1 and name != "nearest":
                        continue
                    plan.view(g.outputs[0])[...] = 0
                    LIBM.fesetround(mode)
                    try:
                        plan.engine.invoke()
                    finally:
                        LIBM.fesetround(0)
                    compare(failures, f"{desc} rounding {rounding} threads {threads} mxcsr {name}",
                            plan.view(g.outputs[0]), want)
    if any(k.startswith("depthwise_int8_") for k in kernels) and sum(estimates) < len(estimates) // 2:
        failures.append(f"the float estimate ran in only {sum(estimates)} of {len(estimates)} plans")
    report(kernels, failures)


main()
'''


@pytest.mark.parametrize("forced", list(KERNELS))
def test_depthwise_estimate_ties_and_rounding_modes_are_exact(forced):
    kernels = run_on_path(forced, CHECK, 18)
    assert KERNELS[forced] in kernels, kernels
