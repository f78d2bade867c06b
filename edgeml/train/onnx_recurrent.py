"""The ONNX route of recurrent models in `edgeml train`: float ONNX through tf2onnx (its LSTM / GRU ops), then
edgeml.optimize.quantize_onnx_rnn (int8 W, R and input of every recurrent node), run int8 by edgeml's kernel.

TensorFlow's converter crashes on int8 GRU / SimpleRNN (only unrolled graphs convert); this route keeps the
recurrence as one op.  tf2onnx turns only GRU(reset_after=True) and LSTM into ONNX recurrent ops; SimpleRNN and
GRU(reset_after=False) become Loop graphs.  So both are converted as a GRU(reset_after=True) twin carrying their
weights, and the twin's ONNX GRU node is then rewritten into the layer's own formula:
  * SimpleRNN (tanh): the twin's candidate gate holds the weights (z / r gates zero); the node becomes the ONNX RNN
    node h = tanh(W x + Wb + R h + Rb) of exactly those weights (the z / r gates are dropped);
  * GRU(reset_after=False): the twin has the same kernel and recurrent kernel (Keras's gate order z, r, h is
    ONNX's) and the bias rows [b, 0]; tf2onnx emits W = kernel^T, R = recurrent^T, B = [Wb | Rb] = [b | 0] with
    linear_before_reset=1, and the rewrite sets linear_before_reset=0: h~ = tanh(W_h x + b_h + R_h (r * h)), Rbh
    being 0, which is Keras's reset_after=False candidate; z and r see Wb + Rb = b, as in Keras.
Bidirectional wrappers of those layers become one bidirectional node (the forward layer is direction 0).
Only tanh (and sigmoid for GRU's recurrent_activation) are accepted: edgeml's recurrent kernel runs ONNX's
default activations only.
"""
from __future__ import annotations

import os

import numpy as np

from edgeml.errors import UnsupportedOpError
from edgeml.optimize.convert import rebuild_fixed_batch
from edgeml.optimize.quantize_onnx_rnn import RECURRENT_OPS, quantize_recurrent
from edgeml.runtime import Interpreter
from edgeml.train import keras_env

FLOAT_FILE, INT8_FILE = "model_float.onnx", "model_int8_recurrent.onnx"
CALIBRATION_SAMPLES = 100


def export(model, x_train: np.ndarray, work: str) -> dict:
    """Writes FLOAT_FILE and INT8_FILE into `work`; returns {"float": path, "int8": path, "ops": [...]}.
    Raises UnsupportedOpError for a layer the route cannot express and RuntimeError with a sentence when a step
    cannot be done."""
    import onnx
    proto, shape = float_onnx(model)
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


def float_onnx(model) -> tuple:
    """(float ONNX ModelProto of the batch-1 `model`, its input shape): tf2onnx on the GRU twin, twin nodes
    rewritten."""
    tf, _ = keras_env()
    import tf2onnx
    twin, replaced = _gru_twin(rebuild_fixed_batch(model, batch_size=1))
    shape = (1,) + tuple(int(d) for d in twin.inputs[0].shape[1:])
    spec = (tf.TensorSpec(shape, tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_keras(twin, input_signature=spec, opset=15)
    if replaced:
        _gru_nodes_to_rnn(proto, replaced)
    return proto, shape


def run_edgeml(onnx_path: str, x: np.ndarray) -> np.ndarray:
    """edgeml on the batch-1 ONNX model, sample by sample (float input)."""
    it = Interpreter(onnx_path)
    shape = tuple(it.get_input_details()[0]["shape"])
    outs = []
    for i in range(len(x)):
        it.set_input(np.ascontiguousarray(x[i:i + 1].reshape(shape).astype(np.float32)))
        it.invoke()
        outs.append(it.get_output().copy())
    return np.concatenate(outs)


def _kind(layer):
    """"rnn" for a SimpleRNN, "gru" for a GRU(reset_after=False) (after checking their activations), else None."""
    name, config = type(layer).__name__, layer.get_config()
    if name == "SimpleRNN":
        kind, wanted = "rnn", {"activation": "tanh"}
    elif name == "GRU" and not config.get("reset_after", True):
        kind, wanted = "gru", {"activation": "tanh", "recurrent_activation": "sigmoid"}
    else:
        return None
    wrong = {k: config.get(k) for k, v in wanted.items() if config.get(k) != v}
    if wrong:
        raise UnsupportedOpError(
            f"{name} '{layer.name}' has {', '.join(f'{k} {v!r}' for k, v in wrong.items())}; the ONNX recurrent "
            f"route needs {' and '.join(f'{k} {v!r}' for k, v in wanted.items())} (edgeml runs the ONNX recurrent "
            "ops with their default activations only)")
    return kind


def _cells(layer) -> list:
    """The recurrent layers inside `layer`: forward and backward of a Bidirectional, else the layer itself."""
    if type(layer).__name__ == "Bidirectional":
        return [layer.forward_layer, layer.backward_layer]
    return [layer]


def _twin_config(cell) -> dict:
    """The GRU(reset_after=True) config standing for a SimpleRNN / GRU(reset_after=False) cell."""
    config = cell.get_config()
    if type(cell).__name__ == "SimpleRNN":
        config = {k: config[k] for k in ("units", "return_sequences", "return_state", "go_backwards", "stateful",
                                         "unroll", "name") if k in config}
    return dict(config, reset_after=True, use_bias=True)


def _twin_weights(cell, kind) -> list:
    """[kernel, recurrent kernel, bias [2, 3 units]] of the twin GRU(reset_after=True) computing `cell`:
    the SimpleRNN's weights in the candidate gate (z / r zero); the GRU's own, its bias as the input bias."""
    weights = cell.get_weights()
    k, rk = weights[:2]
    h = rk.shape[0]
    bias = np.zeros((2, 3 * h), np.float32)
    if kind == "rnn":
        if len(weights) > 2:
            bias[0, 2 * h:] = weights[2]
        return [np.concatenate([np.zeros_like(k), np.zeros_like(k), k], axis=1),
                np.concatenate([np.zeros_like(rk), np.zeros_like(rk), rk], axis=1), bias]
    if len(weights) > 2:
        bias[0] = weights[2]
    return [k, rk, bias]


def _gru_twin(model):
    """(model with every SimpleRNN and GRU(reset_after=False), also inside Bidirectional, replaced by a
    GRU(reset_after=True) twin, [(kind, twin kernel, twin recurrent kernel, twin bias) of each replaced layer]);
    the model itself when it has none.  Raises UnsupportedOpError for activations the route cannot express."""
    _, keras = keras_env()
    kinds = {id(cell): _kind(cell) for layer in model.layers for cell in _cells(layer)}
    if not any(kinds.values()):
        return model, []

    def serialized(cell):
        if kinds[id(cell)]:
            return {"class_name": "GRU", "config": _twin_config(cell)}
        return {"class_name": type(cell).__name__, "config": cell.get_config()}

    def clone_layer(layer):
        cells = _cells(layer)
        if not any(kinds[id(c)] for c in cells):
            return layer.__class__.from_config(layer.get_config())
        if len(cells) == 1:
            return keras.layers.GRU(**_twin_config(layer))
        config = layer.get_config()
        config["layer"], config["backward_layer"] = serialized(cells[0]), serialized(cells[1])
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(model, input_tensors=model.inputs[0], clone_function=clone_layer)
    replaced = []
    for src, dst in zip(model.layers, twin.layers):
        weights = []
        for cell in _cells(src):
            kind = kinds[id(cell)]
            weights += _twin_weights(cell, kind) if kind else cell.get_weights()
            if kind:
                replaced.append((kind,) + tuple(weights[-3:]))
        dst.set_weights(weights)
    return twin, replaced


def _gru_nodes_to_rnn(proto, replaced: list):
    """Rewrites the ONNX GRU nodes of the twin's replaced layers (found by their weights): a SimpleRNN's as an ONNX
    RNN node of its candidate-gate weights, a GRU(reset_after=False)'s with linear_before_reset=0."""
    from onnx import helper, numpy_helper
    inits = {t.name: t for t in proto.graph.initializer}
    left = list(range(len(replaced)))
    for node in proto.graph.node:
        if node.op_type != "GRU" or len(node.input) < 4 or any(node.input[k] not in inits for k in (1, 2, 3)):
            continue
        w, r, b = (numpy_helper.to_array(inits[node.input[k]]) for k in (1, 2, 3))
        found = []
        for d in range(w.shape[0]):
            match = [i for i in left if i not in found and np.array_equal(w[d], replaced[i][1].T)
                     and np.array_equal(r[d], replaced[i][2].T) and np.array_equal(b[d], replaced[i][3].reshape(-1))]
            found.append(match[0] if match else None)
        if found.count(None) == len(found):
            continue
        kinds = {replaced[i][0] if i is not None else None for i in found}
        if len(kinds) != 1:
            raise RuntimeError(f"the two directions of tf2onnx's GRU node '{node.name}' are different layer types")
        left = [i for i in left if i not in found]
        if kinds == {"gru"}:
            attrs = [a for a in node.attribute if a.name != "linear_before_reset"]
            del node.attribute[:]
            node.attribute.extend(attrs + [helper.make_attribute("linear_before_reset", 0)])
            continue
        h = w.shape[1] // 3
        names = [node.name + "/rnn_W", node.name + "/rnn_R", node.name + "/rnn_B"]
        proto.graph.initializer.extend([
            numpy_helper.from_array(np.ascontiguousarray(w[:, 2 * h:]), names[0]),
            numpy_helper.from_array(np.ascontiguousarray(r[:, 2 * h:]), names[1]),
            numpy_helper.from_array(np.concatenate([b[:, 2 * h:3 * h], b[:, 5 * h:]], axis=1), names[2])])
        direction = [a for a in node.attribute if a.name == "direction"]
        rnn = helper.make_node("RNN", [node.input[0]] + names + list(node.input[4:6]), list(node.output),
                               name=node.name + "/rnn", hidden_size=h,
                               direction=helper.get_attribute_value(direction[0]).decode() if direction else "forward")
        node.CopyFrom(rnn)
    if left:
        raise RuntimeError(f"found {len(replaced) - len(left)} of the {len(replaced)} SimpleRNN / "
                           "GRU(reset_after=False) layers as GRU nodes in tf2onnx's graph")
    used = {i for n in proto.graph.node for i in n.input}
    keep = [t for t in proto.graph.initializer if t.name in used]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep)
