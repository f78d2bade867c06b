"""Graph -> Plan: each op's prepare (from the op table) in graph order, then the arena, then the engine's steps.

It knows no op: validation, shape inference, multipliers and weight packing live in the op's family module
(edgeml/runtime/ops/).  Each step names its kernel's parameters; the kernel's layout (edgeml/runtime/layouts.py,
the mirror of the C enums) gives each name its slot, and cython_ops.engine.bind_named stores the values of every
step in one call (the layout's own ordering and checks take any step whose values are not plain numbers).
"""
from __future__ import annotations

import weakref
from functools import lru_cache, partial
from typing import Optional

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph
from edgeml.runtime import arena
from edgeml.runtime.coverage import ACCEPTED, DATA_INPUT, check_scheme
from cython_ops.load_loop import prepare_ops
from cython_ops.engine import bind_named, tensor_bytes
from edgeml.runtime.kernels import kernel_address
from edgeml.runtime.layouts import RESERVED, layout_of
from edgeml.runtime.load_profile import ACTIVE as PROFILING, stage
from edgeml.runtime.plan import STATUS_BYTES, Ctx, Plan, address
from edgeml.runtime.registry import OPS, SUPPORTED_OPS

DEFAULT_MAX_ARENA_BYTES = 1 << 31       # activations and scratch of one plan
DEFAULT_MAX_WEIGHT_BYTES = 1 << 31      # packed copies of the weights
MAX_NESTING = 16                        # control-flow ops inside one another (each level plans its subgraphs)
MAX_SUBPLANS = 256                      # subgraph plans in one model: a subgraph reached n ways is planned n times


def prepare_steps(ctx: Ctx) -> list:
    """Every op's steps, after checking the op, its version and its output types against the op table.  The plain
    form of load_loop.prepare_ops (build_plan runs that one; the two must make the same steps and refusals)."""
    graph = ctx.graph
    tensors, shapes, substitutes = graph.tensors, ctx.shapes, ctx.substitutes
    steps = []
    for op in graph.ops:
        if substitutes:
            op = substitutes.pop(op.index, op)
        spec = OPS.get(op.type)
        if spec is None or op.version > spec.max_version:
            refuse_op(op, spec)
        check_scheme(graph, op)
        output_types = spec.output_types
        if output_types is not None:
            for t in op.outputs:
                tensor = tensors[t]
                if tensor.dtype not in output_types:
                    refuse_output(op, tensor, output_types)
        if PROFILING:
            with stage(f"prepare {op.type}"):
                step = spec.prepare(ctx, op)
        else:
            step = spec.prepare(ctx, op)
        if isinstance(step, list):
            steps.extend(step)
        elif step is not None:
            steps.append(step)
        refuse_unproduced(tensors, shapes, op)
    check_graph_outputs(ctx)
    return steps


def all_steps(ctx: Ctx) -> list:
    """prepare_steps' steps, the loop in C (load_loop.prepare_ops) unless the load is being profiled per op type."""
    if PROFILING:
        return prepare_steps(ctx)
    steps = prepare_ops(ctx, OPS, ACCEPTED, DATA_INPUT, check_scheme, refuse_op, refuse_output, refuse_unproduced)
    check_graph_outputs(ctx)
    return steps


def refuse_op(op, spec) -> None:
    """Raises for an op type the op table lacks (spec None) or a version newer than its row's."""
    if spec is None:
        raise UnsupportedOpError(f"{op.describe()}: op {op.type} is not supported; supported ops: "
                                 f"{', '.join(SUPPORTED_OPS)}")
    if op.version > spec.max_version:
        raise UnsupportedOpError(f"{op.describe()}: version {op.version} of {op.type} is not supported "
                                 f"(up to {spec.max_version})")


def refuse_output(op, tensor, output_types) -> None:
    raise UnsupportedOpError(f"{op.describe()}: output {tensor.describe()} has type {tensor.dtype} "
                             f"({' and '.join(d.name for d in output_types)} are supported)")


def refuse_unproduced(tensors, shapes, op) -> None:
    """Raises for an output the op's prepare did not produce or an input nothing provides (after the prepare)."""
    for t in op.outputs:
        if t not in shapes and t >= 0:
            raise ModelFormatError(f"{op.describe()} lists output {tensors[t].describe()}, which it does "
                                   f"not produce ({op.type} has fewer outputs)")
    for t in op.inputs:
        if t not in shapes and t >= 0:
            raise ModelFormatError(f"{op.describe()} reads {tensors[t].describe()}, which is neither a "
                                   "constant, a graph input nor produced by an earlier op")


def check_graph_outputs(ctx: Ctx) -> None:
    tensors, shapes = ctx.graph.tensors, ctx.shapes
    for idx in ctx.graph.outputs:
        if idx not in shapes:
            raise ModelFormatError(f"graph output {tensors[idx].describe()} is never produced")
        if idx in ctx.constants:
            raise UnsupportedOpError(f"graph output {tensors[idx].describe()} is a constant")


@lru_cache(maxsize=None)
def has_status_slot(kernel: str) -> bool:
    """A kernel whose layout has a status pointer always gets a status area, even where nothing reads it."""
    return any(slot.name == "status" for slot in layout_of(kernel).ptr_slots)


def new_context(graph: Graph, input_shapes: dict, rounding: int, num_threads: int, max_arena_bytes: int,
                max_weight_bytes: int, enclosing: tuple = (), float_exact: bool = False) -> Ctx:
    """The context a graph's prepares run in, with its input shapes (graph input index -> shape) set."""
    ctx = Ctx(graph, rounding, num_threads, max_arena_bytes, max_weight_bytes)
    ctx.float_exact = float_exact
    ctx.enclosing = enclosing or (graph,)
    ctx.plan_subgraph = partial(plan_subgraph, weakref.proxy(ctx))    # (a strong one: a cycle only the GC frees)
    ctx.bind_subplan = engine_at
    for idx in graph.inputs:
        t = graph.tensors[idx]
        shape = tuple(input_shapes.get(idx, t.shape))
        if shape != tuple(t.shape):
            ctx.batch_changed = True
        ctx.check_size(shape, t.dtype.itemsize, f"graph input {t.describe()}")
        ctx.shapes[idx] = shape
    return ctx


def build_plan(ctx: Ctx, external=frozenset()) -> Plan:
    """The unbound plan of ctx.graph: its steps, then the arena.  Tensors in `external` get no arena space: whoever
    binds the plan gives their addresses (a WHILE's loop variables live in the WHILE's outputs)."""
    steps = all_steps(ctx)
    if ctx.pages is not None:      # (the packed weights are all written: the unused huge-page tail given back)
        ctx.pages.release()
    with stage("arena plan"):
        return arena_plan(ctx, steps, external)


def arena_plan(ctx: Ctx, steps: list, external=frozenset()) -> Plan:
    """The plan of `steps`: tensor lifetimes, then the arena's offsets."""
    graph = ctx.graph
    tensors, shapes = graph.tensors, ctx.shapes
    life = arena.lifetimes(steps, graph, ctx.constants)
    for t in external:
        life.pop(t, None)
    aliases = arena.merge_aliases([s.alias for s in steps if s.alias is not None], life, graph)
    tensor_life = dict(life)
    sizes = tensor_bytes(life, shapes, tensors)
    end = len(steps)
    checked = []                    # (step index, its checks) of the steps with a status area
    for k, step in enumerate(steps):
        if step.scratch_bytes:
            sizes[("scratch", k)] = step.scratch_bytes
            life[("scratch", k)] = (k, k)
        if step.check is not None or has_status_slot(step.kernel):     # read after the invoke: lives to the end
            checks = step_checks(step)
            sizes[("status", k)] = STATUS_BYTES * len(checks)
            life[("status", k)] = (k, end)
            checked.append((k, checks, step.check is not None))
    tensor_offsets, scratch, status_offsets, total = arena.plan_arena_split(sizes, life)
    if total > ctx.max_tensor_bytes:
        raise ModelFormatError(f"the plan needs an arena of {total} bytes, more than max_arena_bytes="
                               f"{ctx.max_tensor_bytes}")
    for t, root in aliases.items():
        tensor_offsets[t] = tensor_offsets[root]
        tensor_life[t] = life[root]
    return Plan(graph=graph, shapes=shapes, steps=steps, offsets=tensor_offsets, arena_bytes=total, arena=None,
                constants=ctx.constants, keep=ctx.keep, lifetimes=tensor_life, scratch=scratch,
                checks=[(status_offsets[k] + STATUS_BYTES * j, message) for k, checks, real in checked if real
                        for j, message in enumerate(checks)],
                input_ranges=ctx.input_ranges, const_arrays={}, status_offsets=status_offsets,
                subplans=ctx.subplans)


def step_checks(step) -> tuple:
    """The checks of a step's status areas (Step.check: none, one callable or a tuple of them; a kernel with a
    status slot and no check still gets one area)."""
    if isinstance(step.check, (tuple, list)):
        return tuple(step.check)
    return (step.check,)


def compile_graph(graph: Graph, input_shapes: dict, rounding: int = 0, num_threads: int = 1,
                  max_arena_bytes: int = DEFAULT_MAX_ARENA_BYTES,
                  max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES, float_exact: bool = False,
                  sparse: str = "auto") -> Plan:
    """The plan for `input_shapes` (graph input index -> shape), bound to an arena of its own."""
    ctx = new_context(graph, input_shapes, rounding, num_threads, max_arena_bytes, max_weight_bytes,
                      float_exact=float_exact)
    ctx.sparse = sparse
    return bind(build_plan(ctx))


def plan_subgraph(parent: Ctx, graph: Graph, input_shapes: dict, external=frozenset(), enclosing: tuple = ()) -> Plan:
    """The unbound plan of a control-flow op's subgraph, with the parent's rounding, threads and budgets (its
    packed weights count against the parent's); the parent's plan reports its weights with its own.  Nesting and
    the number of plans are bounded, so no file can make loading recurse deeply or plan without end."""
    enclosing = enclosing or parent.enclosing + (graph,)
    if len(enclosing) > MAX_NESTING:
        raise UnsupportedOpError(f"control-flow ops nest more than {MAX_NESTING} deep")
    parent.plan_count[0] += 1
    if parent.plan_count[0] > MAX_SUBPLANS:
        raise ModelFormatError(f"the model's control-flow ops need more than {MAX_SUBPLANS} subgraph plans")
    ctx = new_context(graph, input_shapes, parent.rounding, parent.num_threads, parent.max_tensor_bytes,
                      parent.max_weight_bytes - parent.weight_bytes, enclosing, parent.float_exact)
    ctx.plan_count = parent.plan_count
    ctx.sparse = parent.sparse
    plan = build_plan(ctx, external)
    parent.weight_bytes += ctx.weight_bytes
    parent.subplans.append(plan)
    return plan


def bind(plan: Plan) -> Plan:
    """`plan` with an arena and an engine of its own: the packed weights and constants are shared with every other
    binding of the same plan, the activations, scratch and state are not."""
    with stage("bind engine"):
        owner, buffer = arena.allocate(plan.arena_bytes)
        engine, _ = engine_at(plan, address(buffer) if plan.arena_bytes else 0, keep=owner)
    bound = Plan.__new__(Plan)            # a shallow copy (copy.copy's reduce protocol costs more than the bind)
    bound.__dict__.update(plan.__dict__)
    bound.arena, bound.arena_owner, bound.engine = buffer, owner, engine
    return bound


def step_addr(plan: Plan, base: int, k: int, tensor_address):
    """addr(t) for step k's make(): tensor t's address (tensor_address(t)), or the step's scratch / status area
    ("scratch" / "status"; 0 when it has none) in an arena at address `base`."""
    def addr(t):
        if t == "scratch":
            return base + plan.scratch[k][0] if k in plan.scratch else 0
        if t == "status":
            return base + plan.status_offsets[k] if k in plan.status_offsets else 0
        return tensor_address(t)
    return addr


def engine_at(plan: Plan, base: int, external: Optional[dict] = None, keep=None):
    """(Engine, addr): the plan's steps bound to an arena at address `base` and to the addresses `external` gives
    (tensor index -> address); addr(t) is where tensor t lives.  A step's make() may return a fourth value, objects
    that must live as long as this binding (a WHILE's subgraph engines)."""
    scratch, status = plan.scratch, plan.status_offsets
    external = external or {}
    known = Addresses({t: base + o for t, o in plan.offsets.items()})      # constants added when met
    known.update(external)

    def tensor_address(t):
        if t in external:
            return external[t]
        if t in plan.constants:
            if t not in plan.const_arrays:
                plan.const_arrays[t] = np.ascontiguousarray(plan.constants[t])
            known[t] = a = address(plan.const_arrays[t])
            return a
        return base + plan.offsets[t]

    known.resolve = tensor_address
    addr = known.__getitem__        # each make()'s addr(t): the dict's own look-up, step k's areas set before it
    steps = plan.steps
    made = []
    for k, step in enumerate(steps):
        known["scratch"] = base + scratch[k][0] if k in scratch else 0
        known["status"] = base + status[k] if k in status else 0
        made.append(step.make(addr))
    known.resolve = None            # (no cycle: tensor_address, returned, holds `known`)
    specs = [kernel_spec(step.kernel) for step in steps]

    def order_by_layout(k):         # a step whose values are not all plain: the layout orders and checks them
        layout = layout_of(steps[k].kernel)
        ptrs, ints, floats = made[k][:3]
        return layout.ptrs(**ptrs), layout.ints(**ints), layout.floats(**floats)

    alive = [keep]
    engine, too_wide, extras = bind_named(made, specs, [plan.keep, plan.const_arrays, alive], order_by_layout)
    if too_wide >= 0:
        step = steps[too_wide]
        raise ModelFormatError(f"{step.op.describe()}: a parameter of kernel {step.kernel} does not fit in 64 "
                               "bits (the model's shapes or paddings are out of range)")
    alive.extend(extras)
    return engine, tensor_address


class Addresses(dict):
    """engine_at's tensor index -> address, with "scratch" / "status" the current step's areas: a make() calls
    addr(t) about three times, and a dict's own look-up costs a tenth of a Python closure's; a miss (a constant met
    first) goes to resolve(t), which adds it."""
    __slots__ = ("resolve",)

    def __missing__(self, t):
        return self.resolve(t)


@lru_cache(maxsize=None)
def kernel_spec(kernel: str) -> tuple:
    """What engine.bind_named stores a step of `kernel` by: its address, per kind (ptrs, ints, floats) the slots
    in order as (name, or None for a reserved slot, run length), then per kind the number of named slots."""
    layout = layout_of(kernel)
    slots = [tuple((None if s.name == RESERVED else s.name, s.length) for s in section)
             for _, section, _ in layout.sections()]
    named = [sum(name is not None for name, _ in section) for section in slots]
    return (kernel_address(kernel), *slots, *named)
