"""What compiling a graph produces: steps (kernel + parameters), the plan, and the context prepares work in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op


INT8_FLOAT32 = (np.dtype(np.int8), np.dtype(np.float32))


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
    checks: list = None      # (int32 status word a kernel sets on bad run-time input, message(value)); Ctx.run_check
    input_ranges: dict = None    # graph input index -> (lowest, highest, what): values set_input accepts

    def view(self, t: int) -> np.ndarray:
        """The arena region of tensor t as an array (no copy)."""
        tensor = self.graph.tensors[t]
        shape = self.shapes[t]
        n = int(np.prod(shape, dtype=np.int64)) * tensor.dtype.itemsize
        off = self.offsets[t]
        return self.arena[off:off + n].view(tensor.dtype).reshape(shape)


class Ctx:
    """What prepare functions read and write while the plan is built."""

    def __init__(self, graph: Graph, rounding: int, num_threads: int = 1):
        self.graph = graph
        self.rounding = rounding
        self.num_threads = num_threads    # big convs split their output pixels over this many threads
        self.shapes = {}
        self.constants = {}
        self.keep = []
        self.run_checks = []
        self.batch_changed = False
        self.input_ranges = {}
        for t in graph.tensors:
            if t.data is not None:
                self.constants[t.index] = t.data
                self.shapes[t.index] = t.shape

    # --- tensors -------------------------------------------------------------------------------
    def tensor(self, op: Op, position: int, kind: str = "input"):
        idx = (op.inputs if kind == "input" else op.outputs)
        if position >= len(idx) or idx[position] < 0:
            raise ModelFormatError(f"{op.describe()}: missing {kind} {position}")
        return self.graph.tensors[idx[position]]

    def shape(self, t) -> tuple:
        if t.index not in self.shapes:
            raise ModelFormatError(f"{t.describe()} is read before any op produces it")
        return self.shapes[t.index]

    def const(self, t, what: str) -> np.ndarray:
        if t.index not in self.constants:
            raise UnsupportedOpError(f"{what}: {t.describe()} must be a constant in the model file")
        return self.constants[t.index]

    def set_output(self, op: Op, position: int, shape: tuple):
        t = self.tensor(op, position, "output")
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ModelFormatError(f"{op.describe()}: inferred a negative dimension for {t.describe()}")
        if not self.batch_changed and t.shape and tuple(t.shape) != shape and int(np.prod(t.shape)) != 0:
            raise ModelFormatError(f"{op.describe()}: {t.describe()} is declared {list(t.shape)} but the op "
                                   f"produces {list(shape)}")
        if t.index in self.constants:
            raise ModelFormatError(f"{op.describe()} writes constant {t.describe()}")
        self.shapes[t.index] = shape

    def keep_array(self, a: np.ndarray) -> np.ndarray:
        """A contiguous copy of `a`, kept alive with the plan, starting on a 64-byte boundary: the kernels' vector
        loads of packed weights then never straddle two cache lines (numpy aligns to 16 bytes only, and a 64 KB
        recurrent matrix read with straddling AVX-512 loads costs up to 20% more, varying run to run)."""
        a = np.asarray(a)
        raw = np.empty(a.nbytes + KEEP_ALIGN, np.uint8)
        start = -raw.__array_interface__["data"][0] % KEEP_ALIGN
        out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
        out[...] = a
        self.keep.append(out)
        return out

    def run_check(self, status: np.ndarray, message: Callable):
        """A kept int32 word the kernel sets to a nonzero value when an input it reads at run time is out of
        range (the kernel then writes zeros, never out of bounds); Interpreter.invoke raises InputError with
        message(value)."""
        self.run_checks.append((status, message))


KEEP_ALIGN = 64                                  # bytes: one cache line, one AVX-512 vector


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]

