# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The .tflite flatbuffer walked in C (converters/tflite.py drives it): one call per subgraph reads every tensor and
operator, checks each position against the file before reading it, and builds the IR objects directly.  A read
that would leave the file raises FormatError naming the table, tensor or op (the reader turns it into
ModelFormatError).  Not kernels: no KERNELS table.  Offsets follow the TFLite schema (vtable slot 4 + 2k = field k).
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcmp, memcpy

from cython_ops.flatbuffer_read cimport (File, Tab, field_at, index_list, open_table, read_i8, read_i32, read_u8,
                                         read_u32, read_u64_field, scalar_at, string_span, target_of, u16, u32, u64,
                                         vector_fits)

import sys

import numpy as np

LITTLE_ENDIAN = sys.byteorder == "little"     # else the views of the file get little-endian dtypes
NDARRAY, EMPTY, ZEROS, FLOAT64, INT64 = np.ndarray, np.empty, np.zeros, np.dtype(np.float64), np.dtype(np.int64)
INT32 = np.dtype(np.int32)


cdef extern from "math.h" nogil:
    bint isfinite(double x)


class FormatError(ValueError):
    """A malformed file: the reader raises it as ModelFormatError with the same message."""


# schema field indices, and limits
cdef enum:
    MODEL_VERSION = 0
    MODEL_CODES = 1
    MODEL_SUBGRAPHS = 2
    MODEL_BUFFERS = 4
    CODE_DEPRECATED_BUILTIN = 0
    CODE_CUSTOM = 1
    CODE_VERSION = 2
    CODE_BUILTIN = 3
    SUBGRAPH_TENSORS = 0
    SUBGRAPH_INPUTS = 1
    SUBGRAPH_OUTPUTS = 2
    SUBGRAPH_OPERATORS = 3
    SUBGRAPH_NAME = 4
    TENSOR_SHAPE = 0
    TENSOR_TYPE = 1
    TENSOR_BUFFER = 2
    TENSOR_NAME = 3
    TENSOR_QUANTIZATION = 4
    TENSOR_IS_VARIABLE = 5
    TENSOR_SPARSITY = 6
    TENSOR_SHAPE_SIGNATURE = 7
    QUANT_SCALE = 2
    QUANT_ZERO_POINT = 3
    QUANT_DETAILS_TYPE = 4
    QUANT_DIMENSION = 6
    OP_OPCODE_INDEX = 0
    OP_INPUTS = 1
    OP_OUTPUTS = 2
    OP_OPTIONS_TYPE = 3
    OP_OPTIONS = 4
    OP_INTERMEDIATES = 8
    BUFFER_DATA = 0
    BUFFER_OFFSET = 1
    BUFFER_SIZE = 2
    MAX_RANK = 8


cdef int64_t MAX_TENSOR_BYTES = 2147483648


cdef struct QuantAt:        # a tensor's checked quantization vectors in the file (n == 0: none)
    Py_ssize_t scales       # position of its n float32 scales
    Py_ssize_t zero_points  # position of its n int64 zero points, 0 when it has none (all zero)
    Py_ssize_t n
    Py_ssize_t axis


cdef object malformed(File* f, str what):
    return FormatError(f"{what}: malformed flatbuffer data ({(<bytes>f.reason).decode('ascii', 'replace')})")


cdef object vector_error(int r, str what, File* f, Py_ssize_t start, Py_ssize_t count, Py_ssize_t itemsize):
    if r == -1:
        return malformed(f, what)
    return FormatError(f"{what} claims {count} entries of {itemsize} bytes at offset {start}, past the end of the "
                       f"{f.n}-byte file")


cdef int checked_vector(File* f, Tab* t, int k, Py_ssize_t itemsize, Py_ssize_t* start, Py_ssize_t* count,
                        str what) except -1:
    cdef int r = vector_fits(f, t, k, itemsize, start, count)
    if r < 0:
        raise vector_error(r, what, f, start[0], count[0], itemsize)
    return 0


cdef object decoded_string(File* f, Tab* t, int k, bint* bad):
    """The string field as str ('replace' for bad UTF-8), None when absent; *bad when it leaves the file."""
    cdef Py_ssize_t start, count
    if not string_span(f, t, k, bad, &start, &count):
        return None
    return PyUnicode_DecodeUTF8(<const char*>(f.p + start), count, "replace")


cdef object index_error(str what, int64_t idx, Py_ssize_t n_tensors):
    return FormatError(f"{what} refers to tensor {idx}, the subgraph has {n_tensors}")


cdef list tensor_indices(File* f, Tab* t, int k, Py_ssize_t n_tensors, bint allow_optional, what):
    """Vector field k of tensor indices, checked: inside the file ('<what>s') and each inside the tensor table.
    `what`: a str, or (op index, op type, kind) formatted as 'op i (TYPE) kind' only for an error."""
    cdef Py_ssize_t start, count
    cdef int64_t bad_index = 0
    cdef int r = vector_fits(f, t, k, 4, &start, &count)
    if r < 0:
        raise vector_error(r, described(what) + "s", f, start, count, 4)
    out = index_list(f, start, count, n_tensors, allow_optional, &bad_index)
    if out is None:
        raise index_error(described(what), bad_index, n_tensors)
    return out


cdef str described(what):
    return what if isinstance(what, str) else f"op {what[0]} ({what[1]}) {what[2]}"


cdef class ModelFile:
    """A .tflite file's model table, buffer table and operator codes, checked; `subgraph()` reads one subgraph."""
    cdef object buf                        # the file: bytes, or a read-only view of the reader's array
    cdef Py_buffer held                     # buf's bytes, held while this object lives
    cdef bint holding
    cdef File f
    cdef Py_ssize_t sub_start
    cdef readonly Py_ssize_t n_subgraphs
    cdef Py_ssize_t[::1] buffer_start      # per buffer: position of its bytes, -1 when it has none
    cdef Py_ssize_t[::1] buffer_size
    cdef readonly list codes                # per operator code: (builtin code, custom code bytes or None, version)

    def __dealloc__(self):
        if self.holding:
            PyBuffer_Release(&self.held)

    def __init__(self, buf, Py_ssize_t subgraph_index):
        cdef Tab model, t
        cdef Py_ssize_t root, i, start, count, codes_start, n_codes, at, size
        cdef uint64_t offset, big_size
        cdef int r
        cdef bint bad = False
        if self.holding:
            PyBuffer_Release(&self.held)
            self.holding = False
        PyObject_GetBuffer(buf, &self.held, PyBUF_SIMPLE)
        self.holding = True
        self.buf = buf
        self.f.p = <const uint8_t*>self.held.buf
        self.f.n = self.held.len
        cdef File* f = &self.f
        if f.n < 8:
            raise FormatError(f"file is {f.n} bytes: too short to be a TFLite model")
        if memcmp(f.p + 4, b"TFL3", 4) != 0:
            raise FormatError("not a TFLite flatbuffer: the 'TFL3' identifier at offset 4 is missing")
        root = u32(f.p)
        if root + 4 > f.n:
            raise FormatError(f"root table offset {root} is past the end of the {f.n}-byte file")
        if open_table(f, root, &model) < 0:
            raise malformed(f, "model table")
        version = read_u32(f, &model, MODEL_VERSION, 0, &bad)
        if bad:
            raise malformed(f, "model table")
        if version != 3:
            raise FormatError(f"schema version {version}; only version 3 is understood")
        checked_vector(f, &model, MODEL_SUBGRAPHS, 4, &self.sub_start, &self.n_subgraphs, "subgraph table")
        if self.n_subgraphs == 0:
            raise FormatError("model has no subgraph")
        if not 0 <= subgraph_index < self.n_subgraphs:
            raise FormatError(f"subgraph {subgraph_index} requested, model has {self.n_subgraphs}")
        checked_vector(f, &model, MODEL_BUFFERS, 4, &start, &count, "buffer table")
        checked_vector(f, &model, MODEL_CODES, 4, &codes_start, &n_codes, "operator code table")
        self.buffer_start = np.empty(count, np.intp)
        self.buffer_size = np.empty(count, np.intp)
        for i in range(count):
            at = start + 4 * i
            if open_table(f, at + u32(f.p + at), &t) < 0:
                raise malformed(f, f"buffer {i}")
            offset = read_u64_field(f, &t, BUFFER_OFFSET, &bad)
            if bad:
                raise malformed(f, f"buffer {i}")
            if offset > 1:          # large-model layout: the data lives after the flatbuffer
                big_size = read_u64_field(f, &t, BUFFER_SIZE, &bad)
                if bad:
                    raise malformed(f, f"buffer {i}")
                if offset > <uint64_t>f.n or big_size > <uint64_t>f.n - offset:
                    raise FormatError(f"buffer {i}: data at offset {offset} + {big_size} bytes runs past the end of "
                                      f"the {f.n}-byte file")
                self.buffer_start[i], self.buffer_size[i] = <Py_ssize_t>offset, <Py_ssize_t>big_size
                continue
            r = vector_fits(f, &t, BUFFER_DATA, 1, &at, &size)
            if r < 0:
                raise vector_error(r, f"buffer {i}", f, at, size, 1)
            self.buffer_start[i] = at if size else -1
            self.buffer_size[i] = size
        for i in range(self.n_subgraphs):
            at = self.sub_start + 4 * i
            if open_table(f, at + u32(f.p + at), &t) < 0:
                raise malformed(f, f"subgraph {i}")
            checked_vector(f, &t, SUBGRAPH_TENSORS, 4, &start, &count, f"subgraph {i} tensor table")
        self.codes = []
        for i in range(n_codes):
            at = codes_start + 4 * i
            if open_table(f, at + u32(f.p + at), &t) < 0:
                raise malformed(f, f"operator code {i}")
            builtin = max(read_i32(f, &t, CODE_BUILTIN, 0, &bad), read_i8(f, &t, CODE_DEPRECATED_BUILTIN, 0, &bad))
            custom = decoded_bytes(f, &t, CODE_CUSTOM, &bad)
            version = read_i32(f, &t, CODE_VERSION, 1, &bad)
            if bad:
                raise malformed(f, f"operator code {i}")
            self.codes.append((builtin, custom, version))

    def subgraph(self, Py_ssize_t k, list codes, tuple dtypes, dict type_names, type tensor_type, type quant_type,
                 type op_type, sparse_values, resolve_options, options_of, custom_op, dict specs, set flow_kinds):
        """(tensors, ops, inputs, outputs, name, flow ops) of subgraph k: IR objects of the classes tensor_type (index,
        name, shape, dtype, quant, data, is_variable, dynamic_dims), quant_type (scale, zero_point, axis) and op_type
        (index, type, version, inputs, outputs, options, intermediates), made with __new__ and their fields set (plain
        classes such as edgeml.ir's dataclasses; the quantization arrays of a subgraph are views of one array each).  `codes`: (IR type, version) per operator code;
        `dtypes`: numpy dtype per tensor type code (None: unsupported); options of a kind without a scalar read
        spec in `specs` (resolve_options(kind) makes one, None when the kind is read by options_of(kind, table
        position, what)); custom ops through custom_op(op position, type, what); flow ops: the ops whose options
        kind is in flow_kinds (their options may name subgraphs)."""
        cdef File* f = &self.f
        cdef Tab sg, t
        cdef Py_ssize_t at, t_start, n_tensors, o_start, n_ops
        cdef bint bad = False
        at = self.sub_start + 4 * k
        if open_table(f, at + u32(f.p + at), &sg) < 0:
            raise malformed(f, f"subgraph {k}")
        checked_vector(f, &sg, SUBGRAPH_TENSORS, 4, &t_start, &n_tensors, "tensor table")
        tensors = self.tensors(t_start, n_tensors, dtypes, type_names, tensor_type, quant_type, sparse_values)
        checked_vector(f, &sg, SUBGRAPH_OPERATORS, 4, &o_start, &n_ops, "operator table")
        ops, flow = self.operators(o_start, n_ops, n_tensors, codes, op_type, resolve_options, options_of,
                                   custom_op, specs, flow_kinds)
        inputs = tensor_indices(f, &sg, SUBGRAPH_INPUTS, n_tensors, False, "subgraph input")
        outputs = tensor_indices(f, &sg, SUBGRAPH_OUTPUTS, n_tensors, False, "subgraph output")
        if not inputs or not outputs:
            raise FormatError("subgraph declares no inputs or no outputs")
        name = decoded_string(f, &sg, SUBGRAPH_NAME, &bad)
        if bad:
            raise malformed(f, f"subgraph {k} name")
        return tensors, ops, inputs, outputs, name or "", flow

    cdef list tensors(self, Py_ssize_t t_start, Py_ssize_t n_tensors, tuple dtypes, dict type_names, type tensor_type,
                      type quant_type, sparse_values):
        cdef Py_ssize_t i
        cdef list out = PyList_New(n_tensors)
        for i in range(n_tensors):      # (slots not yet set hold None, so that an error frees the list cleanly)
            Py_INCREF(None)
            PyList_SET_ITEM(out, i, None)
        cdef QuantAt* quants = <QuantAt*>calloc(max(n_tensors, 1), sizeof(QuantAt))
        if quants == NULL:
            raise MemoryError()
        try:
            self.read_tensors(t_start, n_tensors, dtypes, type_names, tensor_type, sparse_values, out, quants)
            self.attach_quantizations(out, quants, quant_type)
        finally:
            free(quants)
        return out

    cdef int read_tensors(self, Py_ssize_t t_start, Py_ssize_t n_tensors, tuple dtypes, dict type_names,
                          type tensor_type, sparse_values, list out, QuantAt* quants) except -1:
        """Every tensor, checked, into `out`; its quantization's place in the file into quants[i] (the arrays are
        made afterwards, two for the whole subgraph)."""
        cdef File* f = &self.f
        cdef Tab t
        cdef Py_ssize_t i, at, shape_start, rank, sig_start, sig_rank, j, itemsize, b_index, raw_start
        cdef Py_ssize_t n_buffers = self.buffer_size.shape[0]
        cdef int64_t ttype, elements
        cdef int r
        cdef bint bad = False, zero, negative, sparse, variable
        cdef int64_t dims[MAX_RANK]
        cdef object v
        for i in range(n_tensors):
            at = t_start + 4 * i
            if open_table(f, at + u32(f.p + at), &t) < 0:
                raise malformed(f, f"tensor {i}")
            name = decoded_string(f, &t, TENSOR_NAME, &bad)
            if bad:
                raise malformed(f, f"tensor {i}")
            if not name:
                name = f"tensor_{i}"
            r = vector_fits(f, &t, TENSOR_SHAPE, 4, &shape_start, &rank)
            if r < 0:
                raise vector_error(r, f"tensor {i} '{name}' shape", f, shape_start, rank, 4)
            if rank > MAX_RANK:
                raise FormatError(f"tensor {i} '{name}': rank {rank} exceeds the supported maximum {MAX_RANK}")
            elements, zero, negative = 1, False, False
            for j in range(rank):
                dims[j] = <int32_t>u32(f.p + shape_start + 4 * j)
                zero |= dims[j] == 0
                if dims[j] < 0:
                    negative = True
                elif elements <= MAX_TENSOR_BYTES:      # (saturates below 2^62: a larger count is refused below)
                    elements *= dims[j]
            if negative:
                raise FormatError(f"tensor {i} '{name}': negative dimension in shape {[dims[j] for j in range(rank)]}")
            shape = PyTuple_New(rank)
            for j in range(rank):
                v = dims[j]
                Py_INCREF(v)
                PyTuple_SET_ITEM(shape, j, v)
            if zero:
                elements = 0
            dynamic = ()
            if field_at(f, &t, TENSOR_SHAPE_SIGNATURE):
                r = vector_fits(f, &t, TENSOR_SHAPE_SIGNATURE, 4, &sig_start, &sig_rank)
                if r < 0:
                    raise vector_error(r, f"tensor {i} '{name}' shape_signature", f, sig_start, sig_rank, 4)
                if sig_rank == rank and rank:
                    dynamic = tuple([j for j in range(rank) if <int32_t>u32(f.p + sig_start + 4 * j) == -1])
            ttype = read_i8(f, &t, TENSOR_TYPE, 0, &bad)
            if bad:
                raise malformed(f, f"tensor {i}")
            dtype = dtypes[ttype] if 0 <= ttype < len(dtypes) else None
            if dtype is None:
                raise FormatError(f"tensor {i} '{name}': tensor type {type_names.get(ttype, ttype)} is not supported")
            itemsize = dtype.itemsize
            if elements > MAX_TENSOR_BYTES // itemsize:
                raise FormatError(f"tensor {i} '{name}': shape {list(shape)} is larger than {MAX_TENSOR_BYTES} "
                                  f"bytes")
            if field_at(f, &t, TENSOR_QUANTIZATION):
                self.quantization(&t, i, name, shape, dtype, &quants[i])
            b_index = read_u32(f, &t, TENSOR_BUFFER, 0, &bad)
            variable = read_u8(f, &t, TENSOR_IS_VARIABLE, 0, &bad) != 0
            sparse = field_at(f, &t, TENSOR_SPARSITY) != 0
            if bad:
                raise malformed(f, f"tensor {i}")
            if not 0 <= b_index < max(n_buffers, 1):
                raise FormatError(f"tensor {i} '{name}': buffer index {b_index} is outside the {n_buffers}-entry "
                                  f"buffer table")
            raw_start = self.buffer_start[b_index] if n_buffers else -1
            data = None
            if sparse:          # the reader's sparse_values checks the metadata and expands the values
                raw = None if raw_start < 0 else \
                    memoryview(self.buf)[raw_start:raw_start + self.buffer_size[b_index]]
                data = sparse_values(t.pos, f"tensor {i} '{name}'", shape, dtype, raw)
            elif raw_start >= 0:
                if self.buffer_size[b_index] != elements * itemsize:
                    raise FormatError(f"tensor {i} '{name}': buffer {b_index} holds {self.buffer_size[b_index]} "
                                      f"bytes, shape {list(shape)} of {dtype} needs {elements * itemsize}")
                data = self.view(raw_start, dtype, itemsize, shape)
            tensor = tensor_type.__new__(tensor_type)     # (the dataclass's fields, set without its __init__)
            tensor.index, tensor.name, tensor.shape, tensor.dtype = i, name, shape, dtype
            tensor.quant, tensor.data, tensor.is_variable, tensor.dynamic_dims = None, data, variable, dynamic
            out[i] = tensor
        return 0

    cdef int attach_quantizations(self, list tensors, QuantAt* quants, type quant_type) except -1:
        """Each quantized tensor's Quantization: scales (float64) and zero points (int64) as views of one array
        each for the subgraph."""
        cdef File* f = &self.f
        cdef Py_ssize_t i, j, total = 0, n = len(tensors), off
        cdef uint32_t bits
        cdef float s
        for i in range(n):
            total += quants[i].n
        if total == 0:
            return 0
        scales, zero_points = EMPTY(total, FLOAT64), ZEROS(total, INT64)
        cdef Py_buffer sb, zb
        PyObject_GetBuffer(scales, &sb, PyBUF_WRITABLE)
        PyObject_GetBuffer(zero_points, &zb, PyBUF_WRITABLE)
        off = 0
        for i in range(n):
            for j in range(quants[i].n):
                bits = u32(f.p + quants[i].scales + 4 * j)
                memcpy(&s, &bits, 4)
                (<double*>sb.buf)[off + j] = s
                if quants[i].zero_points:
                    (<int64_t*>zb.buf)[off + j] = <int64_t>u64(f.p + quants[i].zero_points + 8 * j)
            off += quants[i].n
        PyBuffer_Release(&zb)
        PyBuffer_Release(&sb)
        off = 0
        for i in range(n):
            if quants[i].n:
                q = quant_type.__new__(quant_type)
                q.scale = scales[off:off + quants[i].n]
                q.zero_point = zero_points[off:off + quants[i].n]
                q.axis = quants[i].axis
                tensors[i].quant = q
                off += quants[i].n
        return 0

    cdef object view(self, Py_ssize_t start, dtype, Py_ssize_t itemsize, tuple shape):
        """A read-only array over the file's bytes at `start` (a read-only copy when they are not aligned for
        dtype, whose alignment is its item size)."""
        arr = NDARRAY(shape, dtype if LITTLE_ENDIAN else dtype.newbyteorder("<"), self.buf, start)
        if (<size_t>(self.f.p + start)) % itemsize == 0:
            return arr
        arr = arr.copy()
        arr.flags.writeable = False
        return arr

    cdef int quantization(self, Tab* tensor, Py_ssize_t i, str name, tuple shape, dtype, QuantAt* at_out) except -1:
        """Checks the tensor's quantization and records where its vectors lie (n stays 0 when it has no scales and
        no zero points)."""
        cdef File* f = &self.f
        cdef Tab q
        cdef Py_ssize_t at, s_start, n_scale, z_start, n_zp, j, n, axis
        cdef bint bad = False
        cdef float s
        cdef int64_t z, lo, hi
        if target_of(f, tensor, TENSOR_QUANTIZATION, &at) < 0 or open_table(f, at, &q) < 0:
            raise malformed(f, f"tensor {i} '{name}' quantization")
        cdef int r = vector_fits(f, &q, QUANT_SCALE, 4, &s_start, &n_scale)
        if r < 0:
            raise vector_error(r, f"tensor {i} '{name}' quantization scale", f, s_start, n_scale, 4)
        r = vector_fits(f, &q, QUANT_ZERO_POINT, 8, &z_start, &n_zp)
        if r < 0:
            raise vector_error(r, f"tensor {i} '{name}' quantization zero_point", f, z_start, n_zp, 8)
        if n_scale == 0 and n_zp == 0:
            return 0
        details = read_u8(f, &q, QUANT_DETAILS_TYPE, 0, &bad)
        if bad:
            raise malformed(f, f"tensor {i} '{name}' quantization")
        if details != 0:
            raise FormatError(f"tensor {i} '{name}': custom quantization details are not supported")
        if n_scale == 0:
            raise FormatError(f"tensor {i} '{name}': quantization has zero points but no scales")
        if n_zp and n_zp != n_scale:
            raise FormatError(f"tensor {i} '{name}': {n_scale} quantization scales but {n_zp} zero points")
        n = n_scale
        if n > 1:
            axis = read_i32(f, &q, QUANT_DIMENSION, 0, &bad)
            if bad:
                raise malformed(f, f"tensor {i} '{name}' quantization")
            if not 0 <= axis < len(shape):
                raise FormatError(f"tensor {i} '{name}': quantized_dimension {axis} is outside its rank-{len(shape)} "
                                  f"shape")
            if shape[axis] != n:
                raise FormatError(f"tensor {i} '{name}': {n} per-axis scales for dimension {axis} of size "
                                  f"{shape[axis]}")
        else:       # one scale is per tensor whatever quantized_dimension says (as TFLite Micro reads it)
            axis = 0
        cdef uint32_t bits
        for j in range(n):
            bits = u32(f.p + s_start + 4 * j)
            memcpy(&s, &bits, 4)
            if not (s >= 0 and isfinite(s)):
                raise FormatError(f"tensor {i} '{name}': quantization scale must be finite and non-negative")
        if n_zp and dtype.kind in "iu":
            lo, hi = INT_RANGES[dtype.char]
            for j in range(n):
                z = <int64_t>u64(f.p + z_start + 8 * j)
                if not lo <= z <= hi:
                    raise FormatError(f"tensor {i} '{name}': zero point outside the range of {dtype}")
        at_out.scales, at_out.zero_points, at_out.n, at_out.axis = s_start, z_start if n_zp else 0, n, axis
        return 0

    cdef tuple operators(self, Py_ssize_t o_start, Py_ssize_t n_ops, Py_ssize_t n_tensors, list codes, type op_type,
                         resolve_options, options_of, custom_op, dict specs, set flow_kinds):
        cdef File* f = &self.f
        cdef Tab t, ot
        cdef Py_ssize_t i, at, code_index, n_codes = len(codes), options_at
        cdef int64_t kind
        cdef bint bad = False
        cdef list ops = PyList_New(n_ops), flow = []
        for i in range(n_ops):
            at = o_start + 4 * i
            if open_table(f, at + u32(f.p + at), &t) < 0:
                raise malformed(f, f"op {i}")
            code_index = read_u32(f, &t, OP_OPCODE_INDEX, 0, &bad)
            kind = read_u8(f, &t, OP_OPTIONS_TYPE, 0, &bad)
            if bad:
                raise malformed(f, f"op {i}")
            if not 0 <= code_index < n_codes:
                raise FormatError(f"op {i}: opcode index {code_index} is outside the {n_codes}-entry code table")
            op_name, version = codes[code_index]
            inputs = tensor_indices(f, &t, OP_INPUTS, n_tensors, True, (i, op_name, "input"))
            outputs = tensor_indices(f, &t, OP_OUTPUTS, n_tensors, False, (i, op_name, "output"))
            # intermediates: tensors an op uses internally (the LSTM's gate and hidden quantization)
            intermediates = tensor_indices(f, &t, OP_INTERMEDIATES, n_tensors, False, (i, op_name, "intermediate"))
            if kind == 0:
                options = {}
            else:
                spec = specs.get(kind, False)
                if spec is False:
                    spec = specs[kind] = resolve_options(kind)
                options_at = 0
                if target_of(f, &t, OP_OPTIONS, &options_at) < 0:
                    raise malformed(f, f"op {i} ({op_name}) options")
                if spec is None:
                    options = options_of(kind, options_at, f"op {i} ({op_name})")
                else:
                    if options_at == 0:
                        raise FormatError(f"op {i} ({op_name}): unknown builtin options type {kind}")
                    if open_table(f, options_at, &ot) < 0:
                        raise malformed(f, f"op {i} ({op_name}) options")
                    options = self.scalar_options(&ot, <tuple>spec, i, op_name)
                if kind in flow_kinds:
                    flow.append(i)
            if op_name.startswith("CUSTOM:"):   # a custom op edgeml implements gets its IR type and options
                op_name, options = custom_op(t.pos, op_name, f"op {i} ({op_name})")
            op = op_type.__new__(op_type)        # (the dataclass's fields, set without its __init__)
            op.index, op.type, op.version, op.inputs, op.outputs = i, op_name, version, inputs, outputs
            op.options, op.intermediates = options, intermediates
            Py_INCREF(op)
            PyList_SET_ITEM(ops, i, op)
        return ops, flow

    cdef dict scalar_options(self, Tab* t, tuple spec, Py_ssize_t i, op_name):
        """The options table's fields as the generated accessors return them; spec: (key, field index, struct
        format character code, default, as bool) per field."""
        cdef File* f = &self.f
        cdef dict out = {}
        cdef Py_ssize_t at, size
        cdef int fmt, r
        cdef const uint8_t* p
        cdef uint32_t b32
        cdef uint64_t b64
        cdef float f32
        cdef double f64
        cdef object value
        for key, index, fmt, default, as_bool in spec:
            if fmt < 0:         # a vector of numbers: a copy, as the generated *AsNumpy accessor's np.array()
                out[key] = self.vector_option(t, <int>index, default, i, op_name)
                continue
            size = 1 if fmt in (63, 98, 66) else 2 if fmt in (104, 72) else 4 if fmt in (105, 73, 102) else 8
            r = scalar_at(f, t, <int>index, size, &at)
            if r < 0:
                raise malformed(f, f"op {i} ({op_name}) options")
            if r == 0:
                value = default
            else:
                p = f.p + at
                if fmt == 63:       # '?'
                    value = p[0] != 0
                elif fmt == 98:     # 'b'
                    value = <int8_t>p[0]
                elif fmt == 66:     # 'B'
                    value = p[0]
                elif fmt == 104:    # 'h'
                    value = <int16_t>u16(p)
                elif fmt == 72:     # 'H'
                    value = u16(p)
                elif fmt == 105:    # 'i'
                    value = <int32_t>u32(p)
                elif fmt == 73:     # 'I'
                    value = u32(p)
                elif fmt == 102:    # 'f'
                    b32 = u32(p)
                    memcpy(&f32, &b32, 4)
                    value = <double>f32
                elif fmt == 113:    # 'q'
                    value = <int64_t>u64(p)
                elif fmt == 81:     # 'Q'
                    value = u64(p)
                else:               # 'd'
                    b64 = u64(p)
                    memcpy(&f64, &b64, 8)
                    value = f64
            out[key] = bool(value) if as_bool else value
        return out

    cdef object vector_option(self, Tab* t, int index, dtype, Py_ssize_t i, op_name):
        """Vector field `index` of an options table: a writable copy of dtype (little-endian), an empty int32
        array when absent (what the reader made of the generated accessor's 0)."""
        cdef Py_ssize_t start, count
        if not field_at(&self.f, t, index):
            return ZEROS(0, INT32)
        cdef int r = vector_fits(&self.f, t, index, dtype.itemsize, &start, &count)
        if r < 0:
            raise vector_error(r, f"op {i} ({op_name}) options", &self.f, start, count, dtype.itemsize)
        return NDARRAY((count,), dtype, self.buf, start).copy()


cdef object decoded_bytes(File* f, Tab* t, int k, bint* bad):
    """A string field's bytes, None when absent; *bad when it leaves the file."""
    cdef Py_ssize_t start, count
    if not string_span(f, t, k, bad, &start, &count):
        return None
    return (<const char*>(f.p + start))[:count]


# zero point range per integer dtype character (int64 bounds for the 64-bit types: zero points are int64)
INT_RANGES = {c: (max(int(np.iinfo(c).min), -(1 << 63)), min(int(np.iinfo(c).max), (1 << 63) - 1))
              for c in "bBhHiIlLqQ"}
