"""uint8 (asymmetric, TF1 / Coral-style) .tflite tensors, held as int8 in the IR.

A uint8 value q with zero point z is the int8 value q - 128 with zero point z - 128, exactly, so every uint8 tensor
becomes an int8 one (constants shifted here) and the int8 kernels run it.  Graph inputs and outputs keep their
uint8 tensors, joined to the int8 ones by a FLIP_SIGN_BIT op (q ^ 0x80).  Each op that read or wrote a uint8
tensor carries options[UINT8], so its prepare can take LiteRT's uint8 arithmetic where it differs from the int8
one (legacy multipliers, asymmetric weights, rounding of AVERAGE_POOL_2D, rescaling CONCATENATION).  Any other
op reads and writes genuine uint8 tensors: its uint8 inputs and outputs get uint8 twins joined to the int8 ones by
FLIP_SIGN_BIT ops, and its prepare takes uint8 as it is (or refuses it).
"""
from __future__ import annotations

import numpy as np

from cython_ops.tflite_hold import hold_as_int8
from edgeml.ir import UINT8, Graph, Op, Quantization, Tensor

FLIP_SIGN_BIT = "FLIP_SIGN_BIT"      # uint8 <-> int8 at the graph's boundary: q ^ 0x80
UINT8_DTYPE = np.dtype(np.uint8)

# ops whose uint8 form the int8 tensors reproduce (their prepares read options[UINT8] where LiteRT differs)
UINT8_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
    "CONCATENATION", "SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "HARD_SWISH",
    "MEAN", "QUANTIZE", "DEQUANTIZE",
    # byte moves, and ops that only compare values of one quantization (q - 128 keeps their order)
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "STRIDED_SLICE", "PAD", "PADV2", "SPLIT", "SPLIT_V", "PACK",
    "UNPACK", "REVERSE_V2", "SLICE", "TILE", "BROADCAST_TO", "GATHER", "GATHER_ND", "RESIZE_NEAREST_NEIGHBOR",
    "REDUCE_MAX", "REDUCE_MIN", "ARG_MAX", "ARG_MIN", "MAXIMUM", "MINIMUM",
})
UINT8_OPS |= {"DETECTION_POSTPROCESS"}    # dequantizes uint8 box encodings and scores as it does int8 ones
UINT8_OPS |= {"RESIZE_BILINEAR"}     # its uint8 kernel reads and writes int8-held bytes, flipping the sign bits


def _boundary_twin(graph: Graph, t: Tensor) -> int:
    """A uint8 tensor with t's name and quantization, for the user side of a graph input or output."""
    q = t.quant     # (a copy: hold_as_int8 shifts t's own zero points where they are)
    twin = Tensor(index=len(graph.tensors), name=t.name, shape=t.shape, dtype=UINT8_DTYPE,
                  quant=None if q is None else Quantization(q.scale, q.zero_point.copy(), q.axis))
    graph.tensors.append(twin)
    return twin.index


def _native_uint8(graph: Graph, op: Op, uint8: set, next_op: int) -> list:
    """[flips in] + [op] + [flips out]: op reads and writes uint8 twins of its int8-held uint8 tensors; a constant
    input keeps its uint8 data in its twin."""
    before, after = [], []
    for k, i in enumerate(op.inputs):
        if i in uint8:
            t = graph.tensors[i]
            twin = _boundary_twin(graph, t)
            if t.data is not None:
                graph.tensors[twin].data = t.data
            else:
                before.append(Op(index=next_op + len(before), type=FLIP_SIGN_BIT, version=1, inputs=[i],
                                 outputs=[twin]))
            op.inputs[k] = twin
    for k, o in enumerate(op.outputs):
        if o in uint8:
            twin = _boundary_twin(graph, graph.tensors[o])
            after.append(Op(index=next_op + len(before) + len(after), type=FLIP_SIGN_BIT, version=1,
                            inputs=[twin], outputs=[o]))
            op.outputs[k] = twin
    return before + [op] + after


def hold_uint8_as_int8(graph: Graph, file_array=None) -> Graph:
    """Rewrite every uint8 tensor of `graph` as int8 (see the module docstring); returns the graph.  file_array:
    the reader's writable copy of the file, where constants no other tensor shares are flipped in place."""
    uint8 = {t.index for t in graph.tensors if t.dtype is UINT8_DTYPE}      # (numpy's builtin dtypes are singletons)
    if not uint8:
        return graph
    ops, next_op = [], len(graph.ops)
    for op in graph.ops:
        if uint8.isdisjoint(op.inputs) and uint8.isdisjoint(op.outputs):
            ops.append(op)
        elif op.type in UINT8_OPS:
            op.options[UINT8] = True
            ops.append(op)
        else:
            wrapped = _native_uint8(graph, op, uint8, next_op)
            next_op += len(wrapped) - 1
            ops.extend(wrapped)
    graph.ops = ops
    first, last = [], []
    for k, i in enumerate(graph.inputs):
        if i in uint8 and graph.tensors[i].data is None:
            outer = _boundary_twin(graph, graph.tensors[i])
            graph.inputs[k] = outer
            first.append(Op(index=next_op, type=FLIP_SIGN_BIT, version=1, inputs=[outer], outputs=[i]))
            next_op += 1
    for k, i in enumerate(graph.outputs):
        if i in uint8:
            outer = _boundary_twin(graph, graph.tensors[i])
            graph.outputs[k] = outer
            last.append(Op(index=next_op, type=FLIP_SIGN_BIT, version=1, inputs=[i], outputs=[outer]))
            next_op += 1
    for i in {op.outputs[0] for op in first} | {op.inputs[0] for op in last}:
        graph.tensors[i].name = f"{graph.tensors[i].name}/int8"
    graphs = {id(g): g for g in (graph, *graph.subgraphs.values())}     # (the file's other subgraphs read it too)
    every = graph.tensors if len(graphs) == 1 else [t for g in graphs.values() for t in g.tensors]
    hold_as_int8(graph.tensors, uint8, Quantization, file_array, every, own_quantizations=True)
    graph.ops = first + graph.ops + last
    return graph
