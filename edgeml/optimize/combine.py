"""Pruning, clustering and QAT together, as tensorflow-model-optimization's collaborative optimization does them:
each step a fine-tune of the float model the previous one left, in the order prune -> cluster -> QAT, each later
step preserving what the earlier ones made of the weights:

  prune                   magnitude pruning to the target sparsity (polynomial schedule over the fine-tune)
  cluster                 weight clustering; after pruning, sparsity-preserving (zeros stay zero)
  qat                     quantization-aware training; after pruning PQAT (pruning-preserving), after clustering
                          CQAT (cluster-preserving), after both PCQAT

`check_plan` applies every wrapper to the untrained model first, so a combination tfmot cannot apply to the model
is refused before any training starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from edgeml.errors import TrainingError
from edgeml.optimize.cluster import cluster_model
from edgeml.optimize.prune import check_prunable
from edgeml.optimize.qat import SCHEMES, quantize_aware
from edgeml.train import keras_env


@dataclass
class OptimizationPlan:
    prune: Optional[float] = None
    cluster: Optional[int] = None
    qat: bool = False

    @property
    def phases(self) -> list[str]:
        return [name for name, on in (("prune", self.prune is not None), ("cluster", self.cluster is not None),
                                      ("qat", self.qat)) if on]

    @property
    def qat_scheme(self) -> str:
        if self.prune is not None and self.cluster is not None:
            return "preserve_sparsity_and_clusters"
        if self.cluster is not None:
            return "preserve_clusters"
        if self.prune is not None:
            return "preserve_sparsity"
        return "default"

    def describe(self) -> str:
        parts = []
        if self.prune is not None:
            parts.append(f"pruning to {self.prune:.0%} sparsity")
        if self.cluster is not None:
            kind = "sparsity-preserving clustering" if self.prune is not None else "clustering"
            parts.append(f"{kind} to {self.cluster} centroids per kernel")
        if self.qat:
            parts.append(SCHEMES[self.qat_scheme])
        return ", then ".join(parts) if parts else "none"


def _copy(model):
    _, keras = keras_env()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def check_plan(model, plan: OptimizationPlan) -> None:
    """Applies each wrapper of the plan to `model` (the results are dropped): TrainingError before training when
    tfmot cannot take the model for one of them."""
    if plan.prune is not None:
        check_prunable(model)
    if plan.cluster is not None:               # on a copy: tfmot's wrappers take over the layers they wrap
        cluster_model(_copy(model), plan.cluster, preserve_sparsity=plan.prune is not None)
    if plan.qat:
        try:
            quantize_aware(model, plan.qat_scheme)
        except TrainingError as exc:
            combined = f" ({SCHEMES[plan.qat_scheme]})" if plan.qat_scheme != "default" else ""
            raise TrainingError(f"--qat{combined} cannot be applied to this model: {exc}") from None
