"""DETECTION_POSTPROCESS: the custom op TFLite_Detection_PostProcess of SSD detectors (box decoding against constant
anchors, then fast or regular non-max suppression), as LiteRT computes it (cython_ops/include/em_detection.h).
Box encodings and class scores in float32 or int8 (uint8 files arrive held as int8); anchors are dequantized here,
once, as LiteRT dequantizes them on every invoke.  Options come parsed from the file (converters/tflite_custom.py).
"""
from __future__ import annotations

import numpy as np

from cython_ops import load_detection
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import qparams
from edgeml.runtime.plan import Ctx, OpSpec, Step, address

F32, I8 = np.dtype(np.float32), np.dtype(np.int8)
INT32_MAX = (1 << 31) - 1
SCALE_OPTIONS = ("y_scale", "x_scale", "h_scale", "w_scale")


def checked_options(op: Op) -> dict:
    """The options, checked as LiteRT's Prepare and Eval check them (a file they would fail on is refused here)."""
    o = op.options
    what = op.describe()
    for key in ("max_detections", "max_classes_per_detection", "detections_per_class", "num_classes",
                "nms_score_threshold", "nms_iou_threshold", "use_regular_nms") + SCALE_OPTIONS:
        if key not in o:
            raise ModelFormatError(f"{what}: option '{key}' is missing")
    if o["num_classes"] <= 0:
        raise ModelFormatError(f"{what}: num_classes must be positive, got {o['num_classes']}")
    if o["max_detections"] < 0 or o["detections_per_class"] < 0:
        raise ModelFormatError(f"{what}: max_detections ({o['max_detections']}) and detections_per_class "
                               f"({o['detections_per_class']}) must not be negative")
    if o["max_classes_per_detection"] <= 0:
        raise ModelFormatError(f"{what}: max_classes_per_detection must be positive, got "
                               f"{o['max_classes_per_detection']}")
    if o["use_regular_nms"] and min(o["detections_per_class"], o["max_detections"]) <= 0:
        raise ModelFormatError(f"{what}: regular NMS needs positive detections_per_class and max_detections")
    if 2 * o["max_detections"] > INT32_MAX or o["max_detections"] * o["max_classes_per_detection"] > INT32_MAX:
        raise ModelFormatError(f"{what}: max_detections x max_classes_per_detection overflows int32")
    if not 0.0 < o["nms_iou_threshold"] <= 1.0:
        raise ModelFormatError(f"{what}: nms_iou_threshold must lie in (0, 1], got {o['nms_iou_threshold']}")
    if np.isnan(o["nms_score_threshold"]):
        raise ModelFormatError(f"{what}: nms_score_threshold is NaN")
    for key in SCALE_OPTIONS:
        if not np.isfinite(o[key]) or o[key] == 0:
            raise ModelFormatError(f"{what}: {key} must be finite and non-zero, got {o[key]}")
    return o


def dequantized_anchors(ctx: Ctx, op: Op, anchors, boxes_quantized: bool, n_boxes: int) -> np.ndarray:
    """[N, 4] float32 (y, x, h, w), kept with the plan; a quantized one dequantized as LiteRT's Dequantizer:
    ((float)q - zp) * scale."""
    what = op.describe()
    data = ctx.const(anchors, f"{what} anchors")
    if tuple(data.shape) != (n_boxes, 4):
        raise ModelFormatError(f"{what}: anchors {anchors.describe()} have shape {list(data.shape)}, expected "
                               f"[{n_boxes}, 4] (one y, x, h, w per box)")
    if boxes_quantized and anchors.dtype != I8:
        raise UnsupportedOpError(f"{what}: quantized box encodings need quantized anchors, not {anchors.dtype} "
                                 "(LiteRT would read their bytes as uint8)")
    if not boxes_quantized and anchors.dtype != F32:
        raise UnsupportedOpError(f"{what}: float box encodings need float32 anchors, not {anchors.dtype}")
    scale, zp = qparams(anchors, op) if boxes_quantized else (None, None)
    # written straight into the kept array when the weight budget takes it (else keep_array refuses it after the
    # checks, as before)
    fits = ctx.weight_bytes + n_boxes * 16 <= ctx.max_weight_bytes
    values = ctx.keep_new((n_boxes, 4), F32) if fits else np.empty((n_boxes, 4), F32)
    if data.dtype == (I8 if boxes_quantized else F32) and data.flags.c_contiguous and (
            not boxes_quantized or -(1 << 31) < zp < 1 << 31):       # (one C pass: load_detection.anchor_values)
        status = load_detection.anchor_values(data, values, boxes_quantized, zp or 0, scale or 0.0)
    else:
        status = anchor_values_numpy(data, values, boxes_quantized, zp, scale)
    if status == load_detection.ANCHORS_NOT_FINITE:
        raise ModelFormatError(f"{what}: anchors {anchors.describe()} hold values that are not finite")
    if status == load_detection.ANCHORS_NEGATIVE_SIZE:
        raise ModelFormatError(f"{what}: anchors {anchors.describe()} have negative heights or widths (LiteRT "
                               "refuses the boxes they decode to)")
    return values if fits else ctx.keep_array(values)


def anchor_values_numpy(data: np.ndarray, values: np.ndarray, quantized: bool, zp, scale) -> int:
    """load_detection.anchor_values's twin in numpy: `data` dequantized (or copied) into `values`, then checked."""
    if quantized:
        np.subtract(data, np.float32(zp), out=values, dtype=F32)
        if scale < 1e35:            # |q - zp| <= 255: no product overflows float32
            np.multiply(values, np.float32(scale), out=values)
        else:                       # (an infinity is refused below, without numpy's overflow warning)
            with np.errstate(over="ignore"):
                np.multiply(values, np.float32(scale), out=values)
    else:
        values[...] = data
    # whole-array minimum and maximum (NaN carries into both, an infinity shows in one): one fast pass each, and
    # the strided test of the heights and widths only when some value is negative
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high)):
        return load_detection.ANCHORS_NOT_FINITE
    if low < 0 and np.any(values[:, 2:] < 0):
        return load_detection.ANCHORS_NEGATIVE_SIZE
    return load_detection.ANCHORS_OK


def operand_kind(op: Op, t, what: str) -> tuple[int, int, float]:
    """(quantized, zero point, scale) of the box encodings or class scores: float32 or int8 per tensor."""
    if t.dtype == F32:
        return 0, 0, 0.0
    if t.dtype != I8:
        raise UnsupportedOpError(f"{op.describe()}: {what} {t.describe()} has type {t.dtype} (float32, int8 and "
                                 "uint8 are supported)")
    scale, zp = qparams(t, op)
    return 1, zp, float(np.float32(scale))


def scratch_layout(n: int, classes_with_bg: int, classes: int, max_det: int, scores_quantized: bool,
                   regular: bool) -> tuple[dict, int]:
    """Byte offsets of the kernel's work arrays in its scratch buffer (see em_detection.h), and the total."""
    sizes = dict(off_decoded=16 * n, off_scores=4 * n * classes_with_bg if scores_quantized else 0,
                 off_column=4 * n, off_heap=8 * n, off_selected=4 * n, off_class_ranks=0 if regular else 4 * classes,
                 off_detections=2 * (2 * max_det + 1) * 8 if regular else 0, off_decoded_flags=n,
                 off_selected_boxes=5 * 4 * min(n, max_det))
    offsets, total = {}, 0
    for name, size in sizes.items():
        offsets[name] = total
        total += -(-size // 8) * 8
    offsets["selected_capacity"] = min(n, max_det)
    return offsets, max(total, 8)


def prepare_detection(ctx: Ctx, op: Op) -> Step:
    what = op.describe()
    if len(op.inputs) != 3 or len(op.outputs) != 4:
        raise ModelFormatError(f"{what}: expected 3 inputs (box encodings, class scores, anchors) and 4 outputs, "
                               f"got {len(op.inputs)} and {len(op.outputs)}")
    o = checked_options(op)
    boxes, scores, anchors = (ctx.tensor(op, k) for k in range(3))
    bs, ss = ctx.shape(boxes), ctx.shape(scores)
    if len(bs) != 3 or bs[2] < 4:
        raise ModelFormatError(f"{what}: box encodings {boxes.describe()} have shape {list(bs)}, expected "
                               "[1, boxes, 4 or more]")
    if len(ss) != 3 or ss[1] != bs[1]:
        raise ModelFormatError(f"{what}: class scores {scores.describe()} have shape {list(ss)}, expected "
                               f"[1, {bs[1]}, classes]")
    if bs[0] != 1 or ss[0] != 1:
        raise UnsupportedOpError(f"{what}: batch {bs[0]}: the op decodes one image (batch 1), as LiteRT's")
    n, classes_with_bg, classes = bs[1], ss[2], o["num_classes"]
    if classes_with_bg - classes not in (0, 1):
        raise ModelFormatError(f"{what}: class scores hold {classes_with_bg} classes for num_classes={classes} "
                               "(the same, or one more for a background class)")
    if n * classes_with_bg > INT32_MAX:
        raise ModelFormatError(f"{what}: boxes x classes overflows int32")
    box_q, box_zp, box_scale = operand_kind(op, boxes, "box encodings")
    score_q, score_zp, score_scale = operand_kind(op, scores, "class scores")
    anchor_values = dequantized_anchors(ctx, op, anchors, bool(box_q), n)

    slots = o["max_detections"] * o["max_classes_per_detection"]
    for k, shape in enumerate(((1, slots, 4), (1, slots), (1, slots), (1,))):
        if ctx.tensor(op, k, "output").dtype != F32:
            raise UnsupportedOpError(f"{what}: output {k} must be float32")
        ctx.set_output(op, k, shape)
    offsets, scratch = scratch_layout(n, classes_with_bg, classes, o["max_detections"], bool(score_q),
                                      o["use_regular_nms"])
    ints = dict(boxes=n, box_stride=bs[2], classes_with_background=classes_with_bg, num_classes=classes,
                max_detections=o["max_detections"], max_classes_per_detection=o["max_classes_per_detection"],
                detections_per_class=o["detections_per_class"], regular=int(o["use_regular_nms"]),
                box_quantized=box_q, box_zp=box_zp, score_quantized=score_q, score_zp=score_zp, **offsets)
    floats = dict(box_scale=box_scale, score_scale=score_scale, y_scale=o["y_scale"], x_scale=o["x_scale"],
                  h_scale=o["h_scale"], w_scale=o["w_scale"], score_threshold=o["nms_score_threshold"],
                  iou_threshold=o["nms_iou_threshold"])
    outs = [ctx.tensor(op, k, "output").index for k in range(4)]
    anchor_address = address(anchor_values)

    def make(addr):
        return dict(boxes=addr(boxes.index), scores=addr(scores.index), anchors=anchor_address,
                    out_boxes=addr(outs[0]), out_classes=addr(outs[1]), out_scores=addr(outs[2]),
                    out_count=addr(outs[3]), scratch=addr("scratch")), ints, floats
    return Step(op, "detection_postprocess", make, scratch)


OPS = {"DETECTION_POSTPROCESS": OpSpec(prepare_detection, max_version=1, output_types=(F32,))}
