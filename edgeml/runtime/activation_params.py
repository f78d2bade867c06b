"""Load-time parameters of the int8 activation kernels (cython_ops/include/em_activations.h).

Each function reproduces the corresponding LiteRT / TFLite Micro ``Prepare`` step, including
its choice of float32 or float64 arithmetic:

* quantization parameters are stored as float32 in the flatbuffer; LiteRT widens them to double
  where its code does (``QuantizeMultiplier``, ``PreprocessSoftmaxScaling``, ``frexp``), and keeps
  them float where its code does (``HardSwishPrepare``, ``LUTPopulate``).
* ``TfLiteRound`` is ``std::round``: ties away from zero.

What LiteRT's reference resolver (BUILTIN_REF) runs for int8:

* LOGISTIC and TANH use a 256-entry lookup table built in float at Prepare time
  (``LUTPopulate<int8_t>``), not fixed point.  The ``lut_*`` keys returned by
  :func:`logistic_int8_params` / :func:`tanh_int8_params` feed ``em_logistic_int8_lut_init`` /
  ``em_tanh_int8_lut_init``; the other keys feed the fixed-point kernels ``em_logistic_int8`` /
  ``em_tanh_int8`` (reference_integer_ops, what TFLite Micro runs).
* SOFTMAX uses the gemmlowp fixed-point reference kernel.
* HARD_SWISH uses reference_ops::HardSwish (int16 fixed point).
"""

from __future__ import annotations

import math

import numpy as np

from edgeml.numerics import quantize_multiplier, round_half_away as _round_half_away

EM_ROUND_DOUBLE = 0
EM_ROUND_SINGLE = 1

_INT32_MAX = 2**31 - 1


def _f32(x: float) -> float:
    """Round a Python float to float32 and return it as a Python float (exact widening)."""
    return float(np.float32(x))


def _wrap_int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= (1 << 31) else v


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """tflite::CalculateInputRadius (double arithmetic, floor)."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * float(1 << (total_signed_bits - input_integer_bits))
                          / math.ldexp(1.0, input_left_shift))
    return int(math.floor(max_input_rescaled))


def _downscale_int32_to_int16_multiplier(m: int) -> int:
    """tflite::DownScaleInt32ToInt16Multiplier."""
    if m < 0:
        raise ValueError("DownScaleInt32ToInt16Multiplier: negative multiplier")
    rounding = 1 << 15
    if m >= _INT32_MAX - rounding:
        return 32767
    return (m + rounding) >> 16


# --------------------------------------------------------------------------- output checks

# (scale, zero_point, scale tolerance) the reference kernels assume for their output.
_FIXED_OUTPUTS = {
    # LiteRT SigmoidPrepare: TF_LITE_ENSURE(output->params.scale == 1. / 256) (exact);
    # TFLite Micro: zero point must be -128.
    "LOGISTIC": (1.0 / 256, -128, 0.0),
    # LiteRT SoftmaxPrepare: zero point -128, |scale - 1/256| <= 0.001/256.
    "SOFTMAX": (1.0 / 256, -128, 0.001 / 256),
    # LiteRT's TANH reference path checks nothing (its LUT uses whatever output quantization the
    # model carries); the fixed-point kernel assumes 1/128, 0.  Same tolerance as SOFTMAX.
    "TANH": (1.0 / 128, 0, 0.001 / 128),
}


def check_fixed_output(op_name: str, scale: float, zero_point: int) -> None:
    """Raise ValueError unless (scale, zero_point) is the output quantization ``op_name``
    requires (LOGISTIC/SOFTMAX: 1/256, -128; TANH: 1/128, 0)."""
    key = op_name.upper()
    if key not in _FIXED_OUTPUTS:
        raise ValueError(f"check_fixed_output: unknown op {op_name!r}")
    want_scale, want_zp, tol = _FIXED_OUTPUTS[key]
    s = _f32(scale)
    if int(zero_point) != want_zp or abs(s - want_scale) > tol:
        raise ValueError(
            f"{key} int8 output must be quantized with scale {want_scale!r} and zero point "
            f"{want_zp} (got scale {float(scale)!r}, zero point {int(zero_point)})")


# --------------------------------------------------------------------------- LOGISTIC / TANH

def _q4_params(input_scale: float, input_zero_point: int) -> dict:
    # TFLite Micro CalculateArithmeticOpDataLogistic / tanh CalculateArithmeticOpData (int8):
    # double(scale) * 2^27, frexp, multiplier = round(q * 2^31), radius over 31 bits.
    k_input_integer_bits = 4
    real = _f32(input_scale) * float(1 << (31 - k_input_integer_bits))
    q, left_shift = math.frexp(real)
    multiplier = _wrap_int32(_round_half_away(q * float(1 << 31)))
    radius = calculate_input_radius(k_input_integer_bits, left_shift, 31)
    return {
        "input_zero_point": int(input_zero_point),
        "input_range_radius": int(radius),
        "input_multiplier": int(multiplier),
        "input_left_shift": int(left_shift),
    }


def _lut_keys(input_scale, input_zero_point, output_scale, output_zero_point):
    return {
        "lut_input_scale": _f32(input_scale),
        "lut_input_zero_point": int(input_zero_point),
        "lut_output_scale": _f32(output_scale),
        "lut_output_zero_point": int(output_zero_point),
    }


def logistic_int8_params(input_scale: float, input_zero_point: int,
                         output_scale: float = 1.0 / 256,
                         output_zero_point: int = -128) -> dict:
    """Parameters for LOGISTIC int8.

    Keys input_zero_point, input_range_radius, input_multiplier, input_left_shift feed
    ``em_logistic_int8`` (fixed point, TFLite Micro).  Keys lut_input_scale, lut_input_zero_point,
    lut_output_scale, lut_output_zero_point feed ``em_logistic_int8_lut_init`` (what LiteRT
    BUILTIN_REF runs); pass the model's actual output quantization for those.
    """
    p = _q4_params(input_scale, input_zero_point)
    p.update(_lut_keys(input_scale, input_zero_point, output_scale, output_zero_point))
    return p


def tanh_int8_params(input_scale: float, input_zero_point: int,
                     output_scale: float = 1.0 / 128,
                     output_zero_point: int = 0) -> dict:
    """Parameters for TANH int8 (same keys as :func:`logistic_int8_params`)."""
    p = _q4_params(input_scale, input_zero_point)
    p.update(_lut_keys(input_scale, input_zero_point, output_scale, output_zero_point))
    return p


# --------------------------------------------------------------------------- SOFTMAX

def softmax_int8_params(input_scale: float, beta: float,
                        rounding_mode: int = EM_ROUND_DOUBLE) -> dict:
    """LiteRT SoftmaxPrepare<kReference> for int8: PreprocessSoftmaxScaling(double(beta),
    double(input_scale), 5) and diff_min = -CalculateInputRadius(5, left_shift).

    ``rounding_mode`` EM_ROUND_SINGLE mirrors a TFLITE_SINGLE_ROUNDING build (different cap on
    the multiplier); pass the same mode to ``em_softmax_int8``.
    """
    k_scaled_diff_integer_bits = 5
    max_real = float((1 << 30) - 1) if rounding_mode == EM_ROUND_SINGLE else float((1 << 31) - 1)
    real = min(_f32(beta) * _f32(input_scale) * float(1 << (31 - k_scaled_diff_integer_bits)),
               max_real)
    if not real > 1.0:
        raise ValueError(
            f"SOFTMAX: beta * input_scale * 2^26 must exceed 1 (got {real!r}); "
            "LiteRT's QuantizeMultiplierGreaterThanOne rejects this model")
    multiplier, left_shift = quantize_multiplier(real, rounding_mode)
    if left_shift < 0:
        raise ValueError("SOFTMAX: negative input left shift")
    diff_min = int(-1.0 * calculate_input_radius(k_scaled_diff_integer_bits, left_shift))
    return {
        "input_multiplier": int(multiplier),
        "input_left_shift": int(left_shift),
        "diff_min": diff_min,
    }


# --------------------------------------------------------------------------- HARD_SWISH

def hard_swish_int8_params(input_scale: float, input_zero_point: int,
                           output_scale: float, output_zero_point: int) -> dict:
    """LiteRT HardSwishPrepare for int8 (float32 arithmetic, then QuantizeMultiplier on the
    widened float and DownScaleInt32ToInt16Multiplier)."""
    f32 = np.float32
    in_s = f32(input_scale)
    out_s = f32(output_scale)
    hires_input_scale = f32(f32(1.0) / f32(128.0)) * in_s
    reluish_scale = f32(3.0) / f32(32768.0)
    output_multiplier = f32(hires_input_scale / out_s)
    reluish_multiplier = f32(hires_input_scale / reluish_scale)

    out_m32, out_exp = quantize_multiplier(float(output_multiplier))
    if out_exp > 0:
        raise ValueError(
            "HARD_SWISH: input_scale / (128 * output_scale) must be < 1 "
            f"(output multiplier exponent {out_exp} > 0)")
    rel_m32, rel_exp = quantize_multiplier(float(reluish_multiplier))
    return {
        "input_zero_point": int(input_zero_point),
        "output_zero_point": int(output_zero_point),
        "reluish_multiplier_fixedpoint_int16": _downscale_int32_to_int16_multiplier(rel_m32),
        "reluish_multiplier_exponent": int(rel_exp),
        "output_multiplier_fixedpoint_int16": _downscale_int32_to_int16_multiplier(out_m32),
        "output_multiplier_exponent": int(out_exp),
    }
