"""The public Interpreter API: imports, input validation, resizing, float convenience, details, arena reuse,
persistence of inputs, and the errors for unsupported ops and formats."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import edgeml
from edgeml import EdgeMLError, InputError, UnsupportedOpError

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "models" / "mlperf_tiny"
ONNX_MODELS = ROOT / "tests" / "models" / "mlperf_tiny_onnx"
INT8_MODELS = ["ad01_int8", "kws_ref_model", "vww_96_int8", "pretrainedResnet_quant"]
FLOAT_MODELS = ["ad01_fp32", "vww_96_float"]
ALL_MODELS = INT8_MODELS + FLOAT_MODELS



def model_path(name: str) -> Path:
    return MODELS / f"{name}.tflite"


def random_input(detail: dict, rng, shape=None) -> np.ndarray:
    shape = tuple(int(s) for s in (detail["shape"] if shape is None else shape))
    if detail["dtype"] == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    return rng.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# Import hygiene
# ----------------------------------------------------------------------------------------------------

HEAVY = ("tensorflow", "tf_keras", "keras", "onnxruntime")


def test_runtime_import_is_tensorflow_free():
    """`import edgeml.runtime` (and loading + running a model) pulls in none of the heavy frameworks."""
    model = model_path("kws_ref_model")
    code = textwrap.dedent(f"""
        import sys
        import edgeml.runtime
        heavy = {HEAVY!r}
        def loaded():
            return sorted(m for m in sys.modules if m.split('.')[0] in heavy)
        print('after import:', loaded())
        assert not loaded(), loaded()
        import os
        if os.path.exists({str(model)!r}):
            import numpy as np
            it = edgeml.runtime.Interpreter({str(model)!r})
            it.run(np.zeros(it.get_input_details()[0]['shape'], np.int8))
            print('after run:', loaded())
            assert not loaded(), loaded()
        from converters import from_tflite
        assert not loaded(), loaded()
        print('OK')
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


# ----------------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kws():
    return edgeml.Interpreter(model_path("kws_ref_model"))


def test_input_error_is_value_error():
    assert issubclass(InputError, EdgeMLError) and issubclass(InputError, ValueError)


def test_wrong_dtype_names_expected_and_got(kws):
    x = np.zeros((1, 49, 10, 1), np.float32)
    with pytest.raises(InputError, match=r"expected dtype int8, got float32"):
        kws.set_input(x)
    with pytest.raises(InputError, match=r"expected dtype int8, got uint8"):
        kws.set_input(x.astype(np.uint8))
    with pytest.raises(InputError, match=r"expected dtype int8.*got int32"):
        kws.run(x.astype(np.int32))


def test_wrong_shape_names_expected_and_got(kws):
    with pytest.raises(InputError, match=r"expected shape \[1, 49, 10, 1\], got \[1, 49, 10\]"):
        kws.set_input(np.zeros((1, 49, 10), np.int8))
    with pytest.raises(InputError, match=r"expected shape \[1, 49, 10, 1\], got \[2, 49, 10, 1\]"):
        kws.set_input(np.zeros((2, 49, 10, 1), np.int8))
    with pytest.raises(InputError, match=r"expected shape \[1, 49, 10, 1\].*got \[1, 10, 49, 1\]"):
        kws.run(np.zeros((1, 10, 49, 1), np.int8))


def test_wrong_index(kws):
    x = np.zeros((1, 49, 10, 1), np.int8)
    for bad in (1, -1, 7):
        with pytest.raises(InputError, match=rf"input index {bad} out of range.*1 input"):
            kws.set_input(x, bad)
    with pytest.raises(InputError, match=r"input index '0' out of range"):
        kws.set_input(x, "0")
    with pytest.raises(InputError, match=r"output index 3 out of range.*1 output"):
        kws.get_output(3)
    with pytest.raises(InputError, match=r"input index 2 out of range"):
        kws.resize_input(2, (1, 49, 10, 1))


def test_other_input_errors(kws):
    with pytest.raises(InputError, match=r"expected a numpy array, got list"):
        kws.set_input([[0] * 10] * 49)
    with pytest.raises(InputError, match=r"expected 1 input array\(s\), got 2"):
        kws.run([np.zeros((1, 49, 10, 1), np.int8)] * 2)
    with pytest.raises(InputError, match=r"missing input"):
        kws.run({"not_the_name": np.zeros((1, 49, 10, 1), np.int8)})
    with pytest.raises(InputError, match=r"cannot resize \[1, 49, 10, 1\] to \[1, 49, 10\]"):
        kws.resize_input(0, (1, 49, 10))
    with pytest.raises(InputError, match=r"cannot resize .* to \[0, 49, 10, 1\]"):
        kws.resize_input(0, (0, 49, 10, 1))
    # the interpreter is still usable after all that
    assert kws.run(np.zeros((1, 49, 10, 1), np.int8)).shape == (1, 12)


def test_resize_to_impossible_shape_keeps_old_plan():
    it = edgeml.Interpreter(model_path("kws_ref_model"))
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
    want = it.run(x)
    # three input channels against single-channel conv weights: 3 groups do not divide its 64 output channels;
    # as in LiteRT, resizing is planned on the next use, so several inputs can be resized first
    it.resize_input(0, (1, 49, 10, 3))
    with pytest.raises(InputError, match=r"cannot run with input shapes \{'input_1': \[1, 49, 10, 3\]\}.*op 0"):
        it.invoke()
    assert tuple(it.get_input_details()[0]["shape"]) == (1, 49, 10, 1)
    np.testing.assert_array_equal(it.run(x), want)


def test_bad_rounding_mode():
    with pytest.raises(EdgeMLError, match="rounding"):
        edgeml.Interpreter(b"", rounding="banker")


# ----------------------------------------------------------------------------------------------------
# Batching
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_MODELS)
def test_resize_to_batch_4_matches_single_runs(name):
    single = edgeml.Interpreter(model_path(name))
    batched = edgeml.Interpreter(model_path(name))
    d = single.get_input_details()[0]
    shape1 = tuple(int(s) for s in d["shape"])
    batched.resize_input(0, (4,) + shape1[1:])
    assert tuple(batched.get_input_details()[0]["shape"]) == (4,) + shape1[1:]
    out_shape1 = tuple(int(s) for s in single.get_output_details()[0]["shape"])
    assert tuple(batched.get_output_details()[0]["shape"]) == (4,) + out_shape1[1:]
    x = random_input(d, np.random.default_rng(4), (4,) + shape1[1:])
    batched.set_input(x)
    batched.invoke()
    y = batched.get_output()
    assert y.shape == (4,) + out_shape1[1:]
    for b in range(4):
        single.set_input(x[b:b + 1])
        single.invoke()
        np.testing.assert_array_equal(y[b:b + 1], single.get_output(), err_msg=f"{name} batch row {b}")


def test_run_with_batch_replans_and_back():
    it = edgeml.Interpreter(model_path("ad01_int8"))
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(3, 640), dtype=np.int8)
    y3 = it.run(x)
    assert y3.shape == (3, 640)
    y1 = it.run(x[1:2])
    assert y1.shape == (1, 640)
    np.testing.assert_array_equal(y1, y3[1:2])


def test_run_fast_path_takes_any_layout_and_its_own_output():
    """run()'s one-call copy + invoke: non-contiguous inputs and an input that is a view of this interpreter's own
    arena give the same outputs as a contiguous copy."""
    it = edgeml.Interpreter(model_path("ad01_int8"))
    rng = np.random.default_rng(6)
    wide = rng.integers(-128, 128, size=(1, 1280), dtype=np.int8)
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    expected = it.run(np.ascontiguousarray(strided))
    np.testing.assert_array_equal(it.run(strided), expected)
    it.run(expected)
    second = it.get_output()
    np.testing.assert_array_equal(it.run(it.get_output(copy=False)), it.run(second))   # the arena's own output in


def test_set_input_and_run_fast_paths_keep_the_interpreter_state():
    """set_input()'s and run()'s one-call paths (cython_ops.callpath.CallPath) mark the input set and the
    plan run exactly as the checked paths do, refuse what they do not take by falling back to the checks, and are
    re-made for a re-planned (resized) or cloned interpreter."""
    rng = np.random.default_rng(7)
    x1 = rng.integers(-128, 128, size=(1, 640), dtype=np.int8)
    x3 = np.concatenate([x1, rng.integers(-128, 128, size=(2, 640), dtype=np.int8)])
    it = edgeml.Interpreter(model_path("ad01_int8"))
    with pytest.raises(InputError, match="read before invoke"):
        it.get_output()
    with pytest.raises(InputError, match="has not been set"):
        it.invoke()
    with pytest.raises(InputError, match="expected dtype int8, got float64"):
        it.set_input(x1.astype(np.float64))
    with pytest.raises(InputError, match=r"expected shape \[1, 640\], got \[3, 640\]"):
        it.set_input(x3)
    with pytest.raises(InputError, match="has not been set"):       # a refused input is not marked set
        it.invoke()
    it.set_input(x1)
    it.invoke()
    want = it.get_output()
    np.testing.assert_array_equal(edgeml.Interpreter(model_path("ad01_int8")).run(x1), want)
    fresh = edgeml.Interpreter(model_path("ad01_int8"))
    np.testing.assert_array_equal(fresh.run(x1), want)             # run() first: then get_output() reads it
    np.testing.assert_array_equal(fresh.get_output(), want)
    fresh.invoke()                                                  # and the input counts as set
    np.testing.assert_array_equal(fresh.get_output(), want)
    strided = np.repeat(x1, 2, axis=1)[:, ::2]                      # not contiguous: the checked copy
    fresh.set_input(strided)
    fresh.invoke()
    np.testing.assert_array_equal(fresh.get_output(), want)
    it.resize_input(0, (3, 640))
    with pytest.raises(InputError, match=r"expected shape \[3, 640\], got \[1, 640\]"):
        it.set_input(x1)                                            # the old plan's call path is unbound
    with pytest.raises(InputError, match="has not been set"):      # re-planned: inputs must be set again
        it.invoke()
    it.set_input(x3)
    it.invoke()
    y3 = it.get_output()
    np.testing.assert_array_equal(y3[:1], want)
    np.testing.assert_array_equal(it.run(x3), y3)
    twin = it.clone()
    with pytest.raises(InputError, match="has not been set"):
        twin.invoke()
    twin.set_input(x3[::-1].copy())
    twin.invoke()
    np.testing.assert_array_equal(twin.get_output(), y3[::-1])
    np.testing.assert_array_equal(it.get_output(), y3)             # the clone's arena is its own


# ----------------------------------------------------------------------------------------------------
# Float convenience on int8 models
# ----------------------------------------------------------------------------------------------------

def quantize(x, scale, zp):
    v = np.asarray(x, np.float64) / float(np.float32(scale))
    r = np.sign(v) * np.floor(np.abs(v) + 0.5) + zp
    return np.clip(r, -128, 127).astype(np.int8)


def dequantize(q, scale, zp):
    return (float(np.float32(scale)) * (q.astype(np.float64) - zp)).astype(np.float32)


@pytest.mark.parametrize("name", INT8_MODELS)
def test_run_float_on_int8_model(name):
    it = edgeml.Interpreter(model_path(name))
    din, dout = it.get_input_details()[0], it.get_output_details()[0]
    rng = np.random.default_rng(6)
    s_in, zp_in = din["scale"], din["zero_point"]
    # floats spanning (and exceeding) the input's representable range
    lo, hi = s_in * (-128 - zp_in), s_in * (127 - zp_in)
    x = rng.uniform(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), size=tuple(din["shape"]))
    for dtype in (np.float32, np.float64):
        y = it.run(x.astype(dtype))
        assert y.dtype == np.float32 and y.shape == tuple(dout["shape"])
        q = it.run(quantize(x.astype(dtype), s_in, zp_in))
        assert q.dtype == np.int8
        np.testing.assert_array_equal(y, dequantize(q, dout["scale"], dout["zero_point"]))


# ----------------------------------------------------------------------------------------------------
# Details
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_MODELS)
def test_details_fields(name):
    it = edgeml.Interpreter(model_path(name))
    for kind in ("input", "output"):
        details = getattr(it, f"get_{kind}_details")()
        assert len(details) == 1
        d = details[0]
        for key in ("name", "index", "shape", "dtype", "scale", "zero_point", "quantization_parameters"):
            assert key in d, f"{kind} details lack {key!r}"
        assert d["index"] == 0
        assert isinstance(d["name"], str) and d["name"]
        assert isinstance(d["shape"], np.ndarray) and d["shape"].dtype == np.int32
        assert d["dtype"] in (np.int8, np.float32)
        qp = d["quantization_parameters"]
        assert set(qp) >= {"scales", "zero_points", "quantized_dimension"}
        if d["dtype"] == np.int8:
            assert d["scale"] > 0 and -128 <= d["zero_point"] <= 127
            assert qp["scales"].tolist() == [np.float32(d["scale"])]
            assert qp["zero_points"].tolist() == [d["zero_point"]]
        else:
            assert d["scale"] == 0.0 and d["zero_point"] == 0


@pytest.mark.parametrize("name", ALL_MODELS)
def test_details_match_litert(name):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    ref = litert.Interpreter(model_path=str(model_path(name)))
    it = edgeml.Interpreter(model_path(name))
    for mine, theirs in ((it.get_input_details(), ref.get_input_details()),
                         (it.get_output_details(), ref.get_output_details())):
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs):
            assert a["name"] == b["name"]
            np.testing.assert_array_equal(a["shape"], b["shape"])
            assert np.dtype(a["dtype"]) == np.dtype(b["dtype"])
            assert np.float32(a["scale"]) == np.float32(b["quantization"][0])
            assert a["zero_point"] == b["quantization"][1]
            np.testing.assert_array_equal(a["quantization_parameters"]["scales"],
                                          b["quantization_parameters"]["scales"])
            np.testing.assert_array_equal(a["quantization_parameters"]["zero_points"],
                                          b["quantization_parameters"]["zero_points"])


# ----------------------------------------------------------------------------------------------------
# Arena
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_MODELS)
def test_arena_reuses_memory(name):
    it = edgeml.Interpreter(model_path(name))
    activations = [t for t in it.graph.tensors if t.data is None]
    sizes = [int(np.prod(it.plan.shapes.get(t.index, t.shape), dtype=np.int64)) * t.dtype.itemsize
             for t in activations]
    # kernels' scratch areas (e.g. the AVX2 FC's int16 row copies) share the arena too
    scratch = sum(size for _, size in it.plan.scratch.values())
    assert it.arena_bytes < sum(sizes) + scratch, (it.arena_bytes, sum(sizes), scratch)
    assert it.arena_bytes > max(sizes), (it.arena_bytes, max(sizes))


def test_arena_grows_with_batch():
    it = edgeml.Interpreter(model_path("kws_ref_model"))
    one = it.arena_bytes
    it.resize_input(0, (4, 49, 10, 1))
    # activations scale with the batch; the kernels' per-image scratch (padded copies) does not
    assert it.arena_bytes >= 2 * one


# ----------------------------------------------------------------------------------------------------
# Persistence
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_MODELS)
def test_invoke_twice_same_output(name):
    it = edgeml.Interpreter(model_path(name))
    rng = np.random.default_rng(7)
    d = it.get_input_details()[0]
    x = random_input(d, rng)
    it.set_input(x)
    it.invoke()
    first = it.get_output()
    it.invoke()                          # the input persists across invokes
    np.testing.assert_array_equal(it.get_output(), first)
    it.set_input(random_input(d, rng))
    it.invoke()
    it.set_input(x)
    it.invoke()
    np.testing.assert_array_equal(it.get_output(), first)


def test_get_output_is_a_copy():
    it = edgeml.Interpreter(model_path("kws_ref_model"))
    y = it.run(np.ones((1, 49, 10, 1), np.int8))
    y[...] = 0
    it.invoke()
    assert not np.array_equal(it.get_output(), y)


def test_set_input_copies():
    it = edgeml.Interpreter(model_path("ad01_int8"))
    x = np.random.default_rng(8).integers(-128, 128, size=(1, 640), dtype=np.int8)
    it.set_input(x)
    x_copy = x.copy()
    x[...] = 0                           # mutating the caller's array after set_input changes nothing
    it.invoke()
    want = it.run(x_copy)
    it.set_input(x_copy)
    it.invoke()
    np.testing.assert_array_equal(it.get_output(), want)


# ----------------------------------------------------------------------------------------------------
# Unsupported ops and formats
# ----------------------------------------------------------------------------------------------------

def _convert(fn, spec) -> bytes:
    tf = pytest.importorskip("tensorflow")
    concrete = tf.function(fn, input_signature=[tf.TensorSpec(spec, tf.float32)]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    return converter.convert()


@pytest.fixture(scope="module")
def unsupported_models():
    tf = pytest.importorskip("tensorflow")
    return {
        "CUMSUM": _convert(lambda x: tf.math.cumsum(x, axis=1), [1, 8]),
        "COS": _convert(lambda x: tf.math.cos(x) + 1.0, [1, 8]),
        "SIN": _convert(lambda x: tf.math.sin(x), [1, 8]),
    }


@pytest.mark.parametrize("op", ["CUMSUM", "COS", "SIN"])
def test_unsupported_op_names_the_op(unsupported_models, op):
    data = unsupported_models[op]
    with pytest.raises(UnsupportedOpError, match=rf"op \d+ \({op}.*{op} is not supported"):
        edgeml.Interpreter(data)


def test_supported_float_model_from_tf_runs():
    """Control for the above: a model the converter makes of supported ops loads and matches LiteRT."""
    tf = pytest.importorskip("tensorflow")
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    w = np.random.default_rng(9).standard_normal((8, 4)).astype(np.float32)
    data = _convert(lambda x: tf.nn.relu(tf.matmul(x, w)), [1, 8])
    ref = litert.Interpreter(model_content=data)
    ref.allocate_tensors()
    x = np.random.default_rng(10).standard_normal((1, 8)).astype(np.float32)
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    np.testing.assert_allclose(edgeml.Interpreter(data).run(x), ref.get_tensor(ref.get_output_details()[0]["index"]),
                               rtol=1e-5, atol=1e-6)


def test_onnx_path_loads_and_a_broken_onnx_file_is_a_model_format_error(tmp_path):
    """A .onnx path goes to the ONNX reader: a real model runs, a truncated protobuf is a ModelFormatError."""
    real = ONNX_MODELS / "kws_ref_model.onnx"
    for p in (real, str(real)):
        it = edgeml.Interpreter(p)
        assert it.graph.source == "onnx"
        assert it.run(np.zeros((1, 49, 10, 1), np.int8)).shape == (1, 12)
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"\x08\x07\x12\xff\xff\xff\x0ftf2onnx")
    with pytest.raises(edgeml.ModelFormatError, match="not a valid ONNX protobuf"):
        edgeml.Interpreter(broken)


def test_onnx_bytes_are_read_as_onnx():
    """Bytes of an ONNX model (no 'TFL3' identifier, a protobuf tag first) load as ONNX, as a path would."""
    real = ONNX_MODELS / "kws_ref_model.onnx"
    x = np.random.default_rng(3).integers(-128, 128, (1, 49, 10, 1)).astype(np.int8)
    np.testing.assert_array_equal(edgeml.Interpreter(real.read_bytes()).run(x), edgeml.Interpreter(real).run(x))
    with pytest.raises(edgeml.ModelFormatError, match="TFL3"):
        edgeml.Interpreter(b"\x00\x01garbage that is neither format")
