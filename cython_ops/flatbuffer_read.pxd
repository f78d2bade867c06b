# The flatbuffer primitives of the .tflite walker (tflite_read.pyx): little-endian loads, tables and their vtables,
# scalar / offset / vector fields, each position checked against the file before it is read.  A failed check returns
# -1 (or sets *bad) with File.reason saying why; the walker turns that into an error naming the table.
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdio cimport snprintf


cdef inline uint32_t u32(const uint8_t* p) noexcept nogil:
    return <uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef inline uint16_t u16(const uint8_t* p) noexcept nogil:
    return <uint16_t>(p[0] | (p[1] << 8))


cdef inline uint64_t u64(const uint8_t* p) noexcept nogil:
    return <uint64_t>u32(p) | (<uint64_t>u32(p + 4) << 32)


cdef struct Tab:
    Py_ssize_t pos          # the table
    Py_ssize_t vt           # its vtable
    Py_ssize_t nfields      # field slots present in the vtable


cdef struct File:
    const uint8_t* p
    Py_ssize_t n
    char reason[160]        # why the last read failed (formatted into the error by its caller)


cdef inline int open_table(File* f, Py_ssize_t pos, Tab* t) noexcept nogil:
    """0, or -1 with f.reason set when the table or its vtable lies outside the file."""
    cdef Py_ssize_t vt, size, nf
    if pos < 0 or pos > f.n - 4:
        snprintf(f.reason, 160, "table at offset %zd lies outside the %zd-byte file", pos, f.n)
        return -1
    vt = pos - <int32_t>u32(f.p + pos)
    if vt < 0 or vt > f.n - 4:
        snprintf(f.reason, 160, "vtable at offset %zd lies outside the %zd-byte file", vt, f.n)
        return -1
    size = u16(f.p + vt)
    nf = (size - 3) // 2 if size > 3 else 0
    if vt + 4 + 2 * nf > f.n:
        snprintf(f.reason, 160, "vtable at offset %zd of %zd bytes runs past the %zd-byte file", vt, size, f.n)
        return -1
    t.pos, t.vt, t.nfields = pos, vt, nf
    return 0


cdef inline Py_ssize_t field_at(File* f, Tab* t, int k) noexcept nogil:
    """The field's position in the file, 0 when absent."""
    if k >= t.nfields:
        return 0
    cdef Py_ssize_t rel = u16(f.p + t.vt + 4 + 2 * k)
    return t.pos + rel if rel else 0


cdef inline int scalar_at(File* f, Tab* t, int k, Py_ssize_t size, Py_ssize_t* at) noexcept nogil:
    """1 with *at the field's position, 0 when absent, -1 when it runs past the file."""
    at[0] = field_at(f, t, k)
    if not at[0]:
        return 0
    if at[0] + size > f.n:
        snprintf(f.reason, 160, "field at offset %zd runs past the end of the %zd-byte file", at[0], f.n)
        return -1
    return 1


cdef inline int64_t read_u8(File* f, Tab* t, int k, int64_t default, bint* bad) noexcept nogil:
    cdef Py_ssize_t at
    cdef int r = scalar_at(f, t, k, 1, &at)
    if r < 0:
        bad[0] = True
    return f.p[at] if r > 0 else default


cdef inline int64_t read_i8(File* f, Tab* t, int k, int64_t default, bint* bad) noexcept nogil:
    cdef Py_ssize_t at
    cdef int r = scalar_at(f, t, k, 1, &at)
    if r < 0:
        bad[0] = True
    return <int8_t>f.p[at] if r > 0 else default


cdef inline int64_t read_u32(File* f, Tab* t, int k, int64_t default, bint* bad) noexcept nogil:
    cdef Py_ssize_t at
    cdef int r = scalar_at(f, t, k, 4, &at)
    if r < 0:
        bad[0] = True
    return u32(f.p + at) if r > 0 else default


cdef inline int64_t read_i32(File* f, Tab* t, int k, int64_t default, bint* bad) noexcept nogil:
    cdef Py_ssize_t at
    cdef int r = scalar_at(f, t, k, 4, &at)
    if r < 0:
        bad[0] = True
    return <int32_t>u32(f.p + at) if r > 0 else default


cdef inline int target_of(File* f, Tab* t, int k, Py_ssize_t* out) noexcept nogil:
    """1 with *out where the field's uoffset points (not yet checked), 0 when absent, -1 past the file."""
    cdef Py_ssize_t at
    cdef int r = scalar_at(f, t, k, 4, &at)
    if r <= 0:
        return r
    out[0] = at + <Py_ssize_t>u32(f.p + at)
    return 1


cdef inline int vector_of(File* f, Tab* t, int k, Py_ssize_t* start, Py_ssize_t* count) noexcept nogil:
    """1 with the first element's position and the element count (unchecked against the file), 0 when absent
    (count 0), -1 when the length word lies outside the file."""
    cdef Py_ssize_t at
    start[0] = 0
    count[0] = 0
    cdef int r = target_of(f, t, k, &at)
    if r <= 0:
        return r
    if at + 4 > f.n:
        snprintf(f.reason, 160, "vector length at offset %zd lies outside the %zd-byte file", at, f.n)
        return -1
    start[0] = at + 4
    count[0] = u32(f.p + at)
    return 1


cdef inline int vector_fits(File* f, Tab* t, int k, Py_ssize_t itemsize, Py_ssize_t* start, Py_ssize_t* count) noexcept nogil:
    """0 with a vector field lying entirely inside the file (count 0 when absent); -1 when its length word lies
    outside (f.reason set), -2 when its elements run past the end (vector_error makes the error)."""
    if vector_of(f, t, k, start, count) < 0:
        return -1
    if count[0] and start[0] + count[0] * itemsize > f.n:
        return -2
    return 0


cdef inline int string_span(File* f, Tab* t, int k, bint* bad, Py_ssize_t* start, Py_ssize_t* count) noexcept nogil:
    """1 when the string field k is present and inside the file (its bytes at *start, *count), else 0; *bad when it
    leaves the file."""
    cdef int r = vector_of(f, t, k, start, count)
    if r < 0:
        bad[0] = True
        return 0
    if r == 0:
        return 0
    if start[0] + count[0] > f.n:
        snprintf(f.reason, 160, "string of %zd bytes at offset %zd runs past the %zd-byte file", count[0], start[0],
                 f.n)
        bad[0] = True
        return 0
    return 1


cdef inline uint64_t read_u64_field(File* f, Tab* t, int k, bint* bad) noexcept nogil:
    cdef Py_ssize_t at
    cdef int r = scalar_at(f, t, k, 8, &at)
    if r < 0:
        bad[0] = True
    return u64(f.p + at) if r > 0 else 0


cdef inline list index_list(File* f, Py_ssize_t start, Py_ssize_t count, Py_ssize_t n_tensors, bint allow_optional,
                     int64_t* bad_index):
    """The vector's int32 tensor indices as a list, or None with *bad_index the first outside [0, n_tensors)
    (-1 allowed for an omitted optional input when allow_optional)."""
    cdef list out = PyList_New(count)
    cdef Py_ssize_t j, m
    cdef int32_t idx
    cdef object v
    for j in range(count):
        idx = <int32_t>u32(f.p + start + 4 * j)
        if not (0 <= idx < n_tensors or allow_optional and idx == -1):
            bad_index[0] = idx
            for m in range(j, count):       # (a list must hold no NULL when it is freed)
                Py_INCREF(None)
                PyList_SET_ITEM(out, m, None)
            return None
        v = idx
        Py_INCREF(v)
        PyList_SET_ITEM(out, j, v)
    return out
