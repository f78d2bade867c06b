"""`TrainConfig` (what to train, on what, how, where to write it) and `TrainResult` (what came out), with the checks
made on a configuration before any data is read or anything is trained."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from edgeml.errors import TrainingError
from edgeml.optimize.block_prune import parse_block

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam")
TASKS = ("auto", "classification", "regression")
COLOR_MODES = ("grayscale", "rgb", "rgba")
AUGMENTATIONS = ("shift", "rotate", "zoom", "flip", "noise")
DEFAULT_EPOCHS = 15
DEFAULT_FINETUNE_EPOCHS = 3


@dataclass
class TrainConfig:
    """What `edgeml.train.pipeline.train` does; the CLI flags of `edgeml train` have the same names.

    Where it writes:
      out: output folder; written only when the whole run succeeds (see README, "Training and export").
      overwrite: replace `out` even if it is a non-empty folder edgeml did not write.
      resume: continue a killed run with the same `out` and options from its last completed epoch (a backup
        folder `.edgeml-backup-<name>` beside `out` holds it until the run completes; without resume such a
        backup is refused).
      distribute: None (one process), "mirrored" (tf.distribute.MirroredStrategy over this host's devices) or
        "multiworker" (MultiWorkerMirroredStrategy over the cluster in TF_CONFIG; only the chief writes `out`).
        batch_size is the global batch, split over the replicas; the learning rate is not scaled.
      stream: read the data through tf.data pipelines instead of into memory (image folders, .csv, .npz files or
        folders of .npz shards, .tfrecord files; folders of .npz shards and .tfrecord files always stream).  Each
        sample's split is a seeded hash of its key (sizes close to, not exactly, the fractions); statistics, int8
        calibration and the guard rails' input checks use a bounded sample (see edgeml.train.stream).

    What it trains on (`data`):
      "digits" (scikit-learn's 8x8 handwritten digits), a folder with one sub-folder of images per class, a .npz
      file (arrays x and y; or x_<input name> / y_<output name> for several inputs / outputs), a .csv file, a
      tuple (x, y) of numpy arrays (x and y may also be lists or dicts of arrays, keyed by the model's input /
      output names), or a `tf.data.Dataset` of (x, y) elements or batches (read into memory once: edge-sized
      data).  Integer arrays of shape (N, T) are token ids: they stay int32 from training to the int8 files.
      label_column: the CSV column holding the label (default: one named label / class / target, else the last).
      image_size, color_mode: what image folders are resized / converted to (default: the model's input when it
        is a user model, else 32x32 RGB).
      validation_split, test_split: fractions of the data held out for validation and test (stratified by
        class for classification).

    What it trains (`model`):
      a zoo name (mlp, cnn, ds_cnn, resnet8, mobilenet_v1, autoencoder, lstm, gru, rnn, transformer), a saved
        Keras model (.keras / .h5 from Keras 3 or tf_keras, a tf_keras SavedModel folder), or a tf_keras / Keras 3
        model object (copied: the object passed in is not changed).  Keras 3 models are rebuilt in tf_keras
        (which tensorflow-model-optimization needs) and checked to give the same outputs.
      task: "auto" (from the labels and the model's output layer), "classification" or "regression".
      alpha: mobilenet_v1's width multiplier.

    How (names as in Keras):
      epochs (default 15), batch_size, learning_rate (default: the optimizer's Keras default), optimizer (adam,
      adamw, sgd, rmsprop, nadam), patience (early stopping on the validation metric; the best epoch is kept),
      augment (a list of shift, rotate, zoom, flip, noise; True = shift, rotate, zoom for images, noise
      otherwise), callbacks (extra Keras callbacks for every fit phase), seed.

    Optimizations (tensorflow-model-optimization, after training, each a fine-tune of finetune_epochs; None: 3, and
    for pruning `edgeml.train.finetune.prune_finetune_epochs` of the sparsity):
      prune: magnitude pruning to this final sparsity; cluster: weight clustering to this many centroids per
      kernel (sparsity-preserving after pruning); prune_block: "16x4" (default: whole blocks of 16 output x 4
      input channels of Conv2D / Dense kernels, what edgeml's VNNI int8 kernel skips in one step), "1x1"
      (element-wise, every prunable layer) or multiples of 16x4; qat: quantization-aware training (pruning-preserving after
      pruning, cluster-preserving after clustering).  A combination tfmot cannot apply to the model is refused
      before training starts.

    Checks:
      allow_degraded: return normally even when the model is at chance level or int8 lost more than the bound
        (otherwise `DegradedModelError` is raised after the output folder is written).
      verbose: 0 prints nothing, 1 stage lines and the summary, 2 (default) also Keras's progress, 3 also
        TensorFlow's own log lines.
    """
    out: str
    data: Any = "digits"
    model: Any = "cnn"
    task: str = "auto"
    epochs: Optional[int] = None
    batch_size: int = 32
    learning_rate: Optional[float] = None
    optimizer: str = "adam"
    patience: int = 5
    validation_split: float = 0.15
    test_split: float = 0.15
    label_column: Optional[str] = None
    image_size: Optional[tuple] = None
    color_mode: Optional[str] = None
    augment: Any = False
    seed: int = 0
    prune: Optional[float] = None
    prune_block: Any = "16x4"
    qat: bool = False
    cluster: Optional[int] = None
    finetune_epochs: Optional[int] = None
    alpha: float = 0.25
    callbacks: list = field(default_factory=list)
    allow_degraded: bool = False
    verbose: Optional[int] = None
    overwrite: bool = False
    # ---- beyond one machine (edgeml.train.resume, edgeml.train.distribute) ----
    resume: bool = False
    distribute: Optional[str] = None
    # ---- streamed data (edgeml.train.stream) ----
    stream: bool = False


@dataclass
class TrainResult:
    """What `train` returns.

    model: the trained tf_keras model in float (optimization wrappers stripped; what model_float.h5 holds).
    paths: file name -> absolute path of every file written into the output folder.
    report: the report (also in report.json): metrics on every runtime, agreement, sizes, MACs, latency, ...
    failures: the guard rails' findings (empty when the model is fine); each a dict with "check", "message" and
      "cause".
    """
    model: Any
    paths: dict
    report: dict
    failures: list

    @property
    def ok(self) -> bool:
        return not self.failures


def augmentations(augment) -> tuple:
    """The augmentation names `augment` asks for: () for False / None, None for True (the input's default)."""
    if augment is None or augment is False:
        return ()
    if augment is True:
        return None
    names = [a.strip().lower() for a in (augment.split(",") if isinstance(augment, str) else augment)]
    unknown = [a for a in names if a not in AUGMENTATIONS]
    if unknown or not names:
        raise TrainingError(f"unknown augmentation {', '.join(map(repr, unknown)) or repr(augment)}: choose from "
                            f"{', '.join(AUGMENTATIONS)}")
    return tuple(dict.fromkeys(names))


def validate(cfg: TrainConfig, model_names: tuple) -> None:
    """Checks the options before any data is read or anything is trained or written."""
    if isinstance(cfg.model, (str, os.PathLike)) and os.fspath(cfg.model) not in model_names \
            and not os.path.exists(cfg.model):
        raise TrainingError(f"unknown model '{os.fspath(cfg.model)}': use one of {', '.join(model_names)}, a saved "
                            "Keras model file, or a Keras model object")
    if cfg.prune is not None and not 0.0 < cfg.prune < 1.0:
        raise TrainingError(f"--prune takes a sparsity between 0 and 1 (exclusive), got {cfg.prune}")
    parse_block(cfg.prune_block)
    if cfg.cluster is not None and (int(cfg.cluster) != cfg.cluster or cfg.cluster < 2):
        raise TrainingError(f"--cluster takes a number of clusters >= 2, got {cfg.cluster}")
    for name in ("epochs", "finetune_epochs", "batch_size"):
        value = getattr(cfg, name)
        if value is not None and (int(value) != value or value < 1):
            raise TrainingError(f"--{name.replace('_', '-')} must be a whole number of at least 1, got {value}")
    if int(cfg.patience) != cfg.patience or cfg.patience < 1:
        raise TrainingError(f"--patience must be a whole number of at least 1, got {cfg.patience}")
    if cfg.learning_rate is not None and not 0.0 < cfg.learning_rate < 10.0:
        raise TrainingError(f"--learning-rate must be positive (and below 10), got {cfg.learning_rate}")
    if str(cfg.optimizer).lower() not in OPTIMIZERS:
        raise TrainingError(f"unknown optimizer '{cfg.optimizer}': use one of {', '.join(OPTIMIZERS)}")
    if cfg.task not in TASKS:
        raise TrainingError(f"unknown task '{cfg.task}': use one of {', '.join(TASKS)}")
    if cfg.color_mode is not None and cfg.color_mode not in COLOR_MODES:
        raise TrainingError(f"--color-mode must be one of {', '.join(COLOR_MODES)}, got '{cfg.color_mode}'")
    if cfg.image_size is not None:
        size = tuple(cfg.image_size)
        if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
            raise TrainingError(f"--image-size must be two positive whole numbers (height, width), got {size}")
    for name in ("validation_split", "test_split"):
        value = getattr(cfg, name)
        if not 0.0 < value < 1.0:
            raise TrainingError(f"--{name.replace('_', '-')} must be between 0 and 1 (exclusive), got {value}")
    if cfg.validation_split + cfg.test_split >= 0.9:
        raise TrainingError(f"--validation-split + --test-split must leave at least 10% of the data for training, "
                            f"got {cfg.validation_split} + {cfg.test_split}")
    if not 0.0 < cfg.alpha <= 4.0:
        raise TrainingError(f"--alpha (the MobileNet width multiplier) must be in (0, 4], got {cfg.alpha}")
    augmentations(cfg.augment)
    if not isinstance(cfg.callbacks, (list, tuple)):
        raise TrainingError(f"callbacks must be a list of Keras callbacks, got {type(cfg.callbacks).__name__}")
    out = os.fspath(cfg.out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise TrainingError(f"output path '{out}' exists and is not a folder")
