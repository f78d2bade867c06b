"""The vector CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED kernels on the geometries test_kernel_paths.py does not
draw (depth multiplier > 1, one input channel, large kernels, channel counts whose lane pattern is long, weights with
a zero point, splits over threads), under each forced ISA path in subprocesses, against NumPy sums from the formulas
(the helpers of tests/path_cases.py)."""
import os
import subprocess
import sys

import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from tests.path_cases import check_modes, check_threads, conv_layer, fc_layer, report


def case_dw(rng, ic, dm, k, stride, dil, padding, n=1, hw=None, w_zp=0, ties=False):
    """DEPTHWISE_CONV_2D, output channel c * dm + m from input channel c; w_zp != 0: LiteRT's uint8 arithmetic
    (one weight scale, weights held as int8 with that zero point); ties: effective scale 0.5 and small sums, so
    that half the products are rounding ties."""
    kh, kw = k
    ih, iw = hw if hw else (int(v) for v in rng.integers(1, 14, 2))
    if padding == 1:
        ih, iw = max(ih, (kh - 1) * dil[0] + 1), max(iw, (kw - 1) * dil[1] + 1)
    oc = ic * dm
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(n, ih, iw, ic)).astype(np.int8)
    w = rng.integers(-127, 128, size=(1, kh, kw, oc)).astype(np.int8)
    wscale = rng.uniform(0.002, 0.02, 1 if w_zp else oc)
    bias = rng.integers(-5000, 5000, oc).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 0.5))
    if ties:
        w = np.clip(w, -1, 1)
        wscale[:], xs, ys = 0.5, 1.0, 1.0
        bias = rng.integers(-3, 4, oc).astype(np.int32)
    act = int(rng.choice([0, 1, 3]))
    g, acc = conv_layer("DEPTHWISE_CONV_2D", x, w, bias, x_zp, y_zp, xs, ys, wscale, padding, stride, dil, act, dm,
                        w_zp)
    return g, x, acc, f"dw x{list(x.shape)} dm{dm} k{kh}x{kw} s{stride} d{dil} pad{padding} w_zp{w_zp}"


def case_conv(rng, ic, oc, k, stride, dil, padding, n, hw):
    """CONV_2D; the stems among them run on the AVX2 path's padded-image forms, whose slices pad only the image rows
    their output rows read."""
    kh, kw = k
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(n, hw[0], hw[1], ic)).astype(np.int8)
    w = rng.integers(-127, 128, size=(oc, kh, kw, ic)).astype(np.int8)
    wscale = rng.uniform(0.002, 0.02, oc)
    bias = rng.integers(-5000, 5000, oc).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 0.5))
    g, acc = conv_layer("CONV_2D", x, w, bias, x_zp, y_zp, xs, ys, wscale, padding, stride, dil, int(rng.choice([0, 3])))
    return g, x, acc, f"conv x{list(x.shape)} oc{oc} k{kh}x{kw} s{stride} d{dil} pad{padding}"


def case_fc_big(rng, rows, k, units, w_zp=0):
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(rows, k)).astype(np.int8)
    w = rng.integers(-127, 128, size=(units, k)).astype(np.int8)
    wscale = rng.uniform(0.0005, 0.002, 1 if w_zp else units)
    bias = rng.integers(-5000, 5000, units).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.5, 2.0))
    g, acc = fc_layer(x, w, bias, x_zp, y_zp, xs, ys, wscale, 0, w_zp)
    return g, x, acc, f"fc x{list(x.shape)} w{list(w.shape)} w_zp{w_zp}"


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    cases = [
        case_dw(rng, 3, 2, (3, 3), (1, 1), (1, 1), 0),
        case_dw(rng, 3, 2, (3, 3), (1, 1), (1, 1), 0, ties=True),
        case_dw(rng, 1, 8, (10, 8), (2, 2), (1, 1), 0, hw=(25, 20), ties=True),
        case_dw(rng, 67, 1, (3, 3), (2, 1), (1, 1), 1, ties=True),
        case_dw(rng, 40, 1, (3, 3), (1, 1), (1, 2), 0, n=2, ties=True),
        case_dw(rng, 5, 3, (3, 3), (2, 2), (1, 1), 1),
        case_dw(rng, 16, 2, (3, 3), (1, 2), (1, 1), 0, n=2),
        case_dw(rng, 1, 8, (10, 8), (2, 2), (1, 1), 0, hw=(25, 20)),     # KWS: runs as a CONV_2D
        case_dw(rng, 1, 1, (3, 3), (1, 1), (1, 1), 0),
        case_dw(rng, 2, 4, (5, 5), (1, 1), (2, 1), 0),
        case_dw(rng, 2, 33, (3, 3), (1, 1), (1, 1), 0),                   # multiplier past the byte shuffles
        case_dw(rng, 3, 16, (3, 3), (2, 2), (1, 1), 1, hw=(9, 11)),
        case_dw(rng, 7, 5, (2, 3), (1, 3), (1, 1), 0, hw=(6, 17)),
        case_dw(rng, 3, 1, (3, 3), (2, 2), (1, 1), 1, hw=(7, 9)),         # stride 2, pixels under 32 bytes
        case_dw(rng, 64, 1, (10, 8), (1, 1), (1, 1), 0, hw=(14, 11)),
        case_dw(rng, 67, 1, (3, 3), (1, 1), (1, 1), 0),                  # long lane period: pixel by pixel
        case_dw(rng, 72, 1, (5, 5), (2, 2), (1, 1), 0, hw=(12, 13)),
        case_dw(rng, 37, 1, (3, 3), (1, 1), (2, 2), 1, hw=(9, 9)),
        case_dw(rng, 24, 1, (3, 3), (3, 3), (1, 1), 0, hw=(13, 14)),
        case_dw(rng, 19, 1, (3, 3), (1, 1), (1, 1), 0, w_zp=7),
        case_dw(rng, 64, 1, (3, 3), (2, 2), (1, 1), 1, w_zp=-100),
        case_dw(rng, 3, 2, (5, 5), (1, 1), (1, 1), 0, w_zp=50),
        case_dw(rng, 1, 6, (4, 3), (1, 2), (1, 1), 0, hw=(11, 9), w_zp=-20),   # as a CONV_2D, weight zero point
        case_fc_big(rng, 1, 1000, 100),
        case_fc_big(rng, 3, 200, 70, w_zp=-3),
    ]
    check_modes(cases, failures, kernels)
    big = [case_dw(rng, 32, 1, (3, 3), (1, 1), (1, 1), 0, n=2, hw=(57, 47)),
           case_dw(rng, 24, 2, (3, 3), (2, 2), (1, 1), 0, hw=(80, 61)),
           case_fc_big(rng, 1, 2048, 300), case_fc_big(rng, 33, 512, 64),
           case_conv(rng, 3, 32, (3, 3), (2, 2), (1, 1), 0, 2, (80, 61)),     # a stem: the padded image (mode 4)
           case_conv(rng, 3, 24, (3, 3), (2, 2), (1, 1), 1, 1, (77, 59)),
           case_conv(rng, 3, 16, (7, 7), (2, 2), (1, 1), 0, 2, (45, 37)),     # gathered windows (mode 5)
           case_conv(rng, 5, 20, (5, 3), (1, 2), (1, 1), 1, 1, (33, 41)),
           case_conv(rng, 4, 24, (3, 3), (1, 1), (1, 1), 0, 1, (61, 47)),    # (or Winograd)
           case_conv(rng, 1280, 503, (1, 1), (1, 1), (1, 1), 0, 1, (1, 1))]   # a classifier head: the FC gemv
    check_threads(big, failures, kernels)     # past the threading thresholds
    report(kernels, failures)


main()
'''

EXPECTED = {"avx512vnni": ("conv2d_int8_vnni", "depthwise_int8_vnni", "fully_connected_int8_vnni"),
            "avxvnni": ("conv2d_int8_avxvnni", "depthwise_int8_avxvnni", "fully_connected_int8_avxvnni"),
            "avx512": ("conv2d_int8_avx2", "depthwise_int8_avx2", "fully_connected_int8_avx2"),
            "avx2": ("conv2d_int8_avx2", "depthwise_int8_avx2", "fully_connected_int8_avx2"),
            "scalar": ("conv2d_int8", "depthwise_int8", "depthwise_int8_w16", "fully_connected_int8"),
            "neon": ("conv2d_int8", "depthwise_int8"), "neon_dotprod": ("conv2d_int8", "depthwise_int8"),
            "neon_i8mm": ("conv2d_int8", "depthwise_int8")}


@pytest.mark.parametrize("forced", PATHS)
def test_conv_geometries_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 3, timeout=600)
    for name in EXPECTED[forced]:
        assert name in kernels, f"{name} did not run under EDGEML_ISA={forced}: {kernels}"


RANGE_CHECK = r"""
#include <stdio.h>
#include "em_threads.h"

static void mark(const void* ctx, int64_t begin, int64_t end, int64_t slice) {
    (void)slice;
    int* hits = (int*)ctx;
    for (int64_t k = begin; k < end; k++) hits[k] += 1;
    if (begin % 16) hits[begin] += 100;           /* a range must start on the alignment */
}

int main(void) {
    static int hits[5000];
    const int64_t totals[] = {0, 1, 15, 16, 17, 999, 4999};
    for (int t = 1; t <= 4; t++)
        for (int j = 0; j < 7; j++)
            for (int64_t min = 1; min <= 2000; min *= 40) {
                for (int k = 0; k < 5000; k++) hits[k] = 0;
                em_parallel_range(t, totals[j], 16, min, mark, hits);
                for (int64_t k = 0; k < 5000; k++)
                    if (hits[k] != (k < totals[j])) { printf("threads %d total %lld min %lld: element %lld hit %d\n",
                                                             t, (long long)totals[j], (long long)min, (long long)k,
                                                             hits[k]); return 1; }
            }
    printf("ok\n");
    return 0;
}
"""


def test_parallel_range_covers_every_element_once(tmp_path):
    """em_threads.h em_parallel_range (the element-wise split): each element once, ranges on the alignment."""
    import shutil
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    src, exe = tmp_path / "range.c", tmp_path / "range"
    src.write_text(RANGE_CHECK)
    include = os.path.join(os.path.dirname(__file__), "..", "cython_ops", "include")
    built = subprocess.run([cc, "-O1", "-Wall", "-Werror", "-I", include, str(src), "-o", str(exe), "-pthread"],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stdout


NO_AVXVNNI = r"""
#include "em_conv.h"
#include "em_depthwise_simd.h"
#include "em_fully_connected.h"
int main(void) { return em_isa() == EM_ISA_AVXVNNI; }
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="x86 Linux build check")
def test_kernels_build_without_avxvnni_support(tmp_path):
    """A compiler without AVX-VNNI (GCC < 11) builds the conv kernels without that path and never takes it, even
    when EDGEML_ISA asks for it (simulated with -DEM_HAVE_AVXVNNI=0)."""
    import shutil
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    src, exe = tmp_path / "no_avxvnni.c", tmp_path / "no_avxvnni"
    src.write_text(NO_AVXVNNI)
    root = os.path.join(os.path.dirname(__file__), "..", "cython_ops")
    built = subprocess.run([cc, "-O1", "-w", "-DEM_HAVE_AVXVNNI=0", "-I", os.path.join(root, "include"), "-I", root,
                            str(src), "-o", str(exe), "-lm", "-pthread"], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    done = subprocess.run([str(exe)], env=dict(os.environ, EDGEML_ISA="avxvnni"), timeout=60)
    assert done.returncode == 0
