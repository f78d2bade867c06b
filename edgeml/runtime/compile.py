"""Graph -> Plan: each op's prepare (from the op table) in graph order, then the arena, then the engine's steps.

It knows no op: validation, shape inference, multipliers and weight packing live in the op's family module
(edgeml/runtime/ops/).  Each step names its kernel's parameters; the kernel's layout (edgeml/runtime/layouts.py,
the mirror of the C enums) orders them into the (pointers, integers, floats) the Cython engine passes on.
"""
from __future__ import annotations

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph
from edgeml.runtime import arena
from edgeml.runtime.kernels import Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.ops.common import element_count
from edgeml.runtime.plan import Ctx, Plan, address
from edgeml.runtime.registry import OPS, SUPPORTED_OPS


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
    for idx in graph.outputs:
        if idx not in ctx.shapes:
            raise ModelFormatError(f"graph output {graph.tensors[idx].describe()} is never produced")
        if idx in ctx.constants:
            raise UnsupportedOpError(f"graph output {graph.tensors[idx].describe()} is a constant")
    return steps


def compile_graph(graph: Graph, input_shapes: dict, rounding: int = 0, num_threads: int = 1) -> Plan:
    ctx = Ctx(graph, rounding, num_threads)
    for idx in graph.inputs:
        t = graph.tensors[idx]
        shape = tuple(input_shapes.get(idx, t.shape))
        if shape != tuple(t.shape):
            ctx.batch_changed = True
        ctx.shapes[idx] = shape
    steps = prepare_steps(ctx)

    life = arena.lifetimes(steps, graph, ctx.constants)
    sizes = {t: max(element_count(ctx.shapes[t]) * graph.tensors[t].dtype.itemsize, 1) for t in life}
    for k, step in enumerate(steps):
        if step.scratch_bytes:
            key = ("scratch", k)
            sizes[key] = step.scratch_bytes
            life[key] = (k, k)
    offsets, total = arena.plan_arena(sizes, life)
    arena_raw, buffer = arena.allocate(total)
    base = address(buffer) if total else 0
    const_arrays = {}

    def addr_for(k):
        def addr(t):
            if t == "scratch":
                return base + offsets[("scratch", k)] if ("scratch", k) in offsets else 0
            if t in ctx.constants:
                if t not in const_arrays:
                    const_arrays[t] = np.ascontiguousarray(ctx.constants[t])
                return address(const_arrays[t])
            return base + offsets[t]
        return addr

    records = []
    for k, step in enumerate(steps):
        ptrs, ints, floats = step.make(addr_for(k))
        layout = layout_of(step.kernel)
        records.append((kernel_address(step.kernel), layout.ptrs(**ptrs),
                        [int(v) for v in layout.ints(**ints)], [float(v) for v in layout.floats(**floats)]))
    plan = Plan(graph=graph, shapes=ctx.shapes, steps=steps,
                offsets={t: o for t, o in offsets.items() if not isinstance(t, tuple)},
                arena_bytes=total, arena=buffer, constants=ctx.constants, keep=ctx.keep + [arena_raw],
                lifetimes={t: span for t, span in life.items() if not isinstance(t, tuple)},
                scratch={t[1]: (o, sizes[t]) for t, o in offsets.items() if isinstance(t, tuple)},
                checks=ctx.run_checks, input_ranges=ctx.input_ranges)
    plan.keep.append(const_arrays)
    plan.engine = Engine(records, keepalive=plan.keep)
    return plan
