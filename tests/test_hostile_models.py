"""Hostile .tflite files: truncations, bit flips and hand-crafted malformed models.

Contract: a malformed model raises `edgeml.ModelFormatError` (or `UnsupportedOpError` for well-formed but
unsupported content) with a message naming what is wrong and where; random corruption either loads and runs,
producing an output of the declared shape, or raises an `EdgeMLError` subclass -- never another exception
type and never a crash.  The crafted models are built from scratch with `flatbuffers.Builder` and the `tflite`
package's generated builder functions, so each differs from a valid model in exactly one field.
"""
from __future__ import annotations

import random
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
import tflite as fb

import edgeml
from edgeml import EdgeMLError, ModelFormatError, UnsupportedOpError

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "models" / "mlperf_tiny"
KWS = MODELS / "kws_ref_model.tflite"
FUZZ_MODELS = ["kws_ref_model", "ad01_int8", "pretrainedResnet_quant", "vww_96_int8", "ad01_fp32"]



def _model_bytes(name: str) -> bytes:
    return (MODELS / f"{name}.tflite").read_bytes()


# ----------------------------------------------------------------------------------------------------
# A minimal TFLite flatbuffer writer
# ----------------------------------------------------------------------------------------------------

INT8, INT32, FLOAT32 = fb.TensorType.INT8, fb.TensorType.INT32, fb.TensorType.FLOAT32
FULLY_CONNECTED = fb.BuiltinOperator.FULLY_CONNECTED


def _vec(b: flatbuffers.Builder, values, dtype) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=dtype))


def build_model(spec: dict) -> bytes:
    """Serialize `spec` (see `base_spec`) as a TFLite flatbuffer, without any validation."""
    b = flatbuffers.Builder(1024)

    buffers = []
    for data in spec["buffers"]:
        data_off = b.CreateByteVector(bytes(data)) if data else None
        fb.BufferStart(b)
        if data_off is not None:
            fb.BufferAddData(b, data_off)
        buffers.append(fb.BufferEnd(b))

    tensors = []
    for t in spec["tensors"]:
        name = b.CreateString(t["name"])
        shape = _vec(b, t["shape"], np.int32)
        quant = None
        q = t.get("quant")
        if q is not None:
            scale = _vec(b, q["scale"], np.float32)
            zp = _vec(b, q["zero_point"], np.int64)
            fb.QuantizationParametersStart(b)
            fb.QuantizationParametersAddScale(b, scale)
            fb.QuantizationParametersAddZeroPoint(b, zp)
            fb.QuantizationParametersAddQuantizedDimension(b, q.get("axis", 0))
            quant = fb.QuantizationParametersEnd(b)
        fb.TensorStart(b)
        fb.TensorAddShape(b, shape)
        fb.TensorAddType(b, t["type"])
        fb.TensorAddBuffer(b, t["buffer"])
        fb.TensorAddName(b, name)
        if quant is not None:
            fb.TensorAddQuantization(b, quant)
        tensors.append(fb.TensorEnd(b))

    ops = []
    for op in spec["ops"]:
        ins = _vec(b, op["inputs"], np.int32)
        outs = _vec(b, op["outputs"], np.int32)
        fb.OperatorStart(b)
        fb.OperatorAddOpcodeIndex(b, op["opcode"])
        fb.OperatorAddInputs(b, ins)
        fb.OperatorAddOutputs(b, outs)
        ops.append(fb.OperatorEnd(b))

    def table_vector(items):
        b.StartVector(4, len(items), 4)
        for off in reversed(items):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    t_vec, o_vec = table_vector(tensors), table_vector(ops)
    g_in, g_out = _vec(b, spec["inputs"], np.int32), _vec(b, spec["outputs"], np.int32)
    sg_name = b.CreateString("main")
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, t_vec)
    fb.SubGraphAddInputs(b, g_in)
    fb.SubGraphAddOutputs(b, g_out)
    fb.SubGraphAddOperators(b, o_vec)
    fb.SubGraphAddName(b, sg_name)
    subgraph = fb.SubGraphEnd(b)

    codes = []
    for code, version in spec["opcodes"]:
        fb.OperatorCodeStart(b)
        fb.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        fb.OperatorCodeAddBuiltinCode(b, code)
        fb.OperatorCodeAddVersion(b, version)
        codes.append(fb.OperatorCodeEnd(b))

    codes_vec = table_vector(codes)
    sg_vec = table_vector([subgraph])
    buf_vec = table_vector(buffers)
    desc = b.CreateString("edgeml hostile-model test")
    fb.ModelStart(b)
    fb.ModelAddVersion(b, spec.get("version", 3))
    fb.ModelAddOperatorCodes(b, codes_vec)
    fb.ModelAddSubgraphs(b, sg_vec)
    fb.ModelAddDescription(b, desc)
    fb.ModelAddBuffers(b, buf_vec)
    model = fb.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


W = np.array([[1, -2, 3, -4], [5, 6, -7, 8], [-9, 10, 11, -12]], dtype=np.int8)
BIAS = np.array([100, -50, 7], dtype=np.int32)


def base_spec() -> dict:
    """A valid int8 FULLY_CONNECTED model: input [1,4] x weights [3,4] + bias [3] -> output [1,3]."""
    return {
        "version": 3,
        "opcodes": [(FULLY_CONNECTED, 4)],
        "buffers": [b"", W.tobytes(), BIAS.tobytes(), b"", b""],
        "tensors": [
            {"name": "input", "shape": [1, 4], "type": INT8, "buffer": 3,
             "quant": {"scale": [0.5], "zero_point": [-1]}},
            {"name": "weights", "shape": [3, 4], "type": INT8, "buffer": 1,
             "quant": {"scale": [0.25], "zero_point": [0]}},
            {"name": "bias", "shape": [3], "type": INT32, "buffer": 2,
             "quant": {"scale": [0.125], "zero_point": [0]}},
            {"name": "output", "shape": [1, 3], "type": INT8, "buffer": 4,
             "quant": {"scale": [0.75], "zero_point": [3]}},
        ],
        "ops": [{"opcode": 0, "inputs": [0, 1, 2], "outputs": [3]}],
        "inputs": [0],
        "outputs": [3],
    }


def _vector_length_pos(table, field_offset: int) -> int:
    """Byte position of the uint32 length prefix of a vector field of a flatbuffer table."""
    o = table._tab.Offset(field_offset)
    assert o, "field not present"
    return table._tab.Vector(o) - 4


def _patched(data: bytes, pos: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, pos, value)
    return bytes(out)


# ----------------------------------------------------------------------------------------------------
# The base model is valid (so each hostile variant differs only by its defect)
# ----------------------------------------------------------------------------------------------------

def _reference_fc(x: np.ndarray) -> np.ndarray:
    acc = (x.astype(np.int64) + 1) @ W.T.astype(np.int64) + BIAS          # input zp -1
    real = acc * (0.5 * 0.25 / 0.75)
    q = np.sign(real) * np.floor(np.abs(real) + 0.5) + 3
    return np.clip(q, -128, 127).astype(np.int8)


def test_base_model_is_valid():
    it = edgeml.Interpreter(build_model(base_spec()))
    x = np.array([[10, -20, 30, 127]], dtype=np.int8)
    it.set_input(x)
    it.invoke()
    np.testing.assert_array_equal(it.get_output(), _reference_fc(x))


def test_base_model_matches_litert():
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    data = build_model(base_spec())
    ref = litert.Interpreter(model_content=data, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    rng = np.random.default_rng(0)
    it = edgeml.Interpreter(data)
    for _ in range(8):
        x = rng.integers(-128, 128, size=(1, 4), dtype=np.int8)
        ref.set_tensor(ref.get_input_details()[0]["index"], x)
        ref.invoke()
        np.testing.assert_array_equal(it.run(x), ref.get_tensor(ref.get_output_details()[0]["index"]))


# ----------------------------------------------------------------------------------------------------
# Hand-crafted hostile models
# ----------------------------------------------------------------------------------------------------

def _spec_with(mutate):
    spec = base_spec()
    mutate(spec)
    return build_model(spec)


def _set(path, value):
    """mutate(spec) that sets spec[path[0]][path[1]]... = value."""
    def mutate(spec):
        obj = spec
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return mutate


def _fc_per_channel(mutate_q):
    def mutate(spec):
        q = {"scale": [0.25, 0.5, 0.125], "zero_point": [0, 0, 0], "axis": 0}
        mutate_q(q)
        spec["tensors"][1]["quant"] = q
    return mutate


HOSTILE = {
    # (mutation of the base spec, expected exception, message fragment)
    "buffer_index_out_of_range": (_set(["tensors", 1, "buffer"], 57), ModelFormatError,
                                  r"tensor 1 'weights'.*buffer index 57 is outside the 5-entry buffer table"),
    "buffer_shorter_than_tensor": (_set(["buffers", 1], W.tobytes()[:11]), ModelFormatError,
                                   r"tensor 1 'weights'.*buffer 1 holds 11 bytes.*needs 12"),
    "buffer_longer_than_tensor": (_set(["buffers", 2], BIAS.tobytes() + b"\0" * 4), ModelFormatError,
                                  r"tensor 2 'bias'.*buffer 2 holds 16 bytes.*needs 12"),
    "negative_dim": (_set(["tensors", 0, "shape"], [1, -4]), ModelFormatError,
                     r"tensor 0 'input'.*negative dimension"),
    "negative_dim_weights": (_set(["tensors", 1, "shape"], [-3, 4]), ModelFormatError,
                             r"tensor 1 'weights'.*negative dimension"),
    "huge_dims": (_set(["tensors", 3, "shape"], [2**31 - 1, 2**31 - 1]), ModelFormatError,
                  r"tensor 3 'output'.*larger than"),
    # numpy cannot shape even an empty array whose other dimensions multiply past 2**63 bytes (found by fuzzing)
    "empty_input_huge_other_dims": (_set(["tensors", 0, "shape"], [2**31 - 1, 0, 2**31 - 1, 2**31 - 1, 4]),
                                    ModelFormatError, r"tensor 0 'input'.*holds no element.*multiply past"),
    "huge_dim_constant": (_set(["tensors", 1, "shape"], [3, 2**30]), ModelFormatError,
                          r"tensor 1 'weights'"),
    "rank_too_large": (_set(["tensors", 0, "shape"], [1] * 12 + [4]), ModelFormatError,
                       r"tensor 0 'input'.*rank 13"),
    "unknown_tensor_type": (_set(["tensors", 3, "type"], 99), ModelFormatError,
                            r"tensor 3 'output'.*tensor type"),
    "bad_quantized_dimension": (_fc_per_channel(lambda q: q.update(axis=5)), ModelFormatError,
                                r"tensor 1 'weights'.*quantized_dimension 5"),
    "negative_quantized_dimension": (_fc_per_channel(lambda q: q.update(axis=-1)), ModelFormatError,
                                     r"tensor 1 'weights'.*quantized_dimension -1"),
    "wrong_number_of_scales": (_fc_per_channel(lambda q: q.update(scale=[0.25, 0.5], zero_point=[0, 0])),
                               ModelFormatError, r"tensor 1 'weights'.*2 per-axis scales for dimension 0 of size 3"),
    "scales_vs_zero_points": (_fc_per_channel(lambda q: q.update(zero_point=[0, 0])), ModelFormatError,
                              r"tensor 1 'weights'.*3 quantization scales but 2 zero points"),
    "negative_scale": (_set(["tensors", 0, "quant"], {"scale": [-0.5], "zero_point": [0]}), ModelFormatError,
                       r"tensor 0 'input'.*scale"),
    "nan_scale": (_set(["tensors", 3, "quant"], {"scale": [float("nan")], "zero_point": [0]}), ModelFormatError,
                  r"tensor 3 'output'.*scale"),
    "inf_scale": (_set(["tensors", 1, "quant"], {"scale": [float("inf")], "zero_point": [0]}), ModelFormatError,
                  r"tensor 1 'weights'.*scale"),
    "nan_per_axis_scale": (_fc_per_channel(lambda q: q.update(scale=[0.25, float("nan"), 0.5])), ModelFormatError,
                           r"tensor 1 'weights'.*scale"),
    "zero_point_out_of_int8_range": (_set(["tensors", 0, "quant"], {"scale": [0.5], "zero_point": [300]}),
                                     ModelFormatError, r"tensor 0 'input'.*zero point"),
    "op_input_index_out_of_range": (_set(["ops", 0, "inputs"], [0, 99, 2]), ModelFormatError,
                                    r"op 0 \(FULLY_CONNECTED\) input refers to tensor 99"),
    "op_input_index_negative": (_set(["ops", 0, "inputs"], [-7, 1, 2]), ModelFormatError,
                                r"op 0 \(FULLY_CONNECTED\) input refers to tensor -7"),
    "op_output_index_out_of_range": (_set(["ops", 0, "outputs"], [4]), ModelFormatError,
                                     r"op 0 \(FULLY_CONNECTED\) output refers to tensor 4"),
    "op_output_optional_marker": (_set(["ops", 0, "outputs"], [-1]), ModelFormatError,
                                  r"op 0 \(FULLY_CONNECTED\) output refers to tensor -1"),
    "op_missing_inputs": (_set(["ops", 0, "inputs"], [0]), ModelFormatError,
                          r"op 0 \(FULLY_CONNECTED.*missing input 1"),
    "op_writes_constant": (_set(["ops", 0, "outputs"], [1]), ModelFormatError,
                           r"op 0 \(FULLY_CONNECTED.*"),
    "graph_input_index_out_of_range": (_set(["inputs"], [12]), ModelFormatError,
                                       r"subgraph input refers to tensor 12"),
    "graph_output_index_out_of_range": (_set(["outputs"], [2**31 - 1]), ModelFormatError,
                                        r"subgraph output refers to tensor 2147483647"),
    "no_graph_outputs": (_set(["outputs"], []), ModelFormatError, r"no inputs or no outputs"),
    "opcode_index_out_of_range": (_set(["ops", 0, "opcode"], 3), ModelFormatError,
                                  r"op 0: opcode index 3 is outside the 1-entry code table"),
    "no_opcodes": (_set(["opcodes"], []), ModelFormatError, r"op 0: opcode index 0 is outside the 0-entry"),
    "unknown_builtin_op": (_set(["opcodes"], [(250, 1)]), UnsupportedOpError, r"op 0 \(BUILTIN_250"),
    "unsupported_op_version": (_set(["opcodes"], [(FULLY_CONNECTED, 99)]), UnsupportedOpError,
                               r"op 0 \(FULLY_CONNECTED v99\).*version 99"),
    "wrong_schema_version": (_set(["version"], 2), ModelFormatError, r"schema version 2"),
    "declared_output_shape_mismatch": (_set(["tensors", 3, "shape"], [1, 5]), ModelFormatError,
                                       r"op 0 \(FULLY_CONNECTED.*tensor 3 'output' is declared \[1, 5\]"),
    "weights_input_channel_mismatch": (
        lambda s: (s["tensors"][1].update(shape=[2, 6]), s["tensors"][3].update(shape=[1, 2]),
                   s["tensors"][2].update(shape=[2]), s["buffers"].__setitem__(2, BIAS[:2].tobytes())),
        EdgeMLError, r"op 0 \(FULLY_CONNECTED"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_crafted_hostile_model(case):
    mutate, exc_type, fragment = HOSTILE[case]
    data = _spec_with(mutate)
    with pytest.raises(exc_type, match=fragment):
        it = edgeml.Interpreter(data)
        x = np.zeros(it.get_input_details()[0]["shape"], np.int8)
        it.run(x)


# ----- patched bytes: fields the builder would not write ---------------------------------------------

def _model_fb(data: bytes):
    return fb.Model.GetRootAs(data, 0)


def _patch_vector_length(locate, value: int) -> bytes:
    data = build_model(base_spec())
    pos = _vector_length_pos(*locate(_model_fb(data)))
    return _patched(data, pos, "<I", value)


VECTOR_FIELDS = {
    # name: (locate(model) -> (table, field offset), message fragment)
    "subgraphs": (lambda m: (m, 8), r"subgraph table claims"),
    "buffers": (lambda m: (m, 12), r"buffer table claims"),
    "operator_codes": (lambda m: (m, 6), r"operator code table claims"),
    "tensors": (lambda m: (m.Subgraphs(0), 4), r"tensor table claims"),
    "operators": (lambda m: (m.Subgraphs(0), 10), r"operator table claims"),
    "subgraph_inputs": (lambda m: (m.Subgraphs(0), 6), r"subgraph inputs claims"),
    "tensor_shape": (lambda m: (m.Subgraphs(0).Tensors(1), 4), r"tensor 1 'weights' shape claims"),
    "buffer_data": (lambda m: (m.Buffers(1), 4), r"buffer 1 claims"),
    "op_inputs": (lambda m: (m.Subgraphs(0).Operators(0), 6), r"op 0 \(FULLY_CONNECTED\) inputs claims"),
    "op_outputs": (lambda m: (m.Subgraphs(0).Operators(0), 8), r"op 0 \(FULLY_CONNECTED\) outputs claims"),
    "quant_scale": (lambda m: (m.Subgraphs(0).Tensors(0).Quantization(), 8),
                    r"tensor 0 'input' quantization scale claims"),
    "quant_zero_point": (lambda m: (m.Subgraphs(0).Tensors(3).Quantization(), 10),
                         r"tensor 3 'output' quantization zero_point claims"),
}


@pytest.mark.parametrize("length", [0x7FFFFFFF, 0xFFFFFFFF, 1 << 20])
@pytest.mark.parametrize("field", sorted(VECTOR_FIELDS))
def test_vector_length_larger_than_file(field, length):
    locate, fragment = VECTOR_FIELDS[field]
    data = _patch_vector_length(locate, length)
    with pytest.raises(ModelFormatError, match=fragment):
        edgeml.Interpreter(data)


@pytest.mark.parametrize("field", sorted(VECTOR_FIELDS))
def test_vector_running_past_end_of_file(field):
    """A length that fits in the file size but not in the bytes after the vector's start."""
    locate, fragment = VECTOR_FIELDS[field]
    data = build_model(base_spec())
    table, off = locate(_model_fb(data))
    pos = _vector_length_pos(table, off)
    itemsize = 1 if field == "buffer_data" else (8 if field == "quant_zero_point" else 4)
    remaining = (len(data) - pos - 4) // itemsize
    value = remaining + 1
    assert value * itemsize <= len(data)
    data = _patched(data, pos, "<I", value)
    # the entity must be named; for a shape vector the rank check may fire first ("rank 51 exceeds ...")
    name = fragment.split(" shape claims")[0].split(" claims")[0]
    with pytest.raises(ModelFormatError, match=name):
        edgeml.Interpreter(data)


def test_missing_tfl3_identifier():
    data = bytearray(build_model(base_spec()))
    data[4:8] = b"XXXX"
    with pytest.raises(ModelFormatError, match=r"TFL3.*offset 4"):
        edgeml.Interpreter(bytes(data))


def test_root_offset_past_end():
    data = _patched(build_model(base_spec()), 0, "<I", 0x7FFFFFF0)
    with pytest.raises(ModelFormatError, match=r"root table offset"):
        edgeml.Interpreter(data)


def test_large_model_buffer_offset_past_end():
    """Buffer.offset/size (the >2 GB layout) pointing past the end of the file."""
    spec = base_spec()
    spec["buffers"][1] = None
    spec["large_buffer"] = (1, 1 << 40, 12)
    data = _build_with_large_buffer(spec)
    with pytest.raises(ModelFormatError, match=r"buffer 1: data at offset 1099511627776"):
        edgeml.Interpreter(data)


def _build_with_large_buffer(spec) -> bytes:
    """build_model, but buffer `index` gets offset/size fields instead of inline data."""
    index, offset, size = spec.pop("large_buffer")
    original_start, original_end = fb.BufferStart, fb.BufferEnd
    counter = {"n": 0}

    def buffer_end(b):
        if counter["n"] == index:
            fb.BufferAddOffset(b, offset)
            fb.BufferAddSize(b, size)
        counter["n"] += 1
        return original_end(b)

    fb.BufferEnd = buffer_end
    try:
        return build_model(spec)
    finally:
        fb.BufferStart, fb.BufferEnd = original_start, original_end


@pytest.mark.parametrize("payload", [b"", b"\0", b"TFL3", b"\0\0\0\0TFL3", b"\xff" * 7, b"\x08\0\0\0TFL3"])
def test_tiny_payloads(payload):
    with pytest.raises(ModelFormatError):
        edgeml.Interpreter(payload)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match="does not exist"):
        edgeml.Interpreter(tmp_path / "nope.tflite")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ModelFormatError, match="cannot read model file"):
        edgeml.Interpreter(tmp_path)


# ----------------------------------------------------------------------------------------------------
# Truncations of a real model
# ----------------------------------------------------------------------------------------------------

TRUNC_STRIDE = 211
TRUNC_LENGTHS = sorted({0, 4, 7, 8, 12, 16, 100} | set(range(0, 53936, TRUNC_STRIDE)) | {53936 - 1, 53936 - 4})


@pytest.fixture(scope="module")
def kws_reference():
    data = KWS.read_bytes()
    it = edgeml.Interpreter(data)
    x = np.random.default_rng(1).integers(-128, 128, size=tuple(it.get_input_details()[0]["shape"]),
                                          dtype=np.int8)
    return data, x, it.run(x)


@pytest.mark.parametrize("length", TRUNC_LENGTHS)
def test_truncated_kws(kws_reference, length):
    """A prefix of the file either fails with ModelFormatError or -- if everything the runtime reads lies in
    the prefix -- loads and gives exactly the full model's output."""
    data, x, want = kws_reference
    assert length < len(data)
    try:
        it = edgeml.Interpreter(data[:length])
    except ModelFormatError:
        return
    np.testing.assert_array_equal(it.run(x), want)


def test_truncated_tiny_lengths_name_the_size(kws_reference):
    data = kws_reference[0]
    for n in (0, 4, 7):
        with pytest.raises(ModelFormatError, match=f"{n} bytes"):
            edgeml.Interpreter(data[:n])
    with pytest.raises(ModelFormatError):
        edgeml.Interpreter(data[:8])


# ----------------------------------------------------------------------------------------------------
# Random bit and byte flips
# ----------------------------------------------------------------------------------------------------

FLIPS_PER_MODEL = 60


def _structure_ranges(data: bytes) -> list:
    """[(start, end)] byte ranges of the file that are not constant-buffer payload: the tables, vtables,
    vectors of indices, shapes and quantization -- where a flip exercises the validation."""
    m = fb.Model.GetRootAs(data, 0)
    payload = []
    for i in range(m.BuffersLength()):
        buf = m.Buffers(i)
        o = buf._tab.Offset(4)
        if o:
            start = buf._tab.Vector(o)
            payload.append((start, start + buf._tab.VectorLen(o)))
    ranges, pos = [], 0
    for start, end in sorted(payload):
        if start > pos:
            ranges.append((pos, start))
        pos = max(pos, end)
    if pos < len(data):
        ranges.append((pos, len(data)))
    return ranges


def _mutations(seed: int, data: bytes, count: int):
    """[(kind, position, value)]: 'bit' flips bit `value`, 'byte' sets the byte to `value`.  Three quarters of
    the positions fall outside the weight payload (in the flatbuffer structure), the rest anywhere."""
    rng = random.Random(seed)
    ranges = _structure_ranges(data)
    weights = [end - start for start, end in ranges]
    out = []
    for _ in range(count):
        if rng.random() < 0.75:
            start, end = rng.choices(ranges, weights)[0]
            pos = rng.randrange(start, end)
        else:
            pos = rng.randrange(len(data))
        if rng.random() < 0.6:
            out.append(("bit", pos, rng.randrange(8)))
        else:
            out.append(("byte", pos, rng.choice([0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)])))
    return out


def _apply(data: bytes, mutation) -> bytes:
    kind, pos, value = mutation
    out = bytearray(data)
    if kind == "bit":
        out[pos] ^= 1 << value
    else:
        out[pos] = value
    return bytes(out)


def _check_mutant(data: bytes):
    """The fuzz contract; returns 'loaded' or the EdgeMLError subclass name."""
    try:
        it = edgeml.Interpreter(data)
        inputs = []
        for d in it.get_input_details():
            shape = tuple(int(s) for s in d["shape"])
            if d["dtype"] == np.int8:
                inputs.append(np.random.default_rng(0).integers(-128, 128, size=shape, dtype=np.int8))
            else:
                inputs.append(np.random.default_rng(0).standard_normal(shape).astype(d["dtype"]))
        for i, x in enumerate(inputs):
            it.set_input(x, i)
        it.invoke()
        for d in it.get_output_details():
            y = it.get_output(d["index"])
            assert y.shape == tuple(int(s) for s in d["shape"]), "output shape differs from the declared one"
            assert y.dtype == d["dtype"]
        return "loaded"
    except EdgeMLError as exc:
        return type(exc).__name__


FLIP_CASES = [(name, seed) for name in FUZZ_MODELS for seed in range(FLIPS_PER_MODEL)]


@pytest.fixture(scope="module")
def model_cache():
    return {}


@pytest.mark.parametrize("name,seed", FLIP_CASES, ids=[f"{n}-{s}" for n, s in FLIP_CASES])
def test_bit_flip(model_cache, name, seed):
    if name not in model_cache:
        model_cache[name] = _model_bytes(name)
    data = model_cache[name]
    mutation = _mutations(1000 * FUZZ_MODELS.index(name) + seed, data, 1)[0]
    try:
        _check_mutant(_apply(data, mutation))
    except EdgeMLError:
        raise
    except Exception as exc:  # the contract: nothing but EdgeMLError
        pytest.fail(f"{name} with {mutation}: {type(exc).__name__}: {exc}")


SMOKE = textwrap.dedent("""
    import sys, random, collections
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    import test_hostile_models as T
    counts = collections.Counter()
    for name in T.FUZZ_MODELS:
        data = T._model_bytes(name)
        for k, mutation in enumerate(T._mutations({seed} + 17 * T.FUZZ_MODELS.index(name), data, {count})):
            print(name, k, mutation, flush=True, file=sys.stderr)
            try:
                counts[T._check_mutant(T._apply(data, mutation))] += 1
            except Exception as exc:
                print("CONTRACT", name, mutation, type(exc).__name__, exc)
                counts["other"] += 1
    print("COUNTS", dict(counts))
""")


def test_bit_flip_smoke_subprocess():
    """A few hundred flips in a child process, so a segfault or abort fails this test instead of pytest."""
    code = SMOKE.format(root=str(ROOT), tests=str(ROOT / "tests"), seed=7919, count=80)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900,
                          cwd=str(ROOT))
    last = proc.stderr.strip().splitlines()[-1:] if proc.stderr else []
    assert proc.returncode == 0, f"child died with code {proc.returncode}; last case started: {last}"
    assert "CONTRACT" not in proc.stdout, proc.stdout
    assert "COUNTS" in proc.stdout
