"""Small engines for Interpreter.run()'s float inputs and outputs on int8 models: the QUANTIZE kernel with a
non-finite flag (staging float array -> staging int8 array) and, per output, the DEQUANTIZE table lookup (or a
copy of a float output) into a staging float array.  Bound once per plan, so run() builds nothing per call."""
from __future__ import annotations

import numpy as np

from edgeml.runtime.kernels import Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.plan import address
from edgeml.runtime.tables import byte_table


def _record(kernel: str, ptrs: dict, ints: dict, floats: dict = None):
    layout = layout_of(kernel)
    return (kernel_address(kernel), layout.ptrs(**ptrs), [int(v) for v in layout.ints(**ints)],
            [float(v) for v in layout.floats(**(floats or {}))])


def quantize_engine(src: np.ndarray, dst: np.ndarray, status: np.ndarray, scale: float, zero_point: int) -> Engine:
    """float32 src -> int8 dst as QUANTIZE computes it; status[0] = 1 when some value is not finite."""
    rec = _record("quantize_f32_int8_checked", dict(input=address(src), output=address(dst), status=address(status)),
                  dict(n=src.size, zp=zero_point), dict(scale=scale))
    return Engine([rec], keepalive=[src, dst, status])


def dequantize_engine(outputs: list) -> Engine:
    """outputs: (int8 or float32 source view, float32 destination, (scale, zero point) or None for a copy)."""
    records, keep = [], []
    for src, dst, quant in outputs:
        keep += [src, dst]
        if quant is None:
            records.append(_record("copy", dict(input=address(src), output=address(dst)), dict(bytes=dst.nbytes)))
            continue
        table = byte_table("dequantize_int8_f32", dict(zp=quant[1]), dict(scale=quant[0]), np.float32)
        keep.append(table)
        records.append(_record("lut_int8_f32", dict(input=address(src), output=address(dst), table=address(table)),
                               dict(n=dst.size)))
    return Engine(records, keepalive=keep)
