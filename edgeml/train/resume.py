"""Resuming a killed `edgeml train` run: a backup folder beside `--out` (`.edgeml-backup-<name>`) holds, per fit
phase (train, prune, cluster, qat), Keras's `BackupAndRestore` checkpoint of the last completed epoch (model,
optimizer state, pruning step counters: they are all variables of the model) and one JSON line per completed epoch;
a finished phase leaves its final weights and history, so `--resume` skips it.  The folder is removed when the run
has written `--out`; a run without `--resume` refuses a backup that holds completed epochs (see `open_backup`).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

from edgeml.errors import TrainingError
from edgeml.train import keras_env

BACKUP_PREFIX = ".edgeml-backup-"
CONFIG_FILE = "config.json"
RESUMED_FIELDS = ("data", "model", "task", "epochs", "batch_size", "learning_rate", "optimizer", "patience",
                  "validation_split", "test_split", "seed", "prune", "qat", "cluster", "finetune_epochs", "alpha",
                  "augment", "distribute", "stream")
# fields added after backups were first written, with the value a run made before them used
LATER_FIELDS = {"stream": False}


def backup_folder(out: str) -> str:
    out = os.path.abspath(out)
    return os.path.join(os.path.dirname(out), BACKUP_PREFIX + os.path.basename(out))


def _fingerprint(cfg) -> dict:
    """The options a resumed run must share with the killed one (data and model only when given by name)."""
    def plain(value):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            return list(value)
        return f"<{type(value).__name__}>"
    return {name: plain(getattr(cfg, name, None)) for name in RESUMED_FIELDS}


class Backup:
    """The backup folder of one run; `phase(name)` gives the place of one fit phase."""

    def __init__(self, root: str, resumed: bool, writer: bool = True):
        self.root, self.resumed, self.writer = root, resumed, writer
        self.resumed_phases: list[str] = []        # phases that continued from a backup (for the report)

    def completed_epochs(self) -> int:
        return sum(len(read_epochs(os.path.join(self.root, n))) for n in os.listdir(self.root)
                   if n.endswith(".epochs.jsonl")) if os.path.isdir(self.root) else 0

    def remove(self) -> None:
        if self.writer:
            shutil.rmtree(self.root, ignore_errors=True)

    def remove_if_empty(self) -> None:
        """After a failed run: keeps the backup only when it holds an epoch worth resuming."""
        if not self.completed_epochs():
            self.remove()


def open_backup(out: str, cfg, resume: bool, writer: bool = True) -> Backup:
    """The run's backup folder.  Without `resume`, a backup holding completed epochs is refused (never cleared
    silently: it may be hours of training); an empty one (a run stopped before its first epoch) is cleared.
    With `resume`, the options must match the killed run's; without a backup the run simply starts."""
    root = backup_folder(out)
    backup = Backup(root, resumed=False, writer=writer)
    if os.path.isdir(root):
        epochs = backup.completed_epochs()
        if not resume and epochs:
            raise TrainingError(f"'{root}' holds {epochs} completed epochs of an unfinished run with --out "
                                f"'{out}': pass --resume (resume=True) to continue it, or delete that folder to "
                                "start again")
        if resume and epochs:
            try:
                with open(os.path.join(root, CONFIG_FILE)) as f:
                    before = json.load(f)
            except (OSError, ValueError):
                before = {}
            now = json.loads(json.dumps(_fingerprint(cfg)))
            before = {**LATER_FIELDS, **before}
            changed = [k for k in RESUMED_FIELDS if before.get(k) != now.get(k)]
            if changed:
                raise TrainingError("--resume continues the run in '" + root + "' only with the same options; "
                                    "changed: " + ", ".join(f"{k} ({before.get(k)!r} -> {now.get(k)!r})"
                                                            for k in changed))
            backup.resumed = True
            return backup
        if writer:
            shutil.rmtree(root, ignore_errors=True)
    if writer:
        os.makedirs(root, exist_ok=True)
        _write_atomic(os.path.join(root, CONFIG_FILE), json.dumps(_fingerprint(cfg), indent=1))
    return backup


def _write_atomic(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def read_epochs(path: str) -> list:
    rows = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:          # a line cut by a kill
                    break
    except OSError:
        pass
    return rows


def epoch_logger(path: str):
    """A Keras callback appending {"epoch", **logs} per completed epoch to `path` (after the checkpoint: it comes
    after BackupAndRestore in the callback list); at the first epoch fit runs (the one after the restored
    checkpoint) it drops lines from that epoch on."""
    _, keras = keras_env()

    class EpochLog(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.first = True

        def on_epoch_begin(self, epoch, logs=None):
            if self.first:
                self.first = False
                kept = [r for r in read_epochs(path) if r["epoch"] < epoch]
                _write_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": int(epoch), **{k: float(v) for k, v in (logs or {}).items()}}
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())
    return EpochLog()


def resumable_fit(backup: Backup | None, phase: str, model, run_fit):
    """Runs `run_fit(extra_callbacks)` (which returns a Keras History) for one phase, resumably.

    A phase the backup holds as finished loads its final weights and history instead of fitting; an unfinished
    one continues from its last completed epoch.  The returned History covers every epoch of the phase.
    run_fit puts the extra callbacks last: after tfmot's UpdatePruningStep, so the checkpoint holds masked weights."""
    if backup is None:
        return run_fit([])
    _, keras = keras_env()
    done_weights = os.path.join(backup.root, f"{phase}.done.h5")
    done_history = os.path.join(backup.root, f"{phase}.done.json")
    log_path = os.path.join(backup.root, f"{phase}.epochs.jsonl")
    if backup.resumed and os.path.isfile(done_weights) and os.path.isfile(done_history):
        model.load_weights(done_weights)
        with open(done_history) as f:
            saved = json.load(f)
        history = keras.callbacks.History()
        history.history, history.epoch = saved["history"], list(range(saved["epochs"]))
        history.best_epoch, history.monitored, history.seconds = saved["best_epoch"], saved["monitored"], 0.0
        backup.resumed_phases.append(f"{phase} (finished before)")
        return history
    if backup.resumed and read_epochs(log_path):
        backup.resumed_phases.append(f"{phase} from epoch {len(read_epochs(log_path)) + 1}")
    checkpoint = keras.callbacks.BackupAndRestore(os.path.join(backup.root, phase), delete_checkpoint=False)
    history = run_fit([checkpoint, epoch_logger(log_path)] if backup.writer else [checkpoint])
    rows = read_epochs(log_path) if backup.writer else []
    if rows:          # the epochs before the restart too (a worker that does not write keeps Keras's own)
        history.history = {k: [r.get(k) for r in rows] for k in rows[-1] if k != "epoch"}
        history.epoch = [r["epoch"] for r in rows]
    elif history.epoch and getattr(history, "best_epoch", 0):     # Keras's own history starts at the restart
        history.best_epoch = max(1, history.best_epoch - history.epoch[0])
    if not getattr(history, "best_epoch", 0):         # fit ran no epoch: the phase had ended before the kill
        history.best_epoch = len(history.epoch)
    # every worker saves (under MultiWorkerMirroredStrategy saving is a collective step); others into a scratch file
    scratch = done_weights + ".tmp.h5" if backup.writer else tempfile.mkstemp(suffix=".h5")[1]
    model.save_weights(scratch)
    if not backup.writer:
        os.remove(scratch)
    else:
        os.replace(scratch, done_weights)
        _write_atomic(done_history, json.dumps({"history": history.history, "epochs": len(history.epoch),
                                                "best_epoch": getattr(history, "best_epoch", len(history.epoch)),
                                                "monitored": getattr(history, "monitored", None)}))
    return history
