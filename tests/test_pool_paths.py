"""int8 AVERAGE_POOL_2D (and its uint8-held-as-int8 form) on every ISA path EDGEML_ISA can force, against NumPy
expectations written from LiteRT's reference formulas: the window's sum over the pixels inside the image, then
reference_integer_ops::AveragePool's half-away-from-zero division by their count, or reference_ops::AveragePool's
uint8 (sum + n / 2) / n (halves up), then the activation clamp.  The vector kernel divides by a float estimate
with integer corrections, so the cases put sums on every remainder: exact ties, padded border windows (counts 1 ..
9), windows of 1 .. 90,000 pixels (41, 61 and 115 among them: there the float estimate falls one short of some
exact quotients), channel counts around the 8- and 32-lane steps, fused activations, batch 2.

One subprocess per path (the path is fixed per process)."""
import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import numpy as np
from edgeml.ir import UINT8, Graph, Op
from tests.path_cases import report, run_graph, tensor

rng = np.random.default_rng(8)
failures, kernels = [], set()


def expect(x, kh, kw, sh, sw, same, uint8, lo, hi):
    n, ih, iw, c = x.shape
    if same:
        oh, ow = -(-ih // sh), -(-iw // sw)
        pt = max(0, (oh - 1) * sh + kh - ih) // 2
        pl = max(0, (ow - 1) * sw + kw - iw) // 2
    else:
        oh, ow, pt, pl = (ih - kh) // sh + 1, (iw - kw) // sw + 1, 0, 0
    out = np.zeros((n, oh, ow, c), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * sh - pt, ox * sw - pl
            win = x[:, max(0, y0):min(ih, y0 + kh), max(0, x0):min(iw, x0 + kw), :].astype(np.int64)
            count = win.shape[1] * win.shape[2]
            a = win.sum(axis=(1, 2))
            if uint8:
                v = (a + 128 * count + count // 2) // count - 128
            else:
                v = np.sign(a) * ((np.abs(a) + count // 2) // count)
            out[:, oy, ox, :] = v
    return np.clip(out, lo, hi).astype(np.int8)


def run(x, kh, kw, sh, sw, same, uint8, act):
    n, ih, iw, c = x.shape
    oh, ow = (-(-ih // sh), -(-iw // sw)) if same else ((ih - kh) // sh + 1, (iw - kw) // sw + 1)
    ts = [tensor(0, x.shape, np.int8, 0.05, -3), tensor(1, (n, oh, ow, c), np.int8, 0.05, -3)]
    opts = dict(filter_height=kh, filter_width=kw, stride_h=sh, stride_w=sw, padding=0 if same else 1,
                fused_activation_function=act)
    if uint8:
        opts[UINT8] = True
    return run_graph(Graph(ts, [Op(0, "AVERAGE_POOL_2D", 1, [0], [1], opts)], [0], [1]), (x,), 0, kernels)


# (shape, kh, kw, sh, sw, same)
CASES = [((1, 3, 3, 256), 3, 3, 3, 3, False), ((1, 8, 8, 64), 8, 8, 8, 8, False), ((2, 7, 9, 45), 3, 3, 2, 2, True),
         ((1, 5, 5, 33), 3, 3, 1, 1, True), ((1, 6, 6, 7), 2, 2, 2, 2, False), ((1, 4, 4, 1), 4, 4, 1, 1, True),
         ((1, 17, 17, 40), 17, 17, 1, 1, False), ((1, 9, 11, 72), 5, 3, 2, 1, True), ((1, 300, 300, 9), 300, 300,
         1, 1, False), ((1, 2, 3, 31), 1, 1, 1, 1, False),
         # counts whose float32 reciprocal puts exact quotients just under the integer (41, 61, 115 pixels)
         ((1, 1, 41, 96), 1, 41, 1, 1, False), ((1, 61, 2, 40), 61, 1, 1, 1, False), ((1, 5, 23, 72), 5, 23, 1, 1,
         False)]
ACTS = {0: (-128, 127), 1: (-3, 127), 3: (-3, 117)}        # none, RELU, RELU6 at scale 0.05 / zero point -3
for shape, kh, kw, sh, sw, same in CASES:
    for uint8 in (False, True):
        for act in ((0, 1, 3) if shape[-1] > 8 else (0,)):
            for kind in ("random", "extreme", "tie", "small"):
                if kind == "random":
                    x = rng.integers(-128, 128, shape).astype(np.int8)
                elif kind == "extreme":
                    x = rng.choice(np.array([-128, 127], np.int8), shape)
                elif kind == "small":     # sums near +-count / 2: t = |sum| + count / 2 near count
                    x = rng.integers(-4, 6, shape).astype(np.int8)
                else:           # sums one half away from a multiple of the count wherever the count is even
                    x = np.where(rng.random(shape) < 0.5, 1, 0).astype(np.int8) * rng.choice(
                        np.array([-1, 1], np.int8), (1, 1, 1, shape[-1]))
                lo, hi = ACTS[act]
                if uint8:
                    lo, hi = (-128, 127)
                    act = 0
                got = run(x, kh, kw, sh, sw, same, uint8, act)
                want = expect(x, kh, kw, sh, sw, same, uint8, lo, hi)
                if got.shape != want.shape or not np.array_equal(got, want):
                    failures.append(f"AVERAGE_POOL_2D {shape} {kh}x{kw} s{sh}x{sw} same={same} uint8={uint8} "
                                    f"act={act} {kind}: {int((got != want).sum())} differ")
report(kernels, failures)
'''


@pytest.mark.parametrize("forced", [p for p in PATHS if not p.startswith("neon")])
def test_int8_average_pool_is_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK)
    assert {"avg_pool_int8", "avg_pool_uint8"} <= set(kernels), kernels
