"""The lazy NMS of em_detection.h (candidates taken off a heap in the stable sort's order, boxes decoded on first
use, each candidate compared with the selected boxes only, class ranks computed for the selected boxes only) against
LiteRT's reference kernel, on the cases where a shortcut could change the result: long runs of equal scores (the
order then rests on the anchor index alone), heavily overlapping boxes (long suppression chains), max_detections
reached early and never reached, every score below the threshold, a threshold letting every box through, signed
zeros and infinities among the scores, 1 and 90 classes, fast (class-agnostic) and regular (per-class) NMS; and the
traffic_model op on the inputs its own network gives it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from detection_models import DetectionSpec, build, default_options
from test_detection import assert_same, litert, run_edgeml, run_litert, traffic_detection_op

import edgeml
from converters.tflite import from_tflite

INPUT_SETS = 20


def clustered_anchors(n: int, seed: int) -> np.ndarray:
    """Anchors on a coarse 4 x 4 grid of centres with two sizes: many boxes nearly coincide."""
    rng = np.random.default_rng(seed)
    centres = (rng.integers(0, 4, (n, 2)) + 0.5) / 4
    sizes = rng.choice(np.float32([0.2, 0.35]), (n, 2))
    return np.concatenate([centres, sizes], axis=1).astype(np.float32)


@dataclasses.dataclass
class Case:
    spec: DetectionSpec
    score_levels: int = 0          # > 0: scores drawn from this many levels (long runs of ties)
    box_spread: float = 2.0        # spread of the float box encodings (small: boxes stay on their anchors)
    specials: bool = False         # signed zeros and infinities among float scores
    reaches_max: bool = True       # every input set stops at max_detections (else: candidates run out first)


def case(name, boxes, classes_with_bg, clustered=True, **kw) -> Case:
    options = default_options(**kw.pop("options", {}))
    spec = DetectionSpec(name, boxes, classes_with_bg, options=options, **kw.pop("spec", {}))
    if clustered and spec.box_type == "float32":
        spec.anchors = clustered_anchors(boxes, spec.seed)
    return Case(spec, **kw)


CASES = [
    case("fast_ties_overlap_exhausts_candidates", 2000, 4, score_levels=3, box_spread=0.05, reaches_max=False,
         options=dict(num_classes=3, max_detections=40, nms_score_threshold=-1.0)),
    case("fast_all_equal_scores", 800, 2, score_levels=1, box_spread=0.3,
         options=dict(num_classes=1, max_detections=25, nms_score_threshold=-1.0)),
    case("fast_one_class_no_background", 600, 1, score_levels=5,
         options=dict(num_classes=1, max_detections=30, nms_iou_threshold=0.3)),
    case("fast_max_detections_never_reached", 300, 4, box_spread=0.01, reaches_max=False,
         options=dict(num_classes=3, max_detections=200, nms_iou_threshold=0.2)),
    case("fast_threshold_lets_all_through", 3000, 4, box_spread=1.0,
         options=dict(num_classes=3, max_detections=60, nms_score_threshold=-1e30)),
    case("fast_all_below_threshold", 500, 4, options=dict(num_classes=3, nms_score_threshold=1.5)),
    case("fast_signed_zeros_and_infinities", 700, 4, score_levels=2, specials=True,
         options=dict(num_classes=3, max_detections=30, nms_score_threshold=-1e30)),
    case("fast_90_classes", 1917, 91, options=dict(num_classes=90, max_detections=100)),
    case("fast_90_classes_3_per_box", 1917, 91, score_levels=4,
         options=dict(num_classes=90, max_detections=50, max_classes_per_detection=3)),
    case("regular_ties_overlap", 1500, 4, score_levels=3, box_spread=0.05,
         options=dict(num_classes=3, max_detections=40, detections_per_class=15, use_regular_nms=True,
                      nms_score_threshold=-1.0)),
    case("regular_one_class", 900, 2, score_levels=6,
         options=dict(num_classes=1, max_detections=20, detections_per_class=100, use_regular_nms=True)),
    case("regular_90_classes", 1917, 91, score_levels=5,
         options=dict(num_classes=90, max_detections=100, detections_per_class=10, use_regular_nms=True,
                      nms_score_threshold=0.5)),
    case("regular_all_below_threshold", 400, 4, options=dict(num_classes=3, use_regular_nms=True,
                                                             nms_score_threshold=1.5)),
    case("regular_signed_zeros_and_infinities", 500, 3, score_levels=2, specials=True,
         options=dict(num_classes=2, max_detections=30, detections_per_class=20, use_regular_nms=True,
                      nms_score_threshold=-1e30)),
    case("uint8_fast_ties", 4000, 4, score_levels=4,
         spec=dict(box_type="uint8", score_type="uint8"), options=dict(num_classes=3, max_detections=40,
                                                                       nms_score_threshold=-20.0)),
    case("uint8_regular_ties", 2500, 3, score_levels=3, spec=dict(box_type="uint8", score_type="uint8"),
         options=dict(num_classes=2, max_detections=25, detections_per_class=25, use_regular_nms=True,
                      nms_score_threshold=-20.0)),
]


def inputs(c: Case, k: int) -> list:
    boxes, scores = c.spec.inputs(k)
    rng = np.random.default_rng(c.spec.seed + 7 * k)
    if boxes.dtype == np.float32:
        boxes = (rng.normal(0.0, c.box_spread, boxes.shape)).astype(np.float32)
    if c.score_levels:
        levels = rng.integers(0, c.score_levels, scores.shape)
        if scores.dtype == np.uint8:
            scores = (levels * (255 // max(c.score_levels, 1)) + 3).astype(np.uint8)
        else:
            scores = (levels / max(c.score_levels, 1)).astype(np.float32)
    if c.specials:
        mask = rng.random(scores.shape) < 0.2
        specials = np.float32([0.0, -0.0, np.inf, -np.inf])
        scores[mask] = rng.choice(specials, int(mask.sum()))
    return [boxes, scores]


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.spec.name)
def test_lazy_nms_matches_litert(c):
    model = build(c.spec)
    assert [op.type for op in from_tflite(model).ops if op.type.startswith("DETECTION")] == ["DETECTION_POSTPROCESS"]
    ref, ours = litert(model), edgeml.Interpreter(model)
    counts = []
    for k in range(INPUT_SETS):
        xs = inputs(c, k)
        expected = run_litert(ref, xs)
        assert_same(run_edgeml(ours, xs), expected, f"{c.spec.name} input set {k}")
        counts.append(int(expected[3][0]))
    o = c.spec.options
    if "below_threshold" in c.spec.name:
        assert set(counts) == {0}
    elif c.reaches_max:
        assert set(counts) == {o["max_detections"]}
    else:
        assert 0 < max(counts) < o["max_detections"]


def test_traffic_model_op_on_its_networks_inputs(public_models):
    """The op of traffic_model.tflite on what the network feeds it (LiteRT reference kernels, every tensor kept)
    for three seeded images: 26,880 anchors, all above the -20 threshold."""
    lite = pytest.importorskip("ai_edge_litert.interpreter")
    path = public_models / "tflite" / "traffic_model.tflite"
    whole = lite.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                             experimental_op_resolver_type=lite.OpResolverType.BUILTIN_REF)
    whole.allocate_tensors()
    (op,) = [d for d in whole._get_ops_details() if d["op_name"] == "TFLite_Detection_PostProcess"]
    model = traffic_detection_op(path)
    ref, ours = litert(model), edgeml.Interpreter(model)
    d = whole.get_input_details()[0]
    rng = np.random.default_rng(14)
    for k in range(3):
        whole.set_tensor(d["index"], rng.integers(0, 256, d["shape"]).astype(d["dtype"]))
        whole.invoke()
        xs = [whole.get_tensor(int(i)).copy() for i in op["inputs"][:2]]
        expected = run_litert(ref, xs)
        assert expected[3][0] == 40
        assert_same(run_edgeml(ours, xs), expected, f"traffic image {k}")
