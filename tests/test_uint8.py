"""uint8 (asymmetric, TF1 / Coral-style) models against LiteRT's reference kernels, bit for bit.

Per-op models are converter-made int8 models rewritten to uint8 (tests/uint8_models.py: uint8 activations and
I/O, asymmetric per-tensor uint8 weights), and a few genuine uint8 models from TF1's converter route -- the awkward
shapes of tests/tflite_models.py (odd channels, stride 2,
dilation, SAME with partial windows, broadcasting ADD / MUL, every fused activation), batch 2 after a resize, weight
zero points at 0, 1, 128 and 255, CONCATENATION inputs quantized unlike its output -- and the converter's own int8
models with uint8 graph inputs and outputs (QUANTIZE uint8 -> int8 and int8 -> uint8).  Each test first checks that
the model holds the op it is about, with uint8 tensors; then 20 seeded full-range inputs and 20 drawn like the
calibration data must give outputs equal to `OpResolverType.BUILTIN_REF`'s.  The public corpus (TF1 / Coral uint8
models, int8 models with a uint8 input) must match too, on every kernel path the CPU has.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import model_cache
import numpy as np
import pytest
import tflite_models as M
import uint8_models as U
from litert_reference import reference_model as reference
from litert_reference import run_all as run_ours
from litert_reference import run_reference

import edgeml
from converters import from_tflite
from edgeml.runtime.kernels import CONFIG, ISA

N_INPUTS = 20
ROOT = Path(__file__).resolve().parents[1]


# ----- fixtures and helpers ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def int8_models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    """tests/tflite_models.py's converted models: the same store as test_tflite_ops.py's (converted once)."""
    return model_cache.converted_models(request, tmp_path_factory, "tflite_models", M)


@pytest.fixture(scope="session")
def own_models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory,
                                        f"uint8_models_{model_cache.cache_key(M.__file__)[:8]}", U)


@pytest.fixture(scope="session")
def uint8_model(int8_models, own_models):
    """uint8_model(name, weight_zero_point=None, edit=None) -> the uint8 rewrite of a catalogue model."""
    def make(name, weight_zero_point=None, edit=None):
        store = own_models if name in U.SPECS else int8_models
        return U.to_uint8(store.get(name, "int8"), weight_zero_point, edit)
    return make


def uint8_op_types(model: bytes) -> set:
    """Op types of the file that read a uint8 tensor and write one."""
    fb = U.load(model)
    sg = fb.subgraphs[0]
    _, schema = U.schema()
    return {U.op_name(fb, op) for op in sg.operators
            if any(i >= 0 and sg.tensors[i].type == schema.TensorType.UINT8 for i in op.inputs)
            and sg.tensors[op.outputs[0]].type == schema.TensorType.UINT8}


def assert_holds_uint8_ops(model: bytes, ops):
    have = uint8_op_types(model)
    assert set(ops) <= have, f"the model lacks uint8 {sorted(set(ops) - have)}; its uint8 ops are {sorted(have)}"


def full_range_inputs(details, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [[rng.integers(np.iinfo(d["dtype"]).min, np.iinfo(d["dtype"]).max + 1, size=tuple(d["shape"]),
                          dtype=d["dtype"]) for d in details] for _ in range(n)]


def calibration_like_inputs(spec, details, n: int) -> list:
    """Normal inputs with the spec's spread, quantized with each input's scale and zero point (LiteRT's QUANTIZE:
    round half away from zero, saturate)."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + 3)
    sets = []
    for _ in range(n):
        xs = []
        for d in details:
            info = np.iinfo(d["dtype"])
            v = np.float32(spec.spread) * rng.standard_normal(tuple(d["shape"])).astype(np.float32)
            v = v / np.float32(d["quantization"][0])
            r = np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5) + d["quantization"][1]
            xs.append(np.clip(r, info.min, info.max).astype(d["dtype"]))
        sets.append(xs)
    return sets


def assert_outputs_equal(got: list, expected: list, what: str):
    assert len(got) == len(expected), what
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape, (what, k, g.dtype, g.shape, e.dtype, e.shape)
        if not np.array_equal(g, e):
            bad = np.argwhere(g != e)
            diff = np.abs(g.astype(np.float64) - e.astype(np.float64))
            pytest.fail(f"{what}: output {k} differs from LiteRT in {len(bad)}/{e.size} values (max |diff| "
                        f"{diff.max()}); first at {tuple(bad[0])}: edgeml {g[tuple(bad[0])]} vs LiteRT "
                        f"{e[tuple(bad[0])]}")


def check_against_reference(model: bytes, input_sets: list, what: str, shapes=None, **kwargs):
    ours = edgeml.Interpreter(model, **kwargs)
    ref = reference(model, shapes)
    if shapes is not None:
        for i, s in enumerate(shapes):
            ours.resize_input(i, s)
    for mine, theirs in ((ours.get_input_details(), ref.get_input_details()),
                         (ours.get_output_details(), ref.get_output_details())):
        assert [(d["name"], tuple(d["shape"]), np.dtype(d["dtype"])) for d in mine] == \
            [(d["name"], tuple(d["shape"]), np.dtype(d["dtype"])) for d in theirs]
        assert [(np.float32(d["scale"]), d["zero_point"]) for d in mine] == \
            [(np.float32(d["quantization"][0]), d["quantization"][1]) for d in theirs]
    for j, xs in enumerate(input_sets):
        assert_outputs_equal(run_ours(ours, xs), run_reference(ref, xs), f"{what} input set {j}")
    return ours


def standard_inputs(model: bytes, spec, shapes=None) -> list:
    ref = reference(model, shapes)
    details = ref.get_input_details()
    return (full_range_inputs(details, N_INPUTS, zlib.crc32(spec.name.encode()))
            + calibration_like_inputs(spec, details, N_INPUTS))


# ----- per-op models ----------------------------------------------------------------------------------------

OWN_INT8 = [name for name, spec in U.SPECS.items() if "int8" in spec.kinds]


@pytest.mark.parametrize("name", list(U.REUSED) + OWN_INT8)
def test_uint8_op_is_bit_exact_with_litert_reference(uint8_model, name):
    spec = U.catalogue_spec(name)
    model = uint8_model(name)
    assert_holds_uint8_ops(model, spec.int8_ops)
    check_against_reference(model, standard_inputs(model, spec), f"{name} uint8")


@pytest.mark.parametrize("name", sorted(U.TF1_SPECS))
def test_tf1_converter_uint8_model_is_bit_exact(own_models, name):
    """Genuine uint8 models from TF1's converter route (fake-quant graph, inference_type=tf.uint8), which TF 2.21
    still runs: uint8 weights with the converter's own zero points, CONCATENATION inputs quantized unlike its output,
    a float branch between DEQUANTIZE and QUANTIZE."""
    spec = U.SPECS[name]
    model = own_models.get(name, "tf1")
    assert_holds_uint8_ops(model, spec.int8_ops)
    check_against_reference(model, standard_inputs(model, spec), f"{name} (TF1 converter)")


WEIGHTED = ["conv_3x2_stride2_same_relu", "conv_3x3_dilation2_valid_nobias", "conv_1x1_relu_n1_to_1",
            "conv_5x5_17ch_to_32_large_accumulators", "dwconv_3x3_m1_stride2_same_relu",
            "dwconv_3x2_m2_dilation2_valid_nobias", "dwconv_5x5_m1_dilation2_same", "dense_2d_relu_then_linear",
            "dense_3d_input"]


@pytest.mark.parametrize("weight_zero_point", [0, 1, 128, 255])
@pytest.mark.parametrize("name", WEIGHTED)
def test_weight_zero_points_at_the_extremes(uint8_model, name, weight_zero_point):
    """Weights whose zero point is 0 or 255 make w - w_zp span [-255, 255] (past int8): every kernel path keeps
    the sums exact (int16 differences, or VNNI row sums of the input times the zero point)."""
    spec = U.catalogue_spec(name)
    model = uint8_model(name, weight_zero_point)
    assert_holds_uint8_ops(model, spec.int8_ops)
    graph = from_tflite(model)
    zps = {int(graph.tensors[op.inputs[1]].quant.zero_point[0]) + 128 for op in graph.ops
           if op.type in U.WEIGHTED_OPS}
    assert zps == {weight_zero_point}
    check_against_reference(model, standard_inputs(model, spec)[::2], f"{name} uint8, weight zero point "
                                                                     f"{weight_zero_point}")


@pytest.mark.parametrize("name", ["small_cnn", "conv_3x2_stride2_same_relu", "dwconv_3x3_m2_stride2_valid_relu6",
                                  "dense_3d_input", "avgpool_3x2_stride2x3_same", "add_sub_mul_channel_broadcast",
                                  "concat_rows_three_inputs", "global_average_pooling"])
def test_batch_of_two_after_resize(uint8_model, name):
    spec = U.catalogue_spec(name)
    model = uint8_model(name)
    assert_holds_uint8_ops(model, spec.int8_ops)
    shapes = [(2, *tuple(d["shape"])[1:]) for d in reference(model).get_input_details()]
    check_against_reference(model, standard_inputs(model, spec, shapes)[::2], f"{name} uint8 batch 2",
                            shapes=shapes)


@pytest.mark.parametrize("name", ["concat_relu", "concat_channels_two_inputs", "concat_rows_three_inputs",
                                  "u8_concat_four_inputs"])
def test_concatenation_rescales_inputs_quantized_unlike_its_output(uint8_model, name):
    """LiteRT's uint8 CONCATENATION requantizes such inputs (float32 scale and bias, rounded half away from
    zero) and copies the ones quantized like the output; edgeml does both."""
    spec = U.catalogue_spec(name)
    model = uint8_model(name, edit=U.requantize_concat_inputs)
    assert_holds_uint8_ops(model, {"CONCATENATION"})
    graph = from_tflite(model)
    (op,) = [op for op in graph.ops if op.type == "CONCATENATION"]
    y = graph.tensors[op.outputs[0]].quant.scalar()
    rescaled = [graph.tensors[i].quant.scalar() != y for i in op.inputs]
    assert rescaled == [True] * (len(op.inputs) - 1) + [False]
    ours = check_against_reference(model, standard_inputs(model, spec), f"{name} uint8 rescaled inputs")
    assert "concat_lut" in {s.kernel for s in ours.plan.steps}


@pytest.mark.parametrize("name", ["u8_io_cnn", "u8_io_two_inputs"])
def test_quantize_between_uint8_io_and_int8_core(own_models, name):
    """The converter's int8 model with uint8 graph inputs and outputs: QUANTIZE uint8 -> int8 in, int8 -> uint8
    out."""
    spec = U.SPECS[name]
    model = own_models.get(name, "uint8_io")
    graph = from_tflite(model)
    quantizes = [op for op in graph.ops if op.type == "QUANTIZE"]
    assert len(quantizes) == len(graph.inputs) + len(graph.outputs)
    fb = U.load(model)
    _, schema = U.schema()
    sg = fb.subgraphs[0]
    kinds = {(sg.tensors[op.inputs[0]].type, sg.tensors[op.outputs[0]].type) for op in U.find_ops(fb, "QUANTIZE")}
    u8, i8 = schema.TensorType.UINT8, schema.TensorType.INT8
    assert kinds == {(u8, i8), (i8, u8)}
    check_against_reference(model, standard_inputs(model, spec), f"{name} uint8 I/O")


def test_quantize_uint8_to_uint8_and_float_to_uint8(int8_models):
    """QUANTIZE float -> uint8 and DEQUANTIZE uint8 -> float (small_cnn with float I/O, rewritten to uint8), and a
    QUANTIZE uint8 -> uint8 rescaling the uint8 small_cnn's output."""
    spec = M.SPECS["small_cnn"]
    model = U.to_uint8(int8_models.get("small_cnn", "int8_float_io"))
    types = {op.type for op in from_tflite(model).ops}
    assert {"QUANTIZE", "DEQUANTIZE"} <= types
    ref = reference(model)
    rng = np.random.default_rng(9)
    shape = tuple(ref.get_input_details()[0]["shape"])
    inputs = [[(spec.spread * (1.0, 0.25, 4.0, 40.0)[j % 4] * rng.standard_normal(shape)).astype(np.float32)]
              for j in range(N_INPUTS)]
    check_against_reference(model, inputs, "small_cnn float -> uint8 -> float")

    uint8_out = U.to_uint8(int8_models.get("small_cnn", "int8"), edit=U.requantize_first_output)
    assert "QUANTIZE" in uint8_op_types(uint8_out)
    check_against_reference(uint8_out, standard_inputs(uint8_out, spec), "small_cnn uint8 -> uint8 QUANTIZE")


# ----- every kernel path ------------------------------------------------------------------------------------

PATH_MODELS = ["conv_1x1_relu_n1_to_1", "conv_3x2_stride2_same_relu", "conv_3x3_dilation2_valid_nobias",
               "conv_5x5_17ch_to_32_large_accumulators", "dwconv_3x3_m1_stride2_same_relu",
               "dwconv_5x5_m1_dilation2_same", "dwconv_3x2_m2_dilation2_valid_nobias", "dense_2d_relu_then_linear",
               "avgpool_3x3_stride2_same", "small_cnn"]
PATHS = ["scalar", "avx2", "avx512", "avx512vnni"]

CHILD = r'''
import sys, numpy as np, edgeml
from edgeml.runtime.kernels import CONFIG
assert CONFIG.isa == sys.argv[2], (CONFIG.isa, sys.argv[2])
data = np.load(sys.argv[1] + "/cases.npz")
for name in data["names"]:
    ours = edgeml.Interpreter(open(sys.argv[1] + "/" + name + ".tflite", "rb").read())
    for j in range(int(data[name + "/count"])):
        for i in range(len(ours.get_input_details())):
            ours.set_input(data[f"{name}/{j}/in{i}"], i)
        ours.invoke()
        for k in range(len(ours.get_output_details())):
            if not np.array_equal(ours.get_output(k), data[f"{name}/{j}/out{k}"]):
                print(f"{name} input set {j} output {k} differs on {sys.argv[2]}")
print("checked", len(data["names"]))
'''


@pytest.fixture(scope="module")
def path_cases(uint8_model, tmp_path_factory) -> Path:
    """uint8 models with weight zero points at 0 / natural / 255, inputs and LiteRT's outputs, saved for the
    child processes."""
    folder = tmp_path_factory.mktemp("uint8_paths")
    arrays, names = {}, []
    for name in PATH_MODELS:
        spec = U.catalogue_spec(name)
        for zp in (None, 0, 255):
            model = uint8_model(name, zp)
            key = f"{name}_wzp{zp}"
            (folder / f"{key}.tflite").write_bytes(model)
            ref = reference(model)
            sets = standard_inputs(model, spec)[::8]
            for j, xs in enumerate(sets):
                for i, x in enumerate(xs):
                    arrays[f"{key}/{j}/in{i}"] = x
                for k, y in enumerate(run_reference(ref, xs)):
                    arrays[f"{key}/{j}/out{k}"] = y
            arrays[f"{key}/count"] = np.array(len(sets))
            names.append(key)
    np.savez(folder / "cases.npz", names=np.array(names), **arrays)
    return folder


@pytest.mark.parametrize("path", PATHS)
def test_every_kernel_path_is_bit_exact(path_cases, path):
    """The uint8 convs, depthwise convs, dense layers and average pools on each ISA path EDGEML_ISA can force
    (VNNI: row sums for the weight zero point; AVX2 / AVX-512: int16 w - w_zp panels; scalar: int16 weights)."""
    if ISA not in PATHS or PATHS.index(path) > PATHS.index(ISA):
        pytest.skip(f"this CPU's best path is {ISA}")
    env = dict(os.environ, EDGEML_ISA=path, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CHILD, str(path_cases), path], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "differs" not in done.stdout, done.stdout
    assert f"checked {3 * len(PATH_MODELS)}" in done.stdout


def test_threaded_vnni_conv_slices_keep_their_row_sums(uint8_model):
    """A big uint8 conv split over two threads: each slice's scratch holds its own row corrections."""
    name = "conv_5x5_17ch_to_32_large_accumulators"
    spec = U.catalogue_spec(name)
    model = uint8_model(name)
    shapes = [(6, *tuple(d["shape"])[1:]) for d in reference(model).get_input_details()]
    ours = check_against_reference(model, standard_inputs(model, spec, shapes)[::5], f"{name} uint8, 2 threads",
                                   shapes=shapes, num_threads=2)
    if CONFIG.conv2d_int8 == "conv2d_int8_vnni":
        steps = [s for s in ours.plan.steps if s.kernel == "conv2d_int8_vnni"]
        assert steps and steps[0].macs >= 2_000_000


# ----- the public corpus ------------------------------------------------------------------------------------

# (file, input sets): the 224 x 224 models take 0.1-0.3 s per LiteRT reference run, so they get 12 inputs
PUBLIC = [("mobilenet_v1_0.5_160_quant", 20), ("mobilenet_v1_1.0_224_quant_embedding_extractor", 12),
          ("mobilenet_v2_1.0_224_inat_bird_quant", 12), ("split_concat", 20), ("mobilenet_v2_0.35_224_int8", 12),
          ("resnet_v1_32_32_int8", 20), ("squeezenet_v1.0_128_int8", 20), ("tf2_mobilenet_v2_1.0_224_ptq", 12),
          ("traffic_model", 3)]
# these also need an op edgeml lacks (none left: fdmobilenet, deeplabv3 and the SSD load, tests/test_index_ops.py;
# traffic_model's TFLite_Detection_PostProcess runs, tests/test_detection.py)
PUBLIC_OTHERS = {}


@pytest.mark.parametrize("name,count", PUBLIC)
def test_public_uint8_model_is_bit_exact(public_models, name, count):
    path = public_models / "tflite" / f"{name}.tflite"
    model = path.read_bytes()
    assert np.dtype(reference(model).get_input_details()[0]["dtype"]) == np.uint8
    details = reference(model).get_input_details()
    threads = 2 if name == "mobilenet_v1_0.5_160_quant" else 1      # the VNNI conv's slices, each its own row sums
    check_against_reference(model, full_range_inputs(details, count, zlib.crc32(name.encode())), name,
                            num_threads=threads)


@pytest.mark.parametrize("name,missing", sorted(PUBLIC_OTHERS.items()))
def test_public_models_needing_other_ops_name_the_op(public_models, name, missing):
    """Their uint8 parts load; the error names the first op edgeml lacks (an op that gains a kernel also has to
    join converters/tflite_uint8.UINT8_OPS to run on uint8 tensors)."""
    with pytest.raises(edgeml.UnsupportedOpError, match=f"{missing} ") as err:
        edgeml.Interpreter(public_models / "tflite" / f"{name}.tflite")
    assert "FLIP_SIGN_BIT" not in str(err.value).split(":")[0]


# ----- malformed and unsupported variants ---------------------------------------------------------------------

@pytest.mark.parametrize("name,edit,error,message", [
    ("conv_3x2_stride2_same_relu", U.weights_per_channel, edgeml.UnsupportedOpError, "quantized per channel"),
    ("conv_3x2_stride2_same_relu", U.bias_zero_point, edgeml.ModelFormatError,
     "has zero point 3; a uint8 op.s int32 bias"),
    ("conv_3x2_stride2_same_relu", U.weight_scale_zero, edgeml.ModelFormatError, "quantization scale 0.0"),
    ("logistic", U.logistic_output_zero_point, edgeml.UnsupportedOpError,
     "LOGISTIC uint8 output must be quantized with scale 0.00390625 and zero point 0"),
    ("softmax_last_axis", U.softmax_output_scale, edgeml.UnsupportedOpError, "SOFTMAX uint8 output must be"),
    ("avgpool_3x3_stride2_same", U.pool_output_requantized, edgeml.UnsupportedOpError,
     "needs equal input and output quantization"),
    ("reshape_flatten", U.reshape_output_zero_point, edgeml.UnsupportedOpError, "must share scale and zero point"),
    ("relu", U.relu_to_elu, edgeml.UnsupportedOpError, r"\(ELU v1\).*(uint8|not supported)"),
], ids=["per_channel_weights", "bias_zero_point", "zero_weight_scale", "logistic_output_zero_point",
        "softmax_output_scale", "pool_requantizes", "reshape_zero_point", "unsupported_op"])
def test_malformed_uint8_variant_is_refused(uint8_model, name, edit, error, message):
    """Each case is one edit of a valid rewritten model.  LiteRT refuses the first two too (per-channel scales
    only for int8 / int16; a non-zero bias zero point); it runs a zero weight scale, a LOGISTIC / SOFTMAX output
    off its fixed quantization, a pool that changes quantization and a byte move between zero points, which edgeml
    refuses as it does for int8 rather than guess."""
    uint8_model(name)                   # the unedited model loads
    with pytest.raises(error, match=message):
        edgeml.Interpreter(uint8_model(name, edit=edit))


def test_uint8_weights_under_float_input_are_refused(int8_models):
    """TF1's hybrid form (float activations, uint8 weights with a zero point): the hybrid kernels take symmetric
    int8 weights only."""
    model = U.float_conv_with_uint8_weights(int8_models.get("conv_3x2_stride2_same_relu", "float"))
    with pytest.raises(edgeml.UnsupportedOpError, match="uint8 weights with float32 input"):
        edgeml.Interpreter(model)


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.update(scale=-0.5), "scale must be finite and non-negative"),
    (lambda t: t.update(zero_point=300), "zero point outside the range of uint8"),
], ids=["negative_scale", "zero_point_out_of_range"])
def test_reader_refuses_bad_uint8_quantization(uint8_model, edit, message):
    def change_input(model):
        sg = model.subgraphs[0]
        t = sg.tensors[sg.inputs[0]]
        q = dict(scale=t.quantization.scale[0], zero_point=t.quantization.zeroPoint[0])
        edit(q)
        U.set_quant(t, q["scale"], q["zero_point"])
    with pytest.raises(edgeml.ModelFormatError, match=message):
        edgeml.Interpreter(uint8_model("relu", edit=change_input))


# ----- per-tensor quantization with an out-of-range quantized_dimension -----------------------------------------

def biases_quantized_on_axis_3(model):
    """Each conv / dense bias (1-D, one scale) claims quantized_dimension 3, as some exporters write it."""
    for name in U.WEIGHTED_OPS:
        for op in U.find_ops(model, name):
            b = model.subgraphs[0].tensors[op.inputs[2]]
            U.set_quant(b, b.quantization.scale[:1], b.quantization.zeroPoint[:1], 3)


@pytest.mark.parametrize("name", ["conv_3x2_stride2_same_relu", "dwconv_5x5_m1_dilation2_same",
                                  "conv_5x5_17ch_to_32_large_accumulators"])
def test_single_scale_on_an_outside_dimension_runs_like_tflite_micro(int8_models, name):
    """LiteRT refuses the file (quantized_dimension outside the bias' rank); TFLite Micro runs it with one scale,
    and so does edgeml, bit for bit."""
    tflm = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    fb = U.load(int8_models.get(name, "int8"))
    biases_quantized_on_axis_3(fb)
    model = U.pack(fb)
    with pytest.raises(Exception, match="quantized_dimension"):
        reference(model)
    graph = from_tflite(model)
    assert all(graph.tensors[op.inputs[2]].quant.axis == 0 for op in graph.ops if op.type in U.WEIGHTED_OPS)
    micro = tflm.Interpreter.from_bytes(model)
    ours = edgeml.Interpreter(model)
    for j, xs in enumerate(full_range_inputs(ours.get_input_details(), N_INPUTS, 7)):
        for i, x in enumerate(xs):
            micro.set_input(x, i)
        micro.invoke()
        assert_outputs_equal(run_ours(ours, xs), [micro.get_output(0)], f"{name} input set {j}")
