"""Conversion-made models for the element-wise speed work (issue 15 part A), in the form of tflite_models.py: PADs
folded into the next conv, aliased RESHAPEs, broadcasting ADD / SUB / MUL big enough for the vector bodies'
main loops and tails, table activations on large tensors and after a broadcast, and run()'s float I/O."""
from __future__ import annotations

from tflite_models import ModelSpec, _both, _single, convert  # noqa: F401  (convert: the model cache calls it)

SPECS: dict = {}


def _add(spec: ModelSpec):
    assert spec.name not in SPECS
    SPECS[spec.name] = spec


# ZeroPadding2D before a VALID conv: the PAD is folded into the conv's padding
_add(ModelSpec("pad_then_dwconv_stride2_valid", [(15, 13, 7)],
               _single(lambda k, tf, x: k.layers.DepthwiseConv2D(3, strides=2, padding="valid", activation="relu")(
                   k.layers.ZeroPadding2D(((0, 1), (1, 2)))(x))),
               **_both({"PAD", "DEPTHWISE_CONV_2D"})))
_add(ModelSpec("pad_then_conv_valid_5ch", [(11, 9, 5)],
               _single(lambda k, tf, x: k.layers.Conv2D(6, 3, padding="valid")(k.layers.ZeroPadding2D(2)(
                   k.layers.Conv2D(5, 1, activation="relu")(x)))),
               **_both({"PAD", "CONV_2D"})))
# a PAD that feeds two readers stays a PAD; RESHAPEs in the middle of the graph share their input's bytes
_add(ModelSpec("pad_two_readers_and_reshapes", [(8, 6, 4)],
               _single(lambda k, tf, x: [k.layers.Reshape((-1,))(k.layers.Conv2D(3, 3, padding="valid")(
                   k.layers.ZeroPadding2D(1)(x))), k.layers.Reshape((-1,))(k.layers.ZeroPadding2D(1)(x))]),
               **_both({"PAD", "CONV_2D", "RESHAPE"})))
# broadcasts big enough for the vector main loops: per channel (squeeze-excite), per row, both inputs broadcasting
_add(ModelSpec("squeeze_excite_mul_hard_swish", [(14, 12, 40)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) * (1.0 / 6.0))(
                   k.layers.Multiply()([x, k.layers.Dense(40, activation="sigmoid")(
                       k.layers.GlobalAveragePooling2D(keepdims=True)(x))]))),
               spread=3.0, **_both({"MUL", "HARD_SWISH", "MEAN"})))
_add(ModelSpec("broadcast_add_sub_mul_both_sides", [(9, 1, 24), (1, 11, 24)],
               lambda k, tf, xs: [k.layers.Lambda(lambda t: t[0] + t[1])(xs),
                                  k.layers.Lambda(lambda t: t[1] - t[0])(xs),
                                  k.layers.Lambda(lambda t: tf.nn.relu(t[0] * t[1]))(xs)],
               **_both({"ADD", "SUB", "MUL"})))
_add(ModelSpec("broadcast_per_frame_and_frequency", [(33, 20, 17)],
               _single(lambda k, tf, x: [
                   k.layers.Lambda(lambda t: t - tf.reduce_mean(t, axis=[2, 3], keepdims=True))(x),
                   k.layers.Lambda(lambda t: t * tf.reduce_mean(t, axis=1, keepdims=True))(x)]),
               **_both({"SUB", "MUL", "MEAN"})))
_add(ModelSpec("leaky_relu_and_relu6_large", [(40, 30, 9)],
               _single(lambda k, tf, x: [k.layers.LeakyReLU(alpha=0.3)(x), k.layers.Lambda(tf.nn.relu6)(x)]),
               spread=4.0, **_both({"LEAKY_RELU", "RELU6"})))
