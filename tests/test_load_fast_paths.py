"""The load-time fast paths (cython_ops/load_pack.pyx and the shortcuts of the reader and the prepares) build
exactly the plan their plain numpy / Python forms build: every packed array byte for byte, every kernel integer
and float, on the MLPerf Tiny models (.tflite and .onnx), public models (uint8, detection, MobileNets) and
catalogue models with awkward shapes (17 channels, depth multiplier 2 with dilation, 3-D FC input, 1-channel
input).  Each model is compiled twice in one process: as loaded, and with every fast path swapped for its plain
twin (reference_forms)."""
from __future__ import annotations

import numpy as np
import pytest

import edgeml
import tflite_models as M
from test_load_packing import multiplier_cases
import model_cache
from converters import source
from converters import tflite as tflite_reader
from converters.tflite import from_tflite
from cython_ops import (load_activations, load_concat, load_depthwise, load_detection, load_index, load_ops, load_pack,
                        load_pad, load_prepare, load_reduce, load_resize, load_shape, load_shell, load_tables,
                        load_winograd)
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.runtime import arena, packing, packing_depthwise, packing_gemm, packing_sparse, requant, tables
from edgeml.runtime import kernels
from edgeml.runtime.ops import conv, conv_winograd, detection, fully_connected, sparse_gemm
from edgeml.runtime.ops import depthwise as depthwise_ops
from edgeml.runtime.ops import shape as shape_ops
from edgeml.runtime import compile as compile_module
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.layouts import layout_of
from edgeml.ir import Graph
from edgeml.runtime.plan import KEEP_ALIGN, Ctx, address as data_address

CATALOGUE = ["conv_3x3_stride2x1_valid_17ch", "dwconv_3x2_m2_dilation2_valid_nobias", "dense_3d_input",
             "conv_5x5_17ch_to_32_large_accumulators", "conv_1ch_input_7x7_stride3", "small_cnn",
             "add_sub_mul_same_shape", "add_sub_mul_channel_broadcast", "add_sub_mul_row_broadcast", "add_relu_fused",
             "add_mul_relu_n1_to_1", "add_inputs_of_very_different_scales", "hard_swish", "hard_swish_wide_range"]
# cython_ops/load_ops.pyx: each returns None for its Python path
LOAD_OPS_SHELLS = ["int8_binary_shell", "int8_unary_shell", "reshape_shell", "int8_pool_shell", "int8_mean_shell",
                   "concatenation_shell", "strided_slice_shell", "split_shell"]
LOAD_ACTIVATIONS_SHELLS = ["int8_softmax_shell", "int8_lut_activation_shell", "int8_requantize_shell",
                           "int8_hard_swish_shell", "flip_sign_bit_shell", "float_quantize_shell"]     # (load_activations.pyx)
PUBLIC = ["traffic_model.tflite", "ssd_mobilenet_v1_025_224_int8.tflite", "mobilenet_v2_0.35_224_int8.tflite",
          "mobilenet_v1_0.25_96_int8.tflite", "split_concat.tflite", "squeezenet_v1.0_128_int8.tflite",
          "miniresnet_2stacks_64x50_int8.tflite", "gmp_wl_48_int8.tflite", "deeplabv3_mnv2_pascal_quant.tflite",
          "fdmobilenet_0.25_224_int8.tflite"]


def plain_count_nonzero_blocks(w, cols, depth, segment=0):
    w = np.asarray(w)
    mask = packing_sparse.block_mask(packing_sparse.window_rows(w, segment) if segment else w)
    return int(mask.sum()), mask.size


def plain_pack_vnni(w, out, repeat_eight):
    return packing.vnni_blocks(np.asarray(w), out, repeat_eight)


def plain_nonzero_blocks(blocks):
    blocks = np.asarray(blocks)
    return packing_sparse.selected_blocks(blocks, blocks.reshape(blocks.shape[:2] + (64,)).any(axis=2))


@pytest.fixture
def reference_forms(monkeypatch):
    """Every fast path replaced by its plain twin for the test's duration."""
    def apply():
        monkeypatch.setattr(load_pack, "count_nonzero_blocks_s8", plain_count_nonzero_blocks)
        monkeypatch.setattr(load_pack, "pack_vnni_s8", plain_pack_vnni)
        monkeypatch.setattr(load_pack, "quantize_multipliers", Q.quantize_multipliers)
        monkeypatch.setattr(load_pack, "nonzero_blocks", plain_nonzero_blocks)
        monkeypatch.setattr(load_pack, "place_buffers", arena.place_in_order)
        monkeypatch.setattr(load_pack, "plan_buffers", lambda *args: None)       # (arena.plan_arena_in_python)
        monkeypatch.setattr(load_pack, "tflite_column_scales", requant.tflite_column_scales)
        monkeypatch.setattr(load_pack, "tflite_requant", requant.tflite_requant)
        monkeypatch.setattr(load_pack, "fold_bias_s8", packing.fold_bias)
        monkeypatch.setattr(load_winograd, "winograd_weights", lambda w, out: conv_winograd.winograd_panels(w, out))
        monkeypatch.setattr(load_depthwise, "depthwise_rows", packing_depthwise.depthwise_rows)
        monkeypatch.setattr(load_prepare, "pack_gemm_int8", packing_gemm.pack_gemm_int8_numpy)
        monkeypatch.setattr(load_shell, "int8_conv_shell", lambda *args: None)     # (ops/conv.py's Python path)
        monkeypatch.setattr(load_shell, "int8_fully_connected_shell", lambda *args: None)
        monkeypatch.setattr(load_shell, "set_plain_output", lambda *args: False)     # (Ctx.set_output's checks)
        for name in LOAD_OPS_SHELLS:          # (the ops' Python prepares)
            monkeypatch.setattr(load_ops, name, lambda *args: None)
        monkeypatch.setattr(load_ops, "set_output_shape",
                            lambda ctx, op, position, shape, y: ctx.set_output(op, position, shape))
        monkeypatch.setattr(load_tables, "byte_table", tables.engine_byte_table)      # (one-step Engines)
        monkeypatch.setattr(load_tables, "periodic_byte_table", tables.engine_periodic_byte_table)
        monkeypatch.setattr(load_tables, "relu_table", lambda *args: None)     # (activations.int8_activation_table)
        monkeypatch.setattr(load_tables, "constant_operand_table", lambda *args: None)   # (constant_operand_lut)
        monkeypatch.setattr(load_tables, "affine_form", tables.affine_form)     # (its numpy search)
        monkeypatch.setattr(load_pad, "pad_shell", lambda *args: None)         # (shape.prepare_pad)
        monkeypatch.setattr(load_pad, "sole_readers", shape_ops.sole_readers)     # (sole_reader per tensor)
        monkeypatch.setattr(load_tables, "int8_dequantize_shell", lambda *args: None)   # (prepare_dequantize)
        monkeypatch.setattr(load_tables, "int8_dequantize_constant", lambda *args: None)   # (its numpy fold)
        for name in LOAD_ACTIVATIONS_SHELLS:     # (activations.prepare_unary)
            monkeypatch.setattr(load_activations, name, lambda *args: None)
        monkeypatch.setattr(load_resize, "resize_shell", lambda *args: None)     # (resize.prepare_resize_*)
        monkeypatch.setattr(load_detection, "anchor_values", detection.anchor_values_numpy)
        monkeypatch.setattr(load_index, "tile_shell", lambda *args: None)       # (index.prepare_tile)
        monkeypatch.setattr(load_index, "tile_fold", lambda *args: None)        # (np.tile, then fold)
        monkeypatch.setattr(load_concat, "uint8_concatenation_shell", lambda *args: None)   # (prepare_concatenation)
        monkeypatch.setattr(load_reduce, "reduce_shell", lambda *args: None)     # (reduce.prepare_reduce)
        for name in ("shape_fold", "pack_fold", "gather_fold"):     # (prepare_shape / _pack, strided_values + fold)
            monkeypatch.setattr(load_shape, name, lambda *args: None)
        monkeypatch.setattr(compile_module, "all_steps", compile_module.prepare_steps)    # (load_loop.prepare_ops)
    return apply


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "tflite_models", M)


def read(source):
    if isinstance(source, bytes) or not str(source).endswith(".onnx"):
        return from_tflite(source)
    pytest.importorskip("onnx")
    from converters.onnx import from_onnx
    return from_onnx(str(source))


def plan_contents(source, num_threads: int = 1) -> tuple:
    """What a plan hands its kernels: per step the kernel, its integers and floats, and the bytes of every array
    the plan keeps (packed weights, biases, requantization and tables, in the order the prepares made them)."""
    graph = read(source)
    plan = compile_graph(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs}, num_threads=num_threads)
    steps = []
    spans = [(data_address(a), a.nbytes, k) for k, a in enumerate(plan.keep) if isinstance(a, np.ndarray)]
    for step in plan.steps:
        ptrs, ints, floats, *_ = step.make(lambda t: 0)
        layout = layout_of(step.kernel)
        steps.append((step.kernel, [int(v) for v in layout.ints(**ints)], [float(v) for v in layout.floats(**floats)],
                      step.scratch_bytes, step.macs, kept_places(ptrs, spans)))
    kept = [(a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes()) for a in plan.keep
            if isinstance(a, np.ndarray)]
    constants = {t: (a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes()) for t, a in plan.constants.items()}
    return steps, kept, constants


def kept_places(pointers: dict, spans: list) -> dict:
    """Each pointer slot as (the kept array it points into, the byte offset there); 0 for none; "?" elsewhere."""
    out = {}
    for name, p in pointers.items():
        if not isinstance(p, int) or p == 0:
            out[name] = p
            continue
        out[name] = next(((k, p - start) for start, nbytes, k in spans if start <= p <= start + nbytes), "?")
    return out


def assert_same_plan(source, reference_forms):
    fast = plan_contents(source)
    reference_forms()
    plain = plan_contents(source)
    assert [s[0] for s in fast[0]] == [s[0] for s in plain[0]], "different kernels"
    for k, (a, b) in enumerate(zip(fast[0], plain[0])):
        assert a == b, f"step {k} ({a[0]}): different integers or floats"
    assert len(fast[1]) == len(plain[1]), "a different number of kept arrays"
    for k, (a, b) in enumerate(zip(fast[1], plain[1])):
        assert a == b, f"kept array {k} ({a[0]} {a[1]} / {b[0]} {b[1]}) differs"
    assert fast[2].keys() == plain[2].keys()
    for t in fast[2]:
        assert fast[2][t] == plain[2][t], f"constant tensor {t} differs"


@pytest.mark.parametrize("name", ["ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite",
                                  "vww_96_int8.tflite", "ad01_int8.onnx", "kws_ref_model.onnx",
                                  "pretrainedResnet_quant.onnx", "vww_96_int8.onnx"])
def test_mlperf_plans_equal_the_plain_forms(name, reference_models, reference_forms):
    folder = "mlperf_tiny_onnx" if name.endswith(".onnx") else "mlperf_tiny"
    assert_same_plan(reference_models / folder / name, reference_forms)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_plans_equal_the_plain_forms(name, public_models, reference_forms):
    path = public_models / "tflite" / name
    if not path.exists():
        pytest.skip(f"{name} is not in the public corpus")
    assert_same_plan(path, reference_forms)


@pytest.mark.parametrize("name", CATALOGUE)
def test_catalogue_plans_equal_the_plain_forms(name, models, reference_forms):
    assert_same_plan(models.get(name, "int8"), reference_forms)


GEMM_CATALOGUE = ["conv_3x3_stride2x1_valid_17ch", "dwconv_3x2_m2_dilation2_valid_nobias", "dense_3d_input",
                  "conv_5x5_17ch_to_32_large_accumulators", "conv_1ch_input_7x7_stride3", "small_cnn"]


@pytest.mark.parametrize("isa,num_threads", [("scalar", 1), ("avx2", 1), ("avxvnni", 1), ("avx512vnni", 1),
                                             ("avx2", 3), ("avx512vnni", 4)])
def test_gemm_steps_equal_the_python_prepares_on_every_kernel_config(isa, num_threads, reference_models,
                                                                     public_models, models, reference_forms,
                                                                     monkeypatch):
    """cython_ops/load_gemm.pyx's one-call CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED steps against the Python
    prepares for each ISA path's kernels (the plans only: packing is plain C, so the VNNI and portable forms are
    compared on any CPU), on models with 1x1 / kxk / strided / dilated / one-channel / Winograd 3x3 convs, depth
    multipliers, odd channel counts, 3-D FC input and one-row FCs; with one thread and with the big convs split over
    several."""
    for module in (conv, fully_connected, sparse_gemm):
        monkeypatch.setattr(module, "CONFIG", kernels.config_for(isa))
    if num_threads > 1:     # every conv, depthwise conv and FC split (the small models' MACs are below the limits)
        for module in (conv, depthwise_ops, fully_connected):
            monkeypatch.setattr(module, "THREAD_MIN_MACS", 0)
    sources = [reference_models / "mlperf_tiny" / n for n in ("ad01_int8.tflite", "kws_ref_model.tflite",
                                                              "vww_96_int8.tflite", "pretrainedResnet_quant.tflite")]
    sources += [public_models / "tflite" / n for n in ("mobilenet_v1_0.25_96_int8.tflite", "gmp_wl_48_int8.tflite",
                                                       "resnet_v1_32_32_int8.tflite")
                if (public_models / "tflite" / n).exists()]
    sources += [models.get(n, "int8") for n in GEMM_CATALOGUE]
    fast = [plan_contents(s, num_threads) for s in sources]
    reference_forms()
    for source, made in zip(sources, fast):
        plain = plan_contents(source, num_threads)
        assert [s[0] for s in made[0]] == [s[0] for s in plain[0]], f"{source}: different kernels"
        assert made == plain, f"{source}: a different plan"


@pytest.mark.parametrize("n,k", [(0, 5), (1, 1), (7, 3), (8, 27), (16, 4), (17, 5), (33, 64), (48, 1001)])
def test_vnni_blocks_equal_the_numpy_form(n, k):
    rng = np.random.default_rng(n * 31 + k)
    w = rng.integers(-128, 128, size=(n, k)).astype(np.int8)
    w[:, ::3] = 0
    for view in (w, np.asfortranarray(w), np.repeat(w, 2, axis=1)[:, ::2]):
        shape = (-(-n // 16), -(-k // 4), 16, 4)
        fast, plain = np.full(shape, 99, np.int8), np.full(shape, 99, np.int8)
        for repeat in (True, False):
            sums = load_pack.pack_vnni_s8(view, fast, repeat)
            np.testing.assert_array_equal(sums, packing.vnni_blocks(w, plain, repeat))
            np.testing.assert_array_equal(fast, plain)


@pytest.mark.parametrize("n,k", [(0, 3), (1, 1), (15, 3), (16, 4), (17, 9), (40, 130), (3, 1001)])
def test_block_counts_equal_the_mask(n, k):
    rng = np.random.default_rng(n + 7 * k)
    w = rng.integers(-128, 128, size=(n, k)).astype(np.int8)
    w[rng.random((n, k)) < 0.9] = 0
    w[:, :2] = 0
    for view in (w, np.asfortranarray(w), np.repeat(w, 2, axis=1)[:, ::2]):
        mask = packing_sparse.block_mask(w)
        assert load_pack.count_nonzero_blocks_s8(view, 16, 4) == (int(mask.sum()), mask.size)
        density = packing_sparse.block_density(view)
        assert density == (float(mask.mean()) if mask.size else 1.0)


@pytest.mark.parametrize("n,rows,segment", [(1, 1, 1), (16, 3, 6), (17, 5, 9), (33, 2, 12), (5, 7, 3)])
def test_window_row_block_counts_equal_the_padded_copy(n, rows, segment):
    rng = np.random.default_rng(n + rows + segment)
    w = rng.integers(-128, 128, size=(n, rows * segment)).astype(np.int8)
    w[rng.random(w.shape) < 0.8] = 0
    mask = packing_sparse.block_mask(packing_sparse.window_rows(w, segment))
    for view in (w, np.asfortranarray(w)):
        assert load_pack.count_nonzero_blocks_s8(view, 16, 4, segment) == (int(mask.sum()), mask.size)
        assert packing_sparse.block_density(view, segment) == float(mask.mean())


@pytest.mark.parametrize("rounding", [0, 1])
def test_c_multipliers_equal_the_scalar_form(rounding):
    reals = np.concatenate([multiplier_cases(), [-0.0, 0.0]])
    mult, shift = load_pack.quantize_multipliers(reals, rounding)
    want = [Q.quantize_multiplier(r, rounding) for r in reals]
    assert mult.dtype == np.int32 and shift.dtype == np.int32
    np.testing.assert_array_equal(mult, [m for m, _ in want])
    np.testing.assert_array_equal(shift, [s for _, s in want])


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf, -np.inf])
def test_c_multipliers_refuse_what_the_scalar_form_refuses(bad):
    with pytest.raises(ValueError, match="cannot quantize multiplier"):
        load_pack.quantize_multipliers(np.array([0.25, bad]), 0)


@pytest.mark.parametrize("size", [0, 1, 4095, 70001])
def test_model_file_read_whole(size, tmp_path):
    data = np.random.default_rng(size).integers(0, 256, size).astype(np.uint8).tobytes()
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    got = source.read_model_bytes(path)
    assert isinstance(got, bytes) and got == data


def test_model_file_over_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "MAX_MODEL_BYTES", 100)
    path = tmp_path / "m.tflite"
    path.write_bytes(bytes(100))
    assert len(source.read_model_bytes(path)) == 100
    path.write_bytes(bytes(101))
    with pytest.raises(ModelFormatError, match="more than a model file can have"):
        source.read_model_bytes(path)


def plan_arena_by_sorting(sizes: dict, lifetimes: dict) -> tuple:
    """The arena planner as it was: every buffer's conflicts collected and sorted, then first fit."""
    placed, offsets = [], {}
    for key in sorted(sizes, key=lambda k: (-sizes[k], str(k))):
        size = (sizes[key] + arena.ALIGN - 1) // arena.ALIGN * arena.ALIGN
        first, last = lifetimes[key]
        offset = 0
        for o, s in sorted((o, s) for o, s, f, l in placed if not (l < first or f > last)):
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        offsets[key] = offset
    return offsets, max((o + s for o, s, _, _ in placed), default=0)


@pytest.mark.parametrize("seed", range(40))
def test_arena_offsets_equal_the_sorting_planner(seed):
    rng = np.random.default_rng(seed)
    sizes, life = {}, {}
    for k in range(int(rng.integers(0, 300))):
        key = k if rng.random() < 0.8 else (str(rng.choice(["scratch", "status"])), k)
        sizes[key] = int(rng.choice([1, 64, 100, 4096, int(rng.integers(1, 100000))]))
        start = int(rng.integers(0, 200))
        life[key] = (start, start + int(rng.integers(0, 30)))
    assert arena.plan_arena(sizes, life) == plan_arena_by_sorting(sizes, life)


@pytest.mark.parametrize("seed", range(40))
def test_plan_buffers_equals_its_python_twin(seed, monkeypatch):
    """load_pack.plan_buffers: the same offsets, in the same (placement) order, as plan_arena_in_python, ties of
    size decided by str(key) (indices 1, 10, 100 and 2 sort as strings; scratch before status before tensors)."""
    rng = np.random.default_rng(seed)
    sizes, life = {}, {}
    for k in rng.permutation(int(rng.integers(0, 300))).tolist():
        key = k if rng.random() < 0.7 else (str(rng.choice(["scratch", "status"])), k)
        sizes[key] = int(rng.choice([1, 64, 65, 100, 4096, int(rng.integers(1, 100000))]))
        start = int(rng.integers(0, 200))
        life[key] = (start, start + int(rng.integers(0, 30)))
    fast = load_pack.plan_buffers(sizes, life, arena.ALIGN)
    twin = arena.plan_arena_in_python(sizes, life)
    assert fast == twin and list(fast[0]) == list(twin[0])
    split = load_pack.plan_buffers(sizes, life, arena.ALIGN, True)      # arena.plan_arena_split's C form
    monkeypatch.setattr(load_pack, "plan_buffers", lambda *args: None)
    split_twin = arena.plan_arena_split(sizes, life)
    assert split == split_twin and [list(d) for d in split[:3]] == [list(d) for d in split_twin[:3]]
    assert split[3] == twin[1] and len(split[0]) + len(split[1]) + len(split[2]) == len(sizes)


def test_plan_buffers_leaves_other_keys_to_python():
    life = {0: (0, 1), 1: (0, 1)}
    assert load_pack.plan_buffers({0: 64, 1: 64}, life, arena.ALIGN) == ({0: 0, 1: 64}, 128)
    for sizes, spans in (({0: 64, np.int64(1): 64}, {0: (0, 1), np.int64(1): (0, 1)}),       # a numpy index
                         ({0: 64, ("other", 1): 8}, {0: (0, 1), ("other", 1): (0, 1)}),      # an unknown area
                         ({0: 1 << 60}, {0: (0, 1)}),                                        # a huge size
                         ({0: 64, 1: -1}, life), ({0: 64}, {0: [0, 1]})):
        assert load_pack.plan_buffers(sizes, spans, arena.ALIGN) is None
    assert arena.plan_arena({0: 64, ("other", 1): 8}, {0: (0, 1), ("other", 1): (0, 1)}) == \
        ({0: 0, ("other", 1): 64}, 128)


def test_arena_tie_order_is_the_keys_strings():
    keys = [0, 7, 10, 123, ("scratch", 0), ("scratch", 1), ("scratch", 10), ("status", 2), ("status", 11)]
    assert [arena.str_key(k) for k in keys] == [str(k) for k in keys]
    assert sorted(keys, key=arena.str_key) == sorted(keys, key=str)


def with_weight_quantization(model_bytes: bytes, edit) -> bytes:
    import uint8_models as U
    model = U.load(model_bytes)
    w = model.subgraphs[0].tensors[U.find_ops(model, "CONV_2D")[0].inputs[1]]
    scales, zero_points = list(w.quantization.scale), list(w.quantization.zeroPoint)
    edit(scales, zero_points)
    U.set_quant(w, scales, zero_points, w.quantization.quantizedDimension)
    return U.pack(model)


@pytest.mark.parametrize("edit,error,message", [
    (lambda s, z: s.__setitem__(3, float("nan")), ModelFormatError, "scale must be finite and non-negative"),
    (lambda s, z: s.__setitem__(16, float("inf")), ModelFormatError, "scale must be finite and non-negative"),
    (lambda s, z: s.__setitem__(0, -1e-3), ModelFormatError, "scale must be finite and non-negative"),
    (lambda s, z: z.__setitem__(5, 200), ModelFormatError, "zero point outside the range of int8"),
    (lambda s, z: z.__setitem__(5, -129), ModelFormatError, "zero point outside the range of int8"),
    (lambda s, z: z.__setitem__(5, 3), UnsupportedOpError, "non-zero zero point"),
    (lambda s, z: s.__setitem__(2, -0.0), None, ""),
], ids=["nan", "inf", "negative", "zp_200", "zp_-129", "zp_3", "minus_zero"])
def test_per_channel_quantization_checks(models, edit, error, message):
    data = with_weight_quantization(models.get("conv_5x5_17ch_to_32_large_accumulators", "int8"), edit)
    if error is None:
        edgeml.Interpreter(data)
        return
    with pytest.raises(error, match=message):
        edgeml.Interpreter(data)


def options_of(data) -> list:
    return [(op.type, {k: (type(v).__name__, v.tolist() if isinstance(v, np.ndarray) else v)
                       for k, v in op.options.items()}) for op in from_tflite(data).ops]


def assert_same_options(data, monkeypatch):
    fast = options_of(data)
    monkeypatch.setattr(tflite_reader, "scalar_fields", lambda cls, fields: None)
    assert fast == options_of(data)


@pytest.mark.parametrize("name", ["ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite",
                                  "vww_96_int8.tflite"])
def test_mlperf_options_equal_the_generated_accessors(name, reference_models, monkeypatch):
    assert_same_options(reference_models / "mlperf_tiny" / name, monkeypatch)


def test_public_options_equal_the_generated_accessors(public_models, monkeypatch):
    for path in sorted((public_models / "tflite").glob("*.tflite")):
        assert_same_options(path, monkeypatch)
        monkeypatch.undo()


@pytest.mark.parametrize("name", [n for n in M.SPECS if n.startswith(("strided_slice", "pack", "concat", "reduce",
                                                                       "softmax", "leaky", "transpose", "gru",
                                                                       "squeeze", "expand", "add_", "dense_"))])
def test_catalogue_options_equal_the_generated_accessors(name, models, monkeypatch):
    assert_same_options(models.get(name, "int8"), monkeypatch)


@pytest.mark.parametrize("fn", [load_prepare.pack_gemm_int8, packing_gemm.pack_gemm_int8_numpy])
@pytest.mark.parametrize("bias,in_zp,overflows", [(2 ** 31 - 1, -128, False), (2 ** 31 - 1, -127, True),
                                                  (-2 ** 31 + 1, -128, False), (-2 ** 31 + 2, -126, True)])
def test_accumulator_overflow_is_refused_at_the_boundary(bias, in_zp, overflows, fn):
    """bias - (in_zp + 128) * sum(w) must stay inside int32 (-2^31 itself is refused, as |b| >= 2^31 was); with
    onnxruntime's wrapping sums (wrap) it is taken modulo 2^32."""
    w2 = np.zeros((3, 8), np.int8)
    w2[0, :2] = [1, -2] if bias > 0 else [1, 0]      # row sum -1 (b grows with in_zp), or 1 (b shrinks)
    b = np.array([bias, 0, 0], np.int32)
    ctx = Ctx(Graph(tensors=[], ops=[], inputs=[], outputs=[], source="tflite"), 0)
    want = bias - (in_zp + 128) * int(w2[0].sum())
    for wrap in (False, True):
        args = (ctx.keep_new, w2, b, 0.05, np.full(3, 1e-3), 0.1, 0, None, in_zp, 0, wrap, packing_gemm.VNNI, 0,
                packing_gemm.PLAIN, 0, -1.0, 0, 1)
        if overflows and not wrap:
            with pytest.raises(OverflowError, match="overflow the int32 accumulator"):
                fn(*args)
            continue
        block, _, _, at = fn(*args)
        assert int(np.ndarray((1,), np.int32, block, at[1])[0]) == (want + 2 ** 31) % 2 ** 32 - 2 ** 31


@pytest.mark.parametrize("groups,depth,density", [(0, 3, 0.5), (3, 0, 0.5), (1, 1, 0.0), (4, 9, 0.3), (7, 33, 0.9)])
def test_nonzero_blocks_equal_the_numpy_form(groups, depth, density):
    rng = np.random.default_rng(groups * 100 + depth)
    blocks = rng.integers(-127, 128, (groups, depth, 16, 4)).astype(np.int8)
    blocks[rng.random((groups, depth)) >= density] = 0
    if blocks.size:
        blocks[0, 0] = 0
        blocks[0, 0, 15, 3] = 1      # one nonzero byte in a block's last word still counts
    fast, plain = load_pack.nonzero_blocks(blocks), plain_nonzero_blocks(blocks)
    for a, b in zip(fast, plain):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


@pytest.mark.parametrize("n,per_channel,rounding", [(1, True, 0), (37, True, 1), (16, False, 0)])
def test_tflite_column_scales_equal_the_numpy_form(n, per_channel, rounding):
    rng = np.random.default_rng(n)
    ws = rng.random(n if per_channel else 1) * 10.0 ** rng.integers(-12, 2, n if per_channel else 1)
    fast = load_pack.tflite_column_scales(0.0123, ws, 0.0457, n, rounding)
    plain = requant.tflite_column_scales(0.0123, ws, 0.0457, n, rounding)
    for a, b in zip(fast, plain):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape,dtype", [((3,), np.int32), ((17, 5), np.float64), ((0,), np.int8),
                                         ((300, 1024), np.int8), ((70000,), np.int32)])
def test_kept_arrays_are_aligned_writable_and_counted(shape, dtype):
    ctx = Ctx(Graph(tensors=[], ops=[], inputs=[], outputs=[]), 0)      # (no model needed)
    arrays = [ctx.keep_new(shape, dtype) for _ in range(3)]
    for a in arrays:
        assert a.shape == shape and a.dtype == dtype and a.flags.writeable and a.flags.c_contiguous
        assert load_pack.data_address(a) % KEEP_ALIGN == 0 or a.size == 0
        a[...] = 7
    assert all((a == 7).all() for a in arrays)      # no two share bytes
    assert ctx.weight_bytes == 3 * int(np.prod(shape)) * np.dtype(dtype).itemsize == sum(a.nbytes for a in ctx.keep)


@pytest.mark.parametrize("rounding", [0, 1])
@pytest.mark.parametrize("act", sorted(load_pack.ACTIVATION_CODES))
@pytest.mark.parametrize("n,per_channel", [(1, False), (17, True), (64, False)])
def test_tflite_requant_equals_the_numpy_form(rounding, act, n, per_channel):
    rng = np.random.default_rng(n * 7 + rounding)
    scales = rng.random(n if per_channel else 1) * 1e-2 + 1e-6
    scales[0] = 0.0 if per_channel else scales[0]
    zps = np.zeros(scales.size, np.int64)
    code = load_pack.ACTIVATION_CODES[act]
    for s_out, out_zp in ((0.0235, -128), (0.5, 7), (1e-30, 3), (7.0, -3), (3e-45, 0)):
        fast = load_pack.tflite_requant(0.0039, scales, zps, s_out, out_zp, n, rounding, code)
        with np.errstate(over="ignore"):        # (the numpy form's float32 copy of a real beyond float32)
            plain = requant.tflite_column_scales(0.0039, scales, s_out, n, rounding)
        for a, b in zip(fast[:4], plain):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        assert fast[4] is False
        if fast[5] is None:     # a bound's quotient at 2^62 or more: the Python form decides (column_requant)
            assert s_out < 1e-20 and act != "NONE"
        else:
            assert fast[5] == Q.activation_range_int8(act, s_out, out_zp)
    zps[-1] = 2
    assert load_pack.tflite_requant(0.0039, scales, zps, 0.5, 0, n, rounding, code)[4:] == (True, None)
    assert requant.tflite_requant(0.0039, scales, zps, 0.5, 0, n, rounding, code)[4:] == (True, None)


@pytest.mark.parametrize("fn", [load_pack.tflite_requant, requant.tflite_requant])
def test_tflite_requant_refuses_what_the_multipliers_refuse(fn):
    with pytest.raises(ValueError, match="cannot quantize multiplier"):
        fn(0.5, np.array([0.25, -1.0]), np.zeros(2, np.int64), 0.5, 0, 2, 0, 0)


@pytest.mark.parametrize("n,k,with_bias,zp,wrap", [(1, 1, True, -128, False), (17, 27, False, 5, False),
                                                   (64, 576, True, 131, True), (0, 4, False, 3, False)])
def test_fold_bias_equals_the_numpy_form(n, k, with_bias, zp, wrap):
    rng = np.random.default_rng(n + k)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    bias = (rng.integers(-2 ** 31, 2 ** 31 - 1, n) if wrap else rng.integers(-10000, 10000, n)).astype(np.int32) \
        if with_bias else None
    for view in (w, np.asfortranarray(w)):
        fast, plain = load_pack.fold_bias_s8(view, bias, zp, wrap), packing.fold_bias(w, bias, zp, wrap)
        assert fast.dtype == plain.dtype == np.int32
        np.testing.assert_array_equal(fast, plain)


@pytest.mark.parametrize("fn", [load_pack.fold_bias_s8, packing.fold_bias])
def test_fold_bias_refuses_an_overflowing_bias(fn):
    w = np.full((2, 4), 127, np.int8)
    ok = np.array([2 ** 31 - 1 - 255 * 508, 0], np.int32)
    assert fn(w, ok, -255, False)[0] == 2 ** 31 - 1
    with pytest.raises(OverflowError, match="overflow"):
        fn(w, ok + np.array([1, 0], np.int32), -255, False)
    assert fn(w, ok + np.array([1, 0], np.int32), -255, True)[0] == -2 ** 31


@pytest.mark.parametrize("oc,ic", [(1, 12), (17, 13), (64, 64), (8, 3600)])
def test_winograd_weights_equal_the_numpy_form(oc, ic):
    w = np.random.default_rng(oc + ic).integers(-128, 128, (oc, 3, 3, ic)).astype(np.int8)
    w[0, :, :, 0] = -128
    fast = np.full((16, -(-oc // 8), -(-ic // 4), 8, 4), 7, np.int16)
    load_winograd.winograd_weights(w, fast)
    np.testing.assert_array_equal(fast, conv_winograd.winograd_panels(w))


@pytest.mark.parametrize("act", sorted(load_pack.ACTIVATION_CODES))
def test_int8_activation_range_equals_the_python_form(act):
    rng = np.random.default_rng(len(act))
    cases = [(s, int(z)) for s, z in zip(np.exp(rng.uniform(-12, 3, 200)), rng.integers(-128, 128, 200))]
    cases += [(1 / 12, 0), (0.5, -128), (2.0, 127), (1e-30, 5), (1e-3, 100), (6 / 255, -128)]
    for scale, zp in cases:
        got = load_pack.activation_range_int8(load_pack.ACTIVATION_CODES[act], scale, zp)
        if got is None:       # a quotient at 2^62 or more: the Python form decides
            assert scale < 1e-17
        else:
            assert got == Q.activation_range_int8(act, scale, zp)
        assert requant.int8_activation_range(act, scale, zp) == Q.activation_range_int8(act, scale, zp)
