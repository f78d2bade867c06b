# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""TILE's prepare in one call for its common form (issue 15): what ops/index.prepare_tile reads, checks and computes
for a non-constant input of rank up to 6 tiled by constant int32 / int64 multiples, or None wherever a check would
refuse the op or another form applies (a constant input, which the Python path folds): the Python path then
decides, with its messages (it is this shell's twin; tests/test_load_tile.py compares both).  Not kernels: no
KERNELS table."""
from libc.stdint cimport int64_t

import numpy

from cython_ops import load_ops
from cython_ops.load_buffer cimport per_tensor

cdef enum:
    RANK = 6                 # the kernels' dims (common.pad6)

cdef object F64 = numpy.dtype(numpy.float64), I64 = numpy.dtype(numpy.int64)    # the IR's quantization types
cdef object I32 = numpy.dtype(numpy.int32)
cdef object QUANTIZED = (numpy.dtype(numpy.int8), numpy.dtype(numpy.uint8), numpy.dtype(numpy.int16))
cdef int64_t MAX_DIM = (<int64_t>1) << 40     # any shape the arena budget admits is far below


def tile_shell(ctx, op, value_types):
    """A TILE of a non-constant input (rank up to 6, a type of `value_types`: index.VALUE_TYPES) by a constant
    int32 / int64 vector of non-negative multiples, equal types and (element_types.require_equal_quantization)
    quantization: sets the output shape and returns (input index, output index, the tile kernel's integers).  None
    wherever the Python path must decide."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 2 or len(outputs) < 1:
        return None
    xi, mi, yi = inputs[0], inputs[1], outputs[0]
    constants = ctx.constants
    if xi < 0 or mi < 0 or yi < 0 or xi in constants or mi not in constants:
        return None
    tensors = ctx.graph.tensors
    x, y, m = tensors[xi], tensors[yi], tensors[mi]
    data = constants[mi]
    if (m.dtype != I32 and m.dtype != I64) or (data.dtype != I32 and data.dtype != I64) or data.ndim > 1:
        return None
    xs = ctx.shapes.get(xi)
    dtype = x.dtype
    if type(xs) is not tuple or len(xs) > RANK or dtype != y.dtype or dtype not in value_types:
        return None
    if dtype in QUANTIZED and not (x.quant is None and y.quant is None):
        px = per_tensor(x, F64, I64)
        if px is None or px != per_tensor(y, F64, I64):
            return None
    multiples = data.tolist() if data.ndim else [data.tolist()]
    cdef Py_ssize_t rank = len(xs), k
    if len(multiples) != rank:
        return None
    in6, out6 = [1] * (RANK - rank), [1] * (RANK - rank)
    for k in range(rank):
        d, t = xs[k], multiples[k]
        if type(d) is not int or not 0 <= d <= MAX_DIM or not 0 <= t <= MAX_DIM:
            return None
        in6.append(d)
        out6.append(d * t)
    strides = [0] * RANK
    acc = 1
    for k in range(RANK - 1, -1, -1):
        strides[k] = acc
        acc *= in6[k]
    load_ops.set_output_shape(ctx, op, 0, tuple(out6[RANK - rank:]), y)
    return xi, yi, dict(itemsize=dtype.itemsize, out_dims=out6, in_dims=in6, in_strides=strides)
