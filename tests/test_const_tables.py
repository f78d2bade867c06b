"""int8 ADD / SUB / MUL against a small constant operand as per-position 256-entry tables (lut_int8 for a scalar
constant, lut_periodic_int8 for one repeating along the output's trailing axes): bit-exact with LiteRT's
reference kernels on converter-made models, and the periodic kernel on every forced ISA path against NumPy.

The catalogue lives here (converted once, cached by tests/model_cache.py keyed by this file)."""
from __future__ import annotations

import sys
import zlib

import model_cache
import numpy as np
import pytest
import tflite_models as M
from litert_reference import reference_model, run_all, run_reference
from test_kernel_paths import PATHS, run_on_path

import edgeml
from converters import from_tflite

N_INPUTS = 20
BINARY = {"ADD", "SUB", "MUL"}
SPECS: dict = {}
TABLE_KERNEL = {}       # spec name -> the kernel its ADD / SUB / MUL must take (None: not the table path)


def _single(fn):
    return lambda keras, tf, xs: [fn(keras, tf, xs[0])]


def _spec(name, shape, fn, ops, kernel, fused=()):
    SPECS[name] = M.ModelSpec(name, [shape], _single(fn),
                              int8_ops=frozenset(ops), int8_fused=tuple(fused), kinds=("int8",))
    TABLE_KERNEL[name] = kernel


def _const(shape, seed, lo=-2.0, hi=2.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


_spec("sub_scalar_const", (5, 7, 4), lambda k, tf, x: x - tf.constant(_const((1,), 1)), {"SUB"}, "lut_int8")
_spec("add_c3_relu", (9, 7, 3), lambda k, tf, x: tf.nn.relu(x + tf.constant(_const((3,), 2))), {"ADD"},
      "lut_periodic_int8", [("ADD", "RELU")])
_spec("sub_c16_const_first", (5, 3, 16), lambda k, tf, x: tf.constant(_const((16,), 3)) - x, {"SUB"},
      "lut_periodic_int8")
_spec("mul_c40_relu6", (3, 5, 40), lambda k, tf, x: tf.nn.relu6(x * tf.constant(_const((40,), 4, 0.2, 3.0))),
      {"MUL"}, "lut_periodic_int8", [("MUL", "RELU6")])
_spec("mul_c3_const_first", (7, 5, 3), lambda k, tf, x: tf.constant(_const((3,), 5, -3.0, 3.0)) * x, {"MUL"},
      "lut_periodic_int8")
_spec("add_wc_7x3", (5, 7, 3), lambda k, tf, x: x + tf.constant(_const((7, 3), 6)), {"ADD"}, "lut_periodic_int8")
_spec("mul_wc_2x5", (3, 2, 5), lambda k, tf, x: x * tf.constant(_const((2, 5), 7, -1.5, 1.5)), {"MUL"},
      "lut_periodic_int8")
_spec("add_wc_9x8_too_large", (3, 9, 8), lambda k, tf, x: x + tf.constant(_const((9, 8), 8)), {"ADD"}, None)
_spec("keras_normalization_rgb", (9, 11, 3),
      lambda k, tf, x: k.layers.Normalization(mean=[0.5, -0.2, 0.1], variance=[0.25, 2.0, 0.7])(x), {"SUB", "MUL"},
      "lut_periodic_int8")
_spec("keras_normalization_scalar", (6, 5, 4),
      lambda k, tf, x: k.layers.Normalization(axis=None, mean=0.3, variance=1.7)(x), {"SUB", "MUL"}, "lut_int8")


def convert(spec, kind):
    return M.convert(spec, kind)


@pytest.fixture(scope="module")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "const_tables", sys.modules[__name__])


def int8_inputs(shape, seed):
    rng = np.random.default_rng(seed)
    return [[rng.integers(-128, 128, shape, dtype=np.int8)] for _ in range(N_INPUTS)]


@pytest.mark.parametrize("name", list(SPECS))
def test_constant_operand_ops_match_litert_reference(models, name):
    model = models.get(name, "int8")
    types = {op.type for op in from_tflite(model).ops}
    assert SPECS[name].int8_ops <= types, (name, sorted(types))
    ours = edgeml.Interpreter(model)
    kernels = {s.kernel for s in ours.plan.steps if s.op.type in BINARY}
    if TABLE_KERNEL[name] is None:
        assert not any(k.startswith("lut") for k in kernels), kernels
    else:
        assert kernels == {TABLE_KERNEL[name]}, kernels
    ref = reference_model(model)
    for j, xs in enumerate(int8_inputs((1, *SPECS[name].inputs[0]), zlib.crc32(name.encode()))):
        got, want = run_all(ours, xs), run_reference(ref, xs)
        assert all(np.array_equal(g, w) for g, w in zip(got, want)), f"{name}: input set {j} differs"


def test_batch_of_three_after_resize(models):
    model = models.get("add_c3_relu", "int8")
    shape = (3, *SPECS["add_c3_relu"].inputs[0])
    ours = edgeml.Interpreter(model)
    ours.resize_input(0, shape)
    assert {s.kernel for s in ours.plan.steps if s.op.type == "ADD"} == {"lut_periodic_int8"}
    ref = reference_model(model, [shape])
    for xs in int8_inputs(shape, 99)[:5]:
        assert np.array_equal(run_all(ours, xs)[0], run_reference(ref, xs)[0])


PERIODIC_CHECK = r'''
import numpy as np
from edgeml.runtime.kernels import Engine, kernel_address, CONFIG
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.plan import address

rng = np.random.default_rng(7)
layout = layout_of("lut_periodic_int8")
failures = []
for period in (1, 2, 3, 5, 7, 15, 16, 17, 32, 40, 48, 64):
    table = np.concatenate([rng.integers(-128, 128, period * 256, dtype=np.int8), np.zeros(3, np.int8)])
    for rows in (1, 2, 3, 21, 64, 65, 200):
        n = period * rows
        x = rng.integers(-128, 128, n, dtype=np.int8)
        y = np.full(n + 64, 77, np.int8)
        record = (kernel_address("lut_periodic_int8"),
                  layout.ptrs(input=address(x), output=address(y), table=address(table)),
                  layout.ints(n=n, period=period), [])
        Engine([record], keepalive=[x, y, table]).invoke()
        want = table[:-3].reshape(period, 256)[np.arange(n) % period, x.view(np.uint8)]
        if not np.array_equal(y[:n], want) or not (y[n:] == 77).all():
            failures.append(f"period {period} n {n}")
print("lut_periodic_int8", CONFIG.isa)
print("\n".join(failures) or "ok")
'''


@pytest.mark.parametrize("path", PATHS)
def test_periodic_lookup_on_every_isa_path(path):
    assert run_on_path(path, PERIODIC_CHECK)[0] == "lut_periodic_int8"
