"""The reader's load-time shortcuts give what the plain paths give: a model file read into the reader's own array
has its uint8 constants flipped to int8 there (no copy), which must equal the copying path taken for bytes a caller
hands in (the one tests/test_uint8.py checks against LiteRT), and must never touch bytes another tensor reads."""
from __future__ import annotations

import os

import numpy as np
import pytest
import uint8_models as U
from litert_reference import reference_model, run_reference

import edgeml
from converters import from_tflite
from converters import source
from converters.source import read_model_buffer
from cython_ops.tflite_hold import hold_as_int8
from edgeml.ir import Quantization, Tensor

KWS = "tests/models/mlperf_tiny/kws_ref_model.tflite"


@pytest.fixture(scope="module")
def uint8_kws(tmp_path_factory):
    """kws_ref_model rewritten as a TF1-style uint8 model (asymmetric uint8 weights), as bytes and as a file."""
    data = U.to_uint8(open(KWS, "rb").read())
    path = tmp_path_factory.mktemp("uint8") / "kws_uint8.tflite"
    path.write_bytes(data)
    return data, path


def test_file_read_holds_uint8_constants_as_the_bytes_read_does(uint8_kws):
    data, path = uint8_kws
    from_file, from_bytes = from_tflite(path), from_tflite(data)
    flipped = 0
    for a, b in zip(from_file.tensors, from_bytes.tensors):
        assert (a.name, a.dtype, a.shape) == (b.name, b.dtype, b.shape)
        assert (a.quant is None) == (b.quant is None)
        if a.quant is not None:
            assert np.array_equal(a.quant.scale, b.quant.scale)
            assert np.array_equal(a.quant.zero_point, b.quant.zero_point) and a.quant.axis == b.quant.axis
        if a.data is not None:
            assert a.data.dtype == b.data.dtype and np.array_equal(a.data, b.data), a.name
            assert not a.data.flags.writeable, a.name       # constants stay read-only either way
            flipped += a.dtype == np.int8 and a.data.size > 0
    assert flipped >= 5
    assert open(path, "rb").read() == data                  # the file itself is only read


def test_file_read_uint8_model_is_bit_exact_with_litert(uint8_kws):
    data, path = uint8_kws
    ours, ref = edgeml.Interpreter(path), reference_model(data)
    assert {op.type for op in from_tflite(path).ops} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "FLIP_SIGN_BIT"}
    rng = np.random.default_rng(7)
    shape = tuple(ours.get_input_details()[0]["shape"])
    for _ in range(20):
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        ours.set_input(x)
        ours.invoke()
        assert np.array_equal(ours.get_output(0), run_reference(ref, [x])[0])


def test_callers_bytes_are_never_written(uint8_kws):
    data, _ = uint8_kws
    before = bytes(data)
    for given in (data, bytearray(data), memoryview(data)):
        from_tflite(given)
        assert bytes(given) == before


def tensor(index, data, dtype=np.uint8, zero_point=(128,)):
    return Tensor(index=index, name=f"t{index}", shape=data.shape, dtype=np.dtype(dtype), data=data,
                  quant=Quantization(np.array([0.5] * len(zero_point)), np.array(zero_point, np.int64)))


def test_shared_bytes_are_copied_and_lone_ones_flipped_in_place():
    file_array = np.arange(64, dtype=np.uint8)
    view = memoryview(file_array).toreadonly()

    def at(start, n):
        return np.ndarray((n,), np.uint8, view, start)

    lone, shared_a, shared_b = tensor(0, at(0, 8)), tensor(1, at(8, 8)), tensor(2, at(8, 8))
    overlapped = tensor(3, at(20, 8))
    other = tensor(4, at(24, 8), np.int8)             # not held (another type), overlaps tensor 3's bytes
    outside = tensor(5, np.arange(5, dtype=np.uint8))
    reversed_view = tensor(6, at(40, 8)[::-1])        # a negative stride: its span is still bytes 40..47
    neighbour = tensor(7, at(47, 4))
    tensors = [lone, shared_a, shared_b, overlapped, other, outside, reversed_view, neighbour]
    hold_as_int8(tensors, {0, 1, 2, 3, 5, 6, 7}, Quantization, file_array, tensors)
    expected = np.arange(64, dtype=np.uint8)
    expected[:8] ^= 0x80                              # only the lone tensor's bytes change in the file
    assert np.array_equal(file_array, expected)
    assert np.shares_memory(lone.data, file_array) and not lone.data.flags.writeable
    for t, source in ((shared_a, range(8, 16)), (shared_b, range(8, 16)), (overlapped, range(20, 28)),
                      (outside, range(5)), (reversed_view, range(47, 39, -1)), (neighbour, range(47, 51))):
        assert not np.shares_memory(t.data, file_array), t.name
        assert np.array_equal(t.data, (np.array(source, np.uint8) ^ 0x80).view(np.int8)), t.name
    for t in tensors:
        if t is not other:
            assert t.dtype == np.int8 and t.data.dtype == np.int8 and list(t.quant.zero_point) == [0]
    assert other.dtype == np.int8 and np.array_equal(other.data, np.arange(24, 32, dtype=np.uint8).view(np.int8))


def test_without_a_file_array_every_constant_is_copied():
    data = np.arange(16, dtype=np.uint8)
    t = tensor(0, data, zero_point=(3, 200))
    hold_as_int8([t], {0}, Quantization)
    assert not np.shares_memory(t.data, data) and np.array_equal(t.data, (data ^ 0x80).view(np.int8))
    assert list(t.quant.zero_point) == [-125, 72] and t.quant.zero_point.dtype == np.int64


@pytest.mark.parametrize("readv", [True, False])     # False: the file object's readinto (no os.readv)
def test_read_model_buffer_reads_the_whole_file(tmp_path, monkeypatch, readv):
    if not readv:
        monkeypatch.setattr(source, "READV", None)
    for size in (0, 1, 4095, 70001):
        data = np.random.default_rng(size).integers(0, 256, size).astype(np.uint8).tobytes()
        path = tmp_path / f"m{size}.tflite"
        path.write_bytes(data)
        view, array = read_model_buffer(path)
        assert view.readonly and bytes(view) == data and array.flags.writeable and array.tobytes() == data
    assert read_model_buffer(data) == (data, None)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_read_model_buffer_reads_on_after_short_reads(tmp_path, monkeypatch, chunk):
    """A read that returns fewer bytes than asked before the size stat gave (a pipe-like file system) is followed
    by more reads; one that reaches that size ends the read."""
    data = np.random.default_rng(chunk).integers(0, 256, 20001).astype(np.uint8).tobytes()
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    calls = []

    def short_readv(fd, buffers):
        calls.append(len(buffers[0]))
        return os.readv(fd, [buffers[0][:chunk]])
    monkeypatch.setattr(source, "READV", short_readv)
    view, array = read_model_buffer(path)
    assert bytes(view) == data and array.tobytes() == data
    assert len(calls) == -(-len(data) // chunk)        # (no read after the last byte)


@pytest.mark.parametrize("readv", [True, False])
def test_a_file_that_grew_since_its_size_was_read_is_read_whole(tmp_path, monkeypatch, readv):
    if not readv:
        monkeypatch.setattr(source, "READV", None)
    data = bytes(range(256)) * 40
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    monkeypatch.setattr(source, "_regular_file_size", lambda p: len(data) - 100)      # (stat before it grew)
    view, array = read_model_buffer(path)
    assert bytes(view) == data and array is None


def test_a_model_read_from_its_file_runs_as_its_bytes_do():
    ours, theirs = edgeml.Interpreter(KWS), edgeml.Interpreter(open(KWS, "rb").read())
    x = np.random.default_rng(3).integers(-128, 128, tuple(ours.get_input_details()[0]["shape"]), dtype=np.int8)
    for it in (ours, theirs):
        it.set_input(x)
        it.invoke()
    assert np.array_equal(ours.get_output(0), theirs.get_output(0))


# ----- custom-op options: the direct flexbuffer map reader against the `flatbuffers` package's reader ----------

def options_by_the_package(data: bytes, schema: dict):
    """What the package's generic reader gives for `schema` (the reading FlexMap replaced), or the error type."""
    from flatbuffers import flexbuffers
    try:
        root = flexbuffers.GetRoot(data)
        if not root.IsMap:
            return "not a map"
        out = {}
        for key, (kind, default) in schema.items():
            try:
                ref = root.AsMap[key]
            except KeyError:
                ref = None
            if ref is None or ref.IsNull:
                if default is None:
                    return "missing"
                out[key] = default
            elif kind == "float":
                if not (ref.IsFloat or ref.IsInt):
                    return "type"
                out[key] = float(np.float32(ref.AsFloat if ref.IsFloat else ref.AsInt))
            elif kind == "bool":
                if not (ref.IsBool or ref.IsInt):
                    return "type"
                out[key] = bool(ref.AsBool)
            else:
                if not ref.IsInt:
                    return "type"
                if not -(1 << 31) <= ref.AsInt < (1 << 31):
                    return "range"
                out[key] = int(ref.AsInt)
        return out
    except Exception:
        return "malformed"


def options_by_flexmap(data: bytes, schema: dict):
    from converters.tflite_custom import _read_map
    try:
        return _read_map(data, schema, "op")
    except edgeml.ModelFormatError as exc:
        text = str(exc)
        for fragment, label in (("not a flexbuffer map", "not a map"), ("is missing", "missing"),
                                ("must be", "type"), ("does not fit", "range"), ("malformed", "malformed")):
            if fragment in text:
                return label
        raise


SCHEMA = {"i": ("int", None), "f": ("float", None), "b": ("bool", False), "d": ("int", 7), "g": ("float", 2.5)}


def flex_options(widths: int, **values):
    from flatbuffers import flexbuffers
    fbb = flexbuffers.Builder(force_min_bit_width=widths)
    with fbb.Map():
        for key in sorted(values):
            kind, value = values[key]
            if kind == "Null":
                fbb.Null(key)
            else:
                fbb.Key(key)
                getattr(fbb, kind)(value)
    return bytes(fbb.Finish())


@pytest.mark.parametrize("widths", [0, 1, 2, 3])       # flexbuffers.BitWidth: 8 to 64 bits
def test_flexmap_reads_what_the_package_reads(widths):
    cases = [
        dict(i=("Int", 5), f=("Float", 0.6000000238418579), b=("Bool", True)),
        dict(i=("UInt", 300), f=("Int", -20), b=("Int", 0), d=("IndirectInt", -3), g=("IndirectFloat", 1e-3)),
        dict(i=("IndirectUInt", 70000), f=("IndirectInt", 4), b=("UInt", 2), g=("Null", None)),
        dict(i=("Int", -(1 << 40)), f=("Float", 1.0), zz=("Int", 1), a=("String", "x")),       # out of range
        dict(i=("Float", 1.0), f=("Float", 2.0)),                                            # wrong type
        dict(i=("Int", 1), f=("String", "2")),
        dict(i=("Int", 1), f=("Float", 2.0), b=("Float", 1.0)),
        dict(f=("Float", 2.0)),                                                              # missing
        dict(i=("Null", None), f=("Float", 2.0)),
    ]
    for values in cases:
        data = flex_options(widths, **values)
        assert options_by_flexmap(data, SCHEMA) == options_by_the_package(data, SCHEMA), values



@pytest.mark.filterwarnings("ignore:overflow encountered")       # a corrupted float beyond float32: inf, as LiteRT
def test_flexmap_refuses_every_corruption_with_a_model_format_error():
    """Every truncation and single-byte change of a real options map: a ModelFormatError or a value the package's
    reader also gives -- never another exception."""
    from converters.tflite_custom import DETECTION_OPTIONS
    data = flex_options(0, max_detections=("Int", 10), max_classes_per_detection=("Int", 1),
                        nms_score_threshold=("Float", 0.1), nms_iou_threshold=("Float", 0.5),
                        num_classes=("Int", 3), y_scale=("Float", 10.0), x_scale=("Float", 10.0),
                        h_scale=("Float", 5.0), w_scale=("Float", 5.0), use_regular_nms=("Bool", False))
    assert options_by_flexmap(data, DETECTION_OPTIONS) == options_by_the_package(data, DETECTION_OPTIONS)
    variants = [data[:n] for n in range(len(data))]
    for k in range(len(data)):
        for value in (0, 1, 0x7F, 0xFF, data[k] ^ 0x10):
            variants.append(data[:k] + bytes([value]) + data[k + 1:])
    for v in variants:
        got = options_by_flexmap(v, DETECTION_OPTIONS)
        if isinstance(got, dict):
            assert got == options_by_the_package(v, DETECTION_OPTIONS)


# ----- a dropped interpreter frees its arena, weights and file bytes at once (no reference cycle) -----------------

@pytest.mark.parametrize("given", ["path", "bytes", "uint8"])
def test_dropped_interpreter_is_freed_without_the_cyclic_gc(given, uint8_kws):
    """Reference cycles would leave the arena, the packed weights and the file's bytes to the cyclic GC, whose
    collection then runs inside some later load; every fast path (set_input, run) is used first."""
    import gc
    import weakref
    model = {"path": KWS, "bytes": open(KWS, "rb").read(), "uint8": uint8_kws[1]}[given]
    enabled = gc.isenabled()
    gc.disable()
    try:
        it = edgeml.Interpreter(model)
        d = it.get_input_details()[0]
        x = np.zeros(tuple(d["shape"]), d["dtype"])
        it.set_input(x)
        it.invoke()
        it.run(x)
        it.clone().run(x)
        refs = [weakref.ref(o) for o in (it, it._plan, it._graph, it._graph.tensors[0], it._plan.arena_owner)]
        del it
        assert [r() is None for r in refs] == [True] * len(refs)
    finally:
        if enabled:
            gc.enable()


def test_own_quantizations_are_shifted_where_they_are():
    data = np.arange(16, dtype=np.uint8)
    mine, frozen = tensor(0, data, zero_point=(3, 200)), tensor(1, data.copy(), zero_point=(128,))
    frozen.quant.zero_point.flags.writeable = False     # not writable: moved into a new array, as before
    q_mine, zp_mine, q_frozen = mine.quant, mine.quant.zero_point, frozen.quant
    hold_as_int8([mine, frozen], {0, 1}, Quantization, own_quantizations=True)
    assert mine.quant is q_mine and mine.quant.zero_point is zp_mine and list(zp_mine) == [-125, 72]
    assert frozen.quant is not q_frozen and list(frozen.quant.zero_point) == [0] and list(q_frozen.zero_point) == [128]
    assert mine.dtype == frozen.dtype == np.int8


def test_uint8_boundary_twins_keep_the_files_zero_points(uint8_kws):
    data, _ = uint8_kws
    graph = from_tflite(data)
    for outer in graph.inputs + graph.outputs:
        twin = graph.tensors[outer]
        inner = next(t for t in graph.tensors if t.name == twin.name + "/int8")
        assert twin.dtype == np.uint8 and inner.dtype == np.int8
        assert twin.quant is not inner.quant and not np.shares_memory(twin.quant.zero_point, inner.quant.zero_point)
        assert list(twin.quant.zero_point - 128) == list(inner.quant.zero_point)
