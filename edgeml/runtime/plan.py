"""What compiling a graph produces: steps (kernel + parameters), the plan, and the context prepares work in."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from cython_ops.load_pack import data_address
from cython_ops import load_shell
from edgeml import pages
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op


INT8_FLOAT32 = (np.dtype(np.int8), np.dtype(np.float32))
STATUS_BYTES = 16                       # a step's status area (Step.check)
ndarray = np.ndarray


@dataclass(frozen=True)
class OpSpec:
    """One row of the op table (edgeml/runtime/registry.py), defined by the op's family module."""
    prepare: Callable                    # prepare(ctx, op) -> Step, [Step] or None (folded at load)
    max_version: int = 1                 # newest op version whose semantics are implemented
    output_types: tuple = INT8_FLOAT32   # types the op's outputs may have; None: its prepare checks them


@dataclass
class Step:
    op: Op
    kernel: str
    make: Callable           # make(addr) -> (pointers, ints, floats), dicts by the kernel's slot names
    #                          (layouts.layout_of(kernel)); addr(tensor index | "scratch") is an address
    scratch_bytes: int = 0
    macs: int = 0            # multiply-accumulates of CONV / DEPTHWISE / FULLY_CONNECTED; 0 for other ops
    check: Optional[Callable] = None   # check(status) -> error message or None: the kernel writes its 16-byte
    #                                    status area (addr("status")) on bad run-time input (and zeros instead of
    #                                    reading out of bounds); the Interpreter raises InputError with the message.
    #                                    A tuple of checks: that many consecutive areas from addr("status") (WHILE).
    #                                    The kernel writes the area's first int32 on every run, nonzero on failure
    alias: Optional[tuple] = None      # (output tensor, input tensor): the output is the input's bytes (RESHAPE and
    #                                    the like): the arena gives both one region, and the step's copy is a no-op


@dataclass
class Plan:
    graph: Graph
    shapes: dict             # tensor index -> shape after inference
    steps: list
    offsets: dict            # tensor index -> byte offset in the arena
    arena_bytes: int
    arena: np.ndarray
    constants: dict          # tensor index -> array (weights as read, folded constants)
    keep: list               # packed arrays the kernels point into
    engine: object = None
    lifetimes: dict = None   # tensor index -> (first step, last step) it is live; inputs/outputs span the invoke
    scratch: dict = None     # step index -> (byte offset, bytes) of that step's scratch buffer in the arena
    checks: list = None      # (byte offset of a step's int32 status word in the arena, message(value)): Step.check
    input_ranges: dict = None    # graph input index -> (lowest, highest, what): values set_input accepts
    arena_owner: np.ndarray = None    # the allocation `arena` lies in (aligned inside it)
    const_arrays: dict = None         # tensor index -> contiguous constant the kernels read (shared by clones)
    status_offsets: dict = None       # step index -> byte offset of its status word in the arena
    subplans: list = None             # unbound plans of subgraphs its control-flow steps run (their own arenas lie
    #                                   inside this plan's), so weight_bytes counts their weights

    @property
    def weight_bytes(self) -> int:
        """Bytes of packed weights, tables and constants the kernels read: shared by every clone of the plan."""
        return sum(a.nbytes for a in self.keep if isinstance(a, np.ndarray)) + \
            sum(a.nbytes for a in (self.const_arrays or {}).values()) + \
            sum(p.weight_bytes for p in (self.subplans or ()))

    def view(self, t: int) -> np.ndarray:
        """The arena region of tensor t as an array (no copy)."""
        return ndarray(self.shapes[t], self.graph.tensors[t].dtype, self.arena, self.offsets[t])


class Ctx:
    """What prepare functions read and write while the plan is built."""
    sparse = "auto"      # block-sparse int8 kernels: "auto" (by density), "off", "on" (ops.sparse_gemm)

    def __init__(self, graph: Graph, rounding: int, num_threads: int = 1, max_tensor_bytes: int = 1 << 31,
                 max_weight_bytes: int = 1 << 31):
        self.graph = graph
        self.rounding = rounding
        self.num_threads = num_threads    # big convs split their output pixels over this many threads
        self.float_exact = False          # float convs on the reference's multiply-then-add kernels, not FMA
        self.max_tensor_bytes = max_tensor_bytes
        self.max_weight_bytes = max_weight_bytes
        self.weight_bytes = 0
        self.shapes = {}
        self.producers = {}                # tensor index -> the op whose prepare set its shape
        self.constants = {}
        self.keep = []
        self.keep_pool = None              # [block, next free offset] that keep_new carves small arrays from
        self.batch_changed = False
        self.input_ranges = {}
        self.substitutes = {}    # op index -> the Op to prepare in its place (a PAD folded into the conv after it)
        self.sole_readers = None     # tensor -> its one reader op (None: several), built by the first PAD
        # control-flow ops (WHILE) plan their subgraphs through these, set by compile.py (which op modules cannot
        # import): plan_subgraph(graph, input shapes, external tensors) -> unbound Plan,
        # bind_subplan(plan, arena address, {tensor: address}) -> (Engine, addr); `enclosing` holds the graphs
        # whose control-flow ops are being prepared, so a subgraph that reaches itself is refused; plan_count
        # counts the subgraph plans of the whole model (shared by every context of it)
        self.plan_subgraph = None
        self.bind_subplan = None
        self.enclosing = ()
        self.subplans = []
        self.plan_count = [0]
        const_bytes = 0
        for t in graph.tensors:
            if t.data is not None:
                self.constants[t.index] = t.data
                self.shapes[t.index] = t.shape
                const_bytes += t.data.nbytes
        # the kept arrays of a large model on huge pages (edgeml/pages.py), its constants' bytes the first guess
        # of their size; None: heap blocks
        self.pages = pages.region_for(const_bytes)

    # --- tensors -------------------------------------------------------------------------------
    def tensor(self, op: Op, position: int, kind: str = "input"):
        idx = op.inputs if kind == "input" else op.outputs
        if position < len(idx):         # (prepares call this about five times per op: one index, one test)
            i = idx[position]
            if i >= 0:
                return self.graph.tensors[i]
        raise ModelFormatError(f"{op.describe()}: missing {kind} {position}")

    def shape(self, t) -> tuple:
        if t.index not in self.shapes:
            raise ModelFormatError(f"{t.describe()} is read before any op produces it")
        return self.shapes[t.index]

    def const(self, t, what: str) -> np.ndarray:
        if t.index not in self.constants:
            raise UnsupportedOpError(f"{what}: {t.describe()} must be a constant in the model file")
        return self.constants[t.index]

    def set_output(self, op: Op, position: int, shape: tuple):
        if load_shell.set_plain_output(self, op, position, shape):     # (the declared shape, nothing to refuse: in one C call)
            return
        t = self.tensor(op, position, "output")
        shape = tuple(map(int, shape))
        if shape and min(shape) < 0:
            raise ModelFormatError(f"{op.describe()}: inferred a negative dimension for {t.describe()}")
        declared = t.shape if type(t.shape) is tuple else tuple(t.shape)
        if (declared != shape and not self.batch_changed and declared and math.prod(declared) != 0
                and not (len(shape) == len(declared)
                         and all(a in t.dynamic_dims for a in range(len(shape)) if shape[a] != declared[a]))):
            raise ModelFormatError(f"{op.describe()}: {t.describe()} is declared {list(t.shape)} but the op "
                                   f"produces {list(shape)}")
        index = t.index
        if index in self.constants:
            raise ModelFormatError(f"{op.describe()} writes constant {t.describe()}")
        if index in self.shapes and self.producers.get(index) is not op:
            raise ModelFormatError(f"{op.describe()} writes {t.describe()}, which a graph input or an earlier op "
                                   "already provides")
        self.producers[index] = op
        # (check_size's message only when it refuses; an empty shape's other dimensions it checks too)
        if math.prod(shape) * t.dtype.itemsize > self.max_tensor_bytes or 0 in shape:
            self.check_size(shape, t.dtype.itemsize, f"{op.describe()}: output {t.describe()}")
        self.shapes[index] = shape

    def check_size(self, shape: tuple, itemsize: int, what: str):
        """Refuses a tensor larger than the arena budget before anything is sized from it, and an empty one whose
        other dimensions multiply past what any array can describe (numpy refuses to shape even a view so)."""
        nbytes = math.prod(shape) * itemsize
        if nbytes == 0 and math.prod(d for d in shape if d) * itemsize > SHAPE_SPAN_LIMIT:
            raise ModelFormatError(f"{what} has shape {list(shape)}: it holds no element, but its other dimensions "
                                   f"multiply past {SHAPE_SPAN_LIMIT} bytes")
        if nbytes > self.max_tensor_bytes:
            raise ModelFormatError(f"{what} of shape {list(shape)} needs {nbytes} bytes, more than the arena "
                                   f"budget of {self.max_tensor_bytes} (Interpreter max_arena_bytes)")

    def keep_array(self, a: np.ndarray) -> np.ndarray:
        """A contiguous copy of `a`, kept alive with the plan, starting on a 64-byte boundary: the kernels' vector
        loads of packed weights then never straddle two cache lines (numpy aligns to 16 bytes only, and a 64 KB
        recurrent matrix read with straddling AVX-512 loads costs up to 20% more, varying run to run)."""
        a = np.asarray(a)
        out = self.keep_new(a.shape, a.dtype)
        out[...] = a
        return out

    def keep_new(self, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised array kept like keep_array's copies (64-byte aligned, counted against the weight
        budget), for a packer to write its result into directly instead of copying it in."""
        known = DTYPES.get(dtype)      # (a dtype is falsy: `or` would not do)
        dtype = np.dtype(dtype) if known is None else known
        nbytes = math.prod(shape) * dtype.itemsize
        self.weight_bytes += nbytes
        if self.weight_bytes > self.max_weight_bytes:
            raise ModelFormatError(f"the packed weights need more than {self.max_weight_bytes} bytes "
                                   "(Interpreter max_weight_bytes)")
        if self.pages is not None:
            taken = self.pages.take(nbytes, KEEP_ALIGN)
            if taken is not None:
                out = np.ndarray(shape, dtype, taken[0], taken[1])
                self.keep.append(out)
                return out
        if nbytes > KEEP_POOL_LARGEST:
            raw = np.empty(nbytes + KEEP_ALIGN, np.uint8)
            out = np.ndarray(shape, dtype, raw, -data_address(raw) % KEEP_ALIGN)
        else:     # small arrays (biases, multipliers, tables) side by side in shared blocks: one allocation each
            pool = self.keep_pool
            if pool is None or pool[1] + nbytes > KEEP_POOL_BYTES:
                raw = np.empty(KEEP_POOL_BYTES + KEEP_ALIGN, np.uint8)
                pool = self.keep_pool = [raw, -data_address(raw) % KEEP_ALIGN]
            out = np.ndarray(shape, dtype, pool[0], pool[1])
            pool[1] += -(-max(nbytes, 1) // KEEP_ALIGN) * KEEP_ALIGN
        self.keep.append(out)
        return out


SHAPE_SPAN_LIMIT = 1 << 62                       # bytes: an empty tensor's nonzero dimensions, multiplied
KEEP_ALIGN = 64                                  # bytes: one cache line, one AVX-512 vector
# the dtype of each scalar type prepares name (np.dtype() of a type costs more than this look-up)
DTYPES = {t: np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
                                   np.float32, np.float64, np.bool_)}
KEEP_POOL_BYTES = 1 << 16                        # a shared block of small kept arrays
KEEP_POOL_LARGEST = 4096                         # larger kept arrays get an allocation of their own


# address(a): where array a's first element lives (numpy's __array_interface__["data"][0], read through the
# buffer protocol in C: a tenth of the time, and every step's make() takes several)
address = data_address

