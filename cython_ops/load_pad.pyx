# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""PAD's prepare in one call for its common form (issue 15): what ops/shape.prepare_pad reads, checks and computes
for a PAD with constant int32 / int64 paddings, or None wherever a check would refuse the op or a less common form
applies (PADV2, rank over 6, ...): the Python path then decides, with its messages (it is this shell's twin;
tests/test_load_ops3.py compares both).  Not kernels: no KERNELS table."""
from libc.stdint cimport int64_t

import numpy

from cython_ops import load_ops
from cython_ops.load_buffer cimport per_tensor

cdef enum:
    RANK = 6                 # the kernels' dims (common.pad6)

cdef object F64 = numpy.dtype(numpy.float64), I64 = numpy.dtype(numpy.int64)    # the IR's quantization types
cdef int64_t MAX_DIM = (<int64_t>1) << 40     # any shape the arena budget admits is far below


def pad_shell(ctx, op, int8_dtype, int16_dtype, uint8_dtype, int32_dtype, int64_dtype):
    """A PAD (not PADV2) of a tensor of rank up to 6 with constant int32 / int64 paddings of shape (rank, 2), none
    negative, equal types and (common.require_same_quant) quantization, int8 with an int8 zero point: sets the
    output shape and returns (paddings as [[before, after]] Python ints, the pad value (the int8 zero point, else 0),
    the pad kernel's integers).  None wherever the Python path must decide."""
    if op.type != "PAD":
        return None
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 2 or len(outputs) < 1:
        return None
    xi, pi, yi = inputs[0], inputs[1], outputs[0]
    constants = ctx.constants
    if xi < 0 or pi < 0 or yi < 0 or pi not in constants:
        return None
    tensors = ctx.graph.tensors
    x, y = tensors[xi], tensors[yi]
    xs = ctx.shapes.get(xi)
    dtype = x.dtype
    if type(xs) is not tuple or dtype != y.dtype:
        return None
    cdef Py_ssize_t rank = len(xs), d
    if rank > RANK:
        return None
    pads = constants[pi]
    if (pads.dtype != int32_dtype and pads.dtype != int64_dtype) or pads.shape != (rank, 2):
        return None
    rows = pads.tolist()
    value = 0
    if dtype == int8_dtype or dtype == int16_dtype:
        params = per_tensor(x, F64, I64)
        if params is None or params != per_tensor(y, F64, I64):
            return None
        if dtype == int8_dtype:
            value = params[1]
            if not -128 <= value <= 127:
                return None
    elif dtype == uint8_dtype and (x.quant is not None or y.quant is not None):
        return None
    cdef int64_t dims[RANK]
    cdef int64_t out[RANK]
    cdef int64_t lead[RANK]
    cdef int64_t strides[RANK]
    cdef int64_t before, after, size, origin = 0, count = 1
    for d in range(RANK):
        dims[d] = out[d] = 1
        lead[d] = 0
    for d in range(rank):
        size, row = xs[d], rows[d]
        if type(size) is not int or not (0 <= size <= MAX_DIM and 0 <= row[0] <= MAX_DIM and 0 <= row[1] <= MAX_DIM):
            return None
        before, after = row[0], row[1]
        dims[RANK - rank + d] = size
        out[RANK - rank + d] = size + before + after
        lead[RANK - rank + d] = before
    strides[RANK - 1] = 1
    for d in range(RANK - 2, -1, -1):
        strides[d] = strides[d + 1] * out[d + 1]
        if strides[d] > MAX_DIM:
            return None
    for d in range(RANK):
        origin += lead[d] * strides[d]
        count *= out[d]
    if count > MAX_DIM:
        return None
    load_ops.set_output_shape(ctx, op, 0, tuple([out[d] for d in range(RANK - rank, RANK)]), y)
    ints = dict(itemsize=dtype.itemsize, dims=[dims[d] for d in range(RANK)],
                out_strides=[strides[d] for d in range(RANK - 1)] + [0], origin=origin, out_count=count)
    return rows, value, ints


cdef object ABSENT = object()


def sole_readers(ops):
    """{tensor: the one op of `ops` whose inputs hold it, or None when several do} for every tensor some op reads:
    shape.sole_reader(ops, t) for all t in one pass (its twin: shape.sole_readers), so that each PAD of a graph
    looks its reader up instead of passing over every op."""
    cdef dict found = {}
    cdef Py_ssize_t k, j, n
    cdef bint again
    for o in ops:
        inputs = o.inputs
        n = len(inputs)
        for k in range(n):
            t = inputs[k]
            again = False
            for j in range(k):          # (a tensor an op reads twice: that op once)
                if inputs[j] == t:
                    again = True
                    break
            if not again:
                found[t] = o if found.get(t, ABSENT) is ABSENT else None
    return found
