"""Builtin options tables of scalars read straight from the file: the `tflite` package's generated accessors cost
several Python calls per field, so for an options class whose every accessor is the generated scalar form
(vtable slot, element type, default) that form is read off the accessor's source once, and the C walker
(cython_ops/tflite_read.pyx) reads each field in one step.  Any other class (vectors, tables, strings) keeps the
generated accessors."""
from __future__ import annotations

import ast
import inspect
import re
import struct

# the body the flatbuffers code generator writes for a scalar field (flatbuffers 2.x / 23.x / 24.x / 25.x)
SCALAR_ACCESSOR = re.compile(
    r"\s*o = flatbuffers\.number_types\.UOffsetTFlags\.py_type\(self\._tab\.Offset\((\d+)\)\)\s*\n"
    r"\s*if o != 0:\s*\n"
    r"\s*return (bool\()?self\._tab\.Get\(flatbuffers\.number_types\.(\w+)Flags, o \+ self\._tab\.Pos\)\)?\s*\n"
    r"\s*return (.+?)\s*$")
FORMATS = {"Bool": "<?", "Int8": "<b", "Uint8": "<B", "Int16": "<h", "Uint16": "<H", "Int32": "<i",
           "Uint32": "<I", "Int64": "<q", "Uint64": "<Q", "Float32": "<f", "Float64": "<d"}

SCALAR_FIELDS = {}      # options class -> ((key, field index, struct, default, as bool), ...) or None


def scalar_fields(cls, fields: tuple):
    """For `fields` ((key, accessor, is vector) of cls), their direct reads, or None when any accessor is not the
    generated scalar form."""
    if cls in SCALAR_FIELDS:
        return SCALAR_FIELDS[cls]
    reads = []
    for key, attr, vector in fields:
        match = None if vector else SCALAR_ACCESSOR.fullmatch(_body(getattr(cls, attr)))
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
    character as its code, default, as bool) per field."""
    return tuple((key, index, ord(kind.format[-1]), default, as_bool) for key, index, kind, default, as_bool in reads)
