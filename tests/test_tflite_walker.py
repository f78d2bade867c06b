"""The C walker of the .tflite reader (cython_ops/tflite_read.pyx, driven by converters/tflite.py) reads the graph
the `tflite` package's generated accessors describe, field for field: every tensor's name, shape, type, constant
data, quantization, is_variable and dynamic dimensions, every op's code, version, inputs, outputs, intermediates
and builtin options (all fields, through the generated accessors), the subgraph's inputs, outputs and name, and
the subgraphs control-flow ops reach.  Checked on the MLPerf Tiny models, the public corpus, every other .tflite
under ../shared/models, and the catalogue models this session's model cache holds (the per-op test files convert
them first; this file runs after them)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tflite as fb

import converters.tflite as tflite_reader
import edgeml
from converters.tflite import OPERATOR_NAMES, OPTIONS_NAMES, TENSOR_TYPES, from_tflite
from cython_ops.tflite_read import FormatError, ModelFile
from edgeml.errors import ModelFormatError
from test_hostile_models import BIAS, base_spec, build_model

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"
CUSTOM_TYPES = {b"TFLite_Detection_PostProcess": "DETECTION_POSTPROCESS"}


def generated_options(op) -> dict:
    """Every field of the op's builtin options table through the generated accessors, snake_cased."""
    kind = op.BuiltinOptionsType()
    if kind == 0:
        return {}
    cls = getattr(fb, OPTIONS_NAMES[kind])
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    names = set(dir(cls))
    out = {}
    for attr in sorted(names):
        if attr.startswith("_") or attr.startswith(("Init", "GetRootAs")) \
                or attr.endswith(("BufferHasIdentifier", "IsNone", "Length")):
            continue
        key = tflite_reader._snake(attr[:-len("AsNumpy")] if attr.endswith("AsNumpy") else attr)
        if attr.endswith("AsNumpy"):
            value = getattr(opts, attr)()
            out[key] = np.zeros(0, np.int32) if isinstance(value, int) else np.array(value).reshape(-1)
        elif attr + "AsNumpy" not in names:
            try:
                out[key] = getattr(opts, attr)()
            except TypeError:       # a vector of tables: not read by the reader either
                pass
    return out


def reference_subgraph(model, k: int) -> dict:
    sg = model.Subgraphs(k)
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        signature = [int(d) for d in t.ShapeSignatureAsNumpy()] if t.ShapeSignatureLength() else []
        q = t.Quantization()
        quant = None
        if q is not None and (q.ScaleLength() or q.ZeroPointLength()):
            scale = q.ScaleAsNumpy().astype(np.float64)
            zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scale.size, np.int64)
            quant = (scale, zp, q.QuantizedDimension() if scale.size > 1 else 0)
        buf = model.Buffers(t.Buffer())
        raw = buf.DataAsNumpy().tobytes() if buf is not None and buf.DataLength() else None
        dtype = TENSOR_TYPES[t.Type()]
        tensors.append(dict(name=t.Name().decode() if t.Name() else f"tensor_{i}", shape=shape, dtype=dtype,
                            quant=quant, is_variable=bool(t.IsVariable()), sparse=t.Sparsity() is not None,
                            dynamic=tuple(a for a, d in enumerate(signature) if d == -1)
                            if len(signature) == len(shape) else (),
                            data=None if raw is None or t.Sparsity() is not None
                            else np.frombuffer(raw, dtype).reshape(shape)))
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = OPERATOR_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        options = generated_options(op)
        if name == "CUSTOM":
            name = CUSTOM_TYPES.get(code.CustomCode(), "CUSTOM:" + code.CustomCode().decode())
            options = None          # flexbuffer options: tests/test_detection.py
        ops.append(dict(type=name, version=code.Version(), options=options,
                        inputs=[int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else [],
                        outputs=[int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                        intermediates=[int(v) for v in op.IntermediatesAsNumpy()] if op.IntermediatesLength()
                        else []))
    return dict(tensors=tensors, ops=ops, inputs=[int(v) for v in sg.InputsAsNumpy()],
                outputs=[int(v) for v in sg.OutputsAsNumpy()], name=(sg.Name() or b"").decode())


def same_value(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype \
            and np.array_equal(a, b)
    return type(a) is type(b) and (a == b or a != a and b != b)


def check_graph(graph, model, k: int):
    want = reference_subgraph(model, k)
    assert (graph.inputs, graph.outputs, graph.name) == (want["inputs"], want["outputs"], want["name"])
    assert len(graph.tensors) == len(want["tensors"])
    for i, (t, w) in enumerate(zip(graph.tensors, want["tensors"])):
        assert (t.index, t.name, t.shape, t.dtype, t.is_variable, t.dynamic_dims) == \
            (i, w["name"], w["shape"], w["dtype"], w["is_variable"], w["dynamic"]), t.describe()
        assert all(type(d) is int for d in t.shape)
        if w["quant"] is None:
            assert t.quant is None, t.describe()
        else:
            assert t.quant.scale.dtype == np.float64 and t.quant.zero_point.dtype == np.int64
            np.testing.assert_array_equal(t.quant.scale, w["quant"][0])
            np.testing.assert_array_equal(t.quant.zero_point, w["quant"][1])
            assert t.quant.axis == w["quant"][2]
        if w["sparse"]:
            continue            # expanded by sparse_values: tests/test_densify.py
        if w["data"] is None:
            assert t.data is None, t.describe()
        else:
            assert t.data.dtype == w["dtype"] and t.data.shape == w["shape"]
            np.testing.assert_array_equal(t.data, w["data"])
            assert not t.data.flags.writeable       # a read-only view of the file (or an aligned copy of it)
    assert len(graph.ops) == len(want["ops"])
    for op, w in zip(graph.ops, want["ops"]):
        assert (op.type, op.version, op.inputs, op.outputs, op.intermediates) == \
            (w["type"], w["version"], w["inputs"], w["outputs"], w["intermediates"]), op.describe()
        if w["options"] is not None:
            assert sorted(op.options) == sorted(w["options"]), op.describe()
            for key, value in w["options"].items():
                assert same_value(op.options[key], value), (op.describe(), key, op.options[key], value)


def check_model(data: bytes):
    model = fb.Model.GetRootAs(data, 0)
    graph = from_tflite(data)
    for k, sub in graph.subgraphs.items():
        check_graph(sub, model, k)


@pytest.fixture(autouse=True)
def uint8_as_stored(monkeypatch):
    """The graph as read, before uint8 tensors are held as int8 (converters/tflite_uint8.py)."""
    monkeypatch.setattr(tflite_reader, "hold_uint8_as_int8", lambda graph, file_array=None: graph)


def test_repository_models(reference_models):
    paths = sorted((reference_models / "mlperf_tiny").glob("*.tflite"))
    assert paths
    for path in paths:
        check_model(path.read_bytes())


def test_shared_models():
    paths = sorted(SHARED_MODELS.rglob("*.tflite")) if SHARED_MODELS.is_dir() else []
    if not paths:
        pytest.skip(f"no .tflite models under {SHARED_MODELS}")
    for path in paths:
        check_model(path.read_bytes())


def test_cached_catalogue_models(request):
    """Every catalogue model (tests/*_models.py) converted so far in this session or an earlier one; a model the
    reader refuses (a type it does not run) is left out."""
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("edgeml_tflite_walker").parent if cache is not None else None
    paths = sorted(folder.glob("edgeml_*/*.tflite")) if folder is not None else []
    if not paths:
        pytest.skip("no converted catalogue model in the pytest cache yet")
    checked = 0
    for path in paths:
        data = path.read_bytes()
        try:
            from_tflite(data)
        except ModelFormatError:
            continue
        check_model(data)
        checked += 1
    assert checked


def test_constants_are_read_only_views_of_the_file(reference_models):
    data = (reference_models / "mlperf_tiny" / "kws_ref_model.tflite").read_bytes()
    graph = from_tflite(data)
    constants = [t for t in graph.tensors if t.data is not None]
    assert constants
    for t in constants:
        assert t.data.base is data and not t.data.flags.writeable and t.data.flags.c_contiguous


def test_walker_errors_say_what_is_wrong():
    with pytest.raises(FormatError, match="schema version 0"):
        ModelFile(b"\x08\0\0\0TFL3" + bytes(16), 0)
    with pytest.raises(ModelFormatError, match="file is 3 bytes"):
        from_tflite(b"abc")


def with_trailing_buffer(index: int, payload: bytes, misalign: int) -> bytes:
    """The base model with buffer `index` in the large-model layout: Buffer.offset / size naming `payload`,
    appended after the flatbuffer at a 16-byte boundary + misalign."""
    def build(offset: int) -> bytes:
        spec = base_spec()
        spec["buffers"][index] = b""
        original, seen = fb.BufferEnd, [0]

        def buffer_end(b):
            if seen[0] == index:
                fb.BufferAddOffset(b, offset)
                fb.BufferAddSize(b, len(payload))
            seen[0] += 1
            return original(b)
        fb.BufferEnd = buffer_end
        try:
            return build_model(spec)
        finally:
            fb.BufferEnd = original
    size = len(build(1 << 20))
    start = (size + 15) // 16 * 16 + misalign
    data = build(start)
    assert len(data) == size
    return data + bytes(start - size) + payload


@pytest.mark.parametrize("misalign", [0, 1, 2])
def test_buffer_after_the_flatbuffer(misalign):
    """Large-model layout: the bias read from after the flatbuffer, a view when aligned, else an aligned copy
    (read-only both), and the model runs as the inline one."""
    data = with_trailing_buffer(2, BIAS.tobytes(), misalign)
    bias = from_tflite(data).tensors[2].data
    np.testing.assert_array_equal(bias, BIAS)
    assert not bias.flags.writeable and bias.flags.aligned
    assert (bias.base is data) == (misalign == 0)
    x = np.array([[3, -7, 100, -128]], np.int8)
    np.testing.assert_array_equal(edgeml.Interpreter(data).run(x), edgeml.Interpreter(build_model(base_spec())).run(x))


@pytest.mark.parametrize("shape", [[2 ** 31 - 1, -5, 2 ** 31 - 1, 2 ** 31 - 1], [-1] * 8, [2 ** 31 - 1] * 6 + [-2]])
def test_negative_dimension_among_huge_ones(shape):
    spec = base_spec()
    spec["tensors"][0]["shape"] = shape
    with pytest.raises(ModelFormatError, match=r"tensor 0 'input': negative dimension"):
        from_tflite(build_model(spec))


def test_huge_shape_without_negative_dimension():
    spec = base_spec()
    spec["tensors"][3]["shape"] = [2 ** 31 - 1] * 8
    with pytest.raises(ModelFormatError, match=r"tensor 3 'output': shape .* is larger than 2147483648 bytes"):
        from_tflite(build_model(spec))


@pytest.mark.parametrize("type_code,dtype", [(4, np.int64), (12, np.uint64), (15, np.uint32), (16, np.uint16)])
def test_quantized_wide_integer_constant(type_code, dtype):
    """Zero points of 64-bit (and other unsigned) tensors are checked against the type's range within int64."""
    spec = base_spec()
    spec["tensors"][2]["type"] = type_code
    spec["buffers"][2] = np.abs(BIAS).astype(dtype).tobytes()
    bias = from_tflite(build_model(spec)).tensors[2]
    assert bias.dtype == dtype and bias.quant.zero_point.tolist() == [0]
    np.testing.assert_array_equal(bias.data, np.abs(BIAS).astype(dtype))
    spec["tensors"][2]["quant"]["zero_point"] = [-1]
    if np.iinfo(dtype).min == 0:
        with pytest.raises(ModelFormatError, match=r"tensor 2 'bias': zero point outside the range"):
            from_tflite(build_model(spec))
