"""TFLite Micro's int16 integration models (../shared/models/public/tflm_int16/<op>/: the SEANet models' ADD,
CONV_2D, LEAKY_RELU, PAD, QUANTIZE, STRIDED_SLICE, SUB and TRANSPOSE_CONV layers, 127 models) with their
input and golden output files: every output must equal the golden one exactly.  LiteRT's reference kernels run all
127 and give the same golden outputs (checked here too when ai_edge_litert is installed).

TRANSPOSE_CONV's output_shape is a graph input in these models (input0_int32.csv): edgeml plans the declared output
shape and the kernel checks the run-time value against it."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import edgeml
from converters import from_tflite

OPS = {"add": "ADD", "conv": "CONV_2D", "leaky_relu": "LEAKY_RELU", "pad": "PAD", "quantize": "QUANTIZE",
       "strided_slice": "STRIDED_SLICE", "sub": "SUB", "transpose_conv": "TRANSPOSE_CONV"}
CASES = [(folder, k) for folder, count in (("add", 17), ("conv", 22), ("leaky_relu", 23), ("pad", 19),
                                            ("quantize", 2), ("strided_slice", 34), ("sub", 5),
                                            ("transpose_conv", 5)) for k in range(count)]


def read_csv(path: Path) -> np.ndarray:
    """A file of comma-separated integers, typed by its name's suffix (_int16.csv, _int32.csv)."""
    dtype = re.search(r"_(int\d+)\.csv$", path.name).group(1)
    return np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=1).astype(dtype)


def case_files(root: Path, folder: str, k: int):
    stem = root / "tflm_int16" / folder / f"{folder}{k}"
    model = stem.with_suffix(".tflite")
    if not model.exists():
        pytest.skip(f"{model} is not in the public model corpus")
    inputs = sorted(stem.parent.glob(f"{stem.name}_input*_*.csv"), key=lambda p: p.name)
    (golden,) = stem.parent.glob(f"{stem.name}_golden_*.csv")
    return model.read_bytes(), [read_csv(p) for p in inputs], read_csv(golden)


@pytest.mark.parametrize("folder,k", CASES, ids=[f"{f}{k}" for f, k in CASES])
def test_tflm_int16_model_matches_golden_output(public_models, folder, k):
    model, inputs, golden = case_files(public_models, folder, k)
    graph = from_tflite(model)
    assert [op.type for op in graph.ops] == [OPS[folder]]
    assert np.dtype(np.int16) in {graph.tensors[t].dtype for t in graph.ops[0].inputs + graph.ops[0].outputs
                                  if t >= 0}
    ours = edgeml.Interpreter(model)
    details = ours.get_input_details()
    assert len(details) == len(inputs)
    for i, (x, d) in enumerate(zip(inputs, details)):
        ours.set_input(x.reshape(d["shape"]), i)
    ours.invoke()
    y = ours.get_output(0)
    assert y.dtype == golden.dtype
    np.testing.assert_array_equal(y.reshape(-1), golden)


@pytest.mark.parametrize("folder,k", CASES, ids=[f"{f}{k}" for f, k in CASES])
def test_litert_reference_agrees_with_tflm_golden_output(public_models, folder, k):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    model, inputs, golden = case_files(public_models, folder, k)
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    for x, d in zip(inputs, ref.get_input_details()):
        ref.set_tensor(d["index"], x.reshape(d["shape"]))
    ref.invoke()
    np.testing.assert_array_equal(ref.get_tensor(ref.get_output_details()[0]["index"]).reshape(-1), golden)


def test_transpose_conv_output_shape_given_at_run_time_must_match_the_plan(public_models):
    """The output_shape input of these models arrives at run time: a value other than the declared output shape
    is an InputError (the kernel writes zeros and never reads or writes out of bounds)."""
    model, inputs, _ = case_files(public_models, "transpose_conv", 0)
    ours = edgeml.Interpreter(model)
    shape = inputs[0].copy()
    shape[1] += 1
    ours.set_input(shape, 0)
    ours.set_input(inputs[1].reshape(ours.get_input_details()[1]["shape"]), 1)
    with pytest.raises(edgeml.InputError, match="output_shape input differs"):
        ours.invoke()
    ours.set_input(inputs[0], 0)
    ours.invoke()
