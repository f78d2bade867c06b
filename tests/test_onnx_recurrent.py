"""ONNX LSTM / GRU / RNN (float32) against onnxruntime.

Tolerance rtol 1e-5, atol 1e-6: edgeml sums the dot products in k order without FMA and uses its own
polynomial sigmoid / tanh (em_lstm_f32.h); onnxruntime uses MLAS's blocked FMA GEMM and its own approximations, so
the two differ by float rounding (worst seen 5e-7 over these models, also with the other activations: those
run element by element here, with libm expf / logf for Elu / Softplus as onnxruntime)."""
import json
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

import edgeml
from tests.onnx_rnn_models import ort_reference, recurrent_model

RTOL, ATOL = 1e-5, 1e-6
SIZES = [(5, 1, 3, 4), (7, 2, 10, 17), (12, 3, 16, 64)]
EXTRAS = [dict(), dict(bias=False), dict(init=True), dict(lens="ragged"), dict(clip=0.7), dict(outs=(0, 1, 1)),
          dict(outs=(1, 0, 0))]
CELL_EXTRAS = {"LSTM": [dict(peep=True), dict(input_forget=1), dict(peep=True, init=True, clip=0.5)],
               "GRU": [dict(lbr=1), dict(lbr=1, init=True, lens="ragged")], "RNN": []}


def _cases():
    cases = []
    for cell in ("LSTM", "GRU", "RNN"):
        for direction in ("forward", "reverse", "bidirectional"):
            for layout in (0, 1):
                for k, extra in enumerate(EXTRAS + CELL_EXTRAS[cell]):
                    size = SIZES[(k + layout) % len(SIZES)]
                    cases.append((cell, direction, layout, size, extra))
    return cases


def _run(model, x) -> list:
    got = edgeml.Interpreter(model.SerializeToString()).run([x])
    return got if isinstance(got, list) else [got]


@pytest.mark.parametrize("cell,direction,layout,size,extra", _cases(),
                         ids=lambda v: str(v).replace(" ", "") if not isinstance(v, str) else v)
def test_matches_onnxruntime(cell, direction, layout, size, extra):
    T, B, F, H = size
    extra = dict(extra)
    if extra.get("lens") == "ragged":
        extra["lens"] = [max(1, T - 2 * b) for b in range(B)]
    model, x = recurrent_model(cell, T, B, F, H, direction, layout, seed=zlib.crc32(f"{cell}{direction}{layout}{size}".encode()) % 1000,
                               **extra)
    ref = ort_reference(model, x)
    got = _run(model, x)
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL)


def test_explicit_default_activations_and_later_opsets():
    model, x = recurrent_model("GRU", 6, 1, 5, 8, "bidirectional", activations=["Sigmoid", "Tanh"] * 2, opset=22)
    for g, r in zip(_run(model, x), ort_reference(model, x)):
        np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL)


_ISA_SCRIPT = """
import json, sys, numpy as np, edgeml
sys.path.insert(0, {root!r})
from tests.onnx_rnn_models import recurrent_model
out = []
for cell, extra in [("LSTM", dict()), ("LSTM", dict(peep=True, clip=0.9)), ("GRU", dict()), ("GRU", dict(lbr=1)), ("RNN", dict()),
                    ("LSTM", dict(activations=["HardSigmoid", "Elu", "Softsign", "Tanh", "Softplus", "Sigmoid"])),
                    ("GRU", dict(activations=["Sigmoid", "ScaledTanh", "Tanh", "Relu"], alpha=[0.9], beta=[1.1]))]:
    m, x = recurrent_model(cell, 9, 2, 11, 37, "bidirectional", init=True, seed=3, **extra)
    got = edgeml.Interpreter(m.SerializeToString()).run([x])
    out.append([g.tobytes().hex() for g in (got if isinstance(got, list) else [got])])
print(json.dumps(out))
"""


def test_every_isa_path_agrees():
    """The scalar and AVX2 paths (8-lane polynomials, k-ordered sums, no FMA) compute identical floats, with
    default and other activations; the AVX-512 path sums with fused multiply-adds (and split k phases), so it
    agrees within the float tolerance."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = {}
    for isa in ("scalar", "avx2", "auto"):
        env = dict(os.environ, EDGEML_ISA=isa) if isa != "auto" else {k: v for k, v in os.environ.items()
                                                                          if k != "EDGEML_ISA"}
        proc = subprocess.run([sys.executable, "-c", _ISA_SCRIPT.format(root=root)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[isa] = [[np.frombuffer(bytes.fromhex(h), np.float32) for h in case]
                        for case in json.loads(proc.stdout.strip().splitlines()[-1])]
    for case_scalar, case_avx2, case_auto in zip(results["scalar"], results["avx2"], results["auto"]):
        for a, b, c in zip(case_scalar, case_avx2, case_auto):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(c, a, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("layout", [0, 1])
def test_wide_lstm_matches_onnxruntime(layout):
    """130 units, both directions: on AVX-512, nine 16-unit blocks of em_lstm_fstep_avx512 (264 KB of recurrent
    weights per direction, far more than L1), the last block with two units."""
    model, x = recurrent_model("LSTM", 6, 2, 9, 130, "bidirectional", layout, init=True, seed=5)
    _compare(model, x)


def test_state_does_not_persist_between_runs():
    model, x = recurrent_model("LSTM", 4, 1, 3, 5)
    it = edgeml.Interpreter(model.SerializeToString())
    first = [a.copy() for a in it.run([x])]
    second = it.run([x])
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def _error(model) -> Exception:
    with pytest.raises(edgeml.EdgeMLError) as info:
        edgeml.Interpreter(model.SerializeToString())
    return info.value


ACTIVATIONS = ["Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid",
               "Elu", "Softsign", "Softplus"]
DEFAULT_NAMES = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


def _activation_cases():
    """Every activation in every function slot of every cell (GRU with both linear_before_reset), alternately
    with explicit alpha / beta and with onnxruntime's defaults (Affine / ScaledTanh then give 0: still its
    semantics)."""
    cases = []
    for cell, lbr in (("LSTM", 0), ("GRU", 0), ("GRU", 1), ("RNN", 0)):
        for slot in range(len(DEFAULT_NAMES[cell])):
            for k, name in enumerate(ACTIVATIONS):
                names = list(DEFAULT_NAMES[cell])
                names[slot] = name
                explicit = (k + slot) % 2 == 0
                cases.append((cell, lbr, names, [0.7] if explicit else None, [0.3] if explicit else None))
    return cases


def _compare(model, x, lens=None, rtol=RTOL, atol=ATOL):
    ref = ort_reference(model, x, lens)
    got = _run(model, x if lens is None else [x, np.asarray(lens, np.int32)])
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, r, rtol=rtol, atol=atol)


@pytest.mark.parametrize("cell,lbr,names,alpha,beta", _activation_cases(), ids=str)
def test_every_activation_matches_onnxruntime(cell, lbr, names, alpha, beta):
    model, x = recurrent_model(cell, 6, 2, 5, 9, "forward", init=True, lbr=lbr, activations=names, alpha=alpha,
                               beta=beta, seed=zlib.crc32(f"{cell}{names}".encode()) % 1000)
    _compare(model, x)


PER_DIRECTION = [
    # LSTM: alpha / beta consumed in order across both directions: HardSigmoid (0.3, 0.45), Elu 0.8,
    # LeakyRelu 0.05, ScaledTanh (0.9, 0.7), Affine (alpha list exhausted: 0, beta 0.1)
    ("LSTM", 0, ["HardSigmoid", "Elu", "Softsign", "LeakyRelu", "ScaledTanh", "Affine"], [0.3, 0.8, 0.05, 0.9],
     [0.45, 0.7, 0.1], dict()),
    ("LSTM", 0, ["Sigmoid", "Relu", "Tanh", "Tanh", "Softplus", "Softsign"], None, None,
     dict(peep=True, clip=0.6, layout=1, lens="ragged")),
    ("LSTM", 0, ["HardSigmoid", "Tanh", "ThresholdedRelu", "Sigmoid", "Tanh", "Tanh"], [0.25], None,
     dict(input_forget=1)),
    ("GRU", 0, ["Sigmoid", "Relu", "HardSigmoid", "ScaledTanh"], [0.2, 1.5], [0.4, 0.6], dict(clip=0.8)),
    ("GRU", 1, ["HardSigmoid", "Softsign", "Sigmoid", "Elu"], None, None, dict(layout=1, lens="ragged")),
    # RNN: consumed in order as well (LeakyRelu reads 0.2; onnxruntime 1.32)
    ("RNN", 0, ["Relu", "LeakyRelu"], [0.2, 0.1], None, dict()),
    ("RNN", 0, ["Softsign", "ThresholdedRelu"], [1.0, 0.3], [0.5, 0.5], dict(layout=1, clip=0.9)),
    ("RNN", 0, ["Affine", "ScaledTanh"], [0.8, 1.3], [0.1, 0.9], dict(lens="ragged")),
]


@pytest.mark.parametrize("cell,lbr,names,alpha,beta,extra", PER_DIRECTION, ids=str)
def test_per_direction_activations_match_onnxruntime(cell, lbr, names, alpha, beta, extra):
    extra = dict(extra)
    T, B = 7, 3
    if extra.get("lens") == "ragged":
        extra["lens"] = [T, 2, 5]
    model, x = recurrent_model(cell, T, B, 4, 10, "bidirectional", init=True, lbr=lbr, activations=names,
                               alpha=alpha, beta=beta, seed=5, **extra)
    _compare(model, x)


def test_rnn_reads_the_first_of_two_activations_for_one_direction():
    """onnxruntime takes the first name when a one-direction RNN lists two (the ONNX default lists Tanh twice)."""
    model, x = recurrent_model("RNN", 5, 1, 3, 6, activations=["Relu", "Tanh"], seed=2)
    _compare(model, x)


def test_lstm_and_gru_read_names_in_any_case():
    """onnxruntime lower-cases LSTM / GRU activation names (RNN's must be spelt as ONNX spells them)."""
    for cell, names in (("LSTM", ["sigmoid", "RELU", "tanh"]), ("GRU", ["HARDSIGMOID", "softsign"])):
        model, x = recurrent_model(cell, 5, 2, 3, 6, activations=names, seed=4)
        _compare(model, x)


def test_refuses_activations_onnxruntime_refuses():
    for cell, names, alpha in (("LSTM", ["Sigmoid", "Swish", "Tanh"], None), ("GRU", ["Sigmoid"], None),
                               ("LSTM", ["Sigmoid", "Tanh"] * 2, None), ("RNN", ["relu"], None),
                               ("RNN", ["Tanh", "Relu", "Tanh"], None)):
        model, _ = recurrent_model(cell, 4, 1, 3, 5, activations=names)
        e = _error(model)
        assert isinstance(e, edgeml.UnsupportedOpError) and "activations" in str(e), e


def test_refuses_bad_constant_sequence_lengths_and_shapes():
    from onnx import numpy_helper
    model, _ = recurrent_model("GRU", 4, 2, 3, 5, lens=[4, 5])
    e = _error(model)
    assert isinstance(e, edgeml.ModelFormatError) and "sequence_lens" in str(e)
    model, _ = recurrent_model("GRU", 4, 2, 3, 5, lens=[4, -1])
    assert isinstance(_error(model), edgeml.ModelFormatError)
    model, _ = recurrent_model("LSTM", 4, 1, 3, 5)
    w = model.graph.initializer[0]
    w.CopyFrom(numpy_helper.from_array(np.zeros((1, 19, 3), np.float32), "W"))      # not 4 * hidden rows
    e = _error(model)
    assert isinstance(e, edgeml.ModelFormatError) and "W" in str(e)
    model, _ = recurrent_model("RNN", 4, 1, 3, 5, direction="sideways")
    assert isinstance(_error(model), edgeml.ModelFormatError)


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_zero_constant_sequence_lengths_match_onnxruntime(cell):
    """onnxruntime accepts length 0: zeros in Y, Y_h and Y_c, whatever initial_h / initial_c hold."""
    for direction in ("forward", "bidirectional"):
        model, x = recurrent_model(cell, 5, 3, 4, 6, direction, init=True, lens=[0, 5, 2], seed=8)
        _compare(model, x)


LENGTHS = [[7, 7, 7, 7], [1, 7, 0, 4], [3, 0, 0, 6], [0, 0, 0, 0]]


@pytest.mark.parametrize("cell,direction,layout", [(c, d, l) for c in ("LSTM", "GRU", "RNN")
                                                   for d in ("forward", "reverse", "bidirectional") for l in (0, 1)])
def test_sequence_lens_as_a_graph_input(cell, direction, layout):
    """sequence_lens fed at run time: one loaded model, several length vectors, each as onnxruntime; a length
    outside 0..T raises InputError at invoke (the kernel writes zeros and never reads or writes past its
    tensors) and the next good run is right again."""
    T, B = 7, 4
    model, x = recurrent_model(cell, T, B, 5, 8, direction, layout, init=True, lbr=int(cell == "GRU"),
                               lens_input=True, seed=zlib.crc32(f"{cell}{direction}{layout}".encode()) % 1000)
    it = edgeml.Interpreter(model.SerializeToString())
    for lens in LENGTHS + [[-1, 3, 3, 3], [2, T + 1, 3, 3], [np.iinfo(np.int32).min, 1, 1, 1]] + LENGTHS[1:2]:
        lens = np.array(lens, np.int32)
        if np.all((lens >= 0) & (lens <= T)):
            got = it.run([x, lens])
            for g, r in zip(got, ort_reference(model, x, lens)):
                np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL)
        else:
            with pytest.raises(edgeml.InputError, match="sequence_lens"):
                it.run([x, lens])
            assert all(not np.any(it.get_output(k)) for k in range(len(model.graph.output)))


def test_sequence_lens_graph_input_must_be_int32_of_batch_shape():
    from onnx import TensorProto, helper
    model, _ = recurrent_model("GRU", 4, 2, 3, 5, lens_input=True)
    model.graph.input[1].CopyFrom(helper.make_tensor_value_info("L", TensorProto.INT32, (3,)))
    e = _error(model)
    assert isinstance(e, edgeml.ModelFormatError) and "sequence_lens" in str(e)
    model, x = recurrent_model("GRU", 4, 2, 3, 5, lens_input=True)
    with pytest.raises(edgeml.InputError):
        edgeml.Interpreter(model.SerializeToString()).run([x, np.array([4, 4], np.int64)])
    model.graph.node.append(helper.make_node("Relu", ["L"], ["L2"]))        # int32 used elsewhere too: computed
    model.graph.output.append(helper.make_tensor_value_info("L2", TensorProto.INT32, (2,)))
    outs = edgeml.Interpreter(model.SerializeToString()).run([x, np.array([4, 2], np.int32)])
    np.testing.assert_array_equal(outs[-1], np.array([4, 2], np.int32))


def test_refuses_non_constant_weights():
    from onnx import TensorProto, helper
    model, _ = recurrent_model("RNN", 4, 1, 3, 5)
    del model.graph.initializer[1]                                                 # R becomes a graph input
    model.graph.input.append(helper.make_tensor_value_info("R", TensorProto.FLOAT, [1, 5, 5]))
    e = _error(model)
    assert isinstance(e, edgeml.UnsupportedOpError) and "constant" in str(e)


def test_wrong_input_shape_is_an_input_error():
    model, x = recurrent_model("GRU", 4, 1, 3, 5)
    it = edgeml.Interpreter(model.SerializeToString())
    with pytest.raises(edgeml.InputError):
        it.run([x[:, :, :2].copy()])


def test_node_cases_of_the_recurrent_ops_are_collected():
    """tests/test_onnx_backend.py runs onnx's node cases of every supported op: make sure these are among them."""
    from tests.onnx_backend import candidate_cases
    names = {c.name for c in candidate_cases()}
    recurrent = {n for n in names if n.startswith(("test_lstm", "test_gru", "test_rnn", "test_simple_rnn"))}
    assert len(recurrent) >= 18, sorted(recurrent)


KERAS_CASES = [("LSTM", False), ("LSTM", True), ("GRU", False), ("GRU", True), ("BiLSTM", False), ("Stacked", True),
               ("SimpleRNN", False), ("SimpleRNN", True)]


@pytest.fixture(scope="module")
def keras_onnx():
    """tf2onnx conversions (from_keras, batch 1) of small seeded Keras recurrent models, with Keras's outputs.
    (tf2onnx turns SimpleRNN and GRU(reset_after=False) into Loop graphs; SimpleRNN goes through edgeml's GRU-twin
    rewrite, edgeml/train/onnx_recurrent.py; GRU(reset_after=False) is covered by test_onnx_recurrent_export.py.)"""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("tf_keras")
    tf2onnx = pytest.importorskip("tf2onnx")
    out = {}
    for kind, rs in KERAS_CASES:
        keras.utils.set_random_seed(7)
        L = keras.layers
        if kind == "BiLSTM":
            body = [L.Bidirectional(L.LSTM(12, return_sequences=rs))]
        elif kind == "Stacked":
            body = [L.GRU(16, return_sequences=True), L.LSTM(10, return_sequences=rs)]
        else:
            body = [getattr(L, kind)(20, return_sequences=rs)]
        m = keras.Sequential([keras.Input((15, 6), batch_size=1)] + body + [L.Dense(3)])
        simple = []
        if kind == "SimpleRNN":        # edgeml's export route: a GRU twin, its GRU node rewritten as an ONNX RNN
            from edgeml.train.onnx_recurrent import _gru_nodes_to_rnn, _gru_twin
            convert, simple = _gru_twin(m)
        else:
            convert = m
        proto, _ = tf2onnx.convert.from_keras(convert, input_signature=(tf.TensorSpec((1, 15, 6), tf.float32,
                                                                                      name="x"),), opset=15)
        if simple:
            _gru_nodes_to_rnn(proto, simple)
        x = np.random.default_rng(1).standard_normal((1, 15, 6)).astype(np.float32)
        out[(kind, rs)] = (proto, x, m(x).numpy())
    keras.backend.clear_session()      # fresh layer-name counters: other tests match auto-generated layer names
    return out


@pytest.mark.parametrize("kind,return_sequences", KERAS_CASES)
def test_tf2onnx_keras_conversions(keras_onnx, kind, return_sequences):
    import onnxruntime as ort
    proto, x, keras_out = keras_onnx[(kind, return_sequences)]
    ops = {n.op_type for n in proto.graph.node}
    assert ops & {"LSTM", "GRU", "RNN"}, ops
    assert kind != "SimpleRNN" or ops & {"RNN", "GRU"} == {"RNN"}
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = edgeml.Interpreter(proto.SerializeToString()).run([x])
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got, keras_out, rtol=RTOL, atol=ATOL)


def test_initial_state_as_a_graph_input():
    """initial_h / initial_c fed at run time (not constants) are read by the kernel on every invoke."""
    from onnx import TensorProto, helper, numpy_helper
    model, x = recurrent_model("LSTM", 6, 2, 4, 7, "bidirectional", init=True, seed=11)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for name in ("h0", "c0"):
        idx = [k for k, t in enumerate(model.graph.initializer) if t.name == name][0]
        del model.graph.initializer[idx]
        model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, inits[name].shape))
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    it = edgeml.Interpreter(model.SerializeToString())
    for scale in (1.0, -0.5):
        feeds = {"X": x, "h0": inits["h0"] * scale, "c0": inits["c0"] * scale}
        ref = sess.run(None, feeds)
        got = it.run([feeds["X"], feeds["h0"], feeds["c0"]])
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL)
