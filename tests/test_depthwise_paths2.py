"""int8 DEPTHWISE_CONV_2D's float-estimate requantization (em_depthwise_simd.h EM_DW_NEAR_TIE: the fixed-point
MultiplyByQuantizedMultiplier as floor(a f + zp +- d + 1/2) in float, the exact integer arithmetic for vectors
holding a lane near a tie) on every ISA path EDGEML_ISA can force, against NumPy expectations written from LiteRT's
reference formulas (test_kernel_paths.py's mbqm_double / mbqm_single): per-channel multipliers and shifts set
directly -- M = 2^30 and 2^31 - 1, right shifts 0 .. 31 mixed across channels, a left shift (the exact path) --
with biases that put every channel's sums on a sweep of consecutive integers through a tie of the final rounding
(and of the first), sums near +-2^24, both rounding modes, each fused activation; and random layers of awkward
geometry (odd channel counts, depth multiplier 8 on one input channel, stride 2, dilation, 5x5 and 10x4 kernels,
batch 2) with the scales of real models.  As in test_kernel_paths.py each path runs in a subprocess."""
import pytest

from test_kernel_paths import run_on_path

CHECK = r'''
import dataclasses
import sys
import numpy as np
from tests.path_cases import compare, compile_capturing, depthwise_layer, layer_quantization, report, requant


def with_multipliers(mult, shift):
    """A ColumnRequant edit setting every channel's multiplier and shift."""
    return lambda rq: dataclasses.replace(rq, mult=np.asarray(mult, np.int32), shift=np.asarray(shift, np.int32))


def run_layer(g, x, rounding, mult=None, shift=None):
    """Output, the ColumnRequant (its multipliers and shifts replaced when given), the kernel, the estimate flag."""
    plan, captured = compile_capturing(g, rounding, 1, None if mult is None else with_multipliers(mult, shift))
    plan.view(g.inputs[0])[...] = x
    plan.engine.invoke()
    step = plan.steps[0]
    estimate = step.make(lambda t: 0)[1].get("estimate", 0)
    return plan.view(g.outputs[0]).copy(), captured[0], step.kernel, estimate


def check(failures, desc, got, acc, rq):
    compare(failures, f"{desc} mode {rq.mode}", got, requant(acc, rq, rq.mode))


def tie_biases(rng, mult, shift, wc, x_zp, centre):
    """Per channel: a bias putting the middle of the channel's sweep of sums (bias + wc (x - x_zp), x over all 256
    values) on the tie V = centre (+ a random integer), where V = a M 2^(shift - 31) is reachable."""
    bias = np.zeros(mult.size, np.int64)
    for c in range(mult.size):
        h = centre + int(rng.integers(-3, 4))
        a_tie = h * 2.0 ** (31 - int(shift[c])) / max(int(mult[c]), 1)
        if abs(a_tie) > 2 ** 30:      # this channel's ties lie beyond int32 sums: small random sums instead
            a_tie = float(rng.integers(-1000, 1000))
        bias[c] = int(round(a_tie)) - int(wc[c]) * (-0.5 - x_zp)
    return np.clip(bias, -2 ** 31 + 70000, 2 ** 31 - 70000).astype(np.int32)


def check_ties(rng, failures, kernels, estimates):
    """Every channel's sums sweep 256 consecutive values (step |wc|) through a tie; multipliers set directly."""
    for case in range(16):
        ic = [19, 40, 3, 64, 1, 72, 33, 16][case % 8]
        dm = 8 if ic == 1 else 1
        oc = ic * dm
        mult = rng.integers(2 ** 30, 2 ** 31, oc)
        mult[rng.random(oc) < 0.3] = 2 ** 30
        mult[rng.random(oc) < 0.1] = 2 ** 31 - 1
        shift = -rng.integers(0, 32, oc)
        if case % 4 == 1:
            shift = -rng.integers(0, 3, oc)           # e = 0 .. 2: the second rounding's widest steps
        if case % 4 == 2:
            shift = -rng.integers(5, 12, oc)          # typical depthwise layers
        if case == 15:
            shift[0] = 1                              # a left shift: the exact arithmetic only
        wc = rng.choice([1, -1, 1, 2, -3], oc)
        x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
        # 16 x 16 pixels: each channel's centre tap sees all 256 values once, in its own order
        x = np.stack([rng.permutation(256) - 128 for _ in range(ic)], axis=1).reshape(1, 16, 16, ic).astype(np.int8)
        k = int(rng.choice([1, 3]))
        w = np.zeros((1, k, k, oc), np.int8)
        w[0, k // 2, k // 2] = wc
        centre = float(rng.choice([0.5, 1.5, -0.5, -2.5, 40.5, -60.5]))
        bias = tie_biases(rng, mult, shift, wc, x_zp, centre)
        if case % 5 == 4:         # sums near +-2^24 (multipliers that bring them back to small outputs)
            shift = np.full(oc, -23)
            mult[:] = 2 ** 30
            bias = (np.where(rng.random(oc) < 0.5, 1, -1) * (2 ** 24 + rng.integers(-300, 300, oc))).astype(np.int32)
        for rounding in (0, 1):
            act = int(rng.choice([0, 1, 3]))
            g, xx, acc, desc = depthwise_layer(rng, 1, 16, 16, ic, dm, k, k, (1, 1), (1, 1), 0, act, x_zp, y_zp,
                                               1.0, 1.0, np.full(oc, 0.01), w=w, bias=bias, x=x)
            got, rq, kernel, est = run_layer(g, xx, rounding, mult, shift)
            kernels.add(kernel)
            estimates.append(est)
            if case == 15 and est:
                failures.append(f"tie case {case}: a left shift took the float estimate")
            check(failures, f"tie case {case} {desc}", got, acc, rq)


def check_layers(rng, failures, kernels, estimates):
    """Random layers of awkward geometry with the scales of real models (QuantizeMultiplier)."""
    shapes = [  # n, ih, iw, ic, dm, kh, kw, stride, dilation, padding
        (1, 49, 10, 1, 8, 10, 4, (2, 2), (1, 1), 0), (1, 25, 5, 8, 1, 3, 3, (1, 1), (1, 1), 0),
        (1, 17, 13, 19, 1, 3, 3, (2, 2), (1, 1), 0), (2, 9, 11, 40, 1, 5, 5, (1, 1), (1, 1), 0),
        (1, 15, 15, 72, 1, 5, 5, (2, 2), (1, 1), 0), (1, 12, 12, 33, 1, 3, 3, (1, 1), (2, 2), 0),
        (1, 10, 10, 3, 2, 3, 3, (1, 2), (1, 1), 1), (1, 7, 7, 144, 1, 3, 3, (1, 1), (1, 1), 0),
        (1, 6, 6, 1001, 1, 3, 3, (1, 1), (1, 1), 0), (1, 14, 14, 96, 1, 3, 3, (2, 2), (1, 1), 1),
        (2, 8, 9, 5, 3, 3, 2, (2, 1), (1, 2), 0), (1, 20, 20, 16, 1, 7, 7, (1, 1), (1, 1), 0),
        # stride 2 on 8- and 16-channel rows (em_dw_stage_s2_small): odd and even widths, both paddings, dilation
        (1, 13, 23, 16, 1, 3, 3, (2, 2), (1, 1), 0), (1, 12, 22, 16, 1, 3, 3, (2, 2), (1, 1), 0),
        (2, 9, 17, 8, 1, 3, 3, (2, 2), (1, 1), 0), (1, 10, 30, 8, 1, 5, 5, (1, 2), (1, 1), 0),
        (1, 11, 11, 16, 1, 3, 3, (2, 2), (1, 1), 1), (1, 9, 2, 8, 1, 3, 3, (2, 2), (1, 1), 0),
        (1, 15, 19, 8, 1, 3, 3, (2, 2), (2, 2), 0), (1, 6, 7, 16, 1, 2, 2, (2, 2), (1, 1), 1)]
    for n, ih, iw, ic, dm, kh, kw, stride, dil, padding in shapes:
        x_zp, y_zp, xs, ys, wscale = layer_quantization(rng, ic * dm)
        for rounding in (0, 1):
            act = int(rng.choice([0, 1, 3]))
            g, x, acc, desc = depthwise_layer(rng, n, ih, iw, ic, dm, kh, kw, stride, dil, padding, act, x_zp, y_zp,
                                              xs, ys, wscale)
            got, rq, kernel, est = run_layer(g, x, rounding)
            kernels.add(kernel)
            estimates.append(est)
            check(failures, desc, got, acc, rq)


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels, estimates = [], set(), []
    check_ties(rng, failures, kernels, estimates)
    check_layers(rng, failures, kernels, estimates)
    if any(k.startswith("depthwise_int8_") for k in kernels) and sum(estimates) < len(estimates) // 2:
        failures.append(f"the float estimate ran in only {sum(estimates)} of {len(estimates)} layers")
    report(kernels, failures)


main()
'''

KERNELS = {"avx512vnni": "depthwise_int8_vnni", "avxvnni": "depthwise_int8_avxvnni", "avx2": "depthwise_int8_avx2",
           "scalar": "depthwise_int8"}


@pytest.mark.parametrize("forced", list(KERNELS))
def test_depthwise_float_estimate_is_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 7)
    assert KERNELS[forced] in kernels, kernels
