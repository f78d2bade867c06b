"""edgeml.train.data: every data source, split sizes / determinism, and every DataError a user can hit."""
import time

import numpy as np
import pytest

from edgeml.errors import DataError, EdgeMLError
from edgeml.train.data import Dataset, load_dataset, split_indices


def _all_y(ds):
    return np.concatenate([ds.y_train, ds.y_val, ds.y_test])


def test_digits_shapes_dtypes_and_raw_range():
    t = time.time()
    ds = load_dataset("digits", seed=0)
    assert time.time() - t < 0.5
    assert isinstance(ds, Dataset) and ds.task == "classification"
    assert ds.input_shape == (8, 8, 1)
    assert ds.class_names == [str(i) for i in range(10)]
    n = len(ds.x_train) + len(ds.x_val) + len(ds.x_test)
    assert n == 1797
    assert (len(ds.x_val), len(ds.x_test)) == (round(1797 * 0.15),) * 2
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape[1:] == (8, 8, 1) and len(x) == len(y)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 16.0          # raw, not normalized
    # stratified: every class in every split, close to its share
    for y in (ds.y_val, ds.y_test):
        counts = np.bincount(y, minlength=10)
        assert counts.min() >= 25 and counts.max() <= 29


def test_digits_seed_determinism():
    a, b, c = load_dataset(seed=3), load_dataset(seed=3), load_dataset(seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train)
    assert len(a.x_train) == len(c.x_train)


def test_split_fractions_and_disjointness():
    y = np.repeat(np.arange(3), [50, 30, 20])
    tr, va, te = split_indices(y, seed=0, val_fraction=0.2, test_fraction=0.1)
    assert (len(tr), len(va), len(te)) == (70, 20, 10)
    assert len(set(tr) | set(va) | set(te)) == 100
    assert np.bincount(y[te], minlength=3).tolist() == [5, 3, 2]


def test_tiny_dataset_still_splits_with_one_sample_each():
    tr, va, te = split_indices(np.array([0, 1, 0]), seed=0, val_fraction=0.15, test_fraction=0.15)
    assert (len(tr), len(va), len(te)) == (1, 1, 1)


def test_npz_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5, 3)).astype(np.float64)
    y = np.array(["dog", "cat", "emu", "cat"] * 10)
    p = tmp_path / "d.npz"
    np.savez(p, x=x, y=y)
    ds = load_dataset(str(p), seed=1)
    assert ds.class_names == ["cat", "dog", "emu"]
    assert ds.input_shape == (5, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert sorted(np.unique(_all_y(ds)).tolist()) == [0, 1, 2]
    # values are as given (raw) and labels stay attached to their samples
    row = ds.x_test[0]
    idx = int(np.argmin(np.abs(x.astype(np.float32) - row).sum(axis=(1, 2))))
    assert ds.class_names[ds.y_test[0]] == y[idx]


def test_npz_int_labels_are_remapped_numerically(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.arange(30, dtype=np.float32).reshape(30, 1), y=np.array([2, 10, 5] * 10))
    ds = load_dataset(str(p))
    assert ds.class_names == ["2", "5", "10"] and ds.input_shape == (1,)


def test_csv_with_label_column(tmp_path):
    p = tmp_path / "d.csv"
    lines = ["f1,label,f2"] + [f"{i},{'ab'[i % 2]},{i * 0.5}" for i in range(20)]
    p.write_text("\n".join(lines) + "\n")
    ds = load_dataset(str(p))
    assert ds.input_shape == (2,) and ds.class_names == ["a", "b"]
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 20
    xs = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    np.testing.assert_array_equal(np.sort(xs[:, 0]), np.arange(20, dtype=np.float32))


def test_csv_last_column_default_and_explicit_label(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,kind\n" + "".join(f"{i},{i % 3},{'xyz'[i % 3]}\n" for i in range(30)))
    ds = load_dataset(str(p))
    assert ds.class_names == ["x", "y", "z"] and ds.input_shape == (2,)
    assert load_dataset(str(p), label_column="kind").class_names == ["x", "y", "z"]
    with pytest.raises(DataError, match="feature column 'kind' must be numeric"):
        load_dataset(str(p), label_column="b")            # then the letters of 'kind' become a feature


def test_image_folder(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for cls, n in (("zebra", 4), ("ant", 5)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            arr = rng.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
            PIL.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    (tmp_path / ".hidden").mkdir()
    ds = load_dataset(str(tmp_path), image_size=(6, 7), color_mode="grayscale")
    assert ds.class_names == ["ant", "zebra"]
    assert ds.input_shape == (6, 7, 1)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 9
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() > 1.5   # raw 0..255
    assert np.bincount(_all_y(ds)).tolist() == [5, 4]
    rgb = load_dataset(str(tmp_path), image_size=(4, 4))
    assert rgb.input_shape == (4, 4, 3)


# ---- errors ------------------------------------------------------------------------------------------------


def _err(fragment, *args, **kwargs):
    with pytest.raises(DataError) as info:
        load_dataset(*args, **kwargs)
    assert isinstance(info.value, EdgeMLError)
    assert fragment in str(info.value), str(info.value)
    return str(info.value)


def test_missing_path(tmp_path):
    _err("does not exist", str(tmp_path / "nope.npz"))
    _err("does not exist", str(tmp_path / "nope"))


def test_unknown_spec():
    msg = _err("unknown data 'mnist'", "mnist")
    assert "digits" in msg


def test_unsupported_file_type(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text("1 2 3")
    _err("cannot read training data", str(p))


def test_folder_without_class_folders(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    _err("no class sub-folders", str(tmp_path))


def test_empty_class_folder_is_named(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    (tmp_path / "full").mkdir()
    (tmp_path / "hollow").mkdir()
    PIL.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "full" / "a.png")
    (tmp_path / "hollow" / "notes.txt").write_text("no images")
    _err("class folder 'hollow'", str(tmp_path))


def test_single_class_folder(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    (tmp_path / "only").mkdir()
    PIL.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "only" / "a.png")
    _err("at least 2 classes", str(tmp_path))


def test_fewer_than_two_classes_npz(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.zeros((10, 3)), y=np.zeros(10, int))
    _err("at least 2 classes", str(p))


def test_npz_missing_arrays(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, data=np.zeros((10, 3)), y=np.zeros(10))
    msg = _err("no array named 'x'", str(p))
    assert "data" in msg
    np.savez(p, x=np.zeros((10, 3)))
    _err("no array named 'y'", str(p))


def test_npz_length_mismatch(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.zeros((10, 3)), y=np.arange(9) % 2)
    _err("x has 10 samples but y has 9 labels", str(p))


def test_npz_nan(tmp_path):
    p = tmp_path / "d.npz"
    x = np.zeros((10, 3))
    x[4, 1] = np.nan
    np.savez(p, x=x, y=np.arange(10) % 2)
    _err("sample 4", str(p))


def test_csv_non_numeric_feature_names_column_and_value(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("width,height,label\n1,2,a\n3,4,b\n5,tall,a\n7,8,b\n")
    msg = _err("feature column 'height'", str(p))
    assert "line 4" in msg and "'tall'" in msg


def test_csv_empty_cell_and_unknown_label_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,label\n1,x\n,y\n3,x\n")
    _err("an empty cell", str(p))
    _err("no column named 'cls'", str(p), label_column="cls")


def test_too_few_samples(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.zeros((2, 3)), y=np.array([0, 1]))
    _err("only 2 samples", str(p))


def test_bad_fractions():
    _err("val_fraction", val_fraction=0.0)
    _err("below 1", val_fraction=0.5, test_fraction=0.5)


# ---- tasks, several inputs / outputs, arrays and tf.data --------------------------------------------------------


def test_real_valued_labels_are_a_regression_target(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "r.csv"
    p.write_text("a,b,price\n" + "".join(f"{rng.normal():.3f},{rng.normal():.3f},{rng.normal() * 10:.2f}\n"
                                         for _ in range(40)))
    ds = load_dataset(str(p))
    assert ds.task == "regression" and ds.class_names == [] and ds.targets[0].task == "regression"
    assert ds.y_train.dtype == np.float32 and len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 40
    whole = load_dataset((np.zeros((30, 2), np.float32), np.arange(30) % 3), task="regression")
    assert whole.task == "regression" and set(np.unique(whole.y_train)) <= {0.0, 1.0, 2.0}
    with pytest.raises(DataError, match="regression needs numeric targets"):
        load_dataset((np.zeros((30, 2)), np.array(["a", "b", "c"] * 10)), task="regression")


def test_npz_with_named_inputs_and_outputs(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "m.npz"
    np.savez(p, x_img=rng.normal(size=(50, 4, 4, 1)), x_meta=rng.normal(size=(50, 3)), y_kind=np.arange(50) % 2,
             y_size=rng.normal(size=50))
    ds = load_dataset(str(p))
    assert ds.input_names == ["img", "meta"] and [t.name for t in ds.targets] == ["kind", "size"]
    assert [t.task for t in ds.targets] == ["classification", "regression"]
    assert ds.input_shapes == [(4, 4, 1), (3,)] and len(ds.inputs("test")) == 2 and len(ds.labels("val")) == 2
    assert len(ds.x_train[0]) == len(ds.x_train[1]) == len(ds.y_train[1])


def test_arrays_dicts_and_token_ids_stay_integers():
    x = np.random.default_rng(0).integers(0, 50, (40, 12))
    ds = load_dataset((x, np.arange(40) % 4))
    assert ds.x_train.dtype == np.int32 and ds.input_shape == (12,)
    named = load_dataset(({"a": np.zeros((30, 2)), "b": np.ones((30, 5))}, np.arange(30) % 2))
    assert named.input_names == ["a", "b"] and named.input_shapes == [(2,), (5,)]
    with pytest.raises(DataError, match="pair \\(x, y\\)"):
        load_dataset((np.zeros((3, 2)),))
    with pytest.raises(DataError, match="x has 30 samples but y has 29"):
        load_dataset((np.zeros((30, 2)), np.arange(29) % 2))


def test_tf_data_dataset_batched_or_not():
    tf = pytest.importorskip("tensorflow")
    x, y = np.arange(60, dtype=np.float32).reshape(30, 2), np.arange(30) % 3
    for data in (tf.data.Dataset.from_tensor_slices((x, y)), tf.data.Dataset.from_tensor_slices((x, y)).batch(7)):
        ds = load_dataset(data)
        assert ds.source.startswith("tf.data.Dataset") and ds.input_shape == (2,) and ds.class_names == ["0", "1", "2"]
        xs = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
        np.testing.assert_array_equal(np.sort(xs[:, 0]), x[:, 0])


def test_csv_error_names_the_label_column_flag(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("name,score\nann,1\nbob,2\n")
    msg = _err("--label-column", str(p), label_column="score")
    assert "'name'" in msg
