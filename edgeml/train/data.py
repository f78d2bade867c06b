"""Training data for `edgeml train`: a `Dataset` of raw inputs and targets split into train / validation / test.

Inputs stay RAW (digits 0..16 as in scikit-learn, images 0..255, .npz / .csv values as given): normalization is the
model's job (see `edgeml.train.zoo`), so the exported model takes raw input.  Float inputs become float32; integer
inputs become int32 (token ids of an Embedding stay integers from training to the int8 file; a model with a float
input gets them as floats).  Each label array becomes one target: class indices 0..C-1 (int64) for classification,
float32 values for regression; `task="auto"` tells them apart (strings and whole numbers are classes, other numbers
values).  The split is seeded and stratified by class (by the first classification target).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from edgeml.errors import DataError
from edgeml.train import sources as S

DEFAULT_IMAGE_SIZE = (32, 32)
DEFAULT_COLOR_MODE = "rgb"


@dataclass
class Target:
    """One model output's labels: "classification" (class indices, `class_names`) or "regression" (values)."""
    name: str
    task: str
    class_names: list = field(default_factory=list)
    shape: tuple = ()            # per-sample shape of a regression target (() for one value)


@dataclass
class Dataset:
    """Raw inputs and targets, split.  x_* / y_* are arrays for one input / output, lists of arrays for several
    (in the order of `input_names` / `targets`); `inputs(split)` and `labels(split)` always give lists."""
    x_train: object
    y_train: object
    x_val: object
    y_val: object
    x_test: object
    y_test: object
    class_names: list        # the first classification target's class names ([] for regression only)
    input_shape: tuple       # the first input's per-sample shape, e.g. (8, 8, 1)
    source: str              # human description
    task: str = "classification"            # the first target's task
    input_names: list = field(default_factory=list)    # from dict keys / x_<name> .npz keys; [] = by position
    targets: list = field(default_factory=list)        # one Target per label array
    streamed = False                                   # edgeml.train.stream.StreamDataset: batches, not arrays

    def size(self, split: str) -> int:
        """Samples in `split`."""
        return len(self.inputs(split)[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def inputs(self, split: str) -> list:
        x = getattr(self, f"x_{split}")
        return list(x) if isinstance(x, list) else [x]

    def labels(self, split: str) -> list:
        y = getattr(self, f"y_{split}")
        return list(y) if isinstance(y, list) else [y]

    @property
    def input_shapes(self) -> list:
        return [tuple(int(d) for d in x.shape[1:]) for x in self.inputs("train")]

    def replace_inputs(self, per_split: dict) -> None:
        """Sets every split's inputs from {split: [arrays]} (one array stays an array)."""
        for split, xs in per_split.items():
            setattr(self, f"x_{split}", xs[0] if len(xs) == 1 else list(xs))
        self.input_shape = self.input_shapes[0]


def load_dataset(spec="digits", *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                 image_size: tuple | None = None, color_mode: str | None = None, label_column: str | None = None,
                 task: str = "auto") -> Dataset:
    """Loads `spec` and splits it into train / validation / test.

    spec: "digits", a folder with one sub-folder of images per class, FILE.npz (x and y, or x_<name> / y_<name>),
    FILE.csv, a pair (x, y) of arrays (or lists / dicts of arrays), or a tf.data.Dataset of (x, y).
    task: "auto", "classification" or "regression" (how the labels are read)."""
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < f < 1.0:
            raise DataError(f"{name} must be between 0 and 1 (exclusive), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"val_fraction + test_fraction must leave data for training (below 1), got "
                        f"{val_fraction} + {test_fraction}")
    raw = read(spec, image_size=image_size, color_mode=color_mode, label_column=label_column)
    xs = [_input_array(x, i, raw.source) for i, x in enumerate(raw.xs)]
    n = len(xs[0])
    for what, arrays in (("input", xs), ("label array", raw.ys)):
        for i, a in enumerate(arrays):
            a = np.asarray(a)
            if a.ndim == 0:
                raise DataError(f"{raw.source}: x and y must be arrays with one entry per sample, not scalars")
            if len(a) != n:
                who = "y" if what == "label array" and len(raw.ys) == 1 else f"{what} {i}"
                raise DataError(f"{raw.source}: x has {n} samples but {who} has {len(a)} "
                                f"{'labels' if what == 'label array' else 'samples'}; they must match")
    if n == 0:
        raise DataError(f"{raw.source} holds no samples")
    names = raw.output_names or [f"output_{i}" for i in range(len(raw.ys))]
    targets, ys = [], []
    for name, y in zip(names, raw.ys):
        target, values = read_target(np.asarray(y), task, raw.source, name, raw.class_names)
        targets.append(target)
        ys.append(values)
    classified = next((i for i, t in enumerate(targets) if t.task == "classification"), None)
    strata = ys[classified] if classified is not None else np.zeros(n, np.int64)
    train, val, test = split_indices(strata, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                                     source=raw.source)

    def pick(arrays, idx):
        chosen = [a[idx] for a in arrays]
        return chosen[0] if len(chosen) == 1 else chosen
    first = targets[0]
    return Dataset(pick(xs, train), pick(ys, train), pick(xs, val), pick(ys, val), pick(xs, test), pick(ys, test),
                   targets[classified].class_names if classified is not None else [],
                   tuple(int(d) for d in xs[0].shape[1:]), raw.source, task=first.task,
                   input_names=list(raw.input_names), targets=targets)


def read(spec, *, image_size=None, color_mode=None, label_column=None) -> S.RawData:
    """The RawData of any accepted data source."""
    if isinstance(spec, (tuple, list)):
        return S.read_arrays(spec)
    if type(spec).__module__.startswith("tensorflow") and hasattr(spec, "element_spec"):
        return S.read_tf_dataset(spec)
    try:
        spec = os.fspath(spec)
    except TypeError:
        raise DataError(f"cannot train on a {type(spec).__name__}: use 'digits', a path, a pair (x, y) of arrays or "
                        "a tf.data.Dataset") from None
    if spec == "digits":
        return S.read_digits()
    if os.path.isdir(spec):
        return S.read_image_folder(spec, image_size or DEFAULT_IMAGE_SIZE, color_mode or DEFAULT_COLOR_MODE)
    if os.path.isfile(spec):
        ext = os.path.splitext(spec)[1].lower()
        if ext == ".npz":
            return S.read_npz(spec)
        if ext == ".csv":
            return S.read_csv(spec, label_column)
        raise DataError(f"cannot read training data from '{spec}': use a .npz file (arrays x and y), a .csv file "
                        "or a folder with one sub-folder of images per class")
    if os.sep in spec or "/" in spec or os.path.splitext(spec)[1].lower() in (".npz", ".csv"):
        raise DataError(f"data path '{spec}' does not exist")
    raise DataError(f"unknown data '{spec}': use 'digits', a folder with one sub-folder of images per class, "
                    "a .npz file with arrays x and y, or a .csv file with a label column")


def _input_array(x, index: int, source: str) -> np.ndarray:
    """float32, or int32 for integer data (token ids); NaN / infinity and non-numeric data are refused."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise DataError(f"{source}: x and y must be arrays with one entry per sample, not scalars")
    if x.ndim == 1:
        x = x[:, None]
    if x.dtype.kind == "b":
        x = x.astype(np.int32)
    if x.dtype.kind in "iu":
        if x.size and (x.min() < np.iinfo(np.int32).min or x.max() > np.iinfo(np.int32).max):
            return x.astype(np.float32)
        return x.astype(np.int32)
    if x.dtype.kind != "f":
        raise DataError(f"{source}: x must be numeric, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
        where = f"input {index}, " if index else ""
        raise DataError(f"{source} contains NaN or infinite values (first in {where}sample {bad}); remove or fill them")
    return x.astype(np.float32, copy=False)


def read_target(y: np.ndarray, task: str, source: str, name: str, fixed_classes=None) -> tuple[Target, np.ndarray]:
    """(Target, values) of one label array: class indices for classification, float32 values for regression."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and y.dtype.kind in "biuf" and task != "regression" and np.all((y == 0) | (y == 1)) \
            and np.all(y.sum(axis=1) == 1):
        y = np.argmax(y, axis=1)                       # one-hot labels
    if task == "auto":
        task = _guess_task(y)
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise DataError(f"{source}: regression needs numeric targets, got {y.dtype} values such as "
                            f"{y.reshape(-1)[0]!r}; use --task classification for class names")
        values = y.astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise DataError(f"{source}: the targets contain NaN or infinite values; remove or fill them")
        return Target(name, "regression", [], tuple(values.shape[1:])), values
    if y.ndim != 1:
        raise DataError(f"{source}: y must hold one label per sample (shape (N,)), got shape {y.shape}")
    idx, names = labels_to_indices(y, source)
    if fixed_classes is not None:
        names = [fixed_classes[int(v)] for v in names] if all(v.isdigit() for v in names) else names
    if len(names) < 2:
        raise DataError(f"{source} has {len(names)} class ({', '.join(map(str, names))}); classification needs at "
                        "least 2 classes")
    return Target(name, "classification", [str(c) for c in names]), idx


def _guess_task(y: np.ndarray) -> str:
    if y.dtype.kind == "f" and (y.ndim > 1 or not np.all(y[np.isfinite(y)] == np.round(y[np.isfinite(y)]))):
        return "regression"
    return "classification"


def labels_to_indices(labels: np.ndarray, source: str):
    """Maps labels (ints, integral floats, bools or strings) to 0..C-1; class names sorted (numerically if numeric)."""
    if labels.dtype.kind in "biu":
        values = labels.astype(np.int64)
    elif labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            bad = labels[~(np.isfinite(labels) & (labels == np.round(labels)))][0]
            raise DataError(f"{source}: labels must be class indices or names, found the non-integer value {bad} "
                            "(use --task regression for values)")
        values = labels.astype(np.int64)
    elif labels.dtype.kind in "US":
        strs = labels.astype(str)
        try:
            values = np.array([int(s) for s in strs], dtype=np.int64)
        except ValueError:
            names, idx = np.unique(strs, return_inverse=True)
            return idx.astype(np.int64), [str(s) for s in names]
    else:
        raise DataError(f"{source}: labels must be integers or strings, got dtype {labels.dtype}")
    names, idx = np.unique(values, return_inverse=True)
    return idx.astype(np.int64), [str(v) for v in names]


def split_indices(y: np.ndarray, *, seed: int, val_fraction: float, test_fraction: float, source: str = "the data"):
    """Seeded split into (train, val, test) index arrays of exact sizes, stratified by class.

    Within each class the samples get random ranks; each sample's key is (rank + u) / class size, and the smallest
    keys go to test, the next to validation, the rest to training.  Every class is thus spread over the three splits
    in proportion to its size (as far as sizes allow) and the global sizes are exact.
    """
    n = len(y)
    n_test = max(1, int(round(n * test_fraction)))
    n_val = max(1, int(round(n * val_fraction)))
    if n - n_test - n_val < 1:
        raise DataError(f"{source} has only {n} sample{'s' if n != 1 else ''}: training, validation and test each "
                        "need at least one, so at least 3 samples are needed (more for a useful model)")
    rng = np.random.default_rng(seed)
    key = np.empty(n, dtype=np.float64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        key[idx] = (rng.permutation(len(idx)) + rng.random(len(idx))) / len(idx)
    order = np.argsort(key, kind="stable")
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return rng.permutation(train), rng.permutation(val), rng.permutation(test)
