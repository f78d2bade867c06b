"""edgeml.train.zoo: every model builds for digits (8, 8, 1) and a 1-D feature vector, normalizes raw input inside,
trains a step, converts to full-int8 TFLite at batch 1 (not GRU / SimpleRNN: their int8 calibration segfaults
in-process, see TOOLCHAIN.md); the transformer also on int32 token ids; user models load from .h5 / SavedModel /
.keras (tf_keras, and Keras 3 through the rebuild).  Under -m slow: every zoo model reaches its stated accuracy on
digits with its default epochs (ZOO_DIGITS_ACCURACY)."""
import json
import zipfile

import numpy as np
import pytest

from edgeml.errors import TrainingError

pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")

from edgeml.train import keras_env, zoo  # noqa: E402
from edgeml.train.data import load_dataset  # noqa: E402
from edgeml.train.user_model import load_user_model  # noqa: E402

SHAPES = {"digits": (8, 8, 1), "features": (20,)}
CONVERTIBLE = [n for n in zoo.MODEL_NAMES if n not in ("gru", "rnn")]


@pytest.fixture(scope="module")
def tfk():
    return keras_env()


@pytest.fixture(scope="module")
def data():
    ds = load_dataset("digits")
    rng = np.random.default_rng(0)
    feats = (rng.normal(size=(64, 20)) * 50 + 100).astype(np.float32)
    return {"digits": ds.x_train[:128], "features": feats}


def _int8(tf, model, x):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i:i + 1]] for i in range(min(len(x), 16)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


@pytest.mark.parametrize("kind", list(SHAPES))
@pytest.mark.parametrize("name", zoo.MODEL_NAMES)
def test_builds_with_right_output(tfk, data, name, kind):
    tf, keras = tfk
    shape, x = SHAPES[kind], data[kind]
    model = zoo.build_model(name, shape, 10, x_train=x)
    assert isinstance(model, keras.Model) and model.input_shape == (None,) + shape
    assert model.optimizer is None                                     # returned uncompiled
    out = model(x[:3], training=False).numpy()
    if name == "autoencoder":
        assert zoo.MODEL_TASKS[name] == model._edgeml_task == "reconstruction"
        assert out.shape == (3, int(np.prod(shape)))
        target = model._edgeml_normalize(x[:3])
        assert target.shape == out.shape
    else:
        assert zoo.MODEL_TASKS[name] == model._edgeml_task == "classification"
        assert out.shape == (3, 10)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    # raw input is normalized inside: per channel / feature mean ~0 and std ~1 after the first layer
    norm = keras.Model(model.input, model.get_layer("normalize").output)(x).numpy()
    flat = norm.reshape(-1, shape[-1])
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(flat.std(axis=0), 1.0, atol=1e-3)
    # one training step moves the weights and keeps the loss finite
    before = [w.copy() for w in model.get_weights()]
    if name == "autoencoder":
        y, loss = zoo.normalized_target(model, x), "mse"
    else:
        y, loss = np.arange(len(x)) % 10, "sparse_categorical_crossentropy"
    model.compile(keras.optimizers.Adam(1e-3), loss)
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_transformer_embeds_int32_token_ids_and_converts_them_as_int32(tfk):
    tf, keras = tfk
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, (32, 12)).astype(np.int32)
    model = zoo.build_model("transformer", (12,), 4, vocab_size=50, batch_size=1)
    assert model.inputs[0].dtype == tf.int32 and "normalize" not in [layer.name for layer in model.layers]
    assert {"Embedding", "MultiHeadAttention", "LayerNormalization", "PositionEmbedding"} <= {
        type(layer).__name__ for layer in model.layers}
    interp = tf.lite.Interpreter(model_content=_int8(tf, model, tokens))
    interp.allocate_tensors()
    assert interp.get_input_details()[0]["dtype"] == np.int32
    assert interp.get_output_details()[0]["dtype"] == np.int8
    ops = {d["op_name"] for d in interp._get_ops_details()}
    assert {"GATHER", "BATCH_MATMUL", "SOFTMAX"} <= ops, ops


def test_regression_head_is_a_linear_dense(tfk, data):
    model = zoo.build_model("cnn", (8, 8, 1), 3, x_train=data["digits"], task="regression")
    assert model.output_shape == (None, 3) and model.layers[-1].get_config()["activation"] == "linear"


def test_batchnorm_momentum_follows_the_steps_per_epoch(tfk, data):
    assert zoo.batchnorm_momentum(40) == 0.9            # digits at batch 32
    assert zoo.batchnorm_momentum(2) == 0.5             # a 90-image folder
    assert zoo.batchnorm_momentum(10_000) == 0.99       # Keras's default for long epochs
    model = zoo.build_model("ds_cnn", (8, 8, 1), 10, x_train=data["digits"], bn_momentum=0.9)
    bns = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert bns and all(layer.momentum == 0.9 for layer in bns)


# digits for every convertible model; the 1-D feature shape for mlp and lstm by default, the rest under -m slow
# (each conversion costs 2-12 s, mobilenet_v1 the most)
CONVERT_CASES = [(n, "digits") if n != "transformer" else pytest.param(n, "digits", marks=pytest.mark.slow)
                 for n in CONVERTIBLE] + [
    (n, "features") if n in ("mlp", "lstm") else pytest.param(n, "features", marks=pytest.mark.slow)
    for n in CONVERTIBLE]


@pytest.mark.parametrize("name,kind", CONVERT_CASES)
def test_converts_to_int8_tflite_at_batch_1(tfk, data, name, kind):
    tf, keras = tfk
    shape, x = SHAPES[kind], data[kind]
    model = zoo.build_model(name, shape, 10, x_train=x, batch_size=1)
    assert model.input_shape == (1,) + shape
    flat = _int8(tf, model, x)
    interp = tf.lite.Interpreter(model_content=flat)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert tuple(inp["shape"]) == (1,) + shape and inp["dtype"] == np.int8
    want = int(np.prod(shape)) if name == "autoencoder" else 10
    assert tuple(out["shape"]) == (1, want) and out["dtype"] == np.int8
    if name == "lstm":
        ops = {d["op_name"] for d in interp._get_ops_details()}
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops, ops


def test_batch1_twin_takes_trained_weights(tfk, data):
    x = data["digits"]
    model = zoo.build_model("gru", (8, 8, 1), 10, x_train=x)
    twin = zoo.build_model("gru", (8, 8, 1), 10, x_train=x, batch_size=1, unroll=True)
    twin.set_weights(model.get_weights())
    np.testing.assert_allclose(twin.predict(x[:1], verbose=0), model.predict(x[:1], verbose=0), atol=1e-5)


def test_seed_determinism(tfk, data):
    a = zoo.build_model("cnn", (8, 8, 1), 10, x_train=data["digits"], seed=5)
    b = zoo.build_model("cnn", (8, 8, 1), 10, x_train=data["digits"], seed=5)
    c = zoo.build_model("cnn", (8, 8, 1), 10, x_train=data["digits"], seed=6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


def test_small_inputs_never_reach_zero(tfk):
    for shape in ((1, 1, 1), (3,)):
        for name in zoo.MODEL_NAMES:
            model = zoo.build_model(name, shape, 3)
            for layer in model.layers:
                dims = layer.output_shape[1:] if isinstance(layer.output_shape, tuple) else ()
                assert all(d is None or d > 0 for d in dims), (name, shape, layer.name, dims)


def test_normalized_target_survives_attribute_loss(tfk, data):
    x = data["features"]
    model = zoo.build_model("autoencoder", (20,), 2, x_train=x)
    want = model._edgeml_normalize(x[:4])
    del model._edgeml_normalize
    np.testing.assert_allclose(zoo.normalized_target(model, x[:4]), want, rtol=1e-5, atol=1e-5)


def test_bad_arguments(tfk):
    with pytest.raises(TrainingError, match="unknown model 'vgg'.*mlp, cnn"):
        zoo.build_model("vgg", (8, 8, 1), 10)
    with pytest.raises(TrainingError, match="rank 1 to 3"):
        zoo.build_model("cnn", (2, 2, 2, 2), 10)
    with pytest.raises(TrainingError, match="num_classes"):
        zoo.build_model("mlp", (4,), 1)
    with pytest.raises(TrainingError, match="does not fit"):
        zoo.build_model("mlp", (4,), 3, x_train=np.zeros((5, 6), np.float32))
    with pytest.raises(TrainingError, match="input_shape"):
        zoo.build_model("mlp", (0, 4), 3)


# ---- user models -------------------------------------------------------------------------------------------


def _tiny(keras):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])


@pytest.mark.parametrize("fmt", ["h5", "savedmodel", "keras"])
def test_load_user_model_roundtrip(tfk, tmp_path, fmt):
    tf, keras = tfk
    model = _tiny(keras)
    path = str(tmp_path / {"h5": "m.h5", "savedmodel": "sm", "keras": "m.keras"}[fmt])
    model.save(path) if fmt != "savedmodel" else model.save(path, save_format="tf")
    loaded = load_user_model(path)
    assert isinstance(loaded, keras.Model)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras3_files_load_as_tf_keras_with_the_same_outputs(tfk, tmp_path, suffix):
    keras3 = pytest.importorskip("keras")
    if not keras3.__version__.startswith("3"):
        pytest.skip("Keras 3 not installed")
    tf, keras = tfk
    keras3.utils.set_random_seed(0)
    m = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(5, activation="relu"), keras3.layers.Dense(2)])
    path = str(tmp_path / f"k3{suffix}")
    m.save(path)
    loaded = load_user_model(path)
    assert isinstance(loaded, keras.Model)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), np.asarray(m(x)), atol=1e-6)


def test_keras3_export_folder_is_refused(tmp_path):
    d = tmp_path / "exported"
    d.mkdir()
    (d / "saved_model.pb").write_bytes(b"")
    with pytest.raises(TrainingError, match="no keras_metadata.pb"):
        load_user_model(str(d))


def test_load_user_model_errors(tmp_path):
    with pytest.raises(TrainingError, match="does not exist"):
        load_user_model(str(tmp_path / "missing.h5"))
    p = tmp_path / "m.onnx"
    p.write_bytes(b"x")
    with pytest.raises(TrainingError, match="use a .keras or .h5 file"):
        load_user_model(str(p))
    with pytest.raises(TrainingError, match="not a SavedModel"):
        load_user_model(str(tmp_path))
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "2.21.0"}))
    with pytest.raises(TrainingError, match="could not load"):
        load_user_model(str(bad))


# ---- stated accuracies (slow: every zoo model trained with its defaults, 1-5 minutes each) -----------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(zoo.ZOO_DIGITS_ACCURACY))
def test_every_zoo_model_reaches_its_stated_accuracy_on_digits(tmp_path, name):
    from edgeml.train.pipeline import TrainConfig, train
    result = train(TrainConfig(out=str(tmp_path / name), model=name, verbose=0))
    r = result.report
    assert result.ok, r["failures"]
    if name == "autoencoder":
        # reconstruction of the normalized digits (variance 0.505): an MSE bound instead of an accuracy
        assert r["reconstruction_mse"]["keras_float"] <= zoo.ZOO_DIGITS_ACCURACY[name], r["reconstruction_mse"]
        return
    for runtime in ("keras_float", "edgeml_float", "edgeml_int8", "litert_int8"):
        assert r["accuracy"][runtime] >= zoo.ZOO_DIGITS_ACCURACY[name], (runtime, r["accuracy"])
