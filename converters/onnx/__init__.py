"""The ONNX reader: `from_onnx` (model -> edgeml's graph IR) and `supported_ops`."""
from converters.onnx.reader import from_onnx, supported_ops

__all__ = ["from_onnx", "supported_ops"]
