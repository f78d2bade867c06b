# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""TILE's prepare in one call for its common form (issue 15): what ops/index.prepare_tile reads, checks and computes
for an input of rank up to 6 tiled by constant int32 / int64 multiples (tile_shell: a non-constant input; tile_fold:
a constant one, np.tile's values folded), or None wherever a check would refuse the op or another form applies: the
Python path then decides, with its messages (it is these shells' twin; tests/test_load_tile.py compares both).  Not
kernels: no KERNELS table."""
from libc.stdint cimport int64_t
from libc.string cimport memcpy

import numpy

from cython_ops import load_ops
from cython_ops.load_buffer cimport buffer_bytes, per_tensor

cdef enum:
    RANK = 6                 # the kernels' dims (common.pad6)

cdef object F64 = numpy.dtype(numpy.float64), I64 = numpy.dtype(numpy.int64)    # the IR's quantization types
cdef object I32 = numpy.dtype(numpy.int32)
cdef object QUANTIZED = (numpy.dtype(numpy.int8), numpy.dtype(numpy.uint8), numpy.dtype(numpy.int16))
cdef int64_t MAX_DIM = (<int64_t>1) << 40     # any shape the arena budget admits is far below


cdef object tile_head(ctx, op, value_types, bint constant):
    """(input index, output index, input type, the input's and output's 6 dims) of a TILE whose input is (with
    `constant`) or is not a constant, rank up to 6, a type of `value_types` (index.VALUE_TYPES), tiled by a
    constant int32 / int64 vector of non-negative multiples, types and (element_types.require_equal_quantization)
    quantization equal; None wherever the Python path must decide."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 2 or len(outputs) < 1:
        return None
    xi, mi, yi = inputs[0], inputs[1], outputs[0]
    constants = ctx.constants
    if xi < 0 or mi < 0 or yi < 0 or (xi in constants) != constant or mi not in constants:
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
    return xi, yi, x, y, dtype, in6, out6, rank


def tile_shell(ctx, op, value_types):
    """A TILE of a non-constant input (tile_head's form): sets the output shape and returns (input index, output
    index, the tile kernel's integers).  None wherever the Python path must decide."""
    head = tile_head(ctx, op, value_types, False)
    if head is None:
        return None
    xi, yi, x, y, dtype, in6, out6, rank = head
    strides = [0] * RANK
    acc = 1
    for k in range(RANK - 1, -1, -1):
        strides[k] = acc
        acc *= in6[k]
    load_ops.set_output_shape(ctx, op, 0, tuple(out6[RANK - rank:]), y)
    return xi, yi, dict(itemsize=dtype.itemsize, out_dims=out6, in_dims=in6, in_strides=strides)


cdef int64_t FOLD_LIMIT = 1 << 24      # elements of a folded TILE (larger: the Python path's np.tile)


def tile_fold(ctx, op, value_types):
    """A TILE of a constant input (tile_head's form, the data C-contiguous of the input's type and shape) folded:
    np.tile's values as the output's constant (folding.fold's result) when the output is not a graph output.
    Returns True when it folded; None wherever the Python path (np.tile, then fold) must decide."""
    head = tile_head(ctx, op, value_types, True)
    if head is None:
        return None
    xi, yi, x, y, dtype, in6, out6, rank = head
    data = ctx.constants[xi]
    if yi in ctx.graph.outputs or type(data) is not numpy.ndarray or data.dtype != dtype or \
            data.shape != tuple(in6[RANK - rank:]) or not data.flags.c_contiguous:
        return None
    cdef int64_t ins[RANK]
    cdef int64_t outs[RANK]
    cdef int64_t strides[RANK]
    cdef int64_t index[RANK]
    cdef int64_t total = 1, acc = 1, n, at = 0, itemsize = dtype.itemsize
    cdef Py_ssize_t k
    for k in range(RANK):
        ins[k], outs[k], index[k] = in6[k], out6[k], 0
        total *= outs[k]
        if total > FOLD_LIMIT:
            return None
    for k in range(RANK - 1, -1, -1):
        strides[k] = acc
        acc *= ins[k]
    value = numpy.empty(tuple(out6[RANK - rank:]), dtype)
    cdef char* dst = buffer_bytes(value, total * itemsize, b"tile_fold")
    cdef const char* src = buffer_bytes(data, acc * itemsize, b"tile_fold")
    cdef Py_ssize_t last = RANK - 1         # the trailing dims not tiled and the one tiled above them: one input
    while last > 0 and ins[last] == outs[last]:      # block (contiguous) copied `repeats` times per output row
        last -= 1
    cdef int64_t row = strides[last] * ins[last] * itemsize, repeats = outs[last] // ins[last] if total else 0, r
    for n in range(total // (outs[last] * strides[last]) if total else 0):   # each output row: its input row
        for r in range(repeats):                                                # `repeats` times
            memcpy(dst, src + at * itemsize, row)
            dst += row
        k = last - 1               # row-major odometer over the outer dims; `at` the input row they repeat
        while k >= 0:
            index[k] += 1
            if index[k] % ins[k] == 0:
                at -= (ins[k] - 1) * strides[k]      # (back to this dim's first input element)
            else:
                at += strides[k]
            if index[k] < outs[k]:
                break
            index[k] = 0
            k -= 1
    load_ops.set_output_shape(ctx, op, 0, tuple(out6[RANK - rank:]), y)
    ctx.constants[yi] = value
    return True
