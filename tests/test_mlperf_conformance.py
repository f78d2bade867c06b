"""The seven MLPerf Tiny .tflite models against LiteRT's reference kernels on 100 seeded inputs each."""
import zlib

import numpy as np
import pytest

import edgeml

MODELS = ["ad01_int8", "kws_ref_model", "vww_96_int8", "pretrainedResnet_quant",
          "ad01_fp32", "kws_ref_model_float32", "vww_96_float"]
N_INPUTS = 100


def reference_interpreter(path):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    ref = litert.Interpreter(model_path=str(path),
                             experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    return ref


def seeded_inputs(detail, n, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(detail["shape"])
    for _ in range(n):
        if detail["dtype"] == np.int8:
            yield rng.integers(-128, 128, size=shape, dtype=np.int8)
        else:
            yield rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_mlperf_model_matches_litert_reference(shared_models, name):
    path = shared_models / "mlperf_tiny" / f"{name}.tflite"
    ours = edgeml.Interpreter(path)
    ref = reference_interpreter(path)
    detail, out = ref.get_input_details()[0], ref.get_output_details()[0]
    assert tuple(ours.get_input_details()[0]["shape"]) == tuple(detail["shape"])
    for x in seeded_inputs(detail, N_INPUTS, seed=zlib.crc32(name.encode())):
        ref.set_tensor(detail["index"], x)
        ref.invoke()
        expected = ref.get_tensor(out["index"])
        ours.set_input(x)
        ours.invoke()
        got = ours.get_output()
        assert got.dtype == expected.dtype and got.shape == expected.shape
        if expected.dtype == np.int8:
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
