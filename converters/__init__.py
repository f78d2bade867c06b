"""Model formats <-> edgeml's graph IR.

`from_tflite` / `from_onnx` are runtime-side and never import TensorFlow or onnxruntime.
"""
from converters.tflite import from_tflite

__all__ = ["from_tflite"]
