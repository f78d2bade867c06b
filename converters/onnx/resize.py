"""Resize (opsets 10 to 19+) and Upsample for the ONNX reader.  The interpolation is separable: for each resized
axis the reader computes, at load, which input positions every output position reads and with which weights
(the spec's coordinate transformations, nearest modes, linear and cubic kernels, antialias, exclude_outside,
tf_crop_and_resize extrapolation; positions past an edge clamp to it).  Nearest becomes an AXIS_GATHER (exact,
any type), the others one ONNX_RESIZE_AXIS step per axis on float32, in whichever layout the value is held."""
from __future__ import annotations

import math

import numpy as np

from converters.onnx.common import TO_NHWC, Value

F32 = np.dtype(np.float32)
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def source_coordinates(mode: str, n_out: int, n_in: int, scale: float, roi=None):
    """The input coordinate of every output position (float64), and the extrapolation flags (or None)."""
    y = np.arange(n_out, dtype=np.float64)
    length = scale * n_in                       # the output length before rounding to whole positions
    extrapolated = None
    if mode == "align_corners":
        x = np.zeros(n_out) if length == 1 else y * (n_in - 1) / (length - 1)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        start, end = roi
        x = np.full(n_out, (end - start) * (n_in - 1) / 2) if length == 1 else \
            y * (end - start) * (n_in - 1) / (length - 1)
        x = x + start * (n_in - 1)
        extrapolated = (x < 0) | (x > n_in - 1)
    elif mode == "pytorch_half_pixel":
        x = np.full(n_out, -0.5) if length == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    else:     # half_pixel_symmetric: the centre of the (rounded) output maps to the centre of the input
        shift = n_in / 2 * (1 - n_out / length)
        x = shift + (y + 0.5) / scale - 0.5
    return x, extrapolated


def nearest_index(x: np.ndarray, mode: str) -> np.ndarray:
    low = np.floor(x)
    frac = x - low
    if mode == "floor":
        pick = low
    elif mode == "ceil":
        pick = np.ceil(x)
    elif mode == "round_prefer_ceil":
        pick = np.where(frac >= 0.5, low + 1, low)
    else:
        pick = np.where(frac > 0.5, low + 1, low)
    return pick.astype(np.int64)


def keys_cubic(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter a, at distances d."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def interpolation_taps(kind: str, x: np.ndarray, scale: float, antialias: bool, cubic_a: float):
    """(first tap position, weights [out, taps]) of linear or cubic interpolation at source coordinates x: the
    taps are consecutive positions around x (the ones to its left preferred), possibly past the edges."""
    low = np.floor(x)
    ratio = np.where(x == low, 1.0, x - low)            # an exact position reads the tap on its left at weight 1
    shrink = min(scale, 1.0) if antialias else 1.0
    if kind == "linear":
        reach = 1.0 / shrink
        first_offset = int(np.floor(-reach) + 1)        # taps at low + first_offset ... symmetric around x
    else:
        reach = 2.0 / shrink
        first_offset = int(np.floor(-reach) + 1)
    count = 2 - 2 * first_offset
    offsets = np.arange(first_offset, first_offset + count, dtype=np.float64)
    dist = (offsets[None, :] - ratio[:, None]) * shrink
    if kind == "linear":
        w = np.clip(1.0 - np.abs(dist), 0.0, 1.0)
    else:
        w = keys_cubic(dist, cubic_a)
    if antialias:
        w = w / w.sum(axis=1, keepdims=True)
    start = np.where(x == low, low - 1, low).astype(np.int64) + first_offset
    return start, w


class ResizeOps:
    """Uses the host translator's helpers (preferred, typed, op, axis_gather, ...)."""

    def op_Upsample(self, node, ins, attrs):
        """Opsets 7 to 9: scales as an attribute (7) or a constant input; nearest (floor) or (bi)linear, asymmetric."""
        self.check_attrs(attrs, {"mode", "scales", "height_scale", "width_scale"})
        x = ins[0]
        if "scales" in attrs:
            scales = [float(s) for s in attrs["scales"]]
        elif len(ins) > 1 and ins[1] is not None:
            scales = [float(s) for s in self.const_of(ins[1], "the scales input").reshape(-1)]
        else:
            self.bad("no scales")
        mode = attrs.get("mode", "nearest")
        if mode == "bilinear":
            mode = "linear"
        self.resize_value(node.output[0], x, scales, None, mode, "asymmetric", "floor", -0.75, False,
                          False, 0.0, None)

    def op_Resize(self, node, ins, attrs):
        self.check_attrs(attrs, {"mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
                                 "exclude_outside", "extrapolation_value", "antialias", "axes",
                                 "keep_aspect_ratio_policy"})
        self.need(ins, 1, 4)
        x = ins[0]
        mode = attrs.get("mode", "nearest")
        coord = attrs.get("coordinate_transformation_mode", "half_pixel" if self.opset >= 11 else "asymmetric")
        nearest = attrs.get("nearest_mode", "round_prefer_floor")
        if mode not in ("nearest", "linear", "cubic") or coord not in COORDINATE_MODES or nearest not in NEAREST_MODES:
            self.bad(f"mode {mode!r}, coordinate_transformation_mode {coord!r}, nearest_mode {nearest!r}")
        if self.opset < 11:
            self.need(ins, 2, 2)
            scales, sizes, roi = [float(s) for s in self.const_of(ins[1], "the scales input").reshape(-1)], None, None
        else:
            def optional(k, what):
                if len(ins) > k and ins[k] is not None:
                    data = self.const_of(ins[k], what)
                    return data.reshape(-1) if data.size else None
                return None
            roi, scales, sizes = optional(1, "roi"), optional(2, "scales"), optional(3, "sizes")
            if (scales is None) == (sizes is None):
                self.bad("exactly one of scales and sizes must be given")
        axes = attrs.get("axes")
        policy = attrs.get("keep_aspect_ratio_policy", "stretch")
        if policy not in ("stretch", "not_larger", "not_smaller"):
            self.bad(f"keep_aspect_ratio_policy {policy!r}")
        self.resize_value(node.output[0], x, None if scales is None else [float(s) for s in scales],
                          None if sizes is None else [int(s) for s in sizes], mode, coord, nearest,
                          float(attrs.get("cubic_coeff_a", -0.75)), bool(attrs.get("exclude_outside", 0)),
                          bool(attrs.get("antialias", 0)), float(attrs.get("extrapolation_value", 0.0)),
                          None if roi is None else [float(r) for r in roi], axes, policy)

    def resize_value(self, name, x: Value, scales, sizes, mode, coord, nearest, cubic_a, exclude_outside, antialias,
                     extrapolation, roi, axes=None, policy="stretch"):
        rank = x.rank
        axes = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
        if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
            self.bad(f"axes {axes} for rank {rank}")
        given = scales if scales is not None else sizes
        if len(given) != len(axes):
            self.bad(f"{len(given)} scales / sizes for {len(axes)} axes")
        full_scale = [1.0] * rank
        out = list(x.shape)
        if sizes is not None:
            ratios = [s / x.shape[a] for s, a in zip(sizes, axes)]
            if policy != "stretch":
                pick = min(ratios) if policy == "not_larger" else max(ratios)
                ratios = [pick] * len(axes)
                sizes = [int(pick * x.shape[a] + 0.5) for a in axes]
            for a, r, s in zip(axes, ratios, sizes):
                full_scale[a], out[a] = r, int(s)
        else:
            for a, s in zip(axes, scales):
                if not s > 0:
                    self.bad(f"scale {s} (scales must be positive)")
                full_scale[a], out[a] = s, int(math.floor(s * x.shape[a]))
        if any(d <= 0 for d in out):
            self.unsupported("Resize to an empty tensor (empty tensors are not supported)")
        rois = {}
        if coord == "tf_crop_and_resize":
            if roi is None or len(roi) != 2 * len(axes):
                self.bad(f"tf_crop_and_resize needs a roi of {2 * len(axes)} values")
            rois = {a: (roi[k], roi[k + len(axes)]) for k, a in enumerate(axes)}
        plans = []
        for a in axes:
            identity = out[a] == x.shape[a] and math.isclose(full_scale[a], 1.0) and \
                (a not in rois or (math.isclose(rois[a][0], 0.0) and math.isclose(rois[a][1], 1.0)))
            if not identity:
                plans.append((a, self._axis_plan(x.shape[a], out[a], full_scale[a], mode, coord, nearest, cubic_a,
                                                 exclude_outside, antialias, rois.get(a))))
        if not plans:
            self.values[name] = x
            return
        if mode == "nearest" and all(p[1][2] is None for p in plans):
            tables = [list(range(d)) for d in x.shape]
            for a, (idx, _, _) in plans:
                tables[a] = idx[:, 0].tolist()
            self.axis_gather(name, x, tables)
            return
        if x.dtype != F32:
            self.unsupported(f"{mode} Resize of {x.dtype} (float32 is supported; nearest takes any type)")
        t, nhwc = self.preferred(x)
        t = self._as_float32(t)
        ir_shape = list(self.tensors[t].shape)
        for k, (a, (idx, w, flags)) in enumerate(plans):
            ir_axis = TO_NHWC.index(a) if nhwc else a
            ir_shape[ir_axis] = idx.shape[0]
            last = k == len(plans) - 1
            out_t = self.tensor(name if last else f"{name}/axis{a}", tuple(ir_shape), F32)
            self.op("ONNX_RESIZE_AXIS", [t], [out_t], axis=ir_axis, indices=idx.tolist(),
                    weights=w.astype(np.float32).tolist(),
                    extrapolated=[] if flags is None else flags.astype(np.uint8).tolist(),
                    extrapolation_value=extrapolation)
            t = out_t
        self.new_value(name, tuple(out), F32, t, nhwc)

    def _axis_plan(self, n_in, n_out, scale, mode, coord, nearest, cubic_a, exclude_outside, antialias, roi):
        """(indices [out, taps] clamped to the axis, weights, extrapolation flags or None) of one axis."""
        x, flags = source_coordinates(coord, n_out, n_in, scale, roi)
        if mode == "nearest":
            idx = np.clip(nearest_index(x, nearest), 0, n_in - 1).reshape(-1, 1)
            return idx, np.ones(idx.shape), flags
        start, w = interpolation_taps(mode, x, scale, antialias, cubic_a)
        positions = start[:, None] + np.arange(w.shape[1])[None, :]
        if exclude_outside:
            w = np.where((positions < 0) | (positions >= n_in), 0.0, w)
            total = w.sum(axis=1, keepdims=True)
            w = w / np.where(total == 0, 1.0, total)
        return np.clip(positions, 0, n_in - 1), w, flags
