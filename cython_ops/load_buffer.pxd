# The load modules' view of a numpy array's bytes and of a tensor's per-tensor quantization (load_pack.pyx,
# load_prepare.pyx, load_shell.pyx, load_ops.pyx): inline, no module of its own.
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer
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
