"""Options tables with vectors of numbers (RESHAPE's new_shape, BUCKETIZE's boundaries) read by the C walker
(converters/tflite_options.py's vector reads) give what the `tflite` package's generated accessors give: a copy of
the vector with its dtype, an empty int32 array when the field is absent; a vector that leaves the file is a
ModelFormatError naming the op on both paths."""
from __future__ import annotations

import ast
import inspect
import struct
import textwrap

import flatbuffers
import numpy as np
import pytest
import tflite as fb

import converters.tflite as tflite_reader
import converters.tflite_options as tflite_options
from converters.tflite import from_tflite
from edgeml.errors import ModelFormatError

RESHAPE, BUCKETIZE = fb.BuiltinOperator.RESHAPE, fb.BuiltinOperator.BUCKETIZE
FLOAT32, INT32 = fb.TensorType.FLOAT32, fb.TensorType.INT32


def _vector(b, values, dtype):
    values = np.asarray(values, dtype)
    prepend = b.PrependInt32 if values.dtype == np.int32 else b.PrependFloat32
    b.StartVector(values.itemsize, len(values), values.itemsize)
    for v in reversed(values.tolist()):
        prepend(v)
    return b.EndVector()


def one_op_model(code: int, options_kind: int, add_options, out_type=FLOAT32) -> bytes:
    """input [2, 3] float32 -> one op (options table written by add_options(builder), None: none) -> output."""
    b = flatbuffers.Builder(256)
    buffers = []
    for _ in range(3):
        fb.BufferStart(b)
        buffers.append(fb.BufferEnd(b))
    tensors = []
    for k, (name, shape, ttype) in enumerate((("in", [2, 3], FLOAT32), ("out", [3, 2], out_type))):
        name_off, shape_off = b.CreateString(name), _vector(b, shape, np.int32)
        fb.TensorStart(b)
        fb.TensorAddShape(b, shape_off)
        fb.TensorAddType(b, ttype)
        fb.TensorAddBuffer(b, k + 1)
        fb.TensorAddName(b, name_off)
        tensors.append(fb.TensorEnd(b))
    options = add_options(b)
    ins, outs = _vector(b, [0], np.int32), _vector(b, [1], np.int32)
    fb.OperatorStart(b)
    fb.OperatorAddOpcodeIndex(b, 0)
    fb.OperatorAddInputs(b, ins)
    fb.OperatorAddOutputs(b, outs)
    if options is not None:
        fb.OperatorAddBuiltinOptionsType(b, options_kind)
        fb.OperatorAddBuiltinOptions(b, options)
    op = fb.OperatorEnd(b)

    def tables(items):
        b.StartVector(4, len(items), 4)
        for off in reversed(items):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()
    t_vec, o_vec = tables(tensors), tables([op])
    g_in, g_out = _vector(b, [0], np.int32), _vector(b, [1], np.int32)
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, t_vec)
    fb.SubGraphAddInputs(b, g_in)
    fb.SubGraphAddOutputs(b, g_out)
    fb.SubGraphAddOperators(b, o_vec)
    subgraph = fb.SubGraphEnd(b)
    fb.OperatorCodeStart(b)
    fb.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    fb.OperatorCodeAddBuiltinCode(b, code)
    fb.OperatorCodeAddVersion(b, 1)
    codes = tables([fb.OperatorCodeEnd(b)])
    subgraphs, buffer_table = tables([subgraph]), tables(buffers)
    fb.ModelStart(b)
    fb.ModelAddVersion(b, 3)
    fb.ModelAddOperatorCodes(b, codes)
    fb.ModelAddSubgraphs(b, subgraphs)
    fb.ModelAddBuffers(b, buffer_table)
    b.Finish(fb.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def reshape_options(new_shape):
    def add(b):
        vec = None if new_shape is None else _vector(b, new_shape, np.int32)
        fb.ReshapeOptionsStart(b)
        if vec is not None:
            fb.ReshapeOptionsAddNewShape(b, vec)
        return fb.ReshapeOptionsEnd(b)
    return add


def bucketize_options(boundaries):
    def add(b):
        vec = _vector(b, boundaries, np.float32)
        fb.BucketizeOptionsStart(b)
        fb.BucketizeOptionsAddBoundaries(b, vec)
        return fb.BucketizeOptionsEnd(b)
    return add


def options_both_ways(data: bytes, monkeypatch) -> tuple:
    fast = from_tflite(data).ops[0].options
    with monkeypatch.context() as m:
        m.setattr(tflite_reader, "scalar_fields", lambda cls, fields: None)     # the generated accessors
        generated = from_tflite(data).ops[0].options
    return fast, generated


MODELS = {
    "new_shape": (RESHAPE, fb.BuiltinOptions.ReshapeOptions, reshape_options([3, -1]), FLOAT32),
    "empty_new_shape": (RESHAPE, fb.BuiltinOptions.ReshapeOptions, reshape_options([]), FLOAT32),
    "absent_new_shape": (RESHAPE, fb.BuiltinOptions.ReshapeOptions, reshape_options(None), FLOAT32),
    "float_boundaries": (BUCKETIZE, fb.BuiltinOptions.BucketizeOptions, bucketize_options([-1.5, 0.0, 2.25]), INT32),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_vector_options_equal_the_generated_accessors(name, monkeypatch):
    code, kind, add, out_type = MODELS[name]
    fast, generated = options_both_ways(one_op_model(code, kind, add, out_type), monkeypatch)
    assert sorted(fast) == sorted(generated) and len(fast) == 1
    for key, value in generated.items():
        assert type(fast[key]) is np.ndarray and fast[key].dtype == value.dtype, key
        assert fast[key].tolist() == value.tolist() and fast[key].flags.writeable, key
    expected = {"new_shape": [3, -1], "empty_new_shape": [], "absent_new_shape": [],
                "float_boundaries": [-1.5, 0.0, 2.25]}[name]
    assert next(iter(fast.values())).tolist() == expected


def test_vector_options_are_copies_not_views_of_the_file(monkeypatch):
    fast, _ = options_both_ways(one_op_model(*MODELS["new_shape"]), monkeypatch)
    assert fast["new_shape"].base is None


def test_a_vector_option_past_the_file_names_the_op_on_both_paths(monkeypatch):
    data = bytearray(one_op_model(*MODELS["new_shape"]))
    # the new_shape vector: length word 2 followed by 3, -1 (the only such run in the file)
    at = bytes(data).index(struct.pack("<Iii", 2, 3, -1))
    data[at:at + 4] = struct.pack("<I", 1 << 28)
    with pytest.raises(ModelFormatError, match=r"op 0 \(RESHAPE\) options"):
        from_tflite(bytes(data))
    monkeypatch.setattr(tflite_reader, "scalar_fields", lambda cls, fields: None)
    with pytest.raises(ModelFormatError, match=r"op 0 \(RESHAPE\) options"):
        from_tflite(bytes(data))


# ---- the accessors' forms read off their code objects (tflite_options.code_form) -------------------------------

def _source_form(method, vector: bool):
    """An accessor's form read from its source text, as tflite_options did before code_form."""
    body = tflite_options._body(method)
    if vector:
        match = tflite_options.VECTOR_ACCESSOR.fullmatch(body)
        return None if match is None else (int(match.group(1)), match.group(2), tflite_options.VECTOR, False)
    match = tflite_options.SCALAR_ACCESSOR.fullmatch(body)
    if match is None:
        return None
    slot, as_bool, kind, default = match.groups()
    return int(slot), kind, ast.literal_eval(default), as_bool is not None


def _options_classes():
    return [getattr(fb, n) for n in sorted(dir(fb)) if n.endswith("Options") and inspect.isclass(getattr(fb, n))]


def test_code_form_reads_every_generated_accessor_as_its_source_does():
    """Every field of every options class of the installed `tflite` package: the form read off the code object is
    the one its source gives (slot, element type, default of the same type, bool or not), and every accessor the
    source form reads is read off its code (so no load reads source)."""
    read = 0
    for cls in _options_classes():
        for _, attr, vector in tflite_reader._option_fields(cls):
            method = getattr(cls, attr)
            by_code, by_source = tflite_options.code_form(method), _source_form(method, vector)
            if by_source is None:
                assert by_code is None or (by_code[2] is tflite_options.VECTOR) != vector, (cls.__name__, attr)
                continue
            assert by_code == by_source and type(by_code[2]) is type(by_source[2]), (cls.__name__, attr)
            read += 1
    assert read > 150        # (the schema's scalar and vector fields: 217 with tflite 2.18's package)


def test_no_source_is_read_for_the_generated_options(monkeypatch):
    """Reading every options class's layout reads no source file (inspect.getsource tokenizes the package's files:
    about 0.4 ms per accessor on a first load), and gives the source reading's answer."""
    classes = _options_classes()
    by_source = {}
    monkeypatch.setattr(tflite_options, "SCALAR_FIELDS", {})
    with monkeypatch.context() as m:
        m.setattr(tflite_options, "code_form", lambda method: None)
        m.setattr(tflite_options, "_may_match_source", lambda method, vector: True)
        for cls in classes:
            by_source[cls] = tflite_options.scalar_fields(cls, tflite_reader._option_fields(cls))
    monkeypatch.setattr(tflite_options, "SCALAR_FIELDS", {})

    def no_source(obj):
        if callable(obj):
            raise AssertionError(f"source read for {obj!r}")
        raise TypeError("not a function")
    monkeypatch.setattr(inspect, "getsource", no_source)
    for cls in classes:
        by_code = tflite_options.scalar_fields(cls, tflite_reader._option_fields(cls))
        assert (by_code is None) == (by_source[cls] is None), cls.__name__
        if by_code is not None:
            assert [(k, i, s.format, d, b) for k, i, s, d, b in by_code] == \
                [(k, i, s.format, d, b) for k, i, s, d, b in by_source[cls]], cls.__name__


def test_an_accessor_unlike_the_templates_is_read_from_its_source():
    """A body that differs from the generator's (here: a docstring, a doubled value) is not read off its code: the
    source reading decides (and here refuses it), so no unknown form is taken for a plain field."""
    namespace = {"flatbuffers": flatbuffers}
    exec(textwrap.dedent('''
        def documented(self):
            "A docstring shifts the constants."
            o = flatbuffers.number_types.UOffsetTFlags.py_type(self._tab.Offset(6))
            if o != 0:
                return self._tab.Get(flatbuffers.number_types.Int32Flags, o + self._tab.Pos)
            return 0

        def doubled(self):
            o = flatbuffers.number_types.UOffsetTFlags.py_type(self._tab.Offset(6))
            if o != 0:
                return 2 * self._tab.Get(flatbuffers.number_types.Int32Flags, o + self._tab.Pos)
            return 0

        def plain(self):
            o = flatbuffers.number_types.UOffsetTFlags.py_type(self._tab.Offset(8))
            if o != 0:
                return self._tab.Get(flatbuffers.number_types.Float32Flags, o + self._tab.Pos)
            return -1.5
    '''), namespace)
    assert tflite_options.code_form(namespace["documented"]) is None
    assert tflite_options.code_form(namespace["doubled"]) is None
    assert tflite_options.code_form(namespace["plain"]) == (8, "Float32", -1.5, False)
