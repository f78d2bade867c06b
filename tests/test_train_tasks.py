"""Tasks beyond one-input classification: regression (MSE / MAE on every runtime, agreement as max abs error), a
multi-input model fed from x_<input name> arrays, and the up-front checks that turn shape and label mismatches into
one-line errors before anything trains."""
import os

import numpy as np
import pytest

from edgeml.errors import DataError, EdgeMLError

pytest.importorskip("tensorflow_model_optimization")

from edgeml.train import keras_env  # noqa: E402
from edgeml.train.pipeline import TrainConfig, train  # noqa: E402

tf, keras = keras_env()


def _regression_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.3 * x[:, 3] + 0.05 * rng.normal(size=n)).astype(np.float32)
    return x, y


def test_regression_user_model_reports_mse_mae_and_max_abs_agreement(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    path = tmp_path / "reg.h5"
    model.save(path)
    result = train(TrainConfig(out=str(tmp_path / "out"), data=_regression_data(), model=str(path), epochs=30,
                               verbose=0, learning_rate=3e-3))
    r = result.report
    assert r["task"] == "regression" and "accuracy" not in r and r["classes"] == []
    variance = r["metrics"]["output_0" if "output_0" in r["metrics"] else next(iter(r["metrics"]))]["target_variance"]
    assert r["mse"]["keras_float"] < 0.3 * variance, (r["mse"], variance)          # learned most of the variance
    for runtime in ("edgeml_int8", "litert_int8", "onnxruntime_int8", "edgeml_float"):
        assert r["mse"][runtime] <= r["mse"]["keras_float"] + 0.02 * variance, (runtime, r["mse"])
        assert r["mae"][runtime] > 0
    pair = r["agreement"]["edgeml_int8_vs_litert_reference_int8"]
    assert "top1" not in pair and pair["max_abs_diff"] == 0.0 and pair["bit_exact"] == 1.0
    assert r["agreement"]["edgeml_float_vs_keras_float"]["max_abs_diff"] < 1e-4
    assert not os.path.exists(tmp_path / "out" / "labels.txt")
    assert result.ok and "regression" in open(tmp_path / "out" / "report.md").read()


def test_multi_input_model_from_named_npz_arrays(tmp_path):
    from edgeml.train.sources import read_digits
    digits = read_digits()
    x, y = digits.xs[0], digits.ys[0]
    rng = np.random.default_rng(0)
    data = tmp_path / "multi.npz"
    np.savez(data, x_meta=rng.normal(size=(len(x), 3)).astype(np.float32), x_img=x, y=y)   # meta first on purpose
    keras.utils.set_random_seed(0)
    img, meta = keras.Input((8, 8, 1), name="img"), keras.Input((3,), name="meta")
    h = keras.layers.Concatenate()([keras.layers.Flatten()(keras.layers.Rescaling(1 / 16.0)(img)), meta])
    h = keras.layers.Dense(32, activation="relu")(h)
    model = keras.Model([img, meta], keras.layers.Dense(10, activation="softmax")(h))
    result = train(TrainConfig(out=str(tmp_path / "out"), data=str(data), model=model, epochs=3, verbose=0,
                               learning_rate=1e-2))           # 1e-3 reaches ~0.78 in 3 epochs
    acc = result.report["accuracy"]
    assert acc["keras_float"] > 0.85 and acc["edgeml_int8"] >= acc["keras_float"] - 0.02, acc
    assert result.report["agreement"]["edgeml_int8_vs_litert_reference_int8"]["bit_exact"] == 1.0
    assert result.model.input_names == ["img", "meta"]
    assert model.optimizer is None                       # the caller's object was copied, not trained


def _model(inputs, units, activation="softmax"):
    keras.utils.set_random_seed(0)
    x = keras.Input(inputs, name="pixels")
    return keras.Model(x, keras.layers.Dense(units, activation=activation, name="head")(keras.layers.Flatten()(x)))


@pytest.mark.parametrize("model, data, fragment", [
    (lambda: _model((10,), 10), "digits", "input 'pixels' takes samples of shape (10,) but the data's are (8, 8, 1)"),
    (lambda: _model((8, 8, 1), 3), "digits", "output 'head' has 3 units but the labels have 10 classes"),
    (lambda: _model((8, 8, 1), 10), "regression", "'head' is a softmax (classification) but the labels are real"),
    (lambda: _model((8, 8, 1), 10, "relu"), "digits", "ends in relu"),
    (lambda: _two_inputs(), "digits", "takes 2 inputs (a, b) but the data holds 1 array"),
])
def test_mismatches_are_one_line_errors_before_training(tmp_path, model, data, fragment):
    if data == "regression":
        x, _ = _regression_data(100)
        data = (np.repeat(x[:, :1], 64, axis=1).reshape(-1, 8, 8, 1), np.linspace(0.1, 9.9, 100).astype(np.float32))
    with pytest.raises(EdgeMLError) as info:
        train(TrainConfig(out=str(tmp_path / "o"), data=data, model=model(), epochs=1, verbose=0))
    assert isinstance(info.value, DataError) and fragment in str(info.value)
    assert "\n" not in str(info.value) and not (tmp_path / "o").exists()


def _two_inputs():
    a, b = keras.Input((8, 8, 1), name="a"), keras.Input((2,), name="b")
    return keras.Model([a, b], keras.layers.Dense(10)(keras.layers.Concatenate()([keras.layers.Flatten()(a), b])))


def test_float_token_input_is_rebuilt_as_int32():
    from edgeml.train.checks import token_inputs_as_int32
    from edgeml.train.data import load_dataset
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Embedding(300, 8),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2, activation="softmax")])
    tokens = np.random.default_rng(0).integers(0, 300, (40, 20))
    ds = load_dataset((tokens, np.arange(40) % 2))
    notes = []
    rebuilt = token_inputs_as_int32(model, ds, notes)
    assert rebuilt.inputs[0].dtype == tf.int32 and "int32" in notes[0]
    np.testing.assert_allclose(rebuilt(tokens[:4].astype(np.int32)).numpy(), model(tokens[:4]).numpy(), atol=1e-6)
