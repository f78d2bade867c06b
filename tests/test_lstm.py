"""UNIDIRECTIONAL_SEQUENCE_LSTM from TensorFlow's converter against LiteRT's reference kernels.

int8 (the integer 8x8_16 path) must be bit-identical to `OpResolverType.BUILTIN_REF`; float32 within rtol=1e-5,
atol=1e-6 (LiteRT's float LSTM sums its matrix products in another order).  The h / c state tensors persist
across invokes in LiteRT, so the comparisons run several invokes back to back without a reset, then reset both.
Models (tests/lstm_models.py) are converted once and cached in pytest's cache dir.
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
import lstm_models as M
import model_cache
from litert_reference import reference, run_ours, run_ref
from converters import from_tflite
from edgeml import EdgeMLError, ModelFormatError, UnsupportedOpError
from edgeml.ir import Quantization

RTOL, ATOL = 1e-5, 1e-6
INVOKES = 6
LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"


@pytest.fixture(scope="session")
def lstm_models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "lstm_models", M)


def int8_inputs(name: str, detail: dict, n: int, seed: int) -> list:
    """Half full-range int8, half quantized normal data like the calibration set."""
    rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)
    shape = tuple(detail["shape"])
    scale, zp = detail["quantization"]
    out = []
    for k in range(n):
        if k % 2 == 0:
            out.append(rng.integers(-128, 128, size=shape, dtype=np.int8))
        else:
            v = rng.standard_normal(shape).astype(np.float32) / np.float32(scale)
            out.append(np.clip(np.round(v) + zp, -128, 127).astype(np.int8))
    return out


def float_inputs(name: str, shape, n: int, seed: int) -> list:
    rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)
    return [rng.standard_normal(tuple(shape)).astype(np.float32) for _ in range(n)]


# ----- the converter's models ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", M.KINDS)
@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_models_hold_fused_lstms(lstm_models, name, kind):
    graph = from_tflite(lstm_models.get(name, kind))
    lstms = [op for op in graph.ops if op.type == LSTM]
    spec = M.SPECS[name]
    assert len(lstms) == len(spec.layers) * (2 if spec.bidirectional else 1), [op.type for op in graph.ops]
    if spec.bidirectional:
        assert "REVERSE_V2" in {op.type for op in graph.ops}
    for op in lstms:
        cell = graph.tensors[op.inputs[19]]
        assert cell.is_variable and graph.tensors[op.inputs[18]].is_variable
        assert cell.dtype == (np.int16 if kind == "int8" else np.float32)
        if kind == "int8":
            assert len(op.intermediates) == 5
    if kind == "int8" and name == "fine16":      # the case LiteRT's tanh of the cell state does not cover
        assert min(graph.tensors[op.inputs[19]].quant.scale[0] for op in lstms) < 2.0 ** -15


@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_int8_lstm_is_bit_exact_across_invokes(lstm_models, name):
    model = lstm_models.get(name, "int8")
    ref, ours = reference(model), edgeml.Interpreter(model)
    xs = int8_inputs(name, ref.get_input_details()[0], INVOKES, 0)
    outputs = []
    for x in xs:                                   # no reset in between: the state carries over in both
        want = run_ref(ref, x)
        np.testing.assert_array_equal(run_ours(ours, x), want)
        outputs.append(want)
    assert len(np.unique(np.concatenate([o.ravel() for o in outputs]))) > 8, "outputs are degenerate"
    ref.reset_all_variables()
    ours.reset_variables()
    np.testing.assert_array_equal(run_ours(ours, xs[1]), run_ref(ref, xs[1]))


@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_float_lstm_matches_reference(lstm_models, name):
    model = lstm_models.get(name, "float")
    ref, ours = reference(model), edgeml.Interpreter(model)
    for x in float_inputs(name, ref.get_input_details()[0]["shape"], INVOKES, 1):
        np.testing.assert_allclose(run_ours(ours, x), run_ref(ref, x), rtol=RTOL, atol=ATOL)


def _with_activation(model: bytes, value: int) -> bytes:
    """The model with every LSTM's fused_activation_function byte set to `value` (TensorFlow's converter fuses
    only tanh LSTMs, so other activations come from edited files)."""
    import tflite
    buf = bytearray(model)
    m = tflite.Model.GetRootAs(buf, 0)
    g = m.Subgraphs(0)
    patched = 0
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != tflite.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM:
            continue
        table = op.BuiltinOptions()
        options = tflite.UnidirectionalSequenceLSTMOptions()
        options.Init(table.Bytes, table.Pos)
        offset = options._tab.Offset(4)
        assert offset, "the converter writes the (non-default) tanh activation explicitly"
        buf[options._tab.Pos + offset] = value
        patched += 1
    assert patched
    return bytes(buf)


@pytest.mark.parametrize("activation", [0, 1, 2, 3])
@pytest.mark.parametrize("name", ["seq7", "stack28"])
def test_float_lstm_other_activations_match_reference(lstm_models, name, activation):
    """NONE, RELU, RELU_N1_TO_1 and RELU6 as LiteRT computes them; with NONE its output activation writes
    nothing, so h = o * (the cell gate's scratch) rather than o * c."""
    model = _with_activation(lstm_models.get(name, "float"), activation)
    assert from_tflite(model).ops[0].options["fused_activation_function"] == activation
    ref, ours = reference(model), edgeml.Interpreter(model)
    for x in float_inputs(name, ref.get_input_details()[0]["shape"], INVOKES, 2):
        np.testing.assert_allclose(run_ours(ours, x), run_ref(ref, x), rtol=RTOL, atol=ATOL)


def test_float_lstm_refuses_activation_codes_outside_the_schema(lstm_models):
    """6 is not a TFLite activation (LiteRT silently reads it as NONE); edgeml refuses it."""
    with pytest.raises(UnsupportedOpError, match="activation 6"):
        edgeml.Interpreter(_with_activation(lstm_models.get("seq7", "float"), 6))


def test_state_persists_until_reset_like_litert(lstm_models):
    model = lstm_models.get("seq7", "int8")
    ref, ours = reference(model), edgeml.Interpreter(model)
    x = int8_inputs("state", ref.get_input_details()[0], 1, 5)[0]
    first, second = run_ref(ref, x), run_ref(ref, x)
    assert np.any(first != second), "LiteRT's LSTM state should carry over to the next invoke"
    np.testing.assert_array_equal(run_ours(ours, x), first)
    np.testing.assert_array_equal(run_ours(ours, x), second)
    ours.reset_variables()
    np.testing.assert_array_equal(run_ours(ours, x), first)


@pytest.mark.parametrize("kind", M.KINDS)
def test_batch_of_sequences_matches_one_by_one(lstm_models, kind):
    """Batch 3 (re-planned from the file's batch 1): each row equals LiteRT running that sequence alone, and the
    per-row state carries to the next invoke."""
    model = lstm_models.get("stack28", kind)
    ref, ours = reference(model), edgeml.Interpreter(model)
    detail = ref.get_input_details()[0]
    make = (lambda s: np.concatenate(int8_inputs("batch", detail, 3, s))) if kind == "int8" else \
        (lambda s: np.concatenate(float_inputs("batch", detail["shape"], 3, s)))
    x1, x2 = make(0), make(1)
    ours.resize_input(0, x1.shape)
    run_ours(ours, x1)
    got = run_ours(ours, x2)
    for b in range(3):
        ref.reset_all_variables()
        run_ref(ref, x1[b:b + 1])
        want = run_ref(ref, x2[b:b + 1])
        if kind == "int8":
            np.testing.assert_array_equal(got[b:b + 1], want)
        else:
            np.testing.assert_allclose(got[b:b + 1], want, rtol=RTOL, atol=ATOL)


def test_time_major_layout(lstm_models):
    """The same op with time_major set (the IR edited: input [T, B, F]) gives LiteRT's batch-major results."""
    model = lstm_models.get("seq7", "int8")
    graph = from_tflite(model)
    op = graph.ops[0]
    op.options["time_major"] = True
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    x_t.shape, y_t.shape = (7, 1, 3), (7, 1, 16)
    ours = edgeml.Interpreter(graph)
    ours.resize_input(0, (7, 2, 3))
    ref = reference(model)
    xs = int8_inputs("tm", ref.get_input_details()[0], 2, 2)
    got = run_ours(ours, np.concatenate(xs).transpose(1, 0, 2).copy())
    for b in range(2):
        ref.reset_all_variables()
        np.testing.assert_array_equal(got[:, b], run_ref(ref, xs[b])[0])


ISA_CHECK = """
import sys, numpy as np
import edgeml
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from cython_ops.conv import isa
assert isa() == sys.argv[1], isa()
for path in sys.argv[2:]:
    ours = edgeml.Interpreter(path)
    ref = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    d, o = ref.get_input_details()[0], ref.get_output_details()[0]
    rng = np.random.default_rng(4)
    for _ in range(4):
        if d["dtype"] == np.int8:
            x = rng.integers(-128, 128, size=tuple(d["shape"]), dtype=np.int8)
        else:
            x = rng.standard_normal(tuple(d["shape"])).astype(np.float32)
        ref.set_tensor(d["index"], x); ref.invoke(); ours.set_input(x); ours.invoke()
        if d["dtype"] == np.int8:
            np.testing.assert_array_equal(ours.get_output(), ref.get_tensor(o["index"]))
        else:
            np.testing.assert_allclose(ours.get_output(), ref.get_tensor(o["index"]), rtol=1e-5, atol=1e-6)
print("ok")
"""


def test_scalar_path_is_bit_exact(lstm_models):
    """The portable path (EDGEML_ISA=scalar): int8 bit-exact, float within the float tolerance."""
    pytest.importorskip("ai_edge_litert.interpreter")
    paths = []
    for name, kind in (("seq7", "int8"), ("stack28", "int8"), ("fine16", "int8"), ("stack28", "float")):
        lstm_models.get(name, kind)
        paths.append(str(lstm_models.directory / f"{name}.{kind}.tflite"))
    env = dict(os.environ, EDGEML_ISA="scalar")
    done = subprocess.run([sys.executable, "-c", ISA_CHECK, "scalar"] + paths, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.parametrize("lanes", [32, 16])
@pytest.mark.parametrize("kind", ["logistic", "tanh"])
@pytest.mark.parametrize("integer_bits", range(7))
def test_vector_gemmlowp_activations_equal_the_scalar_ones_on_every_input(kind, integer_bits, lanes):
    """The AVX-512 kernel computes gemmlowp's int16 logistic / tanh 32 (or, for layers of up to 16 cells, 16)
    lanes at a time (vpmulhrsw and saturating adds in place of the scalar helpers); over all 65536 inputs it
    must give the scalar functions' table."""
    from cython_ops.rnn import activation_table, activation_table_simd
    simd = activation_table_simd(kind, integer_bits, lanes)
    if simd is None:
        pytest.skip("no AVX-512 VNNI on this CPU: the vector forms do not run here")
    np.testing.assert_array_equal(simd[:65536], activation_table(kind, integer_bits)[:65536])


@pytest.mark.parametrize("kind,ulps", [("sigmoid", 3.0), ("tanh", 5.0)])
def test_float_activations_are_accurate(kind, ulps):
    """The float recurrent kernels' sigmoid and tanh on this machine's path (on AVX-512: fused multiply-adds,
    vscalefps and a refined reciprocal estimate for sigmoid, a rational approximation for tanh) against float64,
    on every step of 2^-12 in [-20, 20] and at the extremes: sigmoid within 3 ulp of the exact value (measured
    2.4 on every path), tanh within 5 (measured 1.3 on the portable paths, 4.8 on AVX-512), and within 1e-37
    where the exact value is below 1e-30 (sigmoid of very negative inputs); never NaN."""
    from cython_ops.rnn import float_activation
    x = np.concatenate([np.arange(-20 * 4096, 20 * 4096 + 1) / 4096,
                        [-1e30, -100, -88.5, -87.5, -50, -30, 30, 50, 87.5, 88.5, 100, 1e30, -np.inf, np.inf,
                         1e-30, -1e-30, 1e-40, 0.0, -0.0]]).astype(np.float32)
    with np.errstate(over="ignore"):
        exact = 1 / (1 + np.exp(-x.astype(np.float64))) if kind == "sigmoid" else np.tanh(x.astype(np.float64))
    got = float_activation(kind, x).astype(np.float64)
    assert not np.isnan(got).any()
    err = np.abs(got - exact)
    normal = np.abs(exact) > 1e-30
    err_ulps = err[normal] / np.spacing(np.abs(exact[normal]).astype(np.float32)).astype(np.float64)
    assert err_ulps.max() <= ulps, (err_ulps.max(), x[normal][np.argmax(err_ulps)])
    assert err[~normal].max(initial=0.0) <= 1e-37


# ----- hostile models ------------------------------------------------------------------------------------------

def _edited(model: bytes, edit):
    graph = copy.deepcopy(from_tflite(model))
    edit(graph, graph.ops[0])
    return graph


def _set_input(position, value):
    def edit(g, op):
        op.inputs[position] = value
    return edit


def _reshape_weights(position, shape):
    def edit(g, op):
        t = g.tensors[op.inputs[position]]
        t.data = np.zeros(shape, t.dtype)
        t.shape = shape
    return edit


def _intermediate_quant(quant):
    def edit(g, op):
        g.tensors[op.intermediates[4]].quant = quant
    return edit


def _drop_intermediates(g, op):
    op.intermediates = op.intermediates[:4]


def _cell_scale(scale):
    def edit(g, op):
        g.tensors[op.inputs[19]].quant = Quantization(np.array([scale]), np.array([0]))
    return edit


def _not_variable(g, op):
    g.tensors[op.inputs[18]].is_variable = False


def _cifg(g, op):
    op.inputs[1] = op.inputs[5] = -1


def _peephole(g, op):
    op.inputs[10] = op.inputs[13]


def _short_inputs(g, op):
    op.inputs = op.inputs[:19]


HOSTILE = [
    ("missing input-to-forget weights", _set_input(2, -1), ModelFormatError),
    ("missing forget gate bias", _set_input(13, -1), ModelFormatError),
    ("missing cell state", _set_input(19, -1), ModelFormatError),
    ("19 inputs", _short_inputs, ModelFormatError),
    ("input weights with a wrong depth", _reshape_weights(3, (16, 4)), ModelFormatError),
    ("recurrent weights with a wrong width", _reshape_weights(7, (16, 15)), ModelFormatError),
    ("bias of the wrong length", _reshape_weights(14, (15,)), ModelFormatError),
    ("hidden intermediate without quantization", _intermediate_quant(None), ModelFormatError),
    ("hidden intermediate with scale 0", _intermediate_quant(Quantization(np.array([0.0]), np.array([0]))),
     ModelFormatError),
    ("four intermediates", _drop_intermediates, ModelFormatError),
    ("cell scale not a power of two", _cell_scale(3e-5), ModelFormatError),
    ("cell scale too coarse for the tanh", _cell_scale(2.0 ** -3), UnsupportedOpError),
    ("state that is not a variable", _not_variable, UnsupportedOpError),
    ("CIFG", _cifg, UnsupportedOpError),
    ("peephole", _peephole, UnsupportedOpError),
]


@pytest.mark.parametrize("case,edit,error", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_lstm_is_rejected_at_load(lstm_models, case, edit, error):
    graph = _edited(lstm_models.get("seq7", "int8"), edit)
    with pytest.raises(error) as info:
        edgeml.Interpreter(graph)
    assert isinstance(info.value, EdgeMLError) and len(str(info.value)) > 20, str(info.value)


def _intermediates_vector(model: bytes) -> tuple[int, int]:
    """(byte position of the first LSTM op's intermediates vector data, its length field position)."""
    import tflite
    op = tflite.Model.GetRootAs(model, 0).Subgraphs(0).Operators(0)
    field = op._tab.Offset(20)                  # Operator.intermediates
    assert field, "the op has no intermediates vector"
    start = op._tab.Vector(field)
    return start, start - 4


@pytest.mark.parametrize("patch,expected", [("index", "intermediate refers to tensor 99999"),
                                            ("length", "intermediates claims")])
def test_hostile_intermediates_in_the_file(lstm_models, patch, expected):
    import struct
    model = bytearray(lstm_models.get("seq7", "int8"))
    start, length_pos = _intermediates_vector(bytes(model))
    if patch == "index":
        model[start:start + 4] = struct.pack("<i", 99999)
    else:
        model[length_pos:length_pos + 4] = struct.pack("<i", 1 << 28)
    with pytest.raises(ModelFormatError, match=expected):
        edgeml.Interpreter(bytes(model))
