"""Training beyond one machine: resume after a kill (BackupAndRestore), streamed data, tf.distribute."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from edgeml.errors import TrainingError

pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_model_optimization")

from edgeml.train import resume as RS
from edgeml.train.pipeline import TrainConfig, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(**extra):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(extra)
    return env


def wait_for(predicate, proc, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (status {proc.returncode}) before {what}:\n"
                                 + (proc.stdout.read().decode()[-3000:] if proc.stdout else ""))
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no {what} within {timeout} s")


def history_rows(out, phase):
    with open(os.path.join(out, "history.csv")) as f:
        return [r for r in csv.DictReader(f) if r["phase"] == phase]


def test_killed_run_resumes_from_its_last_completed_epoch(tmp_path):
    out = str(tmp_path / "cnn")
    log = os.path.join(RS.backup_folder(out), "train.epochs.jsonl")
    args = {"model": "cnn", "epochs": 4, "patience": 99, "batch_size": 64}
    cmd = [sys.executable, "-m", "edgeml", "train", "--out", out, "--quiet", "--allow-degraded",
           *[f"--{k.replace('_', '-')}={v}" for k, v in args.items()]]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(RS.read_epochs(log)) >= 2, proc, 240, "second completed epoch")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = RS.read_epochs(log)
    assert 2 <= len(before) < 4, before
    assert not os.path.exists(out)                                  # nothing half-written at --out
    with pytest.raises(TrainingError, match="pass --resume"):       # a fresh run refuses the backup
        train(TrainConfig(out=out, verbose=0, allow_degraded=True, **args))
    with pytest.raises(TrainingError, match="changed: epochs"):
        train(TrainConfig(out=out, verbose=0, allow_degraded=True, resume=True, **{**args, "epochs": 5}))
    result = train(TrainConfig(out=out, verbose=0, allow_degraded=True, resume=True, **args))
    assert f"train from epoch {len(before) + 1}" in " ".join(result.report["notes"])
    rows = history_rows(out, "train")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]         # the epochs continue, none repeated
    for row, logged in zip(rows, before):                           # the killed run's epochs, as it logged them
        assert float(row["loss"]) == pytest.approx(logged["loss"], rel=1e-5)
    assert result.report["phases"][0]["epochs"] == 4
    assert not os.path.exists(RS.backup_folder(out))                # removed once --out is written
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".edgeml-")]
    assert result.report["accuracy"]["edgeml_int8"] > 0.8


def test_backup_without_epochs_is_cleared_and_resume_without_backup_starts(tmp_path):
    out = str(tmp_path / "o")
    cfg = TrainConfig(out=out)
    os.makedirs(RS.backup_folder(out))
    backup = RS.open_backup(out, cfg, resume=False)                  # an empty backup: cleared, not refused
    assert not backup.resumed and os.listdir(backup.root) == [RS.CONFIG_FILE]
    with open(os.path.join(backup.root, "train.epochs.jsonl"), "w") as f:
        f.write(json.dumps({"epoch": 0, "loss": 1.0}) + "\n{\"epoch\": 1, \"lo")       # the second line cut
    assert backup.completed_epochs() == 1
    with pytest.raises(TrainingError, match="holds 1 completed epochs"):
        RS.open_backup(out, cfg, resume=False)
    assert RS.open_backup(out, cfg, resume=True).resumed
    config_path = os.path.join(backup.root, RS.CONFIG_FILE)
    with open(config_path) as f:
        saved = json.load(f)
    with open(config_path, "w") as f:                               # a backup written before the stream option
        json.dump({k: v for k, v in saved.items() if k not in RS.LATER_FIELDS}, f)
    assert RS.open_backup(out, cfg, resume=True).resumed
    with pytest.raises(TrainingError, match="changed: stream"):
        RS.open_backup(out, TrainConfig(out=out, stream=True), resume=True)
    backup.remove()
    assert not RS.open_backup(out, cfg, resume=True).resumed        # nothing to resume: a fresh start


def test_backup_restores_pruning_step_and_optimizer_state(tmp_path):
    """What BackupAndRestore brings back under tfmot: weights, the pruning masks and step counters (variables of
    the wrappers) and the optimizer's iterations and slots."""
    from edgeml.optimize.prune import prune_model
    from edgeml.train import keras_env
    _, keras = keras_env()
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")

    def pruned_model():
        base = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dense(2)])
        model, callbacks = prune_model(base, 0.5, steps=16)
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model, callbacks

    first, callbacks = pruned_model()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "b"), delete_checkpoint=False)
    first.fit(x, y, batch_size=32, epochs=2, callbacks=[*callbacks, backup], verbose=0)
    second, callbacks = pruned_model()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "b"), delete_checkpoint=False)
    history = second.fit(x, y, batch_size=32, epochs=2, callbacks=[*callbacks, backup], verbose=0)
    assert history.epoch == []                                      # both epochs were done: nothing rerun
    steps = [v for v in second.variables if "pruning_step" in v.name]
    assert steps and all(int(v.numpy()) == 16 for v in steps)
    assert int(second.optimizer.iterations.numpy()) == int(first.optimizer.iterations.numpy()) == 16
    for a, b in zip(first.variables, second.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    for a, b in zip(first.optimizer.variables(), second.optimizer.variables()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# ---- distribution ----------------------------------------------------------------------------------------------
WORKER = """
import json, sys
import numpy as np
from edgeml.train.data import load_dataset
from edgeml.train.pipeline import TrainConfig, train
result = train(TrainConfig(**json.loads(sys.argv[1])))
x = load_dataset("digits").inputs("test")[0][:64]
np.save(sys.argv[2], result.model.predict(x, verbose=0))
"""


def free_ports(n):
    import socket
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_two_workers(tmp_path, timeout=420, **options):
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1; (chief's TrainResult report, [float outputs])."""
    out = str(tmp_path / "out")
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    cfg = json.dumps({"out": out, "distribute": "multiworker", "verbose": 0, "allow_degraded": True, **options})
    procs = []
    try:
        for index in range(2):
            env = child_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
            procs.append(subprocess.Popen([sys.executable, "-c", WORKER, cfg, str(tmp_path / f"y{index}.npy")],
                                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        for proc in procs:
            proc.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise AssertionError(f"two workers did not finish within {timeout} s") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    logs = [proc.stdout.read().decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(
        f"---- worker {i} (status {p.returncode}):\n{log[-3000:]}" for i, (p, log) in enumerate(zip(procs, logs)))
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith(".")) == []      # no work / backup left
    return report, [np.load(tmp_path / f"y{i}.npy") for i in range(2)]


@pytest.mark.slow          # ~2.5 min on a loaded 2-core machine (two TensorFlow processes, conversion, evaluation)
def test_two_workers_train_the_default_cnn_like_one_process(tmp_path):
    from edgeml.train.zoo import ZOO_DIGITS_ACCURACY
    report, (chief, worker) = run_two_workers(tmp_path, model="cnn", epochs=3)
    assert any("MultiWorkerMirroredStrategy over 2 workers, 2 replicas" in n for n in report["notes"])
    assert report["accuracy"]["edgeml_int8"] >= ZOO_DIGITS_ACCURACY["cnn"], report["accuracy"]
    np.testing.assert_allclose(chief, worker, rtol=1e-5, atol=1e-6)         # the workers' weights agreed


@pytest.mark.slow
def test_two_workers_prune(tmp_path):
    report, (chief, worker) = run_two_workers(tmp_path, model="cnn", epochs=3, prune=0.5, finetune_epochs=2)
    assert [p["phase"] for p in report["phases"]] == ["train", "prune"]
    sparsity = report["sparsity"]
    assert sparsity and all(v == pytest.approx(0.5, abs=0.02) for v in sparsity.values()), sparsity
    assert report["accuracy"]["edgeml_int8"] >= 0.85, report["accuracy"]
    np.testing.assert_allclose(chief, worker, rtol=1e-5, atol=1e-6)


def test_mirrored_on_one_cpu_trains_and_exports(tmp_path):
    """The fast default-run check of the strategy path: scope, fit, QAT under it, the chief's local copies."""
    result = train(TrainConfig(out=str(tmp_path / "m"), model="mlp", epochs=2, distribute="mirrored", verbose=0,
                               allow_degraded=True, qat=True, finetune_epochs=1))
    assert any("MirroredStrategy over this host, 1 replicas" in n for n in result.report["notes"])
    assert [p["phase"] for p in result.report["phases"]] == ["train", "qat"]
    assert result.report["accuracy"]["edgeml_int8"] > 0.8
    assert os.path.isfile(tmp_path / "m" / "model_int8.tflite")


@pytest.mark.parametrize("options, message", [
    ({"distribute": "multiworker"}, "reads the cluster from the TF_CONFIG"),
    ({"distribute": "ring"}, "--distribute takes one of mirrored, multiworker"),
])
def test_distribution_refused_before_training(tmp_path, monkeypatch, options, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TrainingError, match=message):
        train(TrainConfig(out=str(tmp_path / "o"), verbose=0, **options))
    assert not os.path.exists(tmp_path / "o")


def test_cli_distribute_flag(tmp_path, monkeypatch, capsys):
    from edgeml.cli import main
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "ps", "index": 0}}')
    assert main(["train", "--distribute", "multiworker", "--out", str(tmp_path / "o")]) != 0
    assert "TF_CONFIG's task must be" in capsys.readouterr().err


@pytest.mark.slow          # ~5 min on a loaded 2-core machine
def test_two_killed_workers_resume(tmp_path):
    out = str(tmp_path / "out")
    log = os.path.join(RS.backup_folder(out), "train.epochs.jsonl")
    options = {"model": "cnn", "epochs": 4, "patience": 99}

    def start(resume):
        cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
        cfg = json.dumps({"out": out, "distribute": "multiworker", "verbose": 0, "allow_degraded": True,
                          "resume": resume, **options})
        return [subprocess.Popen([sys.executable, "-c", WORKER, cfg, str(tmp_path / f"y{i}.npy")], cwd=ROOT,
                                 env=child_env(TF_CONFIG=json.dumps({"cluster": cluster,
                                                                     "task": {"type": "worker", "index": i}})),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(2)]
    procs = start(False)
    try:
        wait_for(lambda: len(RS.read_epochs(log)) >= 2, procs[0], 400, "second completed epoch")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert not os.path.exists(out)
    procs = start(True)
    try:
        assert [proc.wait(600) for proc in procs] == [0, 0]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert any("train from epoch 3" in n for n in report["notes"]), report["notes"]
    assert [int(r["epoch"]) for r in history_rows(out, "train")] == [1, 2, 3, 4]
    np.testing.assert_allclose(np.load(tmp_path / "y0.npy"), np.load(tmp_path / "y1.npy"), rtol=1e-5, atol=1e-6)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
