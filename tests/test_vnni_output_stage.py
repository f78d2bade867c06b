"""The double-rounding output stage of the int8 GEMMs (em_gemm_vnni.h's em_vnni_short_store16, taken per column
block of a multi-tile panel when em_vnni_short_consts finds every sum of the block inside (-2^30, 2^30), no lane
shifting left and right shifts of at most 21) against TFLite's MultiplyByQuantizedMultiplier, under each forced ISA
path in subprocesses: rounding ties of negative sums at every right shift 0-24 (blocks mixing shifts the stage takes
and shifts it leaves), sums at the edge of the bound on both sides and of both signs (the stage's 64-bit and 32-bit
ranges), output zero points at -128 and 127 with each fused activation, multipliers above one in one lane, dead
channels (zero weights, tiny scales, extreme biases) beside live ones, and every
panel shape (N = 8 packed two rows per vector, 16, 24, 32, 80; GEMVs); and FULLY_CONNECTED's rescaling in double
(em_round_scale_x8 / _x4) on exact ties of both signs and past the +-1e9 clamp."""
import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from tests.path_cases import compare, conv_layer, fc_layer, report, requant, run

LIMIT = 2 ** 30


def ties_case(rng, oc, hw, k, shifts, y_zp, act):
    """Weights in {-1, 0, 1}, unit input and output scales and weight scale 2^-(e + 1) for channel c's right shift e
    (multiplier 2^30): many sums land exactly halfway, of both signs."""
    x_zp = int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(1, hw[0], hw[1], 4)).astype(np.int8)
    w = rng.integers(-1, 2, size=(oc, k, k, 4)).astype(np.int8)
    e = np.array([shifts[c % len(shifts)] for c in range(oc)])
    bias = rng.integers(-2 ** (e + 1), 2 ** (e + 1) + 1).astype(np.int32)
    g, acc = conv_layer("CONV_2D", x, w, bias, x_zp, y_zp, 1.0, 1.0, 2.0 ** -(e + 1), 0, (1, 1), (1, 1), act)
    return g, x, acc, f"ties oc{oc} k{k} shifts {shifts[:3]}.. y_zp{y_zp} act{act}"


def edge_case(rng, oc, over, y_zp, act):
    """A 1x1 conv over 16 channels whose folded bias puts |bias| + 255 sum |w| at 2^30 - 1 (over: 2^30, the first
    value the stage refuses) for every column, and inputs of -128 and 127 that reach both ends of each column's
    range: sums up to +-(2^30 - 1), right shift 21 (scales near 2^-22: outputs crossing [-128, 127])."""
    x_zp = int(rng.integers(-128, 128))
    ic = 16
    x = np.where(rng.random((1, 5, 6, ic)) < 0.5, -128, 127).astype(np.int8)
    x[0, 0, 0] = 127
    x[0, 0, 1] = -128
    sign = np.where(np.arange(oc) % 2 == 0, 1, -1)
    w = (sign[:, None] * rng.integers(60, 128, size=(oc, ic))).astype(np.int8)
    w[1::4, ::3] *= -1                                   # some columns of mixed signs
    span = 255 * np.abs(w.astype(np.int64)).sum(axis=1)
    folded = sign * (LIMIT - 1 + int(over) - span)                  # the packed bias: bias - (x_zp + 128) sum w
    bias = (folded + (x_zp + 128) * w.astype(np.int64).sum(axis=1)).astype(np.int32)
    ws = 2.0 ** -21 * rng.uniform(0.51, 0.99, oc)                      # real = ws: right shift 21
    g, acc = conv_layer("CONV_2D", x.reshape(1, 5, 6, ic), w.reshape(oc, 1, 1, ic), bias, x_zp, y_zp, 1.0, 1.0, ws,
                        0, (1, 1), (1, 1), act)
    return g, x, acc, f"edge oc{oc} over{over} y_zp{y_zp} act{act}"


def dead_case(rng, oc, act):
    """Channels with all-zero weights beside live ones in the same column blocks, as pruned and small MobileNets
    have them: tiny weight scales (right shifts past 21) and int32 biases near the ends of the range (sums past
    2^30), or a large bias at an ordinary scale: each such channel's output is one value."""
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(1, 6, 7, 8)).astype(np.int8)
    w = rng.integers(-127, 128, size=(oc, 3, 3, 8)).astype(np.int8)
    ws = rng.uniform(0.002, 0.02, oc)
    bias = rng.integers(-5000, 5000, oc).astype(np.int32)
    dead = rng.random(oc) < 0.4
    dead[1] = True
    w[dead] = 0
    ws[dead] = 10.0 ** rng.uniform(-12, -6, int(dead.sum()))
    bias[dead] = rng.integers(-2 ** 31 + 1, 2 ** 31, int(dead.sum()))
    bias[1] = 2 ** 31 - 1
    bias[3] = -2 ** 31 + 1
    ws[3] = 0.01                                          # large bias, ordinary scale: a saturated output
    w[3] = 0
    g, acc = conv_layer("CONV_2D", x, w, bias, x_zp, y_zp, 0.05, 0.3, ws, 0, (1, 1), (1, 1), act)
    return g, x, acc, f"dead oc{oc} act{act}"


def left_case(rng, oc):
    """One channel whose multiplier exceeds one (a left shift; real 1.3), small sums so that its outputs do not
    saturate: its column block keeps the 64-bit stage, the other blocks take the short one."""
    x_zp, y_zp = int(rng.integers(-100, 100)), int(rng.integers(-128, 128))
    x = (x_zp + rng.integers(-5, 6, size=(1, 7, 5, 8))).astype(np.int8)
    w = rng.integers(-1, 2, size=(oc, 1, 1, 8)).astype(np.int8)
    ws = rng.uniform(0.002, 0.02, oc)
    ws[oc // 2] = 1.3 * 0.3 / 0.05
    bias = rng.integers(-20, 20, oc).astype(np.int32)
    g, acc = conv_layer("CONV_2D", x, w, bias, x_zp, y_zp, 0.05, 0.3, ws, 0, (1, 1), (1, 1), 0)
    return g, x, acc, f"left oc{oc}"


def fc_case(rng, rows, k, units):
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(rows, k)).astype(np.int8)
    w = rng.integers(-127, 128, size=(units, k)).astype(np.int8)
    bias = rng.integers(-50000, 50000, units).astype(np.int32)
    g, acc = fc_layer(x, w, bias, x_zp, y_zp, 0.05, 0.7, rng.uniform(0.0005, 0.002, units), 0)
    return g, x, acc, f"fc {rows}x{k}x{units}"


def fc_ties_case(rng, rows, k, units):
    """FULLY_CONNECTED rescales in double (round(acc * scale), half away from zero): weight scales 2^-1 .. 2^-12
    and unit input / output scales put many products exactly halfway, of both signs, and some beyond +-1e9 / 2^31
    (scale 2^20 on large sums: the clamp before the conversion)."""
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(rows, k)).astype(np.int8)
    w = rng.integers(-2, 3, size=(units, k)).astype(np.int8)
    ws = 2.0 ** -rng.integers(1, 13, units)
    ws[::7] = 2.0 ** 20
    bias = rng.integers(-300, 300, units).astype(np.int32)
    g, acc = fc_layer(x, w, bias, x_zp, y_zp, 1.0, 1.0, ws, 0)
    return g, x, acc, f"fc ties {rows}x{k}x{units}"


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    cases = []
    for oc in (8, 16, 24, 32, 80):
        for shifts in (list(range(0, 16)), list(range(6, 22)), list(range(10, 25))):
            for y_zp, act in ((-128, 0), (127, 0), (int(rng.integers(-128, 128)), 1), (-5, 3)):
                cases.append(ties_case(rng, oc, (9, 7), 3 if oc != 80 else 1, shifts, y_zp, act))
        for over in (False, True):
            for y_zp, act in ((-128, 0), (127, 1), (3, 3)):
                cases.append(edge_case(rng, oc, over, y_zp, act))
        cases.append(left_case(rng, oc))
        cases += [dead_case(rng, oc, act) for act in (0, 1, 3)]
    cases += [fc_case(rng, rows, 100, units) for rows in (1, 2, 9, 40) for units in (8, 16, 40, 70)]
    cases += [fc_ties_case(rng, rows, k, units) for rows in (1, 3, 9) for k in (16, 130) for units in (8, 24, 70)]
    for g, x, acc, desc in cases:
        got, rqs, names = run(g, x, 0, 0)
        kernels.update(names)
        compare(failures, f"{desc} mode {rqs[0].mode}", got, requant(acc, rqs[0], rqs[0].mode))
    report(kernels, failures)


main()
'''

EXPECTED = {"avx512vnni": ("conv2d_int8_vnni", "fully_connected_int8_vnni"),
            "avxvnni": ("conv2d_int8_avxvnni", "fully_connected_int8_avxvnni"),
            "avx512": ("conv2d_int8_avx2", "fully_connected_int8_avx2"),
            "avx2": ("conv2d_int8_avx2", "fully_connected_int8_avx2"),
            "scalar": ("conv2d_int8", "fully_connected_int8"),
            "neon": ("conv2d_int8",), "neon_dotprod": ("conv2d_int8",), "neon_i8mm": ("conv2d_int8",)}


@pytest.mark.parametrize("forced", PATHS)
def test_double_rounding_stage_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 5, timeout=600)
    for name in EXPECTED[forced]:
        assert name in kernels, f"{name} did not run under EDGEML_ISA={forced}: {kernels}"
