"""`edgeml train --stream`: training data read through tf.data pipelines, never the whole set in memory.

What stays in memory: per sample its key, split and label (a few bytes: `edgeml.train.stream_sources`), and per
split a bounded sample of SAMPLE_SIZE inputs (fewer when they would pass SAMPLE_BYTES decoded), drawn evenly over
the split in file order.  The sample is what
`StreamDataset.inputs(split)` returns: the zoo's Normalization statistics, the int8 calibration set (the converter
takes 200 of the training sample), the guard rails' input checks and the latency input come from it.  Everything
that must see every sample (fit, validation, the test split on every runtime) iterates `batches`.

Pipeline per split: items (sharded per worker under MultiWorkerMirroredStrategy: image paths, CSV lines and
TFRecord records before they are decoded, .npz rows after they are read, so every worker reads every shard;
tf.data auto-sharding OFF so it does not shard again) -> decode -> cache in memory when the split's decoded size
is at most CACHE_BYTES -> shuffle in a buffer of SHUFFLE_BUFFER samples, at most SHUFFLE_BYTES (training; image
paths are also shuffled whole before decoding, .npz shards are read in a new order every epoch; the rows of one CSV
or TFRecord file come in file order into the buffer, so a file sorted by class should be shuffled once on disk)
-> batch -> augment -> prefetch.  Streamed inputs are float32 and one array per sample.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from edgeml.errors import DataError
from edgeml.train import keras_env
from edgeml.train.data import DEFAULT_COLOR_MODE, DEFAULT_IMAGE_SIZE, Dataset, read_target
from edgeml.train.distribute import tf_config
from edgeml.train.stream_sources import open_source, split_codes

SAMPLE_SIZE = 512                  # inputs per split kept in memory, and at most SAMPLE_BYTES of them
SAMPLE_BYTES = 32 << 20
CACHE_BYTES = 64 << 20             # a split decoded to at most this is cached in memory after its first pass
SHUFFLE_BUFFER = 1024              # samples in the shuffle buffer, and at most SHUFFLE_BYTES of them
SHUFFLE_BYTES = 32 << 20
EVAL_BATCH = 256                   # test samples per runtime call, and at most EVAL_BYTES of them
EVAL_BYTES = 16 << 20
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


@dataclass
class StreamDataset(Dataset):
    """A `Dataset` whose x_* hold bounded samples (filled on first use) and y_* every label of the split, in
    file order; `batches` streams a split."""
    reader: object = None
    codes: np.ndarray | None = None
    seed: int = 0
    shard: tuple | None = None           # (workers, index) under MultiWorkerMirroredStrategy
    streamed = True

    def size(self, split: str) -> int:
        return int(np.count_nonzero(self.codes == SPLIT_CODES[split]))

    def inputs(self, split: str) -> list:
        if getattr(self, f"x_{split}") is None:
            self._read_samples()
        return super().inputs(split)

    def decoded_bytes(self, split: str) -> int:
        return self.size(split) * self.sample_bytes

    @property
    def sample_bytes(self) -> int:
        return int(np.prod(self.input_shape)) * 4

    def bounded(self, count: int, limit: int) -> int:
        """`count` samples, or fewer when they would pass `limit` bytes (at least one)."""
        return max(1, min(count, limit // self.sample_bytes))

    def _read_samples(self) -> None:
        """Every split's sample, in one pass over the source (a sequential file is read once, not three times)."""
        mask = np.zeros(len(self.codes), bool)
        for code in SPLIT_CODES.values():
            idx = np.flatnonzero(self.codes == code)
            count = min(self.bounded(SAMPLE_SIZE, SAMPLE_BYTES), len(idx))
            mask[idx[np.unique(np.linspace(0, len(idx) - 1, count).round().astype(np.int64))]] = True
        data = self.reader.dataset(mask, self.codes[mask]).batch(64)
        parts = list(self._numpy(data, mask))
        x, codes = np.concatenate([p[0] for p in parts]).astype(np.float32), np.concatenate([p[1] for p in parts])
        for split, code in SPLIT_CODES.items():
            if getattr(self, f"x_{split}") is None:
                setattr(self, f"x_{split}", x[codes == code])

    def _numpy(self, data, mask):
        """The dataset's elements as numpy; a read or decode error becomes a DataError naming the file."""
        tf, _ = keras_env()
        try:
            yield from data.as_numpy_iterator()
        except tf.errors.OpError as exc:
            raise self.data_error(exc, mask) from None

    def data_error(self, exc, mask=None) -> DataError:
        where = self.reader.locate_error(mask if mask is not None else np.ones(len(self.codes), bool))
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return DataError(where or f"{self.reader.kind} '{getattr(self.reader, 'root', None) or self.source}' "
                                  f"could not be read while streaming: {first}")

    def batches(self, split: str, batch_size: int, labels=None, *, training: bool = False, augment=None,
                repeat: bool = False):
        """A tf.data.Dataset of (x, y) batches of `split` (labels: what y holds, default the split's labels)."""
        tf, _ = keras_env()
        mask = self.codes == SPLIT_CODES[split]
        y = np.asarray(self.labels(split)[0] if labels is None else labels)
        data = self.reader.dataset(mask, y, shard=self.shard if training or repeat else None,
                                   shuffle_seed=self.seed if training else None)
        shape, dtype = tuple(self.input_shape), tf.as_dtype(self.inputs("train")[0].dtype)
        data = data.map(lambda x, t: (tf.cast(tf.reshape(x, shape), dtype), t))
        if self.decoded_bytes(split) <= CACHE_BYTES:
            data = data.cache()
        if training:
            data = data.shuffle(self.bounded(SHUFFLE_BUFFER, SHUFFLE_BYTES), seed=self.seed,
                                reshuffle_each_iteration=True)
        if repeat:
            data = data.repeat()
        data = data.batch(batch_size)
        if augment is not None:
            data = data.map(lambda x, t: (augment(x), t))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return data.with_options(options).prefetch(tf.data.AUTOTUNE)

    def fit_arguments(self, y_train, y_val, batch_size: int, augment=None) -> dict:
        """model.fit's data arguments.  Under MultiWorkerMirroredStrategy every worker must run the same number
        of steps: the splits repeat and the steps are counted (each worker reads its shard)."""
        repeat = self.shard is not None
        args = {"x": self.batches("train", batch_size, y_train, training=True, augment=augment, repeat=repeat),
                "validation_data": self.batches("val", batch_size, y_val, repeat=repeat)}
        if repeat:
            args["steps_per_epoch"] = math.ceil(self.size("train") / batch_size)
            args["validation_steps"] = math.ceil(self.size("val") / batch_size)
        return args

    def test_batches(self):
        """numpy input batches of the test split, in order (EVAL_BATCH samples each)."""
        mask = self.codes == SPLIT_CODES["test"]
        for x, _ in self._numpy(self.batches("test", self.bounded(EVAL_BATCH, EVAL_BYTES)), mask):
            yield x


def wants_stream(cfg) -> bool:
    """--stream, or data only the streamed path reads (a folder of .npz shards or TFRecord files)."""
    if getattr(cfg, "stream", False):
        return True
    spec = cfg.data
    if not isinstance(spec, (str, os.PathLike)):
        return False
    spec = os.fspath(spec)
    if spec.lower().endswith((".tfrecord", ".tfrecords")):
        return True
    if os.path.isdir(spec):
        names = [n for n in os.listdir(spec) if not n.startswith(".")]
        return bool(names) and all(n.lower().endswith((".npz", ".tfrecord", ".tfrecords")) for n in names)
    return False


def worker_shard(distribute) -> tuple | None:
    """(workers, this worker's index) under multiworker, else None (one process reads everything)."""
    if distribute != "multiworker":
        return None
    cluster, task = tf_config()
    chiefs, workers = len(cluster.get("chief") or []), len(cluster.get("worker") or [])
    index = 0 if task.get("type") == "chief" else chiefs + int(task.get("index", 0))
    return (chiefs + workers, index) if chiefs + workers > 1 else None


def load_stream(spec, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15, image_size=None,
                color_mode=None, label_column=None, task: str = "auto", distribute=None) -> StreamDataset:
    """The streamed counterpart of `edgeml.train.data.load_dataset` (same splits' meaning: fractions of the
    samples, here each sample's split drawn by a seeded hash of its key, so the sizes are close, not exact)."""
    if not isinstance(spec, (str, os.PathLike)) or os.fspath(spec) == "digits":
        raise DataError("--stream reads files: an image folder, a .csv file, .npz shards or .tfrecord files; "
                        f"'{spec if isinstance(spec, str) else type(spec).__name__}' is held in memory (drop --stream)")
    reader = open_source(os.fspath(spec), image_size=image_size or DEFAULT_IMAGE_SIZE,
                         color_mode=color_mode or DEFAULT_COLOR_MODE, label_column=label_column)
    codes = split_codes(reader.keys, seed, val_fraction, test_fraction)
    counts = np.bincount(codes, minlength=3)
    if counts.min() == 0:
        raise DataError(f"{reader.source}: {len(codes)} samples are too few to stream: the seeded split left "
                        f"{counts[0]} for training, {counts[1]} for validation and {counts[2]} for test")
    target, values = read_target(np.asarray(reader.labels), task, reader.source, "output_0", reader.class_names)
    ys = {split: values[codes == code] for split, code in SPLIT_CODES.items()}
    ds = StreamDataset(None, ys["train"], None, ys["val"], None, ys["test"],
                       target.class_names if target.task == "classification" else [], tuple(reader.sample_shape),
                       reader.source, task=target.task, targets=[target], reader=reader, codes=codes, seed=seed,
                       shard=worker_shard(distribute))
    return ds


def check_streamable(model, heads) -> None:
    """What the streamed path does not do: several inputs, and reconstruction (the target is the input)."""
    if len(model.inputs) != 1:
        raise DataError(f"--stream feeds one input array; the model takes {len(model.inputs)}: train it on "
                        "in-memory data (a .npz with x_<input name> arrays)")
    if any(h.task == "reconstruction" for h in heads):
        raise DataError("--stream does not train an autoencoder (its target is its own input): drop --stream")


def predict(model, ds) -> list:
    """Keras outputs on the whole test split (batches of a streamed one), one array per output."""
    if getattr(ds, "streamed", False):
        parts = [model.predict(x, verbose=0, batch_size=EVAL_BATCH) for x in ds.test_batches()]
        parts = [p if isinstance(p, list) else [p] for p in parts]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
    xs = ds.inputs("test")
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0, batch_size=256)
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


def describe_stream(ds: StreamDataset) -> str:
    """The report's note: how the streamed data was read."""
    cached = [s for s in ("train", "val", "test") if ds.decoded_bytes(s) <= CACHE_BYTES]
    shard = f"; each of {ds.shard[0]} workers reads its 1/{ds.shard[0]} of the samples" if ds.shard else ""
    return (f"streamed data ({ds.reader.kind}, {ds.decoded_bytes('train') / 2 ** 20:.1f} MiB decoded training "
            f"split): splits by a seeded hash of each sample's key; Normalization statistics, int8 calibration and "
            f"the guard rails' input checks from a sample of up to {ds.bounded(SAMPLE_SIZE, SAMPLE_BYTES)} inputs "
            f"per split; cached in memory: {', '.join(cached) or 'none'} (splits up to {CACHE_BYTES >> 20} MiB "
            f"decoded); shuffle buffer {ds.bounded(SHUFFLE_BUFFER, SHUFFLE_BYTES)} samples{shard}")
