"""The ONNX reader: `from_onnx` (an ONNX model -> edgeml's graph IR), `supported_ops` and `op_table` (README's table).

reader.py is the translator core (values, NCHW / NHWC layouts, parsing, dispatch); each group of ops is a mixin in
a module of its own (shape_ops, math_ops, conv, qdq, qoperator, recurrent); common.py and tensors.py hold what they
share; proto.py makes the protobuf message classes the reader parses.  The modules import only edgeml.ir /
numerics / errors, converters.source, each other (no cycle), the protobuf runtime, numpy and the standard library;
never onnxruntime or edgeml.runtime.  The `onnx` package itself is imported only where its code is used: constant
folding by its reference evaluator, and tensors stored in typed fields instead of raw bytes (numpy_helper).
"""
try:
    import google.protobuf  # noqa: F401  (checked here, before any module of the package imports it)
except ImportError as exc:  # pragma: no cover - optional extra
    raise ImportError("reading .onnx models needs the 'onnx' package (and its protobuf runtime): "
                      "pip install edgeml[onnx]") from exc

from converters.onnx.reader import MAX_OPSET, MIN_OPSET, from_onnx, op_groups, supported_ops  # noqa: E402

__all__ = ["from_onnx", "op_table", "supported_ops"]

OP_TABLE_BEGIN, OP_TABLE_END = "<!-- onnx-op-table:begin -->", "<!-- onnx-op-table:end -->"


def op_table() -> str:
    """The README's ONNX op table (Markdown, between its begin / end markers), generated from the translator."""
    rows = [OP_TABLE_BEGIN, f"ONNX opsets {MIN_OPSET} to {MAX_OPSET}; {len(supported_ops())} op types.", "",
            "| Group | ONNX ops |", "|---|---|"]
    rows += [f"| {title} | {', '.join(ops)} |" for title, ops in op_groups()]
    return "\n".join(rows + [OP_TABLE_END])
