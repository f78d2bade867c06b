"""int8 DEPTHWISE_CONV_2D's staging (em_depthwise_simd.h em_dw_slice: each input row staged once into a ring of
`reach` slots with per-row tap offsets, forced here by one-row bands; slices one band covers and kernels over 256
padded taps staged band by band) on every ISA path EDGEML_ISA can force, against NumPy expectations from LiteRT's
reference formulas (test_kernel_paths.py): stride 2 on odd and even sizes with SAME and VALID padding, dilation 2 and
4, 3x3 / 5x5 and a 17x17 kernel (the band fallback), channel counts off multiples of 8 / 16 / 64, depth multipliers
> 1, batch 2, 1-3 threads (slices that each start their own ring), tie-heavy sums (the float estimate's exact
fallback) and the AVX-512 VNNI kernel's stride-2 gathers of 8- and 16-channel pixels.  Each path runs in a
subprocess."""
import pytest

from test_depthwise_paths2 import KERNELS
from test_kernel_paths import run_on_path

CHECK = r'''
import sys
import numpy as np
from edgeml.runtime import packing_depthwise as PD
from edgeml.runtime.ops import depthwise as DW
from tests.path_cases import (compare, compile_capturing, depthwise_layer, layer_quantization, report,
                              requant)


def run_threads(g, x, rounding, threads, band_bytes):
    """Output, ColumnRequant, kernel of one layer compiled for `threads` (every layer split when threads > 1) with
    bands of band_bytes (small: one output row a band, so that every slice of over one row takes the ring)."""
    saved = DW.THREAD_MIN_MACS, PD.BAND_BYTES
    DW.THREAD_MIN_MACS, PD.BAND_BYTES = 0, band_bytes
    try:
        plan, captured = compile_capturing(g, rounding, threads)
    finally:
        DW.THREAD_MIN_MACS, PD.BAND_BYTES = saved
    plan.view(g.inputs[0])[...] = x
    plan.engine.invoke()
    return plan.view(g.outputs[0]).copy(), captured[0], plan.steps[0].kernel


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    shapes = [  # n, ih, iw, ic, dm, kh, kw, stride, dilation, padding (0 SAME, 1 VALID)
        (1, 23, 21, 24, 1, 3, 3, (2, 2), (1, 1), 0), (1, 22, 20, 24, 1, 3, 3, (2, 2), (1, 1), 0),
        (1, 23, 21, 40, 1, 3, 3, (2, 2), (1, 1), 1), (1, 22, 20, 40, 1, 3, 3, (2, 2), (1, 1), 1),
        (2, 17, 19, 96, 1, 3, 3, (2, 2), (1, 1), 0), (1, 16, 18, 144, 1, 3, 3, (2, 2), (1, 1), 1),
        (1, 19, 18, 72, 1, 5, 5, (2, 2), (1, 1), 0), (1, 20, 21, 7, 1, 5, 5, (2, 2), (1, 1), 1),
        (1, 21, 19, 33, 1, 3, 3, (1, 1), (2, 2), 0), (1, 23, 22, 17, 1, 3, 3, (1, 1), (4, 4), 0),
        (1, 21, 21, 100, 1, 3, 3, (2, 2), (2, 2), 0), (2, 19, 17, 65, 1, 5, 5, (1, 2), (4, 1), 0),
        (1, 15, 17, 12, 3, 3, 3, (2, 2), (1, 1), 0), (2, 14, 13, 5, 4, 5, 5, (2, 2), (2, 2), 0),
        (1, 13, 12, 1, 24, 3, 3, (2, 1), (1, 1), 1), (1, 24, 24, 960 // 8, 1, 3, 3, (1, 1), (2, 2), 0),
        (1, 21, 20, 9, 1, 17, 17, (1, 1), (1, 1), 0), (2, 20, 23, 16, 1, 17, 15, (2, 2), (1, 1), 0),
        (1, 9, 9, 3, 1, 16, 16, (1, 1), (1, 1), 0), (1, 6, 30, 31, 1, 1, 5, (3, 2), (1, 1), 0),
        (1, 12, 12, 20, 1, 2, 2, (3, 3), (1, 1), 1), (1, 40, 5, 64, 1, 3, 3, (2, 2), (1, 1), 0),
        # VALID rows whose staged bytes end just short of the row pitch (a store's overrun must not reach the next
        # ring slot): 8 and 16 channels, stride 2, odd widths
        (1, 11, 15, 8, 1, 3, 3, (2, 2), (1, 1), 1), (1, 9, 15, 16, 1, 3, 3, (2, 2), (1, 1), 1),
        (2, 10, 13, 5, 1, 3, 3, (2, 2), (1, 1), 1), (1, 9, 11, 12, 1, 3, 3, (2, 2), (1, 1), 1),
        # long stride-2 rows of 8 / 16 channels (em_dw_phase_copy512: whole 64-byte gathers, then the last pixels)
        (1, 9, 67, 8, 1, 3, 3, (2, 2), (1, 1), 0), (1, 7, 70, 16, 1, 3, 3, (2, 2), (1, 1), 1),
        (2, 8, 41, 16, 1, 5, 5, (2, 2), (1, 1), 0)]
    for k, (n, ih, iw, ic, dm, kh, kw, stride, dil, padding) in enumerate(shapes):
        oc = ic * dm
        x_zp, y_zp, xs, ys, wscale = layer_quantization(rng, oc)
        x = w = bias = None
        if k % 3 == 2:      # tie-heavy: few distinct inputs, small weights, sums that often land on a tie
            x = rng.choice(np.array([x_zp - 1, x_zp, x_zp + 1, x_zp + 2]).clip(-128, 127),
                           size=(n, ih, iw, ic)).astype(np.int8)
            w = rng.integers(-2, 3, size=(1, kh, kw, oc)).astype(np.int8)
            bias = rng.integers(-40, 40, oc).astype(np.int32)
            wscale = np.full(oc, 0.5)
            xs, ys = 1.0, 1.0
        act = int(rng.choice([0, 1, 3]))
        g, x, acc, desc = depthwise_layer(rng, n, ih, iw, ic, dm, kh, kw, stride, dil, padding, act, x_zp, y_zp,
                                          xs, ys, wscale, w=w, bias=bias, x=x)
        for threads, band_bytes in ((1, 1), (2, 1), (3, 1), (1, PD.BAND_BYTES), (2, PD.BAND_BYTES)):
            got, rq, kernel = run_threads(g, x, k % 2, threads, band_bytes)
            kernels.add(kernel)
            compare(failures, f"{desc} threads {threads} band bytes {band_bytes} mode {rq.mode}", got,
                    requant(acc, rq, rq.mode))
    report(kernels, failures)


main()
'''


@pytest.mark.parametrize("forced", list(KERNELS) + ["avx512"])
def test_depthwise_ring_staging_is_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 11)
    want = KERNELS.get(forced, "depthwise_int8_avx2")
    assert want in kernels, kernels
