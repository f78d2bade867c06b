"""Hybrid UNIDIRECTIONAL_SEQUENCE_LSTM (float input and state, int8 weights) against LiteRT's reference kernels:
bit-identical float outputs.

The on-the-fly quantization of x and h, the integer products and every float step of the gates and the cell
follow LiteRT's EvalHybrid operation for operation (em_lstm_hybrid.h), including its sigmoid and tanh (Eigen's
logistic and tanh as LiteRT's SSE build evaluates them, and the one-element logistic Eigen falls back to at
unaligned buffer edges: edgeml/runtime/ops/lstm.py eigen_scalar_lanes).  One ulp anywhere would also move later steps: an h element
next to a rounding boundary of the next step's quantization changes its int8 code.  The h / c state persists
across invokes in LiteRT, so the comparisons run several invokes back to back without a reset, then reset both.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

import edgeml
import lstm_hybrid_models as M
import model_cache
from litert_reference import reference, run_ours, run_ref
from converters import from_tflite
from edgeml import EdgeMLError, ModelFormatError, UnsupportedOpError
from edgeml.ir import Quantization

INVOKES = 6
LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"
NONE, RELU, RELU_N1_TO_1, RELU6, SIGN_BIT = 0, 1, 2, 3, 5


@pytest.fixture(scope="session")
def hybrid_models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "lstm_hybrid_models", M)


def inputs(name: str, shape, n: int, seed: int) -> list:
    """Normal data at three spreads (unit, tiny, large); the fourth input is all zeros (LiteRT skips its
    products)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)
    out = [(rng.standard_normal(tuple(shape)) * (1.0, 0.01, 20.0)[k % 3]).astype(np.float32) for k in range(n)]
    if n > 3:
        out[3][:] = 0.0
    return out


def compare_invokes(model: bytes, name: str, seed: int = 0, varied: bool = True):
    """INVOKES back-to-back invokes (the state carries over in both), then a reset of both and one more."""
    ref, ours = reference(model), edgeml.Interpreter(model)
    xs = inputs(name, ref.get_input_details()[0]["shape"], INVOKES, seed)
    outputs = []
    for x in xs:
        want = run_ref(ref, x)
        np.testing.assert_array_equal(run_ours(ours, x), want)
        outputs.append(want)
    assert not varied or len(np.unique(np.concatenate([o.ravel() for o in outputs]))) > 16, "outputs are degenerate"
    ref.reset_all_variables()
    ours.reset_variables()
    np.testing.assert_array_equal(run_ours(ours, xs[0]), run_ref(ref, xs[0]))


def lstm_ops(graph):
    return [op for op in graph.ops if op.type == LSTM]


# ----- the converter's models ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_models_hold_hybrid_lstms(hybrid_models, name):
    graph = from_tflite(hybrid_models.get(name, "dynamic"))
    ops = lstm_ops(graph)
    assert len(ops) == len(M.SPECS[name].layers), [op.type for op in graph.ops]
    for op in ops:
        assert graph.tensors[op.inputs[0]].dtype == np.float32
        assert graph.tensors[op.inputs[19]].dtype == np.float32 and graph.tensors[op.inputs[19]].is_variable
        assert op.options["asymmetric_quantize_inputs"]
        for position in M.WEIGHT_INPUTS:
            w = graph.tensors[op.inputs[position]]
            assert w.dtype == np.int8 and w.quant.scale.size == 1, (position, w.describe())


def test_converter_quantizes_large_lstms_per_tensor_even_with_per_channel_on(hybrid_models):
    """big28 is the converter's own output (per-channel quantization is on by default), so the file format the
    kernel reads -- one scale per weight tensor, asymmetric inputs -- is the converter's, not the test's."""
    graph = from_tflite(hybrid_models.get("big28", "dynamic"))
    (op,) = lstm_ops(graph)
    scales = [graph.tensors[op.inputs[k]].quant.scale for k in M.WEIGHT_INPUTS]
    assert all(s.size == 1 for s in scales) and len({float(s[0]) for s in scales}) > 1


@pytest.mark.parametrize("asymmetric", [True, False], ids=["asymmetric", "symmetric"])
@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_hybrid_lstm_matches_reference_across_invokes(hybrid_models, name, asymmetric):
    model = hybrid_models.get(name, "dynamic")
    if not asymmetric:
        model = M.edit_lstm_options(model, asymmetric_inputs=False)
    compare_invokes(model, name)


def test_state_persists_until_reset_like_litert(hybrid_models):
    model = hybrid_models.get("seq7", "dynamic")
    ref, ours = reference(model), edgeml.Interpreter(model)
    x = inputs("state", ref.get_input_details()[0]["shape"], 1, 5)[0]
    first, second = run_ref(ref, x), run_ref(ref, x)
    assert np.abs(first - second).max() > 1e-3, "LiteRT's LSTM state should carry over to the next invoke"
    np.testing.assert_array_equal(run_ours(ours, x), first)
    np.testing.assert_array_equal(run_ours(ours, x), second)
    ours.reset_variables()
    np.testing.assert_array_equal(run_ours(ours, x), first)


@pytest.mark.parametrize("name", ["batch3", "odd13"])
def test_time_major(hybrid_models, name):
    """time_major: LiteRT runs all sequences of a step at once (one zero test, one quantized row each, one
    Eigen traversal over all of them)."""
    model = M.edit_lstm_options(hybrid_models.get(name, "dynamic"), time_major=True)
    assert lstm_ops(from_tflite(model))[0].options["time_major"]
    compare_invokes(model, f"{name}-time-major", seed=3)


@pytest.mark.parametrize("name", ["seq7", "odd13"])
@pytest.mark.parametrize("activation", [RELU, RELU_N1_TO_1, RELU6, SIGN_BIT, NONE],
                         ids=["relu", "relu_n1_to_1", "relu6", "sign_bit", "none"])
def test_other_cell_activations(hybrid_models, activation, name):
    """The schema's other fused activations, and NONE, where LiteRT's output step leaves its buffer (the cell
    gate's) unwritten: h = o * g.  (SIGN_BIT makes g 0 or 1, so c >= 0 and h = o * signbit(c) = 0.)"""
    compare_invokes(M.edit_lstm_options(hybrid_models.get(name, "dynamic"), activation=activation), "act",
                    varied=activation != SIGN_BIT)


def test_batch_resize_matches_one_by_one(hybrid_models):
    """Batch 3 re-planned from the file's batch 1: each row equals LiteRT running that sequence alone.  (LiteRT
    itself cannot resize these models: its state tensors keep the file's batch.  With 16 cells every row's gate
    buffers start on a 16-byte boundary, so the Eigen lanes of LiteRT's batch-1 runs are those of batch 3.)"""
    model = hybrid_models.get("seq7", "dynamic")
    ref, ours = reference(model), edgeml.Interpreter(model)
    shape = ref.get_input_details()[0]["shape"]
    x1, x2 = (np.concatenate(inputs("resize", shape, 3, s)[:3]) for s in (0, 1))
    ours.resize_input(0, x1.shape)
    run_ours(ours, x1)
    got = run_ours(ours, x2)
    for b in range(3):
        ref.reset_all_variables()
        run_ref(ref, x1[b:b + 1])
        np.testing.assert_array_equal(got[b:b + 1], run_ref(ref, x2[b:b + 1]))


# Runs sys.argv[2]/NAME on the sequences x_NAME of sys.argv[1] (stateful invokes), saves the outputs to sys.argv[3]
# and prints the ISA path it ran on, then "ok" (also used by test_avx2_paths4.py).
SEQUENCE_RUN = """
import sys, numpy as np
import edgeml
from cython_ops.conv import isa
print(isa())
data = dict(np.load(sys.argv[1]))
out = {}
for key in sorted(k for k in data if k.startswith("x_")):
    name = key[2:]
    ours = edgeml.Interpreter(sys.argv[2] + "/" + name)
    for k in range(data[key].shape[0]):
        ours.set_input(data[key][k])
        ours.invoke()
        out[f"{name}_{k}"] = ours.get_output()
np.savez(sys.argv[3], **out)
print("ok")
"""


def test_scalar_path_gives_the_same_bits(hybrid_models, tmp_path):
    """EDGEML_ISA=scalar (plain C dot products and cell loop) against the default path: identical outputs."""
    xs = {}
    for name in ("seq7", "stack16", "big28"):
        model = M.edit_lstm_options(hybrid_models.get(name, "dynamic"), asymmetric_inputs=name != "stack16")
        (tmp_path / name).write_bytes(model)
        xs[name] = np.stack(inputs(name, reference(model).get_input_details()[0]["shape"], 4, 7))
    np.savez(tmp_path / "x.npz", **{f"x_{k}": v for k, v in xs.items()})
    env = dict(os.environ, EDGEML_ISA="scalar")
    done = subprocess.run([sys.executable, "-c", SEQUENCE_RUN, str(tmp_path / "x.npz"), str(tmp_path),
                           str(tmp_path / "y.npz")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["scalar", "ok"], done.stderr[-3000:]
    scalar = np.load(tmp_path / "y.npz")
    for name, x in xs.items():
        ours = edgeml.Interpreter(str(tmp_path / name))
        for k in range(x.shape[0]):
            np.testing.assert_array_equal(run_ours(ours, x[k]), scalar[f"{name}_{k}"])


# ----- hostile models ------------------------------------------------------------------------------------------

def _edited(model: bytes, edit):
    graph = copy.deepcopy(from_tflite(model))
    edit(graph, lstm_ops(graph)[0])
    return graph


def _weight_quant(position, quant):
    def edit(g, op):
        g.tensors[op.inputs[position]].quant = quant
    return edit


def _float_weights(position):
    def edit(g, op):
        t = g.tensors[op.inputs[position]]
        t.data = t.data.astype(np.float32)
        t.dtype = np.dtype(np.float32)
        t.quant = None
    return edit


def _state_dtype(g, op):
    t = g.tensors[op.inputs[19]]
    t.dtype = np.dtype(np.int16)


def _bias_dtype(g, op):
    t = g.tensors[op.inputs[13]]
    t.data = t.data.astype(np.int32)
    t.dtype = np.dtype(np.int32)


def _activation(value):
    def edit(g, op):
        op.options["fused_activation_function"] = value
    return edit


HOSTILE = [
    ("weights without quantization", _weight_quant(3, None), ModelFormatError),
    ("weights with an empty scale list", _weight_quant(3, Quantization(np.array([]), np.array([]))),
     ModelFormatError),
    ("five scales for 16 rows", _weight_quant(6, Quantization(np.full(5, 0.01), np.zeros(5, np.int64), axis=0)),
     ModelFormatError),
    ("scale zero", _weight_quant(2, Quantization(np.array([0.0]), np.array([0]))), ModelFormatError),
    ("non-zero weight zero point", _weight_quant(2, Quantization(np.array([0.01]), np.array([3]))),
     UnsupportedOpError),
    ("per-channel scales", _weight_quant(7, Quantization(np.full(16, 0.01), np.zeros(16, np.int64), axis=0)),
     UnsupportedOpError),
    ("float and int8 weights mixed", _float_weights(6), UnsupportedOpError),
    ("int16 cell state", _state_dtype, UnsupportedOpError),
    ("int32 gate bias", _bias_dtype, UnsupportedOpError),
    ("fused activation 6, outside the schema", _activation(6), UnsupportedOpError),
]


@pytest.mark.parametrize("case,edit,error", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_hybrid_lstm_is_rejected_at_load(hybrid_models, case, edit, error):
    graph = _edited(hybrid_models.get("seq7", "dynamic"), edit)
    with pytest.raises(error) as info:
        edgeml.Interpreter(graph)
    assert isinstance(info.value, EdgeMLError) and len(str(info.value)) > 20, str(info.value)


def test_per_channel_file_is_refused_because_litert_drops_it(hybrid_models):
    """A real per-channel file: LiteRT's hybrid LSTM reads no scale from it and its products vanish (its output
    equals the same model with all weights zero), so edgeml refuses it instead of disagreeing."""
    model = M.quantize_lstm_weights(hybrid_models.get("seq7", "dynamic"), per_channel=True)
    with pytest.raises(UnsupportedOpError, match="per-channel"):
        edgeml.Interpreter(model)
    graph = from_tflite(model)
    w = graph.tensors[lstm_ops(graph)[0].inputs[1]]
    assert w.quant.scale.size == w.shape[0]
