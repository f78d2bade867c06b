"""Element types of the index, compare, cast, reduce and resize kernels: their codes (the mirror of
cython_ops/include/em_dtype.h) and the checks those ops share on types and quantization."""
from __future__ import annotations

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import qparams

F32, I8, U8, I16, U16, I32, I64, BOOL = (np.dtype(t) for t in (np.float32, np.int8, np.uint8, np.int16, np.uint16,
                                                              np.int32, np.int64, np.bool_))
DTYPE_CODES = {F32: 0, I8: 1, U8: 2, I16: 3, U16: 4, I32: 5, I64: 6, BOOL: 7}     # EM_DT_*
QUANTIZED_TYPES = (I8, U8, I16)          # types whose values carry a scale and zero point in these ops
INDEX_TYPES = (I16, I32, I64)            # LiteRT's GATHER / GATHER_ND index types


def pad6_of(op: Op, shape) -> list:
    """common.pad6 (a shape as the kernels' 6 dims, leading 1s) whose refusal of a rank over 6 names the op."""
    shape = list(shape)
    if len(shape) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(shape)} > 6 is not supported")
    return [1] * (6 - len(shape)) + shape


def dtype_code(op: Op, tensor, allowed) -> int:
    """The kernel's code for `tensor`'s type, which must be one of `allowed`."""
    if tensor.dtype not in allowed:
        raise UnsupportedOpError(f"{op.describe()}: {tensor.describe()} has type {tensor.dtype} "
                                 f"({', '.join(d.name for d in allowed)} are supported)")
    return DTYPE_CODES[tensor.dtype]


def require_same_type(op: Op, *tensors):
    first = tensors[0]
    for t in tensors[1:]:
        if t.dtype != first.dtype:
            raise ModelFormatError(f"{op.describe()}: {t.describe()} has type {t.dtype}, {first.describe()} "
                                   f"{first.dtype}; they must match")


def require_equal_quantization(op: Op, *tensors):
    """Ops that move or compare raw quantized values (no requantization) need one scale and zero point on all
    the tensors named; float tensors and unquantized integer tensors pass."""
    first = tensors[0]
    if first.dtype not in QUANTIZED_TYPES or all(t.quant is None for t in tensors):
        return
    params = [qparams(t, op) for t in tensors]
    for t, p in zip(tensors[1:], params[1:]):
        if p != params[0]:
            raise UnsupportedOpError(f"{op.describe()}: {first.dtype} {t.describe()} has scale / zero point {p}, "
                                     f"{first.describe()} {params[0]}; this op copies values without "
                                     "requantizing, so they must be equal")
