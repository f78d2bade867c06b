# The load modules' view of a numpy array's bytes, of a tensor's per-tensor quantization and of an op's first input
# and output (load_pack, load_prepare, load_shell, load_ops, load_tables): inline, no module of its own.
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_STRIDES, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int64_t


cdef inline char* buffer_bytes(obj, Py_ssize_t nbytes, const char* what) except NULL:
    """The first byte of a C-contiguous buffer of exactly nbytes (numpy keeps it where it is while the array
    lives; reading the pointer costs a tenth of a typed memoryview)."""
    cdef Py_buffer view
    PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS)
    cdef char* where = <char*>view.buf
    cdef Py_ssize_t length = view.len
    PyBuffer_Release(&view)
    if length != nbytes:
        raise ValueError(f"{what.decode()}: an array of {length} bytes where {nbytes} were expected")
    return where if nbytes else <char*>1


cdef inline size_t buffer_address(obj) except? 0:
    """The start of the buffer an object exports (an array's first element; numpy's
    __array_interface__["data"][0] without building the interface dict)."""
    cdef Py_buffer view
    PyObject_GetBuffer(obj, &view, PyBUF_STRIDES)
    cdef size_t where = <size_t>view.buf
    PyBuffer_Release(&view)
    return where


cdef inline bint same_dtype(d, want):
    """d == want, by identity first (numpy hands out one dtype object per built-in type)."""
    return d is want or d == want


cdef inline object per_tensor(t, float64_dtype, int64_dtype):
    """(scale, zero point) of a tensor quantized per tensor with a positive scale (common.qparams), else None."""
    q = t.quant
    if q is None:
        return None
    scale, zero_point = q.scale, q.zero_point
    if scale.size != 1 or zero_point.size < 1:
        return None
    cdef double s
    if scale.dtype is float64_dtype and zero_point.dtype is int64_dtype and zero_point.size == 1:
        # (the IR's types: the values read in place, no numpy scalars made)
        s = (<const double*>buffer_bytes(scale, 8, b"per_tensor"))[0]
        if not s > 0:
            return None
        return s, (<const int64_t*>buffer_bytes(zero_point, 8, b"per_tensor"))[0]
    s = float(scale[0])
    if not s > 0:
        return None
    return s, int(zero_point[0])


cdef inline object one_in_one_out(ctx, op, x_dtype, y_dtype):
    """(input index, output index, input tensor, output tensor, input shape) of an op's first input and output when
    both are there with types x_dtype / y_dtype and the input's shape is known (a tuple); else None (the shells'
    common head: the Python path then decides)."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 1 or len(outputs) < 1:
        return None
    xi, yi = inputs[0], outputs[0]
    if xi < 0 or yi < 0:
        return None
    tensors = ctx.graph.tensors
    x, y = tensors[xi], tensors[yi]
    if x.dtype != x_dtype or y.dtype != y_dtype:
        return None
    xs = ctx.shapes.get(xi)
    if type(xs) is not tuple:
        return None
    return xi, yi, x, y, xs


cdef inline int64_t element_count(shape, int64_t limit):
    """The element count of `shape` (a tuple of Python ints, each 0..limit, the product at most limit too), or -1
    for anything else (the Python path then decides)."""
    cdef int64_t n = 1
    for d in shape:
        if type(d) is not int or not 0 <= d <= limit:
            return -1
        n *= d
        if n > limit:
            return -1
    return n


cdef inline object counted_one_in_one_out(ctx, op, x_dtype, y_dtype, int64_t limit):
    """one_in_one_out's tuple with the input's element count after it (element_count within limit); None when
    either gives none."""
    head = one_in_one_out(ctx, op, x_dtype, y_dtype)
    if head is None:
        return None
    cdef int64_t n = element_count(head[4], limit)
    if n < 0:
        return None
    return head + (n,)


cdef inline object concatenation_geometry(list in_shapes, axis, Py_ssize_t itemsize):
    """(output shape, rows outside the axis, each input's row bytes) of a CONCATENATION of tensors shaped in_shapes
    (tuples, at least one) along the `axis` option (negative counts from the end): equal ranks and dims off the
    axis, the output's dims Python ints >= 0; None wherever the Python path must decide."""
    if type(axis) is not int:
        return None
    first = in_shapes[0]
    cdef Py_ssize_t rank = len(first), d
    if axis < 0:
        axis += rank
    if not 0 <= axis < rank:
        return None
    along = 0
    for s in in_shapes:
        if len(s) != rank:
            return None
        for d in range(rank):
            if d != axis and s[d] != first[d]:
                return None
        along += s[axis]
    out = first[:axis] + (along,) + first[axis + 1:]
    for v in out:
        if type(v) is not int or v < 0:
            return None
    outer = 1
    for v in first[:axis]:
        outer *= v
    rows = []
    for s in in_shapes:
        inner = itemsize
        for v in s[axis:]:
            inner *= v
        rows.append(inner)
    return out, outer, rows
