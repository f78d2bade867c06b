"""int8 ONNX LSTM / GRU / RNN (QDQ around X, W and R) in edgeml's int8 kernel, against onnxruntime on the same
QDQ model (which computes in float on the dequantized X, W, R).

Tolerance: atol 2e-2 on Y / Y_h / Y_c.  edgeml's scheme (edgeml/runtime/ops/onnx_rnn.py) also quantizes the hidden
state to int8 (step 1/127) before each recurrent product; that rounding (<= 1/254 per element and step, damped by
the gates) is the whole difference - the int8 x int8 sums are exact; the largest seen over these models is 8e-3
(HardSigmoid / Softsign / ScaledTanh cells included)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import edgeml
from edgeml.optimize.quantize_onnx_rnn import quantize_recurrent
from tests.onnx_rnn_models import ort_reference, recurrent_model

ATOL = 2e-2
FLOAT_RTOL, FLOAT_ATOL = 1e-5, 1e-6      # the float kernel on the dequantized values (tests/test_onnx_recurrent.py)
CASES = [(cell, direction, extra, per_channel)
         for cell in ("LSTM", "GRU", "RNN")
         for direction in ("forward", "reverse", "bidirectional")
         for extra in ([dict(), dict(layout=1, init=True)]
                       + ([dict(lbr=1)] if cell == "GRU" else [])
                       + ([dict(peep=True, lens="ragged")] if cell == "LSTM" else []))
         for per_channel in (True, False)]


def _quantized(cell, direction, extra, per_channel, T=16, B=2, F=12, H=24, seed=4):
    extra = dict(extra)
    if extra.get("lens") == "ragged":
        extra["lens"] = [T, T - 5]
    # activation attributes go on after quantizing: the quantizer's calibration (onnx.reference) knows few
    acts = {k: extra.pop(k) for k in ("activations", "alpha", "beta") if k in extra}
    model, x = recurrent_model(cell, T, B, F, H, direction, seed=seed, **extra)
    rng = np.random.default_rng(seed + 1)
    calibration = [rng.uniform(-1, 1, x.shape).astype(np.float32) for _ in range(4)]
    q = quantize_recurrent(model, calibration, per_channel=per_channel)
    if acts:
        from onnx import helper
        node = [n for n in q.graph.node if n.op_type == cell][0]
        for key, name in (("activations", "activations"), ("alpha", "activation_alpha"), ("beta", "activation_beta")):
            if key in acts:
                node.attribute.append(helper.make_attribute(name, acts[key]))
    return model, q, x


def _kernels(model) -> list:
    it = edgeml.Interpreter(model.SerializeToString())
    return [s.kernel for s in it._plan.steps]


@pytest.mark.parametrize("cell,direction,extra,per_channel", CASES, ids=str)
def test_int8_matches_the_dequantized_float_model(cell, direction, extra, per_channel):
    _, q, x = _quantized(cell, direction, extra, per_channel)
    assert "onnx_rnn_s8" in _kernels(q)
    got = edgeml.Interpreter(q.SerializeToString()).run([x])
    got = got if isinstance(got, list) else [got]
    ref = ort_reference(q, x)
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=0, atol=ATOL)


def test_quantizer_output_form():
    from onnx import numpy_helper
    model, q, _ = _quantized("GRU", "bidirectional", {}, True)
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("QuantizeLinear") == 1 and ops.count("DequantizeLinear") == 3 and "GRU" in ops
    ints = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    w = ints["/W_quantized"] if "/W_quantized" in ints else [v for k, v in ints.items() if k.endswith("W_quantized")][0]
    assert w.dtype == np.int8 and np.abs(w).max() == 127
    wf = numpy_helper.to_array([t for t in model.graph.initializer if t.name == "W"][0])
    scale = [v for k, v in ints.items() if k.endswith("W_scale")][0]
    np.testing.assert_allclose(w * scale.reshape(1, -1, 1), wf, atol=float(scale.max()) / 2 + 1e-7)


def test_asymmetric_weights_run_in_float():
    """W with a nonzero zero point is outside the int8 scheme: the op runs on the dequantized floats."""
    from onnx import numpy_helper
    _, q, x = _quantized("RNN", "forward", {}, False)
    for t in q.graph.initializer:
        if t.name.endswith("W_zero_point"):
            t.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), t.name))
    assert "onnx_rnn_f32" in _kernels(q) and "onnx_rnn_s8" not in _kernels(q)
    got = edgeml.Interpreter(q.SerializeToString()).run([x])
    for g, r in zip(got, ort_reference(q, x)):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


_ISA_SCRIPT = """
import json, sys, numpy as np, edgeml
sys.path.insert(0, {root!r})
from tests.test_onnx_recurrent_int8 import _quantized
out = []
for cell, extra in [("LSTM", dict(peep=True)), ("LSTM", dict()), ("GRU", dict()), ("GRU", dict(lbr=1)), ("RNN", dict())]:
    _, q, x = _quantized(cell, "bidirectional", extra, True, T=7, F=13, H=37)
    got = edgeml.Interpreter(q.SerializeToString()).run([x])
    out.append([g.tobytes().hex() for g in got])
print(json.dumps(out))
"""


def test_every_isa_path_gives_the_same_bits():
    """int8 sums, vector state quantization / dequantization and the fused LSTM cell give the scalar path's bits
    (H = 37: vector tails)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = []
    for isa in ("scalar", "auto"):
        env = {k: v for k, v in os.environ.items() if k != "EDGEML_ISA"}
        if isa != "auto":
            env["EDGEML_ISA"] = isa
        proc = subprocess.run([sys.executable, "-c", _ISA_SCRIPT.format(root=root)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1]


def test_quantizer_refuses_models_without_recurrent_nodes():
    from tests.onnx_models import make_model
    import onnx
    from onnx import helper
    m = onnx.load_model_from_string(make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", np.float32, [2])],
                                               [("y", np.float32, [2])]))
    with pytest.raises(ValueError):
        quantize_recurrent(m, [np.zeros(2, np.float32)])


def test_uint8_input_quantization():
    """X quantized to uint8 (zero point + 128, same real values) runs the int8 kernel with the same results."""
    from onnx import numpy_helper
    _, q, x = _quantized("GRU", "bidirectional", dict(lbr=1), True)
    got_int8 = edgeml.Interpreter(q.SerializeToString()).run([x])
    for t in q.graph.initializer:
        if t.name.endswith("q_zero_point"):
            zp = int(numpy_helper.to_array(t))
            t.CopyFrom(numpy_helper.from_array(np.array(zp + 128, np.uint8), t.name))
    assert "onnx_rnn_s8" in _kernels(q)
    got = edgeml.Interpreter(q.SerializeToString()).run([x])
    for g, r, a in zip(got, ort_reference(q, x), got_int8):
        np.testing.assert_allclose(g, r, rtol=0, atol=ATOL)
        np.testing.assert_array_equal(g, a)


# activations keeping h within [-1, 1] (onnx_rnn.state_within_one) run the int8 kernel; the rest run in float
BOUNDED = [("LSTM", dict(activations=["HardSigmoid", "Softsign", "Softsign", "Sigmoid", "Tanh", "ScaledTanh"],
                         alpha=[0.3, 0.9], beta=[0.5, 1.2])),
           ("LSTM", dict(activations=["Sigmoid", "Relu", "Tanh"] * 2, peep=True)),      # g is free: c may grow
           ("GRU", dict(activations=["HardSigmoid", "Softsign", "Sigmoid", "ScaledTanh"], alpha=[0.25, 0.8])),
           ("GRU", dict(activations=["Sigmoid", "Softsign", "HardSigmoid", "Tanh"], lbr=1)),
           ("RNN", dict(activations=["Softsign", "ScaledTanh"], alpha=[1.0], beta=[1.7]))]
UNBOUNDED = [("LSTM", dict(activations=["Sigmoid", "Tanh", "Relu"] * 2)),
             ("LSTM", dict(activations=["Softplus", "Tanh", "Tanh"] * 2)),
             ("GRU", dict(activations=["Tanh", "Tanh"] * 2)),                           # z outside [0, 1]
             ("GRU", dict(activations=["Sigmoid", "Elu"] * 2, lbr=1)),
             ("RNN", dict(activations=["Relu", "ScaledTanh"], alpha=[1.5], beta=[1.0]))]


@pytest.mark.parametrize("cell,extra", BOUNDED, ids=str)
def test_bounded_activations_run_int8(cell, extra):
    _, q, x = _quantized(cell, "bidirectional", extra, True, T=10)
    assert "onnx_rnn_s8" in _kernels(q)
    for g, r in zip(edgeml.Interpreter(q.SerializeToString()).run([x]), ort_reference(q, x)):
        np.testing.assert_allclose(g, r, rtol=0, atol=ATOL)


@pytest.mark.parametrize("cell,extra", UNBOUNDED, ids=str)
def test_unbounded_activations_run_in_float(cell, extra):
    _, q, x = _quantized(cell, "bidirectional", extra, True, T=10)
    assert "onnx_rnn_f32" in _kernels(q) and "onnx_rnn_s8" not in _kernels(q)
    for g, r in zip(edgeml.Interpreter(q.SerializeToString()).run([x]), ort_reference(q, x)):
        np.testing.assert_allclose(g, r, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_sequence_lens_as_a_graph_input(cell):
    """The int8 kernel reads sequence_lens at run time as the float one does (tests/test_onnx_recurrent.py)."""
    T = 9
    _, q, x = _quantized(cell, "bidirectional", dict(lens_input=True, layout=1), True, T=T, B=3)
    assert "onnx_rnn_s8" in _kernels(q)
    it = edgeml.Interpreter(q.SerializeToString())
    for lens in ([T, 0, 4], [1, T, T - 1]):
        lens = np.array(lens, np.int32)
        for g, r in zip(it.run([x, lens]), ort_reference(q, x, lens)):
            np.testing.assert_allclose(g, r, rtol=0, atol=ATOL)
    with pytest.raises(edgeml.InputError, match="sequence_lens"):
        it.run([x, np.array([T, T + 1, 2], np.int32)])
