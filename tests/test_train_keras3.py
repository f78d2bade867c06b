"""Keras 3 models (what `import keras` gives) through edgeml: rebuilt in tf_keras layer by layer with the same
outputs, trained and exported by `edgeml train` (a .keras CNN, a .keras LSTM); what cannot be rebuilt is named."""
import json
import os

import numpy as np
import pytest

from edgeml.errors import TrainingError

pytest.importorskip("tensorflow_model_optimization")
keras3 = pytest.importorskip("keras")
if not keras3.__version__.startswith("3"):
    pytest.skip("the installed 'keras' package is not Keras 3", allow_module_level=True)

from edgeml.train import keras_env  # noqa: E402
from edgeml.train.keras3 import to_tf_keras  # noqa: E402
from edgeml.train.pipeline import TrainConfig, train  # noqa: E402

tf, k2 = keras_env()


def _same_outputs(m3, m2, xs):
    want = m3(xs if len(xs) > 1 else xs[0])
    got = m2(xs if len(xs) > 1 else xs[0])
    want, got = (list(v) if isinstance(v, (list, tuple)) else [v] for v in (want, got))
    for w, g in zip(want, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-5)


def test_functional_graph_with_two_inputs_two_outputs_attention_and_recurrence():
    keras3.utils.set_random_seed(0)
    img, meta = keras3.Input((8, 8, 1), name="img"), keras3.Input((4,), name="meta")
    x = keras3.layers.Conv2D(4, 3, kernel_regularizer=keras3.regularizers.L2(0.01))(img)
    x = keras3.layers.BatchNormalization()(x)
    x = keras3.layers.LeakyReLU(negative_slope=0.1)(x)
    h = keras3.layers.Concatenate()([keras3.layers.Flatten()(x), meta])
    seq = keras3.layers.Reshape((4, 37))(keras3.layers.Dense(148)(h))
    att = keras3.layers.MultiHeadAttention(2, 8)(seq, seq)
    seq = keras3.layers.LayerNormalization()(keras3.layers.Add()([seq, att]))
    seq = keras3.layers.Bidirectional(keras3.layers.GRU(5, return_sequences=True))(seq)
    seq = keras3.layers.LSTM(6)(seq)
    cls = keras3.layers.Dense(3, activation="softmax", name="cls")(seq)
    m3 = keras3.Model([img, meta], [cls, keras3.layers.Dense(1, name="reg")(h)])
    m2 = to_tf_keras(m3)
    assert isinstance(m2, k2.Model) and m2.input_names == ["img", "meta"] and m2.output_names == ["cls", "reg"]
    conv = m2.get_layer("conv2d") if "conv2d" in [layer.name for layer in m2.layers] else m2.layers[1]
    assert conv.kernel_regularizer is not None and conv.kernel_regularizer.l2 == pytest.approx(0.01)
    rng = np.random.default_rng(1)
    _same_outputs(m3, m2, [rng.normal(size=(5, 8, 8, 1)).astype("float32"), rng.normal(size=(5, 4)).astype("float32")])


def test_nested_sequential_embedding_and_adapted_normalization():
    keras3.utils.set_random_seed(0)
    tokens = keras3.Input((12,), dtype="int32")
    inner = keras3.Sequential([keras3.layers.Dense(4, activation="relu"), keras3.layers.Dense(4)], name="inner")
    out = keras3.layers.Dense(2, activation="softmax")(
        keras3.layers.GlobalAveragePooling1D()(inner(keras3.layers.Embedding(50, 8)(tokens))))
    m2 = to_tf_keras(keras3.Model(tokens, out))
    assert m2.inputs[0].dtype == tf.int32
    norm = keras3.layers.Normalization()
    norm.adapt(np.random.default_rng(0).uniform(0, 9, (100, 5)).astype("float32"))
    m3 = keras3.Sequential([keras3.Input((5,)), norm, keras3.layers.Dense(2)])
    _same_outputs(m3, to_tf_keras(m3), [np.full((2, 5), 4.0, np.float32)])


@pytest.mark.parametrize("layer, fragment", [
    (lambda: keras3.layers.Lambda(lambda z: z * 2, name="doubling"), "'doubling' (Lambda) is not a layer"),
    (lambda: keras3.layers.Dense(2, lora_rank=2, name="adapted"), "'adapted' (Dense) sets lora_rank=2"),
])
def test_what_cannot_be_rebuilt_is_named(layer, fragment):
    m3 = keras3.Sequential([keras3.Input((5,)), layer(), keras3.layers.Dense(2)])
    with pytest.raises(TrainingError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        to_tf_keras(m3)


def test_a_rebuild_that_computes_something_else_is_refused(monkeypatch):
    from edgeml.train import keras3 as K
    m3 = keras3.Sequential([keras3.Input((5,)), keras3.layers.Dense(3, name="first"), keras3.layers.Dense(2)])
    monkeypatch.setattr(K, "_copy_weights", lambda src, dst: None)        # keep the rebuild's own random weights
    with pytest.raises(TrainingError, match="differs from it.*first at layer 'first' \\(Dense\\)"):
        to_tf_keras(m3)


def _run(tmp_path, name, model, **kw):
    out = tmp_path / name
    result = train(TrainConfig(out=str(out), model=model, verbose=0, allow_degraded=True, **kw))
    with open(out / "report.json") as f:
        assert json.load(f)["status"] == result.report["status"]
    return result


def test_keras3_cnn_file_trains_and_exports_through_edgeml(tmp_path):
    keras3.utils.set_random_seed(0)
    m3 = keras3.Sequential([keras3.Input((8, 8, 1)), keras3.layers.Rescaling(1 / 16.0),
                            keras3.layers.Conv2D(8, 3, activation="relu"), keras3.layers.MaxPooling2D(),
                            keras3.layers.Flatten(), keras3.layers.Dense(10, activation="softmax")])
    path = tmp_path / "cnn.keras"
    m3.save(path)
    r = _run(tmp_path, "k3cnn", str(path), epochs=3, learning_rate=1e-2)   # 1e-3: ~0.5 after 3 epochs
    acc = r.report["accuracy"]
    assert r.ok, r.failures
    assert acc["keras_float"] > 0.85 and acc["edgeml_int8"] >= acc["keras_float"] - 0.02, acc
    assert r.report["agreement"]["edgeml_int8_vs_litert_reference_int8"]["bit_exact"] == 1.0
    assert isinstance(r.model, k2.Model) and os.path.isfile(r.paths["model_int8.tflite"])


def test_keras3_lstm_file_trains_exports_and_counts_the_recurrent_macs(tmp_path):
    keras3.utils.set_random_seed(0)
    m3 = keras3.Sequential([keras3.Input((8, 8)), keras3.layers.Rescaling(1 / 16.0), keras3.layers.LSTM(16),
                            keras3.layers.Dense(10, activation="softmax")])
    path = tmp_path / "lstm.keras"
    m3.save(path)
    r = _run(tmp_path, "k3lstm", str(path), epochs=2)
    report = r.report
    assert report["accuracy"]["edgeml_int8"] is not None, report["why"]
    assert report["tflite_conversion"]["int8"] == "direct"          # the fused UNIDIRECTIONAL_SEQUENCE_LSTM
    assert report["agreement"]["edgeml_int8_vs_litert_reference_int8"]["bit_exact"] == 1.0
    assert any("reshaped to the model's (8, 8)" in n for n in report["notes"])
    # 8 steps x 4 gates x 16 units x (8 inputs + 16 state) for the fused LSTM, plus the 16 x 10 classifier
    assert report["macs"] == 8 * 4 * 16 * (8 + 16) + 16 * 10
    # the fused int8 LSTM has no tf2onnx route: no model_int8.onnx, and nothing claims one
    assert "model_int8.onnx" not in report["written"] and not (tmp_path / "k3lstm" / "model_int8.onnx").exists()
    assert any(n.startswith("no model_int8.onnx") for n in report["notes"])
