"""One-op TFLite_Detection_PostProcess models written directly as flatbuffers (TensorFlow's converter has no route
to the op: TF1 object-detection export adds it), with `flatbuffers` and the `tflite` package's builder functions.

`DetectionSpec` describes one model: box encodings and class scores are graph inputs (float32, uint8 or int8),
anchors a constant, the options a flexbuffer map (or raw bytes, for malformed variants).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Optional

import flatbuffers
import numpy as np
import tflite as fb
from flatbuffers import flexbuffers

TYPES = {"float32": fb.TensorType.FLOAT32, "uint8": fb.TensorType.UINT8, "int8": fb.TensorType.INT8}
DTYPES = {"float32": np.float32, "uint8": np.uint8, "int8": np.int8}


def default_options(**changes) -> dict:
    o = dict(max_detections=10, max_classes_per_detection=1, detections_per_class=100, use_regular_nms=False,
             nms_score_threshold=0.0, nms_iou_threshold=0.5, num_classes=3, y_scale=10.0, x_scale=10.0,
             h_scale=5.0, w_scale=5.0)
    o.update(changes)
    return o


@dataclass
class DetectionSpec:
    name: str
    boxes: int
    classes_with_background: int
    options: dict = field(default_factory=default_options)
    box_type: str = "float32"
    score_type: str = "float32"
    box_quant: tuple = (0.05, 128)            # (scale, zero point) of quantized box encodings
    score_quant: tuple = (1 / 256, 0)
    anchor_quant: tuple = (1 / 255, 0)        # quantized anchors (with quantized box encodings)
    box_stride: int = 4                       # box encoding length (4, or more with keypoints)
    anchors: Optional[np.ndarray] = None      # float [boxes, 4] y, x, h, w; default: seeded grid-like anchors
    anchor_shape: Optional[tuple] = None      # a wrong anchor shape, for malformed variants
    raw_options: Optional[bytes] = None       # custom option bytes instead of `options`
    custom_code: str = "TFLite_Detection_PostProcess"
    output_count: int = 4

    @property
    def seed(self) -> int:
        return int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:4], "little")

    def anchor_values(self) -> np.ndarray:
        if self.anchors is not None:
            return np.asarray(self.anchors, np.float32)
        rng = np.random.default_rng(self.seed)
        centers = rng.uniform(0.1, 0.9, (self.boxes, 2))
        sizes = rng.uniform(0.05, 0.5, (self.boxes, 2))
        return np.concatenate([centers, sizes], axis=1).astype(np.float32)

    def quantized_anchors(self) -> np.ndarray:
        scale, zp = self.anchor_quant
        info = np.iinfo(DTYPES[self.box_type])
        q = np.round(self.anchor_values() / scale) + zp
        return np.clip(q, info.min, info.max).astype(DTYPES[self.box_type])

    def inputs(self, k: int) -> list:
        """The k-th seeded input set: box encodings and class scores in the model's input types."""
        rng = np.random.default_rng(self.seed + 1 + k)
        shapes = [(1, self.boxes, self.box_stride), (1, self.boxes, self.classes_with_background)]
        out = []
        for shape, kind, spread in zip(shapes, (self.box_type, self.score_type), (2.0, 1.0)):
            if kind == "float32":
                values = rng.normal(0.0, spread, shape) if spread != 1.0 else rng.uniform(0.0, 1.0, shape)
                out.append(values.astype(np.float32))
            else:
                info = np.iinfo(DTYPES[kind])
                out.append(rng.integers(info.min, info.max + 1, shape).astype(DTYPES[kind]))
        return out


def option_bytes(spec: DetectionSpec) -> bytes:
    return spec.raw_options if spec.raw_options is not None else bytes(flexbuffers.Dumps(spec.options))


def _vec(b, values, dtype) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=dtype))


def _tables(b, items) -> int:
    b.StartVector(4, len(items), 4)
    for off in reversed(items):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def build(spec: DetectionSpec) -> bytes:
    """The .tflite bytes of `spec`'s one-op model."""
    b = flatbuffers.Builder(4096)
    quantized_boxes = spec.box_type != "float32"
    anchors = spec.quantized_anchors() if quantized_boxes else spec.anchor_values()
    if spec.anchor_shape is not None:
        anchors = np.resize(anchors, spec.anchor_shape)
    buffers = []
    for data in (None, anchors.tobytes()):
        off = b.CreateByteVector(data) if data else None
        fb.BufferStart(b)
        if off is not None:
            fb.BufferAddData(b, off)
        buffers.append(fb.BufferEnd(b))

    tensors_spec = [
        ("box_encodings", (1, spec.boxes, spec.box_stride), spec.box_type, spec.box_quant, 0),
        ("class_predictions", (1, spec.boxes, spec.classes_with_background), spec.score_type, spec.score_quant, 0),
        ("anchors", anchors.shape, spec.box_type, spec.anchor_quant, 1),
        ("detection_boxes", (), "float32", None, 0),         # shapes left to the op, as exported files do
        ("detection_classes", (), "float32", None, 0),
        ("detection_scores", (), "float32", None, 0),
        ("num_detections", (), "float32", None, 0),
    ][:3 + spec.output_count]
    tensors = []
    for name, shape, kind, quant, buffer in tensors_spec:
        name_off = b.CreateString(name)
        shape_off = _vec(b, shape, np.int32)
        q_off = None
        if kind != "float32":
            scale, zp = _vec(b, [quant[0]], np.float32), _vec(b, [quant[1]], np.int64)
            fb.QuantizationParametersStart(b)
            fb.QuantizationParametersAddScale(b, scale)
            fb.QuantizationParametersAddZeroPoint(b, zp)
            q_off = fb.QuantizationParametersEnd(b)
        fb.TensorStart(b)
        fb.TensorAddShape(b, shape_off)
        fb.TensorAddType(b, TYPES[kind])
        fb.TensorAddBuffer(b, buffer)
        fb.TensorAddName(b, name_off)
        if q_off is not None:
            fb.TensorAddQuantization(b, q_off)
        tensors.append(fb.TensorEnd(b))

    outputs = list(range(3, 3 + spec.output_count))
    ins, outs = _vec(b, [0, 1, 2], np.int32), _vec(b, outputs, np.int32)
    custom = b.CreateByteVector(option_bytes(spec))
    fb.OperatorStart(b)
    fb.OperatorAddOpcodeIndex(b, 0)
    fb.OperatorAddInputs(b, ins)
    fb.OperatorAddOutputs(b, outs)
    fb.OperatorAddCustomOptions(b, custom)
    fb.OperatorAddCustomOptionsFormat(b, 0)
    op = fb.OperatorEnd(b)

    t_vec, o_vec = _tables(b, tensors), _tables(b, [op])
    g_in, g_out = _vec(b, [0, 1], np.int32), _vec(b, outputs, np.int32)
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, t_vec)
    fb.SubGraphAddInputs(b, g_in)
    fb.SubGraphAddOutputs(b, g_out)
    fb.SubGraphAddOperators(b, o_vec)
    subgraph = fb.SubGraphEnd(b)

    code_name = b.CreateString(spec.custom_code)
    fb.OperatorCodeStart(b)
    fb.OperatorCodeAddDeprecatedBuiltinCode(b, fb.BuiltinOperator.CUSTOM)
    fb.OperatorCodeAddBuiltinCode(b, fb.BuiltinOperator.CUSTOM)
    fb.OperatorCodeAddCustomCode(b, code_name)
    fb.OperatorCodeAddVersion(b, 1)
    code = fb.OperatorCodeEnd(b)

    codes, subgraphs, buf_vec = _tables(b, [code]), _tables(b, [subgraph]), _tables(b, buffers)
    fb.ModelStart(b)
    fb.ModelAddVersion(b, 3)
    fb.ModelAddOperatorCodes(b, codes)
    fb.ModelAddSubgraphs(b, subgraphs)
    fb.ModelAddBuffers(b, buf_vec)
    b.Finish(fb.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())
