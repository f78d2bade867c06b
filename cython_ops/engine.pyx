# cython: language_level=3, boundscheck=False, wraparound=False
"""Runs a compiled plan: one nogil loop over (kernel, parameters) steps, nothing allocated per invoke."""
from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport calloc, free
from cpython.dict cimport PyDict_GetItem, PyDict_Size
from cpython.float cimport PyFloat_AsDouble, PyFloat_CheckExact
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsUnsignedLongLong, PyLong_CheckExact
from cpython.exc cimport PyErr_Clear, PyErr_Occurred
from cpython.object cimport PyObject
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from cython_ops.em_params cimport em_params, em_kernel, EM_MAX_PTRS, EM_MAX_INTS, EM_MAX_FLOATS

import numpy as np


cdef extern from "Python.h":
    # PyLong_AsUnsignedLongLong without Cython's raise on error: the caller tests PyErr_Occurred itself
    unsigned long long unsigned_or_error "PyLong_AsUnsignedLongLong"(object v)


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
            self.set_lists(k, fn, ptrs, ints, floats)

    cdef int reserve(self, Py_ssize_t n) except -1:
        """Room for n steps, every kernel null until bind_named sets it (nothing runs before it returns)."""
        free(self.params)
        free(self.kernels)
        self.n = 0
        self.params = <em_params*>calloc(max(n, 1), sizeof(em_params))
        self.kernels = <em_kernel*>calloc(max(n, 1), sizeof(em_kernel))
        if self.params == NULL or self.kernels == NULL:
            raise MemoryError()
        self.n = n
        return 0

    cdef int set_named(self, Py_ssize_t k, uintptr_t fn, tuple spec, made) except -2:
        """Step k from the dicts of a make(): 1 when every value is a plain int / float in a slot of its own kind
        (or a run given as a tuple / list of such), 0 (nothing kept) for anything else, which the caller orders
        and checks through the kernel's layout; -1 when an integer does not fit in 64 bits."""
        cdef em_params* p = &self.params[k]
        cdef Py_ssize_t kind, j, pos, length, limit
        cdef PyObject* item
        cdef object values, v, seq
        cdef int overflow
        cdef long long iv
        cdef unsigned long long uv
        cdef tuple slots
        if fn == 0:
            raise ValueError(f"step {k}: null kernel")
        if len(made) < 3:
            return 0
        for kind in range(3):
            values = made[kind]
            slots = <tuple>spec[1 + kind]
            if type(values) is not dict or PyDict_Size(values) != <Py_ssize_t>spec[4 + kind]:
                return 0
            pos = 0
            limit = EM_MAX_PTRS if kind == 0 else EM_MAX_INTS if kind == 1 else EM_MAX_FLOATS
            for slot in slots:
                name = (<tuple>slot)[0]
                length = (<tuple>slot)[1]
                if pos + length > limit:
                    return 0
                if name is None:            # reserved: not read by the kernel
                    for j in range(length):
                        if kind == 0:
                            p.ptr[pos + j] = NULL
                        elif kind == 1:
                            p.i[pos + j] = 0
                        else:
                            p.f[pos + j] = 0
                    pos += length
                    continue
                item = PyDict_GetItem(values, name)
                if item == NULL:
                    return 0
                if length == 1:
                    seq = None
                else:
                    seq = <object>item
                    if type(seq) is not tuple and type(seq) is not list or len(seq) != length:
                        return 0
                for j in range(length):
                    v = <object>item if seq is None else seq[j]
                    if kind == 1:
                        if v is True or v is False:
                            p.i[pos + j] = 1 if v is True else 0
                            continue
                        if not PyLong_CheckExact(v):
                            return 0
                        iv = PyLong_AsLongLongAndOverflow(v, &overflow)
                        if overflow:
                            return -1
                        p.i[pos + j] = iv
                    elif kind == 0:
                        if not PyLong_CheckExact(v):
                            return 0
                        uv = unsigned_or_error(v)
                        if uv == <unsigned long long>-1 and PyErr_Occurred() != NULL:
                            PyErr_Clear()           # (negative: the layout refuses it; past 64 bits: raised again)
                            if v < 0:
                                return 0
                            PyLong_AsUnsignedLongLong(v)
                        p.ptr[pos + j] = <void*><uintptr_t>uv
                    else:
                        if PyFloat_CheckExact(v):
                            p.f[pos + j] = PyFloat_AsDouble(v)
                        elif PyLong_CheckExact(v):
                            p.f[pos + j] = float(v)
                        else:
                            return 0
                pos += length
        self.kernels[k] = <em_kernel>fn
        return 1

    cdef int set_lists(self, Py_ssize_t k, uintptr_t fn, ptrs, ints, floats) except -1:
        if fn == 0:
            raise ValueError(f"step {k}: null kernel")
        if len(ptrs) > EM_MAX_PTRS or len(ints) > EM_MAX_INTS or len(floats) > EM_MAX_FLOATS:
            raise ValueError(f"step {k}: too many parameters")
        cdef Py_ssize_t j
        for j in range(len(ptrs)):
            self.params[k].ptr[j] = <void*><uintptr_t>ptrs[j]
        for j in range(len(ints)):     # (int(): numpy integers and bools as Python would read them)
            self.params[k].i[j] = int(ints[j])
        for j in range(len(floats)):
            self.params[k].f[j] = float(floats[j])
        self.kernels[k] = <em_kernel>fn
        return 0

    def __dealloc__(self):
        free(self.params)
        free(self.kernels)

    @property
    def num_steps(self):
        return self.n

    def step_bytes(self):
        """Every step's kernel address and parameters as bytes (tests compare two bindings with it)."""
        return (<char*>self.kernels)[:self.n * sizeof(em_kernel)] + (<char*>self.params)[:self.n * sizeof(em_params)]

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


def bind_named(list made, list specs, keepalive, order_by_layout):
    """An Engine of len(made) steps from each step's make() result (pointers, ints, floats dicts by slot name[,
    objects to keep alive]) and its kernel's spec (address, then per kind the slots as (name or None for a
    reserved one, length), then per kind the number of named slots).  Plain values are stored straight from the
    dicts; any other step goes through order_by_layout(k) -> (pointer list, int list, float list), which orders
    and checks them by the kernel's layout (and raises its errors).  Returns (engine, k of the first step with an
    integer beyond 64 bits or -1, the make() extras to keep alive)."""
    cdef Py_ssize_t k, n = len(made)
    cdef Engine engine = Engine([], keepalive)
    engine.reserve(n)
    cdef int r
    cdef tuple spec
    extras = []
    for k in range(n):
        spec = <tuple>specs[k]
        m = made[k]
        if len(m) > 3:
            extras.extend(m[3:])
        r = engine.set_named(k, spec[0], spec, m)
        if r < 0:
            engine.n = k        # (the steps from k on are not set: never run them)
            return engine, k, extras
        if r == 0:
            ptrs, ints, floats = order_by_layout(k)
            if ints and (min(ints) < INT64_MIN or max(ints) > INT64_MAX):
                engine.n = k
                return engine, k, extras
            engine.set_lists(k, spec[0], ptrs, ints, floats)
    return engine, -1, extras


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def step_lifetimes(list steps, Py_ssize_t n_tensors, constants):
    """arena.lifetimes' first part in C: tensor index -> (first step, last step) of every non-constant tensor the
    steps' ops read or write, in the order the steps first meet them; None when an op names a tensor index beyond
    n_tensors (arena.lifetimes then raises as Python does)."""
    cdef Py_ssize_t k, j, t, end = len(steps)
    cdef list order = []
    cdef object group
    cdef int64_t *first = <int64_t *>calloc(n_tensors + 1, sizeof(int64_t) * 2)
    if first == NULL:
        raise MemoryError()
    cdef int64_t *last = first + n_tensors + 1
    try:
        for k in range(end):
            op = (<object>steps[k]).op
            for group in (op.inputs, op.outputs):
                for j in range(len(group)):
                    t = group[j]
                    if t < 0:
                        continue
                    if t >= n_tensors:
                        return None
                    if first[t] == 0:          # (stored as step + 1: zero is "not met yet")
                        if t in constants:
                            first[t] = -1
                            continue
                        first[t] = k + 1
                        order.append(t)
                    elif first[t] < 0:
                        continue
                    last[t] = k
        return {t: (first[t] - 1, last[t]) for t in order}
    finally:
        free(first)


def tensor_bytes(life, dict shapes, list tensors):
    """Tensor index -> its bytes (at least 1) for every tensor of `life`: the arena's sizes, the element count in
    Python integers (numpy's int64 product wraps around silently)."""
    out = {}
    for t in life:
        n = 1
        for d in shapes[t]:
            n *= int(d)
        nbytes = n * (<object>tensors[t]).dtype.itemsize
        out[t] = nbytes if nbytes > 1 else 1
    return out


def arena_requests(list order, dict sizes, dict lifetimes, int64_t align):
    """arena.plan_arena's inputs to load_pack.place_buffers, per buffer of `order`: its size rounded up to `align`,
    its first and its last step (three int64 arrays)."""
    cdef Py_ssize_t i, n = len(order)
    out = np.empty((3, n), np.int64)
    cdef int64_t[:, ::1] v = out
    for i in range(n):
        key = order[i]
        v[0, i] = -(-sizes[key] // align) * align
        first, last = lifetimes[key]
        v[1, i] = first
        v[2, i] = last
    return out[0], out[1], out[2]
