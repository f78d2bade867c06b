"""An explicit PAD before a CONV_2D / DEPTHWISE_CONV_2D folds into the conv's padding (VALID and SAME convs,
symmetric and asymmetric pads, stride 1 and 2, dilation, depth multiplier) when it pads H / W by the zero point, has
no other reader and is no graph output; otherwise it stays.  Either way the outputs equal LiteRT's reference kernels
(int8 bit for bit, float32 within the float contract), and the folded int8 models give the same bytes on every
forced ISA path (tests/tflite_models_s5bc.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import edgeml
import model_cache
from edgeml.errors import ModelFormatError
from edgeml.ir import Graph, Op, Tensor
from edgeml.runtime.compile import compile_graph
import tflite_models_s5bc as M
from test_kernel_paths import forced_path
from test_tflite_ops import (N_INPUTS, assert_contains_intended_ops, check_against_reference, float_inputs,
                             input_shapes, int8_full_range_inputs, int8_representative_inputs, reference, run_ours,
                             run_reference)

PAD_OPS = ("PAD", "PADV2")


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "s5bc_pad_fold", M)


def int8_inputs(name: str, model: bytes) -> list:
    details = edgeml.Interpreter(model).get_input_details()
    shapes = [tuple(d["shape"]) for d in details]
    half = N_INPUTS // 2
    return (int8_full_range_inputs(shapes, half, zlib.crc32(name.encode()))
            + int8_representative_inputs(M.SPECS[name], details, N_INPUTS - half))


def pad_steps(model: bytes) -> int:
    return sum(s.op.type in PAD_OPS for s in edgeml.Interpreter(model).plan.steps)


@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_int8_is_bit_exact_with_litert_reference(models, name):
    model = models.get(name, "int8")
    assert_contains_intended_ops(model, M.SPECS[name], "int8")
    check_against_reference(model, int8_inputs(name, model), f"{name} int8")


@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_float_matches_litert_reference(models, name):
    """float_exact: the reference's bits; by default (FMA kernels) within the README's float bound."""
    spec = M.SPECS[name]
    model = models.get(name, "float")
    assert_contains_intended_ops(model, spec, "float")
    inputs = float_inputs(spec, input_shapes(model), N_INPUTS)
    check_against_reference(model, inputs, f"{name} float", float_exact=True)
    ours, ref = edgeml.Interpreter(model), reference(model)
    for xs in inputs:
        for got, want in zip(run_ours(ours, xs), run_reference(ref, xs)):
            bound = 1e-5 * np.abs(want) + 1e-6 * max(1.0, float(np.abs(want).max()))
            assert (np.abs(got - want) <= bound).all(), name


@pytest.mark.parametrize("kind", ["int8", "float"])
@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_a_zero_point_pad_with_one_conv_reader_folds_and_others_stay(models, name, kind):
    model = models.get(name, kind)
    assert any(op.type in PAD_OPS for op in edgeml.Interpreter(model).graph.ops)
    assert pad_steps(model) == (0 if kind in M.FOLDS[name] else 1), name


def test_the_folded_conv_takes_the_pads_and_its_same_padding(models):
    it = edgeml.Interpreter(models.get("pad_asym_conv2x4_same_stride2", "int8"))
    conv = next(s.op for s in it.plan.steps if s.op.type == "CONV_2D")
    # input 13 x 10 padded (1, 0) x (0, 3) to 14 x 13; SAME for a 2 x 4 kernel at stride 2 adds 0 / 0 rows and
    # 1 / 2 columns: explicit (top, left, bottom, right) = (1, 1, 0, 5)
    assert list(conv.options["explicit_padding"]) == [1, 1, 0, 5]
    assert conv.inputs[0] in it.graph.inputs


PATH_CHECK = r'''
import sys
import numpy as np
import edgeml
from edgeml.runtime.kernels import CONFIG
data = np.load(sys.argv[1])
failures = []
for name in sys.argv[2:]:
    it = edgeml.Interpreter(data[name + ".model"].tobytes())
    want = data[name + ".want"]
    for k, x in enumerate(data[name + ".x"]):
        got = it.run([x])[0]
        if not np.array_equal(got, want[k]):
            failures.append(f"{name} input {k}: {int((got != want[k]).sum())} values differ")
print(CONFIG.isa)
print("\n".join(failures) or "ok")
'''


@pytest.mark.parametrize("path", ["scalar", "avx2", "avx512"])
def test_folded_int8_models_give_the_same_bytes_on_every_isa_path(models, path):
    if forced_path(path) != path:
        pytest.skip(f"this CPU has no {path} path")
    names = [n for n in sorted(M.SPECS) if "int8" in M.FOLDS[n]]
    arrays = {}
    for name in names:
        model = models.get(name, "int8")
        xs = [inputs[0] for inputs in int8_inputs(name, model)[:6]]
        it = edgeml.Interpreter(model)
        arrays[name + ".model"] = np.frombuffer(model, np.uint8)
        arrays[name + ".x"] = np.stack(xs)
        arrays[name + ".want"] = np.stack([it.run([x])[0] for x in xs])
    with tempfile.TemporaryDirectory() as tmp:
        file = str(Path(tmp) / "cases.npz")
        np.savez(file, **arrays)
        done = subprocess.run([sys.executable, "-c", PATH_CHECK, file, *names], capture_output=True, text=True,
                              env=dict(os.environ, EDGEML_ISA=path), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == path and lines[-1] == "ok", "\n".join(lines[-20:])


def pad_conv_graph(stride: int):
    """float32 x [1, 6, 7, 2] -> PAD (H 1 / 0, W 0 / 2) -> SAME 3x3 CONV_2D with `stride` -> y, built in the IR."""
    f32 = np.dtype(np.float32)
    rng = np.random.default_rng(3)
    tensors = [Tensor(0, "x", (1, 6, 7, 2), f32),
               Tensor(1, "paddings", (4, 2), np.dtype(np.int32), None,
                      np.array([[0, 0], [1, 0], [0, 2], [0, 0]], np.int32)),
               Tensor(2, "padded", (1, 7, 9, 2), f32),
               Tensor(3, "w", (3, 3, 3, 2), f32, None, rng.standard_normal((3, 3, 3, 2)).astype(np.float32)),
               Tensor(4, "b", (3,), f32, None, np.zeros(3, np.float32)),
               Tensor(5, "y", (1, 4, 5, 3), f32)]
    conv = {"padding": 0, "stride_h": stride, "stride_w": stride, "dilation_h_factor": 1, "dilation_w_factor": 1,
            "fused_activation_function": 0}
    ops = [Op(0, "PAD", 1, [0, 1], [2], {}), Op(1, "CONV_2D", 1, [2, 3, 4], [5], conv)]
    return Graph(tensors, ops, [0], [5])


def test_a_conv_with_a_bad_stride_after_a_pad_is_refused():
    with pytest.raises(ModelFormatError, match="stride"):
        compile_graph(pad_conv_graph(0), {})


def test_a_folded_same_conv_equals_the_padded_one():
    plan = compile_graph(pad_conv_graph(2), {})
    assert [s.op.type for s in plan.steps] == ["CONV_2D"]
    x = np.random.default_rng(4).standard_normal((1, 6, 7, 2)).astype(np.float32)
    plan.view(0)[...] = x
    plan.engine.invoke()
    g = pad_conv_graph(2)
    w = g.tensors[3].data
    # SAME on the padded 7 x 9 at stride 2: output 4 x 5, pads 1 / 1 rows, 1 / 1 columns on top of the PAD's
    padded = np.pad(x, ((0, 0), (1 + 1, 0 + 1), (0 + 1, 2 + 1), (0, 0)))
    want = np.zeros((1, 4, 5, 3), np.float64)
    for i in range(4):
        for j in range(5):
            window = padded[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3, :].astype(np.float64)
            want[0, i, j] = np.einsum("hwc,ohwc->o", window, w.astype(np.float64))
    np.testing.assert_allclose(plan.view(5), want, rtol=1e-5, atol=1e-5)
