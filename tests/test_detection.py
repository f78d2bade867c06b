"""TFLite_Detection_PostProcess against LiteRT's reference kernels (its custom op), on one-op models written as
flatbuffers (tests/detection_models.py): float32 and uint8 box encodings and scores, fast and regular NMS, score
ties, every box below the threshold, more detections asked for than boxes, keypoint-length encodings; int8 models
against their uint8 twins (LiteRT's kernel refuses int8 at invoke); the op of the public traffic_model.tflite on its
own (the whole model runs in tests/test_public_tflite.py); malformed options and operands.

LiteRT's fast NMS leaves the output slots past num_detections (and a detection's slots past num_classes) unwritten;
edgeml writes zeros there, so each LiteRT invoke starts from zeroed outputs and the arrays are compared whole.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from detection_models import DetectionSpec, build, default_options, option_bytes

import edgeml
from converters.tflite import from_tflite
from edgeml import ModelFormatError, UnsupportedOpError

INPUT_SETS = 20

SPECS = [
    DetectionSpec("float_fast_background", 60, 4),
    DetectionSpec("float_fast_no_background", 61, 3),
    DetectionSpec("float_fast_two_classes_per_box", 45, 6,
                  options=default_options(num_classes=5, max_classes_per_detection=2)),
    DetectionSpec("float_fast_more_classes_per_box_than_classes", 33, 4,
                  options=default_options(max_classes_per_detection=5, max_detections=7)),
    DetectionSpec("float_regular", 70, 5, options=default_options(num_classes=4, use_regular_nms=True,
                                                                  detections_per_class=5)),
    DetectionSpec("float_regular_per_class_above_max", 40, 3, options=default_options(
        num_classes=3, use_regular_nms=True, detections_per_class=100, max_detections=6)),
    DetectionSpec("float_max_detections_above_boxes", 7, 3, options=default_options(num_classes=2,
                                                                                     max_detections=25)),
    DetectionSpec("float_all_below_threshold", 30, 3, options=default_options(num_classes=2,
                                                                              nms_score_threshold=2.0)),
    DetectionSpec("float_regular_all_below_threshold", 30, 3, options=default_options(
        num_classes=2, use_regular_nms=True, nms_score_threshold=2.0)),
    DetectionSpec("float_keypoints_iou_one", 50, 4, box_stride=10,
                  options=default_options(nms_iou_threshold=1.0, nms_score_threshold=-1e30)),
    DetectionSpec("uint8_fast", 300, 5, box_type="uint8", score_type="uint8",
                  options=default_options(num_classes=4, max_detections=30)),
    DetectionSpec("uint8_fast_three_classes_per_box", 200, 8, box_type="uint8", score_type="uint8",
                  options=default_options(num_classes=7, max_classes_per_detection=3, max_detections=20)),
    DetectionSpec("uint8_regular", 250, 4, box_type="uint8", score_type="uint8", score_quant=(0.02, 100),
                  options=default_options(num_classes=3, use_regular_nms=True, detections_per_class=8,
                                          max_detections=20, nms_iou_threshold=0.3)),
    DetectionSpec("uint8_boxes_float_scores", 90, 3, box_type="uint8",
                  options=default_options(num_classes=2, use_regular_nms=True, detections_per_class=4)),
    DetectionSpec("float_boxes_uint8_scores", 90, 4, score_type="uint8", options=default_options(max_detections=15)),
]


def coarse(spec: DetectionSpec, k: int, xs: list) -> list:
    """Every third input set draws scores from four levels, so many boxes and classes tie."""
    if k % 3:
        return xs
    rng = np.random.default_rng(spec.seed + 1000 + k)
    levels = rng.integers(0, 4, xs[1].shape)
    xs[1] = (levels * 60 + 15).astype(xs[1].dtype) if xs[1].dtype == np.uint8 else (levels / 4).astype(np.float32)
    return xs


def litert(model: bytes):
    litert_interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    ref = litert_interpreter.Interpreter(model_content=model,
                                         experimental_op_resolver_type=litert_interpreter.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    return ref


def run_litert(ref, xs: list) -> list:
    for d, x in zip(ref.get_input_details(), xs):
        ref.set_tensor(d["index"], x)
    for d in ref.get_output_details():          # slots LiteRT leaves unwritten read as zeros, as edgeml writes them
        ref.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    ref.invoke()
    return [ref.get_tensor(d["index"]) for d in ref.get_output_details()]


def run_edgeml(it, xs: list) -> list:
    for k, x in enumerate(xs):
        it.set_input(x, k)
    it.invoke()
    return [it.get_output(k) for k in range(4)]


def assert_same(ours: list, ref: list, what: str):
    for k, (a, b) in enumerate(zip(ours, ref)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: output {k} {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        assert np.array_equal(a, b, equal_nan=True), f"{what}: output {k} differs:\n{a}\n{b}"


def test_reader_makes_the_custom_op_an_ir_op_with_its_options():
    spec = DetectionSpec("reader", 10, 4, options=default_options(use_regular_nms=True, detections_per_class=3))
    graph = from_tflite(build(spec))
    (op,) = graph.ops
    assert op.type == "DETECTION_POSTPROCESS"
    assert op.options == dict(spec.options, nms_iou_threshold=0.5, nms_score_threshold=0.0)
    spec = DetectionSpec("reader_defaults", 10, 4, options={k: v for k, v in default_options().items()
                                                             if k not in ("detections_per_class", "use_regular_nms")})
    (op,) = from_tflite(build(spec)).ops
    assert op.options["detections_per_class"] == 100 and op.options["use_regular_nms"] is False


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_matches_litert(spec):
    model = build(spec)
    assert [op.type for op in from_tflite(model).ops if op.type.startswith("DETECTION")] == ["DETECTION_POSTPROCESS"]
    ref, ours = litert(model), edgeml.Interpreter(model)
    counts = []
    for k in range(INPUT_SETS):
        xs = coarse(spec, k, spec.inputs(k))
        expected = run_litert(ref, xs)
        assert_same(run_edgeml(ours, xs), expected, f"{spec.name} input set {k}")
        counts.append(float(expected[3][0]))
    if "below_threshold" in spec.name:
        assert set(counts) == {0.0}
    else:
        assert max(counts) > 0


@pytest.mark.parametrize("regular", [False, True], ids=["fast", "regular"])
def test_int8_equals_its_uint8_twin(regular):
    """LiteRT's kernel refuses int8 operands at invoke; edgeml dequantizes them as uint8 ones, so an int8 model
    (values and zero points shifted by 128) gives exactly what LiteRT gives for its uint8 twin."""
    options = default_options(num_classes=4, use_regular_nms=regular, detections_per_class=6, max_detections=12,
                              max_classes_per_detection=2)
    u8 = DetectionSpec("int8_twin", 150, 5, box_type="uint8", score_type="uint8", options=options,
                       box_quant=(0.05, 140), score_quant=(1 / 200, 20), anchor_quant=(1 / 250, 3))
    def shift(quant):
        return quant[0], quant[1] - 128
    i8 = dataclasses.replace(u8, box_type="int8", score_type="int8", box_quant=shift(u8.box_quant),
                             score_quant=shift(u8.score_quant), anchor_quant=shift(u8.anchor_quant),
                             anchors=u8.anchor_values())
    assert np.array_equal(i8.quantized_anchors().view(np.uint8) ^ 0x80, u8.quantized_anchors())
    ref, ours = litert(build(u8)), edgeml.Interpreter(build(i8))
    for k in range(INPUT_SETS):
        xs = coarse(u8, k, u8.inputs(k))
        twin = [(x.view(np.int8) ^ np.int8(-128)).astype(np.int8) for x in xs]
        assert_same(run_edgeml(ours, twin), run_litert(ref, xs), f"int8 input set {k}")


@pytest.mark.parametrize("case", ["fast_two_classes_per_box", "regular", "fast_three_classes"])
def test_non_finite_float_inputs_match_litert(case):
    """NaN / inf / huge encodings and scores: decoding, IoU, the sorts and the class ranking compare as LiteRT's do.
    (Fast NMS with one class per box and four or more classes is left out: LiteRT's x86 argmax lets a NaN in its
    first vector lane decide, see em_detection.h.)"""
    options = {"fast_two_classes_per_box": default_options(num_classes=5, max_classes_per_detection=2),
               "regular": default_options(num_classes=5, use_regular_nms=True, detections_per_class=4),
               "fast_three_classes": default_options(num_classes=3)}[case]
    spec = DetectionSpec(f"non_finite_{case}", 40, options["num_classes"] + 1,
                         options=dict(options, nms_score_threshold=-1e30, max_detections=15))
    model = build(spec)
    ref, ours = litert(model), edgeml.Interpreter(model)
    rng = np.random.default_rng(spec.seed)
    specials = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 300.0], np.float32)
    for k in range(INPUT_SETS):
        xs = spec.inputs(k)
        for x in xs:
            mask = rng.random(x.shape) < 0.15
            x[mask] = rng.choice(specials, int(mask.sum()))
        assert_same(run_edgeml(ours, xs), run_litert(ref, xs), f"{spec.name} input set {k}")


def traffic_detection_op(path) -> bytes:
    """traffic_model.tflite cut down to its TFLite_Detection_PostProcess: the op's box encodings and scores become
    the graph inputs, its anchors stay the file's constant."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    import flatbuffers
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(path.read_bytes()), 0))
    sg = model.subgraphs[0]
    (op,) = [op for op in sg.operators
             if model.operatorCodes[op.opcodeIndex].customCode == b"TFLite_Detection_PostProcess"]
    sg.operators = [op]
    sg.inputs, sg.outputs = list(op.inputs[:2]), list(op.outputs)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_traffic_model_detection_op_matches_litert(public_models):
    """The real SSD head: 26880 uint8 boxes, 3 classes + background, fast NMS, 40 detections."""
    model = traffic_detection_op(public_models / "tflite" / "traffic_model.tflite")
    (op,) = [op for op in from_tflite(model).ops if op.type != "FLIP_SIGN_BIT"]      # uint8 graph inputs
    assert op.type == "DETECTION_POSTPROCESS"
    assert op.options["max_detections"] == 40 and op.options["num_classes"] == 3
    ref, ours = litert(model), edgeml.Interpreter(model)
    rng = np.random.default_rng(26880)
    for k in range(5):
        boxes = rng.integers(0, 256, (1, 26880, 4)).astype(np.uint8)
        scores = rng.integers(0, 256, (1, 26880, 4)).astype(np.uint8)
        if k % 2:
            scores = (rng.integers(0, 3, scores.shape) * 100).astype(np.uint8)
        xs = [boxes, scores]
        assert_same(run_edgeml(ours, xs), run_litert(ref, xs), f"traffic input set {k}")


# ----- malformed models ---------------------------------------------------------------------------------------

def without(key: str) -> dict:
    return {k: v for k, v in default_options().items() if k != key}


MALFORMED = {
    "missing_max_detections": (dict(options=without("max_detections")), ModelFormatError,
                               "required option 'max_detections' is missing"),
    "missing_y_scale": (dict(options=without("y_scale")), ModelFormatError, "required option 'y_scale'"),
    "string_num_classes": (dict(options=default_options(num_classes="3")), ModelFormatError,
                           "option 'num_classes' must be an integer"),
    "float_max_detections": (dict(options=default_options(max_detections=10.5)), ModelFormatError,
                             "option 'max_detections' must be an integer"),
    "string_threshold": (dict(options=default_options(nms_iou_threshold="0.5")), ModelFormatError,
                         "option 'nms_iou_threshold' must be a number"),
    "huge_max_detections": (dict(options=default_options(max_detections=1 << 40)), ModelFormatError,
                            "does not fit in 32 bits"),
    "zero_classes": (dict(options=default_options(num_classes=0)), ModelFormatError, "num_classes must be positive"),
    "negative_max_detections": (dict(options=default_options(max_detections=-1)), ModelFormatError,
                                "must not be negative"),
    "zero_classes_per_detection": (dict(options=default_options(max_classes_per_detection=0)), ModelFormatError,
                                   "max_classes_per_detection must be positive"),
    "regular_without_per_class": (dict(options=default_options(use_regular_nms=True, detections_per_class=0)),
                                  ModelFormatError, "regular NMS needs positive"),
    "iou_threshold_zero": (dict(options=default_options(nms_iou_threshold=0.0)), ModelFormatError,
                           "nms_iou_threshold must lie in (0, 1]"),
    "iou_threshold_above_one": (dict(options=default_options(nms_iou_threshold=1.5)), ModelFormatError,
                                "nms_iou_threshold"),
    "zero_scale": (dict(options=default_options(h_scale=0.0)), ModelFormatError, "h_scale must be finite"),
    "nan_score_threshold": (dict(options=default_options(nms_score_threshold=float("nan"))), ModelFormatError,
                            "nms_score_threshold is NaN"),
    "two_background_classes": (dict(classes_with_background=5), ModelFormatError, "for num_classes=3"),
    "fewer_scores_than_classes": (dict(classes_with_background=2), ModelFormatError, "for num_classes=3"),
    "anchors_wrong_rows": (dict(anchor_shape=(9, 4)), ModelFormatError, "expected [10, 4]"),
    "anchors_three_columns": (dict(anchor_shape=(10, 3)), ModelFormatError, "expected [10, 4]"),
    "negative_anchor_height": (dict(anchors=np.tile(np.float32([[0.5, 0.5, -0.1, 0.2]]), (10, 1))),
                               ModelFormatError, "negative heights or widths"),
    "nan_anchor": (dict(anchors=np.tile(np.float32([[np.nan, 0.5, 0.1, 0.2]]), (10, 1))), ModelFormatError,
                   "not finite"),
    "short_box_encodings": (dict(box_stride=3), ModelFormatError, "expected [1, boxes, 4 or more]"),
    "options_not_a_map": (dict(raw_options=bytes(__import__("flatbuffers").flexbuffers.Dumps([1, 2]))),
                          ModelFormatError, "not a flexbuffer map"),
    "garbage_options": (dict(raw_options=b"\xff\xff\xff\xff\x07"), ModelFormatError, "options"),
    "three_outputs": (dict(output_count=3), ModelFormatError, "expected 3 inputs"),
    "unknown_custom_op": (dict(custom_code="MyFancyNMS"), UnsupportedOpError, "CUSTOM:MyFancyNMS"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_variant_is_refused(name):
    changes, error, fragment = MALFORMED[name]
    spec = dataclasses.replace(DetectionSpec(f"malformed_{name}", 10, 4), **changes)
    with pytest.raises(error) as info:
        edgeml.Interpreter(build(spec))
    assert fragment in str(info.value)
    if error is ModelFormatError and "options" not in name and name != "unknown_custom_op":
        assert "DETECTION_POSTPROCESS" in str(info.value) or "TFLite_Detection_PostProcess" in str(info.value)


def test_options_bytes_are_what_the_spec_says():
    spec = DetectionSpec("bytes", 10, 4)
    assert __import__("flatbuffers").flexbuffers.Loads(option_bytes(spec)) == spec.options


def test_batch_two_is_refused():
    """The op decodes one image, as LiteRT's: a resize to batch 2 is an InputError naming why."""
    spec = DetectionSpec("batch", 10, 4)
    it = edgeml.Interpreter(build(spec))
    it.resize_input(0, (2, 10, 4))
    it.resize_input(1, (2, 10, 4))
    with pytest.raises(edgeml.InputError, match="batch 2: the op decodes one image"):
        run_edgeml(it, [np.zeros((2, 10, 4), np.float32)] * 2)
