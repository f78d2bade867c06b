"""Issue 15, load time: the uint8 CONCATENATION that rescales its inputs (uint8 held as int8, LiteRT's
ConcatenationWithScaling) prepared in one C call (cython_ops/load_concat.pyx) plans what its Python twin
(ops/shape.prepare_concatenation with requant.uint8_rescale_table) plans: kernels, integers and kept tables over
ranks 1-6, negative axes, size-1 and empty dims, more inputs than one step takes, inputs copied beside inputs
rescaled, a constant input among variable ones; its tables are the Python arithmetic's bytes over many scales; every
form it declines keeps the Python path's plan or its exact error."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_concat
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import UINT8, Graph, Op, Quantization
from edgeml.runtime.compile import new_context
from edgeml.runtime.requant import uint8_rescale_table
from load_twins import assert_same_plan
from path_cases import tensor

INT8 = np.dtype(np.int8)
SHELL = [(load_concat, "uint8_concatenation_shell")]


def concat_graph(shapes, axis, params, out_params, out_shape=None, constant=(), dtypes=None, uint8=True,
                 **options):
    """CONCATENATION of len(shapes) inputs (int8, (scale, zero point) each from `params`; the positions in
    `constant` constant) into one output with out_params."""
    tensors = []
    for k, (s, (scale, zp)) in enumerate(zip(shapes, params)):
        data = np.arange(int(np.prod(s)), dtype=np.int64).astype(np.int8).reshape(s) if k in constant else None
        tensors.append(tensor(k, s, (dtypes or {}).get(k, np.int8), scale, zp, data))
    if out_shape is None:
        a = axis + len(shapes[0]) if axis < 0 else axis
        out_shape = tuple(shapes[0][:a]) + (sum(s[a] for s in shapes),) + tuple(shapes[0][a + 1:])
    n = len(shapes)
    tensors.append(tensor(n, out_shape, np.int8, *out_params))
    opts = dict(axis=axis, **options)
    if uint8:
        opts[UINT8] = True
    inputs = [k for k in range(n) if k not in constant]
    return Graph(tensors, [Op(0, "CONCATENATION", 1, list(range(n)), [n], opts)], inputs, [n])


def random_cases(rng):
    cases = []
    for shapes, axis in [([(1, 4, 4, 3), (1, 4, 4, 5)], 3), ([(2, 3), (2, 1), (2, 4)], -1), ([(5,), (1,), (7,)], 0),
                         ([(1, 1, 1, 1, 1, 2), (1, 1, 1, 1, 1, 3)], -1), ([(2, 1, 3), (2, 4, 3)], 1),
                         ([(3, 0, 2), (3, 2, 2)], 1), ([(1, 2, 3, 4, 5), (1, 2, 1, 4, 5)], -3),
                         ([(2, 3)] * 17, 0), ([(1, 5, 5, 17)] * 3, 3)]:
        params = [(float(10.0 ** rng.uniform(-3, 0)), int(rng.integers(-128, 128))) for _ in shapes]
        out = (float(10.0 ** rng.uniform(-3, 0)), int(rng.integers(-128, 128)))
        params[len(params) // 2] = out            # (one input already at the output's quantization: copied)
        cases.append((shapes, axis, params, out, ()))
    cases.append(([(2, 3), (2, 3), (2, 3)], 0, [(0.1, 0), (0.2, -5), (0.05, 0)], (0.1, 0), (1,)))   # a constant input
    return cases


@pytest.mark.parametrize("seed", range(3))
def test_uint8_concatenation_plans_equal_the_python_path(seed):
    for shapes, axis, params, out, constant in random_cases(np.random.default_rng(seed)):
        build = lambda: concat_graph(shapes, axis, params, out, constant=constant)     # noqa: E731
        ctx = new_context(build(), {}, 0, 1, 1 << 31, 1 << 31)
        made = load_concat.uint8_concatenation_shell(ctx, ctx.graph.ops[0], INT8, UINT8)
        assert made is not None and sum(t is None for t in made[4]) >= 1, (shapes, axis)
        steps = assert_same_plan(build, SHELL)[0]
        assert {s[0] for s in steps} == {"concat_lut"}, steps
        assert len(steps) == -(-len(shapes) // 14)


def test_rescale_tables_equal_the_python_arithmetic_over_many_scales():
    """Scale ratios over eight decades, zero points at the int8 ends: each table the shell returns is
    uint8_rescale_table's bytes, and where a value would pass int32 (LiteRT's conversion is undefined there) the
    shell declines and the Python path refuses."""
    rng = np.random.default_rng(5)
    refused = 0
    for _ in range(1500):
        s_in, s_out = (float(10.0 ** v) for v in rng.uniform(-5, 3, 2))
        zp_in, zp_out = (int(v) for v in rng.choice([-128, 127, 0, *rng.integers(-128, 128, 3)], 2))
        g = concat_graph([(1, 3), (1, 2)], 1, [(s_in, zp_in), (s_out, zp_out)], (s_out, zp_out))
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        made = load_concat.uint8_concatenation_shell(ctx, g.ops[0], INT8, UINT8)
        try:
            expected = uint8_rescale_table(s_in, zp_in, s_out, zp_out)
        except ValueError:
            assert made is None, (s_in, zp_in, s_out, zp_out)
            refused += 1
            continue
        if np.float32(s_in) == np.float32(s_out) and zp_in == zp_out:
            assert made[4][0] is None
        else:
            assert made[4][0].tobytes() == expected.tobytes(), (s_in, zp_in, s_out, zp_out)
        assert made[4][1] is None
    assert 0 < refused < 300, refused


PER_CHANNEL = Quantization(np.array([0.1, 0.2]), np.zeros(2, np.int64), 1)
A, B = (0.1, 3), (0.05, -7)


def with_quant(g, k, quant):
    g.tensors[k].quant = quant
    return g


# (what, graph, error type or None (planned by the Python path), message fragment): each declined by the shell
DECLINED = [
    ("every input constant", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, B], A, constant=(0, 1)), None, None),
    ("a copying concat (no uint8 option)", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, A], A, uint8=False), None,
     None),
    ("a fused activation", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, B], A, fused_activation_function=1),
     UnsupportedOpError, "fused activation on CONCATENATION"),
    ("input types differ", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, B], A, dtypes={1: np.int16}),
     UnsupportedOpError, "input types differ"),
    ("dims off the axis differ", lambda: concat_graph([(2, 3), (3, 3)], 1, [A, B], A, out_shape=(2, 6)),
     ModelFormatError, "do not concatenate on axis 1"),
    ("ranks differ", lambda: concat_graph([(2, 3), (2, 3, 1)], 0, [A, B], A, out_shape=(4, 3)), ModelFormatError,
     "do not concatenate on axis 0"),
    ("the axis outside the rank", lambda: concat_graph([(2, 3), (2, 3)], 2, [A, B], A, out_shape=(2, 3)),
     ModelFormatError, "axis 2 outside rank 2"),
    ("an input without quantization", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, (None, 0)], A), ModelFormatError,
     "has no quantization parameters"),
    ("a per-channel output", lambda: with_quant(concat_graph([(2, 2), (2, 2)], 0, [A, B], A), 2, PER_CHANNEL),
     ModelFormatError, "must be quantized per tensor"),
    ("a zero input scale", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, (0.0, 0)], A), ModelFormatError,
     "has quantization scale 0.0"),
    ("a wrongly declared output", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, B], A, out_shape=(4, 4)),
     ModelFormatError, "is declared [4, 4] but the op produces [4, 3]"),
    ("a zero point past int32", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, (0.1, 1 << 33)], A), ModelFormatError,
     "(zero point 8589934720) to output scale 0.1 gives values past int32"),
    ("a scale ratio past float32", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, (1e30, 0)], (1e-30, 0)),
     ModelFormatError, "to output scale 1e-30 gives values past int32"),
    ("a rescaled byte past float32", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, (3e36, 0)], (1.0, 0)),
     ModelFormatError, "from input scale 3e+36 (zero point 128) to output scale 1 gives values past int32"),
    ("a rescaled byte past int32", lambda: concat_graph([(2, 3), (2, 3)], 0, [A, (2e7, 0)], (1.0, 0)),
     ModelFormatError, "from input scale 2e+07 (zero point 128) to output scale 1 gives values past int32"),
]


@pytest.mark.parametrize("case", DECLINED, ids=[c[0] for c in DECLINED])
def test_declined_concatenations_keep_the_python_paths_result(case):
    what, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    if error is None or "declared" not in fragment:
        assert load_concat.uint8_concatenation_shell(ctx, g.ops[0], INT8, UINT8) is None
        assert 2 not in ctx.shapes
    found = assert_same_plan(make, SHELL, error=error, fragment=fragment)
    if error is not None:
        assert found[1].startswith("op 0 (CONCATENATION v1)")
