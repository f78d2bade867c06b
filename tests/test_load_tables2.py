"""Issue 15, load time of the table ops: cython_ops/load_tables.pyx's one-call forms against their Python twins.

- int8 ADD / SUB / MUL against a constant (load_tables.constant_operand_table, twin
  ops/elementwise.constant_operand_lut): the same plan (kernel, integers, every table byte) or the same error, over
  random scales, zero points, activations and roundings, per-channel / per-row / scalar constants on either side,
  constants with few distinct values (rows copied),
  odd channel counts, batches 1..3, periods 1..64 and past 64, broadcasts inside the period, zero-size outputs,
  constants not contiguous or not matching their declared shape;
- the affine form of a requantization table (load_tables.affine_form, twin tables.affine_form): the same dict or
  None for random requantization tables, constant, shift, curved and random tables and requantization tables
  with one entry changed; a QUANTIZE's plan on the AVX2 path is the same with either."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_tables
from cython_ops.elementwise import requantize_table
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError
from edgeml.ir import Graph, Op
from edgeml.runtime import tables
from edgeml.runtime.compile import compile_graph, new_context
from edgeml.runtime.ops import elementwise
from load_twins import assert_same_plan, forced_isa, plan_contents
from path_cases import tensor

SHELL = [(load_tables, "constant_operand_table")]
# (input shape, constant shape, constant first): per channel, per row, scalar, trailing 2-D periods, a broadcast
# inside the period (the Python path's), odd channels, batches 2 and 3, rank 5 and 6, periods 64 and 65, empty
SHAPES = [((1, 5, 7, 3), (3,), False), ((1, 5, 7, 3), (3,), True), ((2, 4, 4, 17), (1, 1, 17), False),
          ((3, 6, 5), (5,), True), ((1, 3, 3, 5), (1,), False), ((2, 3, 7), (), True), ((1, 4, 3, 5), (3, 5), False),
          ((1, 2, 4, 3), (4, 1), True), ((1, 2, 2, 3, 2, 3), (3, 2, 3), False), ((1, 8, 64), (64,), False),
          ((1, 8, 65), (65,), True), ((2, 1, 3, 7), (1, 1, 1, 7), False), ((0, 4, 5), (5,), False),
          ((1, 4, 1, 9), (1, 9), True), ((1, 1, 1, 1), (1,), False)]


def binary_graph(which, shape, const_shape, first, rng, act=0, data=None):
    scales = [float(v) for v in rng.uniform(0.002, 0.6, 3)]
    zps = [int(v) for v in rng.integers(-128, 128, 3)]
    out = tuple(np.broadcast_shapes(shape, const_shape))
    if data is None:
        data = rng.integers(-128, 128, const_shape).astype(np.int8)
    k = 0 if first else 1
    shapes = [const_shape, shape] if first else [shape, const_shape]
    ts = [tensor(j, shapes[j], np.int8, scales[j], zps[j], data if j == k else None) for j in (0, 1)]
    ts.append(tensor(2, out, np.int8, scales[2], zps[2]))
    return Graph(ts, [Op(0, which, 1, [0, 1], [2], {"fused_activation_function": act})], [1 - k], [2])


def taken(monkeypatch) -> list:
    """The shell's results during the test, recorded."""
    seen = []
    shell = load_tables.constant_operand_table

    def spy(*args):
        seen.append(shell(*args))
        return seen[-1]
    monkeypatch.setattr(load_tables, "constant_operand_table", spy)
    return seen


@pytest.mark.parametrize("which", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("rounding", [0, 1])
def test_constant_operand_tables_plan_as_the_python_path(which, rounding, monkeypatch):
    rng = np.random.default_rng(len(which) * 3 + rounding)
    seen = taken(monkeypatch)
    for shape, const_shape, first in SHAPES:
        for act in (0, 1, 2, 3):
            seed = int(rng.integers(1 << 30))
            assert_same_plan(lambda: binary_graph(which, shape, const_shape, first, np.random.default_rng(seed), act),
                             SHELL, rounding)
    for shape, const_shape, first in (((1, 6, 48), (48,), False), ((2, 3, 3, 64), (1, 64), True)):
        for seed in range(3):        # few distinct values: repeated rows copied, not recomputed
            values = np.random.default_rng(seed).choice(np.array([-128, -3, 0, 7, 127], np.int8), const_shape)
            assert_same_plan(lambda: binary_graph(which, shape, const_shape, first, np.random.default_rng(seed), 1,
                                                  values), SHELL, rounding)
    took = [s for s in seen if s is not None]
    periods = {s[1] for s in took}
    assert {1, 3, 5, 17, 64} <= periods and 65 not in periods, periods
    assert len(took) >= 4 * 10          # the shell takes every table case but the broadcast inside the period


def test_constant_operand_table_declines_what_the_python_path_decides(monkeypatch):
    """A constant broadcast inside its period, one not contiguous and one whose data does not match its declared
    shape go the Python way (which plans them or refuses them with its own error)."""
    rng = np.random.default_rng(7)
    strided = rng.integers(-128, 128, 14).astype(np.int8)[::2]
    cases = [((1, 4, 3, 5), (3, 1), False, None), ((1, 5, 7), (7,), True, strided),
             ((1, 5, 7), (7,), False, rng.integers(-128, 128, 5).astype(np.int8)),
             ((1, 5, 7), (7,), False, rng.integers(-128, 128, 9).astype(np.int8)),
             ((1, 5, 7), (7,), False, rng.integers(-128, 128, 7).astype(np.int16))]
    for shape, const_shape, first, data in cases:
        g = binary_graph("MUL", shape, const_shape, first, rng, 0, data)
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        ints = elementwise.load_ops.int8_binary_shell(ctx, g.ops[0], 2, elementwise.INT8)
        assert ints is not None
        kept = len(ctx.keep)
        assert load_tables.constant_operand_table(ctx, g.ops[0], tables.table_kernel("mul_int8"), False, ints,
                                                  elementwise.INT8) is None
        assert len(ctx.keep) == kept and ctx.weight_bytes == 0
        assert_same_plan(lambda: binary_graph("MUL", shape, const_shape, first, np.random.default_rng(3), 0, data),
                         SHELL)


def test_constant_operand_table_refuses_an_oversized_table_as_the_python_path():
    """The tables count against max_weight_bytes: the same refusal either way."""
    def build():
        return binary_graph("ADD", (1, 9, 64), (64,), False, np.random.default_rng(2))
    for shells in (SHELL, []):
        with pytest.raises(ModelFormatError, match="packed weights need more than 1000 bytes"):
            with pytest.MonkeyPatch.context() as patch:
                for module, name in shells:
                    patch.setattr(module, name, lambda *args: None)
                compile_graph(build(), {}, 0, max_weight_bytes=1000)


def requant_tables(rng, count):
    for k in range(count):
        ratio = float(np.exp(rng.uniform(np.log(0.002), np.log(40.0))))
        zi, zo, rounding = int(rng.integers(-128, 128)), int(rng.integers(-128, 128)), k % 2
        m, sh = Q.quantize_multiplier(ratio, rounding)
        lo = int(rng.choice([-128, min(126, max(-128, zo)), int(rng.integers(-128, 0))]))
        hi = int(rng.choice([127, int(rng.integers(lo + 1, 128))]))
        yield np.frombuffer(requantize_table(zi, zo, m, sh, lo, hi, rounding), np.int8).copy()


@pytest.mark.parametrize("seed", range(4))
def test_affine_form_equals_the_numpy_search(seed):
    rng = np.random.default_rng(seed)
    found = 0
    for table in requant_tables(rng, 400):
        form = tables.affine_form(table)
        assert load_tables.affine_form(table) == form
        found += form is not None
        bent = table.copy()             # one entry off: no affine form (or another), the same either way
        k = int(rng.integers(256))
        bent[k] = (int(bent[k]) + 128 + int(rng.choice([1, 255]))) % 256 - 128        # (wrapping)
        assert load_tables.affine_form(bent) == tables.affine_form(bent)
    assert found > 300
    every = np.arange(-128, 128)
    logistic = np.roll(np.round(255 / (1 + np.exp(-every / 20.0)) - 128).astype(np.int8), 128)
    others = [logistic, rng.integers(-128, 128, 256).astype(np.int8), (np.arange(256) + 7).astype(np.uint8),
              np.full(256, -3, np.int8), np.roll(np.clip(every // 3, -9, 9).astype(np.int8), 128),
              np.roll((every * -2 // 5).astype(np.int8), 128), np.zeros(259, np.int8)]
    for table in others:
        assert load_tables.affine_form(table) == tables.affine_form(table)


def test_affine_form_refuses_a_short_or_wide_table():
    with pytest.raises(ValueError, match="255 bytes"):
        load_tables.affine_form(np.zeros(255, np.int8))
    with pytest.raises(ValueError, match="256 single bytes"):
        load_tables.affine_form(np.zeros(256, np.int16))


@pytest.mark.parametrize("which", ["QUANTIZE", "RELU6", "MUL"])
def test_affine_step_plans_as_the_numpy_search(which, monkeypatch):
    """On the AVX2 path, with the search let in for small ops: the same lut_affine_int8 step either way."""
    monkeypatch.setattr(tables, "AFFINE_MIN_ELEMENTS", 0)
    shape = (2, 5, 7, 9)

    def build():
        if which == "MUL":
            return binary_graph("MUL", shape, (1,), False, np.random.default_rng(4))
        return Graph([tensor(0, shape, np.int8, 0.031, -7), tensor(1, shape, np.int8, 0.047, 12)],
                     [Op(0, which, 1, [0], [1], {})], [0], [1])
    with forced_isa("avx2"):
        fast = plan_contents(build())
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(load_tables, "affine_form", tables.affine_form)
            assert plan_contents(build()) == fast
    assert fast[0][0][0] == "lut_affine_int8", fast[0]
