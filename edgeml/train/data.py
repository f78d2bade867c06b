"""Training data for `edgeml train`: built-in digits, a folder of class folders, a .npz or a .csv file.

Every source gives a `Dataset` of RAW float32 inputs (digits 0..16 as in scikit-learn, images 0..255, .npz / .csv
values as given) and int64 class indices 0..C-1, split into train / validation / test with a seeded, stratified split:
normalization is the model's job (see `edgeml.train.zoo`), so the exported model takes raw input.

TensorFlow is imported only for image folders (through `keras_env`); digits, .npz and .csv need numpy alone.
"""
from __future__ import annotations

import csv
import gzip
import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from edgeml.errors import DataError
from edgeml.train import keras_env

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
LABEL_COLUMN_NAMES = ("label", "class", "target")
COLOR_MODES = {"grayscale": 1, "rgb": 3, "rgba": 4}


@dataclass
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list        # one str per class, index = class id
    input_shape: tuple       # per-sample shape, e.g. (8, 8, 1)
    source: str              # human description
    task: str = "classification"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_dataset(spec: str = "digits", *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                 image_size: tuple = (32, 32), color_mode: str = "rgb", label_column: str | None = None) -> Dataset:
    """Loads `spec` ("digits", a folder with one sub-folder per class, FILE.npz with x and y, or FILE.csv) and
    splits it into train / validation / test (stratified by class where every split can hold each class)."""
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < f < 1.0:
            raise DataError(f"{name} must be between 0 and 1 (exclusive), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"val_fraction + test_fraction must leave data for training (below 1), got "
                        f"{val_fraction} + {test_fraction}")
    spec = os.fspath(spec)
    if spec == "digits":
        x, y, class_names, source = _load_digits()
    elif os.path.isdir(spec):
        x, y, class_names, source = _load_image_folder(spec, image_size, color_mode)
    elif os.path.isfile(spec):
        ext = os.path.splitext(spec)[1].lower()
        if ext == ".npz":
            x, y, class_names, source = _load_npz(spec)
        elif ext == ".csv":
            x, y, class_names, source = _load_csv(spec, label_column)
        else:
            raise DataError(f"cannot read training data from '{spec}': use a .npz file (arrays x and y), a .csv file "
                            "or a folder with one sub-folder of images per class")
    elif os.sep in spec or "/" in spec or os.path.splitext(spec)[1].lower() in (".npz", ".csv"):
        raise DataError(f"data path '{spec}' does not exist")
    else:
        raise DataError(f"unknown data '{spec}': use 'digits', a folder with one sub-folder of images per class, "
                        "a .npz file with arrays x and y, or a .csv file with a label column")
    if len(class_names) < 2:
        raise DataError(f"{source} has {len(class_names)} class ({', '.join(map(str, class_names))}); "
                        "classification needs at least 2 classes")
    if not np.all(np.isfinite(x)):
        bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
        raise DataError(f"{source} contains NaN or infinite values (first in sample {bad}); remove or fill them")
    train, val, test = split_indices(y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                                     source=source)
    x = x.astype(np.float32, copy=False)
    y = y.astype(np.int64, copy=False)
    return Dataset(x[train], y[train], x[val], y[val], x[test], y[test], [str(c) for c in class_names],
                   tuple(int(d) for d in x.shape[1:]), source)


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


# ---- sources ------------------------------------------------------------------------------------------------


def _load_digits():
    """scikit-learn's 8x8 digits (1797 images, values 0..16) as (N, 8, 8, 1).

    Read straight from scikit-learn's bundled digits.csv.gz (what `sklearn.datasets.load_digits` reads), because
    importing `sklearn.datasets` alone takes about a second."""
    spec = importlib.util.find_spec("sklearn")
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    if path and os.path.isfile(path):
        with gzip.open(path, "rt") as f:
            raw = np.loadtxt(f, delimiter=",", dtype=np.float32)
        images, target = raw[:, :-1].reshape(-1, 8, 8), raw[:, -1].astype(np.int64)
    else:
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise DataError("the built-in 'digits' data needs scikit-learn: pip install scikit-learn") from exc
        bunch = load_digits()
        images, target = bunch.images.astype(np.float32), bunch.target.astype(np.int64)
    return images[..., None], target, [str(i) for i in range(10)], "digits (scikit-learn 8x8 handwritten digits)"


def _has_image(folder: str) -> bool:
    for _, _, files in os.walk(folder):
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
            return True
    return False


def _load_image_folder(path: str, image_size, color_mode: str):
    if color_mode not in COLOR_MODES:
        raise DataError(f"color_mode must be one of {', '.join(COLOR_MODES)}, got '{color_mode}'")
    try:
        image_size = (int(image_size[0]), int(image_size[1]))
    except (TypeError, ValueError, IndexError):
        raise DataError(f"image_size must be (height, width), got {image_size!r}") from None
    if min(image_size) < 1:
        raise DataError(f"image_size must be positive, got {image_size}")
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
    if not classes:
        raise DataError(f"folder '{path}' has no class sub-folders: put the images of each class in their own "
                        "sub-folder (e.g. cats/, dogs/)")
    for c in classes:
        if not _has_image(os.path.join(path, c)):
            raise DataError(f"class folder '{c}' in '{path}' has no images ({', '.join(IMAGE_EXTENSIONS)})")
    if len(classes) < 2:
        raise DataError(f"folder '{path}' has only one class sub-folder ('{classes[0]}'); classification needs at "
                        "least 2 classes")
    tf, keras = keras_env()
    ds = keras.utils.image_dataset_from_directory(
        path, labels="inferred", label_mode="int", class_names=classes, color_mode=color_mode,
        image_size=image_size, shuffle=False, batch_size=256, interpolation="bilinear")
    xs, ys = [], []
    try:
        for xb, yb in ds:
            xs.append(xb.numpy().astype(np.float32))
            ys.append(yb.numpy().astype(np.int64))
    except tf.errors.InvalidArgumentError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"an image in '{path}' could not be decoded ({first}); remove or re-save the broken "
                        "file") from None
    x, y = np.concatenate(xs), np.concatenate(ys)
    source = f"image folder {path} ({len(classes)} classes, {image_size[0]}x{image_size[1]} {color_mode})"
    return x, y, classes, source


def _labels_to_indices(labels: np.ndarray, source: str):
    """Maps labels (ints, integral floats, bools or strings) to 0..C-1; class names sorted (numerically if numeric)."""
    if labels.dtype.kind in "biu":
        values = labels.astype(np.int64)
    elif labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            bad = labels[~(np.isfinite(labels) & (labels == np.round(labels)))][0]
            raise DataError(f"{source}: labels must be class indices or names, found the non-integer value {bad}")
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


def _load_npz(path: str):
    source = f"{os.path.basename(path)}"
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            missing = [k for k in ("x", "y") if k not in keys]
            if missing:
                raise DataError(f"'{path}' has no array named {' or '.join(repr(m) for m in missing)} (it holds "
                                f"{', '.join(sorted(keys)) or 'nothing'}); save it with np.savez(path, x=..., y=...)")
            x, y = z["x"], z["y"]
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(f"'{path}' stores Python objects; save x as a numeric array and y as integers or "
                            "strings (e.g. np.array(labels, dtype=str))") from None
        raise DataError(f"'{path}' is not a readable .npz file: {exc}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"'{path}' is not a readable .npz file: {exc}") from None
    if x.ndim == 0 or y.ndim == 0:
        raise DataError(f"'{path}': x and y must be arrays with one entry per sample, not scalars")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.dtype.kind in "biuf" and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        y = np.argmax(y, axis=1)                       # one-hot labels
    if y.ndim != 1:
        raise DataError(f"'{path}': y must hold one label per sample (shape (N,)), got shape {y.shape}")
    if len(x) != len(y):
        raise DataError(f"'{path}': x has {len(x)} samples but y has {len(y)} labels; they must match")
    if len(x) == 0:
        raise DataError(f"'{path}' holds no samples")
    if x.dtype.kind not in "biuf":
        raise DataError(f"'{path}': x must be numeric, got dtype {x.dtype}")
    if x.ndim == 1:
        x = x[:, None]
    y_idx, names = _labels_to_indices(y, f"'{path}'")
    return x.astype(np.float32), y_idx, names, f"{source} ({len(x)} samples, per-sample shape {tuple(x.shape[1:])})"


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _load_csv(path: str, label_column: str | None):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f)]
    except UnicodeDecodeError as exc:
        raise DataError(f"'{path}' is not a text CSV file (byte {exc.start} is not UTF-8)") from None
    except csv.Error as exc:
        raise DataError(f"'{path}' is not a readable CSV file ({exc})") from None
    # remember the file line of every row, skipping blank lines
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not numbered:
        raise DataError(f"'{path}' is empty")
    header_line, header = numbered[0]
    header = [h.strip() for h in header]
    if all(_is_number(h) for h in header):           # no header row: name columns by position
        columns = [f"column {i + 1}" for i in range(len(header))]
        body = numbered
    else:
        columns = header
        body = numbered[1:]
    if len(columns) < 2:
        raise DataError(f"'{path}' has {len(columns)} column; it needs at least one feature column and a label column")
    if label_column is not None:
        matches = [i for i, c in enumerate(columns) if c == label_column]
        if not matches:
            raise DataError(f"'{path}' has no column named '{label_column}' (columns: {', '.join(columns)})")
        li = matches[0]
    else:
        lower = [c.lower() for c in columns]
        li = next((lower.index(n) for n in LABEL_COLUMN_NAMES if n in lower), len(columns) - 1)
    if not body:
        raise DataError(f"'{path}' has a header but no data rows")
    feats = [i for i in range(len(columns)) if i != li]
    x = np.empty((len(body), len(feats)), dtype=np.float32)
    labels = []
    for r, (line, row) in enumerate(body):
        if len(row) != len(columns):
            raise DataError(f"'{path}' line {line} has {len(row)} values but the header has {len(columns)} columns")
        for j, ci in enumerate(feats):
            cell = row[ci].strip()
            try:
                x[r, j] = float(cell)
            except ValueError:
                shown = f"'{cell}'" if cell else "an empty cell"
                raise DataError(f"'{path}': feature column '{columns[ci]}' must be numeric, but line {line} holds "
                                f"{shown}; fix the value or choose the label column with label_column") from None
        label = row[li].strip()
        if not label:
            raise DataError(f"'{path}': line {line} has an empty label in column '{columns[li]}'")
        labels.append(label)
    y_idx, names = _labels_to_indices(np.array(labels, dtype=str), f"'{path}'")
    source = f"{os.path.basename(path)} ({len(x)} rows, {len(feats)} features, label column '{columns[li]}')"
    return x, y_idx, names, source
