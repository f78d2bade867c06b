# cython: language_level=3, boundscheck=False, wraparound=False
"""The load-time 256-entry tables (edgeml/runtime/tables.py) in one call each (issue 15): the op's own scalar
kernel run once, straight from its parameters, on every input byte or on every (constant value, byte) pair, with
no Engine built for the single step.  The same kernel and parameters as tables.py's Engine forms (their twins,
which tests/test_load_fast_paths.py swaps in), so the same bytes.  Not kernels: no KERNELS table."""
from libc.stdint cimport int64_t, uintptr_t
from libc.string cimport memset
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer

from cython_ops.em_params cimport em_params, em_kernel, EM_MAX_PTRS, EM_MAX_INTS, EM_MAX_FLOATS
from cython_ops.load_buffer cimport buffer_bytes

cdef unsigned char BYTES[256]
cdef int k
for k in range(256):
    BYTES[k] = k


cdef int fill(em_params* p, ints, floats) except -1:
    """The int and float slots from lists laid out as the kernel's Layout orders them (Engine.set_lists's
    reading: int() / float() of each, an integer outside int64 raises OverflowError)."""
    cdef Py_ssize_t j, ni = len(ints), nf = len(floats)
    if ni > EM_MAX_INTS or nf > EM_MAX_FLOATS:
        raise ValueError("too many parameters")
    for j in range(ni):
        p.i[j] = int(ints[j])
    for j in range(nf):
        p.f[j] = float(floats[j])
    return 0


def byte_table(uintptr_t fn, Py_ssize_t input_slot, Py_ssize_t output_slot, ints, floats, out):
    """Element-wise kernel `fn` run once over the 256 bytes 0..255 (pointer slot input_slot) into `out` (pointer
    slot output_slot: a C-contiguous array of 256 elements of the kernel's output type, `itemsize` bytes each);
    `ints` (n = 256 included) and `floats`: its laid-out slots.  Returns out."""
    if fn == 0 or not (0 <= input_slot < EM_MAX_PTRS and 0 <= output_slot < EM_MAX_PTRS):
        raise ValueError("byte_table: no kernel or a pointer slot out of range")
    cdef em_params p
    memset(&p, 0, sizeof(em_params))
    fill(&p, ints, floats)
    cdef unsigned char x[256]
    cdef int b
    for b in range(256):
        x[b] = BYTES[b]             # (a copy: the kernel's input pointer is not const)
    p.ptr[input_slot] = x
    p.ptr[output_slot] = buffer_bytes(out, 256 * out.dtype.itemsize, b"byte_table")
    (<em_kernel>fn)(&p)
    return out


def periodic_byte_table(uintptr_t fn, ptrs, ints, out, Py_ssize_t period, Py_ssize_t itemsize):
    """Binary kernel `fn` run once with laid-out pointer and int slots (the 256 bytes, the constant and `out`'s
    address among `ptrs`, which the caller keeps alive) after checking `out` (C-contiguous) holds at least
    period * 256 elements of `itemsize` bytes.  Returns out."""
    if fn == 0 or len(ptrs) > EM_MAX_PTRS:
        raise ValueError("periodic_byte_table: no kernel or too many pointers")
    cdef Py_buffer view
    PyObject_GetBuffer(out, &view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
    cdef Py_ssize_t length = view.len
    PyBuffer_Release(&view)
    if period < 0 or length < period * 256 * itemsize:
        raise ValueError(f"periodic_byte_table: {length} bytes where {period * 256 * itemsize} are written")
    cdef em_params p
    memset(&p, 0, sizeof(em_params))
    fill(&p, ints, ())
    cdef Py_ssize_t j
    for j in range(len(ptrs)):
        p.ptr[j] = <void*><uintptr_t>ptrs[j]
    (<em_kernel>fn)(&p)
    return out
