"""int8 MAX_POOL_2D on every ISA path EDGEML_ISA can force (em_pool.h: 32 channels per vector on AVX2 and above,
then 16, then one by one), against NumPy expectations written from the definition: the maximum over the window's
pixels inside the image, clamped to the fused activation range.  Channel counts around the vector widths, SAME and
VALID padding, stride 1 and 2, 2x2 / 3x3 / 3x2 windows, batch 2, activation clamps.  One subprocess per path."""
import os
import subprocess
import sys

import pytest

from test_kernel_paths import PATHS, forced_path

CHECK = r'''
import numpy as np
from edgeml import numerics as Q
from edgeml.ir import Graph, Op, Quantization, Tensor
from edgeml.runtime.compile import compile_graph

rng = np.random.default_rng(3)
CASES = [  # N, H, W, C, KH, KW, stride, padding (1 SAME, 2 VALID; TFLite codes 0, 1), activation code (0 NONE, 1 RELU, 3 RELU6)
    (1, 8, 6, 32, 2, 2, 2, 2, 0), (1, 9, 7, 33, 3, 3, 2, 1, 1), (2, 5, 5, 17, 3, 3, 1, 1, 3), (1, 6, 9, 1, 2, 2, 2, 1, 0),
    (1, 7, 7, 48, 3, 2, 1, 2, 0), (1, 4, 10, 70, 2, 3, 2, 1, 1), (1, 11, 3, 64, 3, 3, 2, 1, 3), (1, 3, 3, 15, 3, 3, 1, 1, 0)]
ACT = {0: "NONE", 1: "RELU", 3: "RELU6"}


def tensor(idx, shape, scale, zp):
    q = Quantization(np.array([scale], np.float64), np.array([zp], np.int64), 0)
    return Tensor(idx, f"t{idx}", tuple(shape), np.dtype(np.int8), q, None)


def expect(x, kh, kw, s, same, lo, hi):
    n, h, w, c = x.shape
    oh, ow = ((-(-h // s), -(-w // s)) if same else ((h - kh) // s + 1, (w - kw) // s + 1))
    pt = max((oh - 1) * s + kh - h, 0) // 2 if same else 0
    pl = max((ow - 1) * s + kw - w, 0) // 2 if same else 0
    y = np.full((n, oh, ow, c), -128, np.int64)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * s - pt, ox * s - pl
            win = x[:, max(y0, 0):max(y0 + kh, 0), max(x0, 0):max(x0 + kw, 0)]
            if win.size:
                y[:, oy, ox] = win.max(axis=(1, 2))
    return np.clip(y, lo, hi).astype(np.int8)


failures, kernels = [], set()
for n, h, w, c, kh, kw, s, pad, act in CASES:
    scale, zp = 0.05, int(rng.integers(-100, 20))
    lo, hi = Q.activation_range_int8(ACT[act], scale, zp)
    x = rng.integers(-128, 128, (n, h, w, c)).astype(np.int8)
    want = expect(x, kh, kw, s, pad == 1, lo, hi)
    ts = [tensor(0, x.shape, scale, zp), tensor(1, want.shape, scale, zp)]
    opts = dict(padding={1: 0, 2: 1}[pad], stride_h=s, stride_w=s, filter_height=kh, filter_width=kw, fused_activation_function=act)
    plan = compile_graph(Graph(ts, [Op(0, "MAX_POOL_2D", 1, [0], [1], opts)], [0], [1]), {}, 0)
    plan.view(0)[...] = x
    plan.engine.invoke()
    kernels.update(st.kernel for st in plan.steps)
    got = plan.view(1)
    if got.shape != want.shape or not np.array_equal(got, want):
        failures.append(f"{(n, h, w, c, kh, kw, s, pad, act)}: {int((got != want).sum())} of {want.size} differ")
print(" ".join(sorted(kernels)))
print("\n".join(failures) if failures else "ok")
'''


@pytest.mark.parametrize("forced", [p for p in PATHS if p != "neon"])
def test_int8_max_pool_on_every_path(forced):
    if forced_path(forced) != forced:
        pytest.skip(f"this CPU has no {forced} path")
    done = subprocess.run([sys.executable, "-c", CHECK], env=dict(os.environ, EDGEML_ISA=forced), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "ok", "\n".join(lines[-20:])
    assert "max_pool_int8" in lines[0].split()
