"""Model -> C: load and plan exactly as the Interpreter does (same reader, same prepares, same arena plan), with the
kernel choices of the target's instruction set, then resolve every pointer the steps pass to an arena offset or
an offset in one of the constant buffers, and write NAME.h / NAME.c / main.c / Makefile and the kernel headers."""
from __future__ import annotations

import bisect
import ctypes
import dataclasses
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from edgeml.codegen import c_text
from edgeml.codegen.kernel_sources import headers, kernel_functions
from edgeml.errors import EdgeMLError, UnsupportedOpError
from edgeml.runtime import kernels
from edgeml.runtime.compile import step_addr, step_checks
from edgeml.runtime.interpreter import Interpreter
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.plan import STATUS_BYTES, address

TARGETS = ("x86-64", "aarch64", "generic")
X86_ISAS = ("avx2", "avxvnni", "avx512", "avx512vnni", "scalar")
DISPATCH_LEVELS = ("avx512vnni", "avx512", "avx2", "scalar")     # AVX-VNNI-only CPUs take the AVX2 plan


@dataclass
class Region:
    """A constant buffer of the plan (packed weights, tables, constants) emitted as one const array."""
    start: int           # host address of its first byte
    end: int
    symbol: str = ""


@dataclass
class CStep:
    kernel: str
    function: str
    header: str
    describe: str
    ptrs: list           # per slot: None, ("arena", offset) or (region index, offset)
    ints: list
    floats: list
    checks: list         # arena offsets of its status words (nonzero after the call: bad run-time input)


@dataclass
class CTensor:
    name: str
    offset: int
    nbytes: int
    shape: tuple
    dtype: np.dtype
    scale: Optional[list] = None
    zero_point: Optional[list] = None
    axis: int = 0
    value_range: Optional[tuple] = None    # (lowest, highest, what) that invoke checks, or None


@dataclass
class CompiledC:
    """What compile_model wrote and the sizes it planned."""
    name: str
    out_dir: Path
    target: str
    isa: str
    arena_bytes: int
    weight_bytes: int                   # const arrays (packed weights, tables, constants)
    params_bytes: int                   # the per-step parameter table (const)
    inputs: list
    outputs: list
    files: list = field(default_factory=list)
    kernels: list = field(default_factory=list)


def target_isa(target: str, isa: Optional[str]) -> str:
    if target not in TARGETS:
        raise EdgeMLError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    if target == "generic":
        if isa not in (None, "scalar"):
            raise EdgeMLError(f"--target generic runs the scalar kernels only, not {isa!r}")
        return "scalar"
    if target == "aarch64":
        if isa not in (None, "neon"):
            raise EdgeMLError(f"--target aarch64 runs the NEON kernels, not {isa!r}")
        return "neon"
    if isa is None:
        return kernels.ISA if kernels.ISA in X86_ISAS else "avx2"
    if isa not in X86_ISAS:
        raise EdgeMLError(f"--isa for x86-64 must be one of {', '.join(X86_ISAS)}, got {isa!r}")
    return isa


@contextmanager
def kernel_config(isa: str):
    """Plans with the kernel choices (and weight packings) of `isa`: the op families read CONFIG at prepare time,
    so each module's binding of it is swapped for the duration (not thread-safe: one compile at a time)."""
    config = kernels.config_for(isa)
    current = kernels.CONFIG
    holders = [m for m in list(sys.modules.values())
               if m is not None and getattr(m, "__name__", "").startswith("edgeml")
               and getattr(m, "CONFIG", None) is current]
    for m in holders:
        m.CONFIG = config
    try:
        yield
    finally:
        for m in holders:
            m.CONFIG = current


def plan_for(model, isa: str, rounding: str):
    """The Interpreter's plan of `model` with `isa`'s kernels: malformed or unsupported models raise its errors."""
    with kernel_config(isa):
        interpreter = Interpreter(model, rounding=rounding)
    return interpreter.plan


def constant_arrays(plan) -> list:
    """Every array the plan's kernels may point into besides the arena."""
    found, todo = [], [plan.keep, list((plan.const_arrays or {}).values())]
    while todo:
        item = todo.pop()
        if isinstance(item, np.ndarray):
            if item.size:
                found.append(item)
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
    return found


def merge_regions(arrays: list) -> list:
    """Overlapping arrays (views of one buffer) become one region; regions sorted by address."""
    spans = sorted((address(a), address(a) + a.nbytes) for a in arrays if a.flags.c_contiguous)
    regions = []
    for start, end in spans:
        if regions and start < regions[-1].end:
            regions[-1].end = max(regions[-1].end, end)
        else:
            regions.append(Region(start, end))
    return regions


class PointerMap:
    """Host address -> ("arena", offset) or (region index, offset)."""

    def __init__(self, plan):
        self.base = address(plan.arena) if plan.arena_bytes else 0
        self.arena_bytes = plan.arena_bytes
        self.regions = merge_regions(constant_arrays(plan))
        self.starts = [r.start for r in self.regions]
        self.used = {}           # region index -> order of first use (symbols follow the steps, not addresses)

    def resolve(self, p: int, describe: str):
        if p == 0:
            return None
        if self.arena_bytes and self.base <= p <= self.base + self.arena_bytes:
            return ("arena", p - self.base)
        k = bisect.bisect_right(self.starts, p) - 1
        if k >= 0 and p <= self.regions[k].end:
            self.used.setdefault(k, len(self.used))
            return (k, p - self.regions[k].start)
        raise UnsupportedOpError(f"{describe}: a parameter points outside the arena and the model's constants; "
                                 "edgeml compile cannot emit it as C")


def c_steps(plan, pointers: PointerMap) -> list:
    """The plan's steps with every pointer resolved (the same make() calls the Engine's binding makes)."""
    functions = kernel_functions()
    base = pointers.base

    def tensor_address(t):
        if t in plan.constants:
            if t not in plan.const_arrays:
                plan.const_arrays[t] = np.ascontiguousarray(plan.constants[t])
            return address(plan.const_arrays[t])
        return base + plan.offsets[t]

    steps = []
    for k, step in enumerate(plan.steps):
        describe = step.op.describe()
        if step.kernel not in functions:
            raise UnsupportedOpError(f"{describe}: kernel {step.kernel} has no C declaration edgeml compile can call")
        ptrs, ints, floats, *extra = step.make(step_addr(plan, base, k, tensor_address))
        if extra or step.kernel == "while":
            raise UnsupportedOpError(f"{describe}: control flow ({step.kernel}) is not supported by edgeml compile")
        layout = layout_of(step.kernel)
        header, function = functions[step.kernel]
        checks = []
        if step.check is not None:
            checks = [plan.status_offsets[k] + STATUS_BYTES * j for j in range(len(step_checks(step)))]
        steps.append(CStep(step.kernel, function, header, describe,
                           [pointers.resolve(int(p), describe) for p in layout.ptrs(**ptrs)],
                           [int(v) for v in layout.ints(**ints)], [float(v) for v in layout.floats(**floats)],
                           checks))
    return steps


def c_tensor(plan, t: int) -> CTensor:
    tensor = plan.graph.tensors[t]
    shape = tuple(int(d) for d in plan.shapes[t])
    q = tensor.quant
    out = CTensor(tensor.name, plan.offsets[t], int(np.prod(shape, dtype=np.int64)) * tensor.dtype.itemsize,
                  shape, tensor.dtype, value_range=(plan.input_ranges or {}).get(t))
    if q is not None:
        out.scale = [float(s) for s in q.scale]
        out.zero_point = [int(z) for z in q.zero_point]
        out.axis = int(q.axis)
    return out


def variable_fills(plan) -> list:
    """(arena offset, bytes, fill byte value or None for zero, dtype) of each state tensor: reset_variables' values."""
    fills = []
    for t in sorted(plan.offsets):
        tensor = plan.graph.tensors[t]
        if not tensor.is_variable:
            continue
        nbytes = int(np.prod(plan.shapes[t], dtype=np.int64)) * tensor.dtype.itemsize
        zp = tensor.quant.scalar()[1] if tensor.dtype == np.int8 and tensor.quant is not None \
            and not tensor.quant.per_axis else 0
        fills.append((plan.offsets[t], nbytes, int(zp)))
    return fills


def region_bytes(region: Region) -> bytes:
    n = region.end - region.start
    return bytes((ctypes.c_uint8 * n).from_address(region.start)) if n else b""


def plan_unit(model, name: str, target: str, isa: str, rounding: str, prefix: str, blob_symbols: dict):
    """One plan as C: its steps with resolved pointers and its const arrays (identical bytes share one symbol
    across the variants of a dispatching build, through blob_symbols: bytes -> symbol)."""
    plan = plan_for(model, isa, rounding)
    pointers = PointerMap(plan)
    steps = c_steps(plan, pointers)
    symbols, blobs = {}, []
    for k in sorted(pointers.used, key=pointers.used.get):
        data = region_bytes(pointers.regions[k])
        if data not in blob_symbols:
            blob_symbols[data] = f"{name}_const{len(blob_symbols)}"
        symbols[k] = blob_symbols[data]
        if (symbols[k], data) not in blobs:
            blobs.append((symbols[k], data))
    graph = plan.graph
    return c_text.Unit(name=name, target=target, isa=isa, arena_bytes=plan.arena_bytes, steps=steps,
                       symbols=symbols, blobs=blobs, inputs=[c_tensor(plan, t) for t in graph.inputs],
                       outputs=[c_tensor(plan, t) for t in graph.outputs], variables=variable_fills(plan),
                       prefix=prefix)


def compile_model(model, out_dir, target: str = "x86-64", name: str = "model", isa: Optional[str] = None,
                  rounding: str = "double") -> CompiledC:
    """Writes `model` (a .tflite / .onnx path, bytes or Graph) as C into out_dir: NAME.h, NAME.c, main.c, a
    Makefile and the kernel headers under include/.  Raises the Interpreter's errors for models it refuses.
    isa (x86-64 only): the level the weights are packed for (default: this CPU's), or "dispatch": one plan per
    level in DISPATCH_LEVELS, the first the CPU runs chosen at the first call (more flash)."""
    if not name.isidentifier() or not name.isascii():
        raise EdgeMLError(f"--name must be a C identifier, got {name!r}")
    levels = DISPATCH_LEVELS if target == "x86-64" and isa == "dispatch" else (target_isa(target, isa),)
    blob_symbols = {}
    units = [plan_unit(model, name, target, level, rounding, f"{name}_{level}" if len(levels) > 1 else name,
                       blob_symbols) for level in levels]
    summary = units[0] if len(units) == 1 else dataclasses.replace(
        units[0], isa="dispatch (" + ", ".join(levels) + ")", arena_bytes=max(u.arena_bytes for u in units),
        steps=[s for u in units for s in u.steps], blobs=list({sym: data for u in units for sym, data in u.blobs}
                                                              .items()))
    out = Path(out_dir)
    (out / "include").mkdir(parents=True, exist_ok=True)
    files = []
    for path in headers():
        shutil.copyfile(path, out / "include" / path.name)
    for file_name, text in ((f"{name}.h", c_text.header(summary)), (f"{name}.c", c_text.source(units)),
                            ("main.c", c_text.main_program(summary)), ("Makefile", c_text.makefile(summary))):
        (out / file_name).write_text(text)
        files.append(out / file_name)
    return CompiledC(name=name, out_dir=out, target=target, isa=summary.isa if len(units) == 1 else "dispatch",
                     arena_bytes=summary.arena_bytes, weight_bytes=sum(len(data) for _, data in summary.blobs),
                     params_bytes=len(summary.steps) * c_text.PARAMS_STRUCT_BYTES,
                     inputs=summary.inputs, outputs=summary.outputs,
                     files=files, kernels=sorted({s.kernel for s in summary.steps}))


def default_name(model) -> str:
    """A C identifier from the model's file name ("model" otherwise)."""
    if isinstance(model, (str, os.PathLike)):
        stem = "".join(c if c.isalnum() else "_" for c in Path(model).stem)
        if stem and not stem[0].isdigit() and stem.isascii():
            return stem
    return "model"
