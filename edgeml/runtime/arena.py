"""The arena: one buffer for every intermediate tensor and scratch area, planned once per input shape."""
from __future__ import annotations

import bisect

import numpy as np

from cython_ops import load_pack
from cython_ops.engine import arena_requests, step_lifetimes
from edgeml.pages import large_bytes

ALIGN = 64


def lifetimes(steps: list, graph, constants: dict) -> dict:
    """Tensor index -> (first step, last step) it is live.  Graph inputs and outputs and variable (state) tensors
    live for the whole invoke: nothing may share their bytes."""
    end = len(steps)
    tensors = graph.tensors
    life = step_lifetimes(steps, len(tensors), constants)     # (C: a tenth of the Python loop's time)
    if life is None:
        life = lifetimes_in_python(steps, constants)
    for t in graph.inputs + graph.outputs + [t for t in life if tensors[t].is_variable]:
        life[t] = (0, end)
    return life


def lifetimes_in_python(steps: list, constants: dict) -> dict:
    """engine.step_lifetimes in Python: tensor index -> (first step, last step) of the non-constant tensors."""
    life = {}
    first = {}
    for k, step in enumerate(steps):
        op = step.op
        for tensors in (op.inputs, op.outputs):
            for t in tensors:
                if t < 0 or t in constants:
                    continue
                # steps come in order: a tensor's first step is the one that met it first, its last the latest
                first.setdefault(t, k)
                life[t] = k
    return {t: (first[t], k) for t, k in life.items()}


def merge_aliases(aliases: list, life: dict, graph) -> dict:
    """Gives each aliased output (RESHAPE and the like: the same bytes as its input) its input's region: the
    output leaves `life` and its span joins the input's.  Returns output -> the tensor whose region it shares.
    Variable (state) tensors keep regions of their own."""
    root = {}
    for out, src in aliases:
        src = root.get(src, src)
        if out not in life or src not in life or graph.tensors[out].is_variable or graph.tensors[src].is_variable \
                or out in graph.inputs:
            continue
        first, last = life.pop(out)
        f, l = life[src]
        life[src] = (min(f, first), max(l, last))
        root[out] = src
    return root


def plan_arena(sizes: dict, lifetimes: dict) -> tuple[dict, int]:
    """Greedy by size (as TFLite Micro's planner): biggest first (ties by str(key)), each at the lowest offset that
    does not overlap a placed buffer whose lifetime intersects its own.  Offsets in placement order, and the total.
    In one C call (load_pack.plan_buffers) for tensor indices and step areas; plan_arena_in_python is its twin."""
    planned = load_pack.plan_buffers(sizes, lifetimes, ALIGN)
    return planned if planned is not None else plan_arena_in_python(sizes, lifetimes)


def plan_arena_split(sizes: dict, lifetimes: dict) -> tuple:
    """plan_arena of tensors (indices) and step areas (("scratch" | "status", step)), split: (tensor index ->
    offset, step -> (scratch offset, bytes), step -> status offset, total), each in placement order."""
    planned = load_pack.plan_buffers(sizes, lifetimes, ALIGN, True)
    if planned is not None:
        return planned
    offsets, total = plan_arena_in_python(sizes, lifetimes)
    tensors, scratch, status = {}, {}, {}
    for key, o in offsets.items():
        if type(key) is not tuple:
            tensors[key] = o
        elif key[0] == "scratch":
            scratch[key[1]] = (o, sizes[key])
        else:
            status[key[1]] = o
    return tensors, scratch, status, total


def plan_arena_in_python(sizes: dict, lifetimes: dict) -> tuple[dict, int]:
    """plan_arena's order sorted in Python, placed by load_pack.place_buffers (place_in_order is its Python form)."""
    order = sorted(sizes, key=str_key)      # then by size, largest first: a stable sort keeps ties by str(key)
    order.sort(key=sizes.__getitem__, reverse=True)
    offsets, total = load_pack.place_buffers(*arena_requests(order, sizes, lifetimes, ALIGN))
    return dict(zip(order, offsets.tolist())), int(total)


def str_key(key) -> str:
    """str(key) of a tensor index or a (kind, step) area key, without the tuple's repr (which calls repr on each
    item: it made half of a small model's arena plan)."""
    return str(key) if type(key) is not tuple else f"('{key[0]}', {key[1]})"


def place_in_order(sizes, first, last) -> tuple[np.ndarray, int]:
    """load_pack.place_buffers in Python: buffers in the given order (sizes aligned), each at the lowest offset
    clear of the placed buffers whose lifetimes meet its own, read in offset order."""
    placed = []      # (offset, size, first, last), kept sorted: the conflicts of a buffer are read in offset order
    offsets = np.zeros(len(sizes), np.int64)
    total = 0
    for i, (size, f0, l0) in enumerate(zip(sizes, first, last)):
        offset = 0
        for o, s, f, l in placed:
            if l < f0 or f > l0:      # lifetimes apart: no conflict
                continue
            if offset + size <= o:
                break
            if o + s > offset:
                offset = o + s
        bisect.insort(placed, (offset, int(size), int(f0), int(l0)))
        offsets[i] = offset
        total = max(total, offset + int(size))
    return offsets, total


def allocate(total: int) -> tuple[np.ndarray, np.ndarray]:
    """(owner, arena): `total` zeroed bytes starting on an ALIGN boundary, and the array that owns them.  A large
    arena lies on huge pages (edgeml/pages.py: one fault per 2 MiB in the first invoke instead of one per 4 KiB,
    fewer TLB misses in every invoke, and a mapping an earlier interpreter handed back is reused)."""
    raw = large_bytes(total + ALIGN, zeroed=True)
    if raw is None:
        raw = np.zeros(total + ALIGN, dtype=np.uint8)
    shift = (-load_pack.data_address(raw)) % ALIGN
    return raw, (raw[shift:shift + total] if total else raw[:0])
