"""The element-wise speed work (issue 15 part A) against LiteRT's reference kernels on converter-made models
(tests/speed_models.py): folded PADs, aliased RESHAPEs, vector broadcasts and table activations stay bit-exact in
int8 and within tolerance in float32; the plan really folds, aliases and vectorizes; run()'s fast paths give
what the checked path gives; get_output(copy=False) is a read-only view."""
from __future__ import annotations

import numpy as np
import pytest

import edgeml
import model_cache
import speed_models as M
from edgeml.errors import InputError
from edgeml.runtime import kernels
from test_tflite_ops import (N_INPUTS, assert_contains_intended_ops, check_against_reference, check_int8_model,
                             float_inputs, input_shapes)


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "speed_models", M)


@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_int8_is_bit_exact_with_litert_reference(models, name):
    check_int8_model(models.get(name, "int8"), M.SPECS[name], name)


@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_float_matches_litert_reference(models, name):
    spec = M.SPECS[name]
    model = models.get(name, "float")
    assert_contains_intended_ops(model, spec, "float")
    check_against_reference(model, float_inputs(spec, input_shapes(model), N_INPUTS), f"{name} float")


@pytest.mark.parametrize("kind", ["int8", "float"])
def test_a_pad_before_a_valid_conv_is_folded_into_it(models, kind):
    for name in ("pad_then_dwconv_stride2_valid", "pad_then_conv_valid_5ch"):
        it = edgeml.Interpreter(models.get(name, kind))
        assert "PAD" in {op.type for op in it.graph.ops}
        assert "PAD" not in [s.op.type for s in it.plan.steps], name


def test_a_pad_with_two_readers_stays_and_reshapes_share_their_input(models):
    it = edgeml.Interpreter(models.get("pad_two_readers_and_reshapes", "int8"))
    assert [s.op.type for s in it.plan.steps].count("PAD") >= 1
    reshapes = [s for s in it.plan.steps if s.op.type == "RESHAPE"]
    assert reshapes and all(s.alias for s in reshapes)
    for s in reshapes:
        out, src = s.alias
        assert it.plan.offsets[out] == it.plan.offsets[src]


def test_table_ops_run_as_one_lookup(models):
    it = edgeml.Interpreter(models.get("leaky_relu_and_relu6_large", "int8"))
    assert {s.kernel for s in it.plan.steps} == {"lut_int8"}
    it = edgeml.Interpreter(models.get("squeeze_excite_mul_hard_swish", "int8"))
    # AVX2 / AVX-VNNI: HARD_SWISH's arithmetic vectorized, checked against the table at load (ops/activations.py)
    want = "hard_swish_int8_avx2" if kernels.CONFIG.isa in ("avx2", "avxvnni") else "lut_int8"
    assert [s.kernel for s in it.plan.steps if s.op.type == "HARD_SWISH"] == [want]


def test_run_fast_paths_equal_the_checked_path(models):
    """run() on one int8 array, and on float data (quantized / dequantized by the vector kernels), gives what
    set_input / invoke / get_output and numerics' host-side quantization give; non-finite floats are refused."""
    from edgeml import numerics as Q
    model = models.get("squeeze_excite_mul_hard_swish", "int8")
    it = edgeml.Interpreter(model)
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    rng = np.random.default_rng(2)
    for _ in range(5):
        x = rng.integers(-128, 128, size=d["shape"], dtype=np.int64).astype(np.int8)
        it.set_input(x)
        it.invoke()
        want = it.get_output()
        np.testing.assert_array_equal(it.run(x), want)
        xf = (3.0 * rng.standard_normal(d["shape"])).astype(np.float64)
        xf.flat[:4] = (np.arange(4) - d["zero_point"] + 0.5) * d["scale"]     # rounding ties
        it.set_input(Q.quantize_array(xf, d["scale"], d["zero_point"]))
        it.invoke()
        want = Q.dequantize_array(it.get_output(), o["scale"], o["zero_point"])
        np.testing.assert_array_equal(it.run(xf), want)
    huge = np.full(d["shape"], -1e300)        # float64 beyond float32: saturates, as the checked path does
    it.set_input(Q.quantize_array(huge, d["scale"], d["zero_point"]))
    it.invoke()
    np.testing.assert_array_equal(it.run(huge), Q.dequantize_array(it.get_output(), o["scale"], o["zero_point"]))
    bad = np.zeros(d["shape"], np.float32)
    bad.flat[7] = np.nan
    with pytest.raises(InputError, match="not finite"):
        it.run(bad)


def test_get_output_without_copy_is_a_read_only_view(models):
    it = edgeml.Interpreter(models.get("leaky_relu_and_relu6_large", "int8"))
    d = it.get_input_details()[0]
    it.set_input(np.ones(d["shape"], np.int8))
    it.invoke()
    view = it.get_output(0, copy=False)
    np.testing.assert_array_equal(view, it.get_output(0))
    with pytest.raises(ValueError):
        view[...] = 0
    it.set_input(np.full(d["shape"], -5, np.int8))
    it.invoke()
    np.testing.assert_array_equal(view, it.get_output(0))     # the view follows the interpreter's buffer


@pytest.mark.parametrize("rounding", [0, 1])
def test_softmax_by_table_equals_the_per_element_fixed_point(rounding):
    """SOFTMAX int8 looks up the fixed-point exp of max - x (softmax_lut_int8); the per-element arithmetic
    (softmax_int8, checked against BUILTIN_REF by test_tflite_ops) gives the same bytes for any scale / beta
    (diff_min cutting off early or never), row length and input."""
    from cython_ops.activation import softmax_table
    from edgeml.runtime.kernels import Engine, kernel_address
    from edgeml.runtime.layouts import layout_of
    from edgeml.runtime.ops.activations import softmax_int8_params
    from edgeml.runtime.plan import address

    def run(kernel, ptrs, ints, keep):
        layout = layout_of(kernel)
        Engine([(kernel_address(kernel), layout.ptrs(**ptrs), [int(v) for v in layout.ints(**ints)], [])],
               keepalive=keep).invoke()
    rng = np.random.default_rng(rounding)
    for scale, beta in ((1 / 256, 1.0), (0.1, 1.0), (0.5, 3.0), (0.02, 0.4), (2e-6, 1.0), (1.0, 1.0), (0.0625, 10.0)):
        p = softmax_int8_params(scale, beta, rounding)
        table = softmax_table(p["input_multiplier"], p["input_left_shift"], p["diff_min"], rounding)
        for rows, depth in ((1, 1), (3, 7), (2, 91), (1, 1001), (17, 16), (5, 300)):
            x = rng.integers(-128, 128, (rows, depth), dtype=np.int64).astype(np.int8)
            x[0, :depth // 3] = 127 - rng.integers(0, 3, depth // 3)       # near-ties with the max
            want, got = np.zeros_like(x), np.zeros_like(x)
            run("softmax_int8", dict(input=address(x), output=address(want)),
                dict(rows=rows, depth=depth, in_mult=p["input_multiplier"], in_left_shift=p["input_left_shift"],
                     diff_min=p["diff_min"], mode=rounding), [x, want])
            run("softmax_lut_int8", dict(input=address(x), output=address(got), table=address(table)),
                dict(rows=rows, depth=depth), [x, got, table])
            np.testing.assert_array_equal(got, want, err_msg=f"scale {scale} beta {beta} {rows}x{depth}")


@pytest.mark.parametrize("rounding", [0, 1])
def test_softmax_table_builds_the_two_value_rows_only_when_asked(rounding):
    """The pairs section (rows of two, looked up by their difference) is built only for a SOFTMAX of depth 2; the
    exp and sum sections are the same either way, and a plan's table has pairs exactly when its rows are pairs."""
    from cython_ops.activation import softmax_table
    from edgeml.ir import Graph, Op
    from edgeml.runtime.compile import compile_graph
    from edgeml.runtime.ops.activations import softmax_int8_params
    from path_cases import tensor
    p = softmax_int8_params(0.1, 1.0, rounding)
    args = (p["input_multiplier"], p["input_left_shift"], p["diff_min"], rounding)
    full, bare = softmax_table(*args), softmax_table(*args, False)
    np.testing.assert_array_equal(bare[:512], full[:512])
    assert not bare[512:].any() and full[512:].any()
    for depth in (2, 3):
        ts = [tensor(0, (4, depth), np.int8, 0.1, -7), tensor(1, (4, depth), np.int8, 1 / 256, -128)]
        plan = compile_graph(Graph(ts, [Op(0, "SOFTMAX", 1, [0], [1], dict(beta=1.0))], [0], [1]), {}, rounding)
        (table,) = [a for a in plan.keep if isinstance(a, np.ndarray) and a.dtype == np.int32 and a.size == 640]
        assert bool(table[512:].any()) == (depth == 2)


@pytest.mark.parametrize("rounding", [0, 1])
def test_softmax_of_a_long_row_near_its_maximum_rounds_to_the_bottom(rounding):
    """1000 equal inputs: each probability is 1/1000, i.e. -128 at the int8 output scale 1/256.  The sum of exps
    then needs more than 8 bits over one, so the final shift is 32 or more: once an undefined C shift that gave 127
    on x86 (LiteRT's reference aborts on it).  Both the per-element and the table kernel."""
    from cython_ops.activation import softmax_table
    from edgeml.runtime.kernels import Engine, kernel_address
    from edgeml.runtime.layouts import layout_of
    from edgeml.runtime.ops.activations import softmax_int8_params
    from edgeml.runtime.plan import address

    p = softmax_int8_params(0.0313711911, 1.0, rounding)
    table = softmax_table(p["input_multiplier"], p["input_left_shift"], p["diff_min"], rounding)
    for depth, value in ((1000, 127), (1000, -128), (600, 5), (4000, 0)):
        x = np.full((2, depth), value, np.int8)
        x[1, 0] = 127 if value != 127 else 126
        for kernel, ptrs, ints in (
                ("softmax_int8", {}, dict(in_mult=p["input_multiplier"], in_left_shift=p["input_left_shift"],
                                          diff_min=p["diff_min"], mode=rounding)),
                ("softmax_lut_int8", {"table": address(table)}, {})):
            y = np.zeros_like(x)
            layout = layout_of(kernel)
            Engine([(kernel_address(kernel), layout.ptrs(input=address(x), output=address(y), **ptrs),
                     [int(v) for v in layout.ints(rows=2, depth=depth, **ints)], [])],
                   keepalive=[x, y, table]).invoke()
            assert (y[0] == -128).all(), (kernel, depth, value, np.unique(y[0]))
            assert (y[1, 1:] <= y[1, 0]).all(), (kernel, depth, value)


def test_transposes_equal_numpy():
    """TRANSPOSE on int8 / int16 / float32 / int64 against numpy: the 2-D blocked walk (the input's stride-1 dim
    second to last after merging, as NCHW -> NHWC, with and without a partial last block), the general walk and
    the memcpy runs."""
    from edgeml.ir import Graph, Op, Quantization, Tensor
    from edgeml.runtime.compile import compile_graph
    rng = np.random.default_rng(5)
    quant = {np.int8: Quantization(np.array([0.1]), np.array([3], np.int64), 0),
             np.int16: Quantization(np.array([0.1]), np.array([0], np.int64), 0)}
    cases = [((1, 3, 20, 17), (0, 2, 3, 1)), ((1, 3, 224, 224), (0, 2, 3, 1)), ((2, 5, 40), (0, 2, 1)),
             ((2, 70, 3), (1, 0, 2)), ((4, 9, 15), (2, 1, 0)), ((3, 100), (1, 0)), ((65, 2, 3), (1, 2, 0)),
             ((2, 3, 4, 5, 6), (4, 0, 3, 1, 2)), ((1, 129, 64), (0, 2, 1)), ((5, 7), (0, 1))]
    for dtype in (np.int8, np.int16, np.float32, np.int64):
        for shape, perm in cases:
            x = (rng.standard_normal(shape) * 50).astype(dtype)
            out = tuple(shape[p] for p in perm)
            q = quant.get(dtype)
            ts = [Tensor(0, "x", shape, np.dtype(dtype), q, None),
                  Tensor(1, "perm", (len(perm),), np.dtype(np.int32), None, np.array(perm, np.int32)),
                  Tensor(2, "y", out, np.dtype(dtype), q, None)]
            plan = compile_graph(Graph(ts, [Op(0, "TRANSPOSE", 1, [0, 1], [2], {})], [0], [2]), {}, 0)
            plan.view(0)[...] = x
            plan.engine.invoke()
            np.testing.assert_array_equal(plan.view(2), np.transpose(x, perm), err_msg=f"{dtype} {shape} {perm}")
