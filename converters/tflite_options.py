"""Builtin options tables read straight from the file: the `tflite` package's generated accessors cost several
Python calls per field, so for an options class whose every accessor is the generated scalar form (vtable slot,
element type, default) or the generated vector-of-numbers form (vtable slot, element type) that form is read off
the accessor's source once, and the C walker (cython_ops/tflite_read.pyx) reads each field in one step.  Any other
class (tables, strings) keeps the generated accessors."""
from __future__ import annotations

import ast
import inspect
import re
import struct

import numpy as np

# the body the flatbuffers code generator writes for a scalar field (flatbuffers 2.x / 23.x / 24.x / 25.x)
SCALAR_ACCESSOR = re.compile(
    r"\s*o = flatbuffers\.number_types\.UOffsetTFlags\.py_type\(self\._tab\.Offset\((\d+)\)\)\s*\n"
    r"\s*if o != 0:\s*\n"
    r"\s*return (bool\()?self\._tab\.Get\(flatbuffers\.number_types\.(\w+)Flags, o \+ self\._tab\.Pos\)\)?\s*\n"
    r"\s*return (.+?)\s*$")
# ... and for a vector of numbers (its *AsNumpy accessor): a copy of the vector, or 0 when absent
VECTOR_ACCESSOR = re.compile(
    r"\s*o = flatbuffers\.number_types\.UOffsetTFlags\.py_type\(self\._tab\.Offset\((\d+)\)\)\s*\n"
    r"\s*if o != 0:\s*\n"
    r"\s*return self\._tab\.GetVectorAsNumpy\(flatbuffers\.number_types\.(\w+)Flags, o\)\s*\n"
    r"\s*return 0\s*$")
VECTOR = object()       # the default of a vector field's read: it has none (read_spec gives its element dtype)
FORMATS = {"Bool": "<?", "Int8": "<b", "Uint8": "<B", "Int16": "<h", "Uint16": "<H", "Int32": "<i",
           "Uint32": "<I", "Int64": "<q", "Uint64": "<Q", "Float32": "<f", "Float64": "<d"}

SCALAR_FIELDS = {}      # options class -> ((key, field index, struct, default, as bool), ...) or None


def scalar_fields(cls, fields: tuple):
    """For `fields` ((key, accessor, is vector) of cls), their direct reads, or None when any accessor is neither
    the generated scalar form nor the generated vector form (whose read has the default VECTOR)."""
    if cls in SCALAR_FIELDS:
        return SCALAR_FIELDS[cls]
    reads = []
    for key, attr, vector in fields:
        if vector:
            match = VECTOR_ACCESSOR.fullmatch(_body(getattr(cls, attr)))
            if match is None or match.group(2) not in FORMATS:
                reads = None
                break
            reads.append((key, (int(match.group(1)) - 4) // 2, struct.Struct(FORMATS[match.group(2)]), VECTOR, False))
            continue
        match = SCALAR_ACCESSOR.fullmatch(_body(getattr(cls, attr)))
        if match is None or match.group(3) not in FORMATS:
            reads = None
            break
        slot, as_bool, kind, default = match.groups()
        try:
            default = ast.literal_eval(default)
        except (ValueError, SyntaxError):
            reads = None
            break
        reads.append((key, (int(slot) - 4) // 2, struct.Struct(FORMATS[kind]), default, as_bool is not None))
    SCALAR_FIELDS[cls] = reads = None if reads is None else tuple(reads)
    return reads


def _body(method) -> str:
    """A method's source after its `def` line."""
    try:
        source = inspect.getsource(method)
    except (OSError, TypeError):
        return ""
    return source.split("\n", 1)[1] if "\n" in source else ""


def read_spec(reads: tuple) -> tuple:
    """`reads` (scalar_fields) as cython_ops.tflite_read's ModelFile reads them: (key, field index, struct format
    character as its code, default, as bool) per scalar field; (key, field index, minus that code, the elements'
    little-endian numpy dtype, False) per vector field."""
    return tuple((key, index, ord(kind.format[-1]), default, as_bool) if default is not VECTOR else
                 (key, index, -ord(kind.format[-1]), np.dtype(kind.format), False)
                 for key, index, kind, default, as_bool in reads)
