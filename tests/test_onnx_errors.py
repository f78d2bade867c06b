"""A malformed or unsupported ONNX model is an EdgeMLError naming the problem, raised at load."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgeml
from edgeml import InputError, ModelFormatError, UnsupportedOpError
from tests.onnx_models import make_model

F = np.float32


def relu_model(**kw):
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, kw.get("shape", (1, 4)))],
                      [("y", F, kw.get("shape", (1, 4)))], opset=kw.get("opset", 17))


@pytest.mark.parametrize("data", [b"\x08\x07\x12\xff\xff\xff\x0f", b"\x08\x08\x3a\xff\xff\xff\xff\x0f" + b"x" * 10,
                                  relu_model()[:-7]])
def test_malformed_protobuf(data):
    with pytest.raises(ModelFormatError, match="not a valid ONNX protobuf|has no graph|reads"):
        edgeml.Interpreter(data)


def test_unsupported_op_names_the_node_and_lists_supported_ops():
    m = make_model([helper.make_node("Unique", ["x"], ["y"], name="unique0")], [("x", F, (1, 4))], [("y", F, (4,))])
    with pytest.raises(UnsupportedOpError, match=r"node 0 'unique0' \(Unique\): op Unique .* supported ops: .*Conv"):
        edgeml.Interpreter(m)


def test_unsupported_opset_and_domain():
    with pytest.raises(UnsupportedOpError, match="opset 6 is not supported"):
        edgeml.Interpreter(relu_model(opset=6))
    m = make_model([helper.make_node("Relu", ["x"], ["y"], domain="org.example")], [("x", F, (1, 4))],
                   [("y", F, (1, 4))], extra_opsets=[("org.example", 1)])
    with pytest.raises(UnsupportedOpError, match="domain 'org.example'"):
        edgeml.Interpreter(m)


def test_dynamic_dimensions():
    """A dynamic batch is fixed to 1 (and follows the input later); any other dynamic dimension is an error."""
    it = edgeml.Interpreter(relu_model(shape=("batch", 4)))
    assert list(it.get_input_details()[0]["shape"]) == [1, 4]
    np.testing.assert_array_equal(it.run(np.full((3, 4), -1, F)), np.zeros((3, 4), F))
    with pytest.raises(ModelFormatError, match="dimension 1 is 'width'; only the batch dimension may be dynamic"):
        edgeml.Interpreter(relu_model(shape=(1, "width")))


def _conv_with_weights(tensor: TensorProto) -> bytes:
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 2, 4, 4))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 3, 4, 4))], initializer=[tensor])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_initializer_size_must_match_shape_and_type():
    t = numpy_helper.from_array(np.zeros((3, 2, 1, 1), F), "w")
    t.raw_data = t.raw_data[:-4]
    with pytest.raises(ModelFormatError, match=r"initializer 0 'w': holds 20 bytes of raw data, shape \[3, 2, 1, 1\]"):
        edgeml.Interpreter(_conv_with_weights(t))
    t2 = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 2, 1, 1], float_data=[0.5] * 5)
    with pytest.raises(ModelFormatError, match="holds 5 values in float_data, shape .* needs 6"):
        edgeml.Interpreter(_conv_with_weights(t2))


def test_external_data_is_refused():
    t = numpy_helper.from_array(np.zeros((3, 2, 1, 1), F), "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="weights.bin")
    with pytest.raises(ModelFormatError, match="external file"):
        edgeml.Interpreter(_conv_with_weights(t))


def test_non_constant_weights_and_bad_shapes():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], [("x", F, (1, 2, 4, 4)), ("w", F, (3, 2, 1, 1))],
                   [("y", F, (1, 3, 4, 4))])
    with pytest.raises(UnsupportedOpError, match="weights must be constant"):
        edgeml.Interpreter(m)
    m2 = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], [("x", F, (1, 2, 4, 4))], [("y", F, None)],
                    {"w": np.zeros((3, 5, 1, 1), F)})
    with pytest.raises(ModelFormatError, match="do not fit 2 input channels"):
        edgeml.Interpreter(m2)
    m3 = make_model([helper.make_node("Reshape", ["x", "s"], ["y"])], [("x", F, (1, 6))], [("y", F, None)],
                    {"s": np.array([4, -1], np.int64)})
    with pytest.raises(ModelFormatError, match=r"cannot reshape \[1, 6\] to \[4, -1\]"):
        edgeml.Interpreter(m3)


def test_graph_must_be_topologically_sorted():
    m = make_model([helper.make_node("Relu", ["t"], ["y"]), helper.make_node("Relu", ["x"], ["t"])],
                   [("x", F, (1, 4))], [("y", F, (1, 4))])
    with pytest.raises(ModelFormatError, match="reads 't', which no earlier node"):
        edgeml.Interpreter(m)


def test_bad_quantization_parameters():
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    m = make_model(nodes, [("x", F, (1, 4))], [("y", F, (1, 4))], {"s": np.array(-0.5, F), "z": np.array(np.int8(0))})
    with pytest.raises(ModelFormatError, match="scale -0.5 must be positive"):
        edgeml.Interpreter(m)


def test_wrong_input_at_run_time():
    it = edgeml.Interpreter(relu_model())
    with pytest.raises(InputError, match="expected shape"):
        it.run(np.zeros((1, 5), F))


def test_mutated_models_never_crash(reference_models):
    """Random byte flips of a real model either load and run or raise an EdgeMLError."""
    data = (reference_models / "mlperf_tiny_onnx" / "kws_ref_model.onnx").read_bytes()
    rng = np.random.default_rng(0)
    for _ in range(100):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        try:
            it = edgeml.Interpreter(bytes(b))
            it.run(np.zeros((1, 49, 10, 1), np.int8))
        except edgeml.EdgeMLError:
            pass


def test_loading_and_running_onnx_imports_no_heavy_framework(reference_models, tmp_path):
    """The ONNX reader uses the onnx package only: no onnxruntime, TensorFlow or Keras appear."""
    import subprocess
    import sys
    model = reference_models / "mlperf_tiny_onnx" / "pretrainedResnet_quant.onnx"
    code = (
        "import sys, numpy as np, edgeml\n"
        f"it = edgeml.Interpreter({str(model)!r})\n"
        "it.run(np.zeros((1, 32, 32, 3), np.int8))\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('onnxruntime', 'tensorflow', 'tf_keras', 'keras')]\n"
        "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_runs_and_inspects_onnx(reference_models, capsys):
    from edgeml.cli import main
    model = str(reference_models / "mlperf_tiny_onnx" / "kws_ref_model.onnx")
    assert main(["run", model]) == 0
    assert "output 'Identity' int8 [1, 12]" in capsys.readouterr().out
    assert main(["inspect", model]) == 0
    assert "CONV_2D" in capsys.readouterr().out
