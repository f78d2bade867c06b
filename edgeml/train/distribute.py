"""`edgeml train --distribute mirrored|multiworker`: training and fine-tunes under a `tf.distribute` strategy.

mirrored: MirroredStrategy over this host's devices (GPUs, else the CPU).  multiworker: MultiWorkerMirroredStrategy
over the processes named in the standard `TF_CONFIG` (every worker runs the same command).  `--batch-size` is the
GLOBAL batch, split evenly over the replicas, so a step averages the gradient over the same number of samples as in
one process and the learning rate stays as given (no scaling).  Model building, compiling and every fit run inside
the strategy's scope; conversion and evaluation run on a plain copy of the trained model, on the chief only, which
alone writes `--out` (through the same work-folder rename as one process).  The other workers train and return.
"""
from __future__ import annotations

import contextlib
import json
import os

from edgeml.errors import TrainingError
from edgeml.optimize.convert import is_quantize_aware
from edgeml.train import keras_env

STRATEGIES = ("mirrored", "multiworker")


def check_options(distribute) -> None:
    """Refuses, before anything is read or trained, a strategy that cannot start.  Pruning, clustering and QAT
    all fit under both strategies (tfmot 0.8.1, checked with two workers on one host), so none is refused."""
    if distribute is None:
        return
    if distribute not in STRATEGIES:
        raise TrainingError(f"--distribute takes one of {', '.join(STRATEGIES)}, got '{distribute}'")
    if distribute == "multiworker":
        cluster_spec, task = tf_config()
        if not cluster_spec.get("worker") and not cluster_spec.get("chief"):
            raise TrainingError("--distribute multiworker reads the cluster from the TF_CONFIG environment "
                                "variable: set it on every worker, e.g. TF_CONFIG='{\"cluster\": {\"worker\": "
                                "[\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", "
                                "\"index\": 0}}'")
        if task.get("type") not in ("worker", "chief") or not isinstance(task.get("index"), int):
            raise TrainingError(f"TF_CONFIG's task must be {{\"type\": \"worker\" or \"chief\", \"index\": N}}, "
                                f"got {task!r}")


def tf_config() -> tuple[dict, dict]:
    """(cluster, task) from TF_CONFIG; ({}, {}) when unset."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}, {}
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise TrainingError(f"TF_CONFIG is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise TrainingError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    return config.get("cluster") or {}, config.get("task") or {}


def is_chief(distribute) -> bool:
    """The process that writes --out: always, except for multiworker workers other than the chief (the task
    'chief', else worker 0, as TensorFlow decides)."""
    if distribute != "multiworker":
        return True
    cluster_spec, task = tf_config()
    if cluster_spec.get("chief"):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and task.get("index") == 0


class Distribution:
    """The strategy of one run (None: TensorFlow's default) and its scope, entered by `enter` and left by
    `leave` (also on the way out of the `with` block, so an error never leaves a scope open)."""

    def __init__(self, distribute):
        self.name = distribute
        self.strategy = None
        self.chief = is_chief(distribute)
        self._stack = contextlib.ExitStack()

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    def __enter__(self):
        if self.name is not None:
            tf, _ = keras_env()
            if self.name == "mirrored":
                self.strategy = tf.distribute.MirroredStrategy()
            else:
                comm = tf.distribute.experimental.CommunicationOptions(
                    implementation=tf.distribute.experimental.CommunicationImplementation.RING)
                self.strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=comm)
            self._stack.enter_context(self.strategy.scope())
        return self

    def leave(self):
        self._stack.close()

    def __exit__(self, *exc):
        self.leave()
        return False

    def describe(self) -> str:
        if self.strategy is None:
            return ""
        workers = len(tf_config()[0].get("worker", [])) + len(tf_config()[0].get("chief", []))
        where = f"{workers} workers" if self.name == "multiworker" else "this host"
        kind = "MirroredStrategy" if self.name == "mirrored" else "MultiWorkerMirroredStrategy"
        return (f"{kind} over {where}, {self.replicas} replicas in sync; --batch-size is the "
                f"global batch (split over the replicas), learning rate not scaled")


def local_copy(model, heads, compile_model):
    """The trained model outside the strategy (same layers and weights), for conversion and evaluation, which
    the chief runs alone: a model built under MultiWorkerMirroredStrategy would wait for the other workers."""
    _, keras = keras_env()
    with contextlib.ExitStack() as stack:
        if is_quantize_aware(model):             # tfmot's quantize wrappers are known only in its scope
            import tensorflow_model_optimization as tfmot
            stack.enter_context(tfmot.quantization.keras.quantize_scope())
        copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    compile_model(copy, heads)
    return copy
