"""WHILE (TFLite control flow): its cond and body subgraphs are planned at load and run by one kernel from inside the
plan's nogil loop (cython_ops/include/em_control.h), no Python per iteration.

The loop variables live in the WHILE's output tensors, which both subgraphs read as their inputs; the two
subgraphs' arenas share one region of the WHILE's scratch (they never run at the same time).  A loop variable
whose shape the body changes is refused, as are subgraphs that reach themselves.  A loop still running after
MAX_ITERATIONS body runs (its own and those of the loops inside it together) stops with an InputError; a run-time
check inside a subgraph (a GATHER index, a run-time SLICE) stops the loop and is reported with its own message.
"""
from __future__ import annotations

import numpy as np

from edgeml.errors import EdgeMLError, ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op
from edgeml.runtime.arena import ALIGN
from edgeml.runtime.ops.common import element_count
from edgeml.runtime.ops.tensor_list import fold_runtime_slices
from edgeml.runtime.plan import STATUS_BYTES, Ctx, OpSpec, Step, address

MAX_ITERATIONS = 10_000_000      # body runs, of a WHILE and those inside it, after which it stops (InputError)
BOOL = np.dtype(np.bool_)


def aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def loop_subgraph(ctx: Ctx, op: Op, option: str) -> tuple[int, Graph]:
    """(file index, graph) of the subgraph an option names, refusing one that is missing or encloses this op."""
    index = op.options.get(option)
    graph = ctx.graph.subgraphs.get(index) if isinstance(index, int) else None
    if graph is None:
        raise ModelFormatError(f"{op.describe()}: {option} {index!r} names no subgraph of the model")
    if any(graph is g for g in ctx.enclosing):
        raise ModelFormatError(f"{op.describe()}: {option} {index} is a subgraph this WHILE runs in (recursion)")
    if any(t.is_variable for t in graph.tensors):
        raise UnsupportedOpError(f"{op.describe()}: subgraph {index} holds variable (state) tensors")
    return index, graph


def check_signature(op: Op, graph: Graph, index: int, role: str, variables: list, outputs: int):
    """The subgraph takes the loop variables (same count and types, distinct non-constant tensors) and gives
    `outputs` values."""
    what = f"{op.describe()}: {role} subgraph {index}"
    if len(graph.inputs) != len(variables) or len(graph.outputs) != outputs:
        raise ModelFormatError(f"{what} has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; the WHILE "
                               f"has {len(variables)} loop variables (expected {outputs} output(s))")
    if len(set(graph.inputs)) != len(graph.inputs):
        raise ModelFormatError(f"{what} lists an input tensor twice")
    for t, v in zip(graph.inputs, variables):
        tensor = graph.tensors[t]
        if tensor.dtype != v.dtype:
            raise ModelFormatError(f"{what}: input {tensor.describe()} is {tensor.dtype}, the loop variable "
                                   f"{v.describe()} {v.dtype}")
        if tensor.is_constant:
            raise ModelFormatError(f"{what}: input {tensor.describe()} is a constant")


def plan_loop_subgraph(ctx: Ctx, op: Op, graph: Graph, index: int, role: str, shapes: list):
    """The unbound plan of a cond / body subgraph for the loop variables' shapes; its inputs get no arena space
    (they are bound to the WHILE's outputs)."""
    try:
        return ctx.plan_subgraph(fold_runtime_slices(graph), dict(zip(graph.inputs, shapes)),
                                 external=frozenset(graph.inputs), enclosing=ctx.enclosing + (graph,))
    except EdgeMLError as exc:
        raise type(exc)(f"{op.describe()}: {role} subgraph {index}: {exc}") from exc


def prepare_while(ctx: Ctx, op: Op) -> Step:
    what = op.describe()
    ci, cond = loop_subgraph(ctx, op, "cond_subgraph_index")
    bi, body = loop_subgraph(ctx, op, "body_subgraph_index")
    if ci == bi:
        raise ModelFormatError(f"{what}: cond and body are both subgraph {ci}")
    n = len(op.inputs)
    if n == 0 or len(op.outputs) != n:
        raise ModelFormatError(f"{what}: {n} inputs and {len(op.outputs)} outputs (one of each per loop variable)")
    variables = [ctx.tensor(op, k) for k in range(n)]
    outputs = [ctx.tensor(op, k, "output") for k in range(n)]
    if len({t.index for t in outputs}) != n or {t.index for t in outputs} & {t.index for t in variables}:
        raise ModelFormatError(f"{what}: its outputs must be distinct tensors that are not its inputs")
    for v, y in zip(variables, outputs):
        if v.dtype != y.dtype:
            raise ModelFormatError(f"{what}: loop variable {v.describe()} is {v.dtype}, output {y.describe()} "
                                   f"{y.dtype}")
    check_signature(op, cond, ci, "cond", variables, 1)
    check_signature(op, body, bi, "body", variables, n)
    for t, v in zip(body.outputs, variables):
        if body.tensors[t].dtype != v.dtype:
            raise ModelFormatError(f"{what}: body subgraph {bi} output {body.tensors[t].describe()} is "
                                   f"{body.tensors[t].dtype}, the loop variable {v.describe()} {v.dtype}")
    shapes = [tuple(ctx.shape(v)) for v in variables]
    cond_plan = plan_loop_subgraph(ctx, op, cond, ci, "cond", shapes)
    flag = cond.tensors[cond.outputs[0]]
    if flag.dtype != BOOL or tuple(cond_plan.shapes[flag.index]) not in ((), (1,)):
        raise ModelFormatError(f"{what}: cond subgraph {ci} must produce one bool; its output {flag.describe()} is "
                               f"{flag.dtype} of shape {list(cond_plan.shapes[flag.index])}")
    body_plan = plan_loop_subgraph(ctx, op, body, bi, "body", shapes)
    for k, t in enumerate(body.outputs):
        if tuple(body_plan.shapes[t]) != shapes[k]:
            raise UnsupportedOpError(f"{what}: loop variable {k} ({variables[k].describe()}) changes shape from "
                                     f"{list(shapes[k])} to {list(body_plan.shapes[t])} in body subgraph {bi}; "
                                     "loop variables of changing shape are not supported")
    for k, shape in enumerate(shapes):
        ctx.set_output(op, k, shape)

    sizes = [element_count(s) * v.dtype.itemsize for s, v in zip(shapes, variables)]
    region = aligned(max(cond_plan.arena_bytes, body_plan.arena_bytes))
    # a body output that is another loop variable's input is staged first, so variables may trade places
    staged, stage_bytes = {}, 0
    for k, t in enumerate(body.outputs):
        if t in body.inputs and body.inputs.index(t) != k:
            staged[k] = region + stage_bytes
            stage_bytes += aligned(sizes[k])
    limit = MAX_ITERATIONS

    def stopped(status):         # its first area's int32: 1 when the iteration bound stopped the loop
        if not status[:4].view(np.int32)[0]:
            return None
        return (f"{what}: the loop has not ended after {limit} iterations (counted with those of the loops around "
                f"and inside it; its cond, subgraph {ci}, still holds); edgeml stops a WHILE there")
    checks = (stopped,) + tuple(sub_check(what, "cond", ci, c) for _, c in cond_plan.checks)
    checks += tuple(sub_check(what, "body", bi, c) for _, c in body_plan.checks)
    ints = dict(cond_steps=len(cond_plan.steps), body_steps=len(body_plan.steps), init_copies=n,
                stage_copies=len(staged), cond_check_count=len(cond_plan.checks),
                body_check_count=len(body_plan.checks), status_bytes=STATUS_BYTES, max_iterations=limit,
                outermost=int(len(ctx.enclosing) == 1))
    bind_subplan = ctx.bind_subplan

    def make(addr):
        base = addr("scratch")
        state = [addr(y.index) for y in outputs]
        cond_engine, cond_addr = bind_subplan(cond_plan, base, dict(zip(cond.inputs, state)))
        body_engine, body_addr = bind_subplan(body_plan, base, dict(zip(body.inputs, state)))
        copies = [(addr(v.index), state[k], sizes[k]) for k, v in enumerate(variables)]
        copies += [(state[body.inputs.index(body.outputs[k])], base + off, sizes[k]) for k, off in staged.items()]
        after = [(base + staged[k] if k in staged else body_addr(t), state[k], sizes[k])
                 for k, t in enumerate(body.outputs) if t != body.inputs[k]]
        table = np.array(copies + after, np.int64).reshape(-1)
        cond_words = np.array([base + off for off, _ in cond_plan.checks] or [0], np.int64)
        body_words = np.array([base + off for off, _ in body_plan.checks] or [0], np.int64)
        (ck, cp), (bk, bp) = cond_engine.arrays_address, body_engine.arrays_address
        ptrs = dict(cond_kernels=ck, cond_params=cp, body_kernels=bk, body_params=bp,
                    cond_output=cond_addr(flag.index), copies=address(table), cond_checks=address(cond_words),
                    body_checks=address(body_words), status=addr("status"))
        return ptrs, dict(ints, out_copies=len(after)), {}, [cond_engine, body_engine, table, cond_words, body_words]
    return Step(op, "while", make, scratch_bytes=region + stage_bytes, check=checks)


def sub_check(what: str, role: str, index: int, check):
    """The check of a subgraph step's status area, read from the copy the WHILE kernel makes of it."""
    def wrapped(status):
        message = check(status)
        return f"{what}: in its {role} subgraph {index}: {message}" if message else None
    return wrapped


OPS = {"WHILE": OpSpec(prepare_while, max_version=1, output_types=None)}
