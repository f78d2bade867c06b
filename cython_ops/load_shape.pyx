# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The converter's shape arithmetic folded at load in one call per op (issue 15): SHAPE of a tensor whose shape
is known, PACK of constant int32 / int64 values and the strided gather of a constant (STRIDED_SLICE's) become the
constants the ops after them read, as ops/folding.fold makes them (a fresh C-ordered array of the output's type in
ctx.constants, the output shape set).  Each returns True when it folded and None wherever the Python path decides
(index.prepare_shape, shape.prepare_pack, shape.prepare_strided_slice with folding.strided_values, their twins):
a graph output (which needs a copy step), another type, anything its checks would refuse.  Not kernels: no
KERNELS table.  tests/test_load_shape_fold.py compares both paths; test_load_fast_paths.py swaps the twins in."""
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy

import numpy

from cython_ops import load_ops
from cython_ops.load_buffer cimport buffer_bytes

cdef int64_t INT32_MAX = 2147483647
cdef int64_t MAX_DIM = (<int64_t>1) << 40      # any shape the arena budget admits is far below
cdef int64_t MAX_ELEMENTS = 1 << 16            # folded shape arithmetic is a few numbers; larger: the Python path
cdef enum:
    RANK = 6


def shape_fold(ctx, op, int32_dtype, int64_dtype):
    """SHAPE (index.prepare_shape's twin): the input's shape as an int32 / int64 vector."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 1 or len(outputs) < 1:
        return None
    xi, yi = inputs[0], outputs[0]
    if xi < 0 or yi < 0:
        return None
    graph = ctx.graph
    y = graph.tensors[yi]
    dtype = y.dtype
    cdef bint wide = dtype == int64_dtype
    if not (wide or dtype == int32_dtype) or yi in graph.outputs:
        return None
    xs = ctx.shapes.get(xi)
    if type(xs) is not tuple:
        return None
    cdef Py_ssize_t rank = len(xs), k
    value = numpy.empty((rank,), dtype)
    cdef char* out = buffer_bytes(value, rank * (8 if wide else 4), b"shape_fold")
    cdef int64_t d
    for k in range(rank):
        v = xs[k]
        if type(v) is not int or not 0 <= v <= INT32_MAX:
            return None
        d = v
        if wide:
            (<int64_t*>out)[k] = d
        else:
            (<int32_t*>out)[k] = <int32_t>d
    load_ops.set_output_shape(ctx, op, 0, (rank,), y)
    ctx.constants[yi] = value
    return True


cdef int64_t product(dims, Py_ssize_t first, Py_ssize_t last):
    """The product of dims[first:last] (Python ints 0..MAX_DIM checked by the caller's shape)."""
    cdef int64_t n = 1
    cdef Py_ssize_t k
    for k in range(first, last):
        n *= <int64_t>dims[k]
    return n


cdef bint plain_shape(shape) except -1:
    """A tuple of at most RANK Python ints in 0..MAX_DIM whose nonzero ones multiply to at most MAX_ELEMENTS (so
    no product of some of them, nor a dimension times a stride of at most MAX_DIM, overflows 64 bits, even in a
    shape with no elements)."""
    if type(shape) is not tuple or len(shape) > RANK:
        return False
    cdef int64_t n = 1
    for d in shape:
        if type(d) is not int or not 0 <= d <= MAX_DIM:
            return False
        if d != 0:
            n *= <int64_t>d
            if n > MAX_ELEMENTS:
                return False
    return True


def pack_fold(ctx, op, int32_dtype, int64_dtype):
    """PACK of constant int32 / int64 inputs (shape.prepare_pack's twin): values_count equal-shaped inputs of the
    output's type stacked on a new axis (np.stack's result; scalars give a vector)."""
    inputs, outputs = op.inputs, op.outputs
    cdef Py_ssize_t count = len(inputs), k, o
    if count < 1 or len(outputs) < 1 or outputs[0] < 0:
        return None
    yi = outputs[0]
    graph = ctx.graph
    tensors, shapes, constants = graph.tensors, ctx.shapes, ctx.constants
    y = tensors[yi]
    dtype = y.dtype
    if not (dtype == int32_dtype or dtype == int64_dtype) or yi in graph.outputs:
        return None
    options = op.options
    values_count, axis = options.get("values_count", 0), options.get("axis", 0)
    if type(values_count) is not int or values_count != count or type(axis) is not int:
        return None
    first = shapes.get(inputs[0])
    if not plain_shape(first):
        return None
    cdef Py_ssize_t rank = len(first)
    cdef Py_ssize_t a = axis + rank + 1 if axis < 0 else axis
    if not 0 <= a <= rank or rank + 1 > RANK:
        return None
    values = []
    for k in range(count):
        i = inputs[k]
        if i < 0 or tensors[i].dtype != dtype or shapes.get(i) != first:
            return None
        data = constants.get(i)
        if type(data) is not numpy.ndarray or data.dtype != dtype or data.shape != first or \
                not data.flags.c_contiguous:
            return None
        values.append(data)
    out = first[:a] + (count,) + first[a:]
    cdef int64_t outer = product(first, 0, a), inner = product(first, a, rank) * dtype.itemsize
    value = numpy.empty(out, dtype)
    cdef char* dst = buffer_bytes(value, outer * count * inner, b"pack_fold")
    cdef const char* src
    for k in range(count):
        src = buffer_bytes(values[k], outer * inner, b"pack_fold")
        for o in range(outer):
            memcpy(dst + (o * count + k) * inner, src + o * inner, inner)
    load_ops.set_output_shape(ctx, op, 0, out, y)
    constants[yi] = value
    return True


def gather_fold(ctx, op, data, out_shape, first, strides):
    """The strided gather of constant `data` (folding.strided_values's twin: out[i...] = data.flat[first +
    sum(i_k * strides[k])]) as output 0 of `op`, for data of the output's type, C-contiguous, every index read
    inside it."""
    outputs = op.outputs
    if len(outputs) < 1 or outputs[0] < 0:
        return None
    yi = outputs[0]
    graph = ctx.graph
    y = graph.tensors[yi]
    if yi in graph.outputs or type(data) is not numpy.ndarray or data.dtype != y.dtype or \
            not data.flags.c_contiguous:
        return None
    shape = tuple(out_shape)
    if not plain_shape(shape) or len(strides) != len(shape) or type(first) is not int or not 0 <= first <= MAX_DIM:
        return None
    cdef int64_t start = first
    cdef Py_ssize_t rank = len(shape), k
    cdef int64_t dims[RANK]
    cdef int64_t steps[RANK]
    cdef int64_t index[RANK]
    cdef int64_t low = start, high = start, total = 1, size = data.size, itemsize = data.dtype.itemsize
    for k in range(rank):
        s = strides[k]
        if type(s) is not int or not -MAX_DIM <= s <= MAX_DIM:
            return None
        dims[k], steps[k], index[k] = shape[k], s, 0
        total *= dims[k]
        if dims[k] > 0:
            if steps[k] > 0:
                high += (dims[k] - 1) * steps[k]
            else:
                low += (dims[k] - 1) * steps[k]
    if total > 0 and not (0 <= low and high < size):
        return None
    value = numpy.empty(shape, y.dtype)
    cdef char* dst = buffer_bytes(value, total * itemsize, b"gather_fold")
    cdef const char* src = buffer_bytes(data, size * itemsize, b"gather_fold")
    cdef int64_t n, at = start
    for n in range(total):        # row-major odometer over the output
        memcpy(dst + n * itemsize, src + at * itemsize, itemsize)
        k = rank - 1
        while k >= 0:
            index[k] += 1
            at += steps[k]
            if index[k] < dims[k]:
                break
            at -= dims[k] * steps[k]
            index[k] = 0
            k -= 1
    load_ops.set_output_shape(ctx, op, 0, shape, y)
    ctx.constants[yi] = value
    return True
