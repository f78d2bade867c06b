"""Issue 15, load time: the int8 vector DEPTHWISE_CONV_2D prepare packs everything its kernel reads in one C call
(cython_ops/load_depthwise.pyx depthwise_rows) into one kept block.  Its numpy twin (packing_depthwise.depthwise_rows,
built from the per-part numpy forms) gives the same block byte for byte, the same offsets and integers, on awkward
geometries (odd and 1001 channels, one channel, depth multiplier > 1, dilation, stride 2, weight zero points, every
requantization mode, several threads, one-row bands); whole plans equal the twin's on every forced x86 path
(vnni, avxvnni, avx2, scalar with the w16 kernel for uint8 weights), and errors keep their types and messages."""
from __future__ import annotations

import numpy as np
import pytest

import edgeml
from cython_ops import load_depthwise
from edgeml.codegen.generate import kernel_config
from edgeml.errors import ModelFormatError
from edgeml.ir import Graph
from edgeml.runtime import packing_depthwise as PD
from edgeml.runtime.plan import KEEP_ALIGN, Ctx, address
from edgeml.runtime.requant import ColumnRequant
from test_load_fast_paths import assert_same_plan, models, reference_forms      # noqa: F401 (fixtures)

FORMS = [load_depthwise.depthwise_rows, PD.depthwise_rows]
# taps, oc, w_zp, mode, bias, (oh, ow, iw, kh, kw, sh, sw, dh, dw), threads
CASES = [(9, 8, 0, 0, True, (5, 5, 5, 3, 3, 1, 1, 1, 1), 1),
         (9, 17, 3, 0, True, (6, 3, 7, 3, 3, 2, 2, 1, 1), 2),
         (25, 64, 0, 1, False, (9, 9, 13, 5, 5, 1, 1, 1, 1), 1),
         (4, 1001, -5, 0, True, (4, 4, 5, 2, 2, 1, 1, 1, 1), 1),
         (1, 40, 0, 3, True, (7, 7, 7, 1, 1, 1, 1, 1, 1), 3),
         (9, 400, 0, 0, True, (8, 8, 8, 3, 3, 1, 1, 1, 1), 1),
         (6, 1, 0, 0, True, (11, 9, 13, 3, 2, 1, 2, 2, 2), 1),
         (9, 3, 7, 1, True, (5, 6, 12, 3, 3, 2, 1, 1, 3), 2),
         (9, 24, 0, 2, True, (12, 12, 24, 3, 3, 2, 2, 1, 1), 1),
         (289, 9, 0, 0, False, (21, 20, 20, 17, 17, 1, 1, 1, 1), 1)]


def keep_like_ctx():
    """A Ctx's keep_new, handing out memory full of 0xA5 (whatever a reused allocation holds), and the Ctx."""
    ctx = Ctx(Graph(tensors=[], ops=[], inputs=[], outputs=[]), 0)

    def keep_dirty(shape, dtype):
        out = ctx.keep_new(shape, dtype)
        out.view(np.uint8)[...] = 0xA5
        return out
    return keep_dirty, ctx


def column_values(rng, oc: int, mode: int, left: bool):
    mult = rng.integers(1 << 30, (1 << 31) - 1, oc).astype(np.int32)
    shift = rng.integers(-31, 1, oc).astype(np.int32)
    mult[::7], shift[::7] = 0, 0
    if left:
        shift[oc // 2::3] = rng.integers(1, 12)     # left shifts: any_left, and no float estimate
    if mode == 3:
        mult[:], shift[:] = 0, 0
    scale64 = rng.random(oc)
    return mult, shift, scale64, scale64.astype(np.float32)


@pytest.mark.parametrize("kernel", sorted(PD.ROW_KERNELS))
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("band_limit", [1, PD.BAND_BYTES])
def test_depthwise_rows_equal_the_numpy_form(kernel, case, band_limit):
    taps, oc, w_zp, mode, with_bias, geometry, threads = CASES[case]
    k = PD.ROW_KERNELS[kernel]
    rng = np.random.default_rng(case * 7 + len(kernel))
    w = rng.integers(-128, 128, (taps, oc)).astype(np.int8)
    for left in (False, True):
        bias = rng.integers(-50000, 50000, oc).astype(np.int32) if with_bias else None
        if mode == 3 and bias is not None:
            bias[0] = 2 ** 31 - 1            # onnxruntime's sums wrap
        values = column_values(rng, oc, mode, left)
        got = []
        for form in FORMS:
            keep, ctx = keep_like_ctx()
            block, at, ints = form(keep, w, bias, *values, -3, w_zp, mode, 5, k.step, k.group, k.wide,
                                   k.table_lanes, *geometry, threads, band_limit)
            assert len(ctx.keep) == 1 and ctx.keep[0] is block and block.dtype == np.uint8
            assert address(block) % KEEP_ALIGN == 0 and all(a % KEEP_ALIGN == 0 for a in at)
            assert ctx.weight_bytes == block.nbytes
            got.append((block.tobytes(), at, ints))
        assert got[0][1] == got[1][1]
        assert got[0][2] == got[1][2]
        assert got[0][0] == got[1][0]
        assert got[0][2]["any_left"] == int(left and mode != 3)


@pytest.mark.parametrize("kernel", sorted(PD.ROW_KERNELS))
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("w_zp", [0, 37, -128, 300, -70000])
@pytest.mark.parametrize("layout", ["rows", "transposed"])
def test_depthwise_rows_on_strided_weights_and_far_zero_points(kernel, seed, w_zp, layout):
    """The tap sums and bounds (contiguous rows with a byte-range zero point in int32 lanes, anything else element
    by element) and the estimate's applicability at its edges: |bias| at 2^31, bounds near 2^30."""
    k = PD.ROW_KERNELS[kernel]
    if k.wide and abs(w_zp) > 256:
        pytest.skip("the wide kernels hold w - w_zp in int16 (weight zero points are bytes)")
    rng = np.random.default_rng(seed)
    taps, oc = int(rng.choice([1, 9, 25])), int(rng.choice([1, 7, 16, 40, 200]))
    w = rng.integers(-128, 128, (taps, oc)).astype(np.int8)
    if layout == "transposed":
        w = np.ascontiguousarray(w.T).T
    bias = rng.integers(-5000, 5000, oc).astype(np.int32)
    if seed == 3:
        bias[0] = -2 ** 31          # |bias| beyond the bound: no estimate
    mult, shift, scale64, scale32 = column_values(rng, oc, seed % 2, False)
    if w_zp == -70000:
        mult //= 1 << 16            # (a bound this large applies only with small multipliers)
    got = []
    for form in FORMS:
        keep, _ = keep_like_ctx()
        try:
            block, at, ints = form(keep, w, bias, mult, shift, scale64, scale32, 3, w_zp, seed % 2, -3, k.step,
                                   k.group, k.wide, k.table_lanes, 6, 5, 7, 1, taps, 1, 1, 1, 1, 1, PD.BAND_BYTES)
            got.append((block.tobytes(), at, ints))
        except OverflowError as exc:      # (-2^31 itself is refused unless the sums wrap)
            got.append(str(exc))
    assert got[0] == got[1]
    if seed == 3 and not isinstance(got[0], str):
        assert got[0][2]["estimate"] == 0


def test_the_block_holds_the_per_part_forms():
    """The parts of the block are the per-part numpy forms' arrays (the layout em_depthwise_simd.h reads)."""
    k = PD.ROW_KERNELS["depthwise_int8_avx2"]
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (9, 24)).astype(np.int8)
    bias = rng.integers(-500, 500, 24).astype(np.int32)
    mult, shift, scale64, scale32 = column_values(rng, 24, 0, False)
    keep, _ = keep_like_ctx()
    block, at, ints = load_depthwise.depthwise_rows(keep, w, bias, mult, shift, scale64, scale32, 4, 0, 0, 0,
                                                    k.step, k.group, k.wide, k.table_lanes, 8, 8, 10, 3, 3, 1, 1,
                                                    1, 1, 1, PD.BAND_BYTES)
    patterns, _, ch, used, every = PD.lane_channels(k, 24)
    groups = ints["tap_groups"]
    weights = np.zeros((patterns, groups, 4, k.step // 4, k.group), np.int16)
    PD.lane_weights(w, ch, used, every, k, groups, 0, weights)
    assert block[at[0]:at[0] + weights.nbytes].tobytes() == weights.tobytes()
    lanes = ch.size
    lane_bias = block[at[1]:at[1] + 4 * lanes].view(np.int32)
    np.testing.assert_array_equal(lane_bias, bias[ch.reshape(-1)])        # (the wide kernel folds no zero point)
    np.testing.assert_array_equal(block[at[2]:at[2] + 4 * lanes].view(np.int32), mult[ch.reshape(-1)])
    table = PD.mbqm_lanes8(mult[ch.reshape(-1)], shift[ch.reshape(-1)])
    assert block[at[6]:at[6] + table.nbytes].tobytes() == table.tobytes()


@pytest.mark.parametrize("form", FORMS)
def test_an_overflowing_bias_is_refused(form):
    k = PD.ROW_KERNELS["depthwise_int8_vnni"]
    w = np.full((9, 16), -127, np.int8)
    bias = np.zeros(16, np.int32)
    bias[5] = 2 ** 31 - 1 - 255 * 127 * 9 + 1
    values = (np.ones(16, np.int32), np.zeros(16, np.int32), np.ones(16), np.ones(16, np.float32))
    args = (0, 0, 0, 0, k.step, k.group, k.wide, k.table_lanes, 4, 4, 6, 3, 3, 1, 1, 1, 1, 1, PD.BAND_BYTES)
    keep, _ = keep_like_ctx()
    with pytest.raises(OverflowError, match="depthwise bias and weights overflow the int32 accumulator"):
        form(keep, w, bias, *values, 127, *args[1:])      # (in_zp 127: the kernel folds -255 * sum w)
    bias[5] -= 1
    form(keep, w, bias, *values, 127, *args[1:])


def test_an_overflowing_bias_names_the_error_type_through_the_packer():
    k = PD.ROW_KERNELS["depthwise_int8_avxvnni"]
    ctx = Ctx(Graph(tensors=[], ops=[], inputs=[], outputs=[]), 0)
    w = np.full((9, 8), 127, np.int8)
    bias = np.full(8, -2 ** 31 + 1, np.int32)
    rq = ColumnRequant(0, np.ones(8, np.int32), np.zeros(8, np.int32), np.ones(8), np.ones(8, np.float32), 0, -128,
                       127)
    g = dict(oh=4, ow=4, iw=6, kh=3, kw=3, sh=1, sw=1, dh=1, dw=1)
    with pytest.raises(ModelFormatError, match="depthwise bias and weights overflow the int32 accumulator"):
        PD.pack_depthwise_rows(ctx, k, w, bias, -100, rq, g, 1)


def test_the_block_counts_against_max_weight_bytes(reference_models):
    path = reference_models / "mlperf_tiny" / "kws_ref_model.tflite"
    need = edgeml.Interpreter(path).shared_weight_bytes
    with pytest.raises(ModelFormatError, match="max_weight_bytes"):
        edgeml.Interpreter(path, max_weight_bytes=need - 1)
    edgeml.Interpreter(path, max_weight_bytes=need + 64 * 64)


PATHS = ["avx512vnni", "avxvnni", "avx2", "scalar"]


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("name", ["vww_96_int8.tflite", "kws_ref_model.tflite"])
def test_mlperf_plans_equal_the_twin_on_every_path(isa, name, reference_models, reference_forms):
    with kernel_config(isa):
        assert_same_plan(reference_models / "mlperf_tiny" / name, reference_forms)


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("name", ["mobilenet_v1_0.5_160_quant.tflite", "mobilenet_v1_0.25_96_int8.tflite"])
def test_public_plans_equal_the_twin_on_every_path(isa, name, public_models, reference_forms):
    path = public_models / "tflite" / name
    if not path.exists():
        pytest.skip(f"{name} is not in the public corpus")
    with kernel_config(isa):
        assert_same_plan(path, reference_forms)


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("name", ["dwconv_3x2_m2_dilation2_valid_nobias", "dwconv_3x3_m2_stride2_valid_relu6",
                                  "dwconv_5x5_m1_dilation2_same", "dwconv_3x3_m1_stride2_same_relu"])
def test_catalogue_plans_equal_the_twin_on_every_path(isa, name, models, reference_forms):
    with kernel_config(isa):
        assert_same_plan(models.get(name, "int8"), reference_forms)
