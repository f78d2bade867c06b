"""The optimize stage: the fine-tunes of `edgeml.optimize.combine`'s plan run on the trained float model, in the
order prune -> cluster -> QAT, each for its number of epochs (`phase_epochs`) without early stopping (a pruning
schedule must reach its target, and restoring an earlier epoch would undo it)."""
from __future__ import annotations

import math

from edgeml.optimize.cluster import cluster_model, strip_clustering
from edgeml.optimize.combine import OptimizationPlan
from edgeml.optimize.prune import prune_model, strip_pruning
from edgeml.optimize.qat import quantize_aware
from edgeml.train import fit as F
from edgeml.train.config import DEFAULT_FINETUNE_EPOCHS
from edgeml.train.resume import resumable_fit

FINETUNE_RATE = {"prune": 1.0, "cluster": 0.1, "qat": 0.1}     # fractions of the training learning rate


def prune_finetune_epochs(sparsity: float) -> int:
    """The default length of the pruning fine-tune: ceil(3.5 / (1 - sparsity)) epochs (7 at 50%, 14 at 75%, 35 at
    90%; at least DEFAULT_FINETUNE_EPOCHS, at most 40): the fewer weights survive, the longer they need to take over
    what the pruned ones did.  Measured on digits with 16x4 blocks at 75%: the zoo's mobilenet_v1 loses 8.5 points
    after 8 epochs ramping over 7, 2.6 ramping over 4, 1.5 after 14 ramping over 7 (`pruning_end_step`)."""
    return min(40, max(DEFAULT_FINETUNE_EPOCHS, math.ceil(3.5 / (1.0 - sparsity) - 1e-9)))


def phase_epochs(finetune_epochs, prune) -> dict:
    """Fine-tune epochs of each phase: `finetune_epochs` for all when given, else the defaults."""
    if finetune_epochs is not None:
        return {"prune": finetune_epochs, "cluster": finetune_epochs, "qat": finetune_epochs}
    return {"prune": prune_finetune_epochs(prune) if prune is not None else DEFAULT_FINETUNE_EPOCHS,
            "cluster": DEFAULT_FINETUNE_EPOCHS, "qat": DEFAULT_FINETUNE_EPOCHS}


def pruning_end_step(steps_per_epoch: int, epochs: int) -> int:
    """The step at which the sparsity reaches its target: after the first half of the fine-tune (rounded down, at
    least one epoch); the rest recovers at the final sparsity, which high sparsities need most."""
    return max(1, steps_per_epoch * max(1, epochs // 2))


def run_phases(model, plan: OptimizationPlan, ds, heads: list, *, optimizer: str, rate: float, epochs: dict,
               batch_size: int, workdir: str, callbacks=(), verbose: int = 0, seed: int = 0, backup=None,
               prune_block=(1, 1)):
    """(float model after pruning / clustering, QAT model or None, [(phase, History)]); epochs: phase -> epochs
    (`phase_epochs`)."""
    phases = []
    steps = math.ceil(ds.size("train") / batch_size)

    def tune(name, trainable, extra=()):
        F.compile_model(trainable, heads, optimizer=optimizer, rate=rate * FINETUNE_RATE[name])
        history = resumable_fit(backup, name, trainable, lambda resume_callbacks: F.fit(
            trainable, ds, heads, epochs=epochs[name], batch_size=batch_size, workdir=workdir,
            callbacks=[*extra, *callbacks, *resume_callbacks], verbose=verbose, patience=None, seed=seed))
        phases.append((name, history))

    if plan.prune is not None:
        pruned, pruning_callbacks = prune_model(model, plan.prune, steps=pruning_end_step(steps, epochs["prune"]),
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
