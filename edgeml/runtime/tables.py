"""256-entry tables of int8 / uint8 element-wise ops, built at load by running the op's own scalar kernel (the
reference arithmetic) on every input byte: the vector lookup (cython_ops/include/em_lut.h) then gives the same
bits as the arithmetic by construction."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from cython_ops import load_tables
from edgeml.runtime.kernels import CONFIG, ISA, KERNELS, Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.load_profile import timed
from edgeml.runtime.plan import Step, address

ALL_BYTES = np.arange(256, dtype=np.uint8)       # table index = the input's byte

# a kernel body's name suffix -> the paths (kernels.ISA) whose CPUs can run it
BODY_PATHS = {"_avx512": ("avx512", "avx512vnni"), "_vnni": ("avx512vnni",), "_avxvnni": ("avxvnni", "avx512vnni"),
              "_avx2": ("avx2", "avxvnni", "avx512", "avx512vnni")}


def runnable(kernel: str) -> str:
    """`kernel`, or its portable twin (the same layout and, by the kernel-path tests, the same bits) when this CPU
    cannot run its vector body: a plan made for another path (tests force kernels.CONFIG to every path on any
    host) still builds its tables here instead of dying on an illegal instruction."""
    for suffix, paths in BODY_PATHS.items():
        if kernel.endswith(suffix) and ISA not in paths:
            base = kernel[:-len(suffix)]
            if base in KERNELS and layout_of(base) is layout_of(kernel):
                return base
    return kernel


@lru_cache(maxsize=None)
def table_kernel(kernel: str) -> int:
    """The address of the kernel that builds `kernel`'s tables on this CPU (runnable's choice)."""
    return kernel_address(runnable(kernel))


@timed("of which: 256-entry tables")
def byte_table(kernel: str, ints: dict, floats: dict = None, out_dtype=np.int8) -> np.ndarray:
    """The outputs of element-wise `kernel` (slots input, output and n) for the 256 input bytes 0..255, i.e. the
    int8 values 0..127, -128..-1 in that order; `ints` / `floats`: its other slots.  One C call
    (load_tables.byte_table); its twin is engine_byte_table."""
    layout = layout_of(kernel)
    return load_tables.byte_table(kernel_address(runnable(kernel)), layout.index("ptrs", "input"),
                                  layout.index("ptrs", "output"), layout.ints(**ints, n=256),
                                  layout.floats(**floats) if floats else (), np.empty(256, out_dtype))


def engine_byte_table(fn: int, input_slot: int, output_slot: int, ints: list, floats, out: np.ndarray):
    """load_tables.byte_table's twin: the kernel run as a one-step Engine over a copy of the 256 bytes."""
    x = ALL_BYTES.copy()
    ptrs = [0] * (max(input_slot, output_slot) + 1)
    ptrs[input_slot], ptrs[output_slot] = address(x), address(out)
    Engine([(fn, ptrs, [int(v) for v in ints], [float(v) for v in floats])], keepalive=[x, out]).invoke()
    return out


@timed("of which: 256-entry tables")
def periodic_byte_table(kernel: str, constant: np.ndarray, constant_first: bool, ints: dict,
                        other_ptrs: dict = None, out: np.ndarray = None) -> np.ndarray:
    """Row p (of len(constant) rows): the outputs of binary int8 `kernel` (slots input1, input2, output, dims,
    strides1, strides2, `ints` and `other_ptrs`) for the 256 input bytes against constant[p], the constant as
    the first input when `constant_first`; flattened, row-major, written into the first period * 256 bytes of
    `out` (contiguous int8) when given.  The kernel runs in one C call (load_tables.periodic_byte_table; its
    twin is engine_periodic_byte_table)."""
    period = len(constant)
    c = np.ascontiguousarray(constant, dtype=np.int8)
    x = ALL_BYTES.view(np.int8).copy()
    y = np.zeros(period * 256, np.int8) if out is None else out
    along_rows, along_bytes = [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]     # constant: one per row; x: one per column
    first, second = (c, x) if constant_first else (x, c)
    s1, s2 = (along_rows, along_bytes) if constant_first else (along_bytes, along_rows)
    layout = layout_of(kernel)
    slots = dict(ints, dims=[1, 1, 1, 1, period, 256], strides1=s1, strides2=s2, threads=1)    # (on this thread)
    ptrs = dict(input1=address(first), input2=address(second), output=address(y))
    ptrs.update(other_ptrs or {})
    load_tables.periodic_byte_table(kernel_address(runnable(kernel)), layout.ptrs(**ptrs), layout.ints(**slots), y,
                                    period, 1)
    return y


def engine_periodic_byte_table(fn: int, ptrs: list, ints: list, out: np.ndarray, period: int, itemsize: int):
    """load_tables.periodic_byte_table's twin: the kernel run as a one-step Engine."""
    Engine([(fn, ptrs, [int(v) for v in ints], [])]).invoke()
    return out


SIGNED = np.arange(-128, 128, dtype=np.int64)       # int8 values in order; their table index is value & 255
AFFINE_SLOPE_STEPS = 256          # multipliers tried either side of the least-squares slope
# Elements from which an AVX2 table op looks for its affine form: the search cost ~2.5 ms at load in numpy (now
# 0.05-0.15 ms in C, load_tables.affine_form), the arithmetic saves ~0.07 ns per element per invoke over the lookup
# (deeplab's 279 K-element QUANTIZE: 48 -> 28 us); the bound was set for the numpy search and is kept as it was.
AFFINE_MIN_ELEMENTS = 1 << 18


def affine_form(table: np.ndarray):
    """dict(mult, add_low, add_high, split, shift, lo, hi) such that clamp((x * mult + add) >> shift, lo, hi) with
    add = add_high where x >= split, else add_low, equals table[byte of x] for all 256 int8 x, with |mult| < 2^15
    and the sums within int32 (em_lut_affine_int8_step's arithmetic).  Two additions because a requantization
    rounds half away from zero: its ties break down below the input zero point and up above it.  None when the
    table is no such map (curved or non-monotone functions) or is a plain shift table[v] = v + c, which the lookup
    does with one byte addition.  Requantizations (int8 QUANTIZE, RELU / RELU6 / RELU_N1_TO_1 rescales) are."""
    t = np.asarray(table[:256]).view(np.int8).astype(np.int64)
    if np.array_equal((t - t[0]) % 256, np.arange(256)):
        return None
    t = t[SIGNED & 255]                                   # by int8 value, ascending
    lo, hi = int(t.min()), int(t.max())
    if lo == hi:
        return dict(mult=0, add_low=lo, add_high=lo, split=-128, shift=0, lo=lo, hi=hi)
    inner = (t > lo) & (t < hi)
    fit = inner if inner.sum() >= 2 else np.ones(256, bool)
    slope = least_squares_slope(SIGNED[fit], t[fit])
    if not 1e-6 < abs(slope) < 2 ** 14:
        return None
    shift = min(22, math.frexp(32000 / abs(slope))[1] - 1)       # floor(log2(32000 / |slope|)), exactly
    centre = round(slope * 2 ** shift)                            # (ties to even)
    for stride in (4, 1):          # a coarse scan first: the feasible multipliers usually span several
        mults = np.arange(centre - AFFINE_SLOPE_STEPS, centre + AFFINE_SLOPE_STEPS + 1, stride, dtype=np.int64)
        found = affine_pieces(t, lo, hi, shift, mults[np.abs(mults) < 2 ** 15], centre)
        if found is not None:
            break
    else:
        return None
    mult, add_low, add_high, split = found
    add = np.where(SIGNED >= split, add_high, add_low)
    v = SIGNED * mult + add
    if np.abs(v).max() >= 2 ** 31 or not np.array_equal(np.clip(v >> shift, lo, hi), t):
        return None
    return dict(mult=mult, add_low=add_low, add_high=add_high, split=split, shift=shift, lo=lo, hi=hi)


def least_squares_slope(x: np.ndarray, t: np.ndarray) -> float:
    """The least-squares slope of t over x (int64 arrays, at least two distinct x), from exact integer moments and
    one correctly rounded division: (n sum(xt) - sum(x) sum(t)) / (n sum(x^2) - sum(x)^2), so that
    load_tables.affine_form (its C twin) computes the same double.  (Over int8 values every sum is far below
    2^53.)"""
    n, sx, st = len(x), int(x.sum()), int(t.sum())
    return (n * int((x * t).sum()) - sx * st) / (n * int((x * x).sum()) - sx * sx)


def affine_pieces(t: np.ndarray, lo: int, hi: int, shift: int, mults: np.ndarray, centre: int):
    """(mult, add_low, add_high, split) for affine_form, the multiplier from `mults` nearest `centre` for which
    additions exist on x < split and on x >= split (split -128: one piece); None when none does."""
    big = np.int64(2) ** 40
    edge = np.full((len(mults), 1), big)
    # bounds on add at each x: x * mult + add >= low (unless clamped up to lo), <= high (unless clamped to hi)
    low = np.where(t > lo, t << shift, -big)[None, :] - mults[:, None] * SIGNED[None, :]
    high = np.where(t < hi, ((t + 1) << shift) - 1, big)[None, :] - mults[:, None] * SIGNED[None, :]
    # column j: the bounds over x < j - 128 (below) and over x >= j - 128 (above)
    least_below = np.maximum.accumulate(np.concatenate([-edge, low], 1), axis=1)
    most_below = np.minimum.accumulate(np.concatenate([edge, high], 1), axis=1)
    least_above = np.maximum.accumulate(np.concatenate([low, -edge], 1)[:, ::-1], axis=1)[:, ::-1]
    most_above = np.minimum.accumulate(np.concatenate([high, edge], 1)[:, ::-1], axis=1)[:, ::-1]
    ok = (least_below <= most_below) & (least_above <= most_above)        # [mult, split column 0..256]
    if not ok.any():
        return None
    rows = np.flatnonzero(ok.any(axis=1))
    k = rows[np.argmin(np.abs(mults[rows] - centre))]
    j = int(np.flatnonzero(ok[k])[0])
    mult = int(mults[k])
    add_low = int((least_below[k, j] + most_below[k, j]) // 2) if j > 0 else 0
    add_high = int((least_above[k, j] + most_above[k, j]) // 2) if j < 256 else add_low
    return mult, add_low, add_high, j - 128


def lut_step(op, input_index: int, output_index: int, n: int, table: np.ndarray) -> Step:
    """An int8 -> int8 table op's step: lut_int8 looking up `table` (kept by the caller), or on the AVX2 paths,
    whose lookup costs sixteen byte shuffles per 32 bytes, lut_affine_int8 computing it when the op is large
    enough to repay the search (AFFINE_MIN_ELEMENTS) and affine_form finds the table to be an affine map."""
    wanted = CONFIG.isa in ("avx2", "avxvnni") and n >= AFFINE_MIN_ELEMENTS
    form = load_tables.affine_form(table) if wanted else None      # (its twin: affine_form)
    if form is not None:
        ints = dict(form, n=n)

        def make_affine(addr):
            return dict(input=addr(input_index), output=addr(output_index)), ints, {}
        return Step(op, "lut_affine_int8", make_affine, 0)

    def make(addr):
        return dict(input=addr(input_index), output=addr(output_index), table=address(table)), dict(n=n), {}
    return Step(op, "lut_int8", make, 0)
