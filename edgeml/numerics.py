"""Load-time quantization arithmetic shared by the readers and the runtime: multipliers, activation ranges,
float <-> int8 conversions, in LiteRT's precision and in onnxruntime's.

Each function reproduces the precision its peer uses at prepare time (double where it computes in double,
float32 where it computes in float) because a last-bit difference in a multiplier changes outputs.
"""
from __future__ import annotations

import math

import numpy as np

F32 = np.float32
INT8_MIN, INT8_MAX = -128, 127
FLOAT_MAX = float(np.finfo(np.float32).max)

# MultiplyByQuantizedMultiplier's two builds (TFLite's default and TFLITE_SINGLE_ROUNDING)
ROUNDING_MODES = {"double": 0, "single": 1}


def round_half_away(x: float) -> int:
    """std::round on a double: nearest, ties away from zero (a - floor(a) is exact, unlike a + 0.5)."""
    a = abs(x)
    f = math.floor(a)
    r = f + 1 if a - f >= 0.5 else f
    return int(-r if x < 0 else r)


def quantize_multiplier(real: float, rounding: int = 0) -> tuple[int, int]:
    """tflite::QuantizeMultiplier: real = m0 * 2^(shift - 31), m0 in [2^30, 2^31)."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"cannot quantize multiplier {real!r}")
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * float(1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if rounding == 1 and shift > 30:   # the single-rounding build clamps large multipliers
        return (1 << 31) - 1, 30
    return int(q_fixed), int(shift)


def quantize_multipliers(reals, rounding: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier of every value (int32 multipliers, int32 shifts).  Many values go in one vectorised
    pass with the same arithmetic: frexp and the scaling by 2^31 are exact in double, so only the rounding needs
    care; a few go one by one (cheaper than numpy's per-call overhead)."""
    real = np.asarray(reals, dtype=np.float64).reshape(-1)
    if real.size <= 16:
        pairs = [quantize_multiplier(r, rounding) for r in real.tolist()]
        return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))
    if not (np.isfinite(real).all() and (real >= 0).all()):
        bad = ~np.isfinite(real) | (real < 0)
        raise ValueError(f"cannot quantize multiplier {float(real[bad][0])!r}")
    q, shift = np.frexp(real)
    scaled = q * float(1 << 31)
    whole = np.floor(scaled)
    q_fixed = whole + (scaled - whole >= 0.5)
    top = q_fixed == float(1 << 31)
    q_fixed = np.where(top, float(1 << 30), q_fixed)
    shift = shift + top
    tiny = shift < -31                   # (a zero has q = 0, shift = 0 from frexp already)
    if rounding == 1:                    # the single-rounding build clamps large multipliers
        big = shift > 30
        q_fixed = np.where(big, float((1 << 31) - 1), q_fixed)
        shift = np.where(big, 30, shift)
    return np.where(tiny, 0, q_fixed).astype(np.int32), np.where(tiny, 0, shift).astype(np.int32)


def mean_multiplier(real: float, count: int, rounding: int = 0) -> tuple[int, int]:
    """QuantizeMultiplier(s_in / s_out) with 1/count folded in, as LiteRT's QuantizedMeanOrSum does:
    shift the multiplier up by floor(log2 count) (at most 32, and not below shift -31), divide by count."""
    m, sh = quantize_multiplier(real, rounding)
    up = min(count.bit_length() - 1, 32, 31 + sh)
    if up < 0:
        return 0, 0
    return (m << up) // count, sh - up


def activation_range_int8(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (f / scale in float32, std::round)."""
    def q(f):
        return zero_point + int(round_half_away(float(F32(f) / F32(scale))))
    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, q(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, q(0.0)), min(INT8_MAX, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, q(-1.0)), min(INT8_MAX, q(1.0))
    raise ValueError(activation)


def activation_range_f32(activation: str) -> tuple[float, float]:
    return {"NONE": (-FLOAT_MAX, FLOAT_MAX), "RELU": (0.0, FLOAT_MAX), "RELU6": (0.0, 6.0),
            "RELU_N1_TO_1": (-1.0, 1.0)}[activation]


def quantize_array(x: np.ndarray, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """float -> int8 as the QUANTIZE op does: x / scale in float32, rounded half away from zero, + zp, saturated."""
    info = np.iinfo(dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v = np.asarray(x, dtype=np.float32) / F32(scale)
    v = np.where(np.isnan(v), F32(0), np.clip(v, F32(-1e9), F32(1e9)))
    t = np.trunc(v)
    r = t + np.where(np.abs(v - t) >= F32(0.5), np.sign(v), F32(0))    # v - trunc(v) is exact in float32
    return np.clip(r.astype(np.int64) + zero_point, info.min, info.max).astype(dtype)


def dequantize_array(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 -> float as the DEQUANTIZE op does: float(scale * (q - zp)) in double."""
    return (float(F32(scale)) * (q.astype(np.float64) - zero_point)).astype(np.float32)


# ----- onnxruntime's arithmetic (x86-64 CPU provider) -------------------------------------------------------

def round_half_even_f32(x) -> np.ndarray:
    """nearbyintf on float32 values (numpy's rint rounds ties to even)."""
    return np.rint(np.asarray(x, dtype=np.float32))


def quantized_bound(value: float, scale: float, zero_point: int) -> int:
    """QuantizeLinear of one float bound (float32 division, ties to even), saturated to int8."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        r = F32(value) / F32(scale)
    r = float(np.clip(r, -1e9, 1e9))
    return int(np.clip(int(round_half_even_f32(r)) + zero_point, INT8_MIN, INT8_MAX))


def quantize_linear_array(x, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """ONNX QuantizeLinear to int8 (or another integer type) on the host, as the kernel computes it (NaN to the
    minimum)."""
    info = np.iinfo(dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.asarray(x, dtype=np.float32) / F32(scale)
    r = np.where(np.isnan(r), F32(-1e9), np.clip(r, F32(-1e9), F32(1e9)))
    return np.clip(round_half_even_f32(r).astype(np.int64) + zero_point, info.min, info.max).astype(dtype)


def column_scales(s_in: float, w_scales: np.ndarray, s_out: float) -> np.ndarray:
    """onnxruntime's per-column output scale, in float32: (x_scale * w_scale[c]) / y_scale."""
    return (F32(s_in) * np.asarray(w_scales, dtype=np.float32)) / F32(s_out)
