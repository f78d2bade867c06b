"""ONNX LSTM / GRU / RNN models built with onnx.helper, and onnxruntime as their reference."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def recurrent_model(cell, T, B, F, H, direction="forward", layout=0, bias=True, init=False, lens=None, peep=False,
                    clip=None, input_forget=0, lbr=0, outs=(1, 1, 1), activations=None, alpha=None, beta=None,
                    lens_input=False, seed=0, opset=14):
    """One recurrent node on input X; weights scaled by 1/sqrt(fan-in) as trained models have them (a recurrence
    with larger weights is chaotic: float rounding differences grow step by step, in any two implementations).
    lens_input: sequence_lens is a second graph input "L" (int32 [B]) instead of the constant `lens`."""
    rng = np.random.default_rng(seed)
    D = 2 if direction == "bidirectional" else 1
    G = GATES[cell]
    inits = {"W": (rng.uniform(-1, 1, (D, G * H, F)) / np.sqrt(F)).astype(np.float32),
             "R": (rng.uniform(-1, 1, (D, G * H, H)) / np.sqrt(H)).astype(np.float32)}
    names = ["X", "W", "R"]
    st = (B, D, H) if layout else (D, B, H)
    optional = [("B", rng.uniform(-0.5, 0.5, (D, 2 * G * H)).astype(np.float32) if bias else None),
                ("L", np.zeros(B, np.int32) if lens_input else None if lens is None else np.array(lens, np.int32)),
                ("h0", rng.uniform(-1, 1, st).astype(np.float32) if init else None)]
    if cell == "LSTM":
        optional += [("c0", rng.uniform(-1, 1, st).astype(np.float32) if init else None),
                     ("P", rng.uniform(-0.5, 0.5, (D, 3 * H)).astype(np.float32) if peep else None)]
    for name, value in optional:
        names.append(name if value is not None else "")
        if value is not None:
            inits[name] = value
    while names[-1] == "":
        names.pop()
    n_out = 3 if cell == "LSTM" else 2
    onames = [["Y", "Y_h", "Y_c"][k] if outs[k] else "" for k in range(n_out)]
    while onames[-1] == "":
        onames.pop()
    attrs = dict(hidden_size=H, direction=direction)
    if layout:
        attrs["layout"] = layout
    if clip:
        attrs["clip"] = clip
    if input_forget:
        attrs["input_forget"] = 1
    if cell == "GRU":
        attrs["linear_before_reset"] = lbr
    if activations is not None:
        attrs["activations"] = activations
    if alpha is not None:
        attrs["activation_alpha"] = alpha
    if beta is not None:
        attrs["activation_beta"] = beta
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, (B, T, F) if layout else (T, B, F))]
    if lens_input:
        del inits["L"]
        graph_inputs.append(helper.make_tensor_value_info("L", TensorProto.INT32, (B,)))
    node = helper.make_node(cell, names, onames, **attrs)
    xs = (B, T, F) if layout else (T, B, F)
    shapes = [(B, T, D, H) if layout else (T, D, B, H), st, st]
    graph = helper.make_graph([node], "rnn", graph_inputs,
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes[k])
                               for k, n in enumerate(onames) if n],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    x = rng.uniform(-1, 1, xs).astype(np.float32)
    return model, x


def _recurrent_node(model):
    return [n for n in model.graph.node if n.op_type in GATES][0]


def _as_layout0(model):
    """The same node with layout 0 (onnxruntime implements only that): X, Y and the states transposed."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for a in _recurrent_node(m).attribute:
        if a.name == "layout":
            a.i = 0
    for init in m.graph.initializer:
        if init.name in ("h0", "c0"):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).transpose(1, 0, 2).copy(), init.name))
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value, dims[1].dim_value = dims[1].dim_value, dims[0].dim_value
    return m


def ort_reference(model, x, lens=None) -> list:
    """onnxruntime's outputs for input X = x (and L = lens when sequence_lens is a graph input)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    layout = [a.i for a in _recurrent_node(model).attribute if a.name == "layout"]
    if layout and layout[0] == 1:
        sess = ort.InferenceSession(_as_layout0(model).SerializeToString(), so, providers=["CPUExecutionProvider"])
        ref = sess.run(None, _feeds(x.transpose(1, 0, 2).copy(), lens))
        names = [o.name for o in model.graph.output]
        return [r.transpose(2, 0, 1, 3) if n == "Y" else r.transpose(1, 0, 2) for n, r in zip(names, ref)]
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, _feeds(x, lens))


def _feeds(x, lens) -> dict:
    return {"X": x} if lens is None else {"X": x, "L": np.asarray(lens, np.int32)}
