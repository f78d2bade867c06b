"""edgeml.optimize (pruning, QAT, clustering, TFLite conversion) and edgeml.optimize.export_onnx on tiny tf_keras models."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("tensorflow_model_optimization")
pytest.importorskip("tf2onnx")
pytest.importorskip("ai_edge_litert")

from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

from edgeml.errors import TrainingError  # noqa: E402
from edgeml.train import keras_env  # noqa: E402

tf, keras = keras_env()

from edgeml.optimize.export_onnx import keras_to_onnx, tflite_to_onnx  # noqa: E402
from edgeml.optimize.cluster import cluster_model, strip_clustering  # noqa: E402
from edgeml.optimize.convert import float_ops, to_tflite  # noqa: E402
from edgeml.optimize.prune import layer_sparsity, prune_model, strip_pruning  # noqa: E402
from edgeml.optimize.qat import quantize_aware  # noqa: E402

# per-gate matmuls (implementation=1) of the unrolled cell: no SPLIT, no WHILE, no float
UNROLLED_OPS = {
    "gru": {"RESHAPE", "UNPACK", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "LOGISTIC", "TANH"},
    "simple_rnn": {"RESHAPE", "UNPACK", "FULLY_CONNECTED", "ADD", "TANH"},
}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    data = load_digits()
    x = (data.images[..., None] / 16.0).astype(np.float32)
    return x, data.target.astype(np.int64)


def small_cnn(name=None):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, activation="relu", name="conv"),
        keras.layers.MaxPooling2D(name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(32, activation="relu", name="fc"),
        keras.layers.Dense(10, name="logits"),
    ], name=name)


def compile_for_digits(model):
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def recurrent_model(layer_cls, **kwargs):
    """Batch-1 RNN, freshly initialised: its zero recurrent bias is what once left float SPLITs in the int8 GRU."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6, 3), batch_size=1), layer_cls(8, **kwargs), keras.layers.Dense(4)])


def litert(path):
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    return interpreter


def op_names(interpreter) -> set:
    return {op["op_name"] for op in interpreter._get_ops_details()}


def run_int8(interpreter, x_int8):
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.reset_all_variables()      # a fused LSTM keeps its state across invokes; each sample starts fresh
    interpreter.set_tensor(inp["index"], x_int8)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])


def quantize_input(interpreter, x):
    inp = interpreter.get_input_details()[0]
    scale, zero = inp["quantization"]
    return np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """int8 conversions of the RNN and CNN models: the CNN in this process first, then the RNNs two at a time
    (each a TensorFlow child process of 5-15 s; in-process conversions are not for concurrent threads)."""
    out = tmp_path_factory.mktemp("converted")
    rng = np.random.default_rng(0)
    seq = rng.uniform(-1, 1, (64, 6, 3)).astype(np.float32)
    cnn = small_cnn()
    cnn(np.zeros((1, 8, 8, 1), np.float32))
    jobs = {
        "gru": (recurrent_model(keras.layers.GRU), seq),
        "simple_rnn": (recurrent_model(keras.layers.SimpleRNN), seq),
        "lstm": (recurrent_model(keras.layers.LSTM), seq),
        "cnn": (cnn, rng.uniform(0, 1, (64, 8, 8, 1)).astype(np.float32)),
    }
    results = {"cnn": to_tflite(jobs["cnn"][0], out / "cnn.tflite", int8=True, representative_x=jobs["cnn"][1])}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(to_tflite, model, out / f"{name}.tflite", int8=True, representative_x=rep)
                   for name, (model, rep) in jobs.items() if name != "cnn"}
        results.update({name: future.result() for name, future in futures.items()})
    for name, (model, rep) in jobs.items():
        results[name]["keras_model"], results[name]["representative_x"] = model, rep
    return results


# ------------------------------------------------------------------------------------------------- pruning

def test_pruning_reaches_target_sparsity_in_pruned_layers_after_strip(digits):
    x, y = digits
    batch, epochs = 128, 2
    steps = epochs * int(np.ceil(len(x) / batch))
    pruned, callbacks = prune_model(small_cnn(), 0.75, steps=steps)
    compile_for_digits(pruned).fit(x, y, batch_size=batch, epochs=epochs, callbacks=callbacks, verbose=0)
    stripped = strip_pruning(pruned)
    assert not any(type(layer).__name__ == "PruneLowMagnitude" for layer in stripped.layers)
    sparsity = layer_sparsity(stripped)
    assert set(sparsity) == {"conv", "fc", "logits"}
    for name, fraction in sparsity.items():
        assert fraction == pytest.approx(0.75, abs=0.02), name


def test_pruning_refuses_bad_schedules_and_unprunable_layers():
    with pytest.raises(TrainingError, match="target sparsity"):
        prune_model(small_cnn(), 1.0, steps=10)
    with pytest.raises(TrainingError, match="steps > begin_step"):
        prune_model(small_cnn(), 0.5, steps=5, begin_step=5)
    bidirectional = keras.Sequential([keras.Input((4, 2)), keras.layers.Bidirectional(keras.layers.LSTM(3),
                                                                              name="bidirectional"),
                                      keras.layers.Dense(2)])
    with pytest.raises(TrainingError, match="Cannot prune layer 'bidirectional'.*Bidirectional"):
        prune_model(bidirectional, 0.5, steps=10)


# ------------------------------------------------------------------------------------------------- QAT

def test_qat_model_trains_converts_to_int8_and_runs_in_litert(digits, tmp_path):
    x, y = digits
    qat = quantize_aware(small_cnn())
    assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in qat.layers)
    history = compile_for_digits(qat).fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    result = to_tflite(qat, tmp_path / "qat.tflite", int8=True, representative_x=x)
    assert result["route"] == "direct" and result["bytes"] == (tmp_path / "qat.tflite").stat().st_size
    interpreter = litert(result["path"])
    inp = interpreter.get_input_details()[0]
    assert list(inp["shape"]) == [1, 8, 8, 1] and inp["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert op_names(interpreter) == {"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED"}
    keras_pred = qat.predict(x[:100], verbose=0).argmax(1)
    litert_pred = np.array([run_int8(interpreter, quantize_input(interpreter, x[i:i + 1])).argmax()
                            for i in range(100)])
    assert np.mean(litert_pred == keras_pred) >= 0.9


def test_qat_leaves_rescaling_float_and_quantizes_the_rest():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Rescaling(1 / 16.0),
                              keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(10)])
    kinds = [type(layer).__name__ for layer in quantize_aware(model).layers]
    assert kinds == ["Rescaling", "QuantizeWrapperV2", "QuantizeWrapperV2", "QuantizeWrapperV2"]


@pytest.mark.parametrize("layer, message", [
    (keras.layers.GRU(4), r"'gru\w*' \(GRU\).*recurrent layers"),
    (keras.layers.Conv1D(4, 3), r"'conv1d\w*' \(Conv1D\).*Conv1D disabled"),
    (keras.layers.BatchNormalization(), r"'batch_normalization\w*' \(BatchNormalization\).*directly follows"),
])
def test_qat_names_the_layer_it_cannot_take_and_why(layer, message):
    model = keras.Sequential([keras.Input((6, 3)), layer, keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(TrainingError, match="Cannot train layer " + message):
        quantize_aware(model)


# ------------------------------------------------------------------------------------------------- clustering

def test_clustering_keeps_at_most_8_values_per_kernel_and_converts(digits, tmp_path):
    x, y = digits
    trained = compile_for_digits(small_cnn())
    trained.fit(x, y, batch_size=128, epochs=1, verbose=0)
    clustered = cluster_model(trained, 8)
    compile_for_digits(clustered).fit(x, y, batch_size=128, epochs=1, verbose=0)
    stripped = strip_clustering(clustered)
    kernels = {layer.name: layer.kernel.numpy() for layer in stripped.layers if hasattr(layer, "kernel")}
    assert set(kernels) == {"conv", "fc", "logits"}
    for name, kernel in kernels.items():
        assert len(np.unique(kernel)) <= 8, name
    result = to_tflite(clustered, tmp_path / "clustered.tflite", int8=True, representative_x=x)
    assert any("strip_clustering" in note for note in result["notes"])
    interpreter = litert(result["path"])
    assert op_names(interpreter) == {"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED"}
    fc_weights = [interpreter.get_tensor(op["inputs"][1]) for op in interpreter._get_ops_details()
                  if op["op_name"] == "FULLY_CONNECTED"]
    assert len(fc_weights) == 2
    for weights in fc_weights:  # per-channel int8 quantization keeps the 8 centroids apart within each row
        assert max(len(np.unique(row)) for row in weights) <= 8


def test_cluster_of_keras3_model_or_none_is_a_training_error():
    import keras as keras3
    if keras3.__version__.startswith("2."):
        pytest.skip("the installed 'keras' package is Keras 2")
    model3 = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(TrainingError, match="Keras 3 model"):
        cluster_model(model3, 8)
    with pytest.raises(TrainingError, match="got no model"):
        cluster_model(None, 8)
    with pytest.raises(TrainingError, match="clusters >= 2"):
        cluster_model(small_cnn(), 1)


# ------------------------------------------------------------------------------------------------- RNN int8

@pytest.mark.parametrize("name", ["gru", "simple_rnn"])
def test_gru_and_simple_rnn_int8_survive_the_segfault_by_unrolling(converted, name):
    result = converted[name]
    assert result["route"] == "unrolled"
    assert any("SIGSEGV" in note and "unroll=True" in note for note in result["notes"]), result["notes"]
    interpreter = litert(result["path"])
    ops = op_names(interpreter)
    assert ops == UNROLLED_OPS[name]
    assert float_ops(result["path"]) == []
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 6, 3]
    assert_tracks_keras(interpreter, result["keras_model"], result["representative_x"][:8], max_lsb=8)


def assert_tracks_keras(interpreter, model, xs, max_lsb):
    """The int8 model's dequantized output stays within max_lsb output steps (of 256) of the float Keras model."""
    scale, zero = interpreter.get_output_details()[0]["quantization"]
    for x in xs:
        out = run_int8(interpreter, quantize_input(interpreter, x[None]))
        assert out.shape == (1, 4) and out.dtype == np.int8
        got = (out.astype(np.float32) - zero) * scale
        assert np.abs(got - model(x[None]).numpy()).max() <= max_lsb * scale


def test_lstm_int8_converts_directly_to_the_fused_op(converted):
    result = converted["lstm"]
    assert result["route"] == "direct" and result["notes"] == []
    interpreter = litert(result["path"])
    assert op_names(interpreter) == {"UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "FULLY_CONNECTED"}
    assert_tracks_keras(interpreter, result["keras_model"], result["representative_x"][:8], max_lsb=32)  # fused int8 LSTM: ~20 LSB seen; float route exact
    import edgeml
    ours = edgeml.Interpreter(str(result["path"]))
    for x in result["representative_x"][:8]:
        xq = quantize_input(interpreter, x[None])
        ours.reset_variables()
        ours.set_input(xq)
        ours.invoke()
        np.testing.assert_array_equal(ours.get_output(), run_int8(interpreter, xq))


def test_to_tflite_int8_without_representative_data_is_a_training_error(tmp_path):
    with pytest.raises(TrainingError, match="needs representative_x"):
        to_tflite(small_cnn(), tmp_path / "x.tflite", int8=True)
    assert not (tmp_path / "x.tflite").exists()


# ------------------------------------------------------------------------------------------------- ONNX

def test_int8_cnn_onnx_matches_litert_within_one_lsb(converted, tmp_path):
    import onnxruntime as ort
    result = tflite_to_onnx(converted["cnn"]["path"], tmp_path / "cnn.onnx")
    assert result["ops"]["QuantizeLinear"] > 0 and result["ops"]["DequantizeLinear"] > 0
    interpreter = litert(converted["cnn"]["path"])
    session = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(int8)"
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.integers(-128, 128, (1, 8, 8, 1), dtype=np.int8)
        expected = run_int8(interpreter, x)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        assert got.dtype == np.int8
        assert np.abs(got.astype(np.int32) - expected.astype(np.int32)).max() <= 1


def test_fused_int8_lstm_to_onnx_is_a_training_error_that_says_why(converted, tmp_path):
    with pytest.raises(TrainingError, match="quantized UNIDIRECTIONAL_SEQUENCE_LSTM and tf2onnx cannot"):
        tflite_to_onnx(converted["lstm"]["path"], tmp_path / "lstm.onnx")


def test_keras_to_onnx_float_matches_keras(digits, tmp_path):
    import onnxruntime as ort
    x, _ = digits
    model = small_cnn()
    result = keras_to_onnx(model, tmp_path / "cnn_float.onnx")
    assert result["ops"].get("Conv") == 1 and "QuantizeLinear" not in result["ops"]
    session = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x[:16]})[0]
    np.testing.assert_allclose(got, model(x[:16]).numpy(), atol=1e-5)
