"""The ONNX route of recurrent models in `edgeml train`: float ONNX through tf2onnx (its LSTM / GRU ops), then
edgeml.optimize.quantize_onnx_rnn (int8 W, R and input of every recurrent node), run int8 by edgeml's kernel.

TensorFlow's converter crashes on int8 GRU / SimpleRNN (only unrolled graphs convert); this route keeps the
recurrence as one op.  tf2onnx lowers SimpleRNN to a Loop instead of an ONNX RNN op, so a SimpleRNN (tanh) is converted as a GRU
twin (reset_after=True) whose candidate-gate weights are the SimpleRNN's, and the resulting ONNX GRU node is then
rewritten as the ONNX RNN node h = tanh(W x + Wb + R h + Rb) made of exactly those weights - the SimpleRNN's own
formula (the twin's z / r gates are dropped by the rewrite).  GRU with reset_after=False also becomes a Loop in
tf2onnx: for it the route reports why and stays out of the accuracy table.
"""
from __future__ import annotations

import os

import numpy as np

FLOAT_FILE, INT8_FILE = "model_float.onnx", "model_int8_recurrent.onnx"
CALIBRATION_SAMPLES = 100


def export(model, x_train: np.ndarray, work: str) -> dict:
    """Writes FLOAT_FILE and INT8_FILE into `work`; returns {"float": path, "int8": path, "ops": [...]}.
    Raises RuntimeError with a sentence when a step cannot be done."""
    from edgeml.train import keras_env
    from edgeml.optimize.convert import rebuild_fixed_batch
    from edgeml.optimize.quantize_onnx_rnn import RECURRENT_OPS, quantize_recurrent
    tf, _ = keras_env()
    import onnx
    import tf2onnx
    twin, simple = _gru_twin(rebuild_fixed_batch(model, batch_size=1))
    shape = (1,) + tuple(int(d) for d in twin.inputs[0].shape[1:])
    spec = (tf.TensorSpec(shape, tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_keras(twin, input_signature=spec, opset=15)
    if simple:
        _gru_nodes_to_rnn(proto, simple)
    ops = sorted({n.op_type for n in proto.graph.node})
    if not set(ops) & set(RECURRENT_OPS):
        raise RuntimeError(f"tf2onnx emitted no ONNX LSTM / GRU / RNN op (ops: {', '.join(ops)})")
    float_path, int8_path = os.path.join(work, FLOAT_FILE), os.path.join(work, INT8_FILE)
    onnx.save(proto, float_path)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(x_train), size=min(CALIBRATION_SAMPLES, len(x_train)), replace=False)
    calibration = [x_train[i:i + 1].reshape(shape).astype(np.float32) for i in pick]
    onnx.save(quantize_recurrent(proto, calibration), int8_path)
    return {"float": float_path, "int8": int8_path, "ops": ops}


def run_edgeml(onnx_path: str, x: np.ndarray) -> np.ndarray:
    """edgeml on the batch-1 ONNX model, sample by sample (float input)."""
    import edgeml
    it = edgeml.Interpreter(onnx_path)
    shape = tuple(it.get_input_details()[0]["shape"])
    outs = []
    for i in range(len(x)):
        it.set_input(np.ascontiguousarray(x[i:i + 1].reshape(shape).astype(np.float32)))
        it.invoke()
        outs.append(it.get_output().copy())
    return np.concatenate(outs)


def _gru_twin(model):
    """(model with every tanh SimpleRNN replaced by a GRU(reset_after=True) carrying its weights in the candidate
    gate, [(kernel, recurrent_kernel, bias) of each replaced layer]); the model itself when it has none."""
    from edgeml.train import keras_env
    _, keras = keras_env()
    simple = [layer for layer in model.layers if type(layer).__name__ == "SimpleRNN"]
    if not simple:
        return model, []
    for layer in simple:
        if layer.get_config().get("activation") != "tanh" or not layer.get_config().get("use_bias", True):
            raise RuntimeError(f"SimpleRNN '{layer.name}' needs the tanh activation and a bias for the ONNX RNN route")

    def clone_layer(layer):
        config = layer.get_config()
        if type(layer).__name__ != "SimpleRNN":
            return layer.__class__.from_config(config)
        keep = {k: config[k] for k in ("units", "return_sequences", "return_state", "go_backwards", "stateful",
                                        "unroll", "name") if k in config}
        return keras.layers.GRU(reset_after=True, **keep)

    twin = keras.models.clone_model(model, input_tensors=model.inputs[0], clone_function=clone_layer)
    weights = []
    for src, dst in zip(model.layers, twin.layers):
        if type(src).__name__ != "SimpleRNN":
            dst.set_weights(src.get_weights())
            continue
        k, rk, b = src.get_weights()
        h = k.shape[1]
        kernel = np.concatenate([np.zeros_like(k), np.zeros_like(k), k], axis=1)
        recurrent = np.concatenate([np.zeros_like(rk), np.zeros_like(rk), rk], axis=1)
        bias = np.zeros((2, 3 * h), np.float32)
        bias[0, 2 * h:] = b
        dst.set_weights([kernel, recurrent, bias])
        weights.append((k, rk, b))
    return twin, weights


def _gru_nodes_to_rnn(proto, simple: list):
    """Rewrites each ONNX GRU node whose candidate-gate weights are one SimpleRNN's as an ONNX RNN node."""
    from onnx import helper, numpy_helper
    inits = {t.name: t for t in proto.graph.initializer}
    done = 0
    for node in proto.graph.node:
        if node.op_type != "GRU" or node.input[1] not in inits or node.input[2] not in inits:
            continue
        w, r = numpy_helper.to_array(inits[node.input[1]]), numpy_helper.to_array(inits[node.input[2]])
        h = w.shape[1] // 3
        match = [s for s in simple if np.array_equal(w[0, 2 * h:].T, s[0]) and np.array_equal(r[0, 2 * h:].T, s[1])]
        if w.shape[0] != 1 or not match:
            continue
        kernel, recurrent, bias = match[0]
        names = [node.name + "/rnn_W", node.name + "/rnn_R", node.name + "/rnn_B"]
        proto.graph.initializer.extend([
            numpy_helper.from_array(np.ascontiguousarray(kernel.T[None]).astype(np.float32), names[0]),
            numpy_helper.from_array(np.ascontiguousarray(recurrent.T[None]).astype(np.float32), names[1]),
            numpy_helper.from_array(np.concatenate([bias, np.zeros_like(bias)])[None].astype(np.float32), names[2])])
        direction = [a for a in node.attribute if a.name == "direction"]
        rnn = helper.make_node("RNN", [node.input[0]] + names + list(node.input[4:6]), list(node.output),
                               name=node.name + "/rnn", hidden_size=h,
                               direction=helper.get_attribute_value(direction[0]).decode() if direction else "forward")
        node.CopyFrom(rnn)
        done += 1
    if done != len(simple):
        raise RuntimeError(f"found {done} of the {len(simple)} SimpleRNN layers as GRU nodes in tf2onnx's graph")
    used = {i for n in proto.graph.node for i in n.input}
    keep = [t for t in proto.graph.initializer if t.name in used]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep)
