"""compile.prepare_steps' loop in C (cython_ops/load_loop.pyx, run by build_plan through compile.all_steps) makes
the steps its Python twin makes (the plan-hash fixture of test_load_fast_paths.py swaps it too) and refuses what
the twin refuses, with the same error type and message and in the same order: an op the table lacks, a newer
version, a data input of a scheme the op does not run, an output type the op does not make, an output its prepare
does not produce, an input nothing provides, a graph output never produced or constant."""
from __future__ import annotations

import re

import numpy as np
import pytest

from converters.tflite import from_tflite
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Tensor
from edgeml.runtime import coverage
from edgeml.runtime.compile import all_steps, new_context, prepare_steps
from edgeml.runtime.load_profile import collect

MLPERF = ["kws_ref_model.tflite", "ad01_int8.tflite", "pretrainedResnet_quant.tflite", "vww_96_int8.tflite",
          "kws_ref_model_float32.tflite"]
PUBLIC = ["mobilenet_v1_0.25_96_int8.tflite", "mobilenet_v1_0.5_160_quant.tflite", "split_concat.tflite",
          "ssd_mobilenet_v1_025_224_int8.tflite"]


def context(graph):
    return new_context(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs}, 0, 1, 1 << 31, 1 << 31)


def step_summary(steps) -> list:
    """What a step list amounts to: per step its op, kernel, scratch, MACs, alias and the make() integers and
    floats (addresses all 0)."""
    out = []
    for step in steps:
        ptrs, ints, floats, *_ = step.make(lambda t: 0)
        out.append((step.op.index, step.op.type, step.kernel, step.scratch_bytes, step.macs, step.alias,
                    sorted(ints.items(), key=repr), sorted(floats.items(), key=repr), sorted(ptrs)))
    return out


def both_loops(path_or_graph_maker):
    """(C loop's result, Python loop's result), each an ("ok", steps summary) or ("error", type, message)."""
    results = []
    for loop in (all_steps, prepare_steps):
        ctx = context(path_or_graph_maker())
        try:
            results.append(("ok", step_summary(loop(ctx)), sorted(ctx.shapes.items())))
        except (ModelFormatError, UnsupportedOpError) as exc:
            results.append(("error", type(exc), str(exc)))
    return results


def model_path(name, reference_models, public_models):
    if name in PUBLIC:
        path = public_models / "tflite" / name
        if not path.exists():
            pytest.skip(f"{name} is not in the public corpus")
        return path
    return reference_models / "mlperf_tiny" / name


@pytest.mark.parametrize("name", MLPERF + PUBLIC)
def test_the_c_loop_makes_the_python_loops_steps(name, request):
    path = model_path(name, request.getfixturevalue("reference_models"),
                      request.getfixturevalue("public_models") if name in PUBLIC else None)
    fast, plain = both_loops(lambda: from_tflite(path))
    assert fast[0] == "ok" and plain[0] == "ok"
    assert fast == plain


def kws(reference_models, change):
    def make():
        graph = from_tflite(reference_models / "mlperf_tiny" / "kws_ref_model.tflite")
        change(graph)
        return graph
    return make


def new_tensor(graph, dtype=np.int8, data=None) -> int:
    index = len(graph.tensors)
    graph.tensors.append(Tensor(index=index, name=f"extra_{index}", shape=(1, 4), dtype=np.dtype(dtype), data=data))
    return index


def unknown_type(g):
    g.ops[2].type = "NOT_AN_OP"


def newer_version(g):
    g.ops[1].version = 99


def float64_data_input(g):
    g.tensors[g.ops[0].inputs[0]].dtype = np.dtype(np.float64)


def float64_output(g):
    g.tensors[g.ops[3].outputs[0]].dtype = np.dtype(np.float64)


def extra_output(g):
    g.ops[4].outputs.append(new_tensor(g))


def unread_extra_input(g):
    g.ops[-1].inputs.append(new_tensor(g))         # (SOFTMAX reads its first input only)


def output_never_produced(g):
    g.outputs.append(new_tensor(g))


def constant_output(g):
    g.outputs.append(new_tensor(g, data=np.zeros((1, 4), np.int8)))


def then_unknown(g):        # two faults: the earlier op's is reported, as the Python loop reports it
    g.ops[5].version = 99
    g.ops[2].type = "NOT_AN_OP"


REFUSALS = {
    "unknown_type": (unknown_type, UnsupportedOpError, r"^op 2 \(NOT_AN_OP v\d+\): op NOT_AN_OP is not supported; "
                                                       "supported ops: "),
    "newer_version": (newer_version, UnsupportedOpError, r"^op 1 \(DEPTHWISE_CONV_2D v99\): version 99 of "
                                                         r"DEPTHWISE_CONV_2D is not supported \(up to \d+\)$"),
    "float64_data_input": (float64_data_input, UnsupportedOpError, r"^op 0 \(CONV_2D v\d\): input tensor \d+ '.*' "
                                                                   "has type float64; CONV_2D runs on "),
    "float64_output": (float64_output, UnsupportedOpError, r"^op 3 \(.*\): output tensor \d+ '.*' has type float64 "
                                                         r"\(.* are supported\)$"),
    "extra_output": (extra_output, ModelFormatError, r"^op 4 \(.*\) lists output tensor \d+ 'extra_\d+', which it "
                                                     r"does not produce \(.* has fewer outputs\)$"),
    "unread_extra_input": (unread_extra_input, ModelFormatError, r"^op 12 \(SOFTMAX v\d\) reads tensor \d+ "
                                                                 r"'extra_\d+', which is neither a constant, a graph "
                                                                 "input nor produced by an earlier op$"),
    "output_never_produced": (output_never_produced, ModelFormatError, r"^graph output tensor \d+ 'extra_\d+' is "
                                                                       "never produced$"),
    "constant_output": (constant_output, UnsupportedOpError, r"^graph output tensor \d+ 'extra_\d+' is a constant$"),
    "first_fault_first": (then_unknown, UnsupportedOpError, r"^op 2 \(NOT_AN_OP v\d+\)"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_the_c_loop_refuses_as_the_python_loop(case, reference_models):
    change, error, message = REFUSALS[case]
    fast, plain = both_loops(kws(reference_models, change))
    assert fast == plain
    assert fast[0] == "error" and fast[1] is error, fast
    assert re.search(message, fast[2]), fast[2]


def test_the_scheme_check_runs_past_the_common_answer(reference_models, monkeypatch):
    """A type the op's ACCEPTED entry lacks goes on to check_scheme (here: its uint8 answer, accepted), and an op
    type not yet in ACCEPTED gets its entry from check_scheme as in the Python loop."""
    monkeypatch.setattr(coverage, "ACCEPTED", {})
    from edgeml.runtime import compile as compile_module
    monkeypatch.setattr(compile_module, "ACCEPTED", coverage.ACCEPTED)
    path = reference_models / "mlperf_tiny" / "kws_ref_model.tflite"
    graph = from_tflite(path)
    all_steps(context(graph))
    assert set(coverage.ACCEPTED) == {op.type for op in graph.ops}
    calls = []
    real = compile_module.check_scheme
    monkeypatch.setattr(compile_module, "check_scheme", lambda g, op: calls.append(op.type) or real(g, op))
    coverage.ACCEPTED["CONV_2D"] = frozenset()      # (nothing passes without check_scheme)
    all_steps(context(from_tflite(path)))
    assert calls == ["CONV_2D"] * sum(op.type == "CONV_2D" for op in graph.ops)


def test_a_profiled_load_takes_the_python_loop(reference_models):
    path = reference_models / "mlperf_tiny" / "kws_ref_model.tflite"
    with collect() as totals:
        steps = all_steps(context(from_tflite(path)))
    assert "prepare CONV_2D" in totals
    assert step_summary(steps) == step_summary(prepare_steps(context(from_tflite(path))))
