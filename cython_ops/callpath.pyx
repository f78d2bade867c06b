# cython: language_level=3, boundscheck=False, wraparound=False
"""Interpreter's call path in C: set_input / invoke / get_output / run (issue 15).

Everything each call checks is prepared once per plan (`CallPath._bind_calls`): per input its arena address, byte
count, shape and dtype, per output the same and a read-only view.  A call then takes the interpreter's lock (a C
lock, `CallLock`), checks its argument against the slot (exact numpy array, dtype, shape, C-contiguous, read from
the array's buffer) and copies; anything it does not take -- another type, dtype or shape, a non-contiguous array,
an input with value bounds, an interpreter being re-planned, a first call -- goes to the Interpreter's checked
Python path (`_set_input_slow`, `_invoke_slow`, `_get_output_slow`, `_run_slow`), which names the problem or
handles it.  The lock is held from the copy in to the copies out, so one run() is atomic when threads share the
interpreter."""
cimport cython
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memmove
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_STRIDES, PyBUF_WRITABLE, PyBUF_C_CONTIGUOUS
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM
from cpython.exc cimport PyErr_CheckSignals
from cpython.long cimport PyLong_CheckExact
from cpython.object cimport PyObject
from cpython.pythread cimport PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock, \
    PyThread_acquire_lock, PyThread_release_lock, NOWAIT_LOCK, PyLockStatus, PY_LOCK_ACQUIRED

from cython_ops.em_params cimport em_params, em_kernel

import numpy as np

cdef object ndarray = np.ndarray
cdef object empty = np.empty

cdef extern from "sched.h":
    int sched_yield() nogil

cdef extern from "Python.h":
    unsigned long thread_ident "PyThread_get_thread_ident"()
    PyLockStatus acquire_timed "PyThread_acquire_lock_timed"(PyThread_type_lock lock, long long microseconds,
                                                             int intr_flag) nogil
    Py_ssize_t index_or_minus_one "PyLong_AsSsize_t"(object v)   # -1 also for an error, which the caller clears
    void PyErr_Clear()
    ctypedef struct em_type "PyTypeObject":
        Py_ssize_t tp_weaklistoffset
    em_type* type_of "Py_TYPE"(PyObject* o)
    Py_ssize_t refcount "Py_REFCNT"(PyObject* o)

cdef enum:
    MAX_DIMS = 8            # an input or output of more dimensions takes the checked path
    MAX_FAST_INPUTS = 16    # run() of more inputs takes the checked path
    SPARE_BYTES = 65536     # outputs up to this size are copied into a spare array when one is free (copy_out)


cdef class CallLock:
    """A reentrant lock with threading.RLock's contract (acquire / release / `with`), which the call path takes and
    gives back in C with no system call: its fields are read and written only with the GIL held, so taking a free
    lock is a test and two stores.  A thread that finds it held sleeps (without the GIL) on a wake-up lock, 50 ms
    at a time, looking for Ctrl-C between.  A release while threads wait posts the wake-up lock and promises the
    lock to a waiter (handoff): a thread arriving meanwhile lets the GIL go until a waiter has taken it, so that
    threads sharing an interpreter take turns (the thread that just released it would otherwise take it again
    before the woken one gets the GIL, again and again).  (The GIL it leans on is there on a free-threaded CPython
    too: this module declares no free-threading support, so importing it turns the GIL back on.)"""
    cdef PyThread_type_lock wake
    cdef unsigned long owner
    cdef Py_ssize_t depth, waiters
    cdef bint handoff

    def __cinit__(self):
        self.wake = PyThread_allocate_lock()
        if self.wake == NULL:
            raise MemoryError()
        PyThread_acquire_lock(self.wake, NOWAIT_LOCK)      # held: a waiter sleeps until a release posts it

    def __dealloc__(self):
        if self.wake != NULL:
            PyThread_free_lock(self.wake)

    cdef int take(self) except -1:
        cdef unsigned long me = thread_ident()
        if self.depth and self.owner == me:
            self.depth += 1
            return 0
        while self.handoff and self.waiters and not self.depth:    # promised to a woken waiter: let it in
            with nogil:
                sched_yield()
        if not self.depth:
            self.owner, self.depth, self.handoff = me, 1, False
            return 0
        self.waiters += 1
        try:
            while self.depth:
                with nogil:
                    acquire_timed(self.wake, 50000, 1)
                PyErr_CheckSignals()
        finally:
            self.waiters -= 1
        self.owner, self.depth, self.handoff = me, 1, False
        return 0

    cdef void give(self) noexcept:
        self.depth -= 1
        if self.depth == 0:
            self.owner = 0
            if self.waiters:
                self.handoff = True
                PyThread_release_lock(self.wake)    # (a post nobody takes only makes a later wait return early)

    def acquire(self, blocking=True):
        """Takes the lock (again, if this thread holds it); with blocking=False returns False at once if another
        thread holds it."""
        if not blocking and (self.depth and self.owner != thread_ident() or
                             not self.depth and self.handoff and self.waiters):
            return False
        self.take()
        return True

    def release(self):
        if not (self.depth and self.owner == thread_ident()):
            raise RuntimeError("cannot release un-acquired lock")
        self.give()

    def _is_owned(self):
        return bool(self.depth and self.owner == thread_ident())

    def __enter__(self):
        self.take()
        return True

    def __exit__(self, *exc):
        self.release()
        return False


cdef struct Slot:
    char* data              # the tensor's bytes in the arena
    Py_ssize_t nbytes
    Py_ssize_t itemsize
    int ndim
    Py_ssize_t shape[MAX_DIMS]
    bint fast               # set_input / run may copy into it without the checked path (no value bounds to check)


cdef int fill_slot(Slot* s, view, bint fast) except -1:
    cdef Py_buffer buf
    cdef int d
    PyObject_GetBuffer(view, &buf, PyBUF_C_CONTIGUOUS)
    s.data, s.nbytes, s.itemsize, s.ndim = <char*>buf.buf, buf.len, buf.itemsize, buf.ndim
    s.fast = fast and buf.ndim <= MAX_DIMS
    for d in range(min(buf.ndim, MAX_DIMS)):
        s.shape[d] = buf.shape[d]
    PyBuffer_Release(&buf)          # (the view, which the CallPath keeps, keeps the bytes)
    return 0


cdef extern from *:
    """
    /* The fields every numpy array starts with: numpy's PyArrayObject_fields, its public ABI from 1.7 through 2.x.
       Read only for objects of exactly np.ndarray, and only once check_fields() has found them where they should
       be on live arrays at import. */
    typedef struct {
        PyObject_HEAD
        char *data;
        int nd;
        Py_ssize_t *dimensions;
        Py_ssize_t *strides;
        PyObject *base;
        PyObject *descr;
        int flags;
    } em_ndarray;
    """
    ctypedef struct em_ndarray:
        char* data
        int nd
        Py_ssize_t* dimensions
        Py_ssize_t* strides
        PyObject* descr
        int flags

cdef enum:
    NPY_C_CONTIGUOUS = 0x0001       # numpy's NPY_ARRAY_C_CONTIGUOUS and NPY_ARRAY_WRITEABLE flag bits
    NPY_WRITEABLE = 0x0400


cdef bint FIELDS = False        # the arrays' fields are read directly (check_fields), else through their buffers


def check_fields():
    """Whether numpy's array fields are where em_ndarray puts them: data, dimensions, strides, dtype and the
    contiguity and writeable flags of a few arrays against what numpy itself reports."""
    global FIELDS
    cdef em_ndarray* f
    cdef int d
    a = np.arange(12, dtype=np.int16).reshape(3, 4)
    cases = (a, a[:, ::2], a.T, np.zeros((1, 5, 1), np.float32), np.frombuffer(bytes(8), np.int8))
    ok = True
    for arr in cases:
        f = <em_ndarray*><PyObject*>arr
        if <size_t>f.data != arr.__array_interface__["data"][0] or f.nd != arr.ndim:
            ok = False
            break
        ok = f.descr == <PyObject*>arr.dtype and \
            tuple(f.dimensions[d] for d in range(f.nd)) == arr.shape and \
            tuple(f.strides[d] for d in range(f.nd)) == arr.strides and \
            bool(f.flags & NPY_C_CONTIGUOUS) == arr.flags.c_contiguous and \
            bool(f.flags & NPY_WRITEABLE) == arr.flags.writeable
        if not ok:
            break
    FIELDS = ok
    return ok


check_fields()


cdef bint takes(Slot* s, dtype, x, bint writable) except -1:
    """Whether x is a C-contiguous numpy array (not a subclass) of the slot's dtype and shape, and writable when
    asked; the caller then copies with data_of(x), running no Python code in between."""
    cdef em_ndarray* a
    cdef Py_buffer buf
    cdef int d
    cdef Py_ssize_t step
    if type(x) is not ndarray:
        return False
    if FIELDS:
        a = <em_ndarray*><PyObject*>x
        if a.nd != s.ndim or not (a.flags & NPY_C_CONTIGUOUS) or (writable and not (a.flags & NPY_WRITEABLE)):
            return False
        for d in range(s.ndim):
            if a.dimensions[d] != s.shape[d]:
                return False
        return a.descr == <PyObject*>dtype or x.dtype == dtype     # (numpy's builtin dtypes are mostly shared)
    x_dtype = x.dtype
    if x_dtype is not dtype and x_dtype != dtype:
        return False
    try:
        PyObject_GetBuffer(x, &buf, PyBUF_STRIDES | (PyBUF_WRITABLE if writable else 0))
    except BufferError:         # read-only, asked for writable
        return False
    ok = buf.ndim == s.ndim and buf.len == s.nbytes and buf.itemsize == s.itemsize
    step = buf.itemsize
    d = s.ndim - 1
    while ok and d >= 0:
        ok = buf.shape[d] == s.shape[d] and (buf.shape[d] == 1 or buf.strides[d] == step)
        step *= buf.shape[d]
        d -= 1
    PyBuffer_Release(&buf)
    return ok


cdef inline char* data_of(x) except NULL:
    """The bytes of an array `takes` took (its owner, which the caller holds, keeps them)."""
    cdef Py_buffer buf
    if FIELDS:
        return (<em_ndarray*><PyObject*>x).data
    PyObject_GetBuffer(x, &buf, PyBUF_STRIDES)
    PyBuffer_Release(&buf)
    return <char*>buf.buf


cdef inline bint unshared(PyObject* o) noexcept:
    """Nothing but its one holder refers to `o`: no other reference, no weak reference (a view or an exported
    buffer of an array holds a reference to it)."""
    cdef Py_ssize_t weak = type_of(o).tp_weaklistoffset
    return refcount(o) == 1 and (weak <= 0 or (<PyObject**>(<char*>o + weak))[0] == NULL)


cdef inline void run_steps(em_kernel* kernels, em_params* params, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        kernels[k](&params[k])


cdef inline int small_index(index, Py_ssize_t n) except -2:
    """index as a position in [0, n) when it is an exact int there, -1 for anything else (the checked path then
    names the problem)."""
    cdef Py_ssize_t i
    if not PyLong_CheckExact(index):
        return -1
    i = index_or_minus_one(index)
    if i == -1:
        PyErr_Clear()       # (too large for Py_ssize_t, or really -1: out of range either way)
        return -1
    return i if 0 <= i < n else -1


@cython.no_gc_clear         # (its fields refer to no Interpreter: nothing to break; never half-cleared mid-call)
cdef class CallPath:
    """The base of edgeml.Interpreter: its call methods, in C (see the module docstring)."""
    cdef readonly CallLock _lock
    cdef public bint _all_set, _invoked, _resized
    cdef bint bound, checks, run_fast
    cdef Py_ssize_t n_in, n_out, n_steps
    cdef em_kernel* kernels
    cdef em_params* params
    cdef Slot* ins
    cdef Slot* outs         # the outputs, then (float_bound) run()'s float staging outputs
    cdef tuple in_dtypes, in_names, out_dtypes, out_shapes, out_readonly, keep
    cdef list spares        # per entry of outs two arrays it was copied into lately (or None), see copy_out
    # run()'s float path (FloatIO): float32 staging input -> QUANTIZE engine -> staging int8 (+ non-finite flag);
    # after the plan, the DEQUANTIZE engine -> float32 staging outputs
    cdef bint float_bound
    cdef Slot stage_in, stage_q
    cdef int* status
    cdef em_kernel* q_kernels
    cdef em_params* q_params
    cdef em_kernel* dq_kernels
    cdef em_params* dq_params
    cdef Py_ssize_t q_steps, dq_steps
    cdef object float32, float_keep

    def __cinit__(self, *args, **kwargs):
        self._lock = CallLock()

    def __dealloc__(self):
        free(self.ins)
        free(self.outs)

    def _bind_calls(self, engine, in_views, in_fast, in_names, out_views, out_readonly, bint checks):
        """Prepares the call path for a plan (call with the lock held): its engine, the arena views of its inputs
        and outputs, per input whether it may be copied in without the checked path, the inputs' names (run()'s
        dict), read-only views of the outputs, and whether the plan has run-time checks to read after invoking."""
        cdef Py_ssize_t i
        self._unbind_calls()
        n_in, n_out = len(in_views), len(out_views)
        self.ins = <Slot*>calloc(max(n_in, 1), sizeof(Slot))
        self.outs = <Slot*>calloc(2 * max(n_out, 1), sizeof(Slot))
        if self.ins == NULL or self.outs == NULL:
            raise MemoryError()
        for i in range(n_in):
            fill_slot(&self.ins[i], in_views[i], bool(in_fast[i]))
        for i in range(n_out):
            fill_slot(&self.outs[i], out_views[i], True)
        kernels, params = engine.arrays_address
        self.kernels, self.params, self.n_steps = <em_kernel*><size_t>kernels, <em_params*><size_t>params, \
            engine.num_steps
        self.n_in, self.n_out = n_in, n_out
        self.in_dtypes = tuple(v.dtype for v in in_views)
        self.in_names = tuple(in_names)
        self.out_dtypes = tuple(v.dtype for v in out_views)
        self.out_shapes = tuple(v.shape for v in out_views)
        self.out_readonly = tuple(out_readonly)
        self.spares = [None] * (4 * n_out)
        self.keep = (engine, tuple(in_views), tuple(out_views))
        self.checks = checks
        self.run_fast = 0 < n_in <= MAX_FAST_INPUTS and all(self.ins[i].fast for i in range(n_in))
        self.bound = True

    def _unbind_calls(self):
        """Every call takes the checked path until the next _bind_calls (call with the lock held)."""
        self.bound = self.run_fast = self.float_bound = False
        self.float_keep = None
        self.n_in = self.n_out = self.n_steps = 0
        free(self.ins)
        free(self.outs)
        self.ins = self.outs = NULL
        self.kernels, self.params = NULL, NULL
        self.keep = self.spares = None

    def _bind_float_io(self, io):
        """run()'s float path in C for a FloatIO of the bound plan (ready: one int8 input, int8 / float32 outputs,
        all per tensor); call with the lock held."""
        cdef Py_buffer buf
        cdef Py_ssize_t i
        if not self.bound or self.n_in != 1 or len(io.stage_out) != self.n_out:
            return
        fill_slot(&self.stage_in, io.stage_in, True)
        fill_slot(&self.stage_q, io.stage_q, True)
        if not (self.stage_in.fast and self.stage_q.nbytes == self.ins[0].nbytes):
            return
        PyObject_GetBuffer(io.status, &buf, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS)
        self.status = <int*>buf.buf
        PyBuffer_Release(&buf)
        for i in range(self.n_out):
            fill_slot(&self.outs[self.n_out + i], io.stage_out[i], True)
        kernels, params = io.quantize.arrays_address
        self.q_kernels, self.q_params, self.q_steps = <em_kernel*><size_t>kernels, <em_params*><size_t>params, \
            io.quantize.num_steps
        kernels, params = io.dequantize.arrays_address
        self.dq_kernels, self.dq_params, self.dq_steps = <em_kernel*><size_t>kernels, <em_params*><size_t>params, \
            io.dequantize.num_steps
        self.float32 = io.stage_in.dtype
        self.out_dtypes = self.out_dtypes[:self.n_out] + tuple(a.dtype for a in io.stage_out)
        self.out_shapes = self.out_shapes[:self.n_out] + tuple(a.shape for a in io.stage_out)
        self.float_keep = io
        self.float_bound = True

    cdef object ran_float(self, x):
        """run() of a float32 array for the float path: quantized into the staging int8 array; values not finite
        (status) leave the input alone and return None (the checked path refuses or saturates them); else the
        plan runs and the outputs come back dequantized."""
        cdef Py_ssize_t i
        memcpy(self.stage_in.data, data_of(x), self.stage_in.nbytes)
        with nogil:
            run_steps(self.q_kernels, self.q_params, self.q_steps)
        if self.status[0]:
            return None
        memcpy(self.ins[0].data, self.stage_q.data, self.ins[0].nbytes)
        if not self._all_set:
            self._mark_run()
        self.invoke_bound()
        with nogil:
            run_steps(self.dq_kernels, self.dq_params, self.dq_steps)
        if self.n_out == 1:
            return self.copy_out(self.n_out)
        return [self.copy_out(self.n_out + i) for i in range(self.n_out)]

    cdef object copy_out(self, Py_ssize_t i):
        """A copy of output i, in an array the caller alone holds: a new one, or for an output of at most
        SPARE_BYTES one of the two arrays its last copies went to when nothing refers to it any more but this
        interpreter (the caller dropped it): in a loop `y = it.run(x)`, the array of two calls ago.  A spare that
        was reshaped, retyped or made read-only in place meanwhile is dropped."""
        cdef Py_buffer buf
        cdef Slot* s = &self.outs[i]
        cdef Py_ssize_t j, k
        cdef PyObject* held
        if s.fast and s.nbytes <= SPARE_BYTES:     # (fast: at most MAX_DIMS dimensions, which takes compares)
            for j in range(2):
                k = 2 * i + j
                held = PyList_GET_ITEM(self.spares, k)
                if held == <PyObject*>None or not unshared(held):
                    continue
                y = <object>held
                if not takes(s, self.out_dtypes[i], y, True):
                    self.spares[k] = None
                    continue
                memcpy(data_of(y), s.data, s.nbytes)
                return y
        y = empty(self.out_shapes[i], self.out_dtypes[i])
        PyObject_GetBuffer(y, &buf, PyBUF_WRITABLE)
        memcpy(buf.buf, s.data, s.nbytes)
        PyBuffer_Release(&buf)
        if s.fast and s.nbytes <= SPARE_BYTES:     # keep it as a spare, in place of the older one (or a free place)
            k = 2 * i + (PyList_GET_ITEM(self.spares, 2 * i) != <PyObject*>None)
            if PyList_GET_ITEM(self.spares, k) != <PyObject*>None:
                self.spares[2 * i] = self.spares[2 * i + 1]
                k = 2 * i + 1
            self.spares[k] = y
        return y

    cdef object outputs(self):
        if self.n_out == 1:
            return self.copy_out(0)
        return [self.copy_out(i) for i in range(self.n_out)]

    cdef int invoke_bound(self) except -1:
        with nogil:
            run_steps(self.kernels, self.params, self.n_steps)
        self._invoked = True
        if self.checks:
            self._raise_run_errors()
        return 0

    def set_input(self, x, index=0):
        """Copies `x` (a numpy array of the input's dtype and shape) into input `index`.

        A C-contiguous numpy array of the input's dtype and shape is copied in one C call; anything else is
        checked (and a non-contiguous array copied) by the checked path, which names what is wrong."""
        cdef int i
        self._lock.take()
        try:
            if self.bound and not self._resized:
                i = small_index(index, self.n_in)
                if i >= 0 and self.ins[i].fast and takes(&self.ins[i], self.in_dtypes[i], x, False):
                    memmove(self.ins[i].data, data_of(x), self.ins[i].nbytes)     # x may be a view of this arena
                    if not self._all_set:
                        self._mark_set(i)
                    return None
            return self._set_input_slow(x, index)
        finally:
            self._lock.give()

    def invoke(self):
        """Runs the model on the inputs set."""
        self._lock.take()
        try:
            if self.bound and self._all_set and not self._resized:
                self.invoke_bound()
                return None
            return self._invoke_slow()
        finally:
            self._lock.give()

    def get_output(self, index=0, copy=True):
        """Output `index` of the last invoke: a copy, or with copy=False a read-only view of the interpreter's
        own buffer (no copy), which the next invoke, run, resize or clone of this interpreter overwrites."""
        cdef int i
        self._lock.take()
        try:
            if self.bound and self._invoked and not self._resized:
                i = small_index(index, self.n_out)
                if i >= 0:
                    if copy is True:
                        return self.copy_out(i)
                    if copy is False:
                        return self.out_readonly[i]
            return self._get_output_slow(index, copy)
        finally:
            self._lock.give()

    def run(self, x):
        """One call: inputs in, outputs out (copies); atomic when threads share the interpreter.

        `x` is an array (one input), a list of arrays (in input order) or a dict by input name.  A float array
        given to an int8 (or int16) input is quantized with the input's parameters (it must be finite) and the int8
        (int16) outputs are then returned dequantized to float32; a batch size other than the model's re-plans the
        model for it.  Arrays of the inputs' dtypes and shapes, C-contiguous, are copied in, run and copied out in
        one C call.
        """
        cdef Py_ssize_t i
        self._lock.take()
        try:
            if self.run_fast and self.bound and not self._resized:
                if type(x) is ndarray:
                    if self.n_in == 1 and takes(&self.ins[0], self.in_dtypes[0], x, False):
                        memmove(self.ins[0].data, data_of(x), self.ins[0].nbytes)
                        return self.ran()
                    if self.float_bound and takes(&self.stage_in, self.float32, x, False):
                        y = self.ran_float(x)
                        if y is not None:
                            return y
                else:
                    arrays = x if (type(x) is list or type(x) is tuple) and len(x) == self.n_in else \
                        self.gather(x) if type(x) is dict else None
                    if arrays is not None and self.takes_all(arrays):
                        for i in range(self.n_in):      # none is copied unless all are taken
                            memmove(self.ins[i].data, data_of(arrays[i]), self.ins[i].nbytes)
                        return self.ran()
            return self._run_slow(x)
        finally:
            self._lock.give()

    cdef object gather(self, dict x):
        """The arrays of a dict by input name, in input order (held: looking a name up may run a key's __eq__);
        None when one is missing."""
        cdef PyObject* item
        arrays = []
        for name in self.in_names:
            item = PyDict_GetItem(x, name)
            if item == NULL:
                return None
            arrays.append(<object>item)
        return arrays

    cdef bint takes_all(self, arrays) except -1:
        cdef Py_ssize_t i
        for i in range(self.n_in):
            if not takes(&self.ins[i], self.in_dtypes[i], arrays[i], False):
                return False
        return True

    cdef object ran(self):
        """run() once its inputs are copied in: invoke, then copies of the outputs."""
        if not self._all_set:
            self._mark_run()
        self.invoke_bound()
        return self.outputs()
