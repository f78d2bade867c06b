"""Export to ONNX with tf2onnx: an int8 .tflite -> ONNX QDQ, or a float tf_keras model -> ONNX (reference).

Export-side: imports TensorFlow and tf2onnx, so the runtime never imports this module.
"""
from __future__ import annotations

import collections
import os

from edgeml.errors import TrainingError
from edgeml.optimize.convert import tflite_ops
from edgeml.optimize.keras_model import require_tf_keras
from edgeml.train import keras_env

# tf2onnx has no handler for these .tflite ops when they are quantized: the conversion fails on them
_INT8_OPS_TF2ONNX_CANNOT_TAKE = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "tf2onnx cannot translate a fused int8 LSTM (int16 cell state, per-gate "
                                    "int8 weights); export the float model with keras_to_onnx instead",
    "BIDIRECTIONAL_SEQUENCE_LSTM": "tf2onnx cannot translate a fused int8 LSTM (int16 cell state, per-gate "
                                   "int8 weights); export the float model with keras_to_onnx instead",
}


def tflite_to_onnx(tflite_path, onnx_path, *, opset: int = 17) -> dict:
    """Converts a .tflite (int8 or float) to ONNX; int8 tensors become QuantizeLinear / DequantizeLinear pairs
    with the .tflite's scales and zero points (per-channel where the .tflite is).

    Returns {"path", "bytes", "opset", "ops": {onnx op type: count}}.  Raises TrainingError when tf2onnx cannot
    take the model, e.g. a fused int8 UNIDIRECTIONAL_SEQUENCE_LSTM.
    """
    tflite_path, onnx_path = os.fspath(tflite_path), os.fspath(onnx_path)
    if not os.path.isfile(tflite_path):
        raise TrainingError(f"No .tflite file at {tflite_path}.")
    for op, input_types, _ in tflite_ops(tflite_path):
        if op in _INT8_OPS_TF2ONNX_CANNOT_TAKE and input_types[:1] in (["INT8"], ["INT16"], ["UINT8"]):
            raise TrainingError(f"Cannot export {os.path.basename(tflite_path)} to ONNX: it contains a quantized "
                                f"{op} and {_INT8_OPS_TF2ONNX_CANNOT_TAKE[op]}.")
    keras_env()
    import tf2onnx
    os.makedirs(os.path.dirname(os.path.abspath(onnx_path)), exist_ok=True)
    try:
        model_proto, _ = tf2onnx.convert.from_tflite(tflite_path, opset=opset, output_path=onnx_path)
    except Exception as exc:  # noqa: BLE001 - tf2onnx raises bare Exceptions, ValueErrors and KeyErrors
        raise TrainingError(f"tf2onnx could not convert {os.path.basename(tflite_path)}: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return _result(onnx_path, model_proto, opset)


def keras_to_onnx(model, onnx_path, *, opset: int = 17) -> dict:
    """Converts a float tf_keras model with tf2onnx's from_keras (batch size kept as the model has it)."""
    require_tf_keras(model, "keras_to_onnx")
    tf, _ = keras_env()
    import tf2onnx
    onnx_path = os.fspath(onnx_path)
    os.makedirs(os.path.dirname(os.path.abspath(onnx_path)), exist_ok=True)
    spec = tuple(tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in model.inputs)
    try:
        model_proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset, output_path=onnx_path)
    except Exception as exc:  # noqa: BLE001 - see tflite_to_onnx
        raise TrainingError(f"tf2onnx could not convert the Keras model: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return _result(onnx_path, model_proto, opset)


def _result(onnx_path: str, model_proto, opset: int) -> dict:
    ops = collections.Counter(node.op_type for node in model_proto.graph.node)
    return {"path": onnx_path, "bytes": os.path.getsize(onnx_path), "opset": opset, "ops": dict(sorted(ops.items()))}
