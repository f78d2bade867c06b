# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""uint8 tensors of a .tflite file held as int8 (converters/tflite_uint8.py): the sign bit of each constant byte
flipped (q - 128), in the reader's own copy of the file where no other tensor shares the bytes, and every zero
point moved by -128 into one array.  Not kernels: no KERNELS table."""
from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_RECORDS_RO, PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

import numpy as np

NDARRAY, EMPTY, INT64 = np.ndarray, np.empty, np.dtype(np.int64)

INT8 = np.dtype(np.int8)


cdef void flip_sign_bits(uint8_t* d, const uint8_t* s, Py_ssize_t n) noexcept nogil:
    """d[j] = s[j] ^ 0x80 (d may be s), eight bytes a step."""
    cdef Py_ssize_t j = 0
    cdef uint64_t w
    while j + 8 <= n:
        memcpy(&w, s + j, 8)
        w ^= 0x8080808080808080ULL
        memcpy(d + j, &w, 8)
        j += 8
    while j < n:
        d[j] = s[j] ^ 0x80
        j += 1


cdef bint byte_extent(data, Py_ssize_t* lo, Py_ssize_t* hi) except -1:
    """The addresses [lo, hi) an array's elements span (any strides); False for an empty one."""
    cdef Py_buffer b
    cdef Py_ssize_t k, step
    PyObject_GetBuffer(data, &b, PyBUF_RECORDS_RO)
    try:
        if b.len == 0:
            return False
        lo[0] = hi[0] = <Py_ssize_t>b.buf
        for k in range(b.ndim):
            step = b.strides[k] * (b.shape[k] - 1)
            if step < 0:
                lo[0] += step
            else:
                hi[0] += step
        hi[0] += b.itemsize
        return True
    finally:
        PyBuffer_Release(&b)


cdef set flippable_in_place(file_array, all_tensors):
    """ids of the tensors whose data lies in file_array and shares no byte with another tensor's data: those may
    be rewritten in place (a buffer two tensors read, or a uint8 twin's copy of a constant, may not)."""
    cdef Py_buffer fb
    cdef Py_ssize_t base, end, lo, hi, k, reach
    PyObject_GetBuffer(file_array, &fb, PyBUF_WRITABLE)      # (refuses a read-only one)
    base, end = <Py_ssize_t>fb.buf, <Py_ssize_t>fb.buf + fb.len
    PyBuffer_Release(&fb)
    spans = []
    for t in all_tensors:
        data = t.data
        if data is not None and byte_extent(data, &lo, &hi) and base <= lo and hi <= end:
            spans.append((lo, hi, id(t)))
    spans.sort()
    alone = set()
    reach = base
    for k in range(len(spans)):
        lo, hi = spans[k][0], spans[k][1]
        if lo >= reach and (k + 1 == len(spans) or spans[k + 1][0] >= hi):
            alone.add(spans[k][2])
        reach = max(reach, hi)
    return alone


cdef bint shift_in_place(zp) except -1:
    """zp -= 128 where it is, when it is a writable C-contiguous int64 array; False (untouched) otherwise."""
    cdef Py_buffer b
    cdef Py_ssize_t j
    if type(zp) is not NDARRAY or zp.dtype is not INT64:
        return False
    try:
        PyObject_GetBuffer(zp, &b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS)
    except (BufferError, ValueError):       # (numpy: ValueError for a read-only array)
        return False
    cdef int64_t* z = <int64_t*>b.buf
    for j in range(b.len // 8):
        z[j] -= 128
    PyBuffer_Release(&b)
    return True


def hold_as_int8(list tensors, indices, quant_type, file_array=None, all_tensors=(), bint own_quantizations=False):
    """Each tensor of `indices` (uint8 in the file) as int8 in place: the same bytes with the sign bit flipped
    (q - 128), zero points - 128, a new quant_type(scale, zero_point, axis).  A constant whose bytes lie in
    file_array (the reader's own writable copy of the file) and belong to no other of `all_tensors` (every tensor
    read from the file) is flipped there, its read-only view kept; any other constant is copied.
    own_quantizations: each held tensor's quantization is its own (the reader's: no other tensor holds the object
    or its arrays), so a writable int64 zero point vector is shifted where it is, the object kept."""
    cdef Py_ssize_t j, n
    cdef Py_buffer src, dst
    cdef const uint8_t* s
    cdef uint8_t* d
    cdef const int64_t* z
    cdef int64_t* w
    cdef Py_ssize_t total = 0, off = 0
    held = [tensors[i] for i in indices]
    alone = set()
    if file_array is not None and any(t.data is not None for t in held):
        alone = flippable_in_place(file_array, all_tensors)
    moved = []          # the quantizations whose zero points are still to be moved into a new array
    for t in held:
        q = t.quant
        if q is None:
            continue
        if own_quantizations and shift_in_place(q.zero_point):
            continue
        moved.append(t)
        total += len(q.zero_point)
    shifted = EMPTY(total, INT64)      # every new zero point, in one array (each quantization views its part)
    PyObject_GetBuffer(shifted, &dst, PyBUF_WRITABLE)
    w = <int64_t*>dst.buf
    try:
        for t in moved:
            q = t.quant
            zp = q.zero_point
            if type(zp) is not NDARRAY or zp.dtype is not INT64:
                zp = np.ascontiguousarray(zp, dtype=INT64)
            try:
                PyObject_GetBuffer(zp, &src, PyBUF_C_CONTIGUOUS)
            except BufferError:             # (the reader's zero points never are: they are slices of one array)
                zp = np.ascontiguousarray(zp)
                PyObject_GetBuffer(zp, &src, PyBUF_SIMPLE)
            z, n = <const int64_t*>src.buf, src.len // 8
            for j in range(n):
                w[off + j] = z[j] - 128
            PyBuffer_Release(&src)
            nq = quant_type.__new__(quant_type)     # (the dataclass's fields, set without its __init__)
            nq.scale, nq.zero_point, nq.axis = q.scale, shifted[off:off + n], q.axis
            t.quant = nq
            off += n
    finally:
        PyBuffer_Release(&dst)
    for t in held:
        t.dtype = INT8
        data = t.data
        if data is None:
            continue
        if id(t) in alone and data.flags.c_contiguous:
            PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
            d = <uint8_t*>src.buf        # (bytes of file_array, which is writable: flippable_in_place checked)
            n = src.len
            PyBuffer_Release(&src)
            with nogil:
                flip_sign_bits(d, d, n)
            t.data = data.view(INT8)
            continue
        if not data.flags.c_contiguous:
            data = data.copy()
        out = EMPTY(data.shape, INT8)
        PyObject_GetBuffer(data, &src, 0)
        PyObject_GetBuffer(out, &dst, PyBUF_WRITABLE)
        s, d = <const uint8_t*>src.buf, <uint8_t*>dst.buf
        n = src.len
        with nogil:
            flip_sign_bits(d, s, n)
        PyBuffer_Release(&dst)
        PyBuffer_Release(&src)
        t.data = out
