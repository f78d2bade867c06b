"""Training loop: compile, callbacks (best checkpoint, early stopping, TensorBoard, CSV log), history plot."""
from __future__ import annotations

import os
import sys

import numpy as np

from edgeml.train import keras_env
from edgeml.train.zoo import normalized_target


def compile_model(model, task: str, learning_rate: float = 1e-3):
    _, keras = keras_env()
    opt = keras.optimizers.Adam(learning_rate)
    if task == "reconstruction":
        model.compile(optimizer=opt, loss="mse")
    else:
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def targets(model, task: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """What the model learns to output: class indices, or its own normalized input for an autoencoder."""
    if task != "reconstruction":
        return y
    return normalized_target(model, x)


def fit(model, ds, task: str, *, epochs: int, batch_size: int, workdir: str, extra_callbacks=(), verbose=None,
        patience: int = 5):
    """Fits with the best-epoch checkpoint restored at the end; returns the Keras History."""
    _, keras = keras_env()
    monitor = "val_loss" if task == "reconstruction" else "val_accuracy"
    mode = "min" if task == "reconstruction" else "max"
    ckpt = os.path.join(workdir, "checkpoints", "best.weights.h5")
    os.makedirs(os.path.dirname(ckpt), exist_ok=True)
    callbacks = [
        keras.callbacks.ModelCheckpoint(ckpt, monitor=monitor, mode=mode, save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=os.path.join(workdir, "logs")),
        keras.callbacks.CSVLogger(os.path.join(workdir, "history.csv")),
        *extra_callbacks,
    ]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    history = model.fit(ds.x_train, targets(model, task, ds.x_train, ds.y_train),
                        validation_data=(ds.x_val, targets(model, task, ds.x_val, ds.y_val)),
                        epochs=epochs, batch_size=batch_size, callbacks=callbacks, verbose=verbose, shuffle=True)
    return history


def plot_history(histories: list, path: str, title: str):
    """Loss and accuracy, train vs validation, of one or more fit phases concatenated."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    merged = {}
    for h in histories:
        for k, v in h.history.items():
            merged.setdefault(k, []).extend(v)
    metrics = [m for m in ("loss", "accuracy") if m in merged]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        epochs = np.arange(1, len(merged[m]) + 1)
        ax.plot(epochs, merged[m], label=f"train {m}")
        if "val_" + m in merged:
            ax.plot(epochs, merged["val_" + m], label=f"validation {m}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
