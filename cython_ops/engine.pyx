# cython: language_level=3, boundscheck=False, wraparound=False
"""Runs a compiled plan: one nogil loop over (kernel, parameters) steps, nothing allocated per invoke."""
from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport calloc, free
from libc.string cimport memmove
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from cython_ops.em_params cimport em_params, em_kernel, EM_MAX_PTRS, EM_MAX_INTS, EM_MAX_FLOATS

import numpy as np


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef class Engine:
    """Steps are (kernel address, pointer list, int list, float list); addresses come from a module's KERNELS.
    An integer outside int64 raises OverflowError."""
    cdef em_params* params
    cdef em_kernel* kernels
    cdef Py_ssize_t n
    cdef object keepalive

    def __cinit__(self, steps, keepalive=None):
        cdef Py_ssize_t k, j
        self.n = len(steps)
        self.params = <em_params*>calloc(max(self.n, 1), sizeof(em_params))
        self.kernels = <em_kernel*>calloc(max(self.n, 1), sizeof(em_kernel))
        if self.params == NULL or self.kernels == NULL:
            raise MemoryError()
        self.keepalive = keepalive
        for k, (fn, ptrs, ints, floats) in enumerate(steps):
            if fn == 0:
                raise ValueError(f"step {k}: null kernel")
            if len(ptrs) > EM_MAX_PTRS or len(ints) > EM_MAX_INTS or len(floats) > EM_MAX_FLOATS:
                raise ValueError(f"step {k}: too many parameters")
            self.kernels[k] = <em_kernel><uintptr_t>fn
            for j in range(len(ptrs)):
                self.params[k].ptr[j] = <void*><uintptr_t>ptrs[j]
            for j in range(len(ints)):     # (int(): numpy integers and bools as Python would read them)
                self.params[k].i[j] = int(ints[j])
            for j in range(len(floats)):
                self.params[k].f[j] = float(floats[j])

    def __dealloc__(self):
        free(self.params)
        free(self.kernels)

    @property
    def num_steps(self):
        return self.n

    @property
    def arrays_address(self):
        """(address of the em_kernel array, address of the em_params array): a control-flow kernel (WHILE) runs
        this engine's steps from inside its own, without the GIL; valid while the engine lives."""
        return <uintptr_t>self.kernels, <uintptr_t>self.params

    def invoke(self):
        cdef Py_ssize_t k
        with nogil:
            for k in range(self.n):
                self.kernels[k](&self.params[k])

    def invoke_with_input(self, x, uintptr_t dst, Py_ssize_t nbytes):
        """Copies `x` (any C-contiguous buffer of exactly `nbytes` bytes) to address `dst`, then invokes: run()'s
        fast path in one call.  False, with nothing copied or run, for any other object."""
        cdef Py_buffer buf
        cdef Py_ssize_t k
        try:
            PyObject_GetBuffer(x, &buf, PyBUF_C_CONTIGUOUS)
        except (BufferError, ValueError, TypeError):
            return False
        if buf.len != nbytes:
            PyBuffer_Release(&buf)
            return False
        memmove(<void*>dst, buf.buf, nbytes)      # x may itself be a view of this arena
        PyBuffer_Release(&buf)
        with nogil:
            for k in range(self.n):
                self.kernels[k](&self.params[k])
        return True

    def invoke_range(self, Py_ssize_t start, Py_ssize_t stop):
        """Runs steps [start, stop) only (debugging: inspect tensors between steps)."""
        cdef Py_ssize_t k
        if start < 0 or stop > self.n or start > stop:
            raise IndexError(f"step range [{start}, {stop}) outside [0, {self.n})")
        with nogil:
            for k in range(start, stop):
                self.kernels[k](&self.params[k])

    def invoke_profiled(self):
        """Runs once and returns the nanoseconds each step took (int64 array)."""
        cdef Py_ssize_t k
        times = np.zeros(self.n, dtype=np.int64)
        cdef int64_t[::1] t = times
        cdef int64_t t0
        with nogil:
            for k in range(self.n):
                t0 = now_ns()
                self.kernels[k](&self.params[k])
                t[k] = now_ns() - t0
        return times
