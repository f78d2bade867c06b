"""Streamed training data (`edgeml train --stream`, edgeml.train.stream): image folders, CSV, npz shards and TFRecord
files through tf.data, under MirroredStrategy, resumed after a failure, bad inputs named, and a folder larger than
the memory the training process is allowed."""
import gzip
import importlib.util
import os
import resource
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edgeml.errors import DataError

pytest.importorskip("tensorflow")
pytest.importorskip("PIL")

from PIL import Image  # noqa: E402

from edgeml.train import resume as RS  # noqa: E402
from edgeml.train import stream as ST  # noqa: E402
from edgeml.train.pipeline import TrainConfig, train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits():
    spec = importlib.util.find_spec("sklearn")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    with gzip.open(path, "rt") as f:
        raw = np.loadtxt(f, delimiter=",")
    return raw[:, :-1].reshape(-1, 8, 8), raw[:, -1].astype(np.int64)


def image_folder(root, count=700):
    x, y = digits()
    for i in range(count):
        os.makedirs(root / str(y[i]), exist_ok=True)
        Image.fromarray((x[i] * 15.9375).astype(np.uint8)).save(root / str(y[i]) / f"{i}.png")
    return root


def npz_shards(root, shards=3, rows=300, channels=1, distinct=None):
    """Shards of (8, 8, channels) digits (uint8, the digit repeated over the channels); past `distinct` shards the
    files are links to the first ones (a large folder written lazily)."""
    x, y = digits()
    os.makedirs(root, exist_ok=True)
    for s in range(shards):
        path = os.path.join(root, f"shard{s:03d}.npz")
        if distinct is not None and s >= distinct:
            os.symlink(f"shard{s % distinct:03d}.npz", path)
            continue
        idx = (np.arange(rows) + s * rows) % len(x)
        np.savez_compressed(path, x=np.repeat(x[idx][..., None].astype(np.uint8), channels, axis=3), y=y[idx])
    return root


def quick(out, data, **kw):
    args = dict(out=str(out), data=str(data), verbose=0, allow_degraded=True, epochs=3, stream=True, batch_size=32)
    args.update(kw)
    return train(TrainConfig(**args))


def streamed_note(result):
    return next(n for n in result.report["notes"] if n.startswith("streamed data"))


def test_streamed_image_folder_trains_and_matches_litert_bit_for_bit(tmp_path):
    data = image_folder(tmp_path / "digits")
    result = quick(tmp_path / "out", data, image_size=(8, 8), color_mode="grayscale")
    report = result.report
    assert "streamed" in report["data"] and "700 files" in report["data"]
    assert "image folder" in streamed_note(result) and "cached in memory: train, val, test" in streamed_note(result)
    assert report["classes"] == [str(c) for c in range(10)]             # the folder names
    assert report["accuracy"]["edgeml_int8"] > 0.8
    assert report["agreement"]["edgeml_int8_vs_litert_reference_int8"]["bit_exact"] == 1.0
    assert sorted(n for n in os.listdir(tmp_path / "out") if not n.startswith(".")) == sorted(report["written"])


def test_streamed_splits_are_seeded_hashes_of_the_sample_keys(tmp_path):
    data = image_folder(tmp_path / "digits", count=300)
    a = ST.load_stream(str(data), seed=0, image_size=(8, 8), color_mode="grayscale")
    b = ST.load_stream(str(data), seed=0, image_size=(8, 8), color_mode="grayscale")
    c = ST.load_stream(str(data), seed=1, image_size=(8, 8), color_mode="grayscale")
    assert np.array_equal(a.codes, b.codes) and not np.array_equal(a.codes, c.codes)
    assert a.size("train") + a.size("val") + a.size("test") == 300
    assert abs(a.size("test") / 300 - 0.15) < 0.06
    # the sample (all of a small split) is decoded like the in-memory path: decode_image + bilinear resize
    from edgeml.train.data import load_dataset
    sample = a.inputs("test")[0]
    assert sample.shape == (a.size("test"), 8, 8, 1) and sample.dtype == np.float32
    whole = load_dataset(str(data), image_size=(8, 8), color_mode="grayscale")
    pool = np.concatenate([whole.x_train, whole.x_val, whole.x_test]).reshape(300, -1)
    assert all((pool == s.reshape(1, -1)).all(axis=1).any() for s in sample)
    # moving the folder keeps every file's split (keys are relative paths)
    os.rename(data, tmp_path / "moved")
    moved = ST.load_stream(str(tmp_path / "moved"), seed=0, image_size=(8, 8), color_mode="grayscale")
    assert np.array_equal(a.codes, moved.codes)


def test_streamed_csv_numeric_columns_and_a_label_column(tmp_path):
    x, y = digits()
    path = tmp_path / "digits.csv"
    with open(path, "w") as f:
        f.write(",".join(f"p{i}" for i in range(64)) + ",label\n")
        for row, label in zip(x[:900].reshape(900, -1), y[:900]):
            f.write(",".join(f"{v:g}" for v in row) + f",digit{label}\n")
            if label == 3:
                f.write("\n")                                           # blank lines are skipped alike
    result = quick(tmp_path / "out", path, model="mlp", epochs=12)
    assert result.report["classes"] == [f"digit{i}" for i in range(10)]  # vocabulary from one streamed pass
    assert "CSV file" in streamed_note(result)
    assert result.report["accuracy"]["edgeml_int8"] > 0.8


def test_streamed_npz_shards(tmp_path):
    data = npz_shards(str(tmp_path / "shards"))
    result = quick(tmp_path / "out", data, stream=False)             # a folder of shards always streams
    assert "3 .npz shards, 900 samples" in result.report["data"]
    assert result.report["accuracy"]["edgeml_int8"] > 0.8
    assert result.report["agreement"]["edgeml_int8_vs_litert_reference_int8"]["bit_exact"] == 1.0


def test_streamed_tfrecord_files(tmp_path):
    import tensorflow as tf
    x, y = digits()
    os.makedirs(tmp_path / "records")
    for k in range(2):
        with tf.io.TFRecordWriter(str(tmp_path / "records" / f"part{k}.tfrecord")) as w:
            for a, b in zip(x[k * 450:(k + 1) * 450], y[k * 450:(k + 1) * 450]):
                feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=a.reshape(-1))),
                           "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=[8, 8, 1])),
                           "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[b]))}
                w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    result = quick(tmp_path / "out", tmp_path / "records")
    assert "2 TFRecord files, 900 records, per-sample shape (8, 8, 1)" in result.report["data"]
    assert result.report["accuracy"]["edgeml_int8"] > 0.8


def test_streamed_data_under_mirrored_strategy(tmp_path):
    data = npz_shards(str(tmp_path / "shards"))
    result = quick(tmp_path / "out", data, distribute="mirrored", epochs=2)
    notes = " ".join(result.report["notes"])
    assert "MirroredStrategy" in notes and "streamed data" in notes
    assert result.report["accuracy"]["edgeml_int8"] > 0.7


def test_streamed_run_resumes_from_its_last_completed_epoch(tmp_path):
    from edgeml.train import keras_env
    _, keras = keras_env()
    data = npz_shards(str(tmp_path / "shards"))
    out = str(tmp_path / "out")

    class Fail(keras.callbacks.Callback):        # runs before the backup callbacks: epoch 2 is never saved
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("stopped mid-training")
    with pytest.raises(RuntimeError, match="stopped mid-training"):
        quick(out, data, epochs=3, patience=99, callbacks=[Fail()])
    assert len(RS.read_epochs(os.path.join(RS.backup_folder(out), "train.epochs.jsonl"))) == 1
    assert not os.path.exists(out)
    result = quick(out, data, epochs=3, patience=99, resume=True)
    assert "train from epoch 2" in " ".join(result.report["notes"])
    assert result.report["phases"][0]["epochs"] == 3
    assert not os.path.exists(RS.backup_folder(out))


# ---- bad inputs: a DataError naming the file, before any training ------------------------------------------------


def test_empty_folder_is_refused(tmp_path):
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DataError, match="has no class sub-folders"):
        ST.load_stream(str(tmp_path / "empty"))
    os.makedirs(tmp_path / "empty" / "cats")
    with pytest.raises(DataError, match="class folder 'cats' .* has no images"):
        ST.load_stream(str(tmp_path / "empty"))


def test_a_file_that_is_no_image_is_named(tmp_path):
    data = image_folder(tmp_path / "digits", count=40)
    (data / "3" / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"broken\.png' is not a PNG, JPEG"):
        ST.load_stream(str(data), image_size=(8, 8))


def test_a_cut_image_is_named_when_it_is_decoded(tmp_path):
    data = image_folder(tmp_path / "digits", count=40)
    whole = (data / "1" / "1.png").read_bytes()
    for split in range(3):                       # one cut file lands in each split
        (data / "1" / f"cut{split}.png").write_bytes(whole[:30])
    ds = ST.load_stream(str(data), image_size=(8, 8), color_mode="grayscale")
    with pytest.raises(DataError, match=r"the image '.*cut\d\.png' could not be decoded"):
        for split in ("train", "val", "test"):
            ds.inputs(split)


def test_a_ragged_csv_names_the_file_and_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n5,6\n")
    with pytest.raises(DataError, match=r"ragged\.csv' line 4 has 2 values but the header has 3 columns"):
        ST.load_stream(str(path))
    path.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    with pytest.raises(DataError, match=r"feature column 'b' must hold finite numbers, but line 3 holds 'oops'"):
        ST.load_stream(str(path))


def test_mismatched_npz_shards_and_tfrecords_are_named(tmp_path):
    os.makedirs(tmp_path / "shards")
    np.savez(tmp_path / "shards" / "a.npz", x=np.zeros((5, 4), np.float32), y=np.zeros(5))
    np.savez(tmp_path / "shards" / "b.npz", x=np.zeros((5, 3), np.float32), y=np.zeros(5))
    with pytest.raises(DataError, match=r"b\.npz': samples of shape \(3,\), but .*a\.npz' has \(4,\)"):
        ST.load_stream(str(tmp_path / "shards"))
    import tensorflow as tf
    path = str(tmp_path / "r.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for n in (4, 4, 3):
            feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0] * n)),
                       "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[n]))}
            w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    with pytest.raises(DataError, match=r"r\.tfrecord' record 2 has 3 values in 'x'"):
        ST.load_stream(path)


def test_stream_refuses_in_memory_data_and_autoencoders(tmp_path):
    with pytest.raises(DataError, match="--stream reads files"):
        ST.load_stream("digits")
    data = npz_shards(str(tmp_path / "shards"), shards=1)
    with pytest.raises(DataError, match="does not train an autoencoder"):
        quick(tmp_path / "out", data, model="autoencoder")


# ---- the Done-when test: a folder larger than the memory the process is allowed ------------------------------------

ALLOWED_BYTES = 1792 << 20


def peak_rss_watchdog(proc, limit: int, seen: list):
    """Polls the child's resident set and kills it past `limit` (what a memory cgroup would do)."""
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return
        seen.append(rss)
        if rss > limit:
            proc.kill()
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_trains_on_a_folder_larger_than_the_memory_it_is_allowed(tmp_path):
    """64 npz shards of 512 samples of shape (8, 8, 256) (8 written, 56 linked to them): 2 GiB decoded as float32,
    the training process is allowed 1.75 GiB.

    How the allowance is enforced: RLIMIT_AS cannot be used, because TensorFlow reserves address space it never
    touches (2.5 GB of VmSize with 0.6 GB resident after a tiny fit here, more with every thread), and this
    container has no memory cgroup.  So: RLIMIT_DATA is set to the allowance (the kernel refuses private writable
    memory past it: heap and anonymous mappings, where decoded tensors live), a watchdog kills the child as soon
    as its resident set passes the allowance (what a memory cgroup does), and the child's own peak RSS
    (ru_maxrss, exact) is checked after.  (8, 8, 256) samples keep the cnn's work per decoded byte small, so 2 GiB train in
    about a minute on 2 cores."""
    data = npz_shards(str(tmp_path / "big"), shards=64, rows=512, channels=256, distinct=8)
    decoded = 64 * 512 * 8 * 8 * 256 * 4
    assert decoded > ALLOWED_BYTES
    out = tmp_path / "out"
    peak_file = tmp_path / "peak_rss_kb"
    cmd = [sys.executable, "-c", "import resource, sys; from edgeml.cli import main; "
           f"resource.setrlimit(resource.RLIMIT_DATA, ({ALLOWED_BYTES}, {ALLOWED_BYTES})); rc = main(sys.argv[1:]); "
           f"open({str(peak_file)!r}, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)); "
           "sys.exit(rc)",
           "train", "--data", data, "--stream", "--epochs", "1", "--batch-size", "64", "--validation-split", "0.05",
           "--test-split", "0.02", "--out", str(out), "--quiet"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    watchdog = threading.Thread(target=peak_rss_watchdog, args=(proc, ALLOWED_BYTES, seen), daemon=True)
    watchdog.start()
    log, _ = proc.communicate(timeout=900)
    watchdog.join(5)
    assert proc.returncode == 0, log.decode()[-3000:]
    peak = int(peak_file.read_text()) * 1024                           # the child's own peak resident set
    assert max(seen) <= ALLOWED_BYTES
    assert peak < ALLOWED_BYTES < decoded, (peak, ALLOWED_BYTES, decoded)
    import json
    with open(out / "report.json") as f:
        report = json.load(f)
    assert "32768 samples" in report["data"]
    assert report["accuracy"]["edgeml_int8"] > 0.9                     # a usable int8 model
    assert report["agreement"]["edgeml_int8_vs_litert_reference_int8"]["bit_exact"] == 1.0


@pytest.mark.slow
def test_two_workers_stream_their_own_shares(tmp_path):
    """MultiWorkerMirroredStrategy with streamed npz shards: each worker reads its half of every split before
    decoding (tf.data auto-sharding off), both run the same number of steps and end with the same weights."""
    from test_train_dist import run_two_workers
    data = npz_shards(str(tmp_path / "shards"), shards=4, rows=400)
    report, (chief, worker) = run_two_workers(tmp_path, model="cnn", epochs=3, data=data)
    notes = " ".join(report["notes"])
    assert "each of 2 workers reads its 1/2 of the samples" in notes and "2 replicas" in notes
    assert report["accuracy"]["edgeml_int8"] > 0.85, report["accuracy"]
    np.testing.assert_allclose(chief, worker, rtol=1e-5, atol=1e-6)
