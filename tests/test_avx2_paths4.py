"""The AVX2 bodies of issue 18's fourth round under forced ISA paths in subprocesses: the hybrid LSTM's rescale of
the integer sums onto the float gates (em_lstm_hybrid_scaled_add: 8 lanes, the scalar operations in their order)
against the scalar path on the converter's hybrid LSTMs (odd cell counts, stacked layers, batch 2, 28 steps).
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import lstm_hybrid_models as M
import model_cache
from test_kernel_paths import forced_path
from test_lstm_hybrid import inputs, reference

HYBRID_RUN = """
import sys, numpy as np
import edgeml
from cython_ops.conv import isa
print(isa())
data = dict(np.load(sys.argv[1]))
out = {}
for key in sorted(k for k in data if k.startswith("x_")):
    name = key[2:]
    ours = edgeml.Interpreter(sys.argv[2] + "/" + name)
    for k in range(data[key].shape[0]):
        ours.set_input(data[key][k])
        ours.invoke()
        out[f"{name}_{k}"] = ours.get_output()
np.savez(sys.argv[3], **out)
print("ok")
"""


@pytest.fixture(scope="module")
def hybrid_models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "lstm_hybrid_models", M)


def run_hybrid(forced: str, folder, out_name: str) -> dict:
    done = subprocess.run([sys.executable, "-c", HYBRID_RUN, str(folder / "x.npz"), str(folder),
                           str(folder / out_name)], env=dict(os.environ, EDGEML_ISA=forced), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == [forced, "ok"], done.stderr[-3000:]
    return dict(np.load(folder / out_name))


def test_hybrid_lstm_avx2_rescale_gives_the_scalar_bits(hybrid_models, tmp_path):
    """Cells 13 (one vector and a 5-lane tail), 16, 33 and 8 (stacked), 64 (28 steps), batch 2: the avx2 path's
    outputs after several stateful invokes equal the scalar path's bit for bit."""
    if forced_path("avx2") != "avx2":
        pytest.skip("this CPU has no avx2 path")
    xs = {}
    for name in ("odd13", "seq7", "stack16", "big28"):
        model = M.edit_lstm_options(hybrid_models.get(name, "dynamic"), asymmetric_inputs=name != "stack16")
        (tmp_path / name).write_bytes(model)
        xs[name] = np.stack(inputs(name, reference(model).get_input_details()[0]["shape"], 4, 11))
    np.savez(tmp_path / "x.npz", **{f"x_{k}": v for k, v in xs.items()})
    scalar, avx2 = run_hybrid("scalar", tmp_path, "scalar.npz"), run_hybrid("avx2", tmp_path, "avx2.npz")
    assert sorted(scalar) == sorted(avx2) and len(scalar) == 16
    for key in scalar:
        np.testing.assert_array_equal(avx2[key], scalar[key], err_msg=key)
