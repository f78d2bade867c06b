"""The ONNX reader: `from_onnx` (an ONNX model -> edgeml's graph IR) and `supported_ops`.

reader.py is the translator core (values, NCHW / NHWC layouts, parsing, dispatch); each group of ops is a mixin in
a module of its own (shape_ops, math_ops, conv, qdq, qoperator, recurrent); common.py and tensors.py hold what they
share.  The modules import only edgeml.ir / numerics / errors, converters.source, each other (no cycle), the
`onnx` package, numpy and the standard library; never onnxruntime or edgeml.runtime.
"""
try:
    import onnx  # noqa: F401  (checked here, before any module of the package imports it)
except ImportError as exc:  # pragma: no cover - optional extra
    raise ImportError("reading .onnx models needs the 'onnx' package: pip install edgeml[onnx]") from exc

from converters.onnx.reader import from_onnx, supported_ops  # noqa: E402

__all__ = ["from_onnx", "supported_ops"]
