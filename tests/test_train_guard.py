"""Guard rails and the terminal: a model at chance level or spoiled by int8 is a failure with a likely cause (the
CLI exits 3 with the sentence unless --allow-degraded), and TensorFlow's log noise stays off the terminal."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeml.train import guard as G
from edgeml.train.checks import Head
from edgeml.train.data import load_dataset

REPO = Path(__file__).resolve().parents[1]
NOISE = ("oneDNN", "cuda", "absl::InitializeLog", "XNNPACK delegate", "UserWarning", "deprecated", "WARNING:tensorflow")


def _dataset(n=200, classes=10):
    return load_dataset((np.zeros((n, 3), np.float32), np.arange(n) % classes))


def _metrics(float_acc, int8_acc):
    return {"out": {"task": "classification", "accuracy": {"keras_float": float_acc, "edgeml_int8": int8_acc,
                                                           "litert_int8": float_acc}}}


def test_chance_level_and_int8_drop_bounds():
    ds, head = _dataset(), Head("out", "classification", "softmax", 10, [str(i) for i in range(10)])
    assert G.chance_level(ds.labels("test")[0]) == pytest.approx(0.1, abs=0.02)
    found = G.check_quality([head], _metrics(0.12, 0.12), ds, {"train_samples": 140, "learning_rate": 1e-3})
    assert [f["check"] for f in found] == ["chance"] and "at chance level: test accuracy 0.120" in found[0]["message"]
    assert "14 per class" in found[0]["cause"] and "--augment" in found[0]["cause"]
    found = G.check_quality([head], _metrics(0.95, 0.925), ds, {"qat": False})
    assert [(f["check"], f["runtime"]) for f in found] == [("int8", "edgeml_int8")]
    assert "loses 2.5 points to int8" in found[0]["message"] and "--qat" in found[0]["cause"]
    assert G.check_quality([head], _metrics(0.95, 0.935), ds, {}) == []           # 1.5 points: within the bound
    metrics = _metrics(0.95, 0.95)
    metrics["out"]["accuracy"]["edgeml_float"] = 0.104                  # a float runtime computing something else
    found = G.check_quality([head], metrics, ds, {})
    assert [(f["check"], f["runtime"]) for f in found] == [("runtime", "edgeml_float")]
    assert "disagrees with Keras on the same float model: accuracy 0.104 vs 0.950" in found[0]["message"]


def test_regression_bounds_are_in_target_variance():
    ds = load_dataset((np.zeros((100, 2), np.float32), np.linspace(0, 1, 100).astype(np.float32) + 0.001))
    head = Head("out", "regression", "linear", 1)
    metrics = {"out": {"task": "regression", "target_variance": 1.0, "mse": {"keras_float": 0.20, "edgeml_int8": 0.23},
                       "mae": {}}}
    found = G.check_quality([head], metrics, ds, {})
    assert [f["check"] for f in found] == ["int8"] and "more than 2% of the target variance" in found[0]["message"]
    metrics["out"]["mse"] = {"keras_float": 0.95, "edgeml_int8": 0.95}
    assert [f["check"] for f in G.check_quality([head], metrics, ds, {})] == ["chance"]


def test_overfit_model_is_told_apart_from_one_that_did_not_learn():
    class History:
        history = {"accuracy": [0.5, 0.95], "val_accuracy": [0.1, 0.11]}
        best_epoch = 2
    ds, head = _dataset(2000), Head("out", "classification", "softmax", 10, [str(i) for i in range(10)])
    cause = G.check_quality([head], _metrics(0.1, 0.1), ds, {"history": History(), "train_samples": 1400,
                                                             "batchnorm": True})[0]["cause"]
    assert "training accuracy 0.95" in cause and "BatchNormalization" in cause
    History.history = {"accuracy": [0.1, 0.11], "val_accuracy": [0.1, 0.1]}
    cause = G.check_quality([head], _metrics(0.1, 0.1), ds, {"history": History(), "train_samples": 1400,
                                                             "learning_rate": 0.5})[0]["cause"]
    assert "did not learn" in cause and "--learning-rate (now 0.5)" in cause


def test_lost_sparsity_and_extra_clusters_are_failures():
    from edgeml.optimize.combine import OptimizationPlan
    stats = [("conv", "CONV_2D", 0.02, 5), ("fc", "FULLY_CONNECTED", 0.5, 30)]
    found = G.check_optimizations(OptimizationPlan(prune=0.5, cluster=16), stats)
    assert [f["check"] for f in found] == ["sparsity", "clusters"]
    assert "'conv': 2%" in found[0]["message"] and "'fc' in model_int8.tflite has 30" in found[1]["message"]


def test_captured_stderr_hides_what_native_code_writes_to_fd_2():
    code = ("import os, sys; from edgeml.train.console import captured_stderr\n"
            "with captured_stderr() as read:\n    os.write(2, b'native noise\\n')\n    got = read()\n"
            "print('captured:', got.strip())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.strip() == "captured: native noise" and done.stderr == ""


def test_allow_degraded_returns_the_result_instead_of_raising(tmp_path, monkeypatch):
    from edgeml.train import pipeline
    failure = G.failure("chance", "the float model is at chance level", "too little data")

    def degraded(cfg, work, *_):
        (Path(work) / "report.json").write_text("{}")
        return pipeline.TrainResult(model=None, paths={"report.json": ""}, report={}, failures=[failure])
    monkeypatch.setattr(pipeline, "_run", degraded)
    with pytest.raises(pipeline.DegradedModelError, match="at chance level \\(likely cause: too little data\\)") \
            as info:
        pipeline.train(pipeline.TrainConfig(out=str(tmp_path / "a")))
    assert info.value.result.failures == [failure] and (tmp_path / "a" / "report.json").is_file()
    result = pipeline.train(pipeline.TrainConfig(out=str(tmp_path / "b"), allow_degraded=True))
    assert not result.ok and result.paths["report.json"] == str(tmp_path / "b" / "report.json")


def test_cli_exits_3_with_the_sentence_on_a_model_at_chance_and_prints_no_tensorflow_noise(tmp_path):
    pytest.importorskip("tensorflow_model_optimization")
    rng = np.random.default_rng(0)
    data = tmp_path / "noise.npz"                         # labels unrelated to the inputs: nothing to learn
    np.savez(data, x=rng.normal(size=(300, 6)).astype(np.float32), y=rng.integers(0, 4, 300))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "edgeml", "train", "--data", str(data), "--model", "mlp",
                           "--epochs", "2", "--out", str(out), "--quiet"], capture_output=True, text=True,
                          cwd=REPO, timeout=900)
    assert done.returncode == 3, done.stderr
    assert "edgeml: FAILED chance: the float model is at chance level" in done.stderr
    assert "likely cause:" in done.stderr and "Traceback" not in done.stderr
    for stage in ("[1/5] train", "[2/5] optimize: skipped", "[3/5] convert", "[4/5] evaluate", "[5/5] export",
                  "train done in", "convert done in", "evaluate done in", "summary: mlp on noise.npz"):
        assert stage in done.stdout, (stage, done.stdout)
    assert not [line for line in (done.stdout + done.stderr).splitlines() if any(n in line for n in NOISE)]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "degraded" and report["failures"][0]["check"] == "chance"
    assert "litert_float" in report["accuracy"] and "edgeml_float" in report["accuracy"]
    assert "| edgeml_int8 |" in (out / "report.md").read_text()


def test_feature_columns_of_mixed_scales_are_named_as_the_int8_cause():
    from edgeml.train.runtimes import TensorSpec

    class IO:           # one int8 input of 3 features, the scale set by a column spanning 0..1700
        inputs = [TensorSpec("x", (1, 3), np.dtype(np.int8), 1700 / 255, -128)]
        input_order = [0]
    rng = np.random.default_rng(0)
    wide = np.stack([rng.uniform(0, 1700, 100), rng.normal(0, 300, 100), rng.normal(3, 0.2, 100)], axis=1)
    cause = G.input_resolution(IO(), [wide])
    assert "1 of 3 feature columns" in cause and "standardize" in cause, cause
    assert G.input_resolution(IO(), [wide[:, :2]]) is None
    assert G.input_resolution(IO(), [np.zeros((100, 3))]) is None       # constant columns: nothing to lose


@pytest.mark.parametrize("saturates, edgeml_flagged, becomes_note", [
    (True, False, True), (True, True, False), (False, False, False)])
def test_onnxruntime_int8_loss_is_a_note_where_its_kernels_saturate(monkeypatch, saturates, edgeml_flagged,
                                                                    becomes_note):
    """On x86-64 without VNNI onnxruntime's uint8 x int8 GEMMs saturate: its int8 loss alone is a note when edgeml's
    exact int8 run of the same model is within the bound; anywhere else, or with edgeml flagged too, a failure."""
    import edgeml.cpu
    monkeypatch.setattr(edgeml.cpu, "onnxruntime_int8_saturates", lambda: saturates)
    found = [G.failure("int8", "onnxruntime_int8 raises the MSE", "cause", output="y", runtime="onnxruntime_int8")]
    if edgeml_flagged:
        found.append(G.failure("int8", "edgeml_int8 raises the MSE", "cause", output="y", runtime="edgeml_int8"))
    metrics = {"y": {"mse": {"keras_float": 1.0, "edgeml_int8": 1.5 if edgeml_flagged else 1.0,
                             "onnxruntime_int8": 2.0}}}
    failures, notes = G.onnxruntime_cpu_findings(found, metrics)
    runtimes = [f["runtime"] for f in failures]
    assert ("onnxruntime_int8" not in runtimes) == becomes_note
    assert len(notes) == (1 if becomes_note else 0)
    if becomes_note:
        assert "saturate pairs of products" in notes[0] and "onnxruntime_int8 raises the MSE" in notes[0]
