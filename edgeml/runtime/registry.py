"""The op table: op type -> OpSpec (prepare, newest version, output types), collected from the family modules."""
from __future__ import annotations

from edgeml.runtime.ops import (activations, conv, elementwise, fully_connected, lstm, onnx_quantized, onnx_rnn, pool,
                                quantize, reduce, shape, transpose_conv)
from edgeml.runtime.ops import densify, detection

FAMILIES = (conv, fully_connected, pool, elementwise, activations, quantize, shape, reduce, lstm, onnx_rnn,
            onnx_quantized)
FAMILIES += (transpose_conv,)        # TRANSPOSE_CONV (int8, 16x8, float32)
FAMILIES += (detection, densify)     # TFLite_Detection_PostProcess, DENSIFY (sparse weights folded at load)



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
