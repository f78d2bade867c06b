"""`edgeml inspect`: what a person checks before deploying a model, from the compiled plan itself."""
from __future__ import annotations

import os

import numpy as np

from edgeml.bench.measure import model_facts, param_tensors
from edgeml.runtime.packing_sparse import block_density


def quant_text(q) -> str:
    if q is None:
        return "-"
    if not q.per_axis:
        s, zp = q.scalar()
        return f"scale {s:.6g} zp {zp}"
    zps = np.unique(q.zero_point)
    zp = f"zp {int(zps[0])}" if zps.size == 1 else f"zp {int(zps.min())}..{int(zps.max())}"
    return f"per-axis (axis {q.axis}, {q.scale.size} scales {q.scale.min():.3g}..{q.scale.max():.3g}, {zp})"


def _steps_text(span, n_steps: int) -> str:
    first, last = span
    if first == 0 and last >= n_steps:
        return "all"
    return f"{first}" if first == last else f"{first}-{last}"


def block_sparsity_lines(plan) -> list:
    """Each int8 CONV_2D / FULLY_CONNECTED's zero weights, its density of nonzero 16x4 blocks (what the sparse
    kernels skip) and the kernel chosen at load."""
    rows = []
    for k, s in enumerate(plan.steps):
        if s.op.type not in ("CONV_2D", "FULLY_CONNECTED") or len(s.op.inputs) < 2:
            continue
        w = plan.constants.get(s.op.inputs[1])
        if w is None or w.dtype != np.int8 or not w.size:
            continue
        w2 = w.reshape(w.shape[0], -1)
        rows.append(f"  {k:4d} {s.op.index:3d} {s.op.type:20s} {100 * float((w2 == 0).mean()):8.1f} "
                    f"{block_density(w2):13.3f}  {s.kernel}")
    if not rows:
        return []
    return ["", "weight sparsity of int8 CONV_2D / FULLY_CONNECTED (blocks: 16 output x 4 input channels)",
            f"  {'step':>4s} {'op':>3s} {'type':20s} {'%zeros':>8s} {'block density':>13s}  kernel"] + rows


def _short(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[:limit - 3] + "..."


def inspect_report(it, path: str) -> str:
    g, plan = it.graph, it.plan
    facts = model_facts(plan)
    lines = []
    add = lines.append
    size = os.path.getsize(path) if isinstance(path, str) and os.path.isfile(path) else None
    add(f"{path}: {g.source} model, {facts['n_ops']} ops ({facts['n_steps']} kernel steps), {len(g.tensors)} tensors"
        + (f", file {size} bytes" if size is not None else ""))
    const_bytes = sum(t.nbytes for t in g.tensors if t.data is not None)
    add(f"  params {facts['params']} ({facts['param_bytes']} bytes of weights and biases; all constants "
        f"{const_bytes} bytes), MACs {facts['macs']}, arena {facts['arena_bytes']} bytes")
    for kind, details in (("input ", it.get_input_details()), ("output", it.get_output_details())):
        for d in details:
            q = g.tensors[d["tensor_index"]].quant
            add(f"  {kind} {d['index']} '{d['name']}' {np.dtype(d['dtype']).name} {d['shape'].tolist()} "
                f"{quant_text(q)}")

    add("")
    add("ops (step order; tensors by index, c = constant; MACs per inference)")
    add(f"  {'step':>4s} {'op':>3s} {'type':20s} {'kernel':24s} {'inputs -> outputs':30s} {'output shape':18s} "
        f"{'MACs':>10s} {'%MACs':>6s}")
    total_macs = facts["macs"] or 1
    for k, s in enumerate(plan.steps):
        ins = ",".join(f"{t}c" if t in plan.constants else str(t) for t in s.op.inputs if t >= 0)
        outs = ",".join(str(t) for t in s.op.outputs)
        shape = " ".join(str(list(plan.shapes[t])) for t in s.op.outputs if t in plan.shapes)
        add(f"  {k:4d} {s.op.index:3d} {s.op.type:20s} {s.kernel:24s} {ins + ' -> ' + outs:30s} {shape:18s} "
            f"{s.macs:10d} {100 * s.macs / total_macs:6.1f}")
    lines.extend(block_sparsity_lines(plan))

    add("")
    add("tensors (kind: in/out = graph input/output, act = activation in the arena, w = weight counted in "
        "params, const = other constant)")
    add(f"  {'id':>3s} {'kind':5s} {'dtype':7s} {'shape':18s} {'bytes':>8s} {'arena offset':>12s} {'live steps':>10s}"
        f"  quantization / name")
    weights = {t.index for t in param_tensors(g)}
    used = {t for op in g.ops for t in list(op.inputs) + list(op.outputs) if t >= 0}
    lifetimes = plan.lifetimes or {}
    for t in g.tensors:
        if t.index not in used and t.index not in g.inputs and t.index not in g.outputs:
            continue
        if t.index in g.inputs:
            kind = "in"
        elif t.index in g.outputs:
            kind = "out"
        elif t.index in plan.constants:
            kind = "w" if t.index in weights else "const"
        else:
            kind = "act"
        shape = list(plan.shapes.get(t.index, t.shape))
        nbytes = int(np.prod(shape, dtype=np.int64)) * t.dtype.itemsize
        off = plan.offsets.get(t.index)
        live = _steps_text(lifetimes[t.index], len(plan.steps)) if t.index in lifetimes else "-"
        add(f"  {t.index:3d} {kind:5s} {t.dtype.name:7s} {str(shape):18s} {nbytes:8d} "
            f"{'-' if off is None else off:>12} {live:>10s}  {quant_text(t.quant)}  '{_short(t.name)}'")

    add("")
    buffers = [(off, int(np.prod(plan.shapes[t], dtype=np.int64)) * g.tensors[t].dtype.itemsize,
                f"tensor {t}", lifetimes.get(t)) for t, off in plan.offsets.items()]
    buffers += [(off, size, f"scratch of step {k}", (k, k)) for k, (off, size) in (plan.scratch or {}).items()]
    buffers.sort(key=lambda b: (b[0], b[2]))
    total = sum(b[1] for b in buffers)
    add(f"arena plan: {plan.arena_bytes} bytes for {len(buffers)} buffers totalling {total} bytes "
        f"(buffers whose lifetimes do not overlap share memory; offsets are 64-byte aligned)")
    add(f"  {'offset':>8s} {'end':>8s} {'bytes':>8s} {'live steps':>10s}  buffer")
    for off, size, what, span in buffers:
        add(f"  {off:8d} {off + size:8d} {size:8d} {_steps_text(span, len(plan.steps)) if span else '-':>10s}  {what}")
    return "\n".join(lines)
