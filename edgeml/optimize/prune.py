"""Magnitude pruning with tensorflow-model-optimization (polynomial sparsity schedule), and how sparse it got."""
from __future__ import annotations

import numpy as np

from edgeml.errors import TrainingError
from edgeml.optimize.block_prune import SELF_PRUNED, block_pruning_callback, parse_block
from edgeml.optimize.keras_model import require_tf_keras
from edgeml.train import keras_env

KERNEL_NAMES = ("kernel", "recurrent_kernel", "depthwise_kernel", "pointwise_kernel")


def prune_model(model, target_sparsity: float, *, steps: int, begin_step: int = 0, block=(1, 1)):
    """Wraps every prunable layer for low-magnitude pruning; returns (pruning model, callbacks for fit).

    Sparsity ramps from 0 at `begin_step` to `target_sparsity` at `steps` (PolynomialDecay, pruning every 100
    steps at most, on a period that divides steps - begin_step so the last update reaches the target).  Train the
    result with the returned callbacks (they include UpdatePruningStep, without which fit fails), then call
    `strip_pruning`.  Compile the returned model again.  block (output x input channels, see
    `edgeml.optimize.block_prune`) other than 1x1: Conv2D / Dense kernels lose whole blocks (a callback, returned
    with the others), DepthwiseConv2D stays dense, the other layers are pruned element-wise.
    """
    tf, keras = keras_env()
    import tensorflow_model_optimization as tfmot
    require_tf_keras(model, "prune_model")
    if not 0.0 <= target_sparsity < 1.0:
        raise TrainingError(f"Pruning target sparsity must be in [0, 1), got {target_sparsity}.")
    if begin_step < 0 or steps <= begin_step:
        raise TrainingError(f"Pruning needs steps > begin_step >= 0 (got steps={steps}, begin_step={begin_step}); "
                            f"steps is the training step at which the target sparsity is reached.")
    check_prunable(model)
    frequency = _pruning_frequency(steps - begin_step)
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(target_sparsity),
                                                    begin_step=begin_step, end_step=steps, frequency=frequency)
    block = parse_block(block)

    def wrap(layer):
        kind = type(layer).__name__
        if kind in PREPROCESSING_LAYERS or not layer.weights or (block != (1, 1) and kind in SELF_PRUNED):
            return layer
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
    try:
        pruned = keras.models.clone_model(model, clone_function=wrap)   # wraps the layers themselves: weights kept
    except ValueError as exc:
        raise TrainingError(f"tfmot could not wrap the model for pruning: {exc}") from exc
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    if block != (1, 1):
        callbacks.append(block_pruning_callback(schedule, block))
    return pruned, callbacks


# preprocessing (statistics, not weights) and additive tables stay as they are, like biases
PREPROCESSING_LAYERS = ("Normalization", "Rescaling", "PositionEmbedding")


def _pruning_frequency(span: int) -> int:
    """Prune every f steps, f dividing the span so that the last update lands exactly on end_step."""
    limit = max(1, min(100, span // 10))
    return max(f for f in range(1, limit + 1) if span % f == 0)


def check_prunable(model) -> None:
    """Raises TrainingError naming the first layer tfmot cannot prune (Bidirectional, custom layers)."""
    _, keras = keras_env()
    from tensorflow_model_optimization.python.core.sparsity.keras import prunable_layer, prune_registry
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or not layer.weights \
                or type(layer).__name__ in PREPROCESSING_LAYERS:
            continue
        if (isinstance(layer, prunable_layer.PrunableLayer) or hasattr(layer, "get_prunable_weights")
                or prune_registry.PruneRegistry.supports(layer)):
            continue
        why = ("tfmot cannot prune inside Bidirectional wrappers" if type(layer).__name__ == "Bidirectional"
               else "it is not in tfmot's prune registry and does not implement PrunableLayer")
        raise TrainingError(f"Cannot prune layer '{layer.name}' ({type(layer).__name__}): {why}.")


def strip_pruning(model):
    """The model without pruning wrappers: the plain layers, with the pruned (zeroed) weights."""
    keras_env()
    import tensorflow_model_optimization as tfmot
    require_tf_keras(model, "strip_pruning")
    return tfmot.sparsity.keras.strip_pruning(model)


def layer_sparsity(model) -> dict:
    """Layer name -> fraction of zeros in its kernels (kernel, recurrent, depthwise, pointwise; not biases).

    Works on pruning-wrapped and stripped models; layers without a kernel are left out.
    """
    require_tf_keras(model, "layer_sparsity")
    result = {}
    for layer in model.layers:
        kernels = [w for w in layer.weights if _weight_basename(w) in KERNEL_NAMES]
        if not kernels:
            continue
        zeros = sum(int(np.count_nonzero(w.numpy() == 0)) for w in kernels)
        total = sum(int(np.prod(w.shape)) for w in kernels)
        result[layer.name] = zeros / total if total else 0.0
    return result


def _weight_basename(weight) -> str:
    return weight.name.split("/")[-1].split(":")[0]
