"""Custom ops of .tflite files that edgeml implements, with their flexbuffer options parsed and type-checked.

An op whose custom code is listed in CUSTOM_OPS becomes an IR op of the listed type with its options as a plain
dict; any other custom op stays "CUSTOM:<code>" (the op table refuses it by that name).  Options are read from the
flexbuffer map directly (FlexMap: each position checked against the option bytes); a key LiteRT reads without a
default must be present, and every value must have the type LiteRT converts it to.
"""
from __future__ import annotations

import struct

import numpy as np

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


# flexbuffer value types (flatbuffers' flexbuffers.Type) the options may hold
FLEX_NULL, FLEX_INT, FLEX_UINT, FLEX_FLOAT = 0, 1, 2, 3
FLEX_INDIRECT_INT, FLEX_INDIRECT_UINT, FLEX_INDIRECT_FLOAT, FLEX_MAP, FLEX_BOOL = 6, 7, 8, 9, 26
FLEX_INTS = (FLEX_INT, FLEX_UINT, FLEX_INDIRECT_INT, FLEX_INDIRECT_UINT)
FLEX_FLOATS = (FLEX_FLOAT, FLEX_INDIRECT_FLOAT)
SIGNED = {1: "<b", 2: "<h", 4: "<i", 8: "<q"}
UNSIGNED = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
FLOATS = {4: "<f", 8: "<d"}


class FlexMap:
    """The root map of a flexbuffer, read directly (the `flatbuffers` package's generic reader costs ~0.3 ms per
    map): every position is checked against the bytes before it is read; anything outside is a ValueError."""

    def __init__(self, data: bytes):
        self.data = data
        if len(data) < 3:
            raise ValueError("buffer is too small")
        width, packed = data[-1], data[-2]
        if packed >> 2 != FLEX_MAP:
            raise ModelFormatError("custom options are not a flexbuffer map")
        at = self.offset_target(len(data) - 2 - width, width)
        self.width = 1 << (packed & 3)
        self.at = at
        self.length = self.read(UNSIGNED, at - self.width, self.width)
        keys = self.offset_target(at - 3 * self.width, self.width)
        key_width = self.read(UNSIGNED, at - 2 * self.width, self.width)
        if self.length > len(data) or self.read(UNSIGNED, keys - key_width, key_width) != self.length:
            raise ValueError("map keys and values differ in number")
        self.index = {}
        previous = None
        for k in range(self.length):
            start = self.offset_target(keys + k * key_width, key_width)
            end = data.find(b"\0", start)
            if start < 0 or end < 0:
                raise ValueError("key outside the buffer")
            key = data[start:end]
            if previous is not None and key <= previous:      # (readers search the sorted keys)
                raise ValueError("map keys are not sorted")
            self.index[key.decode("utf-8", "replace")] = k
            previous = key

    def read(self, formats: dict, at: int, width: int):
        if width not in formats or not 0 <= at <= len(self.data) - width:
            raise ValueError(f"{width}-byte value at {at} outside the {len(self.data)}-byte buffer")
        return struct.unpack_from(formats[width], self.data, at)[0]

    def offset_target(self, at: int, width: int) -> int:
        return at - self.read(UNSIGNED, at, width)

    def value(self, key: str):
        """(type, the value as the type reads it) of `key`, None when absent or null."""
        k = self.index.get(key)
        if k is None:
            return None
        packed = self.read(UNSIGNED, self.at + self.length * self.width + k, 1)
        kind, at, width = packed >> 2, self.at + k * self.width, self.width
        if kind in (FLEX_INDIRECT_INT, FLEX_INDIRECT_UINT, FLEX_INDIRECT_FLOAT):
            at, width = self.offset_target(at, width), 1 << (packed & 3)
        if kind == FLEX_NULL:
            return None
        if kind in (FLEX_INT, FLEX_INDIRECT_INT):
            return kind, self.read(SIGNED, at, width)
        if kind in (FLEX_UINT, FLEX_INDIRECT_UINT, FLEX_BOOL):
            return kind, self.read(UNSIGNED, at, width)
        if kind in FLEX_FLOATS:
            return kind, self.read(FLOATS, at, width)
        return kind, None


def _value(kind: int, value, key: str, wanted: str, what: str):
    if wanted == "float":
        if kind not in FLEX_FLOATS and kind not in FLEX_INTS:
            raise ModelFormatError(f"{what}: option '{key}' must be a number")
        return float(np.float32(value))
    if wanted == "bool":
        if kind != FLEX_BOOL and kind not in FLEX_INTS:
            raise ModelFormatError(f"{what}: option '{key}' must be a boolean")
        return value != 0
    if kind not in FLEX_INTS:
        raise ModelFormatError(f"{what}: option '{key}' must be an integer")
    if not INT32_MIN <= value <= INT32_MAX:
        raise ModelFormatError(f"{what}: option '{key}' = {value} does not fit in 32 bits")
    return int(value)


def _read_map(data: bytes, schema: dict, what: str) -> dict:
    try:
        try:
            options = FlexMap(data)
        except ModelFormatError as exc:
            raise ModelFormatError(f"{what}: {exc}") from None
        out = {}
        for key, (wanted, default) in schema.items():
            found = options.value(key)
            if found is None:
                if default is None:
                    raise ModelFormatError(f"{what}: required option '{key}' is missing")
                out[key] = default
                continue
            out[key] = _value(*found, key, wanted, what)
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
