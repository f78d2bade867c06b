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

from edgeml.train import resume as RS  # noqa: E402
from edgeml.train.pipeline import TrainConfig, train  # noqa: E402

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
                                 + proc.stdout.read().decode()[-3000:])
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no {what} within {timeout} s")


def history_rows(out, phase):
    with open(os.path.join(out, "history.csv")) as f:
        return [r for r in csv.DictReader(f) if r["phase"] == phase]


def test_killed_run_resumes_from_its_last_completed_epoch(tmp_path):
    out = str(tmp_path / "cnn")
    log = os.path.join(RS.backup_folder(out), "train.epochs.jsonl")
    args = dict(model="cnn", epochs=4, patience=99, batch_size=64)
    cmd = [sys.executable, "-m", "edgeml", "train", "--out", out, "--quiet", "--allow-degraded",
           *[f"--{k.replace('_', '-')}={v}" for k, v in args.items()]]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(RS._read_epochs(log)) >= 2, proc, 240, "second completed epoch")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = RS._read_epochs(log)
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
    backup.remove()
    assert not RS.open_backup(out, cfg, resume=True).resumed        # nothing to resume: a fresh start


def test_backup_restores_pruning_step_and_optimizer_state(tmp_path):
    """What BackupAndRestore brings back under tfmot: weights, the pruning masks and step counters (variables of
    the wrappers) and the optimizer's iterations and slots."""
    from edgeml.optimize.prune import prune_model
    from edgeml.train import keras_env
    tf, keras = keras_env()
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
