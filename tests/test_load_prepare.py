"""The int8 CONV_2D / FULLY_CONNECTED prepare's one C call (cython_ops/load_prepare.pyx) against its numpy twin
(packing_gemm.pack_gemm_int8_numpy): whole plans on every ISA path's kernel choice (forced in-process: planning
runs no kernel) and sparse setting, and the packed block byte for byte on awkward shapes (odd column counts, K not
a multiple of 4, window rows padded, strided weights, 8 columns, weight zero points, every layout)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tflite_models as M
import model_cache
from cython_ops import load_prepare
from edgeml.errors import ModelFormatError
from edgeml.runtime import kernels, packing_gemm
from edgeml.runtime.plan import Ctx
from test_load_fast_paths import CATALOGUE, assert_same_plan, reference_forms  # noqa: F401 (a fixture)

PATHS = ["avx512vnni", "avxvnni", "avx512", "avx2", "scalar", "neon"]
MLPERF = ["ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "vww_96_int8.tflite"]
UINT8_PUBLIC = ["mobilenet_v1_0.5_160_quant.tflite", "deeplabv3_mnv2_pascal_quant.tflite"]


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "tflite_models", M)


@pytest.fixture
def forced_path(request):
    """KernelConfig as EDGEML_ISA=<param> makes it, for this test's plans (restored after)."""
    saved = dataclasses.replace(kernels.CONFIG)
    forced = kernels.config_for(request.param)
    for f in dataclasses.fields(forced):
        object.__setattr__(kernels.CONFIG, f.name, getattr(forced, f.name))
    yield request.param
    for f in dataclasses.fields(saved):
        object.__setattr__(kernels.CONFIG, f.name, getattr(saved, f.name))


@pytest.mark.parametrize("sparse", ["auto", "on", "off"])
@pytest.mark.parametrize("forced_path", PATHS, indirect=True)
@pytest.mark.parametrize("name", MLPERF)
def test_mlperf_plans_equal_the_plain_forms_on_every_path(name, forced_path, sparse, reference_models,
                                                          reference_forms, monkeypatch):
    monkeypatch.setattr(Ctx, "sparse", sparse)
    assert_same_plan(reference_models / "mlperf_tiny" / name, reference_forms)


@pytest.mark.parametrize("sparse", ["auto", "on"])
@pytest.mark.parametrize("forced_path", PATHS, indirect=True)
@pytest.mark.parametrize("name", CATALOGUE)
def test_catalogue_plans_equal_the_plain_forms_on_every_path(name, forced_path, sparse, models, reference_forms,
                                                             monkeypatch):
    monkeypatch.setattr(Ctx, "sparse", sparse)
    assert_same_plan(models.get(name, "int8"), reference_forms)


@pytest.mark.parametrize("forced_path", PATHS, indirect=True)
@pytest.mark.parametrize("name", UINT8_PUBLIC)
def test_uint8_plans_equal_the_plain_forms_on_every_path(name, forced_path, public_models, reference_forms):
    """uint8 models: weight zero points (the _w16 kernels, the VNNI row corrections), one multiplier."""
    path = public_models / "tflite" / name
    if not path.exists():
        pytest.skip(f"{name} is not in the public corpus")
    assert_same_plan(path, reference_forms)


def pool_keep_new(shape, dtype):
    """keep_new's contract without a Ctx: uninitialised (filled with a pattern, so unwritten bytes show)."""
    out = np.empty(shape, dtype)
    out.view(np.uint8)[...] = 0xA5
    return out


CASES = [  # n, k, layout, segment, w_zp, wrap, sparse_layout, sparse_segment, max_density
    (17, 27, packing_gemm.VNNI, 0, 0, False, packing_gemm.SPARSE_VNNI, 0, -1.0),
    (8, 13, packing_gemm.VNNI, 0, 0, False, packing_gemm.SPARSE_VNNI, 0, -1.0),       # columns 8-15 repeat
    (8, 30, packing_gemm.VNNI, 6, 3, False, packing_gemm.SPARSE_VNNI, 0, -1.0),       # zero point: wrapped
    (33, 45, packing_gemm.VNNI, 15, 0, True, packing_gemm.SPARSE_VNNI, 15, 2.0),      # sparse, window rows
    (40, 64, packing_gemm.VNNI, 0, 0, False, packing_gemm.SPARSE_VNNI, 0, 0.6),       # the probe decides
    (9, 21, packing_gemm.AVX2, 7, -5, False, packing_gemm.SPARSE_AVX2, 0, -1.0),
    (64, 130, packing_gemm.AVX2, 0, 0, False, packing_gemm.SPARSE_AVX2, 0, 2.0),
    (24, 72, packing_gemm.AVX2, 0, 7, False, packing_gemm.SPARSE_AVX2, 0, -1.0),      # zero point: w - 7
    (19, 36, packing_gemm.AVX2, 0, 0, False, packing_gemm.SPARSE_AVX2, 12, 2.0),
    (3, 1001, packing_gemm.AVX2_S8, 0, 0, False, packing_gemm.SPARSE_AVX2, 0, -1.0),
    (65, 13, packing_gemm.PLAIN, 0, 0, False, packing_gemm.SPARSE_PORTABLE, 0, 2.0),
    (7, 13, packing_gemm.PLAIN, 0, 4, False, packing_gemm.SPARSE_PORTABLE, 0, 2.0),    # zero point: stays dense
    (50, 8, packing_gemm.PLAIN, 0, 0, True, packing_gemm.SPARSE_PORTABLE, 0, 0.0),
]


@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("given", [False, True])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_pack_gemm_int8_equals_the_numpy_form(case, given, strided):
    n, k, layout, segment, w_zp, wrap, sparse_layout, sparse_segment, max_density = CASES[case]
    rng = np.random.default_rng(case)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    w[:, rng.random(k) < 0.5] = 0                     # whole zero K runs: some blocks empty
    if strided:                                       # the transposed view a one-channel depthwise passes
        w = np.ascontiguousarray(w.T).T
    bias = rng.integers(-5000, 5000, n).astype(np.int32) if case % 3 else None
    scales = rng.uniform(1e-4, 2e-3, n if case % 2 else 1)
    columns = None
    if given:
        columns = (rng.integers(1 << 30, 1 << 31, n).astype(np.int32), rng.integers(-9, 2, n).astype(np.int32),
                   rng.uniform(1e-4, 1e-3, n), rng.uniform(1e-4, 1e-3, n).astype(np.float32))
    args = (bias, 0.05, scales, 0.1, case % 2, columns, -7, w_zp, wrap, layout, segment, sparse_layout,
            sparse_segment, max_density, 3 * 11 * 5, 2)
    fast = load_prepare.pack_gemm_int8(pool_keep_new, w, *args)
    plain = packing_gemm.pack_gemm_int8_numpy(pool_keep_new, w, *args)
    assert fast[1:] == plain[1:]
    assert fast[0].tobytes() == plain[0].tobytes()
    if max_density >= 1 and not w_zp:
        assert fast[1] == sparse_layout
    assert all(at % 64 == 0 for at in fast[3] if at >= 0)


@pytest.mark.parametrize("fn", [load_prepare.pack_gemm_int8, packing_gemm.pack_gemm_int8_numpy])
@pytest.mark.parametrize("layout", [packing_gemm.VNNI, packing_gemm.AVX2, packing_gemm.PLAIN])
def test_pack_gemm_int8_refuses_an_overflowing_bias(fn, layout):
    w = np.full((3, 8), -1, np.int8)
    bias = np.array([2 ** 31 - 1 - 700, 0, 0], np.int32)        # + 8 * 100 (or 8 * 228: VNNI's x + 128)
    with pytest.raises(OverflowError, match="overflow the int32 accumulator"):
        fn(pool_keep_new, w, bias, 0.05, np.full(3, 1e-3), 0.1, 0, None, 100, 0, False, layout, 0,
           packing_gemm.SPARSE_VNNI, 0, -1.0, 0, 1)


@pytest.mark.parametrize("fn", [load_prepare.pack_gemm_int8, packing_gemm.pack_gemm_int8_numpy])
@pytest.mark.parametrize("bias, in_zp, fits", [
    (2 ** 31 - 1, 0, True), (2 ** 31 - 1, -1, False),      # folded: bias - in_zp * sum(w), sum(w) = 1
    (-2 ** 31 + 1, 0, True), (-2 ** 31 + 1, 1, False), (-2 ** 31, -1, True)])
def test_pack_gemm_int8_bias_bounds_are_exact(fn, bias, in_zp, fits):
    """The folded bias is kept inside (-2^31, 2^31) exactly at both ends (the plain layout folds in_zp alone)."""
    w = np.array([[1, 0, 0, 0]], np.int8)
    args = (pool_keep_new, w, np.array([bias], np.int32), 0.05, np.full(1, 1e-3), 0.1, 0, None, in_zp, 0, False,
            packing_gemm.PLAIN, 0, packing_gemm.SPARSE_PORTABLE, 0, -1.0, 0, 1)
    if not fits:
        with pytest.raises(OverflowError, match="overflow the int32 accumulator"):
            fn(*args)
        return
    block, _, _, offsets = fn(*args)
    assert int(block[offsets[1]:offsets[1] + 4].view(np.int32)[0]) == bias - in_zp


@pytest.mark.parametrize("fn", [load_prepare.pack_gemm_int8, packing_gemm.pack_gemm_int8_numpy])
def test_pack_gemm_int8_refuses_a_bad_scale(fn):
    with pytest.raises(ValueError, match="cannot quantize multiplier"):
        fn(pool_keep_new, np.ones((2, 4), np.int8), None, 0.05, np.array([1e-3, np.nan]), 0.1, 0, None, 0, 0, False,
           packing_gemm.VNNI, 0, packing_gemm.SPARSE_VNNI, 0, -1.0, 0, 1)


def test_overflowing_conv_bias_names_the_op(models, monkeypatch):
    """The prepare turns the C call's OverflowError into a ModelFormatError naming the op."""
    def overflowing(*args):
        raise OverflowError("bias and weights overflow the int32 accumulator")
    monkeypatch.setattr(load_prepare, "pack_gemm_int8", overflowing)
    from converters.tflite import from_tflite
    from edgeml.runtime.compile import compile_graph
    graph = from_tflite(models.get("conv_3x3_stride2x1_valid_17ch", "int8"))
    with pytest.raises(ModelFormatError, match=r"CONV_2D.*overflow the int32 accumulator"):
        compile_graph(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs})


@pytest.mark.parametrize("dense_first", [True, False])
@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_density_probe_stops_only_where_the_answer_is_dense(dense_first, extra):
    """The C probe stops counting once the density exceeds the limit: at, just below and just above the limit, with
    the nonzero 16x4 blocks first or last, it decides (and packs) as the numpy twin's full count does."""
    n, k = 64, 64                                     # 4 column groups x 16 K blocks: 64 blocks
    blocks = 48 + extra                               # nonzero blocks; the limit is 48 / 64
    w = np.zeros((n, k), np.int8)
    order = range(64) if dense_first else range(63, -1, -1)
    for b in list(order)[:blocks]:
        g, kb = divmod(b, 16)
        w[16 * g, 4 * kb] = 1 + b
    args = (None, 0.05, np.full(1, 1e-3), 0.1, 0, None, -7, 0, False, packing_gemm.VNNI, 0,
            packing_gemm.SPARSE_VNNI, 0, 0.75, 0, 1)
    fast = load_prepare.pack_gemm_int8(pool_keep_new, w, *args)
    plain = packing_gemm.pack_gemm_int8_numpy(pool_keep_new, w, *args)
    assert fast[1] == plain[1] == (packing_gemm.SPARSE_VNNI if extra <= 0 else packing_gemm.VNNI)
    assert fast[2:] == plain[2:] and fast[0].tobytes() == plain[0].tobytes()


@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("n,k,segment", [(64, 192, 0), (37, 260, 0), (40, 300, 15), (19, 216, 9), (16, 4, 0),
                                         (20, 40, 0)])
@pytest.mark.parametrize("max_density", [2.0, 0.97])
def test_density_probe_reads_a_groups_first_row_then_its_zero_words(n, k, segment, max_density, strided):
    """The probe reads each 16-row group's first row, then only the words it left zero (when few are): blocks whose
    first row is zero but a later row (the last, or the last of a partial group) is not, and blocks zero throughout,
    are chosen as the numpy twin's full count chooses them (max_density 2: every nonzero block packed sparse)."""
    rng = np.random.default_rng(n * k)
    w = rng.integers(1, 128, (n, k)).astype(np.int8)             # no zero word: every block nonzero ...
    logical = (k // segment * ((segment + 3) // 4)) if segment else (k + 3) // 4
    for g in range(-(-n // 16)):
        first, last = 16 * g, min(n, 16 * g + 16) - 1
        for i, word in enumerate(rng.choice(logical, size=min(3, logical), replace=False)):     # ... but up to 3
            cols = window_columns(word, k, segment)
            w[first:last + 1, cols] = 0                             # zero throughout, or nonzero in one later row
            if i:
                w[last if i == 1 else (first + last + 1) // 2, cols[-1]] = 5
    if strided:
        w = np.ascontiguousarray(w.T).T
    args = (None, 0.05, np.full(1, 1e-3), 0.1, 0, None, -7, 0, False, packing_gemm.VNNI, segment,
            packing_gemm.SPARSE_VNNI, segment, max_density, 3 * 11, 1)
    fast = load_prepare.pack_gemm_int8(pool_keep_new, w, *args)
    plain = packing_gemm.pack_gemm_int8_numpy(pool_keep_new, w, *args)
    assert fast[1:] == plain[1:]
    assert fast[0].tobytes() == plain[0].tobytes()


def window_columns(word: int, k: int, segment: int) -> list:
    """The K columns of logical word `word` (runs of `segment` values padded to 4 when segment)."""
    if not segment:
        return list(range(4 * word, min(k, 4 * word + 4)))
    per = -(-segment // 4)
    run, q = divmod(word, per)
    return [run * segment + c for c in range(4 * q, min(segment, 4 * q + 4))]


@pytest.mark.parametrize("host, kernel, built_with", [
    ("avx2", "add_int8_avx512", "add_int8"), ("scalar", "mul_int8_avx2", "mul_int8"),
    ("avx512vnni", "add_int8_avx512", "add_int8_avx512"), ("avx2", "add_int8_avx2", "add_int8_avx2"),
    ("neon", "hard_swish_int8_avx2", None), ("avx2", "add_int8", "add_int8")])
def test_tables_are_built_with_a_body_this_cpu_runs(monkeypatch, host, kernel, built_with):
    """A plan forced to another path (the tests above, on any host) builds its 256-entry tables with the portable
    twin of a vector body this CPU lacks (an AVX2-only EPYC died on add_int8_avx512's illegal instruction)."""
    from edgeml.runtime import tables
    from edgeml.runtime.layouts import layout_of
    monkeypatch.setattr(tables, "ISA", host)
    got = tables.runnable(kernel)
    if built_with is None:      # a portable twin with another layout, or none: the kernel itself
        base = kernel.rsplit("_", 1)[0]
        built_with = base if base in tables.KERNELS and layout_of(base) is layout_of(kernel) else kernel
    assert got == built_with
