"""ReduceMean without keepdims after a conv (channels-last inside edgeml): the mean runs on the channels-last tensor
and only its smaller result is put back in ONNX order, so no full-size TRANSPOSE is planned (issue 21)."""
import numpy as np
import pytest
from onnx import helper

import edgeml
from tests.onnx_models import make_model, ort_run

pytest.importorskip("onnxruntime")

F = np.float32
RNG = np.random.default_rng(21)

CASES = [
    # (reduced ONNX axes of an NCHW value, further ReduceMean axes or None)
    ([-1], [-1]),          # PyTorch's x.mean(-1).mean(-1) (MLPerf Tiny ks_raw)
    ([3], None),
    ([2], None),
    ([0, 3], None),
    ([2, 3], None),        # kept order already sorted: one MEAN, no transpose
    ([1], None),
    ([0], None),
]


@pytest.mark.parametrize("axes, then", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("hw", [(5, 7), (1, 6), (4, 1)])
def test_reduce_mean_after_conv_matches_onnxruntime_without_a_full_transpose(axes, then, hw):
    h, w = hw
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("ReduceMean", ["c"], ["m" if then else "y"], axes=axes, keepdims=0)]
    if then:
        nodes.append(helper.make_node("ReduceMean", ["m"], ["y"], axes=then, keepdims=0))
    inits = {"w": (RNG.standard_normal((6, 3, 3, 3)) * 0.3).astype(F), "b": RNG.standard_normal(6).astype(F)}
    model = make_model(nodes, [("x", F, (2, 3, h, w))], [("y", F, None)], inits)
    it = edgeml.Interpreter(model)
    ops = it.graph.ops
    assert "MEAN" in [op.type for op in ops]
    conv_out = next(op for op in ops if op.type == "CONV_2D").outputs[0]
    for op in ops:
        if op.type == "TRANSPOSE":          # only the model input's, never the conv output's
            assert op.inputs[0] != conv_out
    for _ in range(5):
        x = RNG.standard_normal((2, 3, h, w)).astype(F)
        ref = ort_run(model, {"x": x})[0]
        got = it.run(x)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
