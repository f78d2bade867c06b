"""The AVX2 bodies of issue 18's fourth round under forced ISA paths in subprocesses: byte tables that are affine
maps computed instead of looked up (lut_affine_int8, em_lut.h: requantizations, the RELU family, int8 QUANTIZE)
against the tables on every byte at every vector position and against the requantization formulas on whole
graphs (odd sizes, batch 2, tails shorter than a vector, in place, both rounding modes); the hybrid LSTM's rescale
of the integer sums onto the float gates (em_lstm_hybrid_scaled_add: 8 lanes, the scalar operations in their
order) against the scalar path on the converter's hybrid LSTMs (odd cell counts, stacked layers, batch 2), and on
the avxvnni path their int8 sums and the int8 LSTM's by 256-bit vpdpbusd in the u8 x s8 packing
(em_lstm_dots_u8s8_avxvnni) against the scalar path and LiteRT's reference kernels; int8
LSTM's cells 16 at a time on AVX2 (em_lstm_cells_avx2, gemmlowp's int16 logistic / tanh as em_q16a_*) against
LiteRT and, over all 65536 inputs, the scalar activations; int8
SOFTMAX's row sums of exps gathered 8 at a time on AVX2 (em_softmax_int8_by_table_avx2) against the reference
formulas of test_datamove_paths2 (rows of 8 .. 41 values, 1001, 4100 near the maximum: a wrapped sum, 1 .. 9 rows);
int8 MEAN over rows of fewer than 16 (or a multiple of 16 plus a few) kept columns, whose last columns AVX2 now sums
with the 16-byte loads of the others (em_mean_rows_i8_avx2), against the integer sum and its requantization.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import lstm_hybrid_models as M
import lstm_models as LM
import model_cache
from test_datamove_paths2 import CHECK as DATAMOVE_CHECK
from test_kernel_paths import PATHS, forced_path, run_on_path
from test_lstm import ISA_CHECK as LSTM_INT8_CHECK
from test_lstm_hybrid import SEQUENCE_RUN, inputs, reference

AFFINE_CHECK = r'''
import sys
import numpy as np
from cython_ops.elementwise import requantize_table
from edgeml import numerics as Q
from edgeml.ir import Graph, Op
from edgeml.runtime.kernels import CONFIG, Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.plan import address
from edgeml.runtime import tables as tables_module
from edgeml.runtime.tables import affine_form
from tests.path_cases import binary_expect, compare, mbqm, run_graph, tensor

EVERY = np.arange(-128, 128, dtype=np.int8)


def lookup(x, y, form):
    layout = layout_of("lut_affine_int8")
    Engine([(kernel_address("lut_affine_int8"), layout.ptrs(input=address(x), output=address(y)),
             [int(v) for v in layout.ints(n=x.size, **form)], [])], keepalive=[x, y]).invoke()


def requant_tables(rng, count):
    for k in range(count):
        s_in = float(np.exp(rng.uniform(np.log(1e-4), np.log(1.0))))
        ratio = float(np.exp(rng.uniform(np.log(0.02), np.log(12.0))))
        zi, zo, rounding = int(rng.integers(-128, 128)), int(rng.integers(-128, 128)), k % 2
        m, sh = Q.quantize_multiplier(ratio, rounding)
        lo = int(rng.choice([-128, max(-128, zo), int(rng.integers(-128, 0))]))
        hi = int(rng.choice([127, int(rng.integers(lo + 1, 128))]))
        yield np.frombuffer(requantize_table(zi, zo, m, sh, lo, hi, rounding), np.int8).copy(), (zi, zo, ratio)


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, found, tables = [], 0, 0
    for table, desc in requant_tables(rng, 300):
        form = affine_form(table)
        tables += 1
        if form is None:
            continue
        found += 1
        for shift in (0, 5, 31):                        # every byte at several vector positions
            x = np.roll(np.tile(EVERY, 2), shift)
            y = np.zeros(x.size + 32, np.int8)
            lookup(x, y, form)
            if not np.array_equal(y[:x.size], table[x.view(np.uint8)]) or y[x.size:].any():
                failures.append(f"{desc} {form} shift {shift}: differs")
    if found < 0.85 * tables:
        failures.append(f"only {found} of {tables} requantization tables found affine")
    table, _ = next(requant_tables(np.random.default_rng(5), 1))
    form = affine_form(table)
    for n in list(range(0, 70)) + [255, 257, 1000]:      # the vector loop's tails
        x = rng.integers(-128, 128, n).astype(np.int8)
        y = np.zeros(n + 32, np.int8)
        lookup(x, y, form)
        if not np.array_equal(y[:n], table[x.view(np.uint8)]) or y[n:].any():
            failures.append(f"n={n} differs")
    x = rng.integers(-128, 128, 999).astype(np.int8)
    want = table[x.view(np.uint8)]
    lookup(x, x, form)                                   # in place
    if not np.array_equal(x, want):
        failures.append("in place differs")
    logistic = np.roll(np.round(255 / (1 + np.exp(-EVERY / 20.0)) - 128).astype(np.int8), 128)   # by byte
    for curved in (logistic, rng.integers(-128, 128, 256).astype(np.int8), (np.arange(256) + 7).astype(np.uint8)):
        if affine_form(curved) is not None:
            failures.append("a curved, random or shift table taken for affine")

    small = Graph([tensor(0, (1, 300), np.int8, 0.03, 5), tensor(1, (1, 300), np.int8, 0.05, -2)],
                  [Op(0, "QUANTIZE", 1, [0], [1], {})], [0], [1])
    small_kernels = set()          # below AFFINE_MIN_ELEMENTS the search is not worth its load time: a lookup
    run_graph(small, [np.zeros((1, 300), np.int8)], 0, small_kernels)
    if small_kernels != {"lut_int8"}:
        failures.append(f"a 300-element QUANTIZE took {small_kernels}")
    tables_module.AFFINE_MIN_ELEMENTS = 0      # the graphs below are small: let them take the affine form
    kernels = set()      # whole graphs: int8 QUANTIZE and RELU6 against the requantization formulas
    for k in range(12):
        shape = [(2, 5, 7, 9), (1, 3, 11), (1, 1, 1, 31), (2, 33)][k % 4]
        rounding = k % 2
        s_in, s_out = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.01, 0.1))
        zi, zo = int(rng.integers(-100, 100)), int(rng.integers(-100, 100))
        which = "QUANTIZE" if k < 6 else "RELU6"
        g = Graph([tensor(0, shape, np.int8, s_in, zi), tensor(1, shape, np.int8, s_out, zo)],
                  [Op(0, which, 1, [0], [1], {})], [0], [1])
        x = rng.integers(-128, 128, shape).astype(np.int8)
        x.flat[:256] = EVERY[: min(256, x.size)]
        if which == "QUANTIZE":
            m, sh = Q.quantize_multiplier(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)), rounding)
            lo, hi = -128, 127
        else:
            m, sh = Q.quantize_multiplier(float(Q.F32(s_in) / Q.F32(s_out)), rounding)
            lo = max(-128, zo)
            hi = min(127, zo + int(Q.round_half_away(float(Q.F32(6.0) / Q.F32(s_out)))))
        want = np.clip(zo + mbqm(x.astype(np.int64) - zi, m, sh, rounding), lo, hi).astype(np.int8)
        compare(failures, f"{which} {shape} rounding {rounding}", run_graph(g, [x], rounding, kernels), want)
    for which, sc, c in (("ADD", 0.04, 37), ("SUB", 0.02, -90), ("MUL", 0.03, 51)):   # against one constant
        shape = (2, 3, 5, 7)
        x = rng.integers(-128, 128, shape).astype(np.int8)
        x.flat[:256] = EVERY
        const = np.array([c], np.int8)
        g = Graph([tensor(0, shape, np.int8, 0.05, -3), tensor(1, (1,), np.int8, sc, 4, const),
                   tensor(2, shape, np.int8, 0.06 if which != "MUL" else 0.2, 9)],
                  [Op(0, which, 1, [0, 1], [2], {})], [0], [2])
        want = binary_expect(which, x, const, -3, 4, 9, 0.05, sc, 0.06 if which != "MUL" else 0.2, 0)
        compare(failures, f"{which} against {c}", run_graph(g, [x], 0, kernels), want)
    print("kernels", CONFIG.isa, " ".join(sorted(kernels)))
    print("\n".join(failures) if failures else "ok")


main()
'''


@pytest.mark.parametrize("forced", PATHS)
def test_affine_tables_exact_on_every_path(forced):
    """lut_affine_int8 gives the table's bytes on every path; the avx2 paths choose it for QUANTIZE, RELU6 and
    ADD / SUB / MUL against one constant."""
    names = run_on_path(forced, AFFINE_CHECK, 3)
    assert names[1] == forced
    assert names[2:] == (["lut_affine_int8"] if forced in ("avx2", "avxvnni") else ["lut_int8"]), names


SOFTMAX_CASES = r'''
for scale, beta in ((0.1, 1.0), (0.5, 3.0), (2e-6, 1.0), (1 / 256, 1.0)):
    for rounding in (0, 1):
        for rows, depth in [(r, d) for r in (1, 3, 9) for d in (8, 9, 15, 16, 17, 23, 33, 41)] + [(2, 1001), (3, 4100)]:
            x = rng.integers(-128, 128, (rows, depth)).astype(np.int8)
            if depth > 1000:            # near the maximum: final shifts of 32 or more, a wrapped sum
                x[0] = 127
                x[-1, : depth // 2] = 126
            check_softmax(x, scale, beta, rounding)
report(kernels, failures)
'''


@pytest.mark.parametrize("forced", [p for p in PATHS if not p.startswith("neon")])
def test_softmax_row_sums_exact_on_every_path(forced):
    script = DATAMOVE_CHECK.split("SCALES = ", 1)[0] + SOFTMAX_CASES
    assert run_on_path(forced, script) == ["kernels", "softmax_lut_int8"]


MEAN_CHECK = r'''
import numpy as np
from tests.path_cases import check_mean, report

rng = np.random.default_rng(9)
failures, kernels = [], set()
check_mean(rng, failures, kernels, [((1, 6, 6, 5), (1, 2)), ((2, 7, 7, 13), (1, 2)), ((1, 3, 3, 17), (1, 2)),
                                   ((1, 300, 21), (1,)), ((1, 2, 9), (1,)), ((3, 1, 7), (1,)), ((1, 2, 2, 15), (1, 2)),
                                   ((2, 5, 4, 35), (-2, -3)), ((1, 257, 3), (1,)), ((1, 9, 1), (1,)),
                                   ((4, 2, 31), (1,))])
report(kernels, failures)
'''


@pytest.mark.parametrize("forced", PATHS)
def test_mean_short_columns_exact_on_every_path(forced):
    assert run_on_path(forced, MEAN_CHECK) == ["kernels", "mean"]


@pytest.fixture(scope="module")
def hybrid_models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "lstm_hybrid_models", M)


@pytest.fixture(scope="module")
def int8_lstm_models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "lstm_models", LM)


def run_hybrid(forced: str, folder, out_name: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SEQUENCE_RUN, str(folder / "x.npz"), str(folder),
                           str(folder / out_name)], env=dict(os.environ, EDGEML_ISA=forced), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == [forced, "ok"], done.stderr[-3000:]
    return dict(np.load(folder / out_name))


@pytest.mark.parametrize("forced", ["avx2", "avxvnni"])
def test_hybrid_lstm_avx2_rescale_gives_the_scalar_bits(hybrid_models, tmp_path, forced):
    """Cells 13 (one vector and a 5-lane tail), 16, 33 and 8 (stacked), 64 (28 steps), batch 2: the avx2 (and
    avxvnni: u8 x s8 sums) path's outputs after several stateful invokes equal the scalar path's bit for bit."""
    if forced_path(forced) != forced:
        pytest.skip(f"this CPU has no {forced} path")
    xs = {}
    for name in ("odd13", "seq7", "stack16", "big28"):
        model = M.edit_lstm_options(hybrid_models.get(name, "dynamic"), asymmetric_inputs=name != "stack16")
        (tmp_path / name).write_bytes(model)
        xs[name] = np.stack(inputs(name, reference(model).get_input_details()[0]["shape"], 4, 11))
    np.savez(tmp_path / "x.npz", **{f"x_{k}": v for k, v in xs.items()})
    scalar, avx2 = run_hybrid("scalar", tmp_path, "scalar.npz"), run_hybrid(forced, tmp_path, "forced.npz")
    assert sorted(scalar) == sorted(avx2) and len(scalar) == 16
    for key in scalar:
        np.testing.assert_array_equal(avx2[key], scalar[key], err_msg=key)


@pytest.mark.parametrize("forced", ["avx2", "avxvnni"])
def test_int8_lstm_avx2_cells_and_avxvnni_sums_match_litert(int8_lstm_models, forced):
    """The fused int8 LSTM on the avx2 path (cells 16 at a time: em_lstm_cells_avx2, the rest scalar) and on the
    avxvnni path (the same, and u8 x s8 sums by 256-bit vpdpbusd), one and two layers, 7, 16 and 28 steps, 16, 4
    and 33 cells: bit-exact against LiteRT's reference kernels."""
    pytest.importorskip("ai_edge_litert.interpreter")
    if forced_path(forced) != forced:
        pytest.skip(f"this CPU has no {forced} path")
    paths = []
    for name in ("seq7", "stack28", "fine16"):
        int8_lstm_models.get(name, "int8")
        paths.append(str(int8_lstm_models.directory / f"{name}.int8.tflite"))
    script = LSTM_INT8_CHECK.replace("import edgeml\n", "import edgeml\nfrom edgeml.runtime.kernels import CONFIG\n"
                                     f"assert CONFIG.lstm_u8s8 == {forced == 'avxvnni'}\n")
    done = subprocess.run([sys.executable, "-c", script, forced] + paths, env=dict(os.environ, EDGEML_ISA=forced),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


@pytest.mark.parametrize("kind", ["logistic", "tanh"])
def test_avx2_gemmlowp_activations_equal_the_scalar_ones_on_every_input(kind):
    """The AVX2 forms of gemmlowp's int16 logistic / tanh (em_q16a_*: lane masks and blends for AVX-512's mask
    registers), every integer-bit count the LSTM uses, over all 65536 inputs: the scalar functions' table."""
    from cython_ops.rnn import activation_table, activation_table_avx2
    for integer_bits in range(7):
        simd = activation_table_avx2(kind, integer_bits)
        if simd is None:
            pytest.skip("no AVX2 on this CPU")
        np.testing.assert_array_equal(simd[:65536], activation_table(kind, integer_bits)[:65536],
                                      err_msg=f"{integer_bits} integer bits")
