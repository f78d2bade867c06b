"""Streamed data sources (`--stream`): what each source holds, found in one pass that keeps only per-sample metadata
(a path or row number, the label, the split), and a tf.data reader of its samples.

  image folder   one sub-folder per class; the classes are the folder names, every file's first bytes are checked
                 (PNG / JPEG / BMP / GIF) so a file that is no image is named before training
  .csv           one pass over the rows (field count, numeric features, label vocabulary); rows are read by
                 tf.data's TextLineDataset + decode_csv
  .npz           one file or a folder of shards (arrays x and y each): y is read whole, x row by row from the
                 .npy inside the zip (compressed or not), a chunk at a time
  .tfrecord      one file or a folder of them, tf.train.Example records: "x" float_list (the sample flattened),
                 optional "shape" int64_list (its per-sample shape, default (len(x),)), "y" int64_list (a class
                 index), bytes_list (a class name) or float_list (regression values)
The split of each sample is a seeded hash of its key (relative path, or file and row number), so it needs no
shuffle of the whole set and stays the same from run to run and on every worker.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import math
import os
import zipfile

import numpy as np

from edgeml.errors import DataError
from edgeml.train import keras_env
from edgeml.train.sources import COLOR_CHANNELS, IMAGE_EXTENSIONS, LABEL_COLUMN_NAMES

IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"BM", b"GIF8")
TFRECORD_EXTENSIONS = (".tfrecord", ".tfrecords")
NPZ_CHUNK_ROWS = 256


def split_codes(keys: np.ndarray, seed: int, val_fraction: float, test_fraction: float) -> np.ndarray:
    """0 (train), 1 (validation) or 2 (test) per uint64 key: splitmix64 of key and seed, read as a uniform [0, 1)."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2 ** 64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) / float(2 ** 53)
    return np.where(u < test_fraction, 2, np.where(u < test_fraction + val_fraction, 1, 0)).astype(np.uint8)


def path_keys(paths: list, root: str) -> np.ndarray:
    """A uint64 key per file from its path relative to `root` (the same wherever the folder is)."""
    return np.array([int.from_bytes(hashlib.blake2b(os.path.relpath(p, root).replace(os.sep, "/").encode(),
                                                    digest_size=8).digest(), "little") for p in paths], np.uint64)


def _shard(data, shard):
    """Keeps this worker's share (shard = (workers, index)), before anything is decoded."""
    if shard is not None and shard[0] > 1:
        data = data.shard(*shard)
    return data


# ---- image folders ---------------------------------------------------------------------------------------------


class ImageFolder:
    """Files of one sub-folder per class, decoded and resized on the fly (the in-memory path's arithmetic:
    decode_image, then bilinear resize to float32)."""
    kind = "image folder"

    def __init__(self, path: str, image_size, color_mode: str):
        if color_mode not in COLOR_CHANNELS:
            raise DataError(f"color_mode must be one of {', '.join(COLOR_CHANNELS)}, got '{color_mode}'")
        self.root, self.size, self.channels = path, (int(image_size[0]), int(image_size[1])), COLOR_CHANNELS[color_mode]
        classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
        if not classes:
            raise DataError(f"folder '{path}' has no class sub-folders: put the images of each class in their own "
                            "sub-folder (e.g. cats/, dogs/)")
        paths, labels = [], []
        for k, c in enumerate(classes):
            found = []
            for where, dirs, files in os.walk(os.path.join(path, c)):
                dirs.sort()
                found += [os.path.join(where, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
            if not found:
                raise DataError(f"class folder '{c}' in '{path}' has no images ({', '.join(IMAGE_EXTENSIONS)})")
            paths += found
            labels += [k] * len(found)
        if len(classes) < 2:
            raise DataError(f"folder '{path}' has only one class sub-folder ('{classes[0]}'); classification needs at "
                            "least 2 classes")
        for p in paths:
            check_image_header(p)
        self.paths, self.class_names = np.array(paths), classes
        self.labels = np.array(labels, np.int64)
        self.keys = path_keys(paths, path)
        self.sample_shape = self.size + (self.channels,)
        self.source = f"image folder {path} ({len(classes)} classes, {self.size[0]}x{self.size[1]} {color_mode}, " \
                      f"{len(paths)} files, streamed)"

    def decode(self, tf, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=self.channels, expand_animations=False)
        return tf.image.resize(image, self.size, method="bilinear")

    def dataset(self, mask: np.ndarray, labels: tuple, shard=None, shuffle_seed=None):
        """(x, labels) of the samples where `mask`, in file order (paths shuffled first when shuffle_seed is
        given: a path is a few bytes, so the whole list shuffles); sharded before any file is read."""
        tf, _ = keras_env()
        data = _shard(tf.data.Dataset.from_tensor_slices((self.paths[mask], labels)), shard)
        if shuffle_seed is not None:
            data = data.shuffle(int(mask.sum()), seed=shuffle_seed, reshuffle_each_iteration=True)
        return data.map(lambda p, y: (self.decode(tf, p), y), num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)

    def locate_error(self, mask: np.ndarray) -> str | None:
        """The first file of `mask` that does not decode (after a decode error during training)."""
        tf, _ = keras_env()
        for p in self.paths[mask]:
            try:
                self.decode(tf, tf.constant(p))
            except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, tf.errors.NotFoundError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                return f"the image '{p}' could not be decoded ({first[:200]}); remove or re-save it"
        return None


def check_image_header(path: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise DataError(f"the image '{path}' cannot be read ({exc.strerror})") from None
    if not any(head.startswith(m) for m in IMAGE_MAGIC):
        what = "is empty" if not head else "is not a PNG, JPEG, BMP or GIF image"
        raise DataError(f"the image '{path}' {what}; remove or re-save it")


# ---- CSV -------------------------------------------------------------------------------------------------------


def _number(cell: str):
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


class CsvRows:
    """Rows of a CSV file: one Python pass checks every row and collects the labels, tf.data reads the values."""
    kind = "CSV file"

    def __init__(self, path: str, label_column: str | None):
        self.path = path
        labels, self.lines = [], []            # file line (1-based) of each data row
        header, skip = None, 0
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.reader(f)
                line = 0
                for row in reader:
                    first, line = line + 1, reader.line_num
                    if line != first:
                        raise DataError(f"'{path}' line {first}: a quoted value spans several lines, which --stream "
                                        "cannot read (it reads one row per line)")
                    if not "".join(row).strip() and len(row) <= 1:
                        continue                                       # a blank line
                    if header is None:
                        header = [h.strip() for h in row]
                        named = not all(_number(h) is not None for h in header)
                        self.columns = header if named else [f"column {i + 1}" for i in range(len(header))]
                        self.label_index = self._label_index(label_column)
                        self.features = [i for i in range(len(self.columns)) if i != self.label_index]
                        if named:
                            skip = line
                            continue
                    labels.append(self._check_row(row, line))
                    self.lines.append(line)
        except UnicodeDecodeError as exc:
            raise DataError(f"'{path}' is not a text CSV file (byte {exc.start} is not UTF-8)") from None
        except csv.Error as exc:
            raise DataError(f"'{path}' is not a readable CSV file ({exc})") from None
        if header is None:
            raise DataError(f"'{path}' is empty")
        if not labels:
            raise DataError(f"'{path}' has a header but no data rows")
        self.header_lines = skip
        self.lines = np.array(self.lines, np.int64)
        self.labels = np.array(labels, dtype=str)
        if all(_number(s) is not None for s in labels):
            self.labels = self.labels.astype(np.float64)
        self.keys = np.arange(len(labels), dtype=np.uint64)
        self.class_names = None
        self.sample_shape = (len(self.features),)
        self.source = f"{os.path.basename(path)} ({len(labels)} rows, {len(self.features)} features, label column " \
                      f"'{self.columns[self.label_index]}', streamed)"

    def _label_index(self, label_column):
        if len(self.columns) < 2:
            raise DataError(f"'{self.path}' has {len(self.columns)} column; it needs at least one feature column and "
                            "a label column")
        if label_column is not None:
            if label_column not in self.columns:
                raise DataError(f"'{self.path}' has no column named '{label_column}' (columns: "
                                f"{', '.join(self.columns)})")
            return self.columns.index(label_column)
        lower = [c.lower() for c in self.columns]
        return next((lower.index(n) for n in LABEL_COLUMN_NAMES if n in lower), len(self.columns) - 1)

    def _check_row(self, row: list, line: int) -> str:
        if len(row) != len(self.columns):
            raise DataError(f"'{self.path}' line {line} has {len(row)} values but the header has "
                            f"{len(self.columns)} columns")
        for i in self.features:
            if _number(row[i].strip()) is None:
                cell = row[i].strip()
                shown = f"'{cell}'" if cell else "an empty cell"
                raise DataError(f"'{self.path}': feature column '{self.columns[i]}' must hold finite numbers, but "
                                f"line {line} holds {shown}; fix the value or choose the label column with "
                                "--label-column (label_column=...)")
        label = row[self.label_index].strip()
        if not label:
            raise DataError(f"'{self.path}': line {line} has an empty label in column "
                            f"'{self.columns[self.label_index]}'")
        return label

    def dataset(self, mask: np.ndarray, labels: tuple, shard=None, shuffle_seed=None):
        tf, _ = keras_env()
        member = tf.constant(mask)
        rows = tf.data.TextLineDataset(self.path).skip(self.header_lines) \
            .filter(lambda s: tf.strings.length(tf.strings.strip(s)) > 0) \
            .enumerate().filter(lambda i, s: tf.gather(member, i)).map(lambda i, s: s)
        data = _shard(tf.data.Dataset.zip((rows, tf.data.Dataset.from_tensor_slices(labels))), shard)
        defaults = [[""]] * len(self.columns)
        features = self.features

        def decode(line, y):
            cells = tf.io.decode_csv(line, record_defaults=defaults)
            return tf.strings.to_number(tf.strings.strip(tf.stack([cells[i] for i in features]))), y
        return data.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def locate_error(self, mask: np.ndarray) -> str | None:
        return None


# ---- npz -------------------------------------------------------------------------------------------------------


def _npy_header(z: zipfile.ZipFile, member: str, path: str):
    with z.open(member) as f:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(f)
    if fortran or dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"'{path}': --stream reads '{member[:-4]}' row by row, so it must be a numeric C-order array "
                        f"(it is {'Fortran-order' if fortran else dtype}); save it with np.ascontiguousarray")
    return shape, dtype


class NpzShards:
    """.npz files with x and y: y read whole (one label per sample), x streamed row by row."""
    kind = "npz shards"

    def __init__(self, path: str):
        self.files = [path] if os.path.isfile(path) else sorted(
            os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(".npz"))
        counts, labels, shape = [], [], None
        for f in self.files:
            try:
                with zipfile.ZipFile(f) as z:
                    names = z.namelist()
                    if "x.npy" not in names or "y.npy" not in names:
                        raise DataError(f"'{f}' has no arrays x and y (it holds {', '.join(sorted(names))}); save "
                                        "each shard with np.savez(path, x=..., y=...)")
                    x_shape, _ = _npy_header(z, "x.npy", f)
                with np.load(f, allow_pickle=False) as data:
                    y = np.asarray(data["y"])
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise DataError(f"'{f}' is not a readable .npz file: {exc}") from None
            if len(x_shape) < 1 or y.ndim < 1 or len(y) != x_shape[0]:
                raise DataError(f"'{f}': x has {x_shape[0] if x_shape else 0} samples but y has "
                                f"{len(y) if y.ndim else 0} labels; they must match")
            if shape is not None and tuple(x_shape[1:]) != shape:
                raise DataError(f"'{f}': samples of shape {tuple(x_shape[1:])}, but '{self.files[0]}' has {shape}; "
                                "every shard must hold the same per-sample shape")
            shape = tuple(int(d) for d in x_shape[1:])
            counts.append(int(x_shape[0]))
            labels.append(y)
        if not self.files or not sum(counts):
            raise DataError(f"'{path}' holds no samples (no .npz shard with rows)")
        self.counts = counts
        self.labels = np.concatenate(labels)
        self.keys = np.concatenate([np.arange(c, dtype=np.uint64) + (np.uint64(i) << np.uint64(40))
                                    for i, c in enumerate(counts)])
        self.class_names = None
        self.sample_shape = shape if shape else (1,)
        self.source = f"{os.path.basename(path.rstrip(os.sep))} ({len(self.files)} .npz shard" \
                      f"{'s' if len(self.files) > 1 else ''}, {sum(counts)} samples, per-sample shape {shape}, streamed)"

    def rows(self, mask: np.ndarray, labels: np.ndarray, order_seed=None):
        """(x row as float32, its label) where `mask`, read NPZ_CHUNK_ROWS at a time; the shards in file order, or
        in an order drawn from `order_seed` (rows within a shard stay in file order)."""
        position = np.cumsum(mask) - 1                  # sample -> its index in labels
        starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        order = range(len(self.files)) if order_seed is None else \
            np.random.default_rng(order_seed).permutation(len(self.files))
        for s in order:
            f, count, start = self.files[s], self.counts[s], int(starts[s])
            keep = mask[start:start + count]
            if not keep.any():
                continue
            with zipfile.ZipFile(f) as z:
                shape, dtype = _npy_header(z, "x.npy", f)
                row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
                with z.open("x.npy") as stream:
                    version = np.lib.format.read_magic(stream)
                    (np.lib.format.read_array_header_1_0 if version == (1, 0)
                     else np.lib.format.read_array_header_2_0)(stream)
                    for first in range(0, count, NPZ_CHUNK_ROWS):
                        n = min(NPZ_CHUNK_ROWS, count - first)
                        chunk = stream.read(n * row_bytes)
                        if len(chunk) != n * row_bytes:
                            raise DataError(f"'{f}': x ends after {first + len(chunk) // row_bytes} of its {count} "
                                            "rows (a cut file)")
                        rows = np.frombuffer(chunk, dtype).reshape((n,) + tuple(shape[1:]))
                        for r in np.flatnonzero(keep[first:first + n]):
                            yield (rows[r].astype(np.float32).reshape(self.sample_shape),
                                   labels[position[start + first + r]])

    def dataset(self, mask: np.ndarray, labels, shard=None, shuffle_seed=None):
        """(x, label) where `mask`; with shuffle_seed the shard order is drawn anew on every pass (the same on
        every worker: each draws from (seed, pass number)), so a shard sorted by class is not seen at one place
        of every epoch."""
        tf, _ = keras_env()
        labels = np.asarray(labels)
        spec = (tf.TensorSpec(self.sample_shape, tf.float32), tf.TensorSpec(labels.shape[1:], labels.dtype))
        passes = itertools.count()

        def generate():
            yield from self.rows(mask, labels, None if shuffle_seed is None else (shuffle_seed, next(passes)))
        return _shard(tf.data.Dataset.from_generator(generate, output_signature=spec), shard)

    def locate_error(self, mask: np.ndarray) -> str | None:
        """Why a shard could not be streamed (a cut file), read again outside tf.data."""
        try:
            for _ in self.rows(mask, np.zeros(int(mask.sum()))):
                pass
        except DataError as exc:
            return str(exc)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            return f"a .npz shard could not be read while streaming: {exc}"
        return None


# ---- TFRecord --------------------------------------------------------------------------------------------------


class TFRecords:
    """tf.train.Example records (see the module docstring for the feature spec); one pass reads the labels and
    checks every record's length."""
    kind = "TFRecord files"

    def __init__(self, path: str):
        tf, _ = keras_env()
        self.files = [path] if os.path.isfile(path) else sorted(
            os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(TFRECORD_EXTENSIONS))
        first = None
        for f in self.files:
            for record in tf.data.TFRecordDataset(f).take(1):
                first = (f, record.numpy())
                break
            if first:
                break
        if first is None:
            raise DataError(f"'{path}' holds no records")
        example = tf.train.Example.FromString(first[1]).features.feature
        if "x" not in example or "y" not in example or example["x"].WhichOneof("kind") != "float_list":
            raise DataError(f"'{first[0]}': a record needs the features 'x' (float_list, the sample flattened) and "
                            f"'y' (int64_list, bytes_list or float_list); it has {', '.join(sorted(example))}")
        self.size = len(example["x"].float_list.value)
        shape = tuple(example["shape"].int64_list.value) if "shape" in example else (self.size,)
        if int(np.prod(shape)) != self.size:
            raise DataError(f"'{first[0]}': feature 'shape' {shape} does not hold the {self.size} values of 'x'")
        self.y_kind = example["y"].WhichOneof("kind")
        self.y_size = len(getattr(example["y"], self.y_kind).value)
        y_dtype = {"int64_list": tf.int64, "bytes_list": tf.string, "float_list": tf.float32}[self.y_kind]
        self.y_spec = tf.io.FixedLenFeature([self.y_size], y_dtype)
        probe = {"x": tf.io.VarLenFeature(tf.float32), "y": tf.io.VarLenFeature(y_dtype)}
        labels = []
        for f in self.files:
            parsed = tf.data.TFRecordDataset(f).batch(1024).map(lambda r: tf.io.parse_example(r, probe))
            seen = 0
            try:
                for batch in parsed:
                    x_len = tf.math.bincount(tf.cast(batch["x"].indices[:, 0], tf.int32),
                                             minlength=int(batch["x"].dense_shape[0])).numpy()
                    y_len = tf.math.bincount(tf.cast(batch["y"].indices[:, 0], tf.int32),
                                             minlength=int(batch["y"].dense_shape[0])).numpy()
                    bad = np.flatnonzero((x_len != self.size) | (y_len != self.y_size))
                    if len(bad):
                        raise DataError(f"'{f}' record {seen + int(bad[0])} has {x_len[bad[0]]} values in 'x' and "
                                        f"{y_len[bad[0]]} in 'y', but the first record has {self.size} and "
                                        f"{self.y_size}; every record must have the same sizes")
                    values = tf.sparse.to_dense(batch["y"]).numpy()
                    labels.append(values)
                    seen += len(x_len)
            except tf.errors.OpError as exc:
                raise DataError(f"'{f}' is not a readable TFRecord file of tf.train.Example records "
                                f"({(str(exc).splitlines() or [''])[0][:200]})") from None
        y = np.concatenate(labels)
        if self.y_kind == "bytes_list":
            y = np.array([v.decode("utf-8", "replace") for v in y[:, 0]], dtype=str)
        elif self.y_size == 1:
            y = y[:, 0]
        self.labels = y
        self.keys = np.arange(len(y), dtype=np.uint64)
        self.class_names = None
        self.sample_shape = shape
        self.source = f"{os.path.basename(path.rstrip(os.sep))} ({len(self.files)} TFRecord file" \
                      f"{'s' if len(self.files) > 1 else ''}, {len(y)} records, per-sample shape {shape}, streamed)"

    def dataset(self, mask: np.ndarray, labels: tuple, shard=None, shuffle_seed=None):
        tf, _ = keras_env()
        member = tf.constant(mask)
        spec = {"x": tf.io.FixedLenFeature([self.size], tf.float32)}
        records = tf.data.TFRecordDataset(self.files).enumerate() \
            .filter(lambda i, r: tf.gather(member, i)).map(lambda i, r: r)
        data = _shard(tf.data.Dataset.zip((records, tf.data.Dataset.from_tensor_slices(labels))), shard)
        shape = self.sample_shape
        return data.map(lambda r, y: (tf.reshape(tf.io.parse_single_example(r, spec)["x"], shape), y),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def locate_error(self, mask: np.ndarray) -> str | None:
        return None


def open_source(spec: str, *, image_size, color_mode, label_column):
    """The streamed source `spec` names (a folder of class sub-folders, of .npz shards or of .tfrecord files, or
    one .csv / .npz / .tfrecord file)."""
    if os.path.isdir(spec):
        names = [n for n in os.listdir(spec) if not n.startswith(".")]
        if any(n.lower().endswith(TFRECORD_EXTENSIONS) for n in names):
            return TFRecords(spec)
        if any(n.lower().endswith(".npz") for n in names) and not any(
                os.path.isdir(os.path.join(spec, n)) for n in names):
            return NpzShards(spec)
        return ImageFolder(spec, image_size, color_mode)
    ext = os.path.splitext(spec)[1].lower()
    if os.path.isfile(spec) and ext == ".csv":
        return CsvRows(spec, label_column)
    if os.path.isfile(spec) and ext == ".npz":
        return NpzShards(spec)
    if os.path.isfile(spec) and ext in TFRECORD_EXTENSIONS:
        return TFRecords(spec)
    if not os.path.exists(spec):
        raise DataError(f"data path '{spec}' does not exist")
    raise DataError(f"--stream reads an image folder, a .csv file, a .npz file or folder of .npz shards, or "
                    f".tfrecord files; got '{spec}'")
