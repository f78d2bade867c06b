"""Converter-made models with an explicit PAD (ZeroPadding2D, tf.pad) before a CONV_2D / DEPTHWISE_CONV_2D, in the
form of tflite_models.py: PADs that fold into the conv's padding (symmetric and asymmetric, VALID and SAME convs,
stride 1 and 2, dilation, depth multiplier) and PADs that must stay (a second reader, a graph output, a pad value
other than the zero point, channel padding).  FOLDS says which PAD steps the plan must drop."""
from __future__ import annotations

from tflite_models import ModelSpec, _both, _single, convert  # noqa: F401  (convert: the model cache calls it)

SPECS: dict = {}
FOLDS: dict = {}          # spec name -> the kinds ("int8", "float") in which its PAD folds into the conv
BOTH = ("int8", "float")


def _add(spec: ModelSpec, folds: tuple):
    assert spec.name not in SPECS
    SPECS[spec.name] = spec
    FOLDS[spec.name] = folds


def _zero_pad(k, pads):
    return k.layers.ZeroPadding2D(pads)


_add(ModelSpec("pad_sym2_conv3x3_valid_stride1", [(11, 9, 3)],
               _single(lambda k, tf, x: k.layers.Conv2D(5, 3, padding="valid", activation="relu")(
                   _zero_pad(k, 2)(x))),
               **_both({"PAD", "CONV_2D"})), BOTH)
_add(ModelSpec("pad_asym_conv3x3_valid_stride2", [(12, 13, 7)],
               _single(lambda k, tf, x: k.layers.Conv2D(9, 3, strides=2, padding="valid")(
                   _zero_pad(k, ((0, 1), (2, 1)))(x))),
               **_both({"PAD", "CONV_2D"})), BOTH)
_add(ModelSpec("pad_asym_conv2x4_same_stride2", [(13, 10, 5)],
               _single(lambda k, tf, x: k.layers.Conv2D(6, (2, 4), strides=2, padding="same", activation="relu6")(
                   _zero_pad(k, ((1, 0), (0, 3)))(x))),
               **_both({"PAD", "CONV_2D"})), BOTH)
_add(ModelSpec("pad_conv3x3_same_dilation2", [(10, 11, 4)],
               _single(lambda k, tf, x: k.layers.Conv2D(3, 3, dilation_rate=2, padding="same")(
                   _zero_pad(k, ((2, 1), (1, 0)))(x))),
               **_both({"PAD", "CONV_2D"})), BOTH)
_add(ModelSpec("pad_asym_dw3x3_valid_stride2", [(15, 14, 10)],
               _single(lambda k, tf, x: k.layers.DepthwiseConv2D(3, strides=2, padding="valid", activation="relu")(
                   _zero_pad(k, ((1, 2), (0, 1)))(x))),
               **_both({"PAD", "DEPTHWISE_CONV_2D"})), BOTH)
_add(ModelSpec("pad_dw5x5_same_stride1_multiplier2", [(9, 12, 3)],
               _single(lambda k, tf, x: k.layers.DepthwiseConv2D(5, depth_multiplier=2, padding="same")(
                   _zero_pad(k, ((0, 2), (3, 1)))(x))),
               **_both({"PAD", "DEPTHWISE_CONV_2D"})), BOTH)
_add(ModelSpec("pad_dw3x3_same_stride2_odd", [(17, 9, 13)],
               _single(lambda k, tf, x: k.layers.DepthwiseConv2D(3, strides=2, padding="same")(
                   _zero_pad(k, ((1, 1), (2, 0)))(k.layers.Conv2D(13, 1, activation="relu")(x)))),
               **_both({"PAD", "DEPTHWISE_CONV_2D", "CONV_2D"})), BOTH)
# PADs that stay: a second reader, a graph output, a non-zero pad value, padding along channels
_add(ModelSpec("pad_feeding_conv_and_add", [(8, 7, 4)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: t[0] + t[1])([
                   k.layers.Conv2D(4, 3, padding="same")(_zero_pad(k, 1)(x)), _zero_pad(k, 1)(x)])),
               **_both({"PAD", "CONV_2D", "ADD"})), ())
_add(ModelSpec("pad_is_also_an_output", [(8, 9, 3)],
               _single(lambda k, tf, x: [k.layers.Conv2D(4, 3, padding="valid")(_zero_pad(k, ((1, 0), (0, 2)))(x)),
                                         _zero_pad(k, ((1, 0), (0, 2)))(x)]),
               **_both({"PAD", "CONV_2D"})), ())
_add(ModelSpec("padv2_constant_then_conv", [(9, 8, 3)],
               _single(lambda k, tf, x: k.layers.Conv2D(4, 3, padding="valid")(k.layers.Lambda(
                   lambda t: tf.pad(t, [[0, 0], [1, 2], [2, 1], [0, 0]], constant_values=0.75))(x))),
               int8_ops=frozenset({"PADV2", "CONV_2D"}), float_ops=frozenset({"PADV2", "CONV_2D"})), ())
# a pad value that quantizes to the zero point: PADV2 in int8 folds (in float 1e-4 is not 0.0 and stays)
_add(ModelSpec("padv2_zero_point_constant_then_dw", [(10, 9, 6)],
               _single(lambda k, tf, x: k.layers.DepthwiseConv2D(3, strides=2, padding="valid")(k.layers.Lambda(
                   lambda t: tf.pad(t, [[0, 0], [2, 0], [1, 2], [0, 0]], constant_values=1e-4))(x))),
               int8_ops=frozenset({"PADV2", "DEPTHWISE_CONV_2D"}), float_ops=frozenset({"PADV2", "DEPTHWISE_CONV_2D"})),
     ("int8",))
_add(ModelSpec("pad_channels_then_conv", [(7, 8, 3)],
               _single(lambda k, tf, x: k.layers.Conv2D(4, 3, padding="valid")(k.layers.Lambda(
                   lambda t: tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 2]]))(x))),
               **_both({"PAD", "CONV_2D"})), ())
