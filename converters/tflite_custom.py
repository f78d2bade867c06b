"""Custom ops of .tflite files that edgeml implements, with their flexbuffer options parsed and type-checked.

An op whose custom code is listed in CUSTOM_OPS becomes an IR op of the listed type with its options as a plain
dict; any other custom op stays "CUSTOM:<code>" (the op table refuses it by that name).  Options are read with the
`flatbuffers` package's flexbuffers reader (pure Python over the bytes of the option vector); a key LiteRT reads
without a default must be present, and every value must have the type LiteRT converts it to.
"""
from __future__ import annotations

import numpy as np
from flatbuffers import flexbuffers

from edgeml.errors import ModelFormatError

DETECTION_POSTPROCESS = "DETECTION_POSTPROCESS"     # IR op type of the custom op TFLite_Detection_PostProcess

CUSTOM_PREFIX = "CUSTOM:"          # how the reader names a custom op: CUSTOM:<custom code>
OPERATOR_CUSTOM_OPTIONS = 14        # vtable offset of Operator.custom_options (schema field 5)
FLEXBUFFERS = 0                     # CustomOptionsFormat.FLEXBUFFERS
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

# option -> (kind, default): "int" (int32), "float" (float32; an integer is converted as LiteRT's AsFloat does),
# "bool" (a bool or an integer, non-zero is true); default None: required
DETECTION_OPTIONS = {
    "max_detections": ("int", None), "max_classes_per_detection": ("int", None),
    "detections_per_class": ("int", 100), "use_regular_nms": ("bool", False),
    "nms_score_threshold": ("float", None), "nms_iou_threshold": ("float", None), "num_classes": ("int", None),
    "y_scale": ("float", None), "x_scale": ("float", None), "h_scale": ("float", None), "w_scale": ("float", None),
}


def _option_bytes(op_fb, what: str, buf: bytes) -> bytes:
    tab = op_fb._tab
    o = tab.Offset(OPERATOR_CUSTOM_OPTIONS)
    if o == 0:
        raise ModelFormatError(f"{what}: the custom op has no options (a flexbuffer map is required)")
    start, n = tab.Vector(o), tab.VectorLen(o)
    if n <= 0 or start < 0 or start + n > len(buf):
        raise ModelFormatError(f"{what}: custom options of {n} bytes at offset {start} do not lie inside the "
                               f"{len(buf)}-byte file")
    if op_fb.CustomOptionsFormat() != FLEXBUFFERS:
        raise ModelFormatError(f"{what}: custom options format {op_fb.CustomOptionsFormat()} is not FLEXBUFFERS")
    return bytes(buf[start:start + n])


def _value(ref, key: str, kind: str, what: str):
    if kind == "float":
        if not (ref.IsFloat or ref.IsInt):
            raise ModelFormatError(f"{what}: option '{key}' must be a number")
        return float(np.float32(ref.AsFloat if ref.IsFloat else ref.AsInt))
    if kind == "bool":
        if not (ref.IsBool or ref.IsInt):
            raise ModelFormatError(f"{what}: option '{key}' must be a boolean")
        return bool(ref.AsBool)
    if not ref.IsInt:
        raise ModelFormatError(f"{what}: option '{key}' must be an integer")
    value = int(ref.AsInt)
    if not INT32_MIN <= value <= INT32_MAX:
        raise ModelFormatError(f"{what}: option '{key}' = {value} does not fit in 32 bits")
    return value


def _read_map(data: bytes, schema: dict, what: str) -> dict:
    try:
        root = flexbuffers.GetRoot(data)
        if not root.IsMap:
            raise ModelFormatError(f"{what}: custom options are not a flexbuffer map")
        options = root.AsMap
        out = {}
        for key, (kind, default) in schema.items():
            try:
                ref = options[key]
            except KeyError:
                ref = None
            if ref is None or ref.IsNull:
                if default is None:
                    raise ModelFormatError(f"{what}: required option '{key}' is missing")
                out[key] = default
                continue
            out[key] = _value(ref, key, kind, what)
        return out
    except ModelFormatError:
        raise
    except Exception as exc:        # a flexbuffer offset or width that leads outside the option bytes
        raise ModelFormatError(f"{what}: malformed flexbuffer options ({type(exc).__name__}: {exc})") from exc


CUSTOM_OPS = {"TFLite_Detection_PostProcess": (DETECTION_POSTPROCESS, DETECTION_OPTIONS)}


def custom_op(op_fb, name: str, what: str, buf: bytes):
    """(IR op type, options) of the custom op `name` ("CUSTOM:<custom code>"); unknown codes keep their name."""
    code = name[len(CUSTOM_PREFIX):]
    if code not in CUSTOM_OPS:
        return name, {}
    op_type, schema = CUSTOM_OPS[code]
    return op_type, _read_map(_option_bytes(op_fb, what, buf), schema, what)
