"""Training loop: optimizer, losses and metrics per output, callbacks (early stopping with the best epoch restored,
TensorBoard), augmentation, and the history (one CSV and one plot over every phase: training, then fine-tunes)."""
from __future__ import annotations

import csv
import os
import time

import numpy as np

from edgeml.errors import TrainingError
from edgeml.train import keras_env
from edgeml.train.checks import Head
from edgeml.train.zoo import normalized_target

OPTIMIZER_CLASSES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "nadam": "Nadam"}
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "adamw": 1e-3, "sgd": 1e-2, "rmsprop": 1e-3, "nadam": 1e-3}
IMAGE_AUGMENTATIONS = ("shift", "rotate", "zoom")


def learning_rate(optimizer: str, rate: float | None) -> float:
    return float(rate) if rate is not None else DEFAULT_LEARNING_RATES[optimizer.lower()]


def make_optimizer(optimizer: str, rate: float):
    _, keras = keras_env()
    return getattr(keras.optimizers, OPTIMIZER_CLASSES[optimizer.lower()])(learning_rate=rate)


def _loss_and_metrics(keras, head: Head):
    if head.task == "classification":
        if head.activation == "sigmoid":
            return keras.losses.BinaryCrossentropy(), [keras.metrics.BinaryAccuracy(name="accuracy")]
        logits = head.activation != "softmax"
        return (keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    if head.task == "regression":
        return keras.losses.MeanSquaredError(), [keras.metrics.MeanAbsoluteError(name="mae")]
    return keras.losses.MeanSquaredError(), []


def compile_model(model, heads: list, *, optimizer: str = "adam", rate: float = 1e-3):
    """Compiles with one loss (and metric) per output, keyed by output name."""
    _, keras = keras_env()
    losses, metrics = {}, {}
    for head, name in zip(heads, model.output_names):
        losses[name], metrics[name] = _loss_and_metrics(keras, head)
    if len(heads) == 1:
        losses, metrics = losses[model.output_names[0]], metrics[model.output_names[0]]
    model.compile(optimizer=make_optimizer(optimizer, rate), loss=losses, metrics=metrics)
    return model


def targets(model, heads: list, x: list, y: list) -> list:
    """What each output learns: its labels, or the normalized input for a reconstruction head."""
    out = []
    for head, labels in zip(heads, y):
        if head.task == "reconstruction":
            out.append(normalized_target(model, x[0]))
        elif head.task == "classification" and head.activation == "sigmoid":
            out.append(np.asarray(labels, np.float32).reshape(-1, 1))
        else:
            out.append(labels)
    return out


def monitor(heads: list) -> tuple[str, str]:
    """(metric, mode) early stopping watches: validation accuracy of a lone classifier, else validation loss."""
    if len(heads) == 1 and heads[0].task == "classification":
        return "val_accuracy", "max"
    return "val_loss", "min"


def _one(values: list):
    return values[0] if len(values) == 1 else values


def augmenter(names: tuple | None, input_shape: tuple, seed: int):
    """A function (x batch -> augmented x batch) for tf.data, or None.  names None: the input's default (shift,
    rotate, zoom for images; noise otherwise)."""
    tf, keras = keras_env()
    image = len(input_shape) == 3
    if names is None:
        names = IMAGE_AUGMENTATIONS if image else ("noise",)
    geometric = [n for n in names if n != "noise"]
    if geometric and not image:
        raise TrainingError(f"augmentation {', '.join(geometric)} needs images (height, width, channels); the input's "
                            f"per-sample shape is {input_shape}: use --augment noise")
    layers = []
    for name in names:
        if name == "shift":
            layers.append(keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed))
        elif name == "rotate":
            layers.append(keras.layers.RandomRotation(0.05, fill_mode="nearest", seed=seed))
        elif name == "zoom":
            layers.append(keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed))
        elif name == "flip":
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    noise = "noise" in names

    def apply(x):
        for layer in layers:
            x = layer(x, training=True)
        if noise:            # a tenth of each feature's spread in the batch
            x = x + tf.random.normal(tf.shape(x), seed=seed) * 0.1 * tf.math.reduce_std(x, axis=0, keepdims=True)
        return x
    return apply


def fit(model, ds, heads: list, *, epochs: int, batch_size: int, workdir: str, callbacks=(), verbose: int = 0,
        patience: int | None = 5, augment=None, seed: int = 0):
    """Fits on ds's training split, validating on its validation split; returns the Keras History.

    patience: early stopping on the validation metric with the best epoch's weights restored at the end; None for
    a fine-tune that must run every epoch (a pruning schedule, or the last epochs of QAT).
    augment: from `augmenter`, applied to the first input of each training batch."""
    tf, keras = keras_env()
    x_train, x_val = ds.inputs("train"), ds.inputs("val")     # a streamed dataset's: bounded samples
    y_train = targets(model, heads, x_train, ds.labels("train"))
    y_val = targets(model, heads, x_val, ds.labels("val"))
    metric, mode = monitor(heads)
    stop = []
    if patience is not None:
        stop = [keras.callbacks.EarlyStopping(monitor=metric, mode=mode, patience=patience,
                                              restore_best_weights=True)]
    all_callbacks = [*stop, keras.callbacks.TensorBoard(log_dir=os.path.join(workdir, "logs")), *callbacks]
    if ds.streamed:          # edgeml.train.stream: every sample read through tf.data, once per epoch
        train_data = ds.fit_arguments(_one(y_train), _one(y_val), batch_size, augment=augment)
    elif augment is None:
        train_data = dict(x=_one(x_train), y=_one(y_train), batch_size=batch_size, shuffle=True)
    else:
        data = tf.data.Dataset.from_tensor_slices((tuple(x_train), tuple(y_train)))
        data = data.shuffle(len(x_train[0]), seed=seed, reshuffle_each_iteration=True).batch(batch_size)

        def augmented(xs, ys):
            xs = (augment(xs[0]),) + tuple(xs[1:])
            return _one(list(xs)), _one(list(ys))
        train_data = dict(x=data.map(augmented, num_parallel_calls=1))
    train_data.setdefault("validation_data", (_one(x_val), _one(y_val)))
    start = time.monotonic()
    try:
        history = model.fit(**train_data, epochs=epochs, callbacks=all_callbacks, verbose=verbose)
    except tf.errors.OpError as exc:
        if not ds.streamed:
            raise
        raise ds.data_error(exc) from None       # a file that broke while streaming, named
    history.best_epoch = stop[0].best_epoch + 1 if stop and stop[0].best_weights is not None else len(history.epoch)
    history.monitored = metric
    history.seconds = time.monotonic() - start
    return history


def write_history(phases: list, path: str) -> None:
    """One CSV row per epoch of every phase: phase, epoch (1-based within the phase), then each metric."""
    keys = []
    for _, history in phases:
        keys += [k for k in history.history if k not in keys]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["phase", "epoch"] + keys)
        for phase, history in phases:
            for e in range(len(history.epoch)):
                writer.writerow([phase, e + 1] + [_cell(history.history.get(k), e) for k in keys])


def _cell(values, e):
    return "" if values is None or e >= len(values) else f"{float(values[e]):.6g}"


def plot_history(phases: list, path: str, title: str) -> None:
    """Loss and the first metric, train vs validation, over every phase (phase boundaries marked)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    merged, bounds = {}, []
    for phase, history in phases:
        n = max((len(v) for v in merged.values()), default=0)
        bounds.append((n, phase))
        for k, v in history.history.items():
            merged.setdefault(k, [np.nan] * n)
            merged[k].extend(v)
        for k in merged:
            merged[k].extend([np.nan] * (n + len(history.epoch) - len(merged[k])))
    metrics = [m for m in ("loss", "accuracy", "mae") if m in merged][:2]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        epochs = np.arange(1, len(merged[m]) + 1)
        ax.plot(epochs, merged[m], label=f"train {m}")
        if "val_" + m in merged:
            ax.plot(epochs, merged["val_" + m], label=f"validation {m}")
        for start, phase in bounds[1:]:
            ax.axvline(start + 0.5, color="grey", lw=0.8, ls="--")
            ax.text(start + 0.6, ax.get_ylim()[1], phase, fontsize=7, va="top")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
