"""Graph -> Plan: each op's prepare (from the op table) in graph order, then the arena, then the engine's steps.

It knows no op: validation, shape inference, multipliers and weight packing live in the op's family module
(edgeml/runtime/ops/).  Each step names its kernel's parameters; the kernel's layout (edgeml/runtime/layouts.py,
the mirror of the C enums) orders them into the (pointers, integers, floats) the Cython engine passes on.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph
from edgeml.runtime import arena
from edgeml.runtime.kernels import Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.ops.common import element_count
from edgeml.runtime.plan import Ctx, Plan, address
from edgeml.runtime.registry import OPS, SUPPORTED_OPS

DEFAULT_MAX_ARENA_BYTES = 1 << 31       # activations and scratch of one plan
DEFAULT_MAX_WEIGHT_BYTES = 1 << 31      # packed copies of the weights
STATUS_BYTES = 16                       # a step's status area (Step.check)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def prepare_steps(ctx: Ctx) -> list:
    """Every op's steps, after checking the op, its version and its output types against the op table."""
    graph = ctx.graph
    steps = []
    for op in graph.ops:
        spec = OPS.get(op.type)
        if spec is None:
            raise UnsupportedOpError(f"{op.describe()}: op {op.type} is not supported; supported ops: "
                                     f"{', '.join(SUPPORTED_OPS)}")
        if op.version > spec.max_version:
            raise UnsupportedOpError(f"{op.describe()}: version {op.version} of {op.type} is not supported "
                                     f"(up to {spec.max_version})")
        for t in op.outputs:
            tensor = graph.tensors[t]
            if spec.output_types is not None and tensor.dtype not in spec.output_types:
                raise UnsupportedOpError(f"{op.describe()}: output {tensor.describe()} has type {tensor.dtype} "
                                         f"({' and '.join(d.name for d in spec.output_types)} are supported)")
        step = spec.prepare(ctx, op)
        if isinstance(step, list):
            steps.extend(step)
        elif step is not None:
            steps.append(step)
        for t in op.inputs:
            if t >= 0 and t not in ctx.shapes:
                raise ModelFormatError(f"{op.describe()} reads {graph.tensors[t].describe()}, which is neither a "
                                       "constant, a graph input nor produced by an earlier op")
    for idx in graph.outputs:
        if idx not in ctx.shapes:
            raise ModelFormatError(f"graph output {graph.tensors[idx].describe()} is never produced")
        if idx in ctx.constants:
            raise UnsupportedOpError(f"graph output {graph.tensors[idx].describe()} is a constant")
    return steps


def has_status_slot(kernel: str) -> bool:
    """A kernel whose layout has a status pointer always gets a status area, even where nothing reads it."""
    return any(slot.name == "status" for slot in layout_of(kernel).ptr_slots)


def compile_graph(graph: Graph, input_shapes: dict, rounding: int = 0, num_threads: int = 1,
                  max_arena_bytes: int = DEFAULT_MAX_ARENA_BYTES,
                  max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> Plan:
    """The plan for `input_shapes` (graph input index -> shape), bound to an arena of its own."""
    ctx = Ctx(graph, rounding, num_threads, max_arena_bytes, max_weight_bytes)
    for idx in graph.inputs:
        t = graph.tensors[idx]
        shape = tuple(input_shapes.get(idx, t.shape))
        if shape != tuple(t.shape):
            ctx.batch_changed = True
        ctx.check_size(shape, t.dtype.itemsize, f"graph input {t.describe()}")
        ctx.shapes[idx] = shape
    steps = prepare_steps(ctx)

    life = arena.lifetimes(steps, graph, ctx.constants)
    sizes = {t: max(element_count(ctx.shapes[t]) * graph.tensors[t].dtype.itemsize, 1) for t in life}
    for k, step in enumerate(steps):
        if step.scratch_bytes:
            sizes[("scratch", k)] = step.scratch_bytes
            life[("scratch", k)] = (k, k)
        if step.check is not None or has_status_slot(step.kernel):     # read after the invoke: lives to the end
            sizes[("status", k)] = STATUS_BYTES
            life[("status", k)] = (k, len(steps))
    offsets, total = arena.plan_arena(sizes, life)
    if total > max_arena_bytes:
        raise ModelFormatError(f"the plan needs an arena of {total} bytes, more than max_arena_bytes="
                               f"{max_arena_bytes}")
    plan = Plan(graph=graph, shapes=ctx.shapes, steps=steps,
                offsets={t: o for t, o in offsets.items() if not isinstance(t, tuple)},
                arena_bytes=total, arena=None, constants=ctx.constants, keep=ctx.keep,
                lifetimes={t: span for t, span in life.items() if not isinstance(t, tuple)},
                scratch={t[1]: (o, sizes[t]) for t, o in offsets.items() if isinstance(t, tuple) and t[0] == "scratch"},
                checks=[(offsets[("status", k)], s.check) for k, s in enumerate(steps) if s.check is not None],
                input_ranges=ctx.input_ranges, const_arrays={},
                status_offsets={key[1]: o for key, o in offsets.items()
                                if isinstance(key, tuple) and key[0] == "status"})
    return bind(plan)


def bind(plan: Plan) -> Plan:
    """`plan` with an arena and an engine of its own: the packed weights and constants are shared with every other
    binding of the same plan, the activations, scratch and state are not."""
    owner, buffer = arena.allocate(plan.arena_bytes)
    base = address(buffer) if plan.arena_bytes else 0
    scratch, status = plan.scratch, plan.status_offsets

    def addr_for(k):
        def addr(t):
            if t == "scratch":
                return base + scratch[k][0] if k in scratch else 0
            if t == "status":
                return base + status[k] if k in status else 0
            if t in plan.constants:
                if t not in plan.const_arrays:
                    plan.const_arrays[t] = np.ascontiguousarray(plan.constants[t])
                return address(plan.const_arrays[t])
            return base + plan.offsets[t]
        return addr

    records = []
    for k, step in enumerate(plan.steps):
        ptrs, ints, floats = step.make(addr_for(k))
        layout = layout_of(step.kernel)
        ints = [int(v) for v in layout.ints(**ints)]
        if any(not INT64_MIN <= v <= INT64_MAX for v in ints):
            raise ModelFormatError(f"{step.op.describe()}: a parameter of kernel {step.kernel} does not fit in 64 "
                                   "bits (the model's shapes or paddings are out of range)")
        records.append((kernel_address(step.kernel), layout.ptrs(**ptrs), ints,
                        [float(v) for v in layout.floats(**floats)]))
    bound = dataclasses.replace(plan, arena=buffer, arena_owner=owner)
    bound.engine = Engine(records, keepalive=[plan.keep, plan.const_arrays, owner])
    return bound
