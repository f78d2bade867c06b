"""SVDF against LiteRT's reference kernels on flatbuffer-written one-op models (tests/svdf_models.py): the integer
form bit-exact, float32 and hybrid within the float tolerance, over 20 seeded inputs invoked back to back (the
state carries over in both), then after reset_variables() / reset_all_variables(); batch resize and clones;
malformed variants."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import svdf_models as S

import edgeml
from edgeml import ModelFormatError, UnsupportedOpError

SAMPLES = 20
RTOL, ATOL = 1e-5, 1e-6
# the models are written with TensorFlow's schema module (read from its file: TensorFlow itself is not imported)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed")


def reference(model: bytes):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    return ref


def model_bytes(spec) -> bytes:
    return S.build(spec)


def feed(spec, x):
    return S.quantize_input(spec, x) if spec.kind == "int8" else x


def run_reference(ref, x):
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    return ref.get_tensor(ref.get_output_details()[0]["index"])


def run_edgeml(ours, x):
    ours.set_input(x)
    ours.invoke()
    return ours.get_output()


def assert_same(spec, got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    if spec.kind == "int8":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(S.SPECS))
def test_svdf_matches_litert(name):
    spec = S.SPECS[name]
    model = model_bytes(spec)
    ours, ref = edgeml.Interpreter(model), reference(model)
    assert [op.type for op in ours.graph.ops] == ["SVDF"]
    xs = [feed(spec, x) for x in S.inputs(spec, SAMPLES)]
    outputs = []
    for x in xs:
        want = run_reference(ref, x)
        assert_same(spec, run_edgeml(ours, x), want)
        outputs.append(want)
    assert len(np.unique(np.concatenate([o.ravel() for o in outputs]))) > 10, "outputs are degenerate"
    # the state carried the earlier inputs: the same input now gives another output than on a fresh state
    ours.reset_variables()
    ref.reset_all_variables()
    for x in xs[:3]:
        assert_same(spec, run_edgeml(ours, x), run_reference(ref, x))
    assert not np.array_equal(outputs[0], run_edgeml(ours, xs[0])) or spec.memory == 1


@pytest.mark.parametrize("name", sorted(n for n, s in S.SPECS.items() if s.kind == "int8" and s.bias))
def test_integer_svdf_matches_tflite_micro(name):
    """TFLite Micro's integer SVDF (what keyword-spotting models run on microcontrollers) gives the same bytes.
    (Its Python interpreter crashes loading an SVDF without a bias, so those specs are left out.)"""
    micro = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    spec = S.SPECS[name]
    model = model_bytes(spec)
    ours, tflm = edgeml.Interpreter(model), micro.Interpreter.from_bytes(model)
    for x in S.inputs(spec, SAMPLES):
        tflm.set_input(feed(spec, x), 0)
        tflm.invoke()
        np.testing.assert_array_equal(run_edgeml(ours, feed(spec, x)), tflm.get_output(0))


def test_state_is_the_variable_tensor_and_resets_to_zero():
    spec = S.SPECS["int8_rank2_batch2"]
    ours = edgeml.Interpreter(model_bytes(spec))
    state = next(t for t in ours.graph.tensors if t.is_variable)
    assert state.dtype == np.int16
    for x in S.inputs(spec, 3):
        run_edgeml(ours, feed(spec, x))
    assert np.any(ours.plan.view(state.index) != 0)
    ours.reset_variables()
    assert not np.any(ours.plan.view(state.index))


def test_resized_batch_runs_each_row_on_its_own_state():
    """int8_rank1 planned again for a batch of 3: the state takes one row per batch, and row b's outputs are those
    of a batch-1 LiteRT interpreter fed row b (LiteRT itself cannot resize it: its state keeps the file's shape)."""
    spec = S.SPECS["int8_rank1"]
    model = model_bytes(spec)
    ours, refs = edgeml.Interpreter(model), [reference(model) for _ in range(3)]
    ours.resize_input(0, (3, spec.inputs))
    rng = np.random.default_rng(3)
    for _ in range(6):
        x = feed(spec, rng.standard_normal((3, spec.inputs)).astype(np.float32))
        want = np.concatenate([run_reference(ref, x[b:b + 1]) for b, ref in enumerate(refs)])
        np.testing.assert_array_equal(run_edgeml(ours, x), want)


def test_clone_has_a_state_of_its_own():
    spec = S.SPECS["hybrid_rank1_relu"]
    model = model_bytes(spec)
    one, ref = edgeml.Interpreter(model), reference(model)
    xs = S.inputs(spec, 6)
    run_edgeml(one, xs[0])
    run_reference(ref, xs[0])
    twin = one.clone()
    for x in xs[1:]:
        run_edgeml(twin, x[::-1].copy())          # the twin's state moves; the original's does not
        np.testing.assert_allclose(run_edgeml(one, x), run_reference(ref, x), rtol=RTOL, atol=ATOL)


# ----- malformed variants -------------------------------------------------------------------------------------

def tensor_named(model, name):
    return next(t for t in model.subgraphs[0].tensors if t.name == name)


def set_option(**fields):
    def change(model, tensors, fb):
        for key, value in fields.items():
            setattr(model.subgraphs[0].operators[0].builtinOptions, key, value)
    return change


def set_tensor(name, **fields):
    def change(model, tensors, fb):
        t = tensor_named(model, name)
        for key, value in fields.items():
            setattr(t, key, value)
    return change


def set_quant(name, scale, zero_point):
    def change(model, tensors, fb):
        t = tensor_named(model, name)
        t.quantization.scale = np.array(scale, np.float32)
        t.quantization.zeroPoint = np.array(zero_point, np.int64)
    return change


def retype(name, ttype, dtype):
    """The constant as another type, of the same shape (zeros)."""
    def change(model, tensors, fb):
        t = tensor_named(model, name)
        t.type = ttype
        model.buffers[t.buffer].data = np.zeros(int(np.prod(t.shape)) * np.dtype(dtype).itemsize, np.uint8)
    return change


def drop_quant(name):
    return set_tensor(name, quantization=None)


def resize_constant(name, shape, dtype):
    def change(model, tensors, fb):
        t = tensor_named(model, name)
        t.shape = np.array(shape, np.int32)
        model.buffers[t.buffer].data = np.zeros(int(np.prod(shape)) * np.dtype(dtype).itemsize, np.uint8)
    return change


MALFORMED = {
    "rank_zero": ("int8_rank1", set_option(rank=0), ModelFormatError, "rank must be a positive integer, got 0"),
    "rank_not_dividing_filters": ("int8_rank2_batch2", set_option(rank=3), ModelFormatError,
                                  "do not fit an input of 13 features and rank 3"),
    "weights_time_rows": ("float_rank1_relu", resize_constant("weights_time", [5, 5], np.float32), ModelFormatError,
                          "weights_feature [4, 10] and weights_time [5, 5] do not fit"),
    "bias_size": ("float_rank1_relu", resize_constant("bias", [3], np.float32), ModelFormatError,
                  "bias [3] for 4 units"),
    "state_not_variable": ("int8_rank1", set_tensor("state", isVariable=False), ModelFormatError,
                           "must be a variable tensor"),
    "state_shape": ("int8_rank1", set_tensor("state", shape=np.array([1, 19], np.int32)), ModelFormatError,
                    "has shape [1, 19], expected [1, 20]"),
    "input_rank3": ("float_rank1_relu", set_tensor("input", shape=np.array([1, 1, 10], np.int32)), ModelFormatError,
                    "must be 2-D"),
    "int8_activation_none": ("int8_rank1", set_option(fusedActivationFunction=S.NONE), UnsupportedOpError,
                             "runs only with fused activation RELU, not NONE"),
    "int8_state_zero_point": ("int8_rank1", set_quant("state", [1e-3], [3]), UnsupportedOpError,
                              "has zero point 3; LiteRT's SVDF takes it as symmetric"),
    "int8_weights_per_axis": ("int8_rank1", set_quant("weights_feature", [0.01] * 4, [0] * 4), ModelFormatError,
                              "must be quantized per tensor"),
    "int8_input_unquantized": ("int8_rank1", drop_quant("input"), ModelFormatError,
                               "has no quantization parameters"),
    "int8_weights_time_int8": ("int8_rank1", retype("weights_time", 9, np.int8), UnsupportedOpError,
                               "('int8', 'int8', 'int8', 'int32', 'int16', 'int8') are not supported"),
    "hybrid_bias_int32": ("hybrid_rank1_relu", retype("bias", 2, np.int32), UnsupportedOpError,
                          "types (input, weights_feature, weights_time, bias, state, output)"),
    "hybrid_weights_zero_point": ("hybrid_rank1_relu", set_quant("weights_time", [0.01], [1]), UnsupportedOpError,
                                  "has zero point 1"),
    "activation_unknown": ("float_rank1_relu", set_option(fusedActivationFunction=9), UnsupportedOpError,
                           "fused activation 9 is not supported"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_svdf(case):
    name, change, error, fragment = MALFORMED[case]
    model = S.build(S.SPECS[name], change)
    with pytest.raises(error) as info:
        edgeml.Interpreter(model)
    assert fragment in str(info.value)


def test_weights_feature_from_an_input_is_refused():
    """weights_feature must be a constant (it is packed at load)."""
    def change(model, tensors, fb):
        t = tensor_named(model, "weights_feature")
        t.buffer = 0
        model.subgraphs[0].inputs = np.array([0, 1], np.int32)
    with pytest.raises(UnsupportedOpError, match="weights_feature: tensor 1 'weights_feature' must be a constant"):
        edgeml.Interpreter(S.build(S.SPECS["float_rank1_relu"], change))
