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
def test_mlperf_model_matches_litert_reference(reference_models, name):
    path = reference_models / "mlperf_tiny" / f"{name}.tflite"
    ours = edgeml.Interpreter(path, float_exact=True)    # the default fused mode: tests/test_float_modes.py
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


ISA_CHECK = r"""
import sys, zlib, numpy as np
import edgeml
from cython_ops.conv import isa
from ai_edge_litert.interpreter import Interpreter, OpResolverType
assert isa() == sys.argv[1], (isa(), sys.argv[1])
for path in sys.argv[2:]:
    ours = edgeml.Interpreter(path)
    ref = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    d, o = ref.get_input_details()[0], ref.get_output_details()[0]
    rng = np.random.default_rng(zlib.crc32(path.encode()))
    for _ in range(20):
        x = rng.integers(-128, 128, size=tuple(d["shape"]), dtype=np.int8)
        ref.set_tensor(d["index"], x); ref.invoke(); ours.set_input(x); ours.invoke()
        np.testing.assert_array_equal(ours.get_output(), ref.get_tensor(o["index"]))
print("ok")
"""


@pytest.mark.parametrize("forced", ["scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon"])
def test_every_isa_path_is_bit_exact(reference_models, forced):
    """EDGEML_ISA forces each code path the CPU supports; all must give LiteRT's exact int8 outputs."""
    import os
    import subprocess
    import sys
    from test_kernel_paths import forced_path
    if forced_path(forced) != forced:
        pytest.skip(f"this CPU has no {forced} path")
    pytest.importorskip("ai_edge_litert.interpreter")
    paths = [str(reference_models / "mlperf_tiny" / f"{m}.tflite") for m in MODELS[:4]]
    env = dict(os.environ, EDGEML_ISA=forced)
    done = subprocess.run([sys.executable, "-c", ISA_CHECK, forced] + paths, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
