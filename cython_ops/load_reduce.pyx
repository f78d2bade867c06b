# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""REDUCE_MAX / REDUCE_MIN's prepare in one call (issue 15): what ops/reduce.prepare_reduce (its twin) reads,
checks and computes for them -- the input and output types, the constant int32 axes, the output shape (set) and
the walk's 6-D dims and output strides -- or None wherever a check would refuse the op or another form applies
(a scalar input, a constant input, rank over 6, unequal quantization): the Python path then decides, with its
messages.  Not kernels: no KERNELS table.  tests/test_load_reduce.py compares both paths; test_load_fast_paths.py
swaps the twin in."""
from libc.stdint cimport int64_t

import numpy

from cython_ops import load_ops
from cython_ops.load_buffer cimport element_count, per_tensor

cdef enum:
    RANK = 6                 # the kernels' dims (common.pad6)

cdef object F64 = numpy.dtype(numpy.float64), I64 = numpy.dtype(numpy.int64)    # the IR's quantization types
cdef int64_t MAX_ELEMENTS = (<int64_t>1) << 62     # (products of dims stay within int64)


def reduce_shell(ctx, op, dict codes, tuple quantized_types, int32_dtype):
    """A REDUCE_MAX / REDUCE_MIN whose input (of a type in `codes`: dtype -> the kernel's code) and output have
    one type, over a constant int32 axis vector: sets the output shape and returns (input index, output index,
    6-D input dims, 6-D output strides, output elements, type code, whether every axis is reduced).  An input of
    a type in quantized_types with quantization needs the output's scale and zero point, per tensor."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 2 or len(outputs) < 1:
        return None
    xi, ai, yi = inputs[0], inputs[1], outputs[0]
    if xi < 0 or ai < 0 or yi < 0:
        return None
    tensors = ctx.graph.tensors
    x, a, y = tensors[xi], tensors[ai], tensors[yi]
    if x.dtype != y.dtype or a.dtype != int32_dtype:
        return None
    code = codes.get(x.dtype)
    constants = ctx.constants
    if code is None or xi in constants or ai not in constants:
        return None
    xs = ctx.shapes.get(xi)
    if type(xs) is not tuple or not 0 < len(xs) <= RANK:
        return None
    if element_count(xs, MAX_ELEMENTS) < 0:      # (each dim a Python int 0..MAX_ELEMENTS, and their product)
        return None
    cdef int rank = len(xs), d, k, n_axes = 0
    cdef int64_t dims[RANK]
    cdef bint reduced[RANK]
    for d in range(rank):
        dims[d] = xs[d]
        reduced[d] = False
    axes = constants[ai].reshape(-1).tolist()
    for v in axes:
        if type(v) is not int or not -rank <= v < rank:
            return None
        k = v + rank if v < 0 else v
        if not reduced[k]:
            reduced[k] = True
            n_axes += 1
    if x.dtype in quantized_types and x.quant is not None:
        x_params, y_params = per_tensor(x, F64, I64), per_tensor(y, F64, I64)
        if x_params is None or y_params is None or x_params != y_params:
            return None
    keep = bool(op.options.get("keep_dims", False))
    out = []
    cdef int64_t n_out = 1, stride = 1
    cdef int64_t strides[RANK]
    for d in range(rank - 1, -1, -1):     # row-major strides of the kept dims, 0 for the reduced ones
        strides[d] = 0 if reduced[d] else stride
        if not reduced[d]:
            stride *= dims[d]
    for d in range(rank):
        if not reduced[d]:
            out.append(xs[d])
            n_out *= dims[d]
        elif keep:
            out.append(1)
    load_ops.set_output_shape(ctx, op, 0, tuple(out), y)
    dims6, strides6 = [1] * (RANK - rank), [0] * (RANK - rank)
    for d in range(rank):
        dims6.append(xs[d])
        strides6.append(strides[d])
    return xi, yi, dims6, strides6, n_out, code, n_axes == rank
