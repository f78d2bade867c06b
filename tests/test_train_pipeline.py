"""`edgeml train` end to end: exports, report contents, the returned result, RNN export, user models, bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edgeml.errors import DataError, TrainingError

pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_model_optimization")

from edgeml.train.pipeline import TrainConfig, train  # noqa: E402

EXPORTS = ["model_float.h5", "model_float.tflite", "model_int8.tflite", "model_int8.onnx", "labels.txt",
           "report.json", "report.md", "history.png", "history.csv"]


def run(tmp_path, name, **kw):
    out = str(tmp_path / name)
    kw.setdefault("epochs", 1)
    kw.setdefault("allow_degraded", True)
    result = train(TrainConfig(out=out, verbose=0, **kw))
    with open(os.path.join(out, "report.json")) as f:
        assert json.load(f) == json.loads(json.dumps(result.report))
    return out, result.report


def test_mlp_exports_every_file_and_a_complete_report(tmp_path, capsys):
    out = str(tmp_path / "mlp")
    result = train(TrainConfig(out=out, model="mlp", epochs=3, verbose=0))
    r = result.report
    assert capsys.readouterr().out == ""                     # verbose=0 prints nothing
    assert result.ok and r["status"] == "ok" and r["failures"] == []
    for name in EXPORTS:
        assert os.path.getsize(os.path.join(out, name)) > 0, name
        assert result.paths[name] == os.path.join(os.path.abspath(out), name)
    assert sorted(r["written"]) == sorted(n for n in os.listdir(out) if not n.startswith("."))
    assert os.path.isdir(os.path.join(out, "logs"))
    assert not os.path.exists(os.path.join(out, "checkpoints"))
    for key in ("keras_float", "litert_float", "edgeml_float", "litert_int8", "onnxruntime_int8", "edgeml_int8"):
        assert 0.5 < r["accuracy"][key] <= 1.0, (key, r["accuracy"])
    assert r["agreement"]["edgeml_int8_vs_litert_reference_int8"] == {
        "top1": 1.0, "max_abs_diff": 0.0, "bit_exact": 1.0, "max_lsb": 0}
    assert r["agreement"]["edgeml_int8_vs_litert_int8"]["top1"] >= 0.99
    assert r["agreement"]["edgeml_float_vs_litert_float"]["max_abs_diff"] < 1e-4
    assert r["files"]["model_int8.tflite"] == os.path.getsize(os.path.join(out, "model_int8.tflite"))
    assert r["params"] == result.model.count_params() > 0 and r["macs"] > 0
    assert r["latency_edgeml_int8"]["median_us"] > 0 and r["stage_seconds"]["convert"] > 0
    assert set(r["sparsity"]) and all(0.0 <= v <= 1.0 for v in r["sparsity"].values())
    assert open(os.path.join(out, "labels.txt")).read().split() == [str(d) for d in range(10)]
    md = open(os.path.join(out, "report.md")).read()
    assert "| edgeml_int8 |" in md and "XNNPACK kernels round some int8 ops differently" in md
    np.testing.assert_allclose(result.model.predict(np.zeros((1, 8, 8, 1)), verbose=0).sum(), 1.0, rtol=1e-5)


def test_gru_exports_int8_without_a_crash_and_runs_on_edgeml(tmp_path):
    out, r = run(tmp_path, "gru", model="gru")
    assert r["tflite_conversion"]["int8"] == "unrolled"
    _check_onnx_recurrent_route(out, r)
    assert any("unroll" in n for n in r["notes"]), r["notes"]
    assert r["accuracy"]["edgeml_int8"] is not None, r["why"]
    assert r["agreement"]["edgeml_int8_vs_litert_reference_int8"]["bit_exact"] == 1.0


def _check_onnx_recurrent_route(out, r):
    """The int8 recurrent ONNX route: within 1 point of the float model (issue 7)."""
    acc = r["accuracy"]
    assert acc["edgeml_onnx_int8"] is not None, r["why"]
    assert abs(acc["onnxruntime_onnx_float"] - acc["keras_float"]) <= 0.005, acc
    assert abs(acc["edgeml_onnx_int8"] - acc["keras_float"]) <= 0.01, acc
    assert r["agreement"]["edgeml_onnx_int8_vs_onnxruntime_onnx_float"]["top1"] >= 0.97
    assert os.path.getsize(os.path.join(out, "model_int8_recurrent.onnx")) > 0


def test_simple_rnn_exports_the_int8_onnx_route(tmp_path):
    out, r = run(tmp_path, "rnn", model="rnn", epochs=2)
    assert r["tflite_conversion"]["int8"] == "unrolled"
    _check_onnx_recurrent_route(out, r)


def test_user_gru_without_reset_after_gets_the_int8_onnx_columns(tmp_path):
    """A user's GRU(reset_after=False) model file (tf2onnx alone lowers the layer to a Loop) through the pipeline's
    ONNX recurrent step: its two report columns are real and int8 lies within 1 point of float.  The step itself,
    not a whole `train` run, to keep the test short (the TFLite conversions are covered by the zoo GRU test)."""
    from edgeml.train import keras_env
    from edgeml.train.checks import Head
    from edgeml.train.data import load_dataset
    from edgeml.train.evaluate import predicted_class
    from edgeml.train.fit import compile_model
    from edgeml.train.pipeline import _onnx_recurrent_route
    from edgeml.train.runtimes import run_onnx_float_onnxruntime
    from edgeml.train.onnx_recurrent import run_edgeml
    from edgeml.train.user_model import load_user_model
    _, keras = keras_env()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((8, 8, 1)), keras.layers.Reshape((8, 8)),
                              keras.layers.Rescaling(1 / 8.0, offset=-1.0), keras.layers.GRU(32, reset_after=False),
                              keras.layers.Dense(10, activation="softmax")])
    path = str(tmp_path / "gru_v1.h5")
    model.save(path)
    model = load_user_model(path)
    ds = load_dataset("digits", seed=0)
    head = Head("dense", "classification", "softmax", 10, ds.class_names)
    compile_model(model, [head])
    model.fit(ds.x_train, ds.y_train, epochs=3, batch_size=32, verbose=0)
    notes = []
    files = _onnx_recurrent_route(model, ds, str(tmp_path), notes)
    assert files, notes
    import onnx
    grus = [n for n in onnx.load(str(tmp_path / "model_float.onnx")).graph.node if n.op_type == "GRU"]
    assert [onnx.helper.get_attribute_value(a) for n in grus for a in n.attribute
            if a.name == "linear_before_reset"] == [0], notes
    outs = {"keras_float": model.predict(ds.x_test, verbose=0),
            "onnxruntime_onnx_float": run_onnx_float_onnxruntime(files["float"], [ds.x_test])[0],
            "edgeml_onnx_int8": run_edgeml(files["int8"], ds.x_test)}
    accuracy = {k: float(np.mean(predicted_class(head, v) == ds.y_test)) for k, v in outs.items()}
    agreement = np.mean(np.argmax(outs["edgeml_onnx_int8"], 1) == np.argmax(outs["onnxruntime_onnx_float"], 1))
    _check_onnx_recurrent_route(str(tmp_path), {"accuracy": accuracy, "why": {}, "agreement": {
        "edgeml_onnx_int8_vs_onnxruntime_onnx_float": {"top1": agreement}}})


def _image_folder(root, empty_class=False):
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        os.makedirs(root / cls)
        if empty_class and cls == "dog":
            continue
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")


@pytest.mark.parametrize("case,error,fragment", [
    ("missing_folder", DataError, "does not exist"),
    ("empty_class", DataError, "dog"),
    ("mismatched_npz", DataError, "x"),
    ("non_numeric_csv", DataError, "height"),
    ("unknown_model", TrainingError, "unknown model 'resnet9000'"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, case, error, fragment):
    data, model = "digits", "mlp"
    if case == "missing_folder":
        data = str(tmp_path / "nowhere")
    elif case == "empty_class":
        _image_folder(tmp_path / "imgs", empty_class=True)
        data = str(tmp_path / "imgs")
    elif case == "mismatched_npz":
        data = str(tmp_path / "d.npz")
        np.savez(data, x=np.zeros((10, 3), np.float32), y=np.zeros(9, np.int64))
    elif case == "non_numeric_csv":
        data = str(tmp_path / "d.csv")
        with open(data, "w") as f:
            f.write("height,width,label\n1.0,2.0,a\ntall,3.0,b\n")
    else:
        model = "resnet9000"
    out = tmp_path / "out"
    with pytest.raises(error, match=fragment) as info:
        train(TrainConfig(out=str(out), data=data, model=model, epochs=1, verbose=0))
    assert "\n" not in str(info.value)
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".edgeml-train-")]


def test_cli_bad_argument_exits_2_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "edgeml", "train", "--model", "nope", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("edgeml: unknown model 'nope'")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
