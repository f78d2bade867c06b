"""Quantize the recurrent ops (LSTM, GRU, RNN) of a float ONNX model to the QDQ form edgeml runs in int8.

For every LSTM / GRU / RNN node with constant W and R:
  * W and R become int8 initializers behind DequantizeLinear, symmetric (zero point 0), one scale per gate row
    (axis 1, max |w| / 127 over both directions and the row) or one per tensor (`per_channel=False`);
  * X gets QuantizeLinear -> DequantizeLinear with int8 parameters from the calibration range of X (asymmetric,
    zero included: scale = (max - min) / 255, zero point = round(-128 - min / scale));
  * B, P, initial states and the outputs stay float.
onnxruntime runs the result in float on the dequantized values (the reference the tests compare with); edgeml runs
the node with its int8 kernel (edgeml/runtime/ops/onnx_rnn.py: int8 x int8 sums in int32, h quantized at 1/127 for the
recurrent sums, gates and cell state in float32).
Calibration runs the float model with onnx's reference evaluator (the `onnx` package only, no onnxruntime).
"""
from __future__ import annotations

import os

import numpy as np

RECURRENT_OPS = ("LSTM", "GRU", "RNN")


def _load(model):
    import onnx
    if isinstance(model, onnx.ModelProto):
        m = onnx.ModelProto()
        m.CopyFrom(model)
        return m
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_model_from_string(bytes(model))
    return onnx.load(os.fspath(model))


def _symmetric(w: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """int8 data and float32 scales (one per row of axis 1, or one) with max |w| at 127."""
    peak = np.abs(w).max(axis=(0, 2)) if per_channel else np.array([np.abs(w).max()])
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    s = scale.reshape(1, -1, 1) if per_channel else scale.reshape(())
    q = np.clip(np.rint(w / s), -127, 127).astype(np.int8)
    return q, (scale if per_channel else scale.reshape(()))


def input_ranges(model, names: list, calibration) -> dict:
    """name -> (min, max) of those values over the calibration feeds (dicts input name -> array, or arrays for
    a single-input model), computed by onnx.reference on the float model."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    m = _load(model)
    graph_inputs = {i.name for i in m.graph.input} - {t.name for t in m.graph.initializer}
    extra = [n for n in names if n not in graph_inputs]
    for n in extra:
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
    evaluator = ReferenceEvaluator(m)
    first_input = [i.name for i in m.graph.input if i.name in graph_inputs][0]
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    for feed in calibration:
        feed = feed if isinstance(feed, dict) else {first_input: feed}
        feed = {k: np.asarray(v, np.float32) for k, v in feed.items()}
        values = dict(zip(extra, evaluator.run(extra, feed))) if extra else {}
        values.update({n: feed[n] for n in names if n in feed})
        for n in names:
            lo[n] = min(lo[n], float(np.min(values[n])))
            hi[n] = max(hi[n], float(np.max(values[n])))
    if any(not np.isfinite(lo[n]) for n in names):
        raise ValueError("the calibration data is empty")
    return {n: (lo[n], hi[n]) for n in names}


def quantize_recurrent(model, calibration, per_channel: bool = True):
    """The model (ModelProto, bytes or path) with its LSTM / GRU / RNN nodes in QDQ int8 form; returns a
    ModelProto.  `calibration`: iterable of feeds for the model's inputs."""
    import onnx
    from onnx import helper, numpy_helper
    m = _load(model)
    inits = {t.name: t for t in m.graph.initializer}
    nodes = [n for n in m.graph.node if n.op_type in RECURRENT_OPS and n.domain in ("", "ai.onnx")]
    if not nodes:
        raise ValueError("the model has no LSTM, GRU or RNN node")
    for n in nodes:
        for k in (1, 2):
            if n.input[k] not in inits:
                raise ValueError(f"{n.op_type} '{n.name}': input {n.input[k]} is not an initializer")
    ranges = input_ranges(m, sorted({n.input[0] for n in nodes}), list(calibration))
    new_nodes, done_x = [], {}
    for node in list(m.graph.node):
        if node not in nodes:
            new_nodes.append(node)
            continue
        tag = node.name or node.output[0]
        x = node.input[0]
        if x not in done_x:
            lo, hi = min(ranges[x][0], 0.0), max(ranges[x][1], 0.0)
            scale = np.float32((hi - lo) / 255.0 if hi > lo else 1.0)
            zp = np.int8(np.clip(np.rint(-128.0 - lo / float(scale)), -128, 127))
            s_name, z_name = f"{x}/q_scale", f"{x}/q_zero_point"
            m.graph.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), s_name),
                                        numpy_helper.from_array(np.array(zp, np.int8), z_name)])
            new_nodes.append(helper.make_node("QuantizeLinear", [x, s_name, z_name], [x + "/q"], name=x + "/quantize"))
            new_nodes.append(helper.make_node("DequantizeLinear", [x + "/q", s_name, z_name], [x + "/dq"],
                                              name=x + "/dequantize"))
            done_x[x] = x + "/dq"
        for k, what in ((1, "W"), (2, "R")):
            w = numpy_helper.to_array(inits[node.input[k]]).astype(np.float32)
            q, scale = _symmetric(w, per_channel)
            base = f"{tag}/{what}"
            m.graph.initializer.extend([
                numpy_helper.from_array(q, base + "_quantized"),
                numpy_helper.from_array(np.asarray(scale, np.float32), base + "_scale"),
                numpy_helper.from_array(np.zeros(np.shape(scale), np.int8), base + "_zero_point")])
            attrs = {"axis": 1} if per_channel else {}
            new_nodes.append(helper.make_node("DequantizeLinear", [base + "_quantized", base + "_scale",
                                                                   base + "_zero_point"], [base + "_dq"],
                                              name=base + "_dequantize", **attrs))
            node.input[k] = base + "_dq"
        node.input[0] = done_x[x]
        new_nodes.append(node)
    del m.graph.node[:]
    m.graph.node.extend(new_nodes)
    used = {i for n in m.graph.node for i in n.input}
    keep = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    if m.opset_import and all(o.version < 13 for o in m.opset_import if o.domain in ("", "ai.onnx")):
        raise ValueError("per-axis DequantizeLinear needs opset 13 or newer")
    onnx.checker.check_model(m)
    return m
