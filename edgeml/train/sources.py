"""Readers of the training data sources: built-in digits, an image folder, a .npz file, a .csv file, numpy arrays
and a tf.data.Dataset.  Each returns a `RawData`: the inputs and the labels as read (labels are turned into class
indices or regression values by `edgeml.train.data`).

TensorFlow is imported only for image folders and tf.data (through `keras_env`); the others need numpy alone.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import io
import importlib.util
import os
from dataclasses import dataclass, field

import numpy as np

from edgeml.errors import DataError
from edgeml.train import keras_env

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
LABEL_COLUMN_NAMES = ("label", "class", "target")
COLOR_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


@dataclass
class RawData:
    """Inputs and labels as a source holds them (one array per model input / output, samples first)."""
    xs: list
    ys: list
    source: str
    input_names: list = field(default_factory=list)     # [] when the inputs are bound by position
    output_names: list = field(default_factory=list)
    class_names: list | None = None                     # fixed class names (image folders), else from the labels


# ---- digits ----------------------------------------------------------------------------------------------------


def read_digits() -> RawData:
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
    return RawData([images[..., None]], [target], "digits (scikit-learn 8x8 handwritten digits)",
                   class_names=[str(i) for i in range(10)])


# ---- image folders ---------------------------------------------------------------------------------------------


def _has_image(folder: str) -> bool:
    for _, _, files in os.walk(folder):
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
            return True
    return False


def read_image_folder(path: str, image_size, color_mode: str) -> RawData:
    if color_mode not in COLOR_CHANNELS:
        raise DataError(f"color_mode must be one of {', '.join(COLOR_CHANNELS)}, got '{color_mode}'")
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
    with contextlib.redirect_stdout(io.StringIO()):         # it prints "Found N files belonging to C classes."
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
    source = f"image folder {path} ({len(classes)} classes, {image_size[0]}x{image_size[1]} {color_mode})"
    return RawData([np.concatenate(xs)], [np.concatenate(ys)], source, class_names=classes)


# ---- .npz ------------------------------------------------------------------------------------------------------


def _keyed(keys, prefix: str) -> list:
    """Names of the arrays `<prefix>_<name>` among `keys`, in file order."""
    return [k[len(prefix) + 1:] for k in keys if k.startswith(prefix + "_") and len(k) > len(prefix) + 1]


def read_npz(path: str) -> RawData:
    """x and y, or x_<input name>... and y_<output name>... (several inputs / outputs)."""
    name = os.path.basename(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            x_names, y_names = _keyed(keys, "x"), _keyed(keys, "y")
            missing = [k for k, named in (("x", x_names), ("y", y_names)) if k not in keys and not named]
            if missing:
                raise DataError(f"'{path}' has no array named {' or '.join(repr(m) for m in missing)} (it holds "
                                f"{', '.join(sorted(keys)) or 'nothing'}); save it with np.savez(path, x=..., y=...), "
                                "or x_<input name>=... / y_<output name>=... for several inputs or outputs")
            xs = [z["x"]] if "x" in keys else [z[f"x_{n}"] for n in x_names]
            ys = [z["y"]] if "y" in keys else [z[f"y_{n}"] for n in y_names]
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(f"'{path}' stores Python objects; save x as a numeric array and y as integers or "
                            "strings (e.g. np.array(labels, dtype=str))") from None
        raise DataError(f"'{path}' is not a readable .npz file: {exc}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"'{path}' is not a readable .npz file: {exc}") from None
    x_names = [] if "x" in keys else x_names
    y_names = [] if "y" in keys else y_names
    shapes = ", ".join(str(tuple(x.shape[1:])) for x in xs if x.ndim)
    return RawData(xs, ys, f"{name} ({len(xs[0]) if xs[0].ndim else 0} samples, per-sample shape {shapes})",
                   input_names=x_names, output_names=y_names)


# ---- .csv ------------------------------------------------------------------------------------------------------


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_csv(path: str, label_column: str | None) -> RawData:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f)]
    except UnicodeDecodeError as exc:
        raise DataError(f"'{path}' is not a text CSV file (byte {exc.start} is not UTF-8)") from None
    except csv.Error as exc:
        raise DataError(f"'{path}' is not a readable CSV file ({exc})") from None
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]   # file lines, blanks skipped
    if not numbered:
        raise DataError(f"'{path}' is empty")
    header = [h.strip() for h in numbered[0][1]]
    if all(_is_number(h) for h in header):           # no header row: name columns by position
        columns, body = [f"column {i + 1}" for i in range(len(header))], numbered
    else:
        columns, body = header, numbered[1:]
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
                                f"{shown}; fix the value or choose the label column with --label-column "
                                "(label_column=...)") from None
        label = row[li].strip()
        if not label:
            raise DataError(f"'{path}': line {line} has an empty label in column '{columns[li]}'")
        labels.append(label)
    y = np.array(labels, dtype=str)
    if all(_is_number(s) for s in labels):
        y = y.astype(np.float64)
    source = f"{os.path.basename(path)} ({len(x)} rows, {len(feats)} features, label column '{columns[li]}')"
    return RawData([x], [y], source)


# ---- arrays and tf.data ------------------------------------------------------------------------------------------


def _as_arrays(value, what: str) -> tuple[list, list]:
    """(arrays, names) of an array, a list / tuple of arrays or a dict of arrays."""
    if isinstance(value, dict):
        if not value:
            raise DataError(f"{what} is an empty dict")
        return [np.asarray(v) for v in value.values()], [str(k) for k in value]
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        return [np.asarray(v) for v in value], []
    array = np.asarray(value)
    if array.dtype == object:
        raise DataError(f"{what} must be a numeric array (or a list / dict of arrays), got {type(value).__name__}")
    return [array], []


def read_arrays(data) -> RawData:
    """(x, y): numpy arrays, or lists / dicts of them for several inputs / outputs."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError(f"array data must be a pair (x, y), got {type(data).__name__}"
                        + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    xs, x_names = _as_arrays(data[0], "x")
    ys, y_names = _as_arrays(data[1], "y")
    shapes = ", ".join(str(tuple(x.shape[1:])) for x in xs if x.ndim)
    n = len(xs[0]) if xs[0].ndim else 0
    return RawData(xs, ys, f"arrays ({n} samples, per-sample shape {shapes})", input_names=x_names,
                   output_names=y_names)


def read_tf_dataset(dataset) -> RawData:
    """A tf.data.Dataset of (x, y) elements or batches, read into memory once."""
    tf, _ = keras_env()
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise DataError("a tf.data.Dataset for training must yield (x, y) pairs (features, labels)")
    first = tf.nest.flatten(spec[0])[0]
    batched = first.shape.rank is not None and first.shape.rank > 0 and first.shape[0] is None
    parts = {"x": [], "y": []}
    for element in dataset.as_numpy_iterator():
        parts["x"].append(element[0])
        parts["y"].append(element[1])
    if not parts["x"]:
        raise DataError("the tf.data.Dataset is empty")
    join = np.concatenate if batched else np.stack

    def gather(items):
        if isinstance(items[0], dict):
            return {k: join([it[k] for it in items]) for k in items[0]}
        if isinstance(items[0], (tuple, list)):
            return [join([it[i] for it in items]) for i in range(len(items[0]))]
        return join(items)
    raw = read_arrays((gather(parts["x"]), gather(parts["y"])))
    raw.source = "tf.data.Dataset " + raw.source[len("arrays "):]
    return raw
