"""Model zoo for `edgeml train`: small tf_keras (Keras 2) models sized for microcontrollers.

Every model takes RAW input (the `Dataset` arrays as loaded) and normalizes inside the model, so the exported
.tflite needs no preprocessing.  The rule, one for all models and all input ranks: the first layer after the
input is a `Normalization(axis=-1)` layer named "normalize" whose mean and variance are computed from `x_train`
per channel (rank-3 images: statistics over all pixels of each channel) or per feature (rank-1 / rank-2 inputs:
statistics over samples [and time steps] of each last-axis feature).  A variance of zero (a constant channel or
feature) is replaced by 1, so a constant input maps to 0 instead of blowing up.  Without `x_train` the layer is the
identity (mean 0, variance 1); set its weights before training in that case.  The exception: `transformer` given
token ids (`vocab_size`) starts with an Embedding of its int32 input instead.

Shapes: image models (cnn, ds_cnn, resnet8, mobilenet_v1) take (H, W, C); (H, W) becomes (H, W, 1) and a feature
vector (F,) becomes a column image (F, 1, 1) (strides and pools then only act along the first axis).  Sequence
models (lstm, gru, rnn, transformer) read (H, W[, C]) as H time steps of W*C features and (F,) as F steps of 1
feature.  mlp and autoencoder flatten any shape.  Strides and pools are chosen from the actual spatial size, so
spatial dimensions never reach 0 (8x8 digits work with every model).

Tasks: models are classifiers ending in a softmax over `num_classes`, or with `task="regression"` end in a linear
Dense of `num_classes` values followed, when `y_train` is given, by an inverted Normalization named "target_scale"
(raw = mean + std * head, mean / std per output over y_train): the head learns standardized targets, the exported
files still predict raw ones, and the int8 output scale covers the target range; "autoencoder" (MLPerf Tiny anomaly detection style) outputs the reconstruction of
its NORMALIZED, flattened input, shape (batch, prod(shape)): train it with MSE against `normalized_target(model, x)`.
`MODEL_TASKS` maps each name to its default task; built models also carry `model._edgeml_task` (plain Python
attributes: they do not survive saving, cloning or tfmot wrapping).

BatchNormalization: `bn_momentum` sets the moving averages' momentum of every BatchNorm layer.  Keras's 0.99
needs hundreds of steps to forget its initial statistics; on small data (digits: 40 steps an epoch) the
inference-mode model stays at chance while training accuracy climbs, so the trainer passes
`batchnorm_momentum(steps_per_epoch)`.

Models are returned uncompiled.  Recurrent models convert to TFLite only with a fixed batch size: build an export
twin with `batch_size=1` and copy the weights (`twin.set_weights(model.get_weights())`).
"""
from __future__ import annotations

import numpy as np

from edgeml.errors import TrainingError
from edgeml.train import keras_env
from edgeml.train.layers import position_embedding

MODEL_NAMES = ("mlp", "cnn", "ds_cnn", "resnet8", "mobilenet_v1", "autoencoder", "lstm", "gru", "rnn", "transformer")
MODEL_TASKS = {name: ("reconstruction" if name == "autoencoder" else "classification") for name in MODEL_NAMES}
IMAGE_MODELS = ("cnn", "ds_cnn", "resnet8", "mobilenet_v1")
RECURRENT_MODELS = ("lstm", "gru", "rnn")
RNN_UNITS = 32
TRANSFORMER_WIDTH, TRANSFORMER_HEADS, TRANSFORMER_BLOCKS = 32, 2, 1
ZOO_EPOCHS = {}                     # default epochs where a model needs other than the trainer's 15
# Test accuracy every listed model reaches on digits with its defaults (seed 0, all runtimes, float and int8), a
# margin of 4-7 points under what was measured (mlp 0.974, cnn 0.974, ds_cnn 0.989, resnet8 0.989, mobilenet_v1
# 0.881-0.889, lstm 0.919 and transformer 0.919, both still rising at their 15th epoch); the autoencoder's entry
# is the most reconstruction MSE (measured 0.226, the normalized input's variance being 0.505).  Checked by
# tests/test_train_zoo.py under -m slow.
ZOO_DIGITS_ACCURACY = {"mlp": 0.93, "cnn": 0.93, "ds_cnn": 0.94, "resnet8": 0.94, "mobilenet_v1": 0.82,
                       "lstm": 0.85, "transformer": 0.85, "autoencoder": 0.30}
DEFAULT_BN_MOMENTUM = 0.99          # Keras's default, for callers that do not know their steps per epoch


def batchnorm_momentum(steps_per_epoch: int) -> float:
    """A BatchNorm momentum whose moving averages remember about a quarter of an epoch (1 / (1 - m) steps),
    between 2 steps and Keras's 0.99 (100 steps): digits' 40 steps an epoch give 0.9."""
    memory = min(100.0, max(2.0, steps_per_epoch / 4.0))
    return round(1.0 - 1.0 / memory, 4)


# ---- normalization -------------------------------------------------------------------------------------------


def normalization_stats(x_train: np.ndarray | None, input_shape: tuple):
    """Per-last-axis mean and variance (float32, shape (C,)) of x_train; identity (0, 1) without data."""
    channels = int(input_shape[-1])
    if x_train is None:
        return np.zeros(channels, np.float32), np.ones(channels, np.float32)
    flat = np.asarray(x_train, dtype=np.float64).reshape(-1, channels)
    mean = flat.mean(axis=0)
    var = flat.var(axis=0)
    var = np.where(var > 1e-12, var, 1.0)
    return mean.astype(np.float32), var.astype(np.float32)


def _normalizer(mean: np.ndarray, var: np.ndarray, input_shape: tuple):
    """numpy twin of the model's Normalization layer, flattened per sample (the autoencoder's target)."""
    std = np.maximum(np.sqrt(var.astype(np.float32)), np.float32(1e-7))

    def normalize(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape((-1,) + tuple(input_shape))
        return ((x - mean) / std).reshape(len(x), -1).astype(np.float32)
    return normalize


def normalized_target(model, x: np.ndarray) -> np.ndarray:
    """The autoencoder target for `x`: the input as the model's "normalize" layer sees it, flattened per sample.

    Works on a model that lost its `_edgeml_normalize` attribute (saved and loaded, cloned, wrapped by tfmot) by
    running the Normalization layer's weights."""
    fn = getattr(model, "_edgeml_normalize", None)
    if fn is not None:
        return fn(x)
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)               # tfmot wrappers keep the wrapped layer as .layer
        if type(inner).__name__ == "Normalization":
            mean, var = np.asarray(inner.mean), np.asarray(inner.variance)
            shape = tuple(model.input_shape[1:])
            return _normalizer(mean.reshape(-1), var.reshape(-1), shape)(x)
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1)


# ---- building ------------------------------------------------------------------------------------------------


def _check_args(name, input_shape, num_classes, x_train, alpha, batch_size, task, vocab_size):
    if name not in MODEL_NAMES:
        raise TrainingError(f"unknown model '{name}': use one of {', '.join(MODEL_NAMES)}")
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise TrainingError(f"input_shape must be a tuple of positive integers, got {input_shape!r}") from None
    if not shape or min(shape) < 1:
        raise TrainingError(f"input_shape must be a tuple of positive integers (per sample, no batch axis), "
                            f"got {input_shape!r}")
    if name not in ("mlp", "autoencoder") and len(shape) > 3:
        raise TrainingError(f"model '{name}' takes inputs of rank 1 to 3 per sample (features, sequence or image), "
                            f"got shape {shape}; use 'mlp' or reshape the data")
    if task not in ("classification", "regression"):
        raise TrainingError(f"task must be 'classification' or 'regression', got {task!r}")
    least = 2 if task == "classification" else 1
    if name != "autoencoder" and (not isinstance(num_classes, (int, np.integer)) or num_classes < least):
        what = "num_classes" if task == "classification" else "num_classes (values per sample)"
        raise TrainingError(f"{what} must be an integer of at least {least}, got {num_classes!r}")
    if name == "mobilenet_v1" and not alpha > 0:
        raise TrainingError(f"alpha (the MobileNet width multiplier) must be positive, got {alpha}")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise TrainingError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if vocab_size is not None and (name != "transformer" or len(shape) != 1 or vocab_size < 2):
        raise TrainingError("vocab_size (token-id input) is for the transformer on (T,) sequences of token ids, "
                            f"got vocab_size={vocab_size} for '{name}' with input shape {shape}")
    if x_train is not None:
        x_train = np.asarray(x_train)
        if x_train.ndim < 1 or len(x_train) == 0:
            raise TrainingError("x_train must hold at least one sample")
        if int(np.prod(x_train.shape[1:])) != int(np.prod(shape)):
            raise TrainingError(f"x_train has per-sample shape {tuple(x_train.shape[1:])}, which does not fit the "
                                f"model input shape {shape}")
    return shape


def build_model(name: str, input_shape: tuple, num_classes: int, *, x_train: np.ndarray | None = None,
                alpha: float = 0.25, seed: int = 0, batch_size: int | None = None, unroll: bool = False,
                task: str = "classification", bn_momentum: float | None = None, vocab_size: int | None = None,
                y_train: np.ndarray | None = None):
    """Builds the uncompiled zoo model `name` for RAW inputs of per-sample `input_shape`.

    num_classes: classes of the softmax head, or values per sample of the linear head when task="regression".
    x_train: training inputs for the Normalization statistics (strongly recommended).
    alpha: MobileNet width multiplier (mobilenet_v1 only).
    seed: weight initialization seed (`keras.utils.set_random_seed`).
    batch_size: fixed batch size of the Input (None = dynamic); use 1 for the export twin of a recurrent model.
    unroll: unroll the recurrent layer (lstm / gru / rnn): the only int8 TFLite route for GRU and SimpleRNN.
    bn_momentum: momentum of every BatchNormalization (None: 0.99, mobilenet_v1 0.9); see batchnorm_momentum.
    vocab_size: the transformer reads int32 token ids 0..vocab_size-1 through an Embedding (input shape (T,)).
    y_train: regression targets (task="regression"): their per-output mean / std rescale the linear head.
    """
    shape = _check_args(name, input_shape, num_classes, x_train, alpha, batch_size, task, vocab_size)
    tf, keras = keras_env()
    keras.utils.set_random_seed(int(seed))
    if vocab_size is not None:
        inp = keras.Input(shape=shape, batch_size=batch_size, name="input", dtype="int32")
        x = inp
    else:
        mean, var = normalization_stats(x_train, shape)
        inp = keras.Input(shape=shape, batch_size=batch_size, name="input")
        x = keras.layers.Normalization(axis=-1, mean=mean, variance=var, name="normalize")(inp)
    builder = {"mlp": _mlp, "cnn": _cnn, "ds_cnn": _ds_cnn, "resnet8": _resnet8, "mobilenet_v1": _mobilenet_v1,
               "autoencoder": _autoencoder, "lstm": _recurrent, "gru": _recurrent, "rnn": _recurrent,
               "transformer": _transformer}[name]
    momentum = bn_momentum if bn_momentum is not None else (0.9 if name == "mobilenet_v1" else DEFAULT_BN_MOMENTUM)
    features = builder(keras, x, shape, name=name, alpha=alpha, unroll=unroll, bn=dict(momentum=momentum),
                       vocab_size=vocab_size)
    if name == "autoencoder":
        out = features
    elif task == "regression":
        out = keras.layers.Dense(num_classes, name="regression")(features)
        if y_train is not None:
            y_mean, y_var = normalization_stats(np.asarray(y_train).reshape(len(y_train), -1), (num_classes,))
            out = keras.layers.Normalization(axis=-1, mean=y_mean, variance=y_var, invert=True,
                                             name="target_scale")(out)
    else:
        out = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(features)
    model = keras.Model(inp, out, name=name)
    model._edgeml_task = MODEL_TASKS[name] if name == "autoencoder" else task
    if name == "autoencoder":
        model._edgeml_normalize = _normalizer(mean, var, shape)
    return model


def _to_image(keras, x, shape):
    if len(shape) == 3:
        return x, shape
    new = (shape[0], 1, 1) if len(shape) == 1 else (shape[0], shape[1], 1)
    return keras.layers.Reshape(new, name="to_image")(x), new


def _to_sequence(keras, x, shape):
    if len(shape) == 2:
        return x, shape
    new = (shape[0], 1) if len(shape) == 1 else (shape[0], shape[1] * shape[2])
    return keras.layers.Reshape(new, name="to_sequence")(x), new


def _hw(x):
    return int(x.shape[1]), int(x.shape[2])


def _stride(x, min_dim: int):
    """Stride 2 along each spatial axis at least `min_dim` long, else 1 ('same' padding: never reaches 0)."""
    h, w = _hw(x)
    return (2 if h >= min_dim else 1, 2 if w >= min_dim else 1)


def _kernel(x, k=3):
    """A k x k kernel clipped to the spatial size (a column image (F, 1, 1) gets k x 1 kernels)."""
    h, w = _hw(x)
    return (min(k, h), min(k, w))


def _conv_bn_relu(keras, x, filters, bn, kernel=None, strides=1, relu_max=None):
    kernel = _kernel(x) if kernel is None else kernel
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(**bn)(x)
    return keras.layers.ReLU(max_value=relu_max)(x)


def _pooled(keras, x, dropout=0.0):
    """AveragePooling over the whole remaining spatial extent and Flatten (MLPerf Tiny style), before the head."""
    x = keras.layers.AveragePooling2D(pool_size=_hw(x))(x)
    x = keras.layers.Flatten()(x)
    return keras.layers.Dropout(dropout)(x) if dropout else x


def _mlp(keras, x, shape, **_):
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.layers.Dense(32, activation="relu")(x)


def _cnn(keras, x, shape, *, bn, **_):
    """Stages of two 3x3 Conv-BN-ReLU and a 2x2 MaxPool (16, 32, 64, 64 filters), Flatten, Dropout.

    2 to 4 stages: as many as bring the longer spatial axis down to about 4 (8x8 digits: 2, 32x32: 3, 96x96: 4)."""
    x, shape = _to_image(keras, x, shape)
    stages = int(min(4, max(2, np.ceil(np.log2(max(shape[:2]) / 4)))))
    for filters in (16, 32, 64, 64)[:stages]:
        x = _conv_bn_relu(keras, x, filters, bn)
        x = _conv_bn_relu(keras, x, filters, bn)
        h, w = _hw(x)
        pool = (2 if h >= 2 else 1, 2 if w >= 2 else 1)
        if pool != (1, 1):
            x = keras.layers.MaxPooling2D(pool)(x)
    x = keras.layers.Flatten()(x)
    return keras.layers.Dropout(0.25)(x)


def _ds_cnn(keras, x, shape, *, bn, **_):
    """MLPerf Tiny keyword spotting DS-CNN: a strided Conv (10x4 on 49x10 MFCCs, scaled to the input), four
    depthwise-separable blocks of 64 filters with BN/ReLU, AveragePool."""
    x, shape = _to_image(keras, x, shape)
    h, w = shape[:2]
    kernel = (min(h, 10, max(3, round(h / 5))), min(w, 4, max(3, round(w / 2.5))))
    x = _conv_bn_relu(keras, x, 64, bn, kernel=kernel, strides=_stride(x, 8))
    x = keras.layers.Dropout(0.2)(x)
    for _ in range(4):
        x = keras.layers.DepthwiseConv2D(_kernel(x), padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(**bn)(x)
        x = keras.layers.ReLU()(x)
        x = _conv_bn_relu(keras, x, 64, bn, kernel=1)
    x = keras.layers.Dropout(0.4)(x)
    return _pooled(keras, x)


def _resnet8(keras, x, shape, *, bn, **_):
    """MLPerf Tiny image classification ResNet-8: Conv 16, residual stacks of 16 / 32 / 64 filters (the last two
    strided, with a 1x1 conv shortcut), AveragePool."""
    x, shape = _to_image(keras, x, shape)
    x = _conv_bn_relu(keras, x, 16, bn)
    for filters, downsample in ((16, False), (32, True), (64, True)):
        strides = _stride(x, 4) if downsample else (1, 1)
        y = _conv_bn_relu(keras, x, filters, bn, strides=strides)
        y = keras.layers.Conv2D(filters, _kernel(y), padding="same", use_bias=False)(y)
        y = keras.layers.BatchNormalization(**bn)(y)
        if strides != (1, 1) or int(x.shape[-1]) != filters:
            x = keras.layers.Conv2D(filters, 1, strides=strides, padding="same")(x)
        x = keras.layers.Add()([x, y])
        x = keras.layers.ReLU()(x)
    return _pooled(keras, x)


MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _mobilenet_v1(keras, x, shape, *, alpha, bn, **_):
    """MobileNet v1 (width `alpha`, ReLU6): Conv 32a, 13 depthwise-separable blocks, AveragePool.

    Scaled for small inputs: a stride of 2 halves a spatial axis only while it is at least 8 long (96x96 keeps all
    five strides like the MLPerf Tiny visual wake words model; 8x8 digits keep a 4x4 map).  When the 512-filter
    stage runs at 4x4 or less (inputs below ~64 pixels a side) only one of its five repeated blocks is kept: the
    full 27-BatchNorm stack at that size trains badly from scratch."""
    x, shape = _to_image(keras, x, shape)

    def width(c):
        return max(8, int(c * alpha))
    x = _conv_bn_relu(keras, x, width(32), bn, strides=_stride(x, 8), relu_max=6.0)
    repeats = 0
    for filters, stride in MOBILENET_BLOCKS:
        if filters == 512 and stride == 1:
            repeats += 1
            if repeats > 1 and max(_hw(x)) <= 4:
                continue
        strides = _stride(x, 8) if stride == 2 else (1, 1)
        # TensorFlow's own depthwise kernel (used where it does not take oneDNN's: AMD, Intel without AVX-512)
        # refuses unequal strides: a stride along one axis only moves to the block's 1x1 conv (same output shape)
        dw_strides, pw_strides = (strides, 1) if strides[0] == strides[1] else ((1, 1), strides)
        x = keras.layers.DepthwiseConv2D(_kernel(x), strides=dw_strides, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(**bn)(x)
        x = keras.layers.ReLU(max_value=6.0)(x)
        x = _conv_bn_relu(keras, x, width(filters), bn, kernel=1, strides=pw_strides, relu_max=6.0)
    return _pooled(keras, x)


def _autoencoder(keras, x, shape, **_):
    """MLPerf Tiny anomaly detection style dense autoencoder over the flattened normalized input: four Dense(h)
    ReLU, a Dense(z) bottleneck, four Dense(h), and a linear Dense(D) reconstruction (h = 128, z = 8 for the 640
    MLPerf features; scaled down for small inputs).  No BatchNorm (MLPerf has it after each Dense; tfmot QAT refuses
    BatchNorm not right after a conv)."""
    x = keras.layers.Flatten()(x)
    d = int(np.prod(shape))
    h, z = min(128, max(16, d // 2)), min(8, max(2, d // 8))
    for units in (h, h, h, h, z, h, h, h, h):
        x = keras.layers.Dense(units, activation="relu")(x)
    return keras.layers.Dense(d, name="reconstruction")(x)


def _recurrent(keras, x, shape, *, name, unroll, **_):
    x, shape = _to_sequence(keras, x, shape)
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}[name]
    return layer(RNN_UNITS, unroll=bool(unroll), name=name)(x)


def _transformer(keras, x, shape, *, vocab_size, **_):
    """A small transformer encoder: token ids through an Embedding (int32 input kept through quantization), or
    the normalized sequence through a Dense projection; a learned position embedding; one block of 2-head
    self-attention and a ReLU feed-forward layer, each residual with LayerNormalization; average over time."""
    if vocab_size is not None:
        x = keras.layers.Embedding(int(vocab_size), TRANSFORMER_WIDTH, name="embedding")(x)
    else:
        x, shape = _to_sequence(keras, x, shape)
        x = keras.layers.Dense(TRANSFORMER_WIDTH, name="projection")(x)
    x = position_embedding()(name="position")(x)
    for _ in range(TRANSFORMER_BLOCKS):
        a = keras.layers.MultiHeadAttention(TRANSFORMER_HEADS, TRANSFORMER_WIDTH // TRANSFORMER_HEADS)(x, x)
        x = keras.layers.LayerNormalization(epsilon=1e-5)(keras.layers.Add()([x, a]))
        f = keras.layers.Dense(2 * TRANSFORMER_WIDTH, activation="relu")(x)
        f = keras.layers.Dense(TRANSFORMER_WIDTH)(f)
        x = keras.layers.LayerNormalization(epsilon=1e-5)(keras.layers.Add()([x, f]))
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.layers.Dropout(0.1)(x)
