"""The optimize stage: the fine-tunes of `edgeml.optimize.combine`'s plan run on the trained float model, in the
order prune -> cluster -> QAT, each for `finetune_epochs` without early stopping (a pruning schedule must reach
its target, and restoring an earlier epoch would undo it)."""
from __future__ import annotations

import math

from edgeml.optimize.cluster import cluster_model, strip_clustering
from edgeml.optimize.combine import OptimizationPlan
from edgeml.optimize.prune import prune_model, strip_pruning
from edgeml.optimize.qat import quantize_aware
from edgeml.train import fit as F
from edgeml.train.resume import resumable_fit

FINETUNE_RATE = {"prune": 1.0, "cluster": 0.1, "qat": 0.1}     # fractions of the training learning rate


def pruning_end_step(steps_per_epoch: int, epochs: int) -> int:
    """The step at which the sparsity reaches its target: after all but the last fine-tune epoch, which then
    recovers at the final sparsity (the whole single epoch when there is only one)."""
    return max(1, steps_per_epoch * (epochs - 1 if epochs > 1 else 1))


def run_phases(model, plan: OptimizationPlan, ds, heads: list, *, optimizer: str, rate: float, epochs: int,
               batch_size: int, workdir: str, callbacks=(), verbose: int = 0, seed: int = 0, backup=None,
               prune_block=(1, 1)):
    """(float model after pruning / clustering, QAT model or None, [(phase, History)])."""
    phases = []
    steps = math.ceil(ds.size("train") / batch_size)

    def tune(name, trainable, extra=()):
        F.compile_model(trainable, heads, optimizer=optimizer, rate=rate * FINETUNE_RATE[name])
        history = resumable_fit(backup, name, trainable, lambda resume_callbacks: F.fit(
            trainable, ds, heads, epochs=epochs, batch_size=batch_size, workdir=workdir,
            callbacks=[*extra, *callbacks, *resume_callbacks], verbose=verbose, patience=None, seed=seed))
        phases.append((name, history))

    if plan.prune is not None:
        pruned, pruning_callbacks = prune_model(model, plan.prune, steps=pruning_end_step(steps, epochs),
                                                 block=prune_block)
        tune("prune", pruned, pruning_callbacks)
        model = strip_pruning(pruned)
    if plan.cluster is not None:
        clustered = cluster_model(model, plan.cluster, preserve_sparsity=plan.prune is not None)
        tune("cluster", clustered)
        model = strip_clustering(clustered)
    qat_model = None
    if plan.qat:
        qat_model = quantize_aware(model, plan.qat_scheme)
        tune("qat", qat_model)
    F.compile_model(model, heads, optimizer=optimizer, rate=rate)
    return model, qat_model, phases
