"""Builtin options tables read straight from the file: the `tflite` package's generated accessors cost several
Python calls per field, so for an options class whose every accessor is the generated scalar form (vtable slot,
element type, default) or the generated vector-of-numbers form (vtable slot, element type) that form is read off
the accessor once, and the C walker (cython_ops/tflite_read.pyx) reads each field in one step.  Any other class
(tables, strings) keeps the generated accessors.

The form is read off the accessor's code object: its bytecode must equal that of one of the templates below (the
generator's bodies, compiled by this interpreter with this module), and its constants and names then give the slot,
the element type and the default.  Only an accessor no template matches is read from its source text (the
generator's source forms as regular expressions): reading source means tokenizing the `tflite` package's files,
about 0.4 ms per accessor, paid by the first load of every options type in a process (SSD-MobileNet's first load in
a fresh process took 13.7 ms with source reads, 6.2 ms without; benchmarks/bench_load.py --first)."""
from __future__ import annotations

import ast
import inspect
import re
import struct

import flatbuffers
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


# The generator's accessor bodies (flatbuffers' Python code generator), as templates to compare code objects with.
# The slot (4) and the element type (Int8Flags) stand for any; the constants differ between forms only in whether
# the default shares the comparison's 0 (a default of int 0) or is a constant of its own (any other default,
# False included), which changes the bytecode's constant indices: the scalar form has a template for each, the bool
# form's default is always its own constant, and the vector form's is the comparison's 0.
def _scalar_default_zero(self):
    o = flatbuffers.number_types.UOffsetTFlags.py_type(self._tab.Offset(4))
    if o != 0:
        return self._tab.Get(flatbuffers.number_types.Int8Flags, o + self._tab.Pos)
    return 0


def _scalar_default_own(self):
    o = flatbuffers.number_types.UOffsetTFlags.py_type(self._tab.Offset(4))
    if o != 0:
        return self._tab.Get(flatbuffers.number_types.Int8Flags, o + self._tab.Pos)
    return 1


def _bool_default_own(self):
    o = flatbuffers.number_types.UOffsetTFlags.py_type(self._tab.Offset(4))
    if o != 0:
        return bool(self._tab.Get(flatbuffers.number_types.BoolFlags, o + self._tab.Pos))
    return False


def _vector_numpy(self):
    o = flatbuffers.number_types.UOffsetTFlags.py_type(self._tab.Offset(4))
    if o != 0:
        return self._tab.GetVectorAsNumpy(flatbuffers.number_types.Int32Flags, o)
    return 0


# bytecode -> the templates with it: (code, index of its element type's name in co_names, index of its default in
# co_consts (None: the vector form), as bool)
TEMPLATES_BY_CODE = {}
for _fn, _default_at, _as_bool in ((_scalar_default_zero, 2, False), (_scalar_default_own, 3, False),
                                   (_bool_default_own, 3, True), (_vector_numpy, None, False)):
    _code = _fn.__code__
    _at = next(i for i, name in enumerate(_code.co_names) if name.endswith("Flags") and name != "UOffsetTFlags")
    TEMPLATES_BY_CODE.setdefault(_code.co_code, []).append((_code, _at, _default_at, _as_bool))


def code_form(method):
    """(slot, element type, default, as bool) of an accessor whose code is one of the templates' (default VECTOR
    for the vector form), or None.  The bytecode, the names but the element type's and the constants' layout must
    all equal the template's: nothing else is read off the accessor."""
    code = getattr(method, "__code__", None)
    if code is None:
        return None
    for tmpl, at, default_at, as_bool in TEMPLATES_BY_CODE.get(code.co_code, ()):
        names = code.co_names
        if len(names) != len(tmpl.co_names) or len(code.co_consts) != len(tmpl.co_consts) or code.co_argcount != 1:
            continue
        kind = names[at]
        if not kind.endswith("Flags") or kind == "UOffsetTFlags" \
                or names[:at] + names[at + 1:] != tmpl.co_names[:at] + tmpl.co_names[at + 1:]:
            continue
        consts = code.co_consts
        slot, kind = consts[1], kind[:-len("Flags")]
        if consts[0] is not None or type(slot) is not int or consts[2] != 0 or type(consts[2]) is not int:
            continue
        if default_at is None:
            return slot, kind, VECTOR, False
        default = consts[default_at]
        if type(default) not in (int, float, bool) or (as_bool and type(default) is not bool):
            continue
        return slot, kind, default, as_bool
    return None


def scalar_fields(cls, fields: tuple):
    """For `fields` ((key, accessor, is vector) of cls), their direct reads, or None when any accessor is neither
    the generated scalar form nor the generated vector form (whose read has the default VECTOR)."""
    if cls in SCALAR_FIELDS:
        return SCALAR_FIELDS[cls]
    reads = []
    for key, attr, vector in fields:
        method = getattr(cls, attr)
        form = code_form(method)
        if form is not None and (form[2] is VECTOR) == vector and form[1] in FORMATS:
            slot, kind, default, as_bool = form
            reads.append((key, (slot - 4) // 2, struct.Struct(FORMATS[kind]), default, as_bool))
            continue
        if not _may_match_source(method, vector):
            reads = None
            break
        if vector:
            match = VECTOR_ACCESSOR.fullmatch(_body(method))
            if match is None or match.group(2) not in FORMATS:
                reads = None
                break
            reads.append((key, (int(match.group(1)) - 4) // 2, struct.Struct(FORMATS[match.group(2)]), VECTOR, False))
            continue
        match = SCALAR_ACCESSOR.fullmatch(_body(method))
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


def _may_match_source(method, vector: bool) -> bool:
    """False when the accessor's code lacks a name its source needs to match the source form (a table, string or
    union accessor): such a class keeps the generated accessors without its source being read."""
    code = getattr(method, "__code__", None)
    if code is None:
        return True
    return {"Offset", "GetVectorAsNumpy" if vector else "Get"} <= set(code.co_names)


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
