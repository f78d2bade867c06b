"""The per-op load path's shortcuts (issue 15): load_shell.set_plain_output, Ctx.set_output's common case in one
call, records exactly what Ctx.set_output records and declines (False, nothing recorded) whatever the Python checks
must decide, which then refuse with their messages; coverage.check_scheme's accepted-types shortcut decides as
scheme_of does for every op type and type; compile.engine_at's addr(t) (a dict's own look-up with the
step's scratch / status areas) gives every step the addresses step_addr gives (tests/test_load_core.py compares the
bindings byte for byte)."""
from __future__ import annotations

import numpy as np
import pytest

from converters.tflite import from_tflite
from cython_ops import load_shell
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import UINT8, Graph, Op, Tensor
from edgeml.runtime import coverage
from edgeml.runtime.compile import build_plan, engine_at, new_context, prepare_steps, step_addr


def fresh(path, max_tensor_bytes=1 << 31):
    graph = from_tflite(path.read_bytes())
    ctx = new_context(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs}, 0, 1, 1 << 31, 1 << 31)
    ctx.max_tensor_bytes = max_tensor_bytes      # (after the graph inputs' own check)
    return graph, ctx


@pytest.fixture
def kws(reference_models):
    return reference_models / "mlperf_tiny" / "kws_ref_model.tflite"


def test_plain_outputs_are_recorded_as_set_output_records_them(kws):
    graph, ctx = fresh(kws)
    _, plain = fresh(kws)
    taken = 0
    for op in graph.ops:
        for position, t in enumerate(op.outputs):
            shape = tuple(graph.tensors[t].shape)
            taken += load_shell.set_plain_output(ctx, op, position, shape)
            plain.set_output(op, position, shape)
            assert ctx.shapes[t] == plain.shapes[t] and all(type(d) is int for d in ctx.shapes[t])
            assert ctx.producers[t] is op
    assert taken == len(graph.ops)
    # the whole load through set_output's shortcut gives the Python checks' shapes and producers
    _, loaded = fresh(kws)
    prepare_steps(loaded)
    assert loaded.shapes == ctx.shapes


def output_case(kws, case):
    graph, ctx = fresh(kws, max_tensor_bytes=64 if case == "over budget" else 1 << 31)
    op = graph.ops[0]
    t = graph.tensors[op.outputs[0]]
    shape, position = tuple(t.shape), 0
    if case == "numpy dims":
        shape = tuple(np.int64(d) for d in shape)
    elif case == "a list":
        shape = list(shape)
    elif case == "not the declared shape":
        shape = shape[:-1] + (shape[-1] + 1,)
    elif case == "a missing output":
        position = 1
    elif case == "a constant":
        ctx.constants[t.index] = np.zeros(t.shape, t.dtype)
    elif case == "produced by another op":
        ctx.shapes[t.index] = shape
        ctx.producers[t.index] = graph.ops[1]
    elif case == "a negative position":
        position = -1
    return ctx, op, position, shape, t


DECLINED = ["numpy dims", "a list", "not the declared shape", "a missing output", "a constant",
            "produced by another op", "over budget", "a negative position"]


@pytest.mark.parametrize("case", DECLINED)
def test_set_plain_output_declines_what_the_checks_decide(case, kws):
    ctx, op, position, shape, t = output_case(kws, case)
    before = (dict(ctx.shapes), dict(ctx.producers))
    assert load_shell.set_plain_output(ctx, op, position, shape) is False
    assert (ctx.shapes, ctx.producers) == before


@pytest.mark.parametrize("case,message", [("not the declared shape", "is declared"), ("a missing output", "missing"),
                                          ("a constant", "writes constant"), ("produced by another op", "already"),
                                          ("over budget", "arena budget")])
def test_a_declined_output_keeps_set_outputs_message(case, message, kws):
    ctx, op, position, shape, t = output_case(kws, case)
    with pytest.raises(ModelFormatError, match=message) as info:
        ctx.set_output(op, position, shape)
    assert op.describe() in str(info.value)


def test_numpy_dims_are_stored_as_python_ints(kws):
    ctx, op, position, shape, t = output_case(kws, "numpy dims")
    ctx.set_output(op, position, shape)
    assert all(type(d) is int for d in ctx.shapes[t.index])


def test_each_step_gets_step_addrs_addresses(kws):
    graph, ctx = fresh(kws)
    plan = build_plan(ctx)
    base = 1 << 40
    _, tensor_address = engine_at(plan, base)
    for k, step in enumerate(plan.steps):
        seen = []
        expected = []

        def recording(t, addr=step_addr(plan, base, k, tensor_address)):
            expected.append(addr(t))
            return expected[-1]
        step.make(recording)
        # the same make() through engine_at's addr, recorded by wrapping the step
        original = step.make
        step.make = lambda addr, original=original: original(lambda t: seen.append(addr(t)) or seen[-1])
        try:
            engine_at(plan, base)
        finally:
            step.make = original
        assert seen == expected, step.kernel


def slow_check(graph, op):
    """coverage.check_scheme's answer from scheme_of alone (its form before the accepted-types shortcut)."""
    runs_on = coverage.RUNS_ON.get(op.type)
    if runs_on is None or runs_on == coverage.ANY:
        return True
    scheme = coverage.scheme_of(graph, op)
    return scheme is None or scheme in runs_on


@pytest.mark.parametrize("op_type", sorted(coverage.RUNS_ON))
def test_the_accepted_types_shortcut_decides_as_scheme_of(op_type):
    """Every op type x every plain type x uint8 option x int8 / float weights: check_scheme passes exactly where
    scheme_of's scheme is in the row (and refuses naming both otherwise)."""
    position = coverage.DATA_INPUT.get(op_type, 0)
    weights = coverage.HYBRID_WEIGHTS.get(op_type)
    for name in coverage.SCHEMES:
        if name == coverage.HYBRID:
            continue
        for uint8 in (False, True):
            for weight_type in (np.int8, np.float32):
                count = max(position, weights or 0) + 1
                tensors = [Tensor(i, f"t{i}", (1, 4), np.dtype(weight_type if i == weights else name))
                           for i in range(count)] + [Tensor(count, "out", (1, 4), np.dtype(np.float32))]
                op = Op(0, op_type, 1, list(range(count)), [count], {UINT8: True} if uint8 else {})
                graph = Graph(tensors, [op], [0], [count], source="tflite")
                if slow_check(graph, op):
                    coverage.check_scheme(graph, op)
                else:
                    with pytest.raises(UnsupportedOpError, match=f"{op_type} runs on"):
                        coverage.check_scheme(graph, op)
