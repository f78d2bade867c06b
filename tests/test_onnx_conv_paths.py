"""The QDQ convolution onnxruntime runs in float (ONNX_CONV_MLAS, em_onnx_conv.h) on every ISA path this CPU has
(EDGEML_ISA forces each; one subprocess per path), against onnxruntime bit for bit: the AVX-512 and AVX2 tiles (one
to four registers of channels x as many pixels as the accumulators allow, rows split into tiles of even widths,
windows inside the image walked without checks, 1x1 windows over the input channels alone) must keep MLAS's
per-lane order.  Shapes:
1 and odd input channels, output channels 7, 8, 16, 17, 33, 48, 50, 64, 100 (one to four 16-lane registers, one
8-lane register, padded lanes), widths that leave every tile width, stride 2, dilation 2, 5x5 and 1x1 windows,
padding on every side, K in one block and in blocks of 128 and 256."""
import pytest

from test_kernel_paths import run_on_path

PATHS = ["scalar", "avx2", "avx512", "avx512vnni"]

CHECK = r'''
import numpy as np
import onnxruntime as ort
from onnx import helper
import edgeml
from tests.onnx_models import make_model
from tests.path_cases import report

F = np.float32
rng = np.random.default_rng(5)
CASES = [  # in channels, out channels, kernel, stride, dilation, pad, (H, W)
    (1, 64, 3, 2, 1, 1, (21, 9)), (3, 16, 3, 1, 1, 1, (13, 31)), (16, 33, 3, 2, 1, 1, (17, 9)),
    (7, 50, 5, 1, 2, 2, (20, 23)), (64, 64, 3, 1, 1, 1, (8, 13)), (20, 17, 1, 1, 1, 0, (7, 30)),
    (32, 16, 3, 1, 1, 0, (9, 14)),
    # the tiles of em_onnx_conv.h: 1x1 stride 2 (short K), up to 8 channels (one 8-lane register on every path),
    # 48 and 100 channels (three and four 16-lane registers), K in two blocks (144 = 128 + 16; 288 = 256 + 32)
    (16, 32, 1, 2, 1, 0, (32, 32)), (32, 64, 1, 2, 1, 0, (16, 16)), (3, 8, 3, 2, 1, 1, (96, 96)),
    (5, 7, 3, 1, 1, 1, (11, 19)), (16, 48, 3, 1, 1, 1, (9, 23)), (8, 100, 1, 1, 1, 0, (5, 27)),
    (16, 16, 3, 1, 1, 1, (32, 32)), (32, 64, 3, 2, 1, 1, (16, 16))]


def qdq_conv(c_in, c_out, k, stride, dil, pad, hw):
    ws = rng.uniform(0.001, 0.01, c_out).astype(F)
    inits = {"w": rng.integers(-127, 128, (c_out, c_in, k, k)).astype(np.int8), "ws": ws, "wz": np.zeros(c_out, np.int8),
             "b": rng.integers(-1000, 1000, c_out).astype(np.int32), "bs": (F(0.02) * ws).astype(F),
             "bz": np.zeros(c_out, np.int32), "sx": np.array(0.02, F), "zx": np.array(np.int8(3)),
             "sy": np.array(0.05, F), "zy": np.array(np.int8(-5))}
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["dx"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["dw"], axis=0),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["db"], axis=0),
             helper.make_node("Conv", ["dx", "dw", "db"], ["c"], pads=[pad] * 4, strides=[stride] * 2,
                              dilations=[dil] * 2),
             helper.make_node("QuantizeLinear", ["c", "sy", "zy"], ["y"])]
    oh = (hw[0] + 2 * pad - dil * (k - 1) - 1) // stride + 1
    ow = (hw[1] + 2 * pad - dil * (k - 1) - 1) // stride + 1
    return make_model(nodes, [("x", np.int8, (1, c_in) + hw)], [("y", np.int8, (1, c_out, oh, ow))], inits)


so = ort.SessionOptions()
so.intra_op_num_threads = 1
failures, kernels = [], set()
for case in CASES:
    m = qdq_conv(*case)
    it = edgeml.Interpreter(m)
    kernels.update(s.kernel for s in it.plan.steps)
    if "ONNX_CONV_MLAS" not in [op.type for op in it.graph.ops]:
        failures.append(f"{case}: not an ONNX_CONV_MLAS")
        continue
    sess = ort.InferenceSession(m, so, providers=["CPUExecutionProvider"])
    for _ in range(3):
        x = rng.integers(-128, 128, (1, case[0]) + case[6]).astype(np.int8)
        got, want = it.run(x), sess.run(None, {"x": x})[0]
        if not np.array_equal(got, want):
            failures.append(f"{case}: {int((got != want).sum())} of {want.size} outputs differ")
report(kernels, failures)
'''


@pytest.mark.parametrize("forced", PATHS)
def test_float_qdq_conv_matches_onnxruntime_on_every_path(forced):
    run_on_path(forced, CHECK)
