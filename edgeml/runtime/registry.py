"""The op table: op type -> OpSpec (prepare, newest version, output types), collected from the family modules."""
from __future__ import annotations

from edgeml.runtime.ops import (activations, batch_matmul, binary_math, compare, control, conv, densify, detection,
                                elementwise, fully_connected, index, loop_ops, lstm, normalization, onnx_quantized,
                                onnx_rnn, pool, quantize, reduce, resize, shape, space, svdf, tensor_list,
                                transpose_conv, unary_math)
from edgeml.runtime.ops import onnx_elementwise, onnx_tensor

FAMILIES = (conv, fully_connected, pool, elementwise, activations, quantize, shape, reduce, lstm, onnx_rnn,
            onnx_quantized, transpose_conv, resize, index, compare, unary_math, binary_math, normalization,
            batch_matmul, space, control, tensor_list, loop_ops, svdf, detection, densify)
FAMILIES += (onnx_elementwise, onnx_tensor)          # ONNX ops without a TFLite twin (issue 19 part B)



def collect(families) -> dict:
    ops = {}
    for family in families:
        for op_type, spec in family.OPS.items():
            if op_type in ops:
                raise RuntimeError(f"{op_type} is registered by two op families")
            ops[op_type] = spec
    return ops


OPS = collect(FAMILIES)

SUPPORTED_OPS = sorted(OPS)
