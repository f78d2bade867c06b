"""The ONNX reader's IR stays identical (tensors, types, shapes, quantization, constant bytes, ops, options) on the
repository's .onnx reference models and on the shared ones (skipped when absent): a guard for load-time work."""
import json

import pytest

from tests.onnx_ir_digest import GOLDEN, ir_digest, model_files

pytest.importorskip("onnx")
EXPECTED = json.loads(GOLDEN.read_text())
FILES = model_files()


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_ir_unchanged(key):
    if key not in FILES:
        pytest.skip(f"{key} is not present here")
    got, want = ir_digest(FILES[key]), EXPECTED[key]
    if "error" in want or "error" in got:
        assert got == want
        return
    assert got["graph"] == want["graph"]
    assert len(got["tensors"]) == len(want["tensors"]) and len(got["ops"]) == len(want["ops"])
    for what in ("tensors", "ops"):
        for k, (a, b) in enumerate(zip(got[what], want[what])):
            assert a == b, f"{key}: {what[:-1]} {k} differs"


def test_repository_models_are_covered():
    assert any(k.startswith("repo/models/") for k in EXPECTED)


def _qdq_conv_model(constant_nodes: bool):
    """x -> Q -> DQ -> Conv (int8 weights) -> Q -> DQ -> y, the activations' scales / zero points as initializers
    or as Constant nodes (which the reader looks up by name without a walk per QuantizeLinear)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    rng = np.random.default_rng(0)
    params = {"s_in": np.array(0.05, np.float32), "z_in": np.array(3, np.int8),
              "s_out": np.array(0.1, np.float32), "z_out": np.array(-2, np.int8)}
    inits = [numpy_helper.from_array(rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8), "w_q"),
             numpy_helper.from_array(np.array(0.02, np.float32), "w_s")]
    nodes = []
    if constant_nodes:
        nodes += [helper.make_node("Constant", [], [k], value=numpy_helper.from_array(v, k)) for k, v in params.items()]
    else:
        inits += [numpy_helper.from_array(v, k) for k, v in params.items()]
    nodes += [helper.make_node("QuantizeLinear", ["x", "s_in", "z_in"], ["xq"]),
              helper.make_node("DequantizeLinear", ["xq", "s_in", "z_in"], ["xf"]),
              helper.make_node("DequantizeLinear", ["w_q", "w_s"], ["wf"]),
              helper.make_node("Conv", ["xf", "wf"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("QuantizeLinear", ["c", "s_out", "z_out"], ["cq"]),
              helper.make_node("DequantizeLinear", ["cq", "s_out", "z_out"], ["y"])]
    graph = helper.make_graph(nodes, "qdq_conv", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                                [1, 3, 5, 5])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def test_constant_node_parameters_read_as_initializers():
    from converters.onnx import from_onnx
    by_init, by_node = from_onnx(_qdq_conv_model(False)), from_onnx(_qdq_conv_model(True))
    assert [(o.type, sorted(o.options)) for o in by_node.ops] == [(o.type, sorted(o.options)) for o in by_init.ops]
    assert "CONV_2D" in [o.type for o in by_node.ops] or "ONNX_CONV_MLAS" in [o.type for o in by_node.ops]
