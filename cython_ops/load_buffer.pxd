# The load modules' view of a numpy array's bytes (load_pack.pyx, load_prepare.pyx): inline, no module of its own.
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer


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
