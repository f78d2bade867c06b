"""The load path around the prepares builds what its plain forms build: the engine's parameters stored straight
from each step's make() dicts (engine.bind_named) equal the layout-ordered lists the Engine was given before, byte
for byte; the arena plan (offsets, lifetimes, scratch and status areas, their order) equals the plain planner's;
the refusals keep their types and messages.  MLPerf Tiny models (.tflite and .onnx), public models and catalogue
models with awkward shapes."""
from __future__ import annotations

import numpy as np
import pytest

import tflite_models as M
import model_cache
from converters.tflite import from_tflite
from edgeml.errors import ModelFormatError
from edgeml.runtime import arena
from edgeml.runtime.compile import (bind, build_plan, compile_graph, engine_at, has_status_slot, new_context,
                                    step_addr, step_checks)
from edgeml.runtime.kernels import Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.ops.common import element_count
from edgeml.runtime.plan import STATUS_BYTES

MLPERF = ["ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "vww_96_int8.tflite",
          "kws_ref_model_float32.tflite", "ad01_int8.onnx", "kws_ref_model.onnx", "vww_96_int8.onnx"]
PUBLIC = ["traffic_model.tflite", "ssd_mobilenet_v1_025_224_int8.tflite", "mobilenet_v2_0.35_224_int8.tflite",
          "split_concat.tflite", "deeplabv3_mnv2_pascal_quant.tflite"]
CATALOGUE = ["conv_3x3_stride2x1_valid_17ch", "dwconv_3x2_m2_dilation2_valid_nobias", "dense_3d_input",
             "conv_1ch_input_7x7_stride3", "small_cnn"]


@pytest.fixture(scope="module")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "tflite_models", M)


def read(path):
    if not str(path).endswith(".onnx"):
        return from_tflite(path)
    pytest.importorskip("onnx")
    from converters.onnx import from_onnx
    return from_onnx(str(path))


def unbound_plan(graph):
    ctx = new_context(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs}, 0, 1, 1 << 31, 1 << 31)
    return ctx, build_plan(ctx)


def engine_from_layout_lists(plan, base: int) -> Engine:
    """The binding as it was: each make()'s dicts ordered by the kernel's layout into lists, then the Engine."""
    _, tensor_address = engine_at(plan, base)       # (fills plan.const_arrays: the same constants' addresses)
    records = []
    for k, step in enumerate(plan.steps):
        ptrs, ints, floats, *_ = step.make(step_addr(plan, base, k, tensor_address))
        layout = layout_of(step.kernel)
        records.append((kernel_address(step.kernel), layout.ptrs(**ptrs), layout.ints(**ints),
                        layout.floats(**floats)))
    return Engine(records)


def assert_same_binding(graph):
    _, plan = unbound_plan(graph)
    base = 1 << 40          # never run: only the stored parameters are compared
    engine, _ = engine_at(plan, base)
    assert engine.num_steps == len(plan.steps)
    assert engine.step_bytes() == engine_from_layout_lists(plan, base).step_bytes()


def plain_arena_plan(ctx, steps) -> tuple:
    """compile.arena_plan as it was written first: (offsets, lifetimes, scratch, status offsets, check offsets,
    total), dicts as item lists (their order is part of the plan)."""
    graph = ctx.graph
    life = {}
    for k, step in enumerate(steps):
        for t in (*step.op.inputs, *step.op.outputs):
            if t < 0 or t in ctx.constants:
                continue
            span = life.get(t)
            life[t] = (k, k) if span is None else (span[0], k)
    for t in graph.inputs + graph.outputs + [t for t in life if graph.tensors[t].is_variable]:
        life[t] = (0, len(steps))
    aliases = arena.merge_aliases([s.alias for s in steps if s.alias is not None], life, graph)
    sizes = {t: max(element_count(ctx.shapes[t]) * graph.tensors[t].dtype.itemsize, 1) for t in life}
    for k, step in enumerate(steps):
        if step.scratch_bytes:
            sizes[("scratch", k)] = step.scratch_bytes
            life[("scratch", k)] = (k, k)
        if step.check is not None or has_status_slot(step.kernel):
            sizes[("status", k)] = STATUS_BYTES * len(step_checks(step))
            life[("status", k)] = (k, len(steps))
    order = sorted(sizes, key=lambda k: (-sizes[k], str(k)))
    offsets, total = arena.place_in_order([(sizes[k] + 63) // 64 * 64 for k in order], [life[k][0] for k in order],
                                          [life[k][1] for k in order])
    offsets = dict(zip(order, offsets.tolist()))
    for t, root in aliases.items():
        offsets[t] = offsets[root]
    return ([(t, o) for t, o in offsets.items() if not isinstance(t, tuple)],
            list({**{t: s for t, s in life.items() if not isinstance(t, tuple)},
                  **{t: life[root] for t, root in aliases.items()}}.items()),
            [(t[1], (o, sizes[t])) for t, o in offsets.items() if isinstance(t, tuple) and t[0] == "scratch"],
            [(t[1], o) for t, o in offsets.items() if isinstance(t, tuple) and t[0] == "status"],
            [offsets[("status", k)] + STATUS_BYTES * j for k, s in enumerate(steps) if s.check is not None
             for j, _ in enumerate(step_checks(s))],
            total)


def assert_same_arena(graph):
    ctx, plan = unbound_plan(graph)
    assert (list(plan.offsets.items()), list(plan.lifetimes.items()), list(plan.scratch.items()),
            list(plan.status_offsets.items()), [o for o, _ in plan.checks], plan.arena_bytes) == \
        plain_arena_plan(ctx, plan.steps)


@pytest.mark.parametrize("name", MLPERF)
def test_mlperf_bindings_and_arenas_equal_the_plain_forms(name, reference_models):
    folder = "mlperf_tiny_onnx" if name.endswith(".onnx") else "mlperf_tiny"
    graph = read(reference_models / folder / name)
    assert_same_binding(graph)
    assert_same_arena(graph)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_bindings_and_arenas_equal_the_plain_forms(name, public_models):
    path = public_models / "tflite" / name
    if not path.exists():
        pytest.skip(f"{name} is not in the public corpus")
    graph = read(path)
    assert_same_binding(graph)
    assert_same_arena(graph)


@pytest.mark.parametrize("name", CATALOGUE)
def test_catalogue_bindings_and_arenas_equal_the_plain_forms(name, models):
    graph = from_tflite(models.get(name, "int8"))
    assert_same_binding(graph)
    assert_same_arena(graph)


def kws_plan(reference_models):
    graph = from_tflite(reference_models / "mlperf_tiny" / "kws_ref_model.tflite")
    return unbound_plan(graph)[1]


def with_ints(step, **changes):
    make = step.make

    def changed(addr):
        ptrs, ints, floats, *extra = make(addr)
        return (ptrs, {**ints, **changes}, floats, *extra)
    step.make = changed


@pytest.mark.parametrize("value", [1 << 63, -(1 << 63) - 1, np.uint64(1 << 63), [1 << 64]])
def test_a_parameter_beyond_64_bits_is_refused(value, reference_models):
    plan = kws_plan(reference_models)
    step = plan.steps[0]
    name = next(s.name for s in layout_of(step.kernel).int_slots if s.length == 1 and s.name != "reserved")
    if isinstance(value, list):     # a one-value slot given a sequence: the layout's own refusal
        with_ints(step, **{name: value})
        with pytest.raises(ValueError, match="takes one value, not a sequence"):
            bind(plan)
        return
    with_ints(step, **{name: value})
    with pytest.raises(ModelFormatError, match=r"op 0 \(CONV_2D v\d\): a parameter of kernel .* does not fit in 64"):
        bind(plan)


def test_a_misnamed_slot_is_named(reference_models):
    plan = kws_plan(reference_models)
    with_ints(plan.steps[1], no_such_slot=3)
    with pytest.raises(ValueError, match="no ints slot 'no_such_slot'"):
        bind(plan)


def test_values_of_other_types_are_stored_as_the_engine_converts_them(reference_models):
    """numpy integers, bools and floats in integer slots take the layout's path: int() of each, as before."""
    plan = kws_plan(reference_models)
    base = 1 << 40
    reference = engine_at(plan, base)[0].step_bytes()
    step = plan.steps[0]
    make = step.make

    def as_numpy(addr):
        ptrs, ints, floats, *extra = make(addr)
        return (ptrs, {k: np.int64(v) if isinstance(v, int) else v for k, v in ints.items()},
                {k: np.float32(v) for k, v in floats.items()}, *extra)
    step.make = as_numpy
    assert engine_at(plan, base)[0].step_bytes() == reference


def test_compiled_plans_run_after_binding(reference_models):
    graph = from_tflite(reference_models / "mlperf_tiny" / "kws_ref_model.tflite")
    plan = compile_graph(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs})
    x = plan.view(graph.inputs[0])
    x[...] = np.arange(x.size, dtype=np.int64).reshape(x.shape) % 251 - 125
    plan.engine.invoke()
    first = plan.view(graph.outputs[0]).copy()
    twin = bind(plan)
    twin.view(graph.inputs[0])[...] = x
    twin.engine.invoke()
    np.testing.assert_array_equal(twin.view(graph.outputs[0]), first)


@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "vww_96_int8.tflite", "kws_ref_model.onnx"])
def test_c_lifetimes_equal_the_python_twin(name, reference_models):
    """engine.step_lifetimes (the C form arena.lifetimes takes) gives lifetimes_in_python's spans in its order, and
    leaves a step naming a tensor beyond the graph to the Python form."""
    folder = "mlperf_tiny_onnx" if name.endswith(".onnx") else "mlperf_tiny"
    graph = read(reference_models / folder / name)
    ctx, plan = unbound_plan(graph)
    expected = arena.lifetimes_in_python(plan.steps, ctx.constants)
    got = arena.step_lifetimes(plan.steps, len(graph.tensors), ctx.constants)
    assert list(got.items()) == list(expected.items())
    assert arena.step_lifetimes(plan.steps, len(graph.tensors) - 1, ctx.constants) is None
