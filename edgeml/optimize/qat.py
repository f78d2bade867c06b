"""Quantization-aware training: tfmot's default 8-bit scheme (fake-quant wrappers) on a tf_keras model."""
from __future__ import annotations

import re

from edgeml.errors import TrainingError
from edgeml.optimize.keras_model import require_tf_keras
from edgeml.train import keras_env

# Input preprocessing that QAT's registry has no config for, left in float rather than refused
PREPROCESSING_LAYERS = ("Normalization", "Rescaling")

_WHY_UNSUPPORTED = {
    "LSTM": "tfmot's 8-bit QAT scheme has no quantize config for recurrent layers; use post-training int8 "
            "(to_tflite with int8=True) instead",
    "Conv1D": "tfmot's 8-bit QAT scheme leaves Conv1D disabled; use a Conv2D with a kernel of height 1, or "
              "post-training int8",
    "BatchNormalization": "QAT can only fold a BatchNormalization that directly follows a Conv2D or "
                          "DepthwiseConv2D",
    "LayerNormalization": "tfmot's 8-bit QAT scheme has no quantize config for LayerNormalization",
    "Embedding": "tfmot's 8-bit QAT scheme has no quantize config for Embedding",
    "MultiHeadAttention": "tfmot's 8-bit QAT scheme has no quantize config for MultiHeadAttention",
    "PositionEmbedding": "tfmot's 8-bit QAT scheme has no quantize config for edgeml's PositionEmbedding",
}
for _name in ("GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM2D"):
    _WHY_UNSUPPORTED[_name] = _WHY_UNSUPPORTED["LSTM"]


SCHEMES = {
    "default": "QAT",
    "preserve_sparsity": "pruning-preserving QAT (PQAT)",
    "preserve_clusters": "cluster-preserving QAT (CQAT)",
    "preserve_sparsity_and_clusters": "sparsity- and cluster-preserving QAT (PCQAT)",
}


def quantize_scheme(scheme: str):
    """tfmot's quantize scheme object for one of SCHEMES."""
    import tensorflow_model_optimization as tfmot
    if scheme not in SCHEMES:
        raise TrainingError(f"unknown QAT scheme '{scheme}': use one of {', '.join(SCHEMES)}")
    combine = tfmot.experimental.combine
    if scheme == "preserve_sparsity":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    if scheme == "preserve_clusters":
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
    if scheme == "preserve_sparsity_and_clusters":
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()


def _keeping_preprocessing_float(scheme_object):
    """The scheme with a registry that leaves the preprocessing layers alone: tfmot's cluster-preserving registry
    claims every layer without trainable weights, Normalization included, then finds no quantize config for it."""
    base = type(scheme_object)

    class KeepPreprocessingFloat(base):
        def get_quantize_registry(self):
            registry = super().get_quantize_registry()
            claims = registry.supports
            registry.supports = lambda layer: type(layer).__name__ not in PREPROCESSING_LAYERS and claims(layer)
            return registry

    scheme_object.__class__ = KeepPreprocessingFloat
    return scheme_object


def quantize_aware(model, scheme: str = "default"):
    """A quantization-aware copy of `model` (weights kept) to fine-tune before int8 conversion.

    scheme: "default", or one that keeps what an earlier step made of the weights while fake-quantizing them:
    "preserve_sparsity" (PQAT, after pruning: zeros stay zero), "preserve_clusters" (CQAT, after clustering: the
    kernels keep their centroid count), "preserve_sparsity_and_clusters" (PCQAT).  Pass a model without pruning /
    clustering wrappers (strip them first).

    Models made only of layers tfmot's default 8-bit registry supports (Dense, Conv2D, DepthwiseConv2D,
    SeparableConv2D, Conv+BatchNorm, Add, Concatenate, pooling, activations, reshaping) go through
    `quantize_model`.  Normalization and Rescaling preprocessing layers have no QAT config; refusing them
    would rule out every model with built-in input scaling, so instead every other layer is annotated with
    `quantize_annotate_layer` and `quantize_apply` quantizes only those: the preprocessing stays float in
    training, and the TFLite converter later quantizes it with ranges calibrated on the representative data
    (pass `representative_x` to `to_tflite`).  Any other layer QAT cannot take (LSTM, GRU, SimpleRNN,
    Conv1D, LayerNormalization, Embedding, a BatchNormalization not right after a conv) raises TrainingError
    naming the layer and why.  Compile the returned model before training it.
    """
    _, keras = keras_env()
    import tensorflow_model_optimization as tfmot
    require_tf_keras(model, "quantize_aware")
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise TrainingError("quantize_aware needs a Sequential or functional model; subclassed models cannot be "
                            "cloned with fake-quant wrappers.")
    _refuse_known_unsupported(model)
    qkeras = tfmot.quantization.keras
    preprocessing = [layer for layer in model.layers if type(layer).__name__ in PREPROCESSING_LAYERS]
    quantize_scheme_object = quantize_scheme(scheme)
    try:
        if not preprocessing:
            with qkeras.quantize_scope():
                return qkeras.quantize_apply(qkeras.quantize_annotate_model(model), quantize_scheme_object)

        def annotate(layer):
            if isinstance(layer, keras.layers.InputLayer) or type(layer).__name__ in PREPROCESSING_LAYERS:
                return layer.__class__.from_config(layer.get_config())
            return qkeras.quantize_annotate_layer(layer.__class__.from_config(layer.get_config()))

        annotated = keras.models.clone_model(model, clone_function=annotate)
        annotated.set_weights(model.get_weights())
        with qkeras.quantize_scope():
            return qkeras.quantize_apply(annotated, _keeping_preprocessing_float(quantize_scheme_object))
    except (RuntimeError, ValueError) as exc:
        raise _explain(exc, model) from exc


def _refuse_known_unsupported(model) -> None:
    for layer in model.layers:
        name = type(layer).__name__
        if name in _WHY_UNSUPPORTED and name != "BatchNormalization":
            raise TrainingError(f"Cannot train layer '{layer.name}' ({name}) quantization-aware: "
                                f"{_WHY_UNSUPPORTED[name]}.")


def _explain(exc: Exception, model) -> TrainingError:
    """Turns tfmot's 'Layer name:<class ...> is not supported' into a sentence that says why."""
    match = re.search(r"Layer (\S+?):<class '([\w.]+)'> is not supported", str(exc))
    if not match:
        return TrainingError(f"tfmot could not make the model quantization-aware: {str(exc).splitlines()[0]}")
    layer_name, cls = match.group(1), match.group(2).rsplit(".", 1)[-1]
    why = _WHY_UNSUPPORTED.get(cls, f"tfmot's default 8-bit QAT registry has no quantize config for {cls}")
    return TrainingError(f"Cannot train layer '{layer_name}' ({cls}) quantization-aware: {why}.")
