"""ONNX LSTM / GRU / RNN (float32) against onnxruntime.

Tolerance rtol 1e-5, atol 1e-6: edgeml sums the dot products in k order without FMA and uses its own
polynomial sigmoid / tanh (em_lstm.h); onnxruntime uses MLAS's blocked FMA GEMM and its own approximations, so
the two differ by float rounding (worst seen 4e-7 over these models)."""
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
for cell, extra in [("LSTM", dict(peep=True, clip=0.9)), ("GRU", dict()), ("GRU", dict(lbr=1)), ("RNN", dict())]:
    m, x = recurrent_model(cell, 9, 2, 11, 37, "bidirectional", init=True, seed=3, **extra)
    got = edgeml.Interpreter(m.SerializeToString()).run([x])
    out.append([g.tobytes().hex() for g in (got if isinstance(got, list) else [got])])
print(json.dumps(out))
"""


def test_every_isa_path_agrees():
    """The scalar and AVX2 paths (8-lane polynomials, k-ordered sums, no FMA) compute identical floats; the
    AVX-512 path sums with fused multiply-adds (and split k phases), so it agrees within the float tolerance."""
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


def test_refuses_other_activations():
    model, _ = recurrent_model("LSTM", 4, 1, 3, 5, activations=["Sigmoid", "Relu", "Tanh"])
    e = _error(model)
    assert isinstance(e, edgeml.UnsupportedOpError) and "activations" in str(e)
    model, _ = recurrent_model("RNN", 4, 1, 3, 5)
    from onnx import helper
    model.graph.node[0].attribute.append(helper.make_attribute("activation_alpha", [0.5]))
    assert isinstance(_error(model), edgeml.UnsupportedOpError)


def test_refuses_bad_sequence_lengths_and_shapes():
    from onnx import numpy_helper
    model, _ = recurrent_model("GRU", 4, 2, 3, 5, lens=[4, 5])
    e = _error(model)
    assert isinstance(e, edgeml.UnsupportedOpError) and "sequence_lens" in str(e)
    model, _ = recurrent_model("GRU", 4, 2, 3, 5, lens=[4, 0])
    assert isinstance(_error(model), edgeml.UnsupportedOpError)
    model, _ = recurrent_model("LSTM", 4, 1, 3, 5)
    w = model.graph.initializer[0]
    w.CopyFrom(numpy_helper.from_array(np.zeros((1, 19, 3), np.float32), "W"))      # not 4 * hidden rows
    e = _error(model)
    assert isinstance(e, edgeml.ModelFormatError) and "W" in str(e)
    model, _ = recurrent_model("RNN", 4, 1, 3, 5, direction="sideways")
    assert isinstance(_error(model), edgeml.ModelFormatError)


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
    rewrite, edgeml/train/onnx_recurrent.py; GRU(reset_after=False) is not covered.)"""
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
