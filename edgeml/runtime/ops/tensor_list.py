"""What TensorFlow's converter lowers a TensorList write in a loop body to: CONCATENATION(SLICE(list, 0, [i, -1..]),
item, SLICE(list, [i + 1, 0..], -1)), whose SLICEs have begin / size computed at run time and so no shape a plan
could hold.  fold_runtime_slices rewrites each such CONCATENATION, with the SLICEs only it reads, into one op,
CONCATENATION_OF_SLICES, which reads every begin / size at run time and checks them (include/em_control.h)."""
from __future__ import annotations

import dataclasses

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op
from edgeml.runtime.layouts import SLICE_CONCAT_MAX_PIECES
from edgeml.runtime.ops.common import require_same_quant
from edgeml.runtime.ops.element_types import pad6_of
from edgeml.runtime.plan import Ctx, OpSpec, Step

INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))
NO_SLICE = -1          # the begin / size inputs of a piece that is a whole tensor


def fold_runtime_slices(graph: Graph) -> Graph:
    """`graph` with every CONCATENATION of (up to SLICE_CONCAT_MAX_PIECES) pieces, some of them SLICEs with run-time
    begin or size read by nothing else, as one CONCATENATION_OF_SLICES op; the graph itself when there is none.
    Its inputs are (source, begin, size) per piece, NO_SLICE for the begin / size of a whole tensor."""
    producer = {t: op for op in graph.ops for t in op.outputs}
    readers = {}
    for op in graph.ops:
        for t in op.inputs:
            readers[t] = readers.get(t, 0) + 1
    for t in graph.outputs:
        readers[t] = readers.get(t, 0) + 1

    def runtime_slice(t):
        op = producer.get(t)
        return op is not None and op.type == "SLICE" and len(op.inputs) == 3 and len(op.outputs) == 1 and \
            min(op.inputs) >= 0 and readers.get(t) == 1 and \
            any(graph.tensors[i].data is None for i in op.inputs[1:])

    folded, replaced = set(), {}
    for op in graph.ops:
        if op.type != "CONCATENATION" or not 0 < len(op.inputs) <= SLICE_CONCAT_MAX_PIECES or \
                not any(runtime_slice(t) for t in op.inputs):
            continue
        inputs = []
        for t in op.inputs:
            if runtime_slice(t):
                inputs.extend(producer[t].inputs)
                folded.add(id(producer[t]))
            else:
                inputs.extend([t, NO_SLICE, NO_SLICE])
        replaced[id(op)] = Op(index=op.index, type="CONCATENATION_OF_SLICES", version=1, inputs=inputs,
                              outputs=list(op.outputs), options=dict(op.options))
    if not replaced:
        return graph
    ops = [replaced.get(id(op), op) for op in graph.ops if id(op) not in folded]
    return dataclasses.replace(graph, ops=ops)


def prepare_concatenation_of_slices(ctx: Ctx, op: Op) -> Step:
    y = ctx.tensor(op, 0, "output")
    what = op.describe()
    pieces = [op.inputs[k:k + 3] for k in range(0, len(op.inputs), 3)]
    sources = [ctx.graph.tensors[s] for s, _, _ in pieces]
    shapes = [list(ctx.shape(t)) for t in sources]
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes) or rank > 6:
        raise UnsupportedOpError(f"{what}: pieces of ranks {[len(s) for s in shapes]} (one rank up to 6)")
    axis = int(op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise ModelFormatError(f"{what}: axis {op.options.get('axis')} outside rank {rank}")
    if op.options.get("fused_activation_function", 0):
        raise UnsupportedOpError(f"{what}: fused activation on CONCATENATION")
    index_types = set()
    for (s, b, n), t in zip(pieces, sources):
        if t.dtype != y.dtype or t.dtype.itemsize not in (1, 2, 4, 8):
            raise UnsupportedOpError(f"{what}: piece {t.describe()} of type {t.dtype}, output {y.dtype}")
        require_same_quant(op, t, y)
        for v in (b, n):
            if v == NO_SLICE:
                continue
            vt = ctx.graph.tensors[v]
            if vt.dtype not in INDEX_TYPES or tuple(ctx.shape(vt)) != (rank,):
                raise ModelFormatError(f"{what}: SLICE begin / size {vt.describe()} must be an int32 or int64 "
                                       f"vector of {rank} entries")
            index_types.add(vt.dtype)
    if len(index_types) > 1:
        raise ModelFormatError(f"{what}: SLICE begin and size vectors mix int32 and int64")
    whole = [sh for sh, (_, b, _) in zip(shapes, pieces) if b == NO_SLICE]
    # the pieces' extents along the axis are known at run time only: the file's declared output shape gives it,
    # the other dimensions follow the pieces (a whole piece, else a source), as after a batch resize
    known = whole[0] if whole else shapes[0]
    declared = list(y.shape)
    if len(declared) != rank:
        raise UnsupportedOpError(f"{what}: output {y.describe()} declares no shape of rank {rank}")
    out = [declared[d] if d == axis else known[d] for d in range(rank)]
    ctx.set_output(op, 0, tuple(out))
    unused = SLICE_CONCAT_MAX_PIECES - len(pieces)
    lead = 6 - rank
    ints = dict(pieces=len(pieces), rank=rank, axis=axis + lead, itemsize=y.dtype.itemsize,
                index_bytes=index_types.pop().itemsize if index_types else 4, out_dims=pad6_of(op, out),
                source_dims=[d for sh in shapes for d in pad6_of(op, sh)] + [0] * (6 * unused))

    def make(addr):
        def vector(v):
            return 0 if v == NO_SLICE else addr(v)
        return dict(output=addr(y.index), status=addr("status"),
                    sources=[addr(s) for s, _, _ in pieces] + [0] * unused,
                    begins=[vector(b) for _, b, _ in pieces] + [0] * unused,
                    sizes=[vector(n) for _, _, n in pieces] + [0] * unused), ints, {}

    def check(status):           # the kernel's int32 word: 1 + the piece that does not fit, pieces + 1, or 0
        value = int(status[:4].view(np.int32)[0])
        if not value:
            return None
        if value > len(pieces):
            return f"{what}: the run-time SLICEs' sizes along axis {axis} do not add up to the output's {out[axis]}"
        return (f"{what}: the run-time SLICE of piece {value - 1} ({sources[value - 1].describe()}, shape "
                f"{shapes[value - 1]}) has a begin / size outside it, or a shape that does not fit the output "
                f"{out} along axis {axis}")
    return Step(op, "slice_concat", make, check=check)


MOVED_TYPES = tuple(np.dtype(t) for t in (np.float32, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_))
OPS = {"CONCATENATION_OF_SLICES": OpSpec(prepare_concatenation_of_slices, output_types=MOVED_TYPES)}
