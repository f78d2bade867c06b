"""The AVX2 one- and two-row int8 FULLY_CONNECTED (fully_connected_int8_avx2_gemv, em_gemv_avx2.h) over awkward
shapes, bit for bit against the portable path: depths K in {1, 3, 7, 17, 100, 640, 1000} (odd group counts, tails
of the two-group trips), unit counts N in {1, 5, 8, 9, 33, 640} (32-, 16- and 8-column tiles and their partial
panels), batch 1-3 (batch 3 takes the int16-panel GEMM), per-channel and per-tensor weight scales, no / RELU / RELU6
fused, an asymmetric input zero point, in the four requantization modes.  The same script runs under
EDGEML_ISA=avx2 and EDGEML_ISA=scalar; each run checks its outputs against the NumPy sums of the formulas and
prints a digest of every output, and the two digests must be equal."""
import os
import subprocess
import sys

import pytest

from test_kernel_paths import ROOT, forced_path

CHECK = r'''
import hashlib
import numpy as np
from tests.path_cases import compare, fc_layer, requant, run


def main():
    rng = np.random.default_rng(15)
    failures, kernels, digest = [], set(), hashlib.sha256()
    for k in (1, 3, 7, 17, 100, 640, 1000):
        for units in (1, 5, 8, 9, 33, 640):
            for rows in (1, 2, 3):
                x = rng.integers(-128, 128, size=(rows, k)).astype(np.int8)
                w = rng.integers(-127, 128, size=(units, k)).astype(np.int8)
                w[:, 0] = rng.choice([-127, 127], units)
                per_channel = (k + units + rows) % 2 == 0
                wscale = rng.uniform(0.0005, 0.02, units if per_channel else 1)
                bias = rng.integers(-20000, 20000, units).astype(np.int32)
                x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-100, 100))
                act = (0, 1, 3)[(k + 2 * units + rows) % 3]          # NONE, RELU, RELU6
                # outputs spread over about +-40 steps (RELU6: 6 is 100 steps), whatever K
                ys = 0.06 if act == 3 else float(rng.uniform(0.05, 0.5))
                _, acc = fc_layer(x, w, bias, x_zp, 0, 1.0, 1.0, wscale, act)
                xs = ys * 40 / float(np.std(acc * wscale) + wscale.max())
                g, acc = fc_layer(x, w, bias, x_zp, y_zp, xs, ys, wscale, act)
                for mode in (0, 1, 2, 3):
                    got, rqs, names = run(g, x, 1 if mode == 1 else 0, mode)
                    kernels.update(names)
                    compare(failures, f"fc rows {rows} K {k} N {units} act {act} mode {rqs[0].mode}", got,
                            requant(acc, rqs[0], rqs[0].mode))
                    digest.update(got.tobytes())
                    spread = len(np.unique(got))
                    if got.size >= 64 and spread < 8:     # (outputs all clamped would prove little)
                        failures.append(f"rows {rows} K {k} N {units}: only {spread} distinct outputs")
    print("kernels", " ".join(sorted(kernels)))
    print("digest", digest.hexdigest())
    print("\n".join(failures) if failures else "ok")


main()
'''


def run_forced(forced: str) -> tuple:
    if forced_path(forced) != forced:
        pytest.skip(f"this CPU has no {forced} path")
    done = subprocess.run([sys.executable, "-c", CHECK], env=dict(os.environ, EDGEML_ISA=forced),
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "ok", "\n".join(lines[-20:])
    return lines[0].split()[1:], lines[1].split()[1]


def test_gemv_awkward_shapes_bit_identical_to_scalar():
    kernels, digest = run_forced("avx2")
    assert {"fully_connected_int8_avx2_gemv", "fully_connected_int8_avx2"} <= set(kernels), kernels
    scalar_kernels, scalar_digest = run_forced("scalar")
    assert scalar_kernels == ["fully_connected_int8"], scalar_kernels
    assert digest == scalar_digest
